//! `reins watch`: keep an unattended session going (see `crate::watch`).

use std::path::PathBuf;
use std::time::Duration;

use crate::control::lookup;
use crate::error::CliResult;
use crate::store::lock::OwnerLock;
use crate::store::paths::{SessionPaths, StateRoot};
pub(crate) use crate::watch::flags::{Preset, WatchArgs, options_from_flags};
use crate::watch::{self, Log, Options};

/// Watch a session and keep it going: nudge it when it stalls, restart its
/// agent when it dies, and call for a person when that does not help.
///
/// Progress is what the agent really does: protocol messages, turns, and
/// screen changes other than spinners and timers. The watch returns when
/// the session's work is done: a turn ended and it sits ready with nothing
/// queued (never nudged then), or the session ended. With --until-exit it
/// stays on, for a session that will get more work, until the session ends.
/// A session that has had no message yet is waited on. One blocked on an
/// approval is reported (escalated), never typed into. A nudge interrupts
/// the stalled turn and sends --nudge as a new message. A restart starts the
/// agent again with the same id, options and first task, plus a note of
/// what happened (in this shell's environment). Each decision is written to
/// the session's events (`stall`, `resume`, `restart`, `escalate`).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins watch --id w1                        defaults: stall after 8m, 1 nudge, 1 restart
  reins send --id w1 'fix the build' && reins watch --id w1 && next-step
  reins watch --id w1 --until-exit           stays on across turns until w1 ends
  reins watch --id w1 --preset plan          3m, 2 nudges
  reins watch --id w1 --stall-after 90s --nudge 'Continue; run the tests when done.'
  reins watch --id w1 --advisor http://127.0.0.1:11434 --advisor-model llama3.2
  reins run codex --id w2 --context 'fix the build' --watch --preset impl
  reins watch --id w3 --host gpu             the watcher runs there, over ssh

Presets: impl (8m, 1 nudge), plan (3m, 2 nudges), gate (15m, no nudges);
explicit flags win.

Without --advisor, the [advisor] of config.toml is asked, if it has one:
  [advisor]
  endpoint = \"local\"             # an [endpoints.NAME], or url = \"http://...\"
  models = [\"phi4-mini\", \"llama3.2\"]  # tried in order (default: the endpoint's)
  timeout = \"10s\"
It is pinged when the watch starts; one that is down is left alone for 30s
(doubling to 5m), so a dead advisor costs nothing per cycle. With
dispatch = true it also picks the first agent of a dispatch (see
`reins dispatch --help`).

Exit codes: 0 the session's work is done or it ended (or Ctrl-C stopped it),
1 no such session or the watch failed, 2 escalated (the session is left as
it is) or bad input, 130 interrupted by Ctrl-C with the session left running.")]
pub(crate) struct Args {
    /// The session to watch.
    #[arg(long)]
    id: String,
    /// Look the id up in this repository's sessions.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    watch: WatchArgs,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let options = args.watch.options(Duration::from_secs(30))?;
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    watch_here(view.paths, options, args.watch.json, None)
}

/// `run --watch`: watches the session just started.
pub(crate) fn after_run(
    paths: SessionPaths,
    args: &WatchArgs,
    start_timeout: Duration,
    lock: OwnerLock,
) -> CliResult {
    watch_here(paths, args.options(start_timeout)?, args.json, Some(lock))
}

/// Watches in this process, its words on stderr, its summary as JSON on
/// stdout when asked.
fn watch_here(
    paths: SessionPaths,
    options: Options,
    json: bool,
    lock: Option<OwnerLock>,
) -> CliResult {
    let summary = crate::control::runtime().block_on(watch::supervise_holding(
        lock,
        paths,
        options,
        Log::Stderr,
        true,
    ));
    if json {
        crate::cli::print_json(&summary)?;
    }
    Ok(summary.exit)
}
