//! `reins events`: a session's event log as JSON lines, optionally followed
//! live.

use std::io::Write;
use std::path::PathBuf;

use crate::control::events::{self, Filter};
use crate::control::lookup::Liveness;
use crate::error::{CliError, CliResult, code};
use crate::store::paths::StateRoot;
use crate::time;

/// Print a session's events (JSON lines, schema 1).
///
/// By default prints the log and, while the session runs, follows it until
/// the session exits (exit 0 on its `exited` event). `--snapshot` prints
/// what is there and returns at once. The log spans every run of the id:
/// each run begins with its `started` event and every line names its `run`;
/// `--run last` keeps only the latest. Works after the session ended.
#[derive(Debug, clap::Args)]
#[command(override_usage = "reins events [OPTIONS] --id <ID>")]
#[command(
    after_help = "Examples:\n  reins events --id demo --snapshot\n  reins events --id demo --follow | jq -c 'select(.type == \"state\")'\n  reins events --id demo --from 2026-11-23T10:00:00Z --run last\n\nExit codes: 0 printed (following: the session exited), 1 no such session or its\nhost died while following, 2 bad input (e.g. a bad --from)."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long, required_unless_present = "cli")]
    id: Option<String>,
    /// harnex's `--cli NAME`: the session running that agent.
    #[arg(long, value_name = "NAME", hide = true)]
    cli: Option<String>,
    /// Print what is there and return.
    #[arg(long, alias = "no-follow", conflicts_with = "follow")]
    snapshot: bool,
    /// Keep printing new events until the session exits.
    #[arg(long)]
    follow: bool,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-23T10:00:00Z).
    #[arg(long, value_name = "TIMESTAMP")]
    from: Option<String>,
    /// Which runs of the id: `all`, `last`, or a run id.
    #[arg(long, value_name = "RUN", default_value = "all")]
    run: String,
    /// Accepted for symmetry with other read commands: output is always JSON.
    #[arg(long)]
    json: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let from = match &args.from {
        Some(text) => Some(time::parse_rfc3339(text).ok_or_else(|| {
            CliError::usage(format!("--from {text:?} is not an RFC 3339 timestamp"))
                .hint("e.g. --from 2026-11-23T10:00:00Z")
        })?),
        None => None,
    };
    let state = StateRoot::from_env()?;
    let view =
        super::compat::find(&state, args.id.as_deref(), args.cli.as_deref(), args.repo.as_deref())?;
    let filter = Filter { from, run: events::select_run(&view, &args.run), ..Filter::default() };
    let follow = !args.snapshot && (args.follow || view.liveness == Liveness::Live);

    let mut out = std::io::stdout().lock();
    if !follow {
        for event in events::read(&view, &filter)? {
            writeln!(out, "{}", event.raw)?;
        }
        return Ok(code::OK);
    }
    // The run whose end ends --follow.
    let last_run = events::last_run(&view);
    crate::cli::runtime().block_on(events::follow(
        &view,
        &filter,
        last_run.as_deref(),
        |event| {
            writeln!(out, "{}", event.raw)?;
            out.flush()?;
            Ok(())
        },
    ))?;
    Ok(code::OK)
}
