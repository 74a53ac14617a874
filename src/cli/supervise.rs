//! `reins supervise`: the long-running supervisor (see `crate::supervise`).

use std::time::Duration;

use crate::error::CliResult;
use crate::store::paths::StateRoot;
use crate::supervise::{self, Options};

/// Look after this state directory's sessions until stopped: watch every
/// session that asked for it, restart what died, retire idle sessions.
///
/// A session asks to be watched with `run --watch` or `run --supervised`;
/// its watch options are kept with it. Whenever nobody watches such a
/// session (the terminal of its `run --watch` closed, or it was
/// --supervised), the supervisor does, as `reins watch --until-exit` would:
/// nudges when it stalls, restarts when its agent or host dies (also one
/// that died while no supervisor ran, unless that was longer ago than
/// --revive-within), and a call for a person when that does not help —
/// after which the session is left alone until it moves again. Live
/// sessions idle past `[fleet] retire_after` (or --retire-after) are
/// retired. What it does goes to stderr, one line each, and into
/// `supervise.json` in the state directory (`reins service status`).
///
/// One runs per state directory. A service manager keeps it up: `reins
/// service install`. SIGTERM or Ctrl-C stop it; the sessions go on.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins service install                      systemd/launchd keeps it running
  reins supervise                            run it here instead
  reins run codex --id w1 --context 'fix the build' --supervised
  reins service status                       what it watches
  reins supervise --retire-after 12h --revive-within 1h

Exit codes: 0 stopped by SIGTERM or Ctrl-C, 1 another supervisor runs for
this state directory (or it cannot be used), 2 bad input.")]
pub(crate) struct Args {
    /// How often to look for sessions to watch.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::time::parse_duration)]
    scan_every: Duration,
    /// Retire live sessions idle this long (default: [fleet] retire_after
    /// in config.toml, else never).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    retire_after: Option<Duration>,
    /// Restart a watched session that died only if it died within this
    /// long (older deaths are left for a person).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = crate::time::parse_duration)]
    revive_within: Duration,
    /// How long a restarted session may take to come up.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::time::parse_duration)]
    start_timeout: Duration,
}

pub(crate) fn run(args: Args) -> CliResult {
    if args.scan_every < Duration::from_millis(100) {
        return Err(crate::error::CliError::usage("--scan-every must be at least 100ms")
            .hint("e.g. --scan-every 2s"));
    }
    let state = StateRoot::from_env()?;
    let options = Options {
        scan_every: args.scan_every,
        retire_after: args.retire_after,
        revive_within: args.revive_within,
        start_timeout: args.start_timeout,
    };
    crate::cli::runtime().block_on(supervise::run(state, options))
}
