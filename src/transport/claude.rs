//! Claude Code's stream-json mode: `claude -p --input-format stream-json
//! --output-format stream-json --verbose`, one JSON object per line each
//! way, as Claude Code 2.1.197 writes it.
//!
//! A user message goes in as `{"type":"user","message":{...}}`; Claude
//! answers with `system`, `assistant` (text and tool calls), `user` (tool
//! results) and finally one `result` per turn, carrying the turn's usage.
//! There is no handshake and no approval channel: tools that need
//! permission are allowed or refused by the permission mode Claude was
//! started with (`run --approve auto` starts it with
//! `--permission-mode bypassPermissions`), and refusals are reported in the
//! result. Like [`super::codex`], a state machine without I/O.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::adapter::TurnStatus;
use crate::state::{Observed, State};
use crate::transport::{Effect, first_lines};

/// The client side of one stream-json conversation.
#[derive(Debug, Default)]
pub(crate) struct ClaudeStream {
    /// The message whose turn is running, and whether Claude has started
    /// answering it (the proof of delivery).
    turn: Option<(String, bool)>,
    /// Claude's own session id, from `system/init`.
    session_id: Option<String>,
    turns: u64,
    pub(crate) last_error: Option<String>,
}

impl ClaudeStream {
    /// No handshake: Claude reads its first message when it comes.
    pub(crate) fn start() -> (ClaudeStream, Vec<Effect>) {
        (ClaudeStream::default(), vec![Effect::State(Observed::plain(State::Ready))])
    }

    pub(crate) fn can_start_turn(&self) -> bool {
        self.turn.is_none()
    }

    /// The running turn's id (reins numbers stream-json turns itself).
    pub(crate) fn active_turn(&self) -> Option<String> {
        self.turn.as_ref().map(|_| format!("turn-{}", self.turns))
    }

    /// Sends a user message. Delivered once Claude starts answering it.
    pub(crate) fn deliver(&mut self, message_id: &str, text: &str) -> Vec<Effect> {
        if self.turn.is_some() {
            return vec![Effect::Refused {
                message_id: message_id.into(),
                reason: "stream-json takes one message per turn; this one is running".into(),
            }];
        }
        self.turns += 1;
        self.turn = Some((message_id.to_string(), false));
        let line = json!({
            "type": "user",
            "message": { "role": "user", "content": [{ "type": "text", "text": text }] },
        });
        vec![
            Effect::Send(line.to_string()),
            Effect::Transcript(format!("› {}", first_lines(text, 20))),
            Effect::State(Observed::plain(State::Busy)),
        ]
    }

    /// Handles one line of Claude's output.
    pub(crate) fn on_line(&mut self, line: &str) -> Vec<Effect> {
        let value: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let shown: String = line.chars().take(200).collect();
                self.last_error = Some(format!("unreadable line from claude: {shown}"));
                return vec![Effect::Warning(format!(
                    "ignored an unreadable line from claude: {shown}"
                ))];
            }
        };
        let mut effects = self.started();
        let s = |p: &str| value.pointer(p).and_then(Value::as_str).unwrap_or_default();
        match s("/type") {
            "system" if s("/subtype") == "init" => {
                self.session_id =
                    value.get("session_id").and_then(Value::as_str).map(str::to_string);
            }
            "assistant" => {
                for block in value
                    .pointer("/message/content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let b = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or_default();
                    match b("type") {
                        "text" => effects
                            .push(Effect::Transcript(format!("• {}", first_lines(b("text"), 200)))),
                        "tool_use" => {
                            let input = block.get("input").cloned().unwrap_or(Value::Null);
                            let shown = input
                                .get("command")
                                .and_then(Value::as_str)
                                .map_or_else(|| input.to_string(), str::to_string);
                            effects.push(Effect::Transcript(format!("$ {}({shown})", b("name"))));
                        }
                        _ => {}
                    }
                }
            }
            "user" => {
                for block in value
                    .pointer("/message/content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                        let content = match block.get("content") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => String::new(),
                        };
                        for line in content.lines().take(10) {
                            effects.push(Effect::Transcript(format!("  {line}")));
                        }
                    }
                }
            }
            "result" => effects.extend(self.finish(&value)),
            _ => {}
        }
        effects
    }

    /// The first output after a message proves Claude took it.
    fn started(&mut self) -> Vec<Effect> {
        match self.turn.as_mut() {
            Some((message_id, started @ false)) => {
                *started = true;
                vec![Effect::Delivered {
                    message_id: message_id.clone(),
                    turn_id: format!("turn-{}", self.turns),
                }]
            }
            _ => Vec::new(),
        }
    }

    fn finish(&mut self, result: &Value) -> Vec<Effect> {
        let turn_id = format!("turn-{}", self.turns);
        self.turn = None;
        let is_error = result.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        let error = is_error.then(|| {
            result.get("result").and_then(Value::as_str).unwrap_or("the turn failed").to_string()
        });
        let usage = result.get("usage").unwrap_or(&Value::Null);
        let num = |k: &str| usage.get(k).and_then(Value::as_u64);
        let mut fields = BTreeMap::new();
        let mut put = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                fields.insert(k.to_string(), v.to_string());
            }
        };
        put("input_tokens", num("input_tokens"));
        put("output_tokens", num("output_tokens"));
        put("cached_tokens", num("cache_read_input_tokens"));
        put("total_tokens", num("input_tokens").zip(num("output_tokens")).map(|(i, o)| i + o));
        if let Some(ms) = result.get("duration_ms").and_then(Value::as_u64) {
            fields.insert("duration_s".into(), format!("{:.3}", ms as f64 / 1000.0));
        }
        if let Some(id) = &self.session_id {
            fields.insert("agent_session_id".into(), id.clone());
        }
        let mut effects = Vec::new();
        for denial in
            result.get("permission_denials").and_then(Value::as_array).into_iter().flatten()
        {
            let tool = denial.get("tool_name").and_then(Value::as_str).unwrap_or("a tool");
            effects.push(Effect::Transcript(format!("⚠ permission denied: {tool}")));
        }
        if let Some(error) = &error {
            self.last_error = Some(error.clone());
            effects.push(Effect::Transcript(format!("⚠ {error}")));
        }
        let status = if is_error { TurnStatus::Failed } else { TurnStatus::Completed };
        // The result's text is the turn's final message, as Claude gives it.
        if !is_error && let Some(text) = result.get("result").and_then(Value::as_str) {
            effects.push(Effect::Answer { text: text.to_string(), cut: 0 });
        }
        effects.push(Effect::Transcript(format!("─ {turn_id} ({})", status.as_str())));
        effects.push(Effect::Usage { turn_id: Some(turn_id.clone()), fields });
        effects.push(Effect::TurnCompleted { turn_id, status, error });
        effects.push(Effect::State(Observed::plain(State::Ready)));
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::transport::sent_json as sent;

    /// The recorded stream-json transcripts of the real CLI, replayed.
    #[test]
    fn a_recorded_tool_turn_is_read_end_to_end() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/claude-stream-json/tool_turn.jsonl");
        let (mut c, _) = ClaudeStream::start();
        let e = c.deliver("m1", "[[run:echo hi-from-bash]] run it");
        assert_eq!(
            sent(&e)[0]["message"]["content"][0]["text"],
            "[[run:echo hi-from-bash]] run it"
        );
        let mut effects = Vec::new();
        for line in std::fs::read_to_string(path).unwrap().lines() {
            effects.extend(c.on_line(line));
        }
        let delivered = effects.iter().filter(|e| matches!(e, Effect::Delivered { .. })).count();
        assert_eq!(delivered, 1, "delivered once, at the first output");
        let transcript: Vec<&str> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Transcript(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert!(transcript.contains(&"$ Bash(echo hi-from-bash)"), "{transcript:?}");
        assert!(transcript.contains(&"  hi-from-bash"), "{transcript:?}");
        assert!(transcript.contains(&"• Tool finished. Output: hi-from-bash"), "{transcript:?}");
        let answers: Vec<&Effect> =
            effects.iter().filter(|e| matches!(e, Effect::Answer { .. })).collect();
        assert_eq!(
            answers,
            [&Effect::Answer { text: "Tool finished. Output: hi-from-bash".into(), cut: 0 }],
            "the result's text, once"
        );
        let usage = effects.iter().find_map(|e| match e {
            Effect::Usage { fields, .. } => Some(fields.clone()),
            _ => None,
        });
        let usage = usage.expect("usage from the result");
        assert_eq!(usage["input_tokens"], "200");
        assert_eq!(usage["output_tokens"], "24");
        assert_eq!(usage["agent_session_id"], "78605eff-e44c-4356-bee9-f00464284bc1");
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::TurnCompleted { status: TurnStatus::Completed, .. }))
        );
        assert!(c.can_start_turn());
    }

    #[test]
    fn one_message_per_turn_and_errors_fail_the_turn() {
        let (mut c, _) = ClaudeStream::start();
        c.deliver("m1", "go");
        assert!(matches!(&c.deliver("m2", "too")[0], Effect::Refused { .. }));
        let e = c.on_line(r#"{"type":"result","is_error":true,"result":"API Error: 500 mock error 500","usage":{}}"#);
        assert!(!e.iter().any(|e| matches!(e, Effect::Answer { .. })), "an error is no answer");
        assert!(e.iter().any(|e| matches!(
            e,
            Effect::TurnCompleted { status: TurnStatus::Failed, error: Some(_), .. }
        )));
        let e = c.on_line("not json");
        assert!(matches!(e[0], Effect::Warning(_)));
    }
}
