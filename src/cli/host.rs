//! `reins __host`: the session host, started by `reins run` (hidden).

use std::path::PathBuf;

use crate::error::{CliError, CliResult};
use crate::host::{self, LaunchSpec, Terminal};

/// Runs a session host. Not for direct use: `reins run` starts it.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Read the launch spec from this FIFO (tmux mode) instead of stdin.
    #[arg(long, value_name = "PATH")]
    spec_fifo: Option<PathBuf>,
    /// Show the agent on this process's terminal.
    #[arg(long)]
    relay: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    let spec = match &args.spec_fifo {
        Some(path) => LaunchSpec::read_fifo(path),
        None => LaunchSpec::read_from(std::io::stdin().lock()),
    }
    .map_err(|err| CliError::failure(format!("cannot read the launch spec: {err}")))?;
    let terminal = if args.relay { Terminal::Relay } else { Terminal::Headless };
    host::run(spec, terminal, None)
}
