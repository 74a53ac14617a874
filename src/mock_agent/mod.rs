//! `reins mock-agent`: a fake coding-agent TUI for demos and tests.
//!
//! It draws like Claude Code (inline on the main screen, a redrawn live
//! region under a scrolling transcript), or with `--draw scroll-region`
//! like Codex's inline mode (the live region pinned to the bottom, the
//! transcript pushed up through a scroll region), with fixed texts that screen rules
//! can match, and misbehaves on demand through markers in a message
//! (`[[stall]]`, `[[crash]]`, `[[approve]]`, `[[flood:N]]`, ...).

mod agent;
mod app;
mod frame;
pub(crate) mod input;
mod markers;
mod render;

pub(crate) use app::{Options, run};
pub(crate) use frame::Draw;
pub(crate) use markers::parse_secs;
