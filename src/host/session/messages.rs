//! Messages and turns: accepting `send`s into the inbox, delivering them
//! one at a time when the agent is ready, and closing turns when the
//! screen says the work is done.

use std::time::{Duration, Instant};

use crate::adapter::{TurnStatus, turn_status};
use crate::host::delivery::{self, Delivery, Ended, Gate, InputEvidence, Next, Seen};
use crate::host::input::Input;
use crate::host::session::{Link, Session, to_json};
use crate::ipc::{DropReply, InboxReply, MAX_MESSAGE, PendingMessage, SendReply, SendRequest};
use crate::state::State;
use crate::store::events::{EventKind, FoundAnswer, preview};
use crate::store::inbox::{Message, MessageStatus};
use crate::time;

/// How long after a message was called stranded a turn that starts on its
/// own is taken for that message's late start.
const STRANDED_LATE: Duration = Duration::from_secs(30);

impl Session {
    /// After start: report deliveries an earlier host left half done, queue
    /// the session's first task, and deliver what is waiting.
    pub(super) fn replayed(&mut self, interrupted: Vec<Message>) {
        for m in interrupted {
            self.emit(&EventKind::Stranded {
                message_id: m.id.clone(),
                preview: preview(&m.text),
                reason: "the host stopped while delivering it".into(),
            });
        }
        if let Some(context) = self.spec.context_message.clone() {
            let accepted = self.accept(Message {
                id: crate::ids::random_hex(8),
                ts: time::now_rfc3339(),
                text: context,
                submit: true,
                submit_only: false,
                force: false,
                expires_at: None,
                source: "context".into(),
            });
            if let Err(err) = accepted {
                tracing::error!("cannot queue the first task: {err}");
            }
        }
        self.recompute_expiry();
        self.try_deliver();
    }

    /// `POST /v1/send`: into the inbox first, then (maybe) straight on.
    /// Queues a message reins itself sends to the agent (a file-change
    /// hook, the resume after a usage limit) exactly as `send --no-wait`
    /// would, `source` naming who; returns its id.
    pub(super) fn queue_own(&mut self, text: String, source: &str) -> Option<String> {
        let ttl = self.spec.inbox_ttl_ms.min(i64::MAX as u64) as i64;
        let expires_at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_millis(ttl))
            .ok()
            .map(time::format_rfc3339);
        let message = Message {
            id: crate::ids::random_hex(8),
            ts: time::now_rfc3339(),
            text,
            submit: true,
            submit_only: false,
            force: false,
            expires_at,
            source: source.into(),
        };
        let id = message.id.clone();
        if let Err(err) = self.accept(message) {
            tracing::error!("cannot write the inbox: {err}");
            return None;
        }
        self.recompute_expiry();
        self.try_deliver();
        Some(id)
    }

    pub(super) fn accept_send(
        &mut self,
        req: SendRequest,
        requester: Option<crate::trust::Requester>,
    ) -> (u16, serde_json::Value) {
        let refuse = |status: u16, error: String| {
            (status, serde_json::json!({ "ok": false, "error": error }))
        };
        if self.stop.is_some() {
            return refuse(409, "the session is stopping".into());
        }
        if req.submit_only && !req.text.is_empty() {
            return refuse(400, "--submit-only takes no text".into());
        }
        if req.text.trim().is_empty() && !req.submit_only {
            return refuse(400, "the message is empty".into());
        }
        if req.text.len() > MAX_MESSAGE {
            return refuse(
                413,
                format!("the message is {} bytes; the limit is {MAX_MESSAGE}", req.text.len()),
            );
        }
        if let Some(error) = self.draft_refusal(&req) {
            return refuse(409, error);
        }
        let text = if req.raw { req.text } else { delivery::neutralise(&req.text) };
        let ttl = req.ttl_ms.unwrap_or(self.spec.inbox_ttl_ms);
        let expires_at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_millis(ttl.min(i64::MAX as u64) as i64))
            .ok()
            .map(time::format_rfc3339);
        let message = Message {
            id: crate::ids::random_hex(8),
            ts: time::now_rfc3339(),
            text,
            submit: req.submit || req.submit_only,
            submit_only: req.submit_only,
            force: req.force,
            expires_at,
            source: "send".into(),
        };
        let id = message.id.clone();
        let position = match self.accept_from(message, requester) {
            Ok(position) => position,
            Err(err) => return refuse(500, format!("cannot write the inbox: {err}")),
        };
        self.recompute_expiry();
        self.try_deliver();
        let status = match &self.delivery {
            Some(d) if d.message.id == id => MessageStatus::Delivering,
            _ => MessageStatus::Queued,
        };
        (202, to_json(&SendReply { ok: true, message_id: id, status, position }))
    }

    /// Accepts a message of the host's own (a brief, a resume message).
    pub(super) fn accept(&mut self, message: Message) -> std::io::Result<usize> {
        self.accept_from(message, None)
    }

    /// Accepts a message into the inbox (durably) and records who sent it.
    fn accept_from(
        &mut self,
        message: Message,
        requester: Option<crate::trust::Requester>,
    ) -> std::io::Result<usize> {
        let position = self.queue.accept(message.clone())?;
        self.emit(&EventKind::Queued {
            message_id: message.id,
            preview: preview(&message.text),
            position,
            requester,
        });
        Ok(position)
    }

    /// A message to an agent whose composer holds a draft that its profile
    /// cannot clear is refused: typing it would append it to the draft.
    fn draft_refusal(&self, req: &SendRequest) -> Option<String> {
        let terminal = matches!(self.link, Link::Terminal { .. });
        if !terminal || req.force || req.submit_only || !self.observed.is_draft() {
            return None;
        }
        if !self.profile.submit.clear_draft.is_empty() {
            return None;
        }
        Some(format!(
            "the agent's composer holds a draft (ready{{draft}}) and the {} profile has no \
             submit.clear_draft keys to empty it; clear it in the agent's terminal \
             (`reins attach --id {}`) and send again",
            self.profile.name, self.spec.id
        ))
    }

    /// Starts delivering the next message if the agent can take it: ready
    /// with no turn open (a forced message goes in whatever the state), a
    /// draft in the composer only when the profile can clear it, and the
    /// profile's `[input]` evidence there (bounded).
    pub(super) fn try_deliver(&mut self) {
        if self.delivery.is_some() || self.stop.is_some() {
            return;
        }
        if let Link::Protocol(_) = self.link {
            self.protocol_try_deliver();
            return;
        }
        let Some(front) = self.queue.front() else {
            self.input_waiting_since = None;
            return;
        };
        let observed = self.observed;
        let no_turn = self.turns.open().is_none();
        let idle = observed.is_idle() && no_turn;
        let draft = observed.is_draft() && no_turn && !self.profile.submit.clear_draft.is_empty();
        let dialog = observed.state == State::Blocked && no_turn;
        let verify = idle || draft;
        let can = verify || front.force || (front.submit_only && dialog);
        if !can {
            // The wait for `[input]` evidence starts over when it can next.
            self.input_waiting_since = None;
            return;
        }
        if verify && !front.submit_only {
            let now = Instant::now();
            let since = *self.input_waiting_since.get_or_insert(now);
            match delivery::input_gate(&self.profile.input, &self.input_evidence(now, since)) {
                Gate::Wait { recheck, why } => {
                    tracing::debug!(
                        "message {} waits: the agent may not take input: {why}",
                        front.id
                    );
                    self.input_recheck_at = recheck.map(|r| now + r);
                    return;
                }
                Gate::Open { why } => {
                    if self.profile.input != crate::adapter::InputSpec::default() {
                        tracing::info!("message {}: the agent takes input: {why}", front.id);
                    }
                }
            }
        }
        self.input_waiting_since = None;
        self.input_recheck_at = None;
        let message = match self.queue.take_front() {
            Ok(Some(message)) => message,
            Ok(None) => return,
            Err(err) => {
                tracing::error!("cannot write the inbox: {err}");
                return;
            }
        };
        tracing::info!("delivering message {} (verify: {verify}, draft: {draft})", message.id);
        // A turn that starts from now on is this message's, not an earlier
        // stranded one's.
        self.stranded = None;
        if !message.submit_only {
            self.input_seen = true;
        }
        if draft {
            let draft = self.draft_text();
            self.emit(&EventKind::DraftCleared { message_id: message.id.clone(), draft });
        }
        let (delivery, next) = Delivery::start(
            message,
            &self.profile.submit,
            self.screen.bracketed_paste(),
            verify,
            draft,
            Instant::now(),
        );
        // From the first byte typed: the echo may scroll off before the
        // turn is seen starting.
        self.keep_answer(Some(delivery.message.text.clone()));
        self.delivery = Some(delivery);
        self.drive(next);
    }

    /// The `[input]` evidence as it stands (`since`: when the message began
    /// to wait for it).
    pub(super) fn input_evidence(&self, now: Instant, since: Instant) -> InputEvidence {
        let modes_off = self
            .profile
            .input
            .modes
            .iter()
            .copied()
            .filter(|mode| match mode {
                crate::adapter::TermMode::BracketedPaste => !self.screen.bracketed_paste(),
            })
            .collect();
        InputEvidence {
            modes_off,
            ready_for: self.ready_since.map(|at| now.saturating_duration_since(at)),
            first: !self.input_seen,
            waited: now.saturating_duration_since(since),
        }
    }

    /// Whether a message would be typed now and what decides it (`status`,
    /// `adapters explain --id`); `None` for protocol agents.
    pub(super) fn input_report(&self) -> Option<crate::ipc::InputReport> {
        if !matches!(self.link, Link::Terminal { .. }) {
            return None;
        }
        let report = |takes_input, why: String| Some(crate::ipc::InputReport { takes_input, why });
        let observed = self.observed;
        if self.turns.open().is_some() {
            return report(false, format!("a turn is open (the screen reads {observed})"));
        }
        if !observed.is_idle() && !observed.is_draft() {
            return report(false, format!("the screen reads {observed}"));
        }
        if observed.is_draft() && self.profile.submit.clear_draft.is_empty() {
            return report(
                false,
                "the composer holds a draft and the profile has no clear_draft keys".into(),
            );
        }
        let now = Instant::now();
        let since = self.input_waiting_since.unwrap_or(now);
        let draft = if observed.is_draft() { "; the draft is cleared first" } else { "" };
        match delivery::input_gate(&self.profile.input, &self.input_evidence(now, since)) {
            Gate::Open { why } => report(true, format!("{why}{draft}")),
            Gate::Wait { why, .. } => report(false, why),
        }
    }

    /// What the draft rule read, boxes and rules left out: the composer's
    /// text (and the hints around it), one line.
    fn draft_text(&self) -> String {
        let screen = self.screen.text();
        let rows = self
            .profile
            .rules
            .iter()
            .find(|r| r.observed.is_draft() && r.matches(&screen))
            .map(|r| r.condition.region_rows(&screen))
            .unwrap_or_default();
        // Box drawing (U+2500-257F) and block elements (U+2580-259F).
        let text: String = rows
            .iter()
            .map(|row| row.chars().filter(|c| !('\u{2500}'..='\u{259f}').contains(c)).collect())
            .collect::<Vec<String>>()
            .join("\n");
        preview(&text)
    }

    /// How the screen reads now, for the delivery.
    fn seen(&self, observed: crate::state::Observed) -> Seen {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.screen.text().rows.hash(&mut hasher);
        Seen { observed, screen: hasher.finish() }
    }

    /// Does what the delivery asked for.
    fn drive(&mut self, next: Next) {
        match next {
            Next::Wait => {}
            Next::Write(bytes) => {
                if self.delivery.as_ref().is_some_and(Delivery::pressing) {
                    self.screen.keep_all_history();
                }
                self.next_token += 1;
                let token = self.next_token;
                self.pending_write = Some(token);
                if !self.send_input(Input::Tracked { bytes, token }) {
                    self.abandon_delivery("the agent's input is closed");
                }
            }
            Next::Done(ended) => self.end_delivery(ended),
        }
    }

    pub(super) fn on_written(&mut self, token: u64) {
        if self.pending_write != Some(token) {
            return;
        }
        self.pending_write = None;
        if let Some(next) = self.delivery.as_mut().map(|d| d.written(Instant::now())) {
            self.drive(next);
        }
    }

    pub(super) fn on_delivery_deadline(&mut self) {
        // How the screen reads right now, not at the last settle: the text
        // may have been echoed since.
        let seen = self.seen(self.profile.classify(&self.screen.text()).observed);
        let now = Instant::now();
        if let Some(next) = self.delivery.as_mut().map(|d| d.deadline_passed(seen, now)) {
            self.drive(next);
        }
    }

    /// Records how a delivery ended, opening the turn it started.
    fn end_delivery(&mut self, ended: Ended) {
        let Some(delivery) = self.delivery.take() else { return };
        self.pending_write = None;
        let now = Instant::now();
        let delivery_ms = delivery.elapsed_ms(now);
        let presses = Some(delivery.total_presses()).filter(|n| *n > 0);
        let typed = delivery_ms.is_some();
        let m = delivery.message;
        let preview = preview(&m.text);
        let (status, turn, detail) = match ended {
            Ended::Delivered { verified: true } => {
                let busy = matches!(self.observed.state, State::Busy | State::Blocked);
                let turn = self.turns.start(Some(m.id.clone()), busy);
                self.record.turn = turn;
                self.write_registry();
                // turn_started first: whoever sees `delivered` (send) and
                // then looks for the latest turn (wait) must find this one.
                self.emit_in_turn(turn, &EventKind::TurnStarted { message_id: Some(m.id.clone()) });
                self.emit_in_turn(
                    turn,
                    &EventKind::Delivered {
                        message_id: m.id.clone(),
                        preview,
                        forced: m.force,
                        verified: true,
                        delivery_ms,
                        presses,
                        late: false,
                    },
                );
                self.follow_turn();
                (MessageStatus::Delivered, Some(turn), None)
            }
            Ended::Delivered { verified: false } => {
                let turn = self.turns.open().map(|t| t.number);
                let event = EventKind::Delivered {
                    message_id: m.id.clone(),
                    preview,
                    forced: m.force,
                    verified: false,
                    delivery_ms: None,
                    presses,
                    late: false,
                };
                match turn {
                    Some(turn) => self.emit_in_turn(turn, &event),
                    None => self.emit(&event),
                }
                (MessageStatus::Delivered, turn, Some("not verified: forced".to_string()))
            }
            Ended::Typed => {
                self.emit(&EventKind::Typed { message_id: m.id.clone(), preview });
                (MessageStatus::Typed, None, None)
            }
            Ended::Stranded { reason } => {
                tracing::warn!("message {} stranded: {reason}", m.id);
                self.emit(&EventKind::Stranded {
                    message_id: m.id.clone(),
                    preview,
                    reason: reason.clone(),
                });
                if typed && m.submit {
                    self.stranded = Some((m.clone(), now));
                }
                (MessageStatus::Stranded, None, Some(reason))
            }
        };
        if let Err(err) = self.queue.record(&m.id, status, turn, detail) {
            tracing::error!("cannot write the inbox: {err}");
        }
        self.try_deliver();
    }

    /// Ends a delivery in flight as stranded (stop, exit, closed input).
    pub(super) fn abandon_delivery(&mut self, reason: &str) {
        if self.delivery.is_some() {
            self.end_delivery(Ended::Stranded { reason: reason.into() });
        }
    }

    /// After each classification: feed the delivery and the open turn, open
    /// a turn when the agent went busy on its own, deliver what waits.
    pub(super) fn follow_turn(&mut self) {
        let state = self.observed.state;
        if self.delivery.is_some() {
            let seen = self.seen(self.observed);
            let now = Instant::now();
            if let Some(next) = self.delivery.as_mut().map(|d| d.classified(seen, now)) {
                self.drive(next);
            }
        }
        if self.delivery.is_none() && self.turns.open().is_none() && state == State::Busy {
            match self.stranded.take().filter(|(_, at)| at.elapsed() < STRANDED_LATE) {
                Some((message, _)) => self.late_turn(message),
                None => {
                    // Someone typed into the agent's terminal, or it started
                    // work by itself: that is a turn too, just not one of ours.
                    let turn = self.turns.start(None, true);
                    self.record.turn = turn;
                    self.write_registry();
                    if self.answer_for.is_none() {
                        self.keep_answer(None);
                    }
                    self.emit_in_turn(turn, &EventKind::TurnStarted { message_id: None });
                }
            }
        }
        self.turns.on_state(state, &self.profile.turn, Instant::now());
        self.end_turn_at_limit(None);
        self.try_deliver();
    }

    /// A turn started on its own soon after a message was called stranded,
    /// with nothing typed since: the message got through after all. The
    /// turn is its; a `delivered` event (`late`) corrects the verdict, so
    /// `wait --message` finds the turn.
    fn late_turn(&mut self, m: crate::store::inbox::Message) {
        tracing::warn!("message {}: a turn started after it was called stranded", m.id);
        let turn = self.turns.start(Some(m.id.clone()), true);
        self.record.turn = turn;
        self.write_registry();
        self.emit_in_turn(turn, &EventKind::TurnStarted { message_id: Some(m.id.clone()) });
        self.emit_in_turn(
            turn,
            &EventKind::Delivered {
                message_id: m.id.clone(),
                preview: preview(&m.text),
                forced: m.force,
                verified: true,
                delivery_ms: None,
                presses: None,
                late: true,
            },
        );
        let detail = Some("a turn started after it was called stranded".to_string());
        if let Err(err) = self.queue.record(&m.id, MessageStatus::Delivered, Some(turn), detail) {
            tracing::error!("cannot write the inbox: {err}");
        }
    }

    /// The screen read ready long enough: the turn is over.
    pub(super) fn on_turn_done(&mut self) {
        if !self.complete_turn() {
            return;
        }
        if self.auto_stop_now() {
            return;
        }
        self.try_deliver();
    }

    /// The agent exited: if its last screen showed the open turn finished
    /// (ready after it, the done timer running), the turn completed — it
    /// just did not live out the timer. Otherwise the turn stays open: it
    /// did not complete, and no event says it did.
    pub(super) fn complete_turn_at_exit(&mut self) {
        if !matches!(self.link, Link::Terminal { .. }) || self.turns.open().is_none() {
            return;
        }
        let found = self.profile.classify(&self.screen.text());
        if found.observed.state != State::Unknown {
            self.set_state(found.observed, found.rule);
        }
        self.turns.on_state(self.observed.state, &self.profile.turn, Instant::now());
        if self.turns.done_deadline().is_some() {
            self.complete_turn();
        }
    }

    /// Closes the open turn with the status its screen shows; false if no
    /// turn was open.
    fn complete_turn(&mut self) -> bool {
        let Some(turn) = self.turns.finish() else { return false };
        let (mut status, outcome) = turn_status(&self.profile.outcomes, &self.screen.text());
        if turn.interrupted {
            // reins interrupted it; the screen may not say so.
            status = TurnStatus::Interrupted;
        }
        tracing::info!("turn {} done: {}", turn.number, status.as_str());
        self.report_usage(crate::adapter::UsageWhen::TurnEnd, Some(turn.number));
        let answer = self.screen_answer();
        self.emit_in_turn(
            turn.number,
            &EventKind::task_complete(status, turn.message_id, outcome, None, answer),
        );
        true
    }

    /// Starts keeping what the screen draws for a turn's answer.
    fn keep_answer(&mut self, message: Option<String>) {
        if matches!(self.link, Link::Terminal { .. }) && self.profile.answer.is_some() {
            self.screen.keep_history(message.is_some());
            self.answer_for = Some(message);
        }
    }

    /// Lets go of the history kept for a turn's answer.
    pub(super) fn forget_answer(&mut self) {
        self.answer_for = None;
        self.screen.drop_history();
    }

    /// The answer of the turn that just ended, found in what the screen
    /// drew since its message was typed by the profile's `[answer]` rules;
    /// the history kept for it is let go.
    fn screen_answer(&mut self) -> Option<FoundAnswer> {
        let message = self.answer_for.take()?;
        let (rows, dropped) = self.screen.rows_since_kept();
        self.screen.drop_history();
        if dropped > 0 {
            tracing::warn!("the turn drew more than the host keeps: {dropped} rows dropped");
        }
        let text = self.profile.answer.as_ref()?.find(&rows, message.as_deref())?;
        Some(FoundAnswer::new(&text, "screen", 0))
    }

    /// `--auto-stop`: once a turn ends and nothing waits in the inbox (a
    /// watcher's nudge, a message sent meanwhile), the task is done: stop.
    /// Messages that wait are delivered first, never dropped.
    pub(super) fn auto_stop_now(&mut self) -> bool {
        if !self.spec.auto_stop || self.queue.pending().next().is_some() {
            return false;
        }
        self.begin_stop("auto-stop", None);
        true
    }

    pub(super) fn expire_messages(&mut self) {
        match self.queue.expire(jiff::Timestamp::now()) {
            Ok(expired) => {
                for m in expired {
                    self.emit(&EventKind::Expired { message_id: m.id, preview: preview(&m.text) });
                }
            }
            Err(err) => tracing::error!("cannot write the inbox: {err}"),
        }
        self.recompute_expiry();
    }

    pub(super) fn recompute_expiry(&mut self) {
        self.expiry_at = self.queue.next_expiry().map(|at| {
            let left = at.duration_since(jiff::Timestamp::now());
            Instant::now() + Duration::try_from(left).unwrap_or(Duration::ZERO)
        });
    }

    /// `GET /v1/inbox`: the message being delivered, then the queue.
    pub(super) fn inbox(&self) -> InboxReply {
        let entry = |m: &Message, status| PendingMessage {
            message_id: m.id.clone(),
            status,
            queued_at: m.ts.clone(),
            expires_at: m.expires_at.clone(),
            preview: preview(&m.text),
            force: m.force,
            submit: m.submit,
            submit_only: m.submit_only,
        };
        let in_flight = match &self.link {
            Link::Protocol(codex) => codex.in_flight.as_ref(),
            Link::Terminal { .. } => None,
        };
        let delivering = self
            .delivery
            .iter()
            .map(|d| &d.message)
            .chain(in_flight)
            .map(|m| entry(m, MessageStatus::Delivering));
        let queued = self.queue.pending().map(|m| entry(m, MessageStatus::Queued));
        InboxReply { messages: delivering.chain(queued).collect() }
    }

    /// `DELETE /v1/inbox[/ID]`.
    pub(super) fn drop_messages(&mut self, id: Option<&str>) -> (u16, serde_json::Value) {
        let dropped = match id {
            None => self.queue.clear(),
            Some(id) => match self.queue.drop_message(id) {
                Ok(Some(m)) => Ok(vec![m]),
                Ok(None) => {
                    let error = if self.delivery.as_ref().is_some_and(|d| d.message.id == id) {
                        format!("message {id} is being delivered right now")
                    } else {
                        format!("no queued message {id}")
                    };
                    return (404, serde_json::json!({ "ok": false, "error": error }));
                }
                Err(err) => Err(err),
            },
        };
        match dropped {
            Ok(dropped) => {
                for m in &dropped {
                    self.emit(&EventKind::Dropped {
                        message_id: m.id.clone(),
                        preview: preview(&m.text),
                    });
                }
                self.recompute_expiry();
                let ids = dropped.into_iter().map(|m| m.id).collect();
                (200, to_json(&DropReply { ok: true, dropped: ids }))
            }
            Err(err) => (500, serde_json::json!({ "ok": false, "error": err.to_string() })),
        }
    }
}
