//! Sessions on a structured transport (codex app-server, claude
//! stream-json, the Agent Client Protocol): the protocol state machine fed with the agent's lines, and
//! its effects turned into the session's state, turns, events and a
//! synthesized transcript — the same events and the same `pane`/`logs` as
//! a terminal agent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::adapter::Transport;
use crate::adapter::TurnStatus;
use crate::host::session::{Link, Session};
use crate::ipc::Decision;
use crate::state::{BlockedKind, Observed, State};
use crate::store::events::{EventKind, FoundAnswer, preview};
use crate::store::inbox::{Message, MessageStatus};
use crate::transport::acp::{self, Acp};
use crate::transport::claude::ClaudeStream;
use crate::transport::codex::{CodexAppServer, Settings};
use crate::transport::stdio::{Lines, NotSent, Output, Outputs};
use crate::transport::{Effect, MAX_FIELD, Protocol};

/// The protocol side of a session.
pub(crate) struct ProtocolLink {
    /// None until `connect` starts it.
    pub(crate) protocol: Option<Protocol>,
    /// The agent's stdin; None once closed (stopping).
    lines: Option<Lines>,
    /// What the agent writes; its readers wait while the session is
    /// behind (see [`crate::transport::stdio`]).
    pub(crate) output: Outputs,
    pub(crate) stdout_open: bool,
    /// The message whose `turn/start` (or `turn/steer`) is under way.
    pub(crate) in_flight: Option<Message>,
    /// The server's turn ids → reins' turn numbers.
    turn_numbers: HashMap<String, u64>,
    /// Transcript lines produced where the session could not await; they
    /// are written before the next output of the agent.
    notes: Vec<String>,
    /// The agent's latest message in the open turn: its answer so far.
    answer: Option<FoundAnswer>,
}

impl ProtocolLink {
    pub(crate) fn new(lines: Lines, output: Outputs) -> Self {
        ProtocolLink {
            protocol: None,
            lines: Some(lines),
            output,
            stdout_open: true,
            in_flight: None,
            turn_numbers: HashMap::new(),
            notes: Vec::new(),
            answer: None,
        }
    }
}

impl Session {
    fn proto(&mut self) -> Option<&mut ProtocolLink> {
        match &mut self.link {
            Link::Protocol(link) => Some(link),
            Link::Terminal { .. } => None,
        }
    }

    /// Starts the protocol (codex, ACP: the handshake) on a protocol link.
    pub(super) fn connect(&mut self) {
        let protocol = match self.spec.transport {
            Transport::ClaudeStreamJson => {
                let (p, effects) = ClaudeStream::start();
                (Protocol::Claude(p), effects)
            }
            Transport::Acp => {
                let (p, effects) = Acp::start(self.acp_settings(), Instant::now());
                (Protocol::Acp(Box::new(p)), effects)
            }
            _ => {
                let (p, effects) = CodexAppServer::start(self.codex_settings(), Instant::now());
                (Protocol::Codex(Box::new(p)), effects)
            }
        };
        let Some(link) = self.proto() else { return };
        let (protocol, effects) = protocol;
        link.protocol = Some(protocol);
        self.apply_sync(effects);
    }

    fn codex_settings(&self) -> Settings {
        Settings {
            client_version: env!("CARGO_PKG_VERSION").into(),
            cwd: self.spec.cwd.display().to_string(),
            approval_policy: self
                .profile
                .app_server
                .as_ref()
                .and_then(|a| a.approval_policy.clone()),
            sandbox: self.spec.sandbox.clone(),
            model: self
                .spec
                .meta
                .as_ref()
                .and_then(|m| m.get("model"))
                .and_then(|m| m.as_str())
                .map(str::to_string),
            request_timeout: Duration::from_millis(
                self.profile.app_server.as_ref().map_or(30_000, |a| a.request_timeout_ms),
            ),
        }
    }

    /// The ACP connection's settings: the sign-in methods whose
    /// credentials are in the agent's environment (or its files).
    fn acp_settings(&self) -> acp::Settings {
        let env = super::agent_env(&self.spec, &self.paths, &self.profile);
        let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let spec = self.profile.acp.as_ref();
        acp::Settings {
            client_version: env!("CARGO_PKG_VERSION").into(),
            cwd: self.spec.cwd.display().to_string(),
            request_timeout: Duration::from_millis(spec.map_or(60_000, |a| a.request_timeout_ms)),
            credentials: spec.map(|a| a.credentials(&lookup)).unwrap_or_default(),
        }
    }

    pub(super) async fn on_protocol_output(&mut self, output: Output) {
        match output {
            Output::Line(line) => {
                tracing::debug!(target: "protocol", "<- {line}");
                self.progress.note(crate::host::progress::Source::Protocol);
                let effects = match self.proto().and_then(|c| c.protocol.as_mut()) {
                    Some(protocol) => protocol.on_line(&line, Instant::now()),
                    None => Vec::new(),
                };
                self.apply(effects).await;
            }
            Output::Garbled { error } => {
                tracing::warn!("the agent wrote {error}");
                self.note_error(format!("the agent wrote {error}"));
            }
            Output::Stderr(line) => {
                tracing::info!(target: "agent_stderr", "{line}");
                let lower = line.to_ascii_lowercase();
                if lower.contains("error") || lower.contains("panic") {
                    self.note_error(crate::transport::clip(&line, MAX_FIELD).into_owned());
                }
            }
            Output::Closed { error } => {
                if let Some(codex) = self.proto() {
                    codex.stdout_open = false;
                }
                if self.stop.is_none() {
                    let message = error.unwrap_or_else(|| "the agent closed its output".into());
                    self.disconnect("transport", &message).await;
                }
            }
        }
    }

    pub(super) async fn on_protocol_deadline(&mut self) {
        let effects = match self.proto().and_then(|c| c.protocol.as_mut()) {
            Some(protocol) => protocol.on_deadline(Instant::now()),
            None => Vec::new(),
        };
        self.apply(effects).await;
    }

    /// Reads what the server wrote before it exited.
    pub(super) async fn drain_protocol(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        loop {
            let next = match self.proto() {
                Some(codex) if codex.stdout_open => {
                    tokio::time::timeout_at(deadline, codex.output.recv()).await
                }
                _ => return,
            };
            match next {
                Ok(Some(output)) => Box::pin(self.on_protocol_output(output)).await,
                _ => return,
            }
        }
    }

    /// Effects that need no awaiting (start-up): transcript lines are
    /// written without a relay flush.
    /// Effects applied where the session cannot await (start-up, control
    /// requests): lines and states now, transcript notes before the next
    /// output of the agent.
    fn apply_sync(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(line) => self.protocol_send(line),
                Effect::State(observed) => self.set_state(observed, None),
                Effect::Transcript(text) => {
                    if let Some(link) = self.proto() {
                        link.notes.push(text);
                    }
                }
                _ => {}
            }
        }
    }

    async fn apply(&mut self, effects: Vec<Effect>) {
        let notes = self.proto().map(|l| std::mem::take(&mut l.notes)).unwrap_or_default();
        for note in notes {
            self.write_transcript(&note).await;
        }
        let approval = Observed { state: State::Blocked, kind: Some(BlockedKind::Approval) };
        for effect in effects {
            match effect {
                Effect::Send(line) => self.protocol_send(line),
                // The request it came with was answered by the session's
                // policy already: the agent is not waiting.
                Effect::State(observed)
                    if observed == approval && self.approvals.front().is_none() => {}
                Effect::State(observed) => {
                    self.set_state(observed, None);
                    self.try_deliver();
                }
                Effect::Transcript(text) => self.write_transcript(&text).await,
                Effect::Delivered { message_id, turn_id } => {
                    self.protocol_delivered(&message_id, turn_id, false)
                }
                Effect::Steered { message_id, turn_id } => {
                    self.protocol_delivered(&message_id, turn_id, true)
                }
                Effect::Refused { message_id, reason } => {
                    self.protocol_refused(&message_id, reason)
                }
                Effect::TurnStarted { turn_id } => {
                    let turn = self.turns.start(None, true);
                    self.record.turn = turn;
                    self.write_registry();
                    if let Some(codex) = self.proto() {
                        codex.turn_numbers.insert(turn_id.clone(), turn);
                        codex.answer = None;
                    }
                    self.emit_in_turn(turn, &EventKind::TurnStarted { message_id: None });
                }
                Effect::Answer { text, cut } => {
                    let source = self.spec.transport.as_str();
                    if let Some(link) = self.proto() {
                        link.answer = Some(FoundAnswer::new(&text, source, cut));
                    }
                }
                Effect::TurnCompleted { turn_id, status, error } => {
                    self.protocol_turn_done(&turn_id, status, error)
                }
                Effect::RateLimited { until, message } => {
                    let until = until
                        .and_then(|s| jiff::Timestamp::from_second(s).ok())
                        .map(|t| (t, jiff::SignedDuration::from_secs(1)));
                    self.on_rate_limited(until, "protocol", message, None);
                }
                Effect::Usage { turn_id, fields } => {
                    let turn = turn_id
                        .and_then(|t| self.proto().and_then(|c| c.turn_numbers.get(&t).copied()));
                    let event = EventKind::usage(&fields, self.spec.transport.as_str().into());
                    self.record.usage = serde_json::to_value(&fields).ok();
                    self.write_registry();
                    match turn {
                        Some(turn) => self.emit_in_turn(turn, &event),
                        None => self.emit(&event),
                    }
                }
                // Named before the `blocked` state it brings is set, so
                // whoever sees that state finds the request's name in
                // `status`; answered at once if the policy says so (then
                // that state is not set at all, see above).
                Effect::ApprovalAsked { detail } => self.approval_asked(Some(detail)),
                Effect::Disconnected { source, message } => {
                    self.disconnect(&source, &message).await
                }
                Effect::Warning(message) => {
                    tracing::warn!("agent: {message}");
                    self.write_transcript(&format!("⚠ {message}")).await;
                }
            }
        }
    }

    fn protocol_send(&mut self, line: String) {
        tracing::debug!(target: "protocol", "-> {line}");
        let sent = match self.proto().and_then(|c| c.lines.as_ref()) {
            Some(lines) => lines.send(line),
            None => Err(NotSent::Closed),
        };
        match sent {
            Ok(()) => {}
            Err(NotSent::Closed) => tracing::debug!("a line was not sent: {}", NotSent::Closed),
            // The request it carried times out like any unanswered one.
            Err(err @ NotSent::Backlogged) => tracing::warn!("a line was not sent: {err}"),
        }
    }

    /// Synthesized transcript: the lines go where a terminal agent's output
    /// goes (transcript.log, the screen, a relayed terminal).
    async fn write_transcript(&mut self, text: &str) {
        let mut bytes = text.replace('\n', "\r\n").into_bytes();
        bytes.extend_from_slice(b"\r\n");
        self.on_output(&bytes).await;
    }

    /// Starts the next queued message as a turn (or a steer, when forced
    /// into a running turn).
    pub(super) fn protocol_try_deliver(&mut self) {
        let state = self.observed.state;
        let force = self.queue.front().map(|m| m.force);
        let Some(codex) = self.proto() else { return };
        let Some(protocol) = codex.protocol.as_ref() else { return };
        let Some(force) = force else { return };
        if codex.in_flight.is_some() {
            return;
        }
        let steer = force && protocol.has_active_turn();
        if !(steer || (state == State::Ready && protocol.can_start_turn())) {
            return;
        }
        let message = match self.queue.take_front() {
            Ok(Some(m)) => m,
            _ => return,
        };
        if !message.submit || message.submit_only {
            let reason =
                "a structured transport cannot type without submitting, or submit without text";
            self.protocol_in_flight(message.clone());
            self.protocol_refused(&message.id, reason.into());
            return;
        }
        let codex = self.proto().expect("checked above");
        let protocol = codex.protocol.as_mut().expect("checked above");
        let effects = protocol.deliver(&message.id, &message.text, steer, Instant::now());
        codex.in_flight = Some(message);
        let (outcomes, rest): (Vec<Effect>, Vec<Effect>) = effects
            .into_iter()
            .partition(|e| matches!(e, Effect::Refused { .. } | Effect::Delivered { .. }));
        self.apply_sync(rest);
        // ACP's turn starts with the request itself: delivered at once.
        for effect in outcomes {
            match effect {
                Effect::Refused { message_id, reason } => {
                    self.protocol_refused(&message_id, reason)
                }
                Effect::Delivered { message_id, turn_id } => {
                    self.protocol_delivered(&message_id, turn_id, false)
                }
                _ => {}
            }
        }
    }

    fn protocol_in_flight(&mut self, message: Message) {
        if let Some(codex) = self.proto() {
            codex.in_flight = Some(message);
        }
    }

    fn take_in_flight(&mut self, message_id: &str) -> Option<Message> {
        let codex = self.proto()?;
        if codex.in_flight.as_ref().is_some_and(|m| m.id == message_id) {
            codex.in_flight.take()
        } else {
            None
        }
    }

    fn protocol_delivered(&mut self, message_id: &str, turn_id: String, steered: bool) {
        let Some(m) = self.take_in_flight(message_id) else { return };
        let turn = if steered {
            self.turns.open().map(|t| t.number)
        } else {
            let turn = self.turns.start(Some(m.id.clone()), true);
            self.record.turn = turn;
            self.write_registry();
            if let Some(codex) = self.proto() {
                codex.turn_numbers.insert(turn_id.clone(), turn);
                codex.answer = None;
            }
            self.emit_in_turn(turn, &EventKind::TurnStarted { message_id: Some(m.id.clone()) });
            Some(turn)
        };
        let event = EventKind::Delivered {
            message_id: m.id.clone(),
            preview: preview(&m.text),
            forced: m.force,
            verified: true,
            delivery_ms: None,
            presses: None,
            late: false,
        };
        match turn {
            Some(turn) => self.emit_in_turn(turn, &event),
            None => self.emit(&event),
        }
        let detail = steered.then(|| "steered into the running turn".to_string());
        if let Err(err) = self.queue.record(&m.id, MessageStatus::Delivered, turn, detail) {
            tracing::error!("cannot write the inbox: {err}");
        }
    }

    fn protocol_refused(&mut self, message_id: &str, reason: String) {
        let Some(m) = self.take_in_flight(message_id) else { return };
        tracing::warn!("message {} not delivered: {reason}", m.id);
        self.emit(&EventKind::Stranded {
            message_id: m.id.clone(),
            preview: preview(&m.text),
            reason: reason.clone(),
        });
        if let Err(err) = self.queue.record(&m.id, MessageStatus::Stranded, None, Some(reason)) {
            tracing::error!("cannot write the inbox: {err}");
        }
        self.try_deliver();
    }

    fn protocol_turn_done(&mut self, turn_id: &str, status: TurnStatus, error: Option<String>) {
        let known = self.proto().and_then(|c| c.turn_numbers.get(turn_id).copied());
        let open = self.turns.open().map(|t| t.number);
        if known.is_none() || known != open {
            tracing::warn!("turn {turn_id} completed but it is not the open turn");
        }
        let answer = self.proto().and_then(|l| l.answer.take());
        let Some(turn) = self.turns.finish() else { return };
        self.emit_in_turn(
            turn.number,
            &EventKind::task_complete(status, turn.message_id, None, error, answer),
        );
        if self.auto_stop_now() {
            return;
        }
        self.try_deliver();
    }

    /// Answers the server's approval request.
    pub(super) fn protocol_answer(&mut self, decision: Decision) -> Result<(), String> {
        let protocol =
            self.proto().and_then(|c| c.protocol.as_mut()).ok_or("the protocol is not running")?;
        let effects = protocol.answer(decision)?;
        // The answer's own transcript note is left out: the approval event
        // records it, and the server reports what the command did.
        for effect in effects {
            match effect {
                Effect::Send(line) => self.protocol_send(line),
                Effect::State(observed) => self.set_state(observed, None),
                _ => {}
            }
        }
        Ok(())
    }

    /// `reins interrupt`: `turn/interrupt` for the running turn.
    pub(super) fn protocol_interrupt(&mut self) -> bool {
        let effects = match self.proto().and_then(|c| c.protocol.as_mut()) {
            Some(protocol) => protocol.interrupt(Instant::now()),
            None => Vec::new(),
        };
        let any = !effects.is_empty();
        self.apply_sync(effects);
        any
    }

    /// Polite stop: interrupt the running turn, then close stdin.
    pub(super) fn protocol_close(&mut self) {
        let effects = match self.proto().and_then(|c| c.protocol.as_mut()) {
            Some(protocol) => protocol.interrupt(Instant::now()),
            None => Vec::new(),
        };
        self.apply_sync(effects);
        if let Some(codex) = self.proto() {
            codex.lines = None;
        }
    }

    /// The transport is lost: record it, and end the session (an agent
    /// that stopped talking is of no use).
    async fn disconnect(&mut self, source: &str, message: &str) {
        tracing::error!("the agent's transport was lost ({source}): {message}");
        self.note_error(message.to_string());
        self.disconnected = true;
        self.emit(&EventKind::Disconnected {
            source: source.into(),
            message: message.into(),
            will_retry: false,
        });
        self.set_state(Observed::plain(State::Disconnected), None);
        self.write_transcript(&format!("⚠ disconnected: {message}")).await;
        self.begin_stop(&format!("disconnected:{source}"), None);
    }

    /// Keeps the last error for `status`.
    fn note_error(&mut self, message: String) {
        if self.record.last_error.as_deref() != Some(message.as_str()) {
            self.record.last_error = Some(message);
            self.write_registry();
        }
    }
}
