//! reins: drive AI coding-agent CLIs from a shell.

mod adapter;
mod chain;
mod cli;
mod config;
mod dispatch;
mod docs;
mod error;
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
mod watch;
mod worktree;

fn main() -> std::process::ExitCode {
    cli::main()
}
