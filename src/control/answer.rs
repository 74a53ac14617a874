//! The answer of a turn: what the agent answered, as the host recorded it
//! in the turn's `task_complete` event (its final message on a protocol
//! transport; on a screen, the text it drew for the turn, found by the
//! profile's `[answer]` rules).
//!
//! `reins answer` prints it, `wait --until task_complete --json` carries
//! it; both read it here.

use serde::Serialize;

use crate::control::lookup::SessionView;
use crate::error::CliError;
use crate::store::events::{self, EventKind, EventLine};

/// Which turn's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Which {
    /// The last completed turn.
    Last,
    /// Turn N of the latest run that has one.
    Turn(u64),
    /// The turn this message opened.
    Message(String),
}

/// A turn's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Answer {
    pub(crate) id: String,
    pub(crate) run: String,
    pub(crate) turn: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message_id: Option<String>,
    /// How the turn ended: `completed`, `failed`, `interrupted`.
    pub(crate) outcome: String,
    pub(crate) answer: String,
    /// How it was found: `codex-app-server` (the turn's last
    /// `agentMessage` item), `claude-stream-json` (the `result` event's
    /// text), `acp` (the turn's last agent message, its chunks joined),
    /// `screen` (the adapter's `[answer]` rules over what the agent drew).
    pub(crate) source: String,
    /// Bytes of the answer the host left out (it keeps 64 KiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cut: Option<u64>,
}

/// The answer a `task_complete` event carries, if it carries one.
pub(crate) fn of_event(id: &str, line: &EventLine) -> Option<Answer> {
    let EventKind::TaskComplete { status, message_id, answer, answer_source, answer_cut, .. } =
        &line.kind
    else {
        return None;
    };
    Some(Answer {
        id: id.to_string(),
        run: line.header.run.clone(),
        turn: line.header.turn?,
        message_id: message_id.clone(),
        outcome: status.as_str().to_string(),
        answer: answer.clone()?,
        source: answer_source.clone().unwrap_or_else(|| "unknown".into()),
        cut: *answer_cut,
    })
}

/// The answer of `which` turn of `view`'s session.
pub(crate) fn find(view: &SessionView, which: &Which) -> Result<Answer, CliError> {
    let id = &view.paths.id;
    let lines = events::read_all(&view.paths.events())
        .map_err(|err| CliError::failure(format!("cannot read the events of {id}: {err}")))?;
    let wait_hint = |turn: u64| {
        format!("wait for it: reins wait --id {id} --turn {turn} --until task_complete")
    };
    let (run, turn) = match which {
        Which::Last => {
            let Some(done) =
                lines.iter().rev().find(|l| matches!(l.kind, EventKind::TaskComplete { .. }))
            else {
                return Err(match lines.iter().rev().find(|l| started(l).is_some()) {
                    Some(l) => not_complete(id, l.header.turn.unwrap_or(0))
                        .hint(wait_hint(l.header.turn.unwrap_or(0))),
                    None => CliError::failure(format!("session {id} has no turns yet"))
                        .hint(format!("give it a task: reins send --id {id} 'TEXT'")),
                });
            };
            (done.header.run.clone(), done.header.turn.unwrap_or(0))
        }
        Which::Turn(n) => {
            let Some(run) = lines
                .iter()
                .rev()
                .find(|l| l.header.turn == Some(*n) && started(l).is_some())
                .map(|l| l.header.run.clone())
            else {
                let latest = lines.iter().rev().find_map(|l| started(l).and(l.header.turn));
                return Err(CliError::failure(format!("session {id} has no turn {n}")).hint(
                    match latest {
                        Some(m) => format!("its latest turn is {m}"),
                        None => format!("it has no turns yet: reins send --id {id} 'TEXT'"),
                    },
                ));
            };
            (run, *n)
        }
        Which::Message(message) => {
            let opened = lines.iter().rev().find(|l| match &l.kind {
                EventKind::TurnStarted { message_id: Some(m) }
                | EventKind::Delivered { message_id: m, .. } => m == message,
                _ => false,
            });
            match opened.and_then(|l| l.header.turn.map(|t| (l.header.run.clone(), t))) {
                Some(found) => found,
                None => {
                    let known = lines.iter().any(|l| match &l.kind {
                        EventKind::Queued { message_id, .. } => message_id == message,
                        _ => false,
                    });
                    return Err(if known {
                        CliError::failure(format!(
                            "message {message} of {id} has not started a turn yet"
                        ))
                        .hint(format!(
                            "wait for it: reins wait --id {id} --message {message} \
                             --until task_complete"
                        ))
                    } else {
                        CliError::failure(format!("session {id} has no message {message}"))
                            .hint(format!("the messages it got: reins events --id {id}"))
                    });
                }
            }
        }
    };
    let in_turn = |l: &&EventLine| l.header.run == run && l.header.turn == Some(turn);
    let Some(done) =
        lines.iter().filter(in_turn).find(|l| matches!(l.kind, EventKind::TaskComplete { .. }))
    else {
        let exited =
            lines.iter().any(|l| l.header.run == run && matches!(l.kind, EventKind::Exited { .. }));
        if exited {
            return Err(CliError::failure(format!(
                "turn {turn} of {id} never completed: the session ended first"
            )));
        }
        return Err(not_complete(id, turn).hint(wait_hint(turn)));
    };
    of_event(id, done).ok_or_else(|| {
        let status = match &done.kind {
            EventKind::TaskComplete { status, .. } => status.as_str(),
            _ => "?",
        };
        CliError::failure(format!("turn {turn} of {id} ({status}) has no answer"))
            .hint(format!("what it printed: reins logs --id {id}"))
    })
}

fn not_complete(id: &str, turn: u64) -> CliError {
    CliError::failure(format!("turn {turn} of {id} is not complete yet"))
}

/// The message of a `turn_started` line (`Some(None)`: no message).
fn started(line: &EventLine) -> Option<Option<&str>> {
    match &line.kind {
        EventKind::TurnStarted { message_id } => Some(message_id.as_deref()),
        _ => None,
    }
}
