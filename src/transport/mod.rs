//! Structured transports: agents that speak a protocol on stdin/stdout
//! instead of drawing a terminal UI (codex app-server, claude stream-json,
//! the Agent Client Protocol). Each protocol is a state machine
//! without I/O that turns the agent's lines into [`Effect`]s; the session
//! does the I/O and keeps the events, turns and transcript.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::adapter::TurnStatus;
use crate::ipc::Decision;
use crate::state::Observed;

pub(crate) mod acp;
pub(crate) mod claude;
pub(crate) mod codex;
pub(crate) mod stdio;

#[cfg(test)]
mod acp_schema;
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
    /// The agent's latest whole message in the running turn, exactly as
    /// the protocol gave it (the last one before the turn ends is the
    /// turn's answer); `cut`: bytes the transport left out.
    Answer { text: String, cut: u64 },
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

/// Longest transcript entry taken from an agent's message (the screen and
/// `transcript.log` get no more of one answer or one command's output).
pub(crate) const MAX_SHOWN: usize = 64 << 10;

/// Longest one-line text taken from an agent (an error, a warning, a
/// command): it goes into events and `session.json`.
pub(crate) const MAX_FIELD: usize = 4 << 10;

impl Effect {
    /// The effect with the agent's text in it cut to [`MAX_SHOWN`] (the
    /// transcript) or [`MAX_FIELD`] (what events and the registry keep).
    /// Ids and lines for the agent are left whole: they must match.
    fn clipped(self) -> Effect {
        let field = |s: String| clip(&s, MAX_FIELD).into_owned();
        match self {
            Effect::Transcript(text) => Effect::Transcript(clip(&text, MAX_SHOWN).into_owned()),
            // Cut without a mark: the event says how much was left out.
            Effect::Answer { mut text, cut } if text.len() > MAX_SHOWN => {
                let mut end = MAX_SHOWN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let dropped = (text.len() - end) as u64;
                text.truncate(end);
                Effect::Answer { text, cut: cut + dropped }
            }
            answer @ Effect::Answer { .. } => answer,
            Effect::Warning(text) => Effect::Warning(field(text)),
            Effect::Refused { message_id, reason } => {
                Effect::Refused { message_id, reason: field(reason) }
            }
            Effect::TurnCompleted { turn_id, status, error } => {
                Effect::TurnCompleted { turn_id, status, error: error.map(field) }
            }
            Effect::RateLimited { until, message } => {
                Effect::RateLimited { until, message: message.map(field) }
            }
            Effect::ApprovalAsked { detail } => Effect::ApprovalAsked { detail: field(detail) },
            Effect::Disconnected { source, message } => {
                Effect::Disconnected { source, message: field(message) }
            }
            Effect::Usage { turn_id, fields } => Effect::Usage {
                turn_id,
                fields: fields.into_iter().map(|(k, v)| (k, field(v))).collect(),
            },
            other @ (Effect::Send(_)
            | Effect::State(_)
            | Effect::Delivered { .. }
            | Effect::Steered { .. }
            | Effect::TurnStarted { .. }) => other,
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, ending in
/// `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut]).into()
}

/// The first `n` lines of `text`, joined for the transcript (indented),
/// and how many more there were. Counts the rest without collecting it:
/// an agent's text may be millions of lines.
pub(crate) fn first_lines(text: &str, n: usize) -> String {
    let mut lines = text.lines();
    let shown: Vec<&str> = lines.by_ref().take(n).collect();
    match lines.count() {
        0 => shown.join("\n  "),
        more => format!("{}\n  … ({more} more lines)", shown.join("\n  ")),
    }
}

/// The protocol a session speaks.
#[derive(Debug)]
pub(crate) enum Protocol {
    Codex(Box<codex::CodexAppServer>),
    Claude(claude::ClaudeStream),
    Acp(Box<acp::Acp>),
}

impl Protocol {
    /// Handles one line from the agent. What it says is cut to size before
    /// it reaches the transcript, the events or the registry.
    pub(crate) fn on_line(&mut self, line: &str, now: Instant) -> Vec<Effect> {
        let effects = match self {
            Protocol::Codex(p) => p.on_line(line, now),
            Protocol::Claude(p) => p.on_line(line),
            Protocol::Acp(p) => p.on_line(line, now),
        };
        effects.into_iter().map(Effect::clipped).collect()
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
            Protocol::Acp(p) => p.deliver(message_id, text, steer, now),
        }
    }

    /// Interrupts the running turn; no effects if the protocol cannot.
    pub(crate) fn interrupt(&mut self, now: Instant) -> Vec<Effect> {
        match self {
            Protocol::Codex(p) => p.interrupt(now),
            Protocol::Claude(_) => Vec::new(),
            Protocol::Acp(p) => p.interrupt(now),
        }
    }

    pub(crate) fn answer(&mut self, decision: Decision) -> Result<Vec<Effect>, String> {
        match self {
            Protocol::Codex(p) => p.answer(decision),
            Protocol::Claude(_) => Err("stream-json has no approval requests: claude allows or refuses tools by its permission mode (run --approve auto)".into()),
            Protocol::Acp(p) => p.answer(decision),
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self {
            Protocol::Codex(p) => p.next_deadline(),
            Protocol::Claude(_) => None,
            Protocol::Acp(p) => p.next_deadline(),
        }
    }

    pub(crate) fn on_deadline(&mut self, now: Instant) -> Vec<Effect> {
        match self {
            Protocol::Codex(p) => p.on_deadline(now),
            Protocol::Claude(_) => Vec::new(),
            Protocol::Acp(p) => p.on_deadline(now),
        }
    }

    pub(crate) fn can_start_turn(&self) -> bool {
        match self {
            Protocol::Codex(p) => p.can_start_turn(),
            Protocol::Claude(p) => p.can_start_turn(),
            Protocol::Acp(p) => p.can_start_turn(),
        }
    }

    pub(crate) fn has_active_turn(&self) -> bool {
        match self {
            Protocol::Codex(p) => p.active_turn().is_some(),
            Protocol::Claude(p) => p.active_turn().is_some(),
            Protocol::Acp(p) => p.active_turn().is_some(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_on_a_character_boundary_and_marks_the_cut() {
        assert_eq!(clip("short", 10), "short");
        // "é" is two bytes: a cut at byte 4 would split the second one.
        let clipped = clip("éééééé", 6);
        assert_eq!(clipped, "é…", "{clipped}");
        assert!(clipped.len() <= 6);
        assert_eq!(clip("😀😀", 3), "…");
    }

    #[test]
    fn first_lines_counts_the_rest_without_keeping_it() {
        assert_eq!(first_lines("a\nb", 5), "a\n  b");
        let many = "x\n".repeat(1_000_000);
        assert_eq!(first_lines(&many, 2), "x\n  x\n  … (999998 more lines)");
    }

    #[test]
    fn what_the_agent_says_is_clipped_but_ids_are_not() {
        let long = "é".repeat(MAX_SHOWN);
        let Effect::Transcript(text) = Effect::Transcript(long.clone()).clipped() else {
            unreachable!()
        };
        assert!(text.len() <= MAX_SHOWN && text.ends_with('…'));
        let Effect::Warning(text) = Effect::Warning(long.clone()).clipped() else { unreachable!() };
        assert!(text.len() <= MAX_FIELD);
        let started = Effect::TurnStarted { turn_id: long.clone() };
        assert_eq!(started.clone().clipped(), started, "an id must still match");
    }
}
