//! reins: drive AI coding-agent CLIs from a shell.
//!
//! Two binaries are built from this library: `reins` ([`cli::main`]) and
//! `reins-host` ([`cli::host_main`]), the per-session host. The host is the
//! one long-lived process per session; as a binary of its own it carries
//! only the code a host runs, so each session keeps less of it resident
//! (`reins __host` does the same job from the big binary when `reins-host`
//! is not beside it).

mod adapter;
mod chain;
pub mod cli;
mod config;
mod control;
mod dispatch;
mod docs;
mod error;
#[cfg(test)]
mod fuzz;
mod git;
mod host;
mod ids;
mod ipc;
mod mock_agent;
mod procs;
mod screen;
mod spinner;
mod state;
mod store;
mod style;
mod term;
mod time;
mod tmux;
mod transport;
mod trust;
mod watch;
mod worktree;
