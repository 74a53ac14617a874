//! Structured transports: agents that speak a protocol on stdin/stdout
//! instead of drawing a terminal UI. Each protocol is a state machine
//! without I/O that turns the agent's lines into [`Effect`]s; the session
//! does the I/O and keeps the events, turns and transcript.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::adapter::TurnStatus;
use crate::ipc::Decision;
use crate::state::Observed;

pub(crate) mod claude;
pub(crate) mod codex;
pub(crate) mod stdio;

#[cfg(test)]
mod schema;

/// What the session should do or record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    /// Write this line to the server.
    Send(String),
    /// The session reads this state now.
    State(Observed),
    /// Lines for the synthesized transcript (what `pane` and `logs` show).
    Transcript(String),
    /// A message went in: its turn started (`turn_id` is the server's).
    Delivered { message_id: String, turn_id: String },
    /// A message went into the running turn (`turn/steer`).
    Steered { message_id: String, turn_id: String },
    /// A message could not be delivered.
    Refused { message_id: String, reason: String },
    /// A turn reins did not ask for started (the server's own).
    TurnStarted { turn_id: String },
    /// A turn ended.
    TurnCompleted { turn_id: String, status: TurnStatus, error: Option<String> },
    /// The agent hit a usage or rate limit; `until` (unix seconds) is when
    /// it resets, if the server said.
    RateLimited { until: Option<i64>, message: Option<String> },
    /// Token counts for a turn.
    Usage { turn_id: Option<String>, fields: BTreeMap<String, String> },
    /// The server asks for an approval.
    ApprovalAsked { detail: String },
    /// The connection failed for good (`will_retry` false) or a request
    /// timed out: the session is disconnected.
    Disconnected { source: String, message: String },
    /// Something the server wants a person to know.
    Warning(String),
}

/// The protocol a session speaks.
#[derive(Debug)]
pub(crate) enum Protocol {
    Codex(Box<codex::CodexAppServer>),
    Claude(claude::ClaudeStream),
}

impl Protocol {
    pub(crate) fn on_line(&mut self, line: &str, now: Instant) -> Vec<Effect> {
        match self {
            Protocol::Codex(p) => p.on_line(line, now),
            Protocol::Claude(p) => p.on_line(line),
        }
    }

    /// Starts a turn with `text`, or (`steer`) adds it to the running one.
    pub(crate) fn deliver(
        &mut self,
        message_id: &str,
        text: &str,
        steer: bool,
        now: Instant,
    ) -> Vec<Effect> {
        match self {
            Protocol::Codex(p) => p.deliver(message_id, text, steer, now),
            Protocol::Claude(p) => p.deliver(message_id, text),
        }
    }

    /// Interrupts the running turn; no effects if the protocol cannot.
    pub(crate) fn interrupt(&mut self, now: Instant) -> Vec<Effect> {
        match self {
            Protocol::Codex(p) => p.interrupt(now),
            Protocol::Claude(_) => Vec::new(),
        }
    }

    pub(crate) fn answer(&mut self, decision: Decision) -> Result<Vec<Effect>, String> {
        match self {
            Protocol::Codex(p) => p.answer(decision),
            Protocol::Claude(_) => Err("stream-json has no approval requests: claude allows or refuses tools by its permission mode (run --approve auto)".into()),
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self {
            Protocol::Codex(p) => p.next_deadline(),
            Protocol::Claude(_) => None,
        }
    }

    pub(crate) fn on_deadline(&mut self, now: Instant) -> Vec<Effect> {
        match self {
            Protocol::Codex(p) => p.on_deadline(now),
            Protocol::Claude(_) => Vec::new(),
        }
    }

    pub(crate) fn can_start_turn(&self) -> bool {
        match self {
            Protocol::Codex(p) => p.can_start_turn(),
            Protocol::Claude(p) => p.can_start_turn(),
        }
    }

    pub(crate) fn has_active_turn(&self) -> bool {
        match self {
            Protocol::Codex(p) => p.active_turn().is_some(),
            Protocol::Claude(p) => p.active_turn().is_some(),
        }
    }
}

/// The JSON lines among `effects`, parsed (for tests of what a protocol
/// sends).
#[cfg(test)]
pub(crate) fn sent_json(effects: &[Effect]) -> Vec<serde_json::Value> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(line) => Some(serde_json::from_str(line).unwrap()),
            _ => None,
        })
        .collect()
}
