//! `reins chain`: steps of work (plan → implement → review …) run on the
//! configured agents, each task one dispatch, batches with gates, state on
//! disk so a chain can be resumed.
//!
//! - [`file`]: the chain file and its validation
//! - [`runner`]: running the steps, tasks and gates
//! - [`gate`]: what happens to failed tasks (rules, or an agent)
//! - [`state`]: `state.json`, what `status` and `resume` read

pub(crate) mod file;
pub(crate) mod gate;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod state;
