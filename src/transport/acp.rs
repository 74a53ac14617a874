//! The Agent Client Protocol (ACP, protocol version 1): JSON-RPC 2.0 over
//! the agent's stdio, one object per line, as Gemini CLI 0.61.0
//! (`gemini --acp`), OpenCode 1.18.33 (`opencode acp`) and Qwen Code
//! 0.24.4 (`qwen --acp`) speak it.
//!
//! reins is the client: `initialize` (it declares no file-system or
//! terminal capability, so the agent uses its own tools), `authenticate`
//! only when `session/new` answers that authentication is required and a
//! credential for one of the agent's methods is present, `session/new`
//! with the session's cwd, then one `session/prompt` per delivered message:
//! one turn, ended by the response's `stopReason` (`end_turn` completed,
//! `cancelled` interrupted, `refusal` / `max_tokens` / `max_turn_requests`
//! failed with the reason) or by an error response (failed, with the
//! agent's message). `session/update` notifications become the transcript
//! (messages, thoughts, tool calls, plans) and the turn's usage;
//! `session/request_permission` is an approval request answered with the
//! option of the kind `reins approve` asks for; `reins interrupt` is
//! `session/cancel`.
//!
//! The types are reins' own serde structs, checked against the protocol's
//! JSON schema (schema v1 1.21.0, vendored in `tests/fixtures/acp-schema/`)
//! by the contract tests below: every payload reins builds and every line
//! recorded from the three real agents. The `agent-client-protocol` crate
//! (5.2.0, Apache-2.0) was not taken: it brings its own JSON-RPC stack and
//! async plumbing (futures, futures-concurrency, anyhow) beside the one the
//! host already has, and it and its schema crate turn on serde_json's
//! `preserve_order`, which would change the key order of every JSON value
//! reins writes.
//!
//! Like [`super::codex`], a state machine without I/O: the session hands
//! it every line and every request of its own and does what the returned
//! [`Effect`]s say. What the agent sends is untrusted: every collection it
//! can grow is bounded, and a line that does not parse is a warning.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::adapter::TurnStatus;
use crate::ipc::Decision;
use crate::state::{BlockedKind, Observed, State};
use crate::transport::{Effect, MAX_SHOWN, first_lines};

/// The protocol version reins speaks.
pub(crate) const PROTOCOL_VERSION: u16 = 1;

/// JSON-RPC error code of "authentication required" (ACP reserves it).
const AUTH_REQUIRED: i64 = -32000;

/// Permission requests kept waiting at once: an agent asks one at a time
/// per tool call, so more is an agent flooding the host, and is refused.
const MAX_APPROVALS: usize = 64;

/// Tool calls remembered in one turn (their titles, for the transcript).
const MAX_TOOL_CALLS: usize = 1024;

/// How the connection is set up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) client_version: String,
    pub(crate) cwd: String,
    /// How long `initialize`, `authenticate` and `session/new` may wait for
    /// their answers (a prompt takes as long as its turn).
    pub(crate) request_timeout: Duration,
    /// The agent's sign-in methods reins may pick, in order of preference:
    /// those whose credentials are present (see `[acp] auth` in profiles).
    pub(crate) credentials: Vec<String>,
}

// ---- what reins sends ------------------------------------------------

/// `initialize` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitializeRequest {
    pub(crate) protocol_version: u16,
    pub(crate) client_capabilities: ClientCapabilities,
    pub(crate) client_info: Implementation,
}

/// What reins implements for the agent: nothing, so it uses its own tools.
#[derive(Debug, Serialize)]
pub(crate) struct ClientCapabilities {
    pub(crate) fs: FileSystemCapabilities,
    pub(crate) terminal: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileSystemCapabilities {
    pub(crate) read_text_file: bool,
    pub(crate) write_text_file: bool,
}

/// A program's name and version (`clientInfo`, `agentInfo`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Implementation {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) version: String,
}

/// `authenticate` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticateRequest {
    pub(crate) method_id: String,
}

/// `session/new` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewSessionRequest {
    pub(crate) cwd: String,
    /// reins hands the agent no MCP servers of its own.
    pub(crate) mcp_servers: Vec<Value>,
}

/// `session/prompt` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptRequest {
    pub(crate) session_id: String,
    pub(crate) prompt: Vec<TextBlock>,
}

/// A text content block.
#[derive(Debug, Serialize)]
pub(crate) struct TextBlock {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

/// `session/cancel` params (a notification).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelNotification {
    pub(crate) session_id: String,
}

/// The answer to `session/request_permission`.
#[derive(Debug, Serialize)]
pub(crate) struct RequestPermissionResponse {
    pub(crate) outcome: PermissionOutcome,
}

#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum PermissionOutcome {
    /// Nobody chose (the turn was cancelled).
    Cancelled,
    Selected {
        #[serde(rename = "optionId")]
        option_id: String,
    },
}

// ---- what the agent sends --------------------------------------------

/// `initialize` result (the parts reins reads).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResponse {
    protocol_version: Option<i64>,
    #[serde(default)]
    agent_info: Option<Implementation>,
    #[serde(default)]
    auth_methods: Vec<AuthMethod>,
}

#[derive(Debug, Deserialize)]
struct AuthMethod {
    id: String,
}

/// `session/new` result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSessionResponse {
    session_id: String,
}

/// `session/prompt` result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptResponse {
    stop_reason: String,
    /// Token usage of the turn (OpenCode; `unstable_end_turn_token_usage`).
    #[serde(default)]
    usage: Option<TokenUsage>,
    #[serde(default, rename = "_meta")]
    meta: Option<Value>,
}

/// Token counts as ACP names them (the prompt result's `usage`, Qwen
/// Code's `_meta.usage` on message chunks).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    thought_tokens: Option<u64>,
    cached_read_tokens: Option<u64>,
}

/// `session/update` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionNotification {
    session_id: String,
    update: SessionUpdate,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "sessionUpdate", rename_all = "snake_case")]
enum SessionUpdate {
    AgentMessageChunk {
        content: ContentBlock,
        #[serde(default, rename = "_meta")]
        meta: Option<Value>,
    },
    AgentThoughtChunk {
        content: ContentBlock,
    },
    ToolCall(ToolCall),
    ToolCallUpdate(ToolCall),
    Plan {
        #[serde(default)]
        entries: Vec<PlanEntry>,
    },
    UsageUpdate {
        used: Option<u64>,
        size: Option<u64>,
        #[serde(default)]
        cost: Option<Cost>,
    },
    /// Replayed user messages, available commands, modes, config options,
    /// session info: nothing reins shows.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        text: String,
    },
    /// Images, audio, resources: not shown.
    #[serde(other)]
    Other,
}

/// A tool call or an update of one (every field but the id may be absent
/// from an update).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolCall {
    tool_call_id: String,
    title: Option<String>,
    kind: Option<String>,
    status: Option<String>,
    #[serde(default)]
    content: Option<Vec<ToolCallContent>>,
    #[serde(default)]
    raw_input: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolCallContent {
    Content {
        content: ContentBlock,
    },
    Diff {
        path: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct PlanEntry {
    content: String,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Cost {
    amount: f64,
    currency: String,
}

/// `session/request_permission` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestPermissionRequest {
    session_id: String,
    tool_call: ToolCall,
    options: Vec<PermissionOption>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PermissionOption {
    option_id: String,
    name: String,
    kind: String,
}

// ---- the state machine -----------------------------------------------

#[derive(Debug, Clone)]
enum Pending {
    Initialize,
    Authenticate,
    NewSession,
    Prompt,
}

#[derive(Debug, Clone)]
struct Request {
    pending: Pending,
    method: &'static str,
    /// None for a prompt: a turn takes as long as it takes.
    deadline: Option<Instant>,
}

/// The running turn.
#[derive(Debug)]
struct Turn {
    id: String,
    /// The prompt's request id.
    request: i64,
    started: Instant,
    /// `session/cancel` was sent.
    cancelled: bool,
    /// When a warning is due if the cancelled turn has not ended.
    cancel_deadline: Option<Instant>,
    /// Token counts summed from the chunks' `_meta.usage` (Qwen Code).
    chunk_usage: Option<Counts>,
    /// Tool calls of this turn: their latest title and kind.
    tools: HashMap<String, (Option<String>, Option<String>)>,
}

/// Token counts of a turn.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    input: Option<u64>,
    output: Option<u64>,
    total: Option<u64>,
    reasoning: Option<u64>,
    cached: Option<u64>,
}

impl Counts {
    fn from_usage(u: &TokenUsage) -> Counts {
        Counts {
            input: u.input_tokens,
            output: u.output_tokens,
            total: u.total_tokens,
            reasoning: u.thought_tokens,
            cached: u.cached_read_tokens,
        }
    }

    fn add(self, other: Counts) -> Counts {
        let sum = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        Counts {
            input: sum(self.input, other.input),
            output: sum(self.output, other.output),
            total: sum(self.total, other.total),
            reasoning: sum(self.reasoning, other.reasoning),
            cached: sum(self.cached, other.cached),
        }
    }

    /// Whether the counts say anything: an agent that reports zeros for
    /// a turn that never reached the model (OpenCode, when cancelled) says
    /// nothing.
    fn any(&self) -> bool {
        [self.input, self.output, self.total].iter().any(|n| n.is_some_and(|n| n > 0))
    }
}

/// A permission request waiting for an answer.
#[derive(Debug, Clone)]
struct Asked {
    id: Value,
    options: Vec<PermissionOption>,
}

/// Text streamed in chunks, shown once the message ends.
#[derive(Debug, Default)]
struct Stream {
    text: String,
    /// Bytes dropped past [`MAX_SHOWN`].
    dropped: usize,
}

impl Stream {
    fn push(&mut self, chunk: &str) {
        let room = MAX_SHOWN.saturating_sub(self.text.len());
        if chunk.len() <= room {
            self.text.push_str(chunk);
        } else {
            let mut cut = room;
            while !chunk.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&chunk[..cut]);
            self.dropped += chunk.len() - cut;
        }
    }

    /// The text and the bytes dropped past [`MAX_SHOWN`]; None if blank.
    fn take_whole(&mut self) -> Option<(String, usize)> {
        let text = std::mem::take(&mut self.text);
        let dropped = std::mem::take(&mut self.dropped);
        (!text.trim().is_empty()).then_some((text, dropped))
    }

    fn take(&mut self) -> Option<String> {
        let mut text = std::mem::take(&mut self.text);
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            text.push_str(&format!(" … ({dropped} more bytes)"));
        }
        (!text.trim().is_empty()).then_some(text)
    }
}

/// The client side of one ACP connection.
#[derive(Debug)]
pub(crate) struct Acp {
    settings: Settings,
    next_id: i64,
    requests: HashMap<i64, Request>,
    /// The agent's sign-in methods (from `initialize`).
    auth_methods: Vec<String>,
    authenticated: bool,
    session_id: Option<String>,
    turn: Option<Turn>,
    turns: u64,
    approvals: VecDeque<Asked>,
    message: Stream,
    thought: Stream,
    /// The last `usage_update` (context window used, its size, the cost).
    context: Option<(Option<u64>, Option<u64>, Option<String>)>,
    /// The agent's name and version from `initialize`: set once the
    /// handshake's first step succeeded.
    pub(crate) agent: Option<String>,
    /// The last thing that went wrong, for `status`.
    pub(crate) last_error: Option<String>,
}

impl Acp {
    /// Starts the handshake (`initialize`).
    pub(crate) fn start(settings: Settings, now: Instant) -> (Acp, Vec<Effect>) {
        let mut me = Acp {
            settings,
            next_id: 0,
            requests: HashMap::new(),
            auth_methods: Vec::new(),
            authenticated: false,
            session_id: None,
            turn: None,
            turns: 0,
            approvals: VecDeque::new(),
            message: Stream::default(),
            thought: Stream::default(),
            context: None,
            agent: None,
            last_error: None,
        };
        let params = InitializeRequest {
            protocol_version: PROTOCOL_VERSION,
            client_capabilities: ClientCapabilities {
                fs: FileSystemCapabilities { read_text_file: false, write_text_file: false },
                terminal: false,
            },
            client_info: Implementation {
                name: "reins".into(),
                title: Some("reins".into()),
                version: me.settings.client_version.clone(),
            },
        };
        let send = me.request("initialize", &params, Pending::Initialize, now);
        (me, vec![send])
    }

    /// Whether a message can start a turn now.
    pub(crate) fn can_start_turn(&self) -> bool {
        self.session_id.is_some() && self.turn.is_none()
    }

    /// The running turn's id (reins numbers ACP turns itself).
    pub(crate) fn active_turn(&self) -> Option<&str> {
        self.turn.as_ref().map(|t| t.id.as_str())
    }

    /// Permission requests waiting for an answer.
    #[cfg(test)]
    pub(crate) fn waiting_approvals(&self) -> usize {
        self.approvals.len()
    }

    /// The earliest deadline: a handshake request's, or the warning due
    /// after a `session/cancel` the agent has not acted on.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let requests = self.requests.values().filter_map(|r| r.deadline);
        let cancel = self.turn.as_ref().and_then(|t| t.cancel_deadline);
        requests.chain(cancel).min()
    }

    /// Starts a turn with `text` (`session/prompt`). ACP has no way to add
    /// to a running turn, so a steer (or any message while a turn runs) is
    /// refused.
    pub(crate) fn deliver(
        &mut self,
        message_id: &str,
        text: &str,
        steer: bool,
        now: Instant,
    ) -> Vec<Effect> {
        let refuse = |reason: &str| {
            vec![Effect::Refused { message_id: message_id.into(), reason: reason.into() }]
        };
        let Some(session_id) = self.session_id.clone() else {
            return refuse("the ACP session is not open yet");
        };
        if self.turn.is_some() {
            return refuse(if steer {
                "ACP cannot add a message to a running turn (send it without --force to queue it)"
            } else {
                "a turn is already running"
            });
        }
        self.turns += 1;
        let turn_id = format!("turn-{}", self.turns);
        let params = PromptRequest {
            session_id,
            prompt: vec![TextBlock { kind: "text", text: text.into() }],
        };
        let send = self.request("session/prompt", &params, Pending::Prompt, now);
        self.turn = Some(Turn {
            id: turn_id.clone(),
            request: self.next_id,
            started: now,
            cancelled: false,
            cancel_deadline: None,
            chunk_usage: None,
            tools: HashMap::new(),
        });
        vec![
            send,
            Effect::Transcript(format!("› {}", first_lines(text, 20))),
            Effect::State(Observed::plain(State::Busy)),
            Effect::Delivered { message_id: message_id.into(), turn_id },
        ]
    }

    /// Asks the agent to stop the running turn (`session/cancel`); the
    /// permission requests it waits on are answered `cancelled`, as the
    /// protocol asks of a client that cancels.
    pub(crate) fn interrupt(&mut self, now: Instant) -> Vec<Effect> {
        let (Some(session_id), Some(turn)) = (self.session_id.clone(), self.turn.as_mut()) else {
            return Vec::new();
        };
        turn.cancelled = true;
        turn.cancel_deadline = Some(now + self.settings.request_timeout);
        let cancel = CancelNotification { session_id };
        let mut effects = vec![Effect::Send(
            json!({ "jsonrpc": "2.0", "method": "session/cancel", "params": cancel }).to_string(),
        )];
        for asked in self.approvals.drain(..) {
            let answer = RequestPermissionResponse { outcome: PermissionOutcome::Cancelled };
            effects.push(Effect::Send(
                json!({ "jsonrpc": "2.0", "id": asked.id, "result": answer }).to_string(),
            ));
        }
        effects.push(Effect::State(Observed::plain(State::Busy)));
        effects
    }

    /// Answers the oldest permission request with the option of the kind
    /// `decision` asks for: allow_once, allow_always (allow_once if the
    /// agent offers no lasting one), reject_once (reject_always, or
    /// `cancelled` if it offers no rejection at all).
    pub(crate) fn answer(&mut self, decision: Decision) -> Result<Vec<Effect>, String> {
        let asked = self.approvals.front().ok_or("no permission request is waiting")?;
        let find = |kind: &str| asked.options.iter().find(|o| o.kind == kind);
        let chosen = match decision {
            Decision::Allow => Some(find("allow_once").ok_or_else(|| {
                let offered: Vec<&str> = asked.options.iter().map(|o| o.kind.as_str()).collect();
                format!(
                    "the agent offers no allow_once option for this request (it offers {}): \
                     answer with --always or --deny",
                    offered.join(", ")
                )
            })?),
            Decision::Always => find("allow_always").or_else(|| find("allow_once")),
            Decision::Deny => find("reject_once").or_else(|| find("reject_always")),
        };
        let (outcome, shown) = match chosen {
            Some(option) => (
                PermissionOutcome::Selected { option_id: option.option_id.clone() },
                format!("{} ({})", option.kind, option.name),
            ),
            None => (PermissionOutcome::Cancelled, "cancelled".to_string()),
        };
        let asked = self.approvals.pop_front().expect("checked above");
        let answer = RequestPermissionResponse { outcome };
        let mut effects = vec![
            Effect::Send(json!({ "jsonrpc": "2.0", "id": asked.id, "result": answer }).to_string()),
            Effect::Transcript(format!("  approval: {shown}")),
        ];
        if self.approvals.is_empty() && self.turn.is_some() {
            effects.push(Effect::State(Observed::plain(State::Busy)));
        }
        Ok(effects)
    }

    /// Handles one line from the agent.
    pub(crate) fn on_line(&mut self, line: &str, now: Instant) -> Vec<Effect> {
        let value: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let shown: String = line.chars().take(200).collect();
                self.last_error = Some(format!("unreadable line from the agent: {shown}"));
                return vec![Effect::Warning(format!(
                    "ignored an unreadable line from the ACP agent: {shown}"
                ))];
            }
        };
        let id = value.get("id").cloned();
        let method = value.get("method").and_then(Value::as_str).map(str::to_string);
        let params = value.get("params").unwrap_or(&Value::Null);
        match (id, method) {
            (Some(id), Some(method)) => self.on_agent_request(id, &method, params),
            (Some(id), None) => self.on_response(&id, &value, now),
            (None, Some(method)) => self.on_notification(&method, params),
            (None, None) => {
                let shown: String = line.chars().take(200).collect();
                vec![Effect::Warning(format!(
                    "ignored a message with neither id nor method: {shown}"
                ))]
            }
        }
    }

    /// Handshake requests past their deadline fail the connection; a
    /// cancelled turn that goes on is reported once.
    pub(crate) fn on_deadline(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        let late: Vec<i64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let request = self.requests.remove(&id).expect("listed above");
            let message = format!(
                "{} got no answer within {:.0?}",
                request.method, self.settings.request_timeout
            );
            self.last_error = Some(message.clone());
            effects.push(Effect::Disconnected { source: "timeout".into(), message });
        }
        if let Some(turn) = self.turn.as_mut()
            && turn.cancel_deadline.is_some_and(|d| d <= now)
        {
            turn.cancel_deadline = None;
            effects.push(Effect::Warning(format!(
                "the agent did not end {} within {:.0?} of session/cancel",
                turn.id, self.settings.request_timeout
            )));
        }
        effects
    }

    fn request<P: Serialize>(
        &mut self,
        method: &'static str,
        params: &P,
        pending: Pending,
        now: Instant,
    ) -> Effect {
        self.next_id += 1;
        let id = self.next_id;
        let deadline = match pending {
            Pending::Prompt => None,
            _ => Some(now + self.settings.request_timeout),
        };
        self.requests.insert(id, Request { pending, method, deadline });
        Effect::Send(
            json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string(),
        )
    }

    fn on_response(&mut self, id: &Value, value: &Value, now: Instant) -> Vec<Effect> {
        let Some(request) = id.as_i64().and_then(|id| self.requests.remove(&id)) else {
            return Vec::new(); // an answer to a request that already timed out
        };
        if let Some(error) = value.get("error") {
            return self.on_error(request, id.as_i64().unwrap_or_default(), error, now);
        }
        let result = value.get("result").unwrap_or(&Value::Null);
        match request.pending {
            Pending::Initialize => self.initialized(result, now),
            Pending::Authenticate => {
                self.authenticated = true;
                self.new_session(now)
            }
            Pending::NewSession => match NewSessionResponse::deserialize(result) {
                Ok(session) => {
                    let effects = vec![
                        Effect::Transcript(format!("acp session {}", session.session_id)),
                        Effect::State(Observed::plain(State::Ready)),
                    ];
                    self.session_id = Some(session.session_id);
                    effects
                }
                Err(err) => self.lost("handshake", format!("session/new answered badly: {err}")),
            },
            Pending::Prompt => {
                let request = id.as_i64().unwrap_or_default();
                match PromptResponse::deserialize(result) {
                    Ok(response) => self.prompt_done(request, Ok(response), now),
                    Err(err) => {
                        let error = format!("session/prompt answered badly: {err}");
                        self.prompt_done(request, Err(error), now)
                    }
                }
            }
        }
    }

    fn on_error(&mut self, request: Request, id: i64, error: &Value, now: Instant) -> Vec<Effect> {
        let code = error.get("code").and_then(Value::as_i64);
        let message = error_text(error);
        match request.pending {
            Pending::NewSession if code == Some(AUTH_REQUIRED) && !self.authenticated => {
                let method = self
                    .settings
                    .credentials
                    .iter()
                    .find(|m| self.auth_methods.contains(m))
                    .cloned();
                match method {
                    Some(method_id) => {
                        self.authenticated = true;
                        let params = AuthenticateRequest { method_id: method_id.clone() };
                        vec![
                            Effect::Transcript(format!("acp: signing in with {method_id}")),
                            self.request("authenticate", &params, Pending::Authenticate, now),
                        ]
                    }
                    None => self.lost(
                        "auth",
                        format!(
                            "the agent asks to sign in ({message}), and no credential reins \
                             knows of is present for its methods ({})",
                            self.auth_methods.join(", ")
                        ),
                    ),
                }
            }
            Pending::Prompt => self.prompt_done(id, Err(message), now),
            Pending::Authenticate => self.lost("auth", format!("authenticate failed: {message}")),
            Pending::Initialize | Pending::NewSession => {
                self.lost("handshake", format!("{} failed: {message}", request.method))
            }
        }
    }

    fn lost(&mut self, source: &str, message: String) -> Vec<Effect> {
        self.last_error = Some(message.clone());
        vec![Effect::Disconnected { source: source.into(), message }]
    }

    fn initialized(&mut self, result: &Value, now: Instant) -> Vec<Effect> {
        let response = match InitializeResponse::deserialize(result) {
            Ok(response) => response,
            Err(err) => return self.lost("handshake", format!("initialize answered badly: {err}")),
        };
        if let Some(version) =
            response.protocol_version.filter(|v| *v != i64::from(PROTOCOL_VERSION))
        {
            return self.lost(
                "handshake",
                format!("the agent speaks ACP version {version}; reins speaks {PROTOCOL_VERSION}"),
            );
        }
        let agent = response.agent_info.map_or_else(
            || "an ACP agent".to_string(),
            |info| {
                let name = info.title.unwrap_or(info.name);
                format!("{name} {}", info.version).trim().to_string()
            },
        );
        self.auth_methods = response.auth_methods.into_iter().map(|m| m.id).collect();
        self.agent = Some(agent.clone());
        let mut effects = vec![Effect::Transcript(format!("acp: {agent}"))];
        effects.extend(self.new_session(now));
        effects
    }

    fn new_session(&mut self, now: Instant) -> Vec<Effect> {
        let params = NewSessionRequest { cwd: self.settings.cwd.clone(), mcp_servers: Vec::new() };
        vec![self.request("session/new", &params, Pending::NewSession, now)]
    }

    /// The prompt's answer ends its turn.
    fn prompt_done(
        &mut self,
        request: i64,
        response: Result<PromptResponse, String>,
        now: Instant,
    ) -> Vec<Effect> {
        if self.turn.as_ref().is_none_or(|t| t.request != request) {
            return Vec::new();
        }
        // The message still streaming is the turn's last: flushed while
        // the turn is open, it is its answer.
        let mut effects = self.flush();
        let turn = self.turn.take().expect("checked above");
        self.approvals.clear();
        let cancelled = turn.cancelled;
        let (status, error, counts) = match response {
            Ok(response) => {
                let counts = response
                    .usage
                    .as_ref()
                    .map(Counts::from_usage)
                    .or_else(|| response.meta.as_ref().and_then(quota_counts))
                    .or(turn.chunk_usage);
                let (status, error) = match response.stop_reason.as_str() {
                    "end_turn" => (TurnStatus::Completed, None),
                    "cancelled" => (TurnStatus::Interrupted, None),
                    "refusal" => (TurnStatus::Failed, Some("the agent refused (refusal)".into())),
                    "max_tokens" => (
                        TurnStatus::Failed,
                        Some("the model hit its token limit (max_tokens)".into()),
                    ),
                    "max_turn_requests" => (
                        TurnStatus::Failed,
                        Some("the turn hit the agent's request limit (max_turn_requests)".into()),
                    ),
                    other => (TurnStatus::Failed, Some(format!("unknown stop reason {other:?}"))),
                };
                (status, error, counts)
            }
            // An agent may answer a cancelled prompt with an error.
            Err(error) if cancelled => (TurnStatus::Interrupted, Some(error), turn.chunk_usage),
            Err(error) => (TurnStatus::Failed, Some(error), turn.chunk_usage),
        };
        if let Some(error) = &error {
            self.last_error = Some(error.clone());
            effects.push(Effect::Transcript(format!("⚠ {error}")));
        }
        effects.push(Effect::Transcript(format!("─ {} ({})", turn.id, status.as_str())));
        let fields = self.usage_fields(counts, now.saturating_duration_since(turn.started));
        if let Some(fields) = fields {
            effects.push(Effect::Usage { turn_id: Some(turn.id.clone()), fields });
        }
        effects.push(Effect::TurnCompleted { turn_id: turn.id, status, error });
        effects.push(Effect::State(Observed::plain(State::Ready)));
        effects
    }

    /// The usage event's fields for a turn: its tokens, the context window
    /// from the last `usage_update`, the turn's duration and the agent's
    /// session id; None when the agent said nothing about usage.
    fn usage_fields(
        &self,
        counts: Option<Counts>,
        took: Duration,
    ) -> Option<BTreeMap<String, String>> {
        let counts = counts.filter(Counts::any);
        if counts.is_none() && self.context.is_none() {
            return None;
        }
        let mut fields = BTreeMap::new();
        let mut put = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                fields.insert(k.to_string(), v.to_string());
            }
        };
        if let Some(c) = counts {
            put("input_tokens", c.input);
            put("output_tokens", c.output);
            put("reasoning_tokens", c.reasoning);
            put("cached_tokens", c.cached);
            let total = c.total.or_else(|| Some(c.input?.saturating_add(c.output?)));
            put("total_tokens", total);
        }
        if let Some((used, size, cost)) = &self.context {
            put("context_used", *used);
            put("context_size", *size);
            if let Some(cost) = cost {
                fields.insert("cost".into(), cost.clone());
            }
        }
        fields.insert("duration_s".into(), format!("{:.3}", took.as_secs_f64()));
        if let Some(id) = &self.session_id {
            fields.insert("agent_session_id".into(), id.clone());
        }
        Some(fields)
    }

    fn on_notification(&mut self, method: &str, params: &Value) -> Vec<Effect> {
        if method != "session/update" {
            return Vec::new(); // extensions (`qwen/notify/...`): nothing reins reads
        }
        let note = match SessionNotification::deserialize(params) {
            Ok(note) => note,
            Err(err) => {
                return vec![Effect::Warning(format!(
                    "ignored a session/update reins cannot read: {err}"
                ))];
            }
        };
        if self.session_id.as_deref() != Some(note.session_id.as_str()) {
            return Vec::new();
        }
        match note.update {
            SessionUpdate::AgentMessageChunk { content, meta } => {
                let effects = self.flush_thought();
                if let ContentBlock::Text { text } = content {
                    self.message.push(&text);
                }
                let usage = meta.as_ref().and_then(|m| m.get("usage"));
                if let (Some(usage), Some(turn)) = (usage, self.turn.as_mut())
                    && let Ok(usage) = TokenUsage::deserialize(usage)
                {
                    let counts = Counts::from_usage(&usage);
                    turn.chunk_usage = Some(turn.chunk_usage.unwrap_or_default().add(counts));
                }
                effects
            }
            SessionUpdate::AgentThoughtChunk { content } => {
                let effects = self.flush_message();
                if let ContentBlock::Text { text } = content {
                    self.thought.push(&text);
                }
                effects
            }
            SessionUpdate::ToolCall(call) | SessionUpdate::ToolCallUpdate(call) => {
                let mut effects = self.flush();
                effects.extend(self.tool_call(call));
                effects
            }
            SessionUpdate::Plan { entries } => {
                let mut effects = self.flush();
                let lines: Vec<String> = entries
                    .iter()
                    .take(50)
                    .map(|e| {
                        let mark = match e.status.as_deref() {
                            Some("completed") => "[x]",
                            Some("in_progress") => "[~]",
                            _ => "[ ]",
                        };
                        format!("  {mark} {}", first_lines(&e.content, 1))
                    })
                    .collect();
                effects.push(Effect::Transcript(format!("plan:\n{}", lines.join("\n"))));
                effects
            }
            SessionUpdate::UsageUpdate { used, size, cost } => {
                let cost = cost.map(|c| format!("{:.4} {}", c.amount, c.currency));
                self.context = Some((used, size, cost));
                Vec::new()
            }
            SessionUpdate::Other => Vec::new(),
        }
    }

    /// A tool call's line, once it has finished (its title is final by
    /// then), with the first lines of what it printed.
    fn tool_call(&mut self, call: ToolCall) -> Vec<Effect> {
        let Some(turn) = self.turn.as_mut() else { return Vec::new() };
        if !turn.tools.contains_key(&call.tool_call_id) && turn.tools.len() >= MAX_TOOL_CALLS {
            return Vec::new();
        }
        let known = turn.tools.entry(call.tool_call_id.clone()).or_default();
        if call.title.is_some() {
            known.0 = call.title.clone();
        }
        if call.kind.is_some() {
            known.1 = call.kind.clone();
        }
        let done = match call.status.as_deref() {
            Some("completed") => "",
            Some("failed") => " (failed)",
            _ => return Vec::new(),
        };
        let title = known.0.clone().or_else(|| command_of(call.raw_input.as_ref()));
        let title = title.unwrap_or_else(|| "a tool call".into());
        let mark = match known.1.as_deref() {
            Some("execute") => "$",
            Some("edit" | "delete" | "move") => "✎",
            _ => "⚙",
        };
        let mut lines = vec![format!("{mark} {}{done}", first_lines(&title, 1))];
        for content in call.content.into_iter().flatten() {
            match content {
                ToolCallContent::Content { content: ContentBlock::Text { text } } => {
                    lines.extend(text.lines().take(10).map(|l| format!("  {l}")));
                }
                ToolCallContent::Diff { path } => lines.push(format!("  ✎ {path}")),
                _ => {}
            }
        }
        vec![Effect::Transcript(lines.join("\n"))]
    }

    fn flush(&mut self) -> Vec<Effect> {
        let mut effects = self.flush_thought();
        effects.extend(self.flush_message());
        effects
    }

    /// The message streamed so far, ended: its transcript line, and (in a
    /// turn) the turn's answer so far, the chunks joined exactly.
    fn flush_message(&mut self) -> Vec<Effect> {
        let Some((text, dropped)) = self.message.take_whole() else { return Vec::new() };
        let mut effects = Vec::new();
        if self.turn.is_some() {
            effects.push(Effect::Answer { text: text.clone(), cut: dropped as u64 });
        }
        let shown = if dropped > 0 { format!("{text} … ({dropped} more bytes)") } else { text };
        effects.push(Effect::Transcript(format!("• {}", first_lines(shown.trim(), 200))));
        effects
    }

    fn flush_thought(&mut self) -> Vec<Effect> {
        self.thought
            .take()
            .map(|text| Effect::Transcript(format!("  thinking: {}", first_lines(text.trim(), 3))))
            .into_iter()
            .collect()
    }

    fn on_agent_request(&mut self, id: Value, method: &str, params: &Value) -> Vec<Effect> {
        if method != "session/request_permission" {
            let line = json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": { "code": -32601, "message": format!("reins does not handle {method}") },
            })
            .to_string();
            let mut effects = vec![Effect::Send(line)];
            // Methods of the protocol reins declared no capability for are
            // worth a word; an agent's own extensions are not.
            if ["fs/", "terminal/", "elicitation/"].iter().any(|p| method.starts_with(p)) {
                effects.push(Effect::Warning(format!(
                    "refused {method}: reins offers the agent no such capability"
                )));
            }
            return effects;
        }
        let refuse = |code: i64, message: String| {
            Effect::Send(
                json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
                    .to_string(),
            )
        };
        let asked = match RequestPermissionRequest::deserialize(params) {
            Ok(asked) => asked,
            Err(err) => {
                return vec![
                    refuse(-32602, format!("invalid params: {err}")),
                    Effect::Warning(format!(
                        "refused a permission request reins cannot read: {err}"
                    )),
                ];
            }
        };
        if self.session_id.as_deref() != Some(asked.session_id.as_str()) {
            return vec![refuse(-32602, "no such session".into())];
        }
        if self.approvals.len() >= MAX_APPROVALS {
            return vec![
                refuse(-32000, "too many permission requests are waiting".into()),
                Effect::Warning(format!("refused a permission request: {MAX_APPROVALS} wait")),
            ];
        }
        let mut effects = self.flush();
        let title = asked.tool_call.title.clone().filter(|t| !t.trim().is_empty());
        let what = title
            .or_else(|| command_of(asked.tool_call.raw_input.as_ref()))
            .unwrap_or_else(|| "a tool call".into());
        let what = first_lines(&what, 1);
        if let Some(turn) = self.turn.as_mut()
            && (turn.tools.len() < MAX_TOOL_CALLS
                || turn.tools.contains_key(&asked.tool_call.tool_call_id))
        {
            // The request names the call as it will run: its title wins.
            let known = turn.tools.entry(asked.tool_call.tool_call_id.clone()).or_default();
            if asked.tool_call.title.is_some() {
                known.0 = asked.tool_call.title.clone();
            }
            known.1 = known.1.take().or(asked.tool_call.kind.clone());
        }
        let offered: Vec<String> = asked.options.iter().take(8).map(|o| o.name.clone()).collect();
        self.approvals.push_back(Asked { id, options: asked.options });
        effects.extend([
            Effect::Transcript(format!("? approval needed: {what} ({})", offered.join(" / "))),
            Effect::ApprovalAsked { detail: what },
            Effect::State(Observed { state: State::Blocked, kind: Some(BlockedKind::Approval) }),
        ]);
        effects
    }
}

/// The command a tool call runs, from its raw input (`{"command": ...}`).
fn command_of(raw: Option<&Value>) -> Option<String> {
    raw?.get("command")?.as_str().map(str::to_string).filter(|c| !c.trim().is_empty())
}

/// A JSON-RPC error's text: its message (or the message inside it, when
/// the agent passed the model provider's error body on as JSON, as Gemini
/// CLI does), and `data.details` when the agent put the real cause there
/// (Qwen Code).
fn error_text(error: &Value) -> String {
    let message = error.get("message").and_then(Value::as_str).unwrap_or("error");
    let inner = serde_json::from_str::<Value>(message)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string));
    let mut text = inner.unwrap_or_else(|| message.to_string());
    if let Some(details) = error.pointer("/data/details").and_then(Value::as_str)
        && !text.contains(details)
    {
        text = format!("{text}: {details}");
    }
    match error.get("code").and_then(Value::as_i64) {
        Some(code) => format!("{text} (code {code})"),
        None => text,
    }
}

/// Gemini CLI's per-turn tokens: `_meta.quota.token_count` of the prompt's
/// result.
fn quota_counts(meta: &Value) -> Option<Counts> {
    let count = meta.pointer("/quota/token_count")?;
    let num = |k: &str| count.get(k).and_then(Value::as_u64);
    let counts = Counts {
        input: num("input_tokens"),
        output: num("output_tokens"),
        total: num("total_tokens"),
        reasoning: num("thought_tokens"),
        cached: num("cached_tokens"),
    };
    counts.any().then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::transport::sent_json as sent;

    fn settings() -> Settings {
        Settings {
            client_version: "0.1.0".into(),
            cwd: "/w".into(),
            request_timeout: Duration::from_secs(5),
            credentials: vec!["fake-key".into()],
        }
    }

    /// A connection whose session `s1` is open.
    fn ready() -> (Acp, Instant) {
        let t0 = Instant::now();
        let (mut a, _) = Acp::start(settings(), t0);
        a.on_line(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"agentInfo":{"name":"fake","version":"1.0"}}}"#, t0);
        a.on_line(r#"{"jsonrpc":"2.0","id":2,"result":{"sessionId":"s1"}}"#, t0);
        (a, t0)
    }

    fn update(json: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","method":"session/update","params":{{"sessionId":"s1","update":{json}}}}}"#
        )
    }

    fn transcript(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Transcript(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    fn completed(effects: &[Effect]) -> Option<(TurnStatus, Option<String>)> {
        effects.iter().find_map(|e| match e {
            Effect::TurnCompleted { status, error, .. } => Some((*status, error.clone())),
            _ => None,
        })
    }

    #[test]
    fn handshake_then_a_turn_that_ends_with_its_stop_reason_and_usage() {
        let t0 = Instant::now();
        let (mut a, effects) = Acp::start(settings(), t0);
        let init = &sent(&effects)[0];
        assert_eq!(init["jsonrpc"], "2.0");
        assert_eq!(init["method"], "initialize");
        assert_eq!(init["params"]["protocolVersion"], 1);
        assert_eq!(
            init["params"]["clientCapabilities"],
            json!({ "fs": { "readTextFile": false, "writeTextFile": false }, "terminal": false }),
            "reins declares nothing it does not implement"
        );
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"agentInfo":{"name":"gemini-cli","title":"Gemini CLI","version":"0.61.0"},"authMethods":[{"id":"fake-key","name":"k"}]}}"#, t0);
        assert_eq!(a.agent.as_deref(), Some("Gemini CLI 0.61.0"));
        assert_eq!(sent(&e)[0]["method"], "session/new");
        assert_eq!(sent(&e)[0]["params"], json!({ "cwd": "/w", "mcpServers": [] }));
        assert!(!a.can_start_turn());
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":2,"result":{"sessionId":"s1"}}"#, t0);
        assert!(e.contains(&Effect::State(Observed::plain(State::Ready))));
        assert!(a.can_start_turn());
        assert_eq!(a.next_deadline(), None, "nothing waits once the session is open");

        let e = a.deliver("m1", "say hi", false, t0);
        let prompt = &sent(&e)[0];
        assert_eq!(prompt["method"], "session/prompt");
        assert_eq!(prompt["params"]["prompt"], json!([{ "type": "text", "text": "say hi" }]));
        assert!(
            e.contains(&Effect::Delivered { message_id: "m1".into(), turn_id: "turn-1".into() })
        );
        assert!(e.contains(&Effect::State(Observed::plain(State::Busy))));
        assert_eq!(a.next_deadline(), None, "a turn has no deadline");
        for chunk in ["MOCK_OK ", "(you said: ", "say hi)"] {
            let line = update(&format!(
                r#"{{"sessionUpdate":"agent_message_chunk","content":{{"type":"text","text":"{chunk}"}}}}"#
            ));
            assert!(a.on_line(&line, t0).is_empty(), "chunks wait for the message's end");
        }
        // Another session's update is not this one's.
        let other = update(
            r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"x"}}"#,
        )
        .replace("\"s1\"", "\"s2\"");
        assert!(a.on_line(&other, t0).is_empty());
        let e = a.on_line(
            r#"{"jsonrpc":"2.0","id":3,"result":{"stopReason":"end_turn","_meta":{"quota":{"token_count":{"input_tokens":100,"output_tokens":5}}}}}"#,
            t0 + Duration::from_millis(1500),
        );
        assert_eq!(transcript(&e), ["• MOCK_OK (you said: say hi)", "─ turn-1 (completed)"]);
        assert_eq!(completed(&e), Some((TurnStatus::Completed, None)));
        // The message still streaming at the turn's end is its answer,
        // the chunks joined exactly, given before the turn completes.
        let answer = e.iter().position(|e| {
            *e == Effect::Answer { text: "MOCK_OK (you said: say hi)".into(), cut: 0 }
        });
        let done = e.iter().position(|e| matches!(e, Effect::TurnCompleted { .. }));
        assert!(answer.expect("an answer") < done.unwrap(), "{e:?}");
        let fields = e
            .iter()
            .find_map(|e| match e {
                Effect::Usage { turn_id, fields } => {
                    assert_eq!(turn_id.as_deref(), Some("turn-1"));
                    Some(fields.clone())
                }
                _ => None,
            })
            .expect("usage at the turn's end");
        assert_eq!(fields["input_tokens"], "100");
        assert_eq!(fields["total_tokens"], "105");
        assert_eq!(fields["duration_s"], "1.500");
        assert_eq!(fields["agent_session_id"], "s1");
        assert!(a.can_start_turn());
    }

    #[test]
    fn every_stop_reason_and_an_error_end_the_turn_as_they_should() {
        let cases = [
            (r#""result":{"stopReason":"end_turn"}"#, TurnStatus::Completed, None),
            (r#""result":{"stopReason":"cancelled"}"#, TurnStatus::Interrupted, None),
            (r#""result":{"stopReason":"refusal"}"#, TurnStatus::Failed, Some("refusal")),
            (r#""result":{"stopReason":"max_tokens"}"#, TurnStatus::Failed, Some("max_tokens")),
            (
                r#""result":{"stopReason":"max_turn_requests"}"#,
                TurnStatus::Failed,
                Some("max_turn_requests"),
            ),
            (r#""result":{"stopReason":"napping"}"#, TurnStatus::Failed, Some("napping")),
            // Gemini CLI passes the provider's error body on as the message.
            (
                r#""error":{"code":400,"message":"{\"error\":{\"code\":400,\"message\":\"mock request rejected (400)\"}}"}"#,
                TurnStatus::Failed,
                Some("mock request rejected (400) (code 400)"),
            ),
            // Qwen Code puts the cause in data.details.
            (
                r#""error":{"code":-32603,"message":"Internal error","data":{"details":"400 rejected"}}"#,
                TurnStatus::Failed,
                Some("Internal error: 400 rejected (code -32603)"),
            ),
        ];
        for (answer, status, error) in cases {
            let (mut a, t0) = ready();
            a.deliver("m1", "go", false, t0);
            let e = a.on_line(&format!(r#"{{"jsonrpc":"2.0","id":3,{answer}}}"#), t0);
            let (got, got_error) = completed(&e).unwrap_or_else(|| panic!("{answer}: {e:?}"));
            assert_eq!(got, status, "{answer}");
            match (error, got_error) {
                (None, None) => {}
                (Some(want), Some(got)) => assert!(got.contains(want), "{answer}: {got}"),
                (want, got) => panic!("{answer}: wanted {want:?}, got {got:?}"),
            }
            assert!(e.contains(&Effect::State(Observed::plain(State::Ready))));
            assert!(a.can_start_turn(), "the next turn can start");
        }
    }

    #[test]
    fn a_permission_request_blocks_and_each_decision_picks_its_option() {
        let request = r#"{"jsonrpc":"2.0","id":0,"method":"session/request_permission","params":{"sessionId":"s1","toolCall":{"toolCallId":"c1","title":"touch x.txt","kind":"execute","status":"pending"},"options":[{"optionId":"always","name":"Always allow","kind":"allow_always"},{"optionId":"once","name":"Allow","kind":"allow_once"},{"optionId":"no","name":"Reject","kind":"reject_once"}]}}"#;
        for (decision, option) in
            [(Decision::Allow, "once"), (Decision::Always, "always"), (Decision::Deny, "no")]
        {
            let (mut a, t0) = ready();
            a.deliver("m1", "go", false, t0);
            let e = a.on_line(request, t0);
            assert!(e.contains(&Effect::ApprovalAsked { detail: "touch x.txt".into() }));
            assert!(e.contains(&Effect::State(Observed {
                state: State::Blocked,
                kind: Some(BlockedKind::Approval)
            })));
            let e = a.answer(decision).unwrap();
            assert_eq!(
                sent(&e)[0],
                json!({ "jsonrpc": "2.0", "id": 0,
                        "result": { "outcome": { "outcome": "selected", "optionId": option } } })
            );
            assert!(e.contains(&Effect::State(Observed::plain(State::Busy))));
            assert!(a.answer(decision).is_err(), "nothing left to answer");
        }
        // An agent that offers no lasting approval: --always allows once;
        // no rejection at all: --deny is `cancelled`; no allow_once: allow
        // is refused and the request stays.
        let (mut a, t0) = ready();
        a.deliver("m1", "go", false, t0);
        let only_always =
            request.replace(r#"{"optionId":"once","name":"Allow","kind":"allow_once"},"#, "");
        a.on_line(&only_always, t0);
        let err = a.answer(Decision::Allow).unwrap_err();
        assert!(err.contains("no allow_once"), "{err}");
        assert_eq!(a.waiting_approvals(), 1, "a refused answer leaves the request");
        let deny = a.answer(Decision::Deny).unwrap();
        assert_eq!(sent(&deny)[0]["result"]["outcome"]["optionId"], "no");
        let only_once = r#"{"jsonrpc":"2.0","id":7,"method":"session/request_permission","params":{"sessionId":"s1","toolCall":{"toolCallId":"c2"},"options":[{"optionId":"once","name":"Allow","kind":"allow_once"}]}}"#;
        a.on_line(only_once, t0);
        assert_eq!(
            sent(&a.answer(Decision::Always).unwrap())[0]["result"]["outcome"]["optionId"],
            "once"
        );
        a.on_line(only_once, t0);
        assert_eq!(
            sent(&a.answer(Decision::Deny).unwrap())[0]["result"]["outcome"],
            json!({ "outcome": "cancelled" })
        );
    }

    #[test]
    fn interrupt_cancels_the_turn_and_the_permission_it_waits_on() {
        let (mut a, t0) = ready();
        assert!(a.interrupt(t0).is_empty(), "nothing runs: nothing to interrupt");
        a.deliver("m1", "[[wait:20]] long", false, t0);
        a.on_line(r#"{"jsonrpc":"2.0","id":9,"method":"session/request_permission","params":{"sessionId":"s1","toolCall":{"toolCallId":"c1","title":"rm -rf x"},"options":[{"optionId":"y","name":"Allow","kind":"allow_once"}]}}"#, t0);
        let e = a.interrupt(t0);
        let lines = sent(&e);
        assert_eq!(
            lines[0],
            json!({ "jsonrpc": "2.0", "method": "session/cancel", "params": { "sessionId": "s1" } })
        );
        assert_eq!(
            lines[1],
            json!({ "jsonrpc": "2.0", "id": 9, "result": { "outcome": { "outcome": "cancelled" } } })
        );
        assert!(e.contains(&Effect::State(Observed::plain(State::Busy))));
        assert_eq!(a.waiting_approvals(), 0);
        // An agent that does not stop is reported once, after the timeout.
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_secs(5)));
        let late = a.on_deadline(t0 + Duration::from_secs(6));
        assert!(matches!(&late[0], Effect::Warning(w) if w.contains("session/cancel")), "{late:?}");
        assert_eq!(a.next_deadline(), None);
        // An agent may answer a cancelled prompt with an error: interrupted.
        let e = a
            .on_line(r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"aborted"}}"#, t0);
        assert_eq!(completed(&e).map(|c| c.0), Some(TurnStatus::Interrupted));
    }

    #[test]
    fn authentication_is_asked_for_then_done_with_a_present_credential() {
        let t0 = Instant::now();
        let (mut a, _) = Acp::start(settings(), t0);
        a.on_line(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"authMethods":[{"id":"oauth","name":"o"},{"id":"fake-key","name":"k"}]}}"#, t0);
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"Authentication required"}}"#, t0);
        let auth = &sent(&e)[0];
        assert_eq!(auth["method"], "authenticate");
        assert_eq!(auth["params"], json!({ "methodId": "fake-key" }));
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#, t0);
        assert_eq!(sent(&e)[0]["method"], "session/new", "the session is asked for again");
        a.on_line(r#"{"jsonrpc":"2.0","id":4,"result":{"sessionId":"s1"}}"#, t0);
        assert!(a.can_start_turn());

        // Asked again after signing in, or with no credential present: lost.
        let (mut a, _) = Acp::start(settings(), t0);
        a.on_line(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"authMethods":[{"id":"oauth","name":"o"}]}}"#, t0);
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"Gemini API key is missing"}}"#, t0);
        match &e[0] {
            Effect::Disconnected { source, message } => {
                assert_eq!(source, "auth");
                assert!(message.contains("Gemini API key is missing"), "{message}");
                assert!(message.contains("(oauth)"), "names the agent's methods: {message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_silent_agent_times_out_and_a_foreign_one_is_refused() {
        let t0 = Instant::now();
        let (mut a, _) = Acp::start(settings(), t0);
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_secs(5)));
        let e = a.on_deadline(t0 + Duration::from_secs(6));
        assert!(
            matches!(&e[0], Effect::Disconnected { source, message } if source == "timeout" && message.contains("initialize"))
        );
        let (mut a, _) = Acp::start(settings(), t0);
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":2}}"#, t0);
        assert!(
            matches!(&e[0], Effect::Disconnected { message, .. } if message.contains("version 2")),
            "{e:?}"
        );
    }

    #[test]
    fn garbage_unknown_requests_and_steering_are_survived() {
        let (mut a, t0) = ready();
        let e = a.on_line("{not json", t0);
        assert!(matches!(&e[0], Effect::Warning(w) if w.contains("unreadable")));
        assert!(a.last_error.as_deref().unwrap().contains("unreadable"));
        // A protocol method reins declared no capability for: an error and a word.
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":5,"method":"fs/read_text_file","params":{"sessionId":"s1","path":"/etc/passwd"}}"#, t0);
        assert_eq!(sent(&e)[0]["error"]["code"], -32601);
        assert!(matches!(&e[1], Effect::Warning(w) if w.contains("fs/read_text_file")));
        // An agent's own extension: an error, quietly.
        let e = a.on_line(
            r#"{"jsonrpc":"2.0","id":1,"method":"craft/drainMidTurnQueue","params":{}}"#,
            t0,
        );
        assert_eq!(e.len(), 1);
        assert_eq!(sent(&e)[0]["id"], 1);
        // A session/update it cannot read is a warning, not a stop.
        let e = a.on_line(&update(r#"{"sessionUpdate":"tool_call"}"#), t0);
        assert!(matches!(&e[0], Effect::Warning(_)), "{e:?}");
        // Updates it does not show are ignored.
        assert!(
            a.on_line(
                &update(r#"{"sessionUpdate":"available_commands_update","availableCommands":[]}"#),
                t0
            )
            .is_empty()
        );

        a.deliver("m1", "go", false, t0);
        let steer = a.deliver("m2", "also", true, t0);
        assert!(
            matches!(&steer[0], Effect::Refused { reason, .. } if reason.contains("running turn"))
        );
        let queued = a.deliver("m3", "later", false, t0);
        assert!(matches!(&queued[0], Effect::Refused { .. }));
        let (mut fresh, _) = Acp::start(settings(), t0);
        assert!(
            matches!(&fresh.deliver("m", "x", false, t0)[0], Effect::Refused { reason, .. } if reason.contains("not open"))
        );
    }

    #[test]
    fn tool_calls_thoughts_and_plans_reach_the_transcript() {
        let (mut a, t0) = ready();
        a.deliver("m1", "go", false, t0);
        let mut lines = Vec::new();
        for update_json in [
            r#"{"sessionUpdate":"agent_thought_chunk","content":{"type":"text","text":"let me see"}}"#,
            r#"{"sessionUpdate":"tool_call","toolCallId":"c1","title":"bash","kind":"execute","status":"pending"}"#,
            r#"{"sessionUpdate":"tool_call_update","toolCallId":"c1","status":"in_progress","title":"touch made.txt"}"#,
            r#"{"sessionUpdate":"tool_call_update","toolCallId":"c1","status":"completed","content":[{"type":"content","content":{"type":"text","text":"(no output)"}}]}"#,
            r#"{"sessionUpdate":"tool_call_update","toolCallId":"c2","status":"failed","title":"edit a.rs","kind":"edit","content":[{"type":"diff","path":"/w/a.rs","newText":"x"}]}"#,
            r#"{"sessionUpdate":"plan","entries":[{"content":"read","status":"completed","priority":"high"},{"content":"write","status":"pending","priority":"low"}]}"#,
            r#"{"sessionUpdate":"usage_update","used":1200,"size":200000,"cost":{"amount":0.0125,"currency":"USD"}}"#,
            r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"done"},"_meta":{"usage":{"inputTokens":100,"outputTokens":5,"totalTokens":105}}}"#,
            r#"{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":""},"_meta":{"usage":{"inputTokens":100,"outputTokens":1,"totalTokens":101}}}"#,
        ] {
            lines.extend(transcript(&a.on_line(&update(update_json), t0)));
        }
        let e = a.on_line(r#"{"jsonrpc":"2.0","id":3,"result":{"stopReason":"end_turn"}}"#, t0);
        lines.extend(transcript(&e));
        assert_eq!(
            lines,
            [
                "  thinking: let me see",
                "$ touch made.txt\n  (no output)",
                "✎ edit a.rs (failed)\n  ✎ /w/a.rs",
                "plan:\n  [x] read\n  [ ] write",
                "• done",
                "─ turn-1 (completed)",
            ]
        );
        let fields = e.iter().find_map(|e| match e {
            Effect::Usage { fields, .. } => Some(fields.clone()),
            _ => None,
        });
        let fields = fields.expect("usage");
        assert_eq!(fields["total_tokens"], "206", "Qwen's per-call usage is summed");
        assert_eq!(fields["context_used"], "1200");
        assert_eq!(fields["cost"], "0.0125 USD");
    }

    #[test]
    fn what_an_agent_floods_stays_bounded() {
        let (mut a, t0) = ready();
        a.deliver("m1", "go", false, t0);
        for i in 0..200 {
            let e = a.on_line(&format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"session/request_permission","params":{{"sessionId":"s1","toolCall":{{"toolCallId":"c{i}"}},"options":[]}}}}"#), t0);
            if i >= MAX_APPROVALS {
                assert_eq!(sent(&e)[0]["error"]["code"], -32000);
            }
        }
        assert_eq!(a.waiting_approvals(), MAX_APPROVALS);
        let chunk = "x".repeat(1 << 16);
        for _ in 0..64 {
            let line = update(&format!(
                r#"{{"sessionUpdate":"agent_message_chunk","content":{{"type":"text","text":"{chunk}"}}}}"#
            ));
            a.on_line(&line, t0);
        }
        assert!(a.message.text.len() <= MAX_SHOWN);
        for i in 0..5000 {
            a.on_line(
                &update(&format!(
                    r#"{{"sessionUpdate":"tool_call","toolCallId":"t{i}","title":"x"}}"#
                )),
                t0,
            );
        }
        assert!(a.turn.as_ref().unwrap().tools.len() <= MAX_TOOL_CALLS);
    }
}

/// Contract tests: every message reins sends is valid under the ACP
/// schema, and every message recorded from the three real agents is valid
/// and understood.
#[cfg(test)]
mod contract {
    use super::*;
    use crate::transport::acp_schema::{Side, validate_message};

    use crate::transport::sent_json as lines;

    /// Recorded sessions of Gemini CLI 0.61.0, OpenCode 1.18.33 and Qwen
    /// Code 0.24.4 against the mock model (see the directory's README.md).
    const TRANSCRIPTS: &str = "tests/fixtures/acp-transcripts";

    fn settings() -> Settings {
        Settings {
            client_version: "0.1.0".into(),
            cwd: "/tmp/acp/home/work".into(),
            request_timeout: Duration::from_secs(30),
            credentials: vec!["gemini-api-key".into()],
        }
    }

    #[track_caller]
    fn valid(message: &Value, answers: Option<&str>) {
        if let Err(err) = validate_message(Side::Client, message, answers) {
            panic!("{err}\nmessage: {message}");
        }
    }

    #[test]
    fn every_message_reins_sends_matches_the_schema() {
        let t0 = Instant::now();
        let (mut a, effects) = Acp::start(settings(), t0);
        let mut sent = lines(&effects);
        sent.extend(lines(&a.on_line(
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"authMethods":[{"id":"gemini-api-key","name":"k"}]}}"#,
            t0,
        )));
        sent.extend(lines(&a.on_line(
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"sign in"}}"#,
            t0,
        )));
        sent.extend(lines(&a.on_line(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#, t0)));
        a.on_line(r#"{"jsonrpc":"2.0","id":4,"result":{"sessionId":"s1"}}"#, t0);
        sent.extend(lines(&a.deliver("m1", "say hi", false, t0)));
        let ask = |id: i64| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"session/request_permission","params":{{"sessionId":"s1","toolCall":{{"toolCallId":"c{id}"}},"options":[{{"optionId":"a","name":"Allow","kind":"allow_once"}},{{"optionId":"A","name":"Always","kind":"allow_always"}},{{"optionId":"r","name":"Reject","kind":"reject_once"}}]}}}}"#
            )
        };
        let mut answers = Vec::new();
        for (id, decision) in [(10, Decision::Allow), (11, Decision::Always), (12, Decision::Deny)]
        {
            a.on_line(&ask(id), t0);
            answers.extend(lines(&a.answer(decision).unwrap()));
        }
        a.on_line(&ask(13), t0);
        sent.extend(lines(&a.interrupt(t0)));
        let refused = lines(&a.on_line(
            r#"{"jsonrpc":"2.0","id":14,"method":"terminal/create","params":{"sessionId":"s1","command":"ls"}}"#,
            t0,
        ));
        let methods: Vec<&str> = sent.iter().filter_map(|m| m["method"].as_str()).collect();
        assert_eq!(
            methods,
            [
                "initialize",
                "session/new",
                "authenticate",
                "session/new",
                "session/prompt",
                "session/cancel"
            ]
        );
        for message in sent.iter().filter(|m| m.get("method").is_some()) {
            valid(message, None);
        }
        // The cancel's answer to the waiting request is a reply too.
        let cancelled: Vec<&Value> = sent.iter().filter(|m| m.get("result").is_some()).collect();
        assert_eq!(cancelled.len(), 1);
        for answer in answers.iter().chain(cancelled) {
            valid(answer, Some("session/request_permission"));
        }
        valid(&refused[0], Some("terminal/create"));
    }

    /// Each recorded session, replayed: reins' own requests in the
    /// recording's order (its ids are the recording's), the agent's lines
    /// fed in. Returns the effects.
    fn replay(path: &std::path::Path) -> Vec<Effect> {
        let text = std::fs::read_to_string(path).unwrap();
        let t0 = Instant::now();
        let (mut a, _) = Acp::start(settings(), t0);
        let mut effects = Vec::new();
        let mut prompts = 0;
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let message = &record["msg"];
            if record["dir"] == "s2c" {
                effects.extend(a.on_line(&message.to_string(), t0));
                continue;
            }
            match message["method"].as_str() {
                Some("session/prompt") => {
                    prompts += 1;
                    let text = message["params"]["prompt"][0]["text"].as_str().unwrap();
                    effects.extend(a.deliver(&format!("m{prompts}"), text, false, t0));
                }
                Some("session/cancel") => effects.extend(a.interrupt(t0)),
                Some(_) => {}
                None => {
                    // The recording's answer to a permission request.
                    let chosen =
                        message.pointer("/result/outcome/optionId").and_then(Value::as_str);
                    let decision = match chosen {
                        Some(id) if id.contains("always") => Decision::Always,
                        Some("cancel" | "reject") => Decision::Deny,
                        Some(_) => Decision::Allow,
                        None => continue,
                    };
                    effects.extend(a.answer(decision).unwrap());
                }
            }
        }
        effects
    }

    fn recordings() -> Vec<std::path::PathBuf> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TRANSCRIPTS);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 12, "four sessions of each of three agents");
        files
    }

    /// The only method the agents sent that the schema does not have:
    /// Qwen Code's own request, which reins refuses (it is checked as an
    /// envelope only).
    const EXTENSIONS: [&str; 1] = ["craft/drainMidTurnQueue"];

    #[test]
    fn every_recorded_message_matches_the_schema() {
        let mut failures = Vec::new();
        let mut checked = 0;
        for path in recordings() {
            let mut pending: HashMap<(String, String), String> = HashMap::new();
            for (n, line) in std::fs::read_to_string(&path).unwrap().lines().enumerate() {
                let record: Value = serde_json::from_str(line).unwrap();
                let (side, dir) = match record["dir"].as_str() {
                    Some("c2s") => (Side::Client, "c2s"),
                    _ => (Side::Agent, "s2c"),
                };
                let message = &record["msg"];
                let method = message["method"].as_str();
                let id = message.get("id").map(Value::to_string);
                let answers = match (method, &id) {
                    (Some(method), Some(id)) => {
                        pending.insert((dir.to_string(), id.clone()), method.to_string());
                        None
                    }
                    (None, Some(id)) => {
                        let other = if dir == "c2s" { "s2c" } else { "c2s" };
                        pending.remove(&(other.to_string(), id.clone()))
                    }
                    _ => None,
                };
                if method.is_some_and(|m| EXTENSIONS.contains(&m))
                    || answers.as_deref().is_some_and(|m| EXTENSIONS.contains(&m))
                {
                    continue;
                }
                checked += 1;
                if let Err(err) = validate_message(side, message, answers.as_deref()) {
                    failures.push(format!("{}:{}: {err}", path.display(), n + 1));
                }
            }
        }
        assert!(checked >= 200, "only {checked} recorded messages");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn recorded_sessions_are_understood() {
        for path in recordings() {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let effects = replay(&path);
            for effect in &effects {
                if let Effect::Warning(w) = effect {
                    panic!("{name}: {w}");
                }
                if let Effect::Disconnected { message, .. } = effect {
                    panic!("{name}: {message}");
                }
                if let Effect::Send(line) = effect {
                    let message: Value = serde_json::from_str(line).unwrap();
                    let answers = message
                        .get("result")
                        .or(message.get("error"))
                        .map(|_| "session/request_permission");
                    let refusal = message.get("error").is_some();
                    if !refusal {
                        valid(&message, answers);
                    }
                }
            }
            let statuses: Vec<&str> = effects
                .iter()
                .filter_map(|e| match e {
                    Effect::TurnCompleted { status, .. } => Some(status.as_str()),
                    _ => None,
                })
                .collect();
            let shown = transcript_of(&effects);
            let asked =
                effects.iter().filter(|e| matches!(e, Effect::ApprovalAsked { .. })).count();
            let usage = effects.iter().filter(|e| matches!(e, Effect::Usage { .. })).count();
            let scenario = name.split_once('-').unwrap().1;
            match scenario {
                "turns" => {
                    assert_eq!(statuses, ["completed", "completed"], "{name}");
                    assert!(shown.contains("• MOCK_OK (you said: hello acp)"), "{name}:\n{shown}");
                    assert!(shown.contains("$ touch made.txt"), "{name}:\n{shown}");
                    assert!(shown.contains("• Tool finished."), "{name}:\n{shown}");
                    assert_eq!(asked, 1, "{name}");
                    assert_eq!(usage, 2, "{name}: usage per turn");
                }
                "deny" => {
                    assert_eq!(statuses, ["completed"], "{name}");
                    assert_eq!(asked, 1, "{name}");
                    assert!(shown.contains("approval: reject_once"), "{name}:\n{shown}");
                }
                "cancel" => assert_eq!(statuses, ["interrupted"], "{name}"),
                "error" => {
                    assert_eq!(statuses, ["completed", "failed", "completed"], "{name}");
                    let error = effects.iter().find_map(|e| match e {
                        Effect::TurnCompleted { error: Some(error), .. } => Some(error.clone()),
                        _ => None,
                    });
                    assert!(error.unwrap().contains("mock request rejected (400)"), "{name}");
                }
                other => panic!("unknown scenario {other}"),
            }
        }
    }

    fn transcript_of(effects: &[Effect]) -> String {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Transcript(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
