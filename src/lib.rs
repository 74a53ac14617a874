//! reins: drive AI coding-agent CLIs from a shell, or from a program.
//!
//! As a library, [`Reins`] finds and starts sessions and [`Session`] drives
//! one (send a message and know it got through, wait for its turn, read its
//! screen, interrupt, approve, stop): the same code the `reins` command
//! runs, so a session started one way is seen and driven the other.
//!
//! Two binaries are built from this library: `reins` ([`cli::main`]) and
//! `reins-host` ([`cli::host_main`]), the per-session host. The host is the
//! one long-lived process per session; as a binary of its own it carries
//! only the code a host runs, so each session keeps less of it resident
//! (`reins __host` does the same job from the big binary when `reins-host`
//! is not beside it).
//!
//! # Layers
//!
//! Arrows point down only: a module calls the ones below it, never above.
//!
//! ```text
//! cli/          parse, call, print; exit codes (one file per subcommand)
//! mcp/ dispatch/ chain/ watch/     front ends and policies over many sessions
//! supervise service                the long-running supervisor, its service unit
//! control/      session control: find, start, send, wait, screen,
//!               interrupt, approve, stop, list, gc (typed results, no
//!               printing); the library's API is control::api
//! host/ transport/ screen/ adapter/ store/ ipc/ tmux/ trust endpoint/
//!               the host process per session, its agent's transport and
//!               screen, the profiles, the files, the control socket, who
//!               may ask what, the model servers
//! ```

mod adapter;
mod chain;
pub mod cli;
mod compat;
mod config;
mod control;
mod dispatch;
mod docs;
mod endpoint;
mod error;
#[cfg(test)]
mod fuzz;
mod git;
mod host;
mod ids;
mod ipc;
mod mcp;
mod mock_agent;
mod notify;
mod procs;
mod remote;
mod screen;
mod service;
mod spinner;
mod state;
mod store;
mod style;
mod supervise;
mod term;
mod time;
mod tmux;
mod top;
mod transport;
mod trust;
mod watch;
mod worktree;

pub use control::api::{
    Error, ErrorKind, Follow, Reins, Sent, Session, StartOptions, Until, Waited,
};
pub use state::State;
