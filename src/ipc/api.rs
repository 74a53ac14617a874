//! Request and reply types of the control API (version 1, under `/v1/`).

use serde::{Deserialize, Serialize};

use crate::screen::ScreenText;
use crate::state::Observed;
use crate::store::registry::Size;

/// What a client asked the host.
#[derive(Debug)]
pub(crate) enum ControlRequest {
    /// `GET /v1/status`
    Status,
    /// `POST /v1/stop`
    Stop(StopRequest),
    /// `GET /v1/screen`
    Screen,
}

/// Body of `POST /v1/stop`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StopRequest {
    /// The client's whole deadline; the host fits its escalation inside it.
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
}

/// Reply to `POST /v1/stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StopReply {
    pub(crate) ok: bool,
    /// True when a stop was already under way.
    pub(crate) already: bool,
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
}

/// Reply to `GET /v1/screen`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScreenReply {
    pub(crate) size: Size,
    pub(crate) rows: Vec<String>,
    pub(crate) cursor_row: usize,
    pub(crate) cursor_col: usize,
    pub(crate) title: String,
    pub(crate) alternate: bool,
}

impl ScreenReply {
    pub(crate) fn new(size: Size, text: ScreenText) -> ScreenReply {
        ScreenReply {
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
