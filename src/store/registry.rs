//! `session.json`: the registry entry a live host keeps for its session.
//!
//! Written atomically at start and rewritten when the observed state or the
//! turn changes, so `status` can answer from files alone in a few
//! milliseconds without asking every host. Removed by the host on exit (and
//! by `gc` for a host that died). Never holds a secret: no environment, and
//! agent arguments that look like credentials are redacted.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::Observed;
use crate::store::events::TmuxTarget;
use crate::store::fsutil;
use crate::worktree::WorktreeRecord;

/// How the host relates to a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunMode {
    /// In the caller's terminal.
    Foreground,
    /// Headless: no terminal, the emulator still has the screen.
    Detached,
    /// In its own tmux window.
    Tmux,
}

impl RunMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunMode::Foreground => "foreground",
            RunMode::Detached => "detached",
            RunMode::Tmux => "tmux",
        }
    }
}

/// Terminal size in cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Size {
    pub(crate) rows: u16,
    pub(crate) cols: u16,
}

impl Size {
    /// The smallest screen a session gets (`run --size`, a viewer's).
    pub(crate) const MIN: Size = Size { rows: 5, cols: 10 };
    /// The largest: the emulator keeps every cell of the screen in memory.
    pub(crate) const MAX: Size = Size { rows: 1000, cols: 1000 };

    /// This size held within [`Size::MIN`]..=[`Size::MAX`].
    pub(crate) fn clamped(self) -> Size {
        Size {
            rows: self.rows.clamp(Size::MIN.rows, Size::MAX.rows),
            cols: self.cols.clamp(Size::MIN.cols, Size::MAX.cols),
        }
    }
}

/// The content of `session.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub(crate) schema_version: u32,
    pub(crate) id: String,
    pub(crate) scope: String,
    /// This host instance.
    pub(crate) run: String,
    pub(crate) repo_root: Option<PathBuf>,
    pub(crate) cwd: PathBuf,
    /// What the user asked for (`mock`, `claude`, `bash`, ...).
    pub(crate) agent: String,
    /// The profile driving it.
    pub(crate) adapter: String,
    pub(crate) transport: String,
    /// The agent's command line, with credential-looking values redacted.
    pub(crate) command: Vec<String>,
    pub(crate) mode: RunMode,
    pub(crate) host_pid: u32,
    pub(crate) agent_pid: u32,
    /// The agent's start time in clock ticks since boot (`/proc/PID/stat`
    /// field 22), so a recycled pid is never mistaken for the agent.
    pub(crate) agent_start_ticks: Option<u64>,
    pub(crate) socket: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tmux: Option<TmuxTarget>,
    /// The pane of whoever ran `reins run`, if it ran inside tmux.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) spawner_pane: Option<String>,
    pub(crate) started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) meta: Option<Value>,
    pub(crate) size: Size,
    pub(crate) state: Observed,
    pub(crate) state_since: String,
    /// Turns started so far in this run.
    pub(crate) turn: u64,
    /// The latest token usage a structured transport reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) usage: Option<Value>,
    /// The last error the agent or its transport reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
    /// Where the run's dispatch record line goes (none: `--no-record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<PathBuf>,
    /// The session's git worktree (`run --worktree`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<WorktreeRecord>,
    /// Files whose changes are announced to the agent (`run --watch-file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) watch_files: Vec<WatchedFile>,
    /// The worker this session looks after, when it is a buddy (`reins buddy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) buddy_of: Option<String>,
    /// The session it was started from inside (its agent ran `reins run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<crate::trust::Parent>,
    /// The oldest approval request the agent waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) approval: Option<crate::ipc::PendingApproval>,
    /// When the last turn of this run completed (its `task_complete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_completed_at: Option<String>,
    /// Disconnects of the agent's transport this run (`disconnected`
    /// events that would not be retried); none from an older host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) disconnects: Option<u64>,
}

/// A file the host watches for the agent (`run --watch-file PATH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WatchedFile {
    /// Absolute: the canonical parent directory joined with the file name.
    pub(crate) path: PathBuf,
    /// The path as the user wrote it, which is what the agent is told to
    /// read (it resolves the same from the agent's working directory).
    pub(crate) as_given: String,
}

impl SessionRecord {
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).expect("session record serializes");
        json.push(b'\n');
        fsutil::write_atomic(path, &json)
    }

    /// Reads `session.json`. `Ok(None)` when there is none; an error when it
    /// exists but cannot be parsed (a corrupt registry is reported, not
    /// silently skipped).
    pub(crate) fn read(path: &Path) -> io::Result<Option<SessionRecord>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// Redacts values that look like credentials in an agent command line:
/// `--api-key X`, `--token=X`, `OPENAI_API_KEY=X`.
pub(crate) fn redact_command(argv: &[String]) -> Vec<String> {
    let sensitive = |s: &str| {
        let s = s.to_ascii_lowercase();
        ["key", "token", "secret", "password", "passwd", "credential", "auth"]
            .iter()
            .any(|w| s.contains(w))
    };
    let mut out = Vec::with_capacity(argv.len());
    let mut redact_next = false;
    for arg in argv {
        if redact_next {
            out.push("[redacted]".to_string());
            redact_next = false;
            continue;
        }
        if let Some((name, _)) = arg.split_once('=') {
            if sensitive(name) {
                out.push(format!("{name}=[redacted]"));
                continue;
            }
        } else if arg.starts_with('-') && sensitive(arg) {
            redact_next = true;
        }
        out.push(arg.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_from_commands() {
        let argv: Vec<String> =
            ["codex", "--api-key", "sk-1", "--token=abc", "MY_SECRET=x", "-m", "gpt", "keyboard"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(
            redact_command(&argv),
            [
                "codex",
                "--api-key",
                "[redacted]",
                "--token=[redacted]",
                "MY_SECRET=[redacted]",
                "-m",
                "gpt",
                "keyboard"
            ]
        );
    }
}
