//! `reins wait`: block until a session reaches a state, finishes a turn,
//! goes quiet or exits (the waiting is [`crate::control::wait`]'s).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::control::lookup;
use crate::control::wait::{Turn, Until, Wait};
use crate::error::{CliResult, code};
use crate::spinner::Spinner;
use crate::store::exit_record::ExitRecord;
use crate::store::paths::StateRoot;

/// Wait for a session: until it exits (the default), reaches a state,
/// completes a task, starts turn N, or has been quiet for a while.
///
/// `--until task_complete` waits for one turn: the turn of the last message
/// still queued, if any; else the latest turn started (returning at once if
/// it is already complete); else the first turn. It never matches a turn
/// older than that or an event of an earlier run. `--message ID` and
/// `--turn N` name the turn exactly. `--until exit` exits with the
/// session's own exit code, and works after the session ended.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Conditions:
  exit            the session ended (exit status = the agent's)
  ready, busy, blocked, unknown, starting
                  the session is in that state (now or later)
  task_complete   the target turn (see above) is complete
  turn:N          turn N has started
  idle:DURATION   no output from the agent for DURATION (e.g. idle:30s)
  rate_limited    a usage limit is in force (now or later)
  rate_limit_lifted
                  a usage limit of this run has lifted and none is in force

Examples:
  reins send --id w1 'run the tests' && reins wait --id w1 --until task_complete
  reins wait --id w1 --until ready --timeout 60s
  reins wait --id w1 --message 3f2a9c1b4d5e6f70
  reins wait --id w1                      (until it exits; exit code = the agent's)

Exit codes: 0 reached, 1 the session ended (or its host died) first, 2 bad
input, 124 timeout; with --until exit, the session's own exit status.")]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// What to wait for.
    #[arg(long, value_name = "CONDITION", default_value = "exit")]
    until: Until,
    /// Wait for the turn this message started to complete.
    #[arg(long, value_name = "MESSAGE_ID", conflicts_with = "turn")]
    message: Option<String>,
    /// Wait for turn N to complete.
    #[arg(long, value_name = "N")]
    turn: Option<u64>,
    /// Give up after this long (default: no limit).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    timeout: Option<Duration>,
    /// Accepted for symmetry: the output is always one JSON line.
    #[arg(long)]
    json: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Outcome {
    ok: bool,
    id: String,
    until: String,
    run: String,
    /// `reached`, `exited`, `host_died`, `timeout` or a message's fate.
    status: String,
    /// The event that settled it.
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitRecord>,
    /// The turn's answer (`task_complete`), as `reins answer` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    waited_s: f64,
}

pub(crate) fn run(args: Args) -> CliResult {
    let started = Instant::now();
    let turn = match (&args.message, args.turn) {
        (Some(id), _) => Turn::Message(id.clone()),
        (None, Some(n)) => Turn::Number(n),
        (None, None) => Turn::Current,
    };
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let wait = Wait::new(&view, args.until.clone(), turn)?;
    let spinner = Spinner::start(format!("waiting for {}: {}", args.id, wait.describe()));
    spinner.detail(wait.state().map(|s| s.to_string()).unwrap_or_default());
    let waited = crate::cli::runtime().block_on(wait.until(args.timeout, |state| {
        spinner.detail(state.map(|s| s.to_string()).unwrap_or_default())
    }))?;
    drop(spinner);
    let exit_code = match waited.status.as_str() {
        "timeout" => code::TIMEOUT,
        "reached" if args.until == Until::Exit && args.message.is_none() && args.turn.is_none() => {
            waited.exit.as_ref().map_or(code::FAILURE, ExitRecord::shell_status)
        }
        "reached" => code::OK,
        _ => code::FAILURE,
    };
    let outcome = Outcome {
        ok: waited.reached(),
        answer: waited.answer(),
        id: args.id,
        until: waited.until,
        run: waited.run,
        status: waited.status,
        event: waited.event,
        turn: waited.turn,
        exit: waited.exit,
        waited_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
    crate::cli::print_json(&outcome)?;
    Ok(exit_code)
}
