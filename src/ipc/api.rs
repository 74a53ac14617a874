//! Request and reply types of the control API (version 1, under `/v1/`).

use serde::{Deserialize, Serialize};

use crate::screen::ScreenText;
use crate::state::Observed;
use crate::store::follow::SessionFile;
use crate::store::inbox::MessageStatus;
use crate::store::registry::Size;

/// What a client asked the host.
#[derive(Debug)]
pub(crate) enum ControlRequest {
    /// `GET /v1/status`
    Status,
    /// `POST /v1/stop`
    Stop(StopRequest),
    /// `GET /v1/screen[?after=VERSION]`: the screen now, or (with `after`)
    /// as soon as it differs from that version.
    Screen { after: Option<u64> },
    /// `POST /v1/send`
    Send(SendRequest),
    /// `GET /v1/inbox`
    Inbox,
    /// `DELETE /v1/inbox` (all) or `DELETE /v1/inbox/ID` (one).
    Drop { message_id: Option<String> },
    /// `POST /v1/approve`
    Approve(ApproveRequest),
    /// `POST /v1/interrupt`: stop the running turn, keep the agent.
    Interrupt,
    /// `POST /v1/note`: a watcher's decision, to be written as an event
    /// (`stall`, `resume`, `restart`, `escalate` only).
    Note(Box<crate::store::events::EventKind>),
    /// `GET /v1/attach` (an HTTP upgrade): a viewer joins; what the agent
    /// draws goes to `output`, starting with the current screen.
    Attach(Attach),
    /// Keystrokes from viewer `viewer`.
    ViewerInput { viewer: u64, bytes: Vec<u8> },
    /// Viewer `viewer`'s terminal changed size.
    ViewerResize { viewer: u64, size: Size },
    /// Viewer `viewer` left.
    ViewerLeft { viewer: u64 },
    /// `POST /v1/rate-limit`: send the resume message when the limit in
    /// force lifts (a watcher asks).
    ArmResume,
    /// `GET /v1/grown?file=events|transcript&ino=INODE&len=BYTES`: answered
    /// as soon as that file is not (any more) the one with that inode and
    /// length: a follower without inotify waits on it.
    Grown { file: SessionFile, ino: u64, len: u64 },
}

/// A viewer joining a session (`reins attach`).
#[derive(Debug)]
pub(crate) struct Attach {
    /// Watch only: keystrokes and size changes are ignored.
    pub(crate) read_only: bool,
    /// The viewer's terminal size.
    pub(crate) size: Option<Size>,
    /// Where the host sends what the agent draws. Bounded: a viewer that
    /// cannot keep up is dropped, never waited for.
    pub(crate) output: tokio::sync::mpsc::Sender<bytes::Bytes>,
}

/// Reply to an attach: the viewer's number and what it may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AttachReply {
    pub(crate) ok: bool,
    pub(crate) viewer: u64,
    pub(crate) read_only: bool,
    /// The session's screen size after the viewer joined.
    pub(crate) size: Size,
}

/// Reply to `GET /v1/grown`: the file as the host now has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GrownReply {
    pub(crate) ino: u64,
    pub(crate) len: u64,
}

/// How to answer an approval dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Decision {
    Allow,
    Always,
    Deny,
}

impl Decision {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Always => "always",
            Decision::Deny => "deny",
        }
    }
}

/// Body of `POST /v1/approve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApproveRequest {
    pub(crate) decision: Decision,
    /// Answer this request only (its name from the `blocked` event); none:
    /// the oldest pending one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<String>,
}

/// Reply to `POST /v1/approve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ApproveReply {
    pub(crate) ok: bool,
    pub(crate) decision: Decision,
    /// The request that was answered.
    #[serde(default)]
    pub(crate) request: Option<String>,
}

/// An approval request the agent waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingApproval {
    /// Its name (`a1`, `a2`, ... per run), as in its `blocked` event.
    pub(crate) request: String,
    /// What it asks, as far as the agent said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
    /// When it was asked (RFC 3339).
    pub(crate) since: String,
}

/// The largest message `send` accepts, in bytes.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;

/// Body of `POST /v1/send`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SendRequest {
    #[serde(default)]
    pub(crate) text: String,
    /// Press the submit key after the text.
    #[serde(default = "yes")]
    pub(crate) submit: bool,
    /// Only press the submit key.
    #[serde(default)]
    pub(crate) submit_only: bool,
    /// Deliver now, even to a busy agent, ahead of the queue.
    #[serde(default)]
    pub(crate) force: bool,
    /// Type control characters and escape sequences as they are.
    #[serde(default)]
    pub(crate) raw: bool,
    /// Expire the message if it is still queued after this long.
    #[serde(default)]
    pub(crate) ttl_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

/// Reply to `POST /v1/send`: the message is in the inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SendReply {
    pub(crate) ok: bool,
    pub(crate) message_id: String,
    /// `delivering` (being typed now) or `queued`.
    pub(crate) status: MessageStatus,
    /// Messages ahead of it in the queue.
    pub(crate) position: usize,
}

/// A pending message as `GET /v1/inbox` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PendingMessage {
    pub(crate) message_id: String,
    pub(crate) status: MessageStatus,
    pub(crate) queued_at: String,
    pub(crate) expires_at: Option<String>,
    pub(crate) preview: String,
    pub(crate) force: bool,
    pub(crate) submit: bool,
    pub(crate) submit_only: bool,
}

/// Reply to `GET /v1/inbox`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InboxReply {
    pub(crate) messages: Vec<PendingMessage>,
}

/// Reply to `DELETE /v1/inbox[/ID]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DropReply {
    pub(crate) ok: bool,
    pub(crate) dropped: Vec<String>,
}

/// Body of `POST /v1/stop`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StopRequest {
    /// The client's whole deadline; the host fits its escalation inside it.
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
    /// Retire it (`gc --idle`): only if no turn runs and nothing is
    /// queued — the host checks, so nothing slips in between — and the
    /// exit reason says `retired`.
    #[serde(default)]
    pub(crate) retire: bool,
}

/// Reply to `POST /v1/stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StopReply {
    pub(crate) ok: bool,
    /// True when a stop was already under way.
    pub(crate) already: bool,
    /// Why a retire was refused (the session is working or has messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<String>,
}

/// Reply to `GET /v1/status`: the host's live view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StatusReply {
    pub(crate) id: String,
    pub(crate) run: String,
    pub(crate) state: Observed,
    pub(crate) state_since: String,
    pub(crate) rule: Option<String>,
    pub(crate) turn: u64,
    pub(crate) agent_pid: u32,
    pub(crate) stopping: bool,
    /// Bytes of agent output so far in this run.
    pub(crate) output_bytes: u64,
    /// The last error the agent or its transport reported.
    #[serde(default)]
    pub(crate) last_error: Option<String>,
    /// A turn is open (delivered or seen starting, not yet complete).
    #[serde(default)]
    pub(crate) turn_open: bool,
    /// Messages waiting in the inbox.
    #[serde(default)]
    pub(crate) queued: usize,
    /// When the agent last got somewhere, and how that was seen.
    #[serde(default)]
    pub(crate) progress: Option<crate::host::progress::ProgressReport>,
    /// The usage limit in force, if one is.
    #[serde(default)]
    pub(crate) rate_limit: Option<RateLimitReport>,
    /// The oldest approval request the agent waits on, if any.
    #[serde(default)]
    pub(crate) approval: Option<PendingApproval>,
    /// Whether a message would be typed now, and what decided it (the
    /// profile's `[input]` evidence; screen agents only).
    #[serde(default)]
    pub(crate) input: Option<InputReport>,
}

/// Whether the agent takes input now, as delivery sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InputReport {
    /// A message would be typed now.
    pub(crate) takes_input: bool,
    /// What decided it.
    pub(crate) why: String,
}

/// A usage limit in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RateLimitReport {
    /// When it resets (RFC 3339), if the agent said.
    pub(crate) until: Option<String>,
    /// The resume message will be sent when it lifts.
    pub(crate) resume: bool,
}

/// Reply to `GET /v1/screen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScreenReply {
    /// Changes whenever the screen settles after new output.
    pub(crate) version: u64,
    pub(crate) size: Size,
    pub(crate) rows: Vec<String>,
    pub(crate) cursor_row: usize,
    pub(crate) cursor_col: usize,
    pub(crate) title: String,
    pub(crate) alternate: bool,
}

impl ScreenReply {
    pub(crate) fn new(version: u64, size: Size, text: ScreenText) -> ScreenReply {
        ScreenReply {
            version,
            size,
            rows: text.rows,
            cursor_row: text.cursor_row,
            cursor_col: text.cursor_col,
            title: text.title,
            alternate: text.alternate,
        }
    }

    pub(crate) fn into_text(self) -> ScreenText {
        ScreenText {
            rows: self.rows,
            cursor_row: self.cursor_row,
            cursor_col: self.cursor_col,
            title: self.title,
            alternate: self.alternate,
        }
    }
}
