//! Waiting for a session: until it exits, reaches a state, completes a
//! turn, starts turn N, goes quiet, or hits (or leaves) a usage limit — by
//! following its event log, never by polling.
//!
//! `task_complete` waits for one turn: the one named (`Turn::Number`,
//! `Turn::Message`), or else the turn of the last message still queued,
//! else the latest turn started (reached at once if it is already
//! complete), else the first turn. It never matches a turn older than that
//! or an event of an earlier run.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::time::Duration;

use crate::control::lookup::{Liveness, SessionView};
use crate::error::CliError;
use crate::state::State;
use crate::store::events::{self, EventKind, EventLine};
use crate::store::exit_record::ExitRecord;
use crate::store::follow::{Follower, SessionFile};
use crate::store::inbox::{self, MessageStatus};
use crate::store::stream::EventStream;

/// A condition to wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum Until {
    /// The session ended.
    Exit,
    /// The session is in this state (now or later).
    State(State),
    /// The target turn is complete.
    TaskComplete,
    /// Turn N has started (`turn_started:N`; `turn:N` is the old spelling).
    TurnStarted(u64),
    /// Turn N is complete (`turn_complete:N`, the same as `task_complete`
    /// with `Turn::Number(N)`).
    TurnComplete(u64),
    /// No output from the agent for this long.
    Idle(Duration),
    /// A usage limit is in force (now or later).
    RateLimited,
    /// A usage limit of this run has lifted and none is in force.
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
            // harnex's name for ready.
            "prompt" => Until::State(State::Ready),
            "task_complete" => Until::TaskComplete,
            "rate_limited" => Until::RateLimited,
            "rate_limit_lifted" => Until::RateLimitLifted,
            _ if s.starts_with("turn_complete:") => Until::TurnComplete(turn_number(s)?),
            _ if s.starts_with("turn_started:") || s.starts_with("turn:") => {
                Until::TurnStarted(turn_number(s)?)
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
                         task_complete, turn_started:N, turn_complete:N, idle:DURATION, \
                         rate_limited or rate_limit_lifted"
                    ));
                }
            },
        })
    }
}

/// The N of `turn_started:N`, `turn_complete:N` or `turn:N`.
fn turn_number(s: &str) -> Result<u64, String> {
    let (_, n) = s.split_once(':').unwrap_or((s, ""));
    n.parse().map_err(|_| format!("{s:?}: N must be a turn number (1, 2, ...)"))
}

/// Which turn a `task_complete` wait is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Decided when the wait starts (see the module docs).
    Current,
    /// Turn N.
    Number(u64),
    /// The turn this message started.
    Message(String),
}

/// How a wait ended.
#[derive(Debug, Clone)]
pub(crate) struct Waited {
    /// The condition, as waited for (`task_complete (turn 3)`).
    pub(crate) until: String,
    /// The run waited on.
    pub(crate) run: String,
    /// `reached`, `exited`, `host_died`, `timeout`, or a message's fate
    /// (`stranded`, `expired`, `dropped`, `typed without submitting`).
    pub(crate) status: String,
    /// The event that settled it, as written.
    pub(crate) event: Option<serde_json::Value>,
    pub(crate) turn: Option<u64>,
    /// How the run ended, when it did.
    pub(crate) exit: Option<ExitRecord>,
}

impl Waited {
    pub(crate) fn reached(&self) -> bool {
        self.status == "reached"
    }

    /// The answer of the turn a `task_complete` wait reached, if the host
    /// found one (see [`crate::control::answer`]).
    pub(crate) fn answer(&self) -> Option<String> {
        let event = self.event.as_ref().filter(|e| e["type"] == "task_complete")?;
        event.get("answer")?.as_str().map(str::to_string)
    }
}

/// A wait, set up: the run it watches and what it has seen so far.
pub(crate) struct Wait<'a> {
    view: &'a SessionView,
    until: Until,
    target: Option<Target>,
    run: String,
    model: Model,
    offset: u64,
    /// The run waited on is the host's current one.
    live: bool,
    /// The turn was decided here (`Turn::Current`), not named.
    decided: bool,
}

impl<'a> Wait<'a> {
    /// Reads what the session's current (or last) run has said so far.
    pub(crate) fn new(
        view: &'a SessionView,
        until: Until,
        turn: Turn,
    ) -> Result<Wait<'a>, CliError> {
        Self::build(view, until, turn, None)
    }

    /// The same wait on run `run` only: a wait that resumes (`wait
    /// --host` after its connection dropped) stays on the run it began
    /// on, and ends `exited` when that run has ended meanwhile.
    pub(crate) fn on_run(
        view: &'a SessionView,
        until: Until,
        turn: Turn,
        run: &str,
    ) -> Result<Wait<'a>, CliError> {
        Self::build(view, until, turn, Some(run))
    }

    fn build(
        view: &'a SessionView,
        until: Until,
        turn: Turn,
        pinned: Option<&str>,
    ) -> Result<Wait<'a>, CliError> {
        let (until, turn) = match (turn, until) {
            (Turn::Current, Until::TurnComplete(n)) => (Until::TaskComplete, Turn::Number(n)),
            (_, Until::TurnComplete(_)) => {
                return Err(CliError::usage(
                    "--until turn_complete:N names its turn: --message and --turn go with \
                     --until task_complete",
                ));
            }
            (turn, until) => (until, turn),
        };
        let until = match (&turn, until) {
            (Turn::Current, until) => until,
            (_, Until::TaskComplete | Until::Exit) => Until::TaskComplete,
            _ => {
                return Err(CliError::usage("--message and --turn go with --until task_complete"));
            }
        };
        let decided = turn == Turn::Current;
        let (history, offset) = events::read_all_with_offset(&view.paths.events())?;
        let current = match (&view.liveness, &view.record) {
            (Liveness::Live, Some(record)) => Some(record.run.clone()),
            _ => None,
        };
        let run = match (pinned, &current) {
            (Some(run), _) => run.to_string(),
            (None, Some(run)) => run.clone(),
            (None, None) => last_run(&history).ok_or_else(|| {
                CliError::failure(format!("session {} has never started", view.paths.id))
            })?,
        };
        let live = current.as_deref() == Some(run.as_str());
        let mut model = Model::default();
        for event in history.iter().filter(|e| e.header.run == run) {
            model.apply(event);
        }
        if model.state.is_none() && live {
            model.state = view.record.as_ref().map(|r| r.state.state);
        }
        let target = match &until {
            Until::TaskComplete => Some(task_target(&turn, view, &model)?),
            _ => None,
        };
        Ok(Wait { view, until, target, run, model, offset, live, decided })
    }

    /// The arguments of `reins wait` that wait for the very same thing
    /// later: its run, and the turn it decided on (never a later one).
    pub(crate) fn resume_args(&self) -> Vec<String> {
        let mut out = vec!["--resume-run".to_string(), self.run.clone()];
        if self.decided {
            match &self.target {
                Some(Target::Turn(n)) => out.extend(["--turn".to_string(), n.to_string()]),
                Some(Target::Message(id)) => out.extend(["--message".to_string(), id.clone()]),
                None => {}
            }
        }
        out
    }

    /// The condition, in words (`task_complete (message 3f2a…)`).
    pub(crate) fn describe(&self) -> String {
        describe(&self.until, self.target.as_ref())
    }

    /// The session's state as last seen.
    pub(crate) fn state(&self) -> Option<State> {
        self.model.state
    }

    /// Waits, for at most `timeout`; `on_state` hears every state the
    /// session passes through meanwhile.
    pub(crate) async fn until(
        mut self,
        timeout: Option<Duration>,
        on_state: impl Fn(Option<State>),
    ) -> Result<Waited, CliError> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let until = self.until.clone();
        let target = self.target.clone();
        let view = self.view;
        let run = self.run.clone();
        let model = &mut self.model;
        let offset = self.offset;
        let live = self.live;
        let wait = async {
            let mut verdict = judge(&until, target.as_ref(), model);
            if !matches!(verdict, Verdict::Pending) {
                return Ok(verdict);
            }
            if !live {
                return Ok(ended(model));
            }
            let mut stream = EventStream::open(&view.paths, offset);
            if let Until::Idle(quiet) = until {
                return wait_idle(view, &mut stream, &run, quiet).await;
            }
            while let Some(event) = stream.next().await? {
                if event.header.run != run {
                    continue;
                }
                model.apply(&event);
                on_state(model.state);
                verdict = judge(&until, target.as_ref(), model);
                if let Verdict::Reached { event: None, turn } = verdict {
                    verdict = Verdict::Reached { event: Some(Box::new(event)), turn };
                }
                if !matches!(verdict, Verdict::Pending) {
                    return Ok(verdict);
                }
            }
            Ok::<_, CliError>(ended(model))
        };
        let verdict = match deadline {
            Some(at) => tokio::time::timeout_at(at, wait).await.ok(),
            None => Some(wait.await),
        };
        let mut waited = Waited {
            until: describe(&until, target.as_ref()),
            run: run.clone(),
            status: String::new(),
            event: None,
            turn: None,
            exit: None,
        };
        match verdict {
            None => waited.status = "timeout".into(),
            Some(verdict) => match verdict? {
                Verdict::Reached { event, turn } => {
                    waited.status = "reached".into();
                    waited.turn = turn;
                    waited.event = event.and_then(|e| serde_json::from_str(&e.raw).ok());
                    if until == Until::Exit {
                        waited.exit =
                            ExitRecord::read(&view.paths.exit_record()).filter(|e| e.run == run);
                    }
                }
                Verdict::Failed { status } => {
                    waited.status = status;
                    waited.exit =
                        ExitRecord::read(&view.paths.exit_record()).filter(|e| e.run == run);
                    waited.event = exit_event(view, &run);
                }
                Verdict::Pending => unreachable!("a wait ends reached or failed"),
            },
        }
        Ok(waited)
    }
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
        Until::TaskComplete | Until::TurnComplete(_) => {
            let named;
            let target = match (until, target) {
                (_, Some(target)) => target,
                (Until::TurnComplete(n), None) => {
                    named = Target::Turn(*n);
                    &named
                }
                _ => unreachable!("task_complete has a target"),
            };
            let turn = match target {
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
fn task_target(which: &Turn, view: &SessionView, model: &Model) -> Result<Target, CliError> {
    match which {
        Turn::Number(n) => return Ok(Target::Turn(*n)),
        Turn::Message(id) => return Ok(Target::Message(id.clone())),
        Turn::Current => {}
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
        (Until::TurnStarted(n), _) => format!("turn_started:{n}"),
        (Until::TurnComplete(n), _) => format!("turn_complete:{n}"),
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
