//! What can be done to one session once it is found: hand it a message and
//! follow the message's fate, read its screen, interrupt its turn, answer
//! its approval request, stop it.
//!
//! Each call talks to the session's host over its control socket and, where
//! an outcome is announced in the event log (a delivery, the end of a
//! turn, the host going away), follows the log for it: never a poll.

use std::time::Duration;

use rustix::process::Signal;

use crate::control::cleanup;
use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::CliError;
use crate::ipc::{
    ApproveReply, ApproveRequest, Client, ClientError, Decision, ScreenReply, SendReply,
    SendRequest, StopReply, StopRequest,
};
use crate::procs;
use crate::store::events::EventKind;
use crate::store::exit_record::ExitReason;
use crate::store::follow;
use crate::store::stream::EventStream;

/// How long `send` follows its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Not at all: the message is in the inbox (queued or being typed).
    No,
    /// Until it is delivered (its turn seen starting) or its fate is known.
    Delivery,
    /// Until the turn it started is complete.
    Turn,
}

/// What became of a message.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    /// It got where it was asked to (delivered, typed, its turn done).
    pub(crate) ok: bool,
    pub(crate) message_id: String,
    /// queued, delivering, delivered, typed, stranded, expired, dropped,
    /// exited or timeout.
    pub(crate) status: String,
    /// The turn it started.
    pub(crate) turn: Option<u64>,
    /// With [`Follow::Turn`]: how the turn ended.
    pub(crate) task: Option<serde_json::Value>,
    pub(crate) detail: Option<String>,
    /// The deadline passed before its fate was known (it stays queued).
    pub(crate) timed_out: bool,
}

/// Hands `request` to the session and follows the message as `follow`
/// says, for at most `timeout`; `progress` hears where it stands.
pub(crate) async fn send(
    view: &SessionView,
    request: &SendRequest,
    follow: Follow,
    timeout: Option<Duration>,
    progress: impl Fn(String),
) -> Result<Sent, CliError> {
    let record = lookup::require_live(view)?;
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let id = &view.paths.id;
    // Follow from here on, before asking, so no outcome can be missed.
    let mut stream = (follow != Follow::No).then(|| EventStream::from_end(&view.paths));
    let client = Client::new(&record.socket, Duration::from_secs(10));
    let reply: SendReply = client.post("/v1/send", request).await.map_err(|err| {
        let message = format!("cannot send to {id}: {err}");
        match err {
            ClientError::Status { status: 400 | 413, .. } => CliError::usage(message),
            _ => CliError::failure(message),
        }
    })?;
    let mut sent = Sent {
        ok: true,
        message_id: reply.message_id.clone(),
        status: reply.status.as_str().into(),
        turn: None,
        task: None,
        detail: None,
        timed_out: false,
    };
    let Some(stream) = stream.as_mut() else { return Ok(sent) };
    progress(sent.status.clone());
    let followed =
        follow_message(stream, &record.run, &mut sent, follow == Follow::Turn, &progress);
    let followed = match deadline {
        Some(at) => tokio::time::timeout_at(at, followed).await.ok(),
        None => Some(followed.await),
    };
    match followed {
        Some(result) => result?,
        None => {
            sent.ok = false;
            sent.timed_out = true;
            sent.detail = Some(format!(
                "gave up waiting after {:.1}s; the message stays in the inbox (`reins inbox --id \
                 {id}`)",
                timeout.unwrap_or_default().as_secs_f64(),
            ));
            if sent.status == "delivered" {
                sent.status = "timeout".into();
            }
        }
    }
    Ok(sent)
}

/// Follows the session's events until the message's fate (and, with
/// `whole_turn`, its turn's end) is known.
async fn follow_message(
    stream: &mut EventStream,
    run: &str,
    sent: &mut Sent,
    whole_turn: bool,
    progress: &impl Fn(String),
) -> Result<(), CliError> {
    let fail = |sent: &mut Sent, status: &str| {
        sent.ok = false;
        sent.status = status.into();
    };
    while let Some(event) = stream.next().await? {
        if event.header.run != run {
            continue;
        }
        let ours = |id: &str| id == sent.message_id;
        match event.kind {
            EventKind::Delivered { message_id, verified, .. } if ours(&message_id) => {
                sent.status = "delivered".into();
                sent.turn = event.header.turn;
                if !verified {
                    sent.detail = Some("forced into a busy agent: no new turn to verify".into());
                }
                if !whole_turn || !verified {
                    return Ok(());
                }
                progress(format!(
                    "delivered; turn {} is running",
                    event.header.turn.map_or("?".into(), |t| t.to_string())
                ));
            }
            EventKind::Typed { message_id, .. } if ours(&message_id) => {
                sent.status = "typed".into();
                return Ok(());
            }
            EventKind::Stranded { message_id, reason, .. } if ours(&message_id) => {
                fail(sent, "stranded");
                sent.detail = Some(reason);
                return Ok(());
            }
            EventKind::Expired { message_id, .. } if ours(&message_id) => {
                fail(sent, "expired");
                return Ok(());
            }
            EventKind::Dropped { message_id, .. } if ours(&message_id) => {
                fail(sent, "dropped");
                return Ok(());
            }
            EventKind::TaskComplete { status, .. }
                if sent.turn.is_some() && event.header.turn == sent.turn =>
            {
                sent.task = Some(serde_json::json!({ "status": status }));
                return Ok(());
            }
            EventKind::Exited { .. } => {
                sent.detail = Some(if sent.status != "delivered" {
                    "the session ended first; the message stays in its inbox".into()
                } else {
                    "the session ended before the turn completed".into()
                });
                fail(sent, "exited");
                return Ok(());
            }
            _ => {}
        }
    }
    fail(sent, "exited");
    sent.detail = Some("the session's host died".into());
    Ok(())
}

/// Prefixes the relay header that names the sending session (`sender`,
/// when the sender is itself a session other than the receiver, or with
/// `always` even when it is the receiver). A relayed text is never wrapped
/// twice.
pub(crate) fn with_relay_header(
    sender: Option<&str>,
    receiver: &str,
    text: String,
    always: bool,
) -> String {
    match sender {
        Some(sender) if !sender.is_empty() && (always || sender != receiver) => {
            if crate::compat::is_relayed(&text) {
                return text;
            }
            format!("{}\n{text}", crate::compat::relay_header(sender))
        }
        _ => text,
    }
}

/// The session's screen now, or (with `after`) as soon as it differs from
/// that version. `None`: the session ended while it was being waited on.
pub(crate) async fn screen(
    view: &SessionView,
    after: Option<u64>,
) -> Result<Option<ScreenReply>, CliError> {
    let record = lookup::require_live(view)?;
    let (path, patience) = match after {
        Some(v) => (format!("/v1/screen?after={v}"), Duration::from_secs(24 * 3600)),
        None => ("/v1/screen".to_string(), Duration::from_secs(5)),
    };
    match Client::new(&record.socket, patience).get(&path).await {
        Ok(screen) => Ok(Some(screen)),
        // The session ended while we followed it: the host drops the request
        // as it goes; wait for it to be gone for sure.
        Err(_)
            if after.is_some()
                && tokio::time::timeout(
                    Duration::from_secs(10),
                    follow::host_gone(&view.paths.host_lock()),
                )
                .await
                .is_ok() =>
        {
            Ok(None)
        }
        Err(err) => {
            Err(CliError::failure(format!("cannot read the screen of {}: {err}", view.paths.id)))
        }
    }
}

/// Stops the running turn (the agent stays).
pub(crate) async fn interrupt(view: &SessionView) -> Result<(), CliError> {
    let record = lookup::require_live(view)?;
    let id = &view.paths.id;
    Client::new(&record.socket, Duration::from_secs(5))
        .post::<_, serde_json::Value>("/v1/interrupt", &serde_json::json!({}))
        .await
        .map_err(|err| match err {
            ClientError::Status { status: 403, message } => {
                CliError::failure(format!("refused by session {id}: {message}"))
            }
            ClientError::Status { status: 409, message } => {
                CliError::failure(format!("cannot interrupt session {id}: {message}"))
            }
            other => CliError::failure(format!("cannot interrupt session {id}: {other}")),
        })?;
    Ok(())
}

/// Answers the approval request the agent waits on (`request` names it;
/// none: the oldest pending one).
pub(crate) async fn approve(
    view: &SessionView,
    decision: Decision,
    request: Option<String>,
) -> Result<ApproveReply, CliError> {
    let record = lookup::require_live(view)?;
    let id = &view.paths.id;
    Client::new(&record.socket, Duration::from_secs(5))
        .post("/v1/approve", &ApproveRequest { decision, request })
        .await
        .map_err(|err| match err {
            ClientError::Status { status: 409, message } => CliError::failure(format!(
                "cannot approve in session {id}: {message}"
            ))
            .hint(format!(
                "`reins status --id {id} --json` names the pending request; `reins pane \
                         --id {id}` shows the screen"
            )),
            ClientError::Status { status: 403, message } => {
                CliError::failure(format!("refused by session {id}: {message}"))
                    .hint("a person, or an agent of another session, answers it")
            }
            other => CliError::failure(format!("cannot approve in session {id}: {other}")),
        })
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopOutcome {
    /// It had ended already.
    AlreadyExited,
    /// Its host had died; what was left of it was cleaned up.
    Cleaned,
    /// It stopped when asked.
    Stopped,
    /// It was killed (`force`).
    Killed,
}

impl StopOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StopOutcome::AlreadyExited => "already_exited",
            StopOutcome::Cleaned => "cleaned",
            StopOutcome::Stopped => "stopped",
            StopOutcome::Killed => "killed",
        }
    }
}

/// Stops the session: the agent's polite exit, then SIGTERM and SIGKILL to
/// its whole tree, within `timeout`; with `force`, whatever does not end in
/// time (or a host that does not answer) is killed.
pub(crate) async fn stop(
    view: &SessionView,
    timeout: Duration,
    force: bool,
) -> Result<StopOutcome, CliError> {
    match view.liveness {
        Liveness::Exited => Ok(StopOutcome::AlreadyExited),
        Liveness::Dead => {
            cleanup::clean_dead(view, ExitReason::Stopped)?;
            Ok(StopOutcome::Cleaned)
        }
        Liveness::Live => stop_live(view, timeout, force).await,
    }
}

async fn stop_live(
    view: &SessionView,
    timeout: Duration,
    force: bool,
) -> Result<StopOutcome, CliError> {
    let record = lookup::require_live(view)?;
    let id = &view.paths.id;
    // Watch for the end before asking, so it cannot slip past us.
    let mut gone = follow::host_gone(&view.paths.host_lock());
    let deadline = tokio::time::Instant::now() + timeout;
    let client = Client::new(&record.socket, timeout.min(Duration::from_secs(3)));
    let request = StopRequest { timeout_ms: Some(timeout.as_millis() as u64), retire: false };
    if let Err(err) = client.post::<_, StopReply>("/v1/stop", &request).await {
        if !force {
            return Err(CliError::failure(format!("cannot ask session {id} to stop: {err}"))
                .hint("`reins stop --force` kills it without asking"));
        }
    } else {
        tokio::select! {
            _ = &mut gone => return Ok(StopOutcome::Stopped),
            _ = tokio::time::sleep_until(deadline) => {}
        }
        if !force {
            return Err(CliError::timeout(format!(
                "session {id} did not stop within {:.1}s",
                timeout.as_secs_f64()
            ))
            .hint("`reins stop --force` kills it"));
        }
    }
    // Forced: kill the agent's tree and the host, then clean up after it.
    if procs::is_running(record.agent_pid, record.agent_start_ticks) {
        procs::signal_tree(record.agent_pid, Signal::KILL);
    }
    procs::signal_pid(record.host_pid, Signal::KILL);
    if tokio::time::timeout(Duration::from_secs(5), gone).await.is_err() {
        return Err(CliError::failure(format!(
            "session {id}: its host (pid {}) survived SIGKILL",
            record.host_pid
        )));
    }
    // The host may have written its own end before dying.
    let after = SessionView::read(view.paths.clone());
    if after.liveness == Liveness::Dead {
        cleanup::clean_dead(&after, ExitReason::Stopped)?;
    }
    Ok(StopOutcome::Killed)
}
