//! Codex's app-server protocol (JSON-RPC over stdio, one object per line,
//! no `jsonrpc` member), as codex-cli 0.169.0 speaks it.
//!
//! This is a state machine without I/O: the session hands it every line
//! the server writes and every request of its own (deliver, steer,
//! interrupt, approve), and does what the returned [`Effect`]s say. Types
//! follow the schema `codex app-server generate-json-schema` prints for the
//! pinned version (a pruned copy is in `tests/fixtures/`, and the payloads
//! built here are checked against it). Every request has a deadline; an
//! `error` notification that will be retried is only a warning; a server
//! request reins does not handle gets a JSON-RPC error, never silence.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::adapter::TurnStatus;
use crate::ipc::Decision;
use crate::state::{BlockedKind, Observed, State};
use crate::transport::{Effect, first_lines};

/// Notifications reins has no use for: the server is asked not to send them.
const OPT_OUT: [&str; 4] = [
    "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/summaryPartAdded",
    "item/reasoning/textDelta",
];

/// Approval requests kept waiting at once; codex asks one at a time, so
/// more is a server flooding the host, and is refused.
const MAX_APPROVALS: usize = 64;

/// How the thread is set up.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) client_version: String,
    pub(crate) cwd: String,
    /// `AskForApproval`: `untrusted`, `on-request` or `never`; None = the
    /// server's configuration.
    pub(crate) approval_policy: Option<String>,
    /// `SandboxMode`: `read-only`, `workspace-write`, `danger-full-access`.
    pub(crate) sandbox: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) request_timeout: Duration,
}

/// `initialize` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitializeParams {
    pub(crate) client_info: ClientInfo,
    pub(crate) capabilities: Capabilities,
}

#[derive(Debug, Serialize)]
pub(crate) struct ClientInfo {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) version: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Capabilities {
    pub(crate) experimental_api: bool,
    pub(crate) opt_out_notification_methods: Vec<String>,
}

/// `thread/start` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThreadStartParams {
    pub(crate) cwd: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) approval_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sandbox: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<String>,
}

/// One `UserInput` item: text.
#[derive(Debug, Serialize)]
pub(crate) struct TextInput {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

impl TextInput {
    fn new(text: &str) -> TextInput {
        TextInput { kind: "text", text: text.to_string() }
    }
}

/// Whether a turn error's `codexErrorInfo` means a usage or rate limit:
/// `usageLimitExceeded`, `rateLimitExceeded`, or a failed HTTP exchange
/// with status 429.
fn is_limit(info: &Value) -> bool {
    match info {
        Value::String(kind) => kind == "usageLimitExceeded" || kind == "rateLimitExceeded",
        Value::Object(map) => {
            map.values().any(|v| v.get("httpStatusCode").and_then(Value::as_u64) == Some(429))
        }
        _ => false,
    }
}

/// `turn/start` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TurnStartParams {
    pub(crate) thread_id: String,
    pub(crate) input: Vec<TextInput>,
}

/// `turn/steer` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TurnSteerParams {
    pub(crate) thread_id: String,
    pub(crate) expected_turn_id: String,
    pub(crate) input: Vec<TextInput>,
}

/// `turn/interrupt` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TurnInterruptParams {
    pub(crate) thread_id: String,
    pub(crate) turn_id: String,
}

#[derive(Debug, Clone)]
enum Pending {
    Initialize,
    ThreadStart,
    TurnStart { message_id: String, text: String },
    TurnSteer { message_id: String },
    TurnInterrupt,
}

#[derive(Debug, Clone)]
struct Request {
    pending: Pending,
    method: &'static str,
    deadline: Instant,
}

/// An approval request waiting for an answer.
#[derive(Debug, Clone)]
struct Asked {
    id: Value,
    method: String,
}

/// The client side of one app-server connection.
#[derive(Debug)]
pub(crate) struct CodexAppServer {
    settings: Settings,
    next_id: i64,
    requests: HashMap<i64, Request>,
    thread_id: Option<String>,
    /// The turn in progress and the message that opened it.
    turn: Option<(String, Option<String>)>,
    approvals: VecDeque<Asked>,
    /// The server's `userAgent` from the `initialize` answer (names its
    /// version): set once the handshake's first step succeeded.
    pub(crate) user_agent: Option<String>,
    /// When the exhausted rate-limit window resets (unix seconds), from the
    /// last `account/rateLimits/updated`.
    limit_resets_at: Option<i64>,
    /// The last thing that went wrong, for `status`.
    pub(crate) last_error: Option<String>,
}

impl CodexAppServer {
    /// Starts the handshake (`initialize`).
    pub(crate) fn start(settings: Settings, now: Instant) -> (CodexAppServer, Vec<Effect>) {
        let mut me = CodexAppServer {
            settings,
            next_id: 0,
            requests: HashMap::new(),
            thread_id: None,
            turn: None,
            approvals: VecDeque::new(),
            user_agent: None,
            limit_resets_at: None,
            last_error: None,
        };
        let params = InitializeParams {
            client_info: ClientInfo {
                name: "reins".into(),
                title: "reins".into(),
                version: me.settings.client_version.clone(),
            },
            capabilities: Capabilities {
                experimental_api: false,
                opt_out_notification_methods: OPT_OUT.iter().map(|s| s.to_string()).collect(),
            },
        };
        let send = me.request("initialize", &params, Pending::Initialize, now);
        (me, vec![send])
    }

    /// Whether a message can start a turn now.
    pub(crate) fn can_start_turn(&self) -> bool {
        self.thread_id.is_some()
            && self.turn.is_none()
            && !self.requests.values().any(|r| matches!(r.pending, Pending::TurnStart { .. }))
    }

    /// The turn in progress, if any.
    pub(crate) fn active_turn(&self) -> Option<&str> {
        self.turn.as_ref().map(|(id, _)| id.as_str())
    }

    /// Approval requests waiting for an answer.
    #[cfg(test)]
    pub(crate) fn waiting_approvals(&self) -> usize {
        self.approvals.len()
    }

    /// The earliest request deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.requests.values().map(|r| r.deadline).min()
    }

    /// Starts a turn with `text` (`turn/start`), or with `steer` adds it to
    /// the running turn (`turn/steer`).
    pub(crate) fn deliver(
        &mut self,
        message_id: &str,
        text: &str,
        steer: bool,
        now: Instant,
    ) -> Vec<Effect> {
        let Some(thread_id) = self.thread_id.clone() else {
            return vec![Effect::Refused {
                message_id: message_id.into(),
                reason: "the app-server thread is not started".into(),
            }];
        };
        match (&self.turn, steer) {
            (Some((turn_id, _)), true) => {
                let params = TurnSteerParams {
                    thread_id,
                    expected_turn_id: turn_id.clone(),
                    input: vec![TextInput::new(text)],
                };
                let pending = Pending::TurnSteer { message_id: message_id.into() };
                vec![self.request("turn/steer", &params, pending, now)]
            }
            (Some(_), false) => vec![Effect::Refused {
                message_id: message_id.into(),
                reason: "a turn is already running".into(),
            }],
            (None, _) => {
                let params = TurnStartParams { thread_id, input: vec![TextInput::new(text)] };
                let pending =
                    Pending::TurnStart { message_id: message_id.into(), text: text.into() };
                vec![self.request("turn/start", &params, pending, now)]
            }
        }
    }

    /// Asks the server to stop the running turn (`turn/interrupt`).
    pub(crate) fn interrupt(&mut self, now: Instant) -> Vec<Effect> {
        match (&self.thread_id, &self.turn) {
            (Some(thread_id), Some((turn_id, _))) => {
                let params =
                    TurnInterruptParams { thread_id: thread_id.clone(), turn_id: turn_id.clone() };
                vec![self.request("turn/interrupt", &params, Pending::TurnInterrupt, now)]
            }
            _ => Vec::new(),
        }
    }

    /// Answers the oldest approval request.
    pub(crate) fn answer(&mut self, decision: Decision) -> Result<Vec<Effect>, String> {
        let asked = self.approvals.pop_front().ok_or("no approval request is waiting")?;
        let decision = decision_for(&asked.method, decision);
        let line = json!({ "id": asked.id, "result": { "decision": decision } }).to_string();
        let mut effects = vec![
            Effect::Send(line),
            Effect::Transcript(format!("  approval: {}", decision_text(&decision))),
        ];
        if self.approvals.is_empty() {
            effects.push(Effect::State(Observed::plain(State::Busy)));
        }
        Ok(effects)
    }

    /// Handles one line from the server.
    pub(crate) fn on_line(&mut self, line: &str, now: Instant) -> Vec<Effect> {
        let value: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let shown: String = line.chars().take(200).collect();
                self.last_error = Some(format!("unreadable line from the server: {shown}"));
                return vec![Effect::Warning(format!(
                    "ignored an unreadable line from codex app-server: {shown}"
                ))];
            }
        };
        let id = value.get("id").cloned();
        let method = value.get("method").and_then(Value::as_str).map(str::to_string);
        match (id, method) {
            (Some(id), Some(method)) => self.on_server_request(id, &method, value.get("params")),
            (Some(id), None) => self.on_response(&id, &value, now),
            (None, Some(method)) => {
                self.on_notification(&method, value.get("params").unwrap_or(&Value::Null))
            }
            (None, None) => {
                let shown: String = line.chars().take(200).collect();
                vec![Effect::Warning(format!(
                    "ignored a message with neither id nor method: {shown}"
                ))]
            }
        }
    }

    /// Requests past their deadline fail: the server is not answering.
    pub(crate) fn on_deadline(&mut self, now: Instant) -> Vec<Effect> {
        let late: Vec<i64> =
            self.requests.iter().filter(|(_, r)| r.deadline <= now).map(|(id, _)| *id).collect();
        let mut effects = Vec::new();
        for id in late {
            let request = self.requests.remove(&id).expect("listed above");
            let message = format!(
                "{} got no answer within {:.0?}",
                request.method, self.settings.request_timeout
            );
            self.last_error = Some(message.clone());
            match request.pending {
                Pending::TurnStart { message_id, .. } | Pending::TurnSteer { message_id } => {
                    effects.push(Effect::Refused { message_id, reason: message.clone() });
                }
                Pending::TurnInterrupt => effects.push(Effect::Warning(message.clone())),
                Pending::Initialize | Pending::ThreadStart => {
                    effects.push(Effect::Disconnected {
                        source: "timeout".into(),
                        message: message.clone(),
                    });
                }
            }
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
        self.requests
            .insert(id, Request { pending, method, deadline: now + self.settings.request_timeout });
        Effect::Send(json!({ "id": id, "method": method, "params": params }).to_string())
    }

    fn on_response(&mut self, id: &Value, value: &Value, now: Instant) -> Vec<Effect> {
        let Some(request) = id.as_i64().and_then(|id| self.requests.remove(&id)) else {
            return Vec::new(); // an answer to a request that already timed out
        };
        if let Some(error) = value.get("error") {
            let message =
                error.get("message").and_then(Value::as_str).unwrap_or("error").to_string();
            let message = format!("{} failed: {message}", request.method);
            self.last_error = Some(message.clone());
            return match request.pending {
                Pending::TurnStart { message_id, .. } | Pending::TurnSteer { message_id } => {
                    vec![Effect::Refused { message_id, reason: message }]
                }
                Pending::TurnInterrupt => vec![Effect::Warning(message)],
                Pending::Initialize | Pending::ThreadStart => {
                    vec![Effect::Disconnected { source: "handshake".into(), message }]
                }
            };
        }
        let result = value.get("result").unwrap_or(&Value::Null);
        match request.pending {
            Pending::Initialize => {
                self.user_agent =
                    Some(result.get("userAgent").and_then(Value::as_str).unwrap_or("").to_string());
                let params = ThreadStartParams {
                    cwd: self.settings.cwd.clone(),
                    approval_policy: self.settings.approval_policy.clone(),
                    sandbox: self.settings.sandbox.clone(),
                    model: self.settings.model.clone(),
                };
                vec![
                    Effect::Send(json!({ "method": "initialized" }).to_string()),
                    self.request("thread/start", &params, Pending::ThreadStart, now),
                ]
            }
            Pending::ThreadStart => {
                let Some(thread) = result.pointer("/thread/id").and_then(Value::as_str) else {
                    let message = "thread/start answered without a thread id".to_string();
                    self.last_error = Some(message.clone());
                    return vec![Effect::Disconnected { source: "handshake".into(), message }];
                };
                self.thread_id = Some(thread.to_string());
                let model = result.get("model").and_then(Value::as_str).unwrap_or("?");
                vec![
                    Effect::Transcript(format!("codex app-server: thread {thread}, model {model}")),
                    Effect::State(Observed::plain(State::Ready)),
                ]
            }
            Pending::TurnStart { message_id, text } => {
                let Some(turn_id) = result.pointer("/turn/id").and_then(Value::as_str) else {
                    return vec![Effect::Refused {
                        message_id,
                        reason: "turn/start answered without a turn id".into(),
                    }];
                };
                self.open_turn(turn_id, Some(message_id.clone()), Some(&text))
            }
            Pending::TurnSteer { message_id } => {
                let turn_id = self.active_turn().unwrap_or_default().to_string();
                vec![Effect::Steered { message_id, turn_id }]
            }
            Pending::TurnInterrupt => Vec::new(),
        }
    }

    /// Records the turn as running (once, whether the response or the
    /// `turn/started` notification arrives first).
    fn open_turn(
        &mut self,
        turn_id: &str,
        message_id: Option<String>,
        text: Option<&str>,
    ) -> Vec<Effect> {
        if self.turn.as_ref().is_some_and(|(id, _)| id == turn_id) {
            return Vec::new();
        }
        self.turn = Some((turn_id.to_string(), message_id.clone()));
        let mut effects = vec![Effect::State(Observed::plain(State::Busy))];
        if let Some(text) = text {
            effects.push(Effect::Transcript(format!("› {}", first_lines(text, 20))));
        }
        effects.push(match message_id {
            Some(message_id) => Effect::Delivered { message_id, turn_id: turn_id.to_string() },
            None => Effect::TurnStarted { turn_id: turn_id.to_string() },
        });
        effects
    }

    fn on_notification(&mut self, method: &str, params: &Value) -> Vec<Effect> {
        let str_at = |p: &str| params.pointer(p).and_then(Value::as_str).map(str::to_string);
        match method {
            "turn/started" => {
                let Some(turn_id) = str_at("/turn/id") else { return Vec::new() };
                // Our turn/start may still be unanswered: the turn is its.
                let ours = self.requests.iter().find_map(|(id, r)| match &r.pending {
                    Pending::TurnStart { message_id, text } => {
                        Some((*id, message_id.clone(), text.clone()))
                    }
                    _ => None,
                });
                match ours {
                    Some((id, message_id, text)) if self.turn.is_none() => {
                        self.requests.remove(&id);
                        self.open_turn(&turn_id, Some(message_id), Some(&text))
                    }
                    _ => self.open_turn(&turn_id, None, None),
                }
            }
            "turn/completed" => {
                let turn_id = str_at("/turn/id").unwrap_or_default();
                let status = match str_at("/turn/status").as_deref() {
                    Some("failed") => TurnStatus::Failed,
                    Some("interrupted") => TurnStatus::Interrupted,
                    _ => TurnStatus::Completed,
                };
                let error = str_at("/turn/error/message");
                if self.turn.as_ref().is_some_and(|(id, _)| *id == turn_id) {
                    self.turn = None;
                }
                self.approvals.clear();
                let mut effects = Vec::new();
                if let Some(error) = &error {
                    self.last_error = Some(error.clone());
                    effects.push(Effect::Transcript(format!("⚠ {error}")));
                }
                effects.push(Effect::Transcript(format!(
                    "─ turn {} ({})",
                    short(&turn_id),
                    status.as_str()
                )));
                let limited = params.pointer("/turn/error/codexErrorInfo").is_some_and(is_limit);
                effects.push(Effect::TurnCompleted { turn_id, status, error: error.clone() });
                if limited {
                    effects
                        .push(Effect::RateLimited { until: self.limit_resets_at, message: error });
                } else {
                    effects.push(Effect::State(Observed::plain(State::Ready)));
                }
                effects
            }
            "account/rateLimits/updated" => {
                // The latest reset of a window that is used up, if any.
                let limits = params.get("rateLimits").unwrap_or(&Value::Null);
                self.limit_resets_at = ["primary", "secondary"]
                    .iter()
                    .filter_map(|w| limits.get(*w))
                    .filter(|w| w.get("usedPercent").and_then(Value::as_i64).unwrap_or(0) >= 100)
                    .filter_map(|w| w.get("resetsAt").and_then(Value::as_i64))
                    .max();
                Vec::new()
            }
            "item/completed" => {
                let item = params.get("item").unwrap_or(&Value::Null);
                let lines = item_lines(item).into_iter().map(Effect::Transcript);
                answer_of(item).into_iter().chain(lines).collect()
            }
            "thread/tokenUsage/updated" => {
                let last = params.pointer("/tokenUsage/last").unwrap_or(&Value::Null);
                let num = |k: &str| last.get(k).and_then(Value::as_u64).map(|n| n.to_string());
                let fields: BTreeMap<String, String> = [
                    ("input_tokens", num("inputTokens")),
                    ("cached_tokens", num("cachedInputTokens")),
                    ("output_tokens", num("outputTokens")),
                    ("reasoning_tokens", num("reasoningOutputTokens")),
                    ("total_tokens", num("totalTokens")),
                ]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect();
                vec![Effect::Usage { turn_id: str_at("/turnId"), fields }]
            }
            "thread/status/changed" => {
                let flags = params.pointer("/status/activeFlags").and_then(Value::as_array);
                let waiting = flags.is_some_and(|f| f.iter().any(|x| x == "waitingOnApproval"));
                if waiting {
                    vec![Effect::State(Observed {
                        state: State::Blocked,
                        kind: Some(BlockedKind::Approval),
                    })]
                } else {
                    Vec::new()
                }
            }
            "error" => {
                let message = str_at("/error/message").unwrap_or_else(|| "error".into());
                let will_retry = params.get("willRetry").and_then(Value::as_bool).unwrap_or(false);
                self.last_error = Some(message.clone());
                if will_retry {
                    vec![Effect::Warning(format!("{message} (codex retries)"))]
                } else {
                    // The turn fails and completes; the connection lives on.
                    vec![Effect::Transcript(format!("⚠ error: {message}"))]
                }
            }
            "warning" | "configWarning" => {
                let message = str_at("/message").or_else(|| str_at("/summary")).unwrap_or_default();
                vec![Effect::Warning(message)]
            }
            _ => Vec::new(),
        }
    }

    fn on_server_request(
        &mut self,
        id: Value,
        method: &str,
        params: Option<&Value>,
    ) -> Vec<Effect> {
        let params = params.unwrap_or(&Value::Null);
        match method {
            "item/commandExecution/requestApproval"
            | "item/fileChange/requestApproval"
            | "execCommandApproval"
            | "applyPatchApproval"
                if self.approvals.len() >= MAX_APPROVALS =>
            {
                let line = json!({
                    "id": id,
                    "error": { "code": -32000, "message": "too many approval requests are waiting" }
                })
                .to_string();
                vec![
                    Effect::Send(line),
                    Effect::Warning(format!("refused {method}: {MAX_APPROVALS} approvals wait")),
                ]
            }
            "item/commandExecution/requestApproval"
            | "item/fileChange/requestApproval"
            | "execCommandApproval"
            | "applyPatchApproval" => {
                let what = params
                    .get("command")
                    .map(|c| match c {
                        Value::Array(parts) => {
                            parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")
                        }
                        other => other.as_str().unwrap_or_default().to_string(),
                    })
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| "a file change".into());
                self.approvals.push_back(Asked { id, method: method.into() });
                vec![
                    Effect::Transcript(format!("? approval needed: {what}")),
                    Effect::ApprovalAsked { detail: what },
                    Effect::State(Observed {
                        state: State::Blocked,
                        kind: Some(BlockedKind::Approval),
                    }),
                ]
            }
            _ => {
                let line = json!({
                    "id": id,
                    "error": { "code": -32601, "message": format!("reins does not handle {method}") }
                })
                .to_string();
                vec![
                    Effect::Send(line),
                    Effect::Warning(format!("refused server request {method}")),
                ]
            }
        }
    }
}

/// The decision value each approval request method takes.
fn decision_for(method: &str, decision: Decision) -> Value {
    let legacy = matches!(method, "execCommandApproval" | "applyPatchApproval");
    match (legacy, decision) {
        (false, Decision::Allow) => json!("accept"),
        (false, Decision::Always) => json!("acceptForSession"),
        (false, Decision::Deny) => json!("decline"),
        (true, Decision::Allow) => json!("approved"),
        (true, Decision::Always) => json!("approved_for_session"),
        (true, Decision::Deny) => {
            json!({ "denied": { "rejection": "denied by reins approve --deny" } })
        }
    }
}

fn decision_text(decision: &Value) -> String {
    match decision {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.keys().next().cloned().unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A finished agent message: the turn's answer so far.
fn answer_of(item: &Value) -> Option<Effect> {
    (item.get("type").and_then(Value::as_str) == Some("agentMessage"))
        .then(|| item.get("text").and_then(Value::as_str))
        .flatten()
        .map(|text| Effect::Answer { text: text.to_string(), cut: 0 })
}

/// Transcript lines for a finished item.
fn item_lines(item: &Value) -> Vec<String> {
    let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
    match s("type") {
        "agentMessage" => vec![format!("• {}", first_lines(s("text"), 200))],
        "commandExecution" => {
            let code = item.get("exitCode").and_then(Value::as_i64);
            let status = s("status");
            let mut lines = vec![match code {
                Some(code) => format!("$ {} (exit {code})", s("command")),
                None => format!("$ {} ({status})", s("command")),
            }];
            let output = s("aggregatedOutput");
            lines.extend(output.lines().take(10).map(|l| format!("  {l}")));
            lines
        }
        "fileChange" => {
            let changes = item.get("changes").and_then(Value::as_array);
            let paths: Vec<&str> = changes
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("path").and_then(Value::as_str))
                .collect();
            vec![format!("✎ {} ({})", paths.join(", "), s("status"))]
        }
        "reasoning" => item
            .get("summary")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| format!("  thinking: {}", first_lines(s, 3)))
            .collect(),
        _ => Vec::new(),
    }
}

/// The first 13 characters of a turn id (a UUID's first two groups).
/// Characters, not bytes: the id is the server's and may be anything.
fn short(id: &str) -> &str {
    id.char_indices().nth(13).map_or(id, |(at, _)| &id[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            client_version: "0.1.0".into(),
            cwd: "/w".into(),
            approval_policy: Some("on-request".into()),
            sandbox: Some("read-only".into()),
            model: None,
            request_timeout: Duration::from_secs(5),
        }
    }

    use crate::transport::sent_json as sent;

    fn ready() -> (CodexAppServer, Instant) {
        let t0 = Instant::now();
        let (mut c, _) = CodexAppServer::start(settings(), t0);
        c.on_line(r#"{"id":1,"result":{"userAgent":"x"}}"#, t0);
        c.on_line(r#"{"id":2,"result":{"thread":{"id":"th-1"},"model":"mock-model"}}"#, t0);
        (c, t0)
    }

    #[test]
    fn handshake_then_a_turn_with_its_real_id_and_usage() {
        let t0 = Instant::now();
        let (mut c, effects) = CodexAppServer::start(settings(), t0);
        let init = &sent(&effects)[0];
        assert_eq!(init["method"], "initialize");
        assert!(init.get("jsonrpc").is_none(), "no jsonrpc member");
        assert_eq!(
            init["params"]["capabilities"]["optOutNotificationMethods"][0],
            "item/agentMessage/delta"
        );
        let next = sent(&c.on_line(r#"{"id":1,"result":{"userAgent":"x"}}"#, t0));
        assert_eq!(next[0], json!({ "method": "initialized" }));
        assert_eq!(next[1]["method"], "thread/start");
        assert_eq!(next[1]["params"]["approvalPolicy"], "on-request");
        let e = c.on_line(r#"{"id":2,"result":{"thread":{"id":"th-1"},"model":"m"}}"#, t0);
        assert!(e.contains(&Effect::State(Observed::plain(State::Ready))));
        assert!(c.can_start_turn());

        let e = c.deliver("m1", "say hi", false, t0);
        let start = &sent(&e)[0];
        assert_eq!(start["method"], "turn/start");
        assert_eq!(start["params"]["input"], json!([{ "type": "text", "text": "say hi" }]));
        let e = c.on_line(r#"{"id":3,"result":{"turn":{"id":"tu-1","status":"inProgress"}}}"#, t0);
        assert!(e.contains(&Effect::Delivered { message_id: "m1".into(), turn_id: "tu-1".into() }));
        // The notification for the same turn adds nothing.
        assert!(
            c.on_line(
                r#"{"method":"turn/started","params":{"threadId":"th-1","turn":{"id":"tu-1"}}}"#,
                t0
            )
            .is_empty()
        );
        let e = c.on_line(
            r#"{"method":"thread/tokenUsage/updated","params":{"threadId":"th-1","turnId":"tu-1","tokenUsage":{"total":{"totalTokens":105,"inputTokens":100,"cachedInputTokens":0,"outputTokens":5,"reasoningOutputTokens":0},"last":{"totalTokens":105,"inputTokens":100,"cachedInputTokens":0,"outputTokens":5,"reasoningOutputTokens":0}}}}"#,
            t0,
        );
        match &e[0] {
            Effect::Usage { turn_id, fields } => {
                assert_eq!(turn_id.as_deref(), Some("tu-1"));
                assert_eq!(fields["total_tokens"], "105");
            }
            other => panic!("{other:?}"),
        }
        // Each finished agent message is the answer so far: the last wins.
        for text in ["Looking.", "line 1\n\n  line 2 "] {
            let item = json!({ "method": "item/completed", "params": { "threadId": "th-1",
                "turnId": "tu-1", "item": { "type": "agentMessage", "id": "i", "text": text } } });
            let e = c.on_line(&item.to_string(), t0);
            assert_eq!(e[0], Effect::Answer { text: text.into(), cut: 0 });
        }
        let e = c.on_line(r#"{"method":"turn/completed","params":{"threadId":"th-1","turn":{"id":"tu-1","status":"completed","error":null}}}"#, t0);
        assert!(e.contains(&Effect::TurnCompleted {
            turn_id: "tu-1".into(),
            status: TurnStatus::Completed,
            error: None
        }));
        assert!(c.can_start_turn());
    }

    #[test]
    fn a_usage_limit_is_reported_with_its_reset() {
        let (mut c, t0) = ready();
        sent(&c.deliver("m1", "go", false, t0));
        c.on_line(r#"{"id":3,"result":{"turn":{"id":"tu-1","status":"inProgress"}}}"#, t0);
        let none = c.on_line(r#"{"method":"account/rateLimits/updated","params":{"rateLimits":{"primary":{"usedPercent":100,"windowDurationMins":300,"resetsAt":1795449807},"secondary":{"usedPercent":40,"resetsAt":1795999999}}}}"#, t0);
        assert!(none.is_empty());
        let e = c.on_line(r#"{"method":"turn/completed","params":{"threadId":"th-1","turn":{"id":"tu-1","status":"failed","error":{"message":"You've hit your usage limit. Try again at 4:03 PM.","codexErrorInfo":"usageLimitExceeded"}}}}"#, t0);
        assert!(
            e.contains(&Effect::RateLimited {
                until: Some(1795449807),
                message: Some("You've hit your usage limit. Try again at 4:03 PM.".into())
            }),
            "{e:?}"
        );
        assert!(!e.iter().any(|x| matches!(x, Effect::State(_))), "not ready: limited");
        // An HTTP 429 that exhausted the retries is a limit too.
        assert!(is_limit(&json!({"responseTooManyFailedAttempts": {"httpStatusCode": 429}})));
        assert!(!is_limit(&json!({"responseTooManyFailedAttempts": {"httpStatusCode": 500}})));
        assert!(!is_limit(&json!("internalServerError")));
    }

    #[test]
    fn the_notification_may_come_before_the_response() {
        let (mut c, t0) = ready();
        c.deliver("m1", "go", false, t0);
        let e = c.on_line(r#"{"method":"turn/started","params":{"turn":{"id":"tu-9"}}}"#, t0);
        assert!(e.contains(&Effect::Delivered { message_id: "m1".into(), turn_id: "tu-9".into() }));
        assert!(c.on_line(r#"{"id":3,"result":{"turn":{"id":"tu-9"}}}"#, t0).is_empty());
    }

    #[test]
    fn approvals_use_the_schema_enums_and_unknown_requests_get_an_error() {
        let (mut c, t0) = ready();
        let e = c.on_line(
            r#"{"id":0,"method":"item/commandExecution/requestApproval","params":{"command":"touch x","itemId":"i","threadId":"t","turnId":"u","startedAtMs":1}}"#,
            t0,
        );
        assert!(e.contains(&Effect::State(Observed {
            state: State::Blocked,
            kind: Some(BlockedKind::Approval)
        })));
        let answer = sent(&c.answer(Decision::Always).unwrap())[0].clone();
        assert_eq!(answer, json!({ "id": 0, "result": { "decision": "acceptForSession" } }));
        assert!(c.answer(Decision::Allow).is_err(), "nothing left to answer");
        c.on_line(r#"{"id":"x7","method":"execCommandApproval","params":{"command":["ls"],"callId":"c","conversationId":"t","cwd":"/","parsedCmd":[]}}"#, t0);
        let deny = sent(&c.answer(Decision::Deny).unwrap())[0].clone();
        assert_eq!(
            deny["result"]["decision"]["denied"]["rejection"],
            "denied by reins approve --deny"
        );
        let e = c.on_line(r#"{"id":5,"method":"item/tool/requestUserInput","params":{}}"#, t0);
        assert_eq!(sent(&e)[0]["error"]["code"], -32601);
    }

    #[test]
    fn retried_errors_are_warnings_and_garbage_is_survived() {
        let (mut c, t0) = ready();
        let e = c.on_line(
            r#"{"method":"error","params":{"error":{"message":"busy"},"willRetry":true}}"#,
            t0,
        );
        assert!(matches!(e[0], Effect::Warning(_)));
        let e = c.on_line("{not json", t0);
        assert!(matches!(e[0], Effect::Warning(_)));
        assert!(c.last_error.as_deref().unwrap().contains("unreadable"));
    }

    #[test]
    fn a_silent_server_times_out() {
        let t0 = Instant::now();
        let (mut c, _) = CodexAppServer::start(settings(), t0);
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(5)));
        let e = c.on_deadline(t0 + Duration::from_secs(6));
        assert!(
            matches!(&e[0], Effect::Disconnected { message, .. } if message.contains("initialize"))
        );
    }

    #[test]
    fn steer_and_interrupt_name_the_running_turn() {
        let (mut c, t0) = ready();
        c.deliver("m1", "go", false, t0);
        c.on_line(r#"{"id":3,"result":{"turn":{"id":"tu-1"}}}"#, t0);
        let steer = sent(&c.deliver("m2", "also this", true, t0))[0].clone();
        assert_eq!(steer["method"], "turn/steer");
        assert_eq!(steer["params"]["expectedTurnId"], "tu-1");
        assert!(matches!(&c.deliver("m3", "x", false, t0)[0], Effect::Refused { .. }));
        let stop = sent(&c.interrupt(t0))[0].clone();
        assert_eq!(stop["params"], json!({ "threadId": "th-1", "turnId": "tu-1" }));
    }
}

/// Contract tests: every message reins sends is valid under the schema
/// codex-cli 0.169.0 prints, and every message recorded from the real
/// server is understood.
#[cfg(test)]
mod contract {
    use super::*;
    use crate::transport::schema::validate;

    fn settings() -> Settings {
        Settings {
            client_version: "0.1.0".into(),
            cwd: "/w".into(),
            approval_policy: Some("on-request".into()),
            sandbox: Some("workspace-write".into()),
            model: Some("mock-model".into()),
            request_timeout: Duration::from_secs(5),
        }
    }

    use crate::transport::sent_json as lines;

    #[track_caller]
    fn valid(definition: &str, message: &Value) {
        if let Err(err) = validate(definition, message) {
            panic!("{err}\nmessage: {message}");
        }
    }

    #[test]
    fn every_request_reins_sends_matches_the_schema() {
        let t0 = Instant::now();
        let (mut c, effects) = CodexAppServer::start(settings(), t0);
        let mut sent = lines(&effects);
        sent.extend(lines(&c.on_line(r#"{"id":1,"result":{"userAgent":"x"}}"#, t0)));
        c.on_line(r#"{"id":2,"result":{"thread":{"id":"th-1"},"model":"m"}}"#, t0);
        sent.extend(lines(&c.deliver("m1", "say hi", false, t0)));
        c.on_line(r#"{"id":3,"result":{"turn":{"id":"tu-1"}}}"#, t0);
        sent.extend(lines(&c.deliver("m2", "and this", true, t0)));
        sent.extend(lines(&c.interrupt(t0)));
        let methods: Vec<&str> = sent.iter().map(|m| m["method"].as_str().unwrap()).collect();
        assert_eq!(
            methods,
            [
                "initialize",
                "initialized",
                "thread/start",
                "turn/start",
                "turn/steer",
                "turn/interrupt"
            ]
        );
        for message in &sent {
            if message.get("id").is_some() {
                valid("ClientRequest", message);
            } else {
                valid("ClientNotification", message);
            }
        }
    }

    #[test]
    fn every_approval_answer_matches_the_schema() {
        let requests = [
            ("item/commandExecution/requestApproval", "CommandExecutionRequestApprovalResponse"),
            ("item/fileChange/requestApproval", "FileChangeRequestApprovalResponse"),
            ("execCommandApproval", "ExecCommandApprovalResponse"),
            ("applyPatchApproval", "ApplyPatchApprovalResponse"),
        ];
        for (method, response) in requests {
            for decision in [Decision::Allow, Decision::Always, Decision::Deny] {
                let t0 = Instant::now();
                let (mut c, _) = CodexAppServer::start(settings(), t0);
                let request = json!({ "id": 0, "method": method, "params": {} }).to_string();
                c.on_line(&request, t0);
                let answer = lines(&c.answer(decision).unwrap()).remove(0);
                valid(response, &answer["result"]);
            }
        }
        // A request reins does not handle gets a JSON-RPC error.
        let (mut c, _) = CodexAppServer::start(settings(), Instant::now());
        let error = lines(&c.on_line(
            r#"{"id":9,"method":"item/tool/requestUserInput","params":{}}"#,
            Instant::now(),
        ));
        valid("JSONRPCError", &error[0]);
    }

    /// The recorded sessions of the real server, replayed: every line is
    /// read without complaint, turns open and close with their real ids,
    /// usage arrives, approvals are asked.
    #[test]
    fn recorded_server_messages_are_understood() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/codex-app-server-transcripts");
        let mut turns_completed = 0;
        let mut usage = 0;
        let mut asked = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let t0 = Instant::now();
            let (mut c, _) = CodexAppServer::start(settings(), t0);
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let record: Value = serde_json::from_str(line).unwrap();
                let Some(message) =
                    record.get("s2c").or_else(|| (record["dir"] == "s2c").then(|| &record["msg"]))
                else {
                    continue;
                };
                // Server requests and notifications are what the client parses.
                if message.get("method").is_none() {
                    continue;
                }
                for effect in c.on_line(&message.to_string(), t0) {
                    match effect {
                        Effect::Warning(w) => {
                            assert!(!w.contains("unreadable"), "{}: {w}", path.display())
                        }
                        Effect::TurnCompleted { turn_id, .. } => {
                            assert!(!turn_id.is_empty());
                            turns_completed += 1;
                        }
                        Effect::Usage { fields, .. } => {
                            assert!(fields.contains_key("total_tokens"));
                            usage += 1;
                        }
                        Effect::ApprovalAsked { .. } => asked += 1,
                        _ => {}
                    }
                }
            }
        }
        assert!(turns_completed >= 3, "{turns_completed} turns completed");
        assert!(usage >= 3, "{usage} usage updates");
        assert!(asked >= 2, "{asked} approvals asked");
    }
}
