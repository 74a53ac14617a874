//! Git worktrees for sessions: `run --worktree` gives a session its own
//! checkout on its own branch, outside the repository, so several agents
//! can work on one repository at once without touching each other's files
//! or yours.
//!
//! A session's worktree is written down in three places, one per reader:
//! `worktree.json` in the session directory (the durable record: it
//! outlives the session, so `worktree list|diff|merge|remove` and `gc` find
//! it), the launch spec (so a watcher's restart from `launch.json` reuses
//! the worktree instead of making another), and `session.json` (so `status`
//! shows the branch without opening another file). The session's scope
//! stays the repository's: scopes are keyed by the common git directory,
//! which every worktree of a repository shares.
//!
//! Nothing here deletes anything it was not asked to: `remove` refuses
//! while the tree has uncommitted work (unless forced) and keeps the branch
//! unless told; `merge` tests for conflicts before it touches anything and
//! puts everything back if git fails half way.

mod cmd;
mod create;
mod ops;
mod record;

pub(crate) use cmd::{query, work};
pub(crate) use create::{check_restart, plan};
pub(crate) use ops::{MergeOptions, RemoveOptions, Removed, merge, remove};
pub(crate) use record::{Standing, WorktreeRecord, short, standings};
