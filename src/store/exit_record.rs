//! `exit.json`: how the last run of a session ended, written by the host
//! before it disappears (or by `gc` for a host that died).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::fsutil;

/// Why a run ended (harnex schema 1 names, plus `stopped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExitReason {
    /// The agent exited with code 0 on its own.
    Success,
    /// The agent exited non-zero or was killed by a signal nobody asked for,
    /// or its host died.
    Failure,
    /// A deadline reins enforced ran out.
    Timeout,
    /// The structured transport was lost.
    Disconnected,
    /// The agent never came up.
    BootFailure,
    /// It ended because someone asked it to stop.
    Stopped,
    /// `reins gc --idle` (or `[fleet] retire_after`) stopped it after it
    /// sat idle: no turn running, nothing queued.
    Retired,
}

impl ExitReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExitReason::Success => "success",
            ExitReason::Failure => "failure",
            ExitReason::Timeout => "timeout",
            ExitReason::Disconnected => "disconnected",
            ExitReason::BootFailure => "boot_failure",
            ExitReason::Stopped => "stopped",
            ExitReason::Retired => "retired",
        }
    }
}

/// The content of `exit.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExitRecord {
    pub(crate) schema_version: u32,
    pub(crate) id: String,
    pub(crate) run: String,
    /// Exit code, when the agent exited rather than being killed.
    pub(crate) code: Option<i32>,
    /// The signal that killed the agent, if one did.
    pub(crate) signal: Option<i32>,
    pub(crate) reason: ExitReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
    /// Turns started in this run.
    pub(crate) turns: u64,
    pub(crate) started_at: String,
    pub(crate) exited_at: String,
}

impl ExitRecord {
    /// The exit status a shell would report for this run: the code, or
    /// 128 + signal.
    pub(crate) fn shell_status(&self) -> u8 {
        match (self.code, self.signal) {
            (Some(code), _) => (code & 0xff) as u8,
            (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
            (None, None) => 1,
        }
    }

    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).expect("exit record serializes");
        json.push(b'\n');
        fsutil::write_atomic(path, &json)
    }

    /// Reads `exit.json`; `None` if there is none or it is unreadable.
    pub(crate) fn read(path: &Path) -> Option<ExitRecord> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text).ok()
    }
}
