//! `reins top`: the live dashboard (see [`crate::top`]).

use crate::error::{CliError, CliResult, code};
use crate::store::paths::StateRoot;

/// A live dashboard of every session: their states as they change, the
/// selected one's screen and last events, and keys to act on it.
///
/// The table shows every session that has not exited, grouped by
/// repository: ID, AGENT, STATE (coloured unless NO_COLOR), TURN, IDLE,
/// TOKENS, WHERE (worktree branch, tmux pane or directory) and DESC. It
/// follows the sessions' files and hosts as they change; nothing is polled.
/// Below it are the selected session's screen and its last events. `tab`
/// switches to the dispatches (attempts with their rung, verdict and
/// feedback) and the chains (steps, batches, gate decisions).
///
/// Keys: up/down (or j/k, or the mouse) select; enter attaches (Ctrl-]
/// comes back); s sends a message; a/d approve/deny the pending request;
/// i interrupts; x stops (asks first); w starts a watcher; / filters; ?
/// helps; q quits (the sessions keep running).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins top
  NO_COLOR=1 reins top

Exit codes: 0 quit, 1 the state directory cannot be used, 2 not run in a
terminal.")]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> CliResult {
    if !crate::term::is_tty(rustix::stdio::stdin()) || !crate::term::is_tty(rustix::stdio::stdout())
    {
        return Err(CliError::usage("reins top needs a terminal on stdin and stdout")
            .hint("from a script: `reins status --json`, or `reins events --id ID --follow`"));
    }
    let state = StateRoot::from_env()?;
    crate::top::run(state)?;
    Ok(code::OK)
}
