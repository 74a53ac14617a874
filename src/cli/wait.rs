//! `reins wait`: block until a session reaches a state, finishes a turn,
//! goes quiet or exits (the waiting is [`crate::control::wait`]'s).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::control::lookup::{self, SessionView};
use crate::control::status::{self, Which};
use crate::control::wait::{Turn, Until, Wait, Waited};
use crate::error::{CliError, CliResult, code};
use crate::remote::wait::ResumeAt;
use crate::spinner::Spinner;
use crate::store::exit_record::ExitRecord;
use crate::store::paths::StateRoot;

/// Wait for a session: until it exits (the default), reaches a state,
/// completes a task, starts or completes turn N, or has been quiet for a
/// while.
///
/// `--until task_complete` waits for one turn: the turn of the last message
/// still queued, if any; else the latest turn started (returning at once if
/// it is already complete); else the first turn. It never matches a turn
/// older than that or an event of an earlier run. `--message ID` and
/// `--turn N` name the turn exactly. `--until exit` exits with the
/// session's own exit code, and works after the session ended. A reached
/// `task_complete` carries the turn's `answer` (as `reins answer` prints it).
///
/// Several sessions: `--id` again, or a pattern (`--id 'impl-*'`: the
/// running sessions of this repository whose id matches). One process
/// follows them all and prints a JSON line for each as it is settled;
/// `--any` returns at the first that reaches the condition.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Conditions:
  exit            the session ended (exit status = the agent's)
  ready, busy, blocked, unknown, starting
                  the session is in that state (now or later)
  task_complete   the target turn (see above) is complete
  turn_complete:N turn N is complete (= --until task_complete --turn N)
  turn_started:N  turn N has started (turn:N is the old spelling)
  idle:DURATION   no output from the agent for DURATION (e.g. idle:30s)
  rate_limited    a usage limit is in force (now or later)
  rate_limit_lifted
                  a usage limit of this run has lifted and none is in force

Examples:
  reins send --id w1 'run the tests' && reins wait --id w1 --until task_complete
  reins wait --id w1 --until ready --timeout 60s
  reins wait --id w1 --message 3f2a9c1b4d5e6f70
  reins wait --id w1 --until turn_complete:2
  reins wait --id w1                      (until it exits; exit code = the agent's)
  reins wait --id w1 --id w2 --id w3 --until task_complete --timeout 30m
  reins wait --id 'impl-*' --until task_complete --any

Exit codes: 0 reached (every session; with --any, one), 1 the session ended
(or its host died) first, 2 bad input, 124 timeout; with --until exit and one
session, the session's own exit status. With --host, 3 is also ssh's
failure (the machine could not be reached again in time): an exit code alone
cannot tell that from a session that exited 3, the JSON line always can. It
says \"status\": \"reached\" with the session's \"exit\" when the code is the
session's, and \"status\": \"unreachable\" (\"kind\": \"unreachable\", the
error and hint) when it is ssh's; --host prints it even without --json.")]
pub(crate) struct Args {
    /// The session; again for more, or a pattern with `*` for the running
    /// sessions of this repository whose id matches.
    #[arg(long, required = true)]
    id: Vec<String>,
    /// With several sessions: return at the first that reaches the
    /// condition (the default is to wait for all).
    #[arg(long)]
    any: bool,
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
    /// Internal (`wait --host`): first print a line with the arguments
    /// that resume this very wait.
    #[arg(long, hide = true)]
    announce: bool,
    /// Internal (`wait --host`): wait on this run only.
    #[arg(long, hide = true, value_name = "RUN")]
    resume_run: Option<String>,
    /// Internal (`wait --host`, several sessions): resume the wait on one
    /// of them (a JSON object as `--announce` printed it); again for each.
    #[arg(long, hide = true, value_name = "JSON", value_parser = ResumeAt::parse)]
    resume_at: Vec<ResumeAt>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

impl Args {
    /// `--timeout`, if given.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
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
    let views = targets(&state, &args.id, args.repo.as_deref())?;
    if views.len() > 1 && (turn != Turn::Current || args.resume_run.is_some()) {
        return Err(CliError::usage("--message and --turn name a turn of one session")
            .hint("wait for each session's turn with a `reins wait` of its own"));
    }
    if let [view] = &views[..]
        && !args.id[0].contains('*')
        && args.resume_at.is_empty()
    {
        return one(&args, view, turn, started);
    }
    several(&args, &views, started)
}

/// The sessions `ids` name: each id, or for a pattern, the running
/// sessions of the client's repository that match.
fn targets(
    state: &StateRoot,
    ids: &[String],
    repo: Option<&std::path::Path>,
) -> Result<Vec<SessionView>, CliError> {
    let mut views: Vec<SessionView> = Vec::new();
    for id in ids {
        let found = if id.contains('*') {
            let listed = status::list(state, Which::Running { all: false, repo })?;
            let matching: Vec<SessionView> = listed
                .sessions
                .iter()
                .filter(|s| crate::ids::glob(id, &s.id))
                .map(|s| lookup::find(state, &s.id, repo))
                .collect::<Result<_, _>>()?;
            if matching.is_empty() {
                return Err(CliError::failure(format!(
                    "no running session of this repository matches {id:?}"
                ))
                .hint("`reins status` lists them"));
            }
            matching
        } else {
            vec![lookup::find(state, id, repo)?]
        };
        for view in found {
            if !views.iter().any(|v| v.paths.dir == view.paths.dir) {
                views.push(view);
            }
        }
    }
    Ok(views)
}

/// One session: one JSON object, the exit code of its outcome.
fn one(args: &Args, view: &SessionView, turn: Turn, started: Instant) -> CliResult {
    let id = &view.paths.id;
    let wait = match &args.resume_run {
        Some(run) => Wait::on_run(view, args.until.clone(), turn, run)?,
        None => Wait::new(view, args.until.clone(), turn)?,
    };
    if args.announce {
        crate::cli::print_json(&serde_json::json!({ "resume": wait.resume_args() }))?;
    }
    let spinner = Spinner::start(format!("waiting for {id}: {}", wait.describe()));
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
    crate::cli::print_json(&Outcome::of(id, waited, started))?;
    Ok(exit_code)
}

/// Several sessions, followed at once in this process: a line for each as
/// it is settled (with `--any`, until the first reaches the condition).
fn several(args: &Args, views: &[SessionView], started: Instant) -> CliResult {
    let waits = views
        .iter()
        .map(|view| match args.resume_at.iter().find(|at| at.id == view.paths.id) {
            Some(at) => Wait::on_run(view, args.until.clone(), at.turn(), &at.run),
            None => Wait::new(view, args.until.clone(), Turn::Current),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.announce {
        // The sessions a pattern named now, each pinned to its run and
        // turn: a resumed wait follows these, never one started later.
        let each: Vec<ResumeAt> = views
            .iter()
            .zip(&waits)
            .map(|(view, wait)| ResumeAt::of(&view.paths.id, &wait.resume_args()))
            .collect();
        crate::cli::print_json(&serde_json::json!({ "resume_each": each }))?;
    }
    // No progress line: the lines of the sessions settled go to the same
    // terminal as they come.
    let deadline = args.timeout.map(|t| started + t);
    let mut pending: Vec<Pending<'_>> = waits
        .into_iter()
        .enumerate()
        .map(|(i, wait)| {
            let left = deadline.map(|at| at.saturating_duration_since(Instant::now()));
            let fut: Pending<'_> = Box::pin(async move { (i, wait.until(left, |_| {}).await) });
            fut
        })
        .collect();
    let total = pending.len();
    let (mut reached, mut timed_out) = (0, 0);
    crate::cli::runtime().block_on(async {
        while !pending.is_empty() {
            let (k, (i, waited)) = std::future::poll_fn(|cx| {
                for (k, fut) in pending.iter_mut().enumerate() {
                    if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                        return Poll::Ready((k, out));
                    }
                }
                Poll::Pending
            })
            .await;
            drop(pending.swap_remove(k));
            let waited = waited?;
            match waited.status.as_str() {
                "reached" => reached += 1,
                "timeout" => timed_out += 1,
                _ => {}
            }
            crate::cli::print_json(&Outcome::of(&views[i].paths.id, waited, started))?;
            if args.any && reached > 0 {
                break;
            }
        }
        Ok::<_, CliError>(())
    })?;
    Ok(if reached == total || (args.any && reached > 0) {
        code::OK
    } else if timed_out > 0 {
        code::TIMEOUT
    } else {
        code::FAILURE
    })
}

type Pending<'a> = Pin<Box<dyn Future<Output = (usize, Result<Waited, CliError>)> + 'a>>;

impl Outcome {
    fn of(id: &str, waited: Waited, started: Instant) -> Outcome {
        Outcome {
            ok: waited.reached(),
            answer: waited.answer(),
            id: id.to_string(),
            until: waited.until,
            run: waited.run,
            status: waited.status,
            event: waited.event,
            turn: waited.turn,
            exit: waited.exit,
            waited_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        }
    }
}
