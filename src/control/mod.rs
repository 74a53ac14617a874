//! Session control: the one in-process API that finds, starts and drives
//! sessions (DESIGN §9).
//!
//! The command line, `dispatch`, `chain`, `watch`, `buddy` and every front
//! end (MCP, the dashboard, remote hosts) drive sessions through this
//! module; none of them spawns `reins` to do it. Below it are the host
//! (one process per session), the store (the files of a session) and the
//! control socket. Nothing here prints or decides an exit code: calls
//! return typed results and errors, and the caller presents them.

pub(crate) mod answer;
pub(crate) mod api;
pub(crate) mod cleanup;
pub(crate) mod events;
pub(crate) mod gc;
pub(crate) mod logs;
pub(crate) mod lookup;
pub(crate) mod session;
pub(crate) mod start;
pub(crate) mod status;
pub(crate) mod wait;
pub(crate) mod worktrees;

/// A current-thread tokio runtime, for a synchronous caller (a client
/// command) that drives sessions.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("build tokio runtime")
}
