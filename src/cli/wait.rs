//! `reins wait`: block until a session reaches a state, finishes a turn,
//! goes quiet or exits — by following its event log, never by polling.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::{CliError, CliResult, code};
use crate::spinner::Spinner;
use crate::state::State;
use crate::store::events::{self, EventKind, EventLine};
use crate::store::exit_record::ExitRecord;
use crate::store::follow::{Follower, SessionFile};
use crate::store::inbox::{self, MessageStatus};
use crate::store::paths::StateRoot;
use crate::store::stream::EventStream;

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

/// A condition to wait for.
#[derive(Debug, Clone, PartialEq)]
enum Until {
    Exit,
    State(State),
    TaskComplete,
    TurnStarted(u64),
    Idle(Duration),
    RateLimited,
    RateLimitLifted,
}

impl FromStr for Until {
    type Err = String;

    fn from_str(s: &str) -> Result<Until, String> {
        let state = |name| {
            serde_json::from_value::<State>(serde_json::Value::String(String::from(name))).ok()
        };
        Ok(match s {
            "exit" | "exited" => Until::Exit,
            "task_complete" => Until::TaskComplete,
            "rate_limited" => Until::RateLimited,
            "rate_limit_lifted" => Until::RateLimitLifted,
            _ if s.starts_with("turn:") => {
                let n =
                    s["turn:".len()..].parse().map_err(|_| format!("{s:?}: N must be a number"))?;
                Until::TurnStarted(n)
            }
            _ if s.starts_with("idle:") => {
                Until::Idle(crate::time::parse_duration(&s["idle:".len()..])?)
            }
            _ => match state(s) {
                Some(
                    st @ (State::Ready
                    | State::Busy
                    | State::Blocked
                    | State::Unknown
                    | State::Starting),
                ) => Until::State(st),
                _ => {
                    return Err(format!(
                        "unknown condition {s:?}; use exit, ready, busy, blocked, unknown, starting, \
                         task_complete, turn:N, idle:DURATION, rate_limited or rate_limit_lifted"
                    ));
                }
            },
        })
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
    waited_s: f64,
}

/// What the run's events have said so far.
#[derive(Default)]
struct Model {
    state: Option<State>,
    turns_started: BTreeSet<u64>,
    completed: HashMap<u64, EventLine>,
    /// message id → its turn, or its sad end.
    messages: HashMap<String, Result<u64, &'static str>>,
    exited: Option<EventLine>,
    /// The last `rate_limited` / `rate_limit_lifted` event of the run.
    rate_limit: Option<EventLine>,
}

impl Model {
    fn apply(&mut self, event: &EventLine) {
        let turn = event.header.turn;
        match &event.kind {
            EventKind::State { to, .. } => self.state = Some(*to),
            EventKind::TurnStarted { .. } => {
                self.turns_started.extend(turn);
            }
            EventKind::RateLimited { .. } | EventKind::RateLimitLifted { .. } => {
                self.rate_limit = Some(event.clone());
            }
            EventKind::TaskComplete { .. } => {
                if let Some(t) = turn {
                    self.completed.insert(t, event.clone());
                }
            }
            EventKind::Delivered { message_id, verified, .. } => {
                if let Some(t) = turn {
                    self.messages.insert(message_id.clone(), Ok(t));
                    if *verified {
                        // A verified delivery opened turn t, whatever order
                        // a reader happens to see the events in.
                        self.turns_started.insert(t);
                    }
                }
            }
            EventKind::Stranded { message_id, .. } => {
                self.messages.insert(message_id.clone(), Err("stranded"));
            }
            EventKind::Expired { message_id, .. } => {
                self.messages.insert(message_id.clone(), Err("expired"));
            }
            EventKind::Dropped { message_id, .. } => {
                self.messages.insert(message_id.clone(), Err("dropped"));
            }
            EventKind::Typed { message_id, .. } => {
                self.messages.insert(message_id.clone(), Err("typed without submitting"));
            }
            EventKind::Exited { .. } => self.exited = Some(event.clone()),
            _ => {}
        }
    }
}

/// The turn a `task_complete` wait is after.
#[derive(Debug, Clone)]
enum Target {
    Turn(u64),
    Message(String),
}

/// Where a wait stands after an event.
enum Verdict {
    Pending,
    Reached { event: Option<Box<EventLine>>, turn: Option<u64> },
    Failed { status: String },
}

pub(crate) fn run(args: Args) -> CliResult {
    let started = Instant::now();
    let until = match (&args.message, args.turn, &args.until) {
        (None, None, until) => until.clone(),
        (_, _, Until::TaskComplete | Until::Exit) => Until::TaskComplete,
        _ => return Err(CliError::usage("--message and --turn go with --until task_complete")),
    };
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let (history, offset) = events::read_all_with_offset(&view.paths.events())?;
    let run = match (&view.liveness, &view.record) {
        (Liveness::Live, Some(record)) => record.run.clone(),
        _ => last_run(&history)
            .ok_or_else(|| CliError::failure(format!("session {} has never started", args.id)))?,
    };
    let mut model = Model::default();
    for event in history.iter().filter(|e| e.header.run == run) {
        model.apply(event);
    }
    if model.state.is_none() && view.liveness == Liveness::Live {
        model.state = view.record.as_ref().map(|r| r.state.state);
    }
    let target = match &until {
        Until::TaskComplete => Some(task_target(&args, &view, &model)?),
        _ => None,
    };
    let mut outcome = Outcome {
        ok: false,
        id: args.id.clone(),
        until: describe(&until, target.as_ref()),
        run: run.clone(),
        status: String::new(),
        event: None,
        turn: None,
        exit: None,
        waited_s: 0.0,
    };
    let deadline = args.timeout.map(|t| tokio::time::Instant::from_std(started + t));
    let spinner = Spinner::start(format!("waiting for {}: {}", args.id, outcome.until));
    spinner.detail(model.state.map(|s| s.to_string()).unwrap_or_default());
    let verdict = crate::cli::runtime().block_on(async {
        let wait = async {
            let mut verdict = judge(&until, target.as_ref(), &model);
            if !matches!(verdict, Verdict::Pending) {
                return Ok(verdict);
            }
            if view.liveness != Liveness::Live {
                return Ok(ended(&model));
            }
            let mut stream = EventStream::open(&view.paths, offset);
            if let Until::Idle(quiet) = until {
                return wait_idle(&view, &mut stream, &run, quiet).await;
            }
            while let Some(event) = stream.next().await? {
                if event.header.run != run {
                    continue;
                }
                model.apply(&event);
                spinner.detail(model.state.map(|s| s.to_string()).unwrap_or_default());
                verdict = judge(&until, target.as_ref(), &model);
                if let Verdict::Reached { event: None, turn } = verdict {
                    verdict = Verdict::Reached { event: Some(Box::new(event)), turn };
                }
                if !matches!(verdict, Verdict::Pending) {
                    return Ok(verdict);
                }
            }
            Ok::<_, CliError>(ended(&model))
        };
        match deadline {
            Some(at) => tokio::time::timeout_at(at, wait).await.ok(),
            None => Some(wait.await),
        }
    });
    drop(spinner);
    outcome.waited_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let exit_code = match verdict {
        None => {
            outcome.status = "timeout".into();
            code::TIMEOUT
        }
        Some(verdict) => match verdict? {
            Verdict::Reached { event, turn } => {
                outcome.ok = true;
                outcome.status = "reached".into();
                outcome.turn = turn;
                outcome.event = event.and_then(|e| serde_json::from_str(&e.raw).ok());
                if until == Until::Exit {
                    outcome.exit =
                        ExitRecord::read(&view.paths.exit_record()).filter(|e| e.run == run);
                    outcome.exit.as_ref().map_or(code::FAILURE, ExitRecord::shell_status)
                } else {
                    code::OK
                }
            }
            Verdict::Failed { status } => {
                outcome.status = status;
                outcome.exit = ExitRecord::read(&view.paths.exit_record()).filter(|e| e.run == run);
                outcome.event = exit_event(&view, &run);
                code::FAILURE
            }
            Verdict::Pending => unreachable!("a wait ends reached or failed"),
        },
    };
    crate::cli::print_json(&outcome)?;
    Ok(exit_code)
}

/// Decides whether the condition holds given what has been seen.
fn judge(until: &Until, target: Option<&Target>, model: &Model) -> Verdict {
    let reached = |turn| Verdict::Reached { event: None, turn };
    match until {
        Until::Exit => match &model.exited {
            Some(e) => Verdict::Reached { event: Some(Box::new(e.clone())), turn: None },
            None => Verdict::Pending,
        },
        Until::State(want) => {
            let now = model.state;
            if now == Some(*want) {
                return reached(None);
            }
            if model.exited.is_some() { ended(model) } else { Verdict::Pending }
        }
        Until::TurnStarted(n) => {
            if model.turns_started.iter().any(|t| t >= n) {
                return reached(Some(*n));
            }
            if model.exited.is_some() { ended(model) } else { Verdict::Pending }
        }
        Until::TaskComplete => {
            let turn = match target.expect("task_complete has a target") {
                Target::Turn(n) => Some(*n),
                Target::Message(id) => match model.messages.get(id) {
                    Some(Ok(turn)) => Some(*turn),
                    Some(Err(fate)) => return Verdict::Failed { status: (*fate).into() },
                    None => None,
                },
            };
            if let Some(done) = turn.and_then(|t| model.completed.get(&t)) {
                return Verdict::Reached { event: Some(Box::new(done.clone())), turn };
            }
            if model.exited.is_some() { ended(model) } else { Verdict::Pending }
        }
        Until::Idle(_) => {
            if model.exited.is_some() {
                ended(model)
            } else {
                Verdict::Pending
            }
        }
        Until::RateLimited | Until::RateLimitLifted => {
            let want_lifted = *until == Until::RateLimitLifted;
            match &model.rate_limit {
                Some(e) if matches!(e.kind, EventKind::RateLimitLifted { .. }) == want_lifted => {
                    Verdict::Reached { event: Some(Box::new(e.clone())), turn: None }
                }
                _ if model.exited.is_some() => ended(model),
                _ => Verdict::Pending,
            }
        }
    }
}

/// The session ended (or its host died) before the condition held.
fn ended(model: &Model) -> Verdict {
    Verdict::Failed { status: if model.exited.is_some() { "exited" } else { "host_died" }.into() }
}

/// Which turn `--until task_complete` means, decided when the wait starts.
fn task_target(args: &Args, view: &SessionView, model: &Model) -> Result<Target, CliError> {
    if let Some(n) = args.turn {
        return Ok(Target::Turn(n));
    }
    if let Some(id) = &args.message {
        return Ok(Target::Message(id.clone()));
    }
    let pending = inbox::replay(&view.paths.inbox())?
        .into_iter()
        .rev()
        .find(|e| matches!(e.status, MessageStatus::Queued | MessageStatus::Delivering));
    if let Some(entry) = pending {
        return Ok(Target::Message(entry.message.id));
    }
    Ok(Target::Turn(model.turns_started.iter().next_back().copied().unwrap_or(1)))
}

fn describe(until: &Until, target: Option<&Target>) -> String {
    match (until, target) {
        (Until::Exit, _) => "exit".into(),
        (Until::State(s), _) => s.to_string(),
        (Until::TurnStarted(n), _) => format!("turn:{n}"),
        (Until::Idle(d), _) => format!("idle:{}s", d.as_secs_f64()),
        (Until::TaskComplete, Some(Target::Turn(n))) => format!("task_complete (turn {n})"),
        (Until::TaskComplete, Some(Target::Message(id))) => format!("task_complete (message {id})"),
        (Until::TaskComplete, None) => "task_complete".into(),
        (Until::RateLimited, _) => "rate_limited".into(),
        (Until::RateLimitLifted, _) => "rate_limit_lifted".into(),
    }
}

/// Waits until the agent has printed nothing for `quiet`.
async fn wait_idle(
    view: &SessionView,
    stream: &mut EventStream,
    run: &str,
    quiet: Duration,
) -> Result<Verdict, CliError> {
    let transcript = view.paths.transcript();
    let offset = std::fs::metadata(&transcript).map_or(0, |m| m.len());
    let mut output = Follower::new(&view.paths, SessionFile::Transcript, offset);
    // Quiet so far: since the transcript last changed.
    let since_change = std::fs::metadata(&transcript)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    let mut quiet_until = tokio::time::Instant::now() + quiet.saturating_sub(since_change);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(quiet_until) => {
                return Ok(Verdict::Reached { event: None, turn: None });
            }
            _ = output.changed() => {
                if !output.read_new()?.is_empty() {
                    quiet_until = tokio::time::Instant::now() + quiet;
                }
            }
            event = stream.next() => match event? {
                Some(e) if e.header.run == run && matches!(e.kind, EventKind::Exited { .. }) => {
                    return Ok(Verdict::Failed { status: "exited".into() });
                }
                Some(_) => {}
                None => return Ok(Verdict::Failed { status: "host_died".into() }),
            },
        }
    }
}

fn last_run(history: &[EventLine]) -> Option<String> {
    history
        .iter()
        .rev()
        .find(|e| matches!(e.kind, EventKind::Started(_)))
        .map(|e| e.header.run.clone())
}

/// The `exited` event of `run`, if it has one.
fn exit_event(view: &SessionView, run: &str) -> Option<serde_json::Value> {
    let all = events::read_all(&view.paths.events()).ok()?;
    let last = all
        .iter()
        .rev()
        .find(|e| e.header.run == run && matches!(e.kind, EventKind::Exited { .. }))?;
    serde_json::from_str(&last.raw).ok()
}
