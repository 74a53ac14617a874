//! `reins top`: the live dashboard (see [`crate::top`]).

use crate::error::{CliError, CliResult, code};
use crate::remote::{Ssh, Target};
use crate::store::paths::StateRoot;

/// A live dashboard of every session: their states as they change, the
/// selected one's screen and last events, and keys to act on it.
///
/// The table shows every session that has not exited, grouped by
/// repository: ID, AGENT, STATE (coloured unless NO_COLOR), TURN, IDLE,
/// TOKENS, WHERE (worktree branch, tmux pane or directory) and DESC. It
/// follows this machine's sessions' files and hosts as they change;
/// nothing here is polled.
/// Below it are the selected session's screen and its last events. `tab`
/// switches to the dispatches (attempts with their rung, verdict and
/// feedback) and the chains (steps, batches, gate decisions).
///
/// With `--hosts`, other machines' sessions too, each row with its HOST
/// (this machine's are `local`, first): each host is asked for its
/// sessions every 2 s over its shared ssh connection (see `reins hosts`),
/// the selected remote session's screen and events about once a second,
/// and the keys act through the reins there. A host that cannot be reached
/// shows one line with why, hides no other host's rows, and shows again
/// when it comes back.
///
/// Keys: up/down (or j/k, or the mouse) select; enter attaches (Ctrl-]
/// comes back); s sends a message; a/d approve/deny the pending request;
/// i interrupts; x stops (asks first); w starts a watcher (on the session's
/// machine); / filters; ? helps; q quits (the sessions keep running).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins top
  NO_COLOR=1 reins top
  reins top --hosts all        this machine and every [hosts.NAME] of config.toml
  reins top --hosts gpu,ci     this machine, gpu and ci

Exit codes: 0 quit, 1 the state directory cannot be used, 2 not run in a
terminal, or --hosts names no host.")]
pub(crate) struct Args {
    /// Other machines' sessions too, with a HOST column: `all` (every
    /// [hosts.NAME] of config.toml) or names (a [hosts.NAME] or an ssh
    /// destination), separated by commas; this machine is always shown
    /// (as `local`).
    #[arg(long, value_name = "all|NAME,...")]
    hosts: Option<String>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let hosts = match &args.hosts {
        Some(hosts) => connections(hosts, &state)?,
        None => Vec::new(),
    };
    if !crate::term::is_tty(rustix::stdio::stdin()) || !crate::term::is_tty(rustix::stdio::stdout())
    {
        return Err(CliError::usage("reins top needs a terminal on stdin and stdout")
            .hint("from a script: `reins status --json`, or `reins events --id ID --follow`"));
    }
    crate::top::run(state, hosts)?;
    Ok(code::OK)
}

/// The machines `--hosts` names, besides this one.
fn connections(hosts: &str, state: &StateRoot) -> Result<Vec<Ssh>, CliError> {
    let names: Vec<String> = if hosts.trim() == "all" {
        let configured: Vec<String> = crate::config::hosts()?.into_keys().collect();
        if configured.is_empty() {
            return Err(CliError::usage("--hosts all: config.toml names no host").hint(
                "add a [hosts.NAME] table (destination = \"user@machine\") to config.toml \
                 (`reins hosts` checks it), or name ssh destinations: --hosts gpu,user@ci",
            ));
        }
        configured
    } else {
        let mut names: Vec<String> = Vec::new();
        for name in hosts.split(',').map(str::trim).filter(|h| !h.is_empty() && *h != "local") {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    };
    if names.is_empty() && !hosts.split(',').any(|h| h.trim() == "local") {
        return Err(CliError::usage("--hosts names no other host")
            .hint("use --hosts all, or names separated by commas (local is this machine)"));
    }
    names.iter().map(|n| Ssh::new(Target::resolve(n)?, state)).collect()
}
