//! The host's main loop: one `select!` that owns the session.
//!
//! Everything that changes session state happens here, in order: agent
//! output (to the transcript, the emulator and a relayed terminal), the
//! agent's exit, control requests, signals, keystrokes, and the timers for
//! screen settling, boot and stop escalation. Other tasks (the control
//! server, the PTY writer, the relay's stdin reader) only send messages.
//! An idle session has no timer armed: it wakes for input only.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::adapter::{Profile, Transport};
use crate::host::delivery::Delivery;
use crate::host::file_hook::FileHook;
use crate::host::input::{self, Input, InputQueue};
use crate::host::launch::LaunchSpec;
use crate::host::progress::{self, Progress};
use crate::host::pty::{Pty, Spawn};
use crate::host::queue::Queue;
use crate::host::relay::{Relay, TerminalEvent};
use crate::host::stop::{Phase, StopPlan};
use crate::host::turns::Turns;
use crate::ipc::{self, ControlRequest, GrownReply, Incoming, ScreenReply, StatusReply, StopReply};
use crate::screen::Screen;
use crate::state::{Observed, State};
use crate::store::events::{EventKind, EventWriter, Started};
use crate::store::exit_record::{ExitReason, ExitRecord};
use crate::store::follow::SessionFile;
use crate::store::paths::SessionPaths;
use crate::store::registry::{SessionRecord, redact_command};
use crate::store::transcript::TranscriptWriter;
use crate::store::{dispatch, events, fsutil};
use crate::time;
use crate::transport::stdio;

mod admission;
mod approvals;
mod file_changes;
mod messages;
mod protocol_link;
mod rate_limit;
mod viewers;

use protocol_link::ProtocolLink;

/// Everything a running session owns.
pub(crate) struct Session {
    spec: LaunchSpec,
    paths: SessionPaths,
    profile: Profile,
    events: EventWriter,
    record: SessionRecord,
    screen: Screen,
    transcript: TranscriptWriter,
    output_bytes: u64,
    /// How the host reaches the agent: its terminal, or a protocol.
    link: Link,
    child: tokio::process::Child,
    agent_pid: u32,
    observed: Observed,
    rule: Option<String>,
    /// When the screen is quiet enough to classify.
    settle_at: Option<Instant>,
    /// When `starting` gives way to `unknown` if no rule matched.
    boot_deadline: Option<Instant>,
    stop: Option<StopPlan>,
    /// The stop under way is a retirement (`gc --idle`).
    retiring: bool,
    relay: Option<Relay>,
    /// Messages waiting for the agent (`inbox.jsonl`).
    queue: Queue,
    /// The message being typed and verified, if one is.
    delivery: Option<Delivery>,
    /// When the screen last began to read ready with an empty composer.
    ready_since: Option<Instant>,
    /// A message has been typed into this run of the agent.
    input_seen: bool,
    /// Since when the front message waits for the `[input]` evidence.
    input_waiting_since: Option<Instant>,
    /// When to look at the `[input]` evidence again.
    input_recheck_at: Option<Instant>,
    /// The last message stranded after it was typed, and when: a turn that
    /// starts soon after, on its own, is that message's (issue 22).
    stranded: Option<(crate::store::inbox::Message, Instant)>,
    /// Token of the tracked write the delivery waits for.
    pending_write: Option<u64>,
    next_token: u64,
    turns: Turns,
    /// When the earliest queued message expires.
    expiry_at: Option<Instant>,
    /// Bumped every time the screen settles after output.
    screen_version: u64,
    /// `pane --follow` clients waiting for the screen to change.
    screen_waiters: Vec<oneshot::Sender<(u16, serde_json::Value)>>,
    /// Followers without inotify, waiting for a session file to change.
    grown_waiters: Vec<GrownWaiter>,
    /// The approval requests the agent waits on.
    approvals: approvals::Approvals,
    /// The structured transport was lost (the exit reason says so).
    disconnected: bool,
    /// When the agent last got somewhere (for `reins watch`).
    progress: Progress,
    /// Where the repository stood at the start, being read on a thread.
    git_probe: Option<oneshot::Receiver<Option<crate::git::Start>>>,
    /// When `run --max-runtime` stops the session.
    max_runtime_at: Option<Instant>,
    /// The session was stopped because its `--max-runtime` ran out.
    timed_out: bool,
    /// Settled changes of the `--watch-file` files.
    file_hook: FileHook,
    /// Terminals that joined with `reins attach`.
    viewers: viewers::Viewers,
    /// The last usage limit the agent hit.
    rate_limit: Option<rate_limit::Episode>,
    /// A screen agent's turn whose answer is being kept: the message that
    /// opened it (None: a turn the agent started by itself). The screen
    /// keeps its history meanwhile.
    answer_for: Option<Option<String>>,
}

/// A follower's long poll: answered once `file` is no longer at `ino` and
/// `len`.
struct GrownWaiter {
    file: SessionFile,
    ino: u64,
    len: u64,
    reply: oneshot::Sender<(u16, serde_json::Value)>,
}

/// How the host reaches the agent.
pub(crate) enum Link {
    /// Its terminal UI in a PTY.
    Terminal {
        pty: Arc<Pty>,
        input: InputQueue,
        /// Tokens of tracked writes that reached the agent.
        written: mpsc::UnboundedReceiver<u64>,
    },
    /// A protocol on stdio (codex app-server, claude stream-json, ACP).
    Protocol(Box<ProtocolLink>),
}

/// A session that could not start: why, and the event log, handed back so
/// the caller can record the boot failure.
pub(crate) struct BootFailure {
    pub(crate) detail: String,
    pub(crate) events: EventWriter,
}

impl Session {
    /// Starts the agent and publishes the session (registry, `started`).
    pub(crate) fn start(
        spec: LaunchSpec,
        paths: SessionPaths,
        profile: Profile,
        events: EventWriter,
        relay: Option<Relay>,
    ) -> Result<(Session, tokio::net::UnixListener), BootFailure> {
        let size = if relay.is_some() { Relay::size().unwrap_or(spec.size) } else { spec.size };
        // Watch before the agent starts: a file it writes at once is seen.
        let file_hook = match FileHook::start(&spec.watch_files) {
            Ok(hook) => hook,
            Err(err) => {
                return Err(BootFailure { detail: format!("--watch-file: {err}"), events });
            }
        };
        let (transcript, listener, link, child) = match launch(&spec, &paths, &profile, size) {
            Ok(parts) => parts,
            Err(detail) => return Err(BootFailure { detail, events }),
        };
        let agent_pid = child.id().expect("a just-spawned child has a pid");
        let (queue, interrupted) = match Queue::open(&paths.inbox()) {
            Ok(opened) => opened,
            Err(err) => {
                crate::procs::signal_tree(agent_pid, Signal::KILL);
                let _ = fsutil::remove_if_exists(&paths.socket);
                return Err(BootFailure {
                    detail: format!("cannot read the inbox: {err}"),
                    events,
                });
            }
        };
        let now = time::now_rfc3339();
        let observed = Observed::plain(State::Starting);
        let record = SessionRecord {
            schema_version: events::SCHEMA_VERSION,
            id: spec.id.clone(),
            scope: spec.scope.clone(),
            run: spec.run.clone(),
            repo_root: spec.repo_root.clone(),
            cwd: spec.cwd.clone(),
            agent: spec.agent.clone(),
            adapter: profile.name.clone(),
            transport: spec.transport.as_str().into(),
            command: redact_command(&spec.command),
            mode: spec.mode,
            host_pid: std::process::id(),
            agent_pid,
            agent_start_ticks: crate::procs::stat(agent_pid).map(|s| s.start_ticks),
            socket: paths.socket.clone(),
            tmux: spec.tmux.clone(),
            spawner_pane: spec.spawner_pane.clone(),
            started_at: now.clone(),
            description: spec.description.clone(),
            meta: spec.meta.clone(),
            size,
            state: observed,
            state_since: now,
            turn: 0,
            usage: None,
            last_error: None,
            record: spec.record.clone(),
            watch_files: spec.watch_files.clone(),
            buddy_of: spec.buddy_of.clone(),
            worktree: spec.worktree.clone(),
            parent: spec.parent.clone(),
            approval: None,
            last_completed_at: None,
            disconnects: Some(0),
        };
        if let Err(err) = record.write(&paths.registry()) {
            crate::procs::signal_tree(agent_pid, Signal::KILL);
            let _ = fsutil::remove_if_exists(&paths.socket);
            return Err(BootFailure {
                detail: format!("cannot write session.json: {err}"),
                events,
            });
        }
        let screen = Screen::new(size, profile.screen.scrollback, relay.is_none());
        // Protocol agents say when they are ready; screen agents get a
        // boot window before `starting` turns into `unknown`.
        let boot_deadline = matches!(link, Link::Terminal { .. })
            .then(|| Instant::now() + Duration::from_millis(profile.screen.boot_timeout_ms));
        tracing::info!(agent_pid, "started {:?}", record.command);
        let mut session = Session {
            spec,
            paths,
            profile,
            events,
            record,
            screen,
            transcript,
            output_bytes: 0,
            link,
            child,
            agent_pid,
            observed,
            rule: None,
            settle_at: None,
            boot_deadline,
            stop: None,
            retiring: false,
            relay,
            queue,
            delivery: None,
            ready_since: None,
            input_seen: false,
            input_waiting_since: None,
            input_recheck_at: None,
            stranded: None,
            pending_write: None,
            next_token: 0,
            turns: Turns::default(),
            expiry_at: None,
            screen_version: 0,
            screen_waiters: Vec::new(),
            grown_waiters: Vec::new(),
            approvals: approvals::Approvals::default(),
            disconnected: false,
            progress: Progress::new(),
            git_probe: None,
            max_runtime_at: None,
            timed_out: false,
            viewers: viewers::Viewers::default(),
            rate_limit: None,
            answer_for: None,
            file_hook,
        };
        session.emit(&EventKind::Started(Box::new(Started {
            pid: agent_pid,
            host_pid: std::process::id(),
            agent: session.spec.agent.clone(),
            adapter: session.profile.name.clone(),
            transport: session.spec.transport.as_str().into(),
            mode: session.spec.mode.as_str().into(),
            cwd: session.spec.cwd.display().to_string(),
            tmux: session.spec.tmux.clone(),
            description: session.spec.description.clone(),
            meta: session.spec.meta.clone(),
            size,
            transcript_offset: session.transcript.end(),
            worktree: session.spec.worktree.clone(),
            parent: session.spec.parent.clone(),
        })));
        session.git_probe = Some(probe_git(session.spec.cwd.clone()));
        session.max_runtime_at =
            session.spec.max_runtime_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
        session.connect();
        session.replayed(interrupted);
        Ok((session, listener))
    }

    /// Runs until the agent exits; then records how it ended, cleans up and
    /// returns the status a shell would report.
    pub(crate) async fn run(mut self, listener: tokio::net::UnixListener) -> u8 {
        let (to_host, mut control) = mpsc::channel::<Incoming>(64);
        let server = tokio::spawn(ipc::serve(listener, to_host));
        let mut sigterm = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut sighup = signal(SignalKind::hangup()).expect("SIGHUP handler");
        let mut sigint = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let mut sigquit = signal(SignalKind::quit()).expect("SIGQUIT handler");
        let mut buf = vec![0u8; 64 * 1024];
        let mut output_open = true;

        let status = loop {
            let rpc_deadline = protocol_deadline(&self.link);
            let rate_limit_lifts = self.rate_limit_deadline();
            tokio::select! {
                event = agent_event(&mut self.link, &mut buf, output_open) => match event {
                    AgentEvent::Output(n) => self.on_output(&buf[..n]).await,
                    AgentEvent::OutputEnd => output_open = false,
                    AgentEvent::Written(token) => self.on_written(token),
                    AgentEvent::Protocol(out) => self.on_protocol_output(out).await,
                },
                _ = sleep_until(rpc_deadline) => self.on_protocol_deadline().await,
                status = self.child.wait() => break status,
                Some(msg) = control.recv() => self.on_control(msg),
                _ = sigterm.recv() => self.begin_stop("signal:TERM", None),
                _ = sighup.recv() => self.begin_stop("signal:HUP", None),
                _ = sigint.recv() => crate::procs::signal_tree(self.agent_pid, Signal::INT),
                _ = sigquit.recv() => crate::procs::signal_tree(self.agent_pid, Signal::QUIT),
                event = relay_event(&mut self.relay) => match event {
                    TerminalEvent::Input(bytes) => {
                        self.send_input(Input::Bytes(bytes));
                    }
                    TerminalEvent::Resized(size) => self.on_resize(size),
                },
                _ = sleep_until(self.settle_at) => self.on_settled(),
                _ = sleep_until(self.boot_deadline) => self.on_boot_timeout(),
                _ = sleep_until(self.stop.as_ref().and_then(|s| s.deadline)) => self.escalate(),
                _ = sleep_until(self.delivery.as_ref().and_then(Delivery::deadline)) => {
                    self.on_delivery_deadline();
                }
                _ = sleep_until(self.input_recheck_at) => {
                    self.input_recheck_at = None;
                    self.try_deliver();
                }
                // A turn ends on a settled screen: output that arrived at its
                // deadline (an answer still being drawn) is read first.
                _ = sleep_until(self.turns.done_deadline().filter(|_| self.settle_at.is_none())) => {
                    self.on_turn_done();
                }
                _ = sleep_until(self.expiry_at) => self.expire_messages(),
                start = git_probe(&mut self.git_probe) => self.on_git_start(start),
                _ = sleep_until(rate_limit_lifts) => self.on_rate_limit_reset(),
                _ = sleep_until(self.max_runtime_at) => {
                    self.max_runtime_at = None;
                    self.timed_out = true;
                    self.begin_stop("max-runtime", None);
                }
                index = self.file_hook.next() => self.on_file_changed(index),
            }
            self.answer_followers();
        };
        server.abort();
        self.finish(status).await
    }

    async fn on_output(&mut self, bytes: &[u8]) {
        if let Err(err) = self.transcript.write(bytes, &mut self.events) {
            tracing::warn!("transcript write failed: {err}");
        }
        self.output_bytes += bytes.len() as u64;
        let replies = self.screen.feed(bytes);
        if !replies.is_empty() {
            self.send_input(Input::Bytes(replies));
        }
        if let Some(relay) = self.relay.as_mut() {
            relay.output(bytes).await;
        }
        self.viewers.broadcast(bytes);
        if let Some(delivery) = self.delivery.as_mut() {
            delivery.output();
        }
        self.settle_at =
            Some(Instant::now() + Duration::from_millis(self.profile.screen.settle_ms));
        self.turns.on_drawn(Instant::now());
    }

    /// The screen has been quiet for the settle window: classify it, unless
    /// a synchronized-output frame is still being drawn.
    fn on_settled(&mut self) {
        let sync_timeout = Duration::from_millis(self.profile.screen.sync_timeout_ms);
        if self.screen.in_sync_update(sync_timeout) {
            self.settle_at = self.screen.sync_deadline(sync_timeout);
            return;
        }
        self.settle_at = None;
        self.classify(false);
        self.screen_version += 1;
        if !self.screen_waiters.is_empty() {
            let reply = (200, to_json(&self.screen_reply()));
            for waiter in self.screen_waiters.drain(..) {
                let _ = waiter.send(reply.clone());
            }
        }
    }

    fn screen_reply(&self) -> ScreenReply {
        ScreenReply::new(self.screen_version, self.screen.size(), self.screen.text())
    }

    fn on_boot_timeout(&mut self) {
        self.boot_deadline = None;
        self.classify(true);
    }

    fn classify(&mut self, boot_over: bool) {
        if !matches!(self.link, Link::Terminal { .. }) {
            return; // the protocol says what state the agent is in
        }
        let text = self.screen.text();
        self.progress.screen(&text, &self.profile.progress.ignore);
        let mut found = self.profile.classify(&text);
        if found.observed.kind == Some(crate::state::BlockedKind::RateLimit)
            && !self.screen_rate_limit(&text.matching_rows())
        {
            // The notice of a limit that has lifted: the agent is at its prompt.
            found.observed = Observed::plain(State::Ready);
            found.rule = Some("rate-limit-lifted".into());
        }
        let booting = self.observed.state == State::Starting && self.boot_deadline.is_some();
        if booting && found.observed.state == State::Unknown && !boot_over {
            return; // still starting: nothing recognisable on screen yet
        }
        if found.observed.state != State::Unknown {
            self.boot_deadline = None;
        }
        let before = self.observed;
        self.set_state(found.observed, found.rule);
        self.follow_screen_approval(before);
        self.follow_turn();
    }

    fn set_state(&mut self, to: Observed, rule: Option<String>) {
        if to == self.observed {
            self.rule = rule;
            return;
        }
        let from = self.observed;
        self.observed = to;
        self.rule = rule.clone();
        if !to.is_idle() {
            self.ready_since = None;
        } else if !from.is_idle() {
            self.ready_since = Some(Instant::now());
        }
        let now = time::now_rfc3339();
        tracing::info!("state {from} -> {to} ({rule:?})");
        // The registry first: whoever sees the event and then asks
        // `status` must find the new state there.
        self.record.state = to;
        self.record.state_since = now;
        self.write_registry();
        self.emit(&EventKind::State { from: from.state, to: to.state, kind: to.kind, rule });
        if matches!(self.link, Link::Protocol(_)) {
            // A screen's dialogs are followed where the screen is read.
            self.follow_screen_approval(from);
        }
    }

    fn on_resize(&mut self, size: Option<crate::store::registry::Size>) {
        let Some(size) = size else { return };
        if size == self.record.size {
            return;
        }
        if let Link::Terminal { pty, .. } = &self.link {
            let _ = pty.resize(size);
        }
        self.screen.resize(size);
        self.record.size = size;
        self.write_registry();
        let transcript_offset = self.transcript.end();
        self.emit(&EventKind::Resized { size, transcript_offset });
    }

    /// `POST /v1/stop`. A retire (`gc --idle`) is refused while a turn
    /// runs or messages wait: checked here, where nothing can slip in.
    fn stop_request(
        &mut self,
        req: &ipc::StopRequest,
        requester: Option<crate::trust::Requester>,
    ) -> (u16, serde_json::Value) {
        let already = self.stop.is_some();
        if req.retire && !already {
            let queued = self.queue.pending().count() + usize::from(self.delivery.is_some());
            let refused = if self.turns.open().is_some() {
                Some("a turn is running".to_string())
            } else if queued > 0 {
                Some(format!("{queued} message(s) are queued"))
            } else if self.observed.state == State::Busy {
                Some("it is busy".to_string())
            } else {
                None
            };
            if let Some(why) = refused {
                return (200, to_json(&StopReply { ok: false, already, refused: Some(why) }));
            }
            self.retiring = true;
        }
        let source = if req.retire { "retire" } else { "client" };
        self.begin_stop_for(source, req.timeout_ms.map(Duration::from_millis), requester);
        (202, to_json(&StopReply { ok: true, already, refused: None }))
    }

    fn on_control(&mut self, msg: Incoming) {
        let Incoming { request, peer, reply } = msg;
        let requester = match self.admit(&request, peer) {
            Ok(requester) => requester,
            Err(refusal) => {
                let _ = reply.send(refusal);
                return;
            }
        };
        let msg = Incoming { request, peer, reply };
        let reply = match msg.request {
            ControlRequest::Status => (200, to_json(&self.status())),
            ControlRequest::Screen { after: Some(version) } if version == self.screen_version => {
                self.screen_waiters.push(msg.reply);
                return;
            }
            ControlRequest::Screen { .. } => (200, to_json(&self.screen_reply())),
            ControlRequest::Stop(req) => self.stop_request(&req, requester),
            ControlRequest::Send(req) => self.accept_send(req, requester),
            ControlRequest::Inbox => (200, to_json(&self.inbox())),
            ControlRequest::Drop { message_id } => self.drop_messages(message_id.as_deref()),
            ControlRequest::Approve(req) => {
                self.approve_request(req.decision, req.request.as_deref(), requester)
            }
            ControlRequest::Interrupt => self.interrupt_request(requester),
            ControlRequest::Note(kind) => self.note_request(&kind),
            ControlRequest::ArmResume => self.arm_resume(requester),
            ControlRequest::Attach(attach) => self.attach_request(attach),
            ControlRequest::ViewerInput { viewer, bytes } => {
                self.viewer_input(viewer, bytes);
                return;
            }
            ControlRequest::ViewerResize { viewer, size } => {
                self.viewer_resize(viewer, size);
                return;
            }
            ControlRequest::ViewerLeft { viewer } => {
                self.viewer_left(viewer);
                return;
            }
            ControlRequest::Grown { file, ino, len } => {
                self.grown_waiters.push(GrownWaiter { file, ino, len, reply: msg.reply });
                self.answer_followers();
                return;
            }
        };
        let _ = msg.reply.send(reply);
    }

    /// Answers the long polls of followers whose file changed, and forgets
    /// those whose client went away.
    fn answer_followers(&mut self) {
        if self.grown_waiters.is_empty() {
            return;
        }
        let events = self.events.file_state();
        let transcript = self.transcript.file_state();
        let now = |file| match file {
            SessionFile::Events => events,
            SessionFile::Transcript => transcript,
        };
        let done = self
            .grown_waiters
            .extract_if(.., |w| w.reply.is_closed() || now(w.file) != (w.ino, w.len));
        for waiter in done {
            let (ino, len) = now(waiter.file);
            let _ = waiter.reply.send((200, to_json(&GrownReply { ino, len })));
        }
    }

    fn status(&self) -> StatusReply {
        StatusReply {
            id: self.spec.id.clone(),
            run: self.spec.run.clone(),
            state: self.observed,
            state_since: self.record.state_since.clone(),
            rule: self.rule.clone(),
            turn: self.record.turn,
            agent_pid: self.agent_pid,
            stopping: self.stop.is_some(),
            output_bytes: self.output_bytes,
            last_error: self.record.last_error.clone(),
            turn_open: self.turns.open().is_some(),
            queued: self.queue.pending().count() + usize::from(self.delivery.is_some()),
            progress: Some(self.progress.report()),
            rate_limit: self.rate_limit_report(),
            approval: self.approvals.front().cloned(),
            input: self.input_report(),
        }
    }

    /// Starts the stop escalation; a second request while one runs only
    /// tightens nothing and returns (stop is idempotent).
    fn begin_stop(&mut self, source: &str, client_timeout: Option<Duration>) {
        self.begin_stop_for(source, client_timeout, None);
    }

    /// [`Self::begin_stop`] on behalf of a control request's requester.
    fn begin_stop_for(
        &mut self,
        source: &str,
        client_timeout: Option<Duration>,
        requester: Option<crate::trust::Requester>,
    ) {
        if self.stop.is_some() {
            return;
        }
        tracing::info!("stop requested by {source}");
        self.emit(&EventKind::StopRequested { source: source.into(), requester });
        self.abandon_delivery("the session is stopping");
        match &mut self.link {
            Link::Terminal { input, .. } => {
                let plan = StopPlan::new(&self.profile.stop, client_timeout);
                if plan.phase == Phase::Polite {
                    let _ = input.send(Input::Sequence(self.profile.stop.sequence.clone()));
                } else {
                    self.stop = Some(plan);
                    self.send_signal(Signal::TERM, "no polite stop sequence");
                    return;
                }
                self.stop = Some(plan);
            }
            Link::Protocol(_) => {
                // Polite: interrupt the turn, close stdin (the server exits
                // at end of input); then the usual escalation.
                self.stop = Some(StopPlan::polite(&self.profile.stop, client_timeout));
                self.protocol_close();
            }
        }
    }

    fn escalate(&mut self) {
        let Some(plan) = self.stop.as_mut() else {
            return;
        };
        let from = plan.phase;
        if let Some(sig) = plan.escalate() {
            let why = match from {
                Phase::Polite => "agent still running after the polite stop",
                _ => "agent still running after SIGTERM",
            };
            self.send_signal(sig, why);
        }
    }

    fn send_signal(&mut self, sig: Signal, reason: &str) {
        let name = if sig == Signal::KILL { "KILL" } else { "TERM" };
        tracing::info!("sending SIG{name}: {reason}");
        crate::procs::signal_tree(self.agent_pid, sig);
        self.emit(&EventKind::Signalled { signal: name.into(), reason: reason.into() });
    }

    /// The agent exited: drain its last output, end leftovers of its tree,
    /// write `exit.json` and the `exited` event, remove registry and socket.
    async fn finish(mut self, status: std::io::Result<ExitStatus>) -> u8 {
        self.drain_output().await;
        self.complete_turn_at_exit();
        self.abandon_delivery("the agent exited");
        reap_leftovers(self.agent_pid).await;
        if let Some(relay) = self.relay.as_mut() {
            relay.restore_modes(self.screen.leftover_modes()).await;
        }
        let (code, signal) = match &status {
            Ok(st) => (st.code(), st.signal()),
            Err(_) => (None, None),
        };
        let reason = if self.disconnected {
            ExitReason::Disconnected
        } else if self.timed_out {
            ExitReason::Timeout
        } else if self.stop.is_some() && self.retiring {
            ExitReason::Retired
        } else if self.stop.is_some() {
            ExitReason::Stopped
        } else if code == Some(0) {
            ExitReason::Success
        } else if self.observed.state == State::Starting {
            ExitReason::BootFailure
        } else {
            ExitReason::Failure
        };
        let detail = match &status {
            Err(err) => Some(format!("cannot wait for the agent: {err}")),
            Ok(_) if self.disconnected => self.record.last_error.clone(),
            Ok(_) => None,
        };
        self.set_state(Observed::plain(State::Exited), None);
        self.report_usage(crate::adapter::UsageWhen::Exit, None);
        let record = ExitRecord {
            schema_version: events::SCHEMA_VERSION,
            id: self.spec.id.clone(),
            run: self.spec.run.clone(),
            code,
            signal,
            reason,
            detail: detail.clone(),
            turns: self.turns.count,
            started_at: self.record.started_at.clone(),
            exited_at: time::now_rfc3339(),
        };
        tracing::info!("agent exited: code {code:?} signal {signal:?} ({})", reason.as_str());
        if let Err(err) = record.write(&self.paths.exit_record()) {
            tracing::error!("cannot write exit.json: {err}");
        }
        let info = run_info(&self.spec, &self.profile.name);
        if let Err(err) =
            dispatch::close_run(&mut self.events, &self.paths.events(), &info, &record)
        {
            tracing::error!("cannot record the end of the run: {err}");
        }
        self.notify_exit(&record);
        self.answer_followers();
        let _ = fsutil::remove_if_exists(&self.paths.registry());
        let _ = fsutil::remove_if_exists(&self.paths.socket);
        record.shell_status()
    }

    /// Reads what the agent wrote just before exiting (bounded: a leftover
    /// process could keep the terminal open forever).
    async fn drain_output(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while let Link::Terminal { pty, .. } = &self.link {
            let pty = pty.clone();
            let read = tokio::time::timeout_at(deadline, async move {
                let mut buf = vec![0u8; 64 * 1024];
                pty.read(&mut buf).await.map(|n| buf[..n].to_vec())
            })
            .await;
            match read {
                Ok(Ok(bytes)) if !bytes.is_empty() => self.on_output(&bytes).await,
                _ => break,
            }
        }
        self.drain_protocol().await;
        self.settle_at = None;
    }

    fn emit(&mut self, kind: &EventKind) {
        self.write_event(None, kind);
    }

    /// Writes an event, and sends the notification `[notify]` asks for.
    fn write_event(&mut self, turn: Option<u64>, kind: &EventKind) {
        self.note_progress(kind);
        self.note_in_registry(kind);
        match self.events.emit(turn, kind) {
            Ok(line) => self.notify(kind, &line),
            Err(err) => tracing::error!("cannot write event: {err}"),
        }
    }

    /// The `exited` event's notification: sent as the host ends, so the
    /// programs are left to run on their own.
    fn notify_exit(&self, record: &ExitRecord) {
        let Some(notify) = &self.spec.notify else { return };
        let kind = EventKind::Exited {
            code: record.code,
            signal: record.signal,
            reason: record.reason,
            detail: record.detail.clone(),
        };
        let Some(on) = notify.wants(&self.spec.id, &kind) else { return };
        let last = events::read_all(&self.paths.events()).ok().and_then(|all| {
            all.into_iter().rev().find(|e| matches!(e.kind, EventKind::Exited { .. }))
        });
        if let Some(line) = last {
            notify.send_and_leave(&self.spec.id, on, &line.raw);
        }
    }

    fn notify(&self, kind: &EventKind, line: &str) {
        if let Some(notify) = &self.spec.notify
            && let Some(on) = notify.wants(&self.spec.id, kind)
        {
            notify.send(&self.spec.id, on, line);
        }
    }

    /// `POST /v1/note`: writes a watcher's decision into the event log, in
    /// the open turn if there is one.
    fn note_request(&mut self, kind: &EventKind) -> (u16, serde_json::Value) {
        if !kind.is_watcher_note() {
            let error = "only stall, resume, restart and escalate events can be noted";
            return (400, serde_json::json!({ "ok": false, "error": error }));
        }
        match self.turns.open().map(|t| t.number) {
            Some(turn) => self.emit_in_turn(turn, kind),
            None => self.emit(kind),
        }
        (200, serde_json::json!({ "ok": true }))
    }

    /// `POST /v1/interrupt`: the protocol's interrupt, or the profile's
    /// keys; only while a turn is running.
    fn interrupt_request(
        &mut self,
        requester: Option<crate::trust::Requester>,
    ) -> (u16, serde_json::Value) {
        let busy = matches!(self.observed.state, State::Busy | State::Blocked)
            || self.turns.open().is_some();
        if !busy {
            let error = format!("no turn is running (the session is {})", self.observed);
            return (409, serde_json::json!({ "ok": false, "error": error }));
        }
        let sent = match &self.link {
            Link::Protocol(_) => self.protocol_interrupt(),
            Link::Terminal { .. } => {
                self.send_input(Input::Sequence(self.profile.stop.interrupt.clone()))
            }
        };
        if !sent {
            return (409, serde_json::json!({ "ok": false, "error": "nothing to interrupt" }));
        }
        if matches!(self.link, Link::Terminal { .. }) {
            // The screen may not say so (Gemini's "Request cancelled", a
            // prompt put back in Claude's composer): reins knows it asked.
            if let Some(turn) = self.turns.interrupt() {
                tracing::info!("turn {turn} interrupted");
            }
        }
        self.emit(&EventKind::InterruptRequested { source: "client".into(), requester });
        (202, serde_json::json!({ "ok": true }))
    }

    /// Sends input to a terminal agent (protocol agents take no keystrokes).
    fn send_input(&self, input: Input) -> bool {
        match &self.link {
            Link::Terminal { input: queue, .. } => queue.send(input).is_ok(),
            Link::Protocol(_) => false,
        }
    }

    /// Emits a `usage` event if the profile's usage rules for `when` read
    /// anything off the screen.
    fn report_usage(&mut self, when: crate::adapter::UsageWhen, turn: Option<u64>) {
        let Some((fields, sources)) =
            crate::adapter::read_usage(&self.profile.usage, when, &self.screen.text())
        else {
            return;
        };
        let event = EventKind::usage(&fields, format!("screen:{}", sources.join("+")));
        match turn {
            Some(turn) => self.emit_in_turn(turn, &event),
            None => self.emit(&event),
        }
    }

    /// Emits an event that belongs to turn `turn`.
    fn emit_in_turn(&mut self, turn: u64, kind: &EventKind) {
        self.write_event(Some(turn), kind);
    }

    fn on_git_start(&mut self, start: Option<crate::git::Start>) {
        let Some(start) = start else { return };
        self.emit(&EventKind::Git {
            phase: events::GitPhase::Start,
            sha: start.sha,
            branch: start.branch,
            dirty: start.dirty,
            commits: None,
            counts_uncommitted: None,
            files_changed: None,
            loc_added: None,
            loc_removed: None,
        });
    }

    /// Turn events are progress (see [`progress`]).
    fn note_progress(&mut self, kind: &EventKind) {
        if matches!(
            kind,
            EventKind::Delivered { .. }
                | EventKind::TurnStarted { .. }
                | EventKind::TaskComplete { .. }
                | EventKind::Approval { .. }
                | EventKind::Usage { .. }
        ) {
            self.progress.note(progress::Source::Turn);
        }
    }

    /// What `status` reports from events without reading them: when the
    /// last turn completed, how many times the transport disconnected.
    fn note_in_registry(&mut self, kind: &EventKind) {
        match kind {
            EventKind::TaskComplete { .. } => {
                self.record.last_completed_at = Some(time::now_rfc3339());
            }
            EventKind::Disconnected { will_retry: false, .. } => {
                *self.record.disconnects.get_or_insert(0) += 1;
            }
            _ => return,
        }
        self.write_registry();
    }

    fn write_registry(&self) {
        if let Err(err) = self.record.write(&self.paths.registry()) {
            tracing::error!("cannot write session.json: {err}");
        }
    }
}

/// What the dispatch record says about this session's run.
pub(crate) fn run_info(spec: &LaunchSpec, adapter: &str) -> dispatch::RunInfo {
    dispatch::RunInfo {
        id: spec.id.clone(),
        run: spec.run.clone(),
        agent: spec.agent.clone(),
        adapter: adapter.to_string(),
        transport: spec.transport.as_str().into(),
        cwd: spec.cwd.clone(),
        repo_root: spec.repo_root.clone(),
        description: spec.description.clone(),
        meta: spec.meta.clone(),
        record: spec.record.clone(),
    }
}

/// Reads where the repository at `cwd` stands, on a thread of its own (git
/// may be slow on a big repository; the session does not wait for it).
fn probe_git(cwd: std::path::PathBuf) -> oneshot::Receiver<Option<crate::git::Start>> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new().name("git-probe".into()).spawn(move || {
        let _ = tx.send(crate::git::start(&cwd));
    });
    if let Err(err) = spawned {
        tracing::warn!("cannot start the git probe: {err}");
    }
    rx
}

/// The git probe's answer, once (then never again).
async fn git_probe(
    probe: &mut Option<oneshot::Receiver<Option<crate::git::Start>>>,
) -> Option<crate::git::Start> {
    let Some(rx) = probe.as_mut() else {
        return std::future::pending().await;
    };
    let start = rx.await.ok().flatten();
    *probe = None;
    start
}

/// Opens the transcript, binds the control socket and starts the agent.
fn launch(
    spec: &LaunchSpec,
    paths: &SessionPaths,
    profile: &Profile,
    size: crate::store::registry::Size,
) -> Result<(TranscriptWriter, tokio::net::UnixListener, Link, tokio::process::Child), String> {
    let transcript = TranscriptWriter::open(paths, spec.max_log)
        .map_err(|err| format!("cannot open the transcript: {err}"))?;
    let listener =
        ipc::bind(&paths.socket).map_err(|err| format!("cannot bind the control socket: {err}"))?;
    let env = agent_env(spec, paths, profile);
    let spawned = match spec.transport {
        Transport::Pty => {
            Pty::spawn(&Spawn { argv: &spec.command, cwd: &spec.cwd, env: &env, size }).map(
                |(pty, child)| {
                    let pty = Arc::new(pty);
                    let agent_pid = child.id().unwrap_or_default();
                    let (input, written) = input::spawn_writer(pty.clone(), agent_pid);
                    (Link::Terminal { pty, input, written }, child)
                },
            )
        }
        Transport::CodexAppServer | Transport::ClaudeStreamJson | Transport::Acp => {
            let spawn = stdio::Spawn { argv: &spec.command, cwd: &spec.cwd, env: &env };
            stdio::spawn(&spawn).map(|(child, lines, output)| {
                (Link::Protocol(Box::new(ProtocolLink::new(lines, output))), child)
            })
        }
    };
    match spawned {
        Ok((link, child)) => Ok((transcript, listener, link, child)),
        Err(err) => {
            let _ = fsutil::remove_if_exists(&paths.socket);
            Err(format!("cannot start {}: {err}", spec.command.first().map_or("", |s| s.as_str())))
        }
    }
}

/// The agent's environment: the caller's, plus the profile's, plus the
/// REINS_* variables that tell the agent which session it is (and their
/// HARNEX_* twins, for briefs written for harnex: docs/harnex.md). `TERM` names
/// the terminal the agent really draws on: the host's own (the caller's
/// terminal or the tmux pane) when relayed, the emulator's when headless.
fn agent_env(spec: &LaunchSpec, paths: &SessionPaths, profile: &Profile) -> Vec<(String, String)> {
    const OURS: [&str; 8] = [
        "TERM",
        "REINS_ID",
        "REINS_RUN",
        "REINS_SESSION_DIR",
        "REINS_SPAWNER_PANE",
        "HARNEX_ID",
        "HARNEX_SESSION_CLI",
        "HARNEX_SPAWNER_PANE",
    ];
    let mut env: Vec<(String, String)> =
        spec.env.iter().filter(|(k, _)| !OURS.contains(&k.as_str())).cloned().collect();
    let term = match spec.mode {
        crate::store::registry::RunMode::Detached => None,
        _ => std::env::var("TERM").ok().filter(|t| !t.is_empty() && t != "dumb"),
    };
    env.push(("TERM".into(), term.unwrap_or_else(|| "xterm-256color".into())));
    // Later entries win: the profile may override TERM, nobody overrides ours.
    env.extend(profile.launch.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.push(("REINS_ID".into(), spec.id.clone()));
    // Marks every process of this run, even one that left the agent's
    // session: what a dead host left behind is found by it.
    env.push(("REINS_RUN".into(), spec.run.clone()));
    env.push(("REINS_SESSION_DIR".into(), paths.dir.display().to_string()));
    env.push(("HARNEX_ID".into(), spec.id.clone()));
    env.push(("HARNEX_SESSION_CLI".into(), spec.agent.clone()));
    if let Some(pane) = &spec.spawner_pane {
        env.push(("REINS_SPAWNER_PANE".into(), pane.clone()));
        env.push(("HARNEX_SPAWNER_PANE".into(), pane.clone()));
    }
    env
}

/// After the agent exits, ends what it left running in its session: TERM,
/// a short grace, then KILL.
async fn reap_leftovers(agent_pid: u32) {
    if crate::procs::session_members(agent_pid).is_empty() {
        return;
    }
    crate::procs::signal_tree(agent_pid, Signal::TERM);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if crate::procs::session_members(agent_pid).is_empty() {
            return;
        }
    }
    crate::procs::signal_tree(agent_pid, Signal::KILL);
}

fn to_json(value: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Something the agent side of the session did.
enum AgentEvent {
    /// Terminal output: this many bytes are in the read buffer.
    Output(usize),
    /// The terminal has no more output (every slave descriptor closed).
    OutputEnd,
    /// A tracked write reached the agent.
    Written(u64),
    /// Something came out of a protocol agent.
    Protocol(stdio::Output),
}

async fn agent_event(link: &mut Link, buf: &mut [u8], output_open: bool) -> AgentEvent {
    match link {
        Link::Terminal { pty, written, .. } => tokio::select! {
            read = pty.read(buf), if output_open => match read {
                Ok(0) | Err(_) => AgentEvent::OutputEnd,
                Ok(n) => AgentEvent::Output(n),
            },
            Some(token) = written.recv() => AgentEvent::Written(token),
        },
        // Read on after stdout closed: the agent's last words on stderr
        // must not block it (the channel is bounded).
        Link::Protocol(codex) => match codex.output.recv().await {
            Some(output) => AgentEvent::Protocol(output),
            None => std::future::pending().await,
        },
    }
}

fn protocol_deadline(link: &Link) -> Option<Instant> {
    match link {
        Link::Protocol(codex) => codex.protocol.as_ref().and_then(|p| p.next_deadline()),
        Link::Terminal { .. } => None,
    }
}

async fn relay_event(relay: &mut Option<Relay>) -> TerminalEvent {
    match relay {
        Some(relay) => relay.next().await,
        None => std::future::pending().await,
    }
}
