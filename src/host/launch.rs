//! The launch spec: everything a host needs to start one session, decided
//! and validated by the `run` client.
//!
//! It carries the agent's full environment (which may hold API keys), so it
//! is never written to a regular file: a detached host reads it from its
//! stdin pipe, a tmux-launched host from a FIFO (0600, in the 0700 session
//! directory) that the `run` client writes once and removes.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adapter::Transport;
use crate::store::events::TmuxTarget;
use crate::store::paths::StateRoot;
use crate::store::registry::{RunMode, Size, WatchedFile};
use crate::store::transcript::LogLimit;
use crate::worktree::WorktreeRecord;

/// Everything the host needs to run a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LaunchSpec {
    /// The version of the reins that wrote it: a `reins-host` of another
    /// version refuses it (the two binaries come from one build).
    #[serde(default)]
    pub(crate) reins_version: Option<String>,
    pub(crate) state_root: PathBuf,
    pub(crate) runtime_dir: PathBuf,
    pub(crate) scope: String,
    pub(crate) repo_root: Option<PathBuf>,
    pub(crate) id: String,
    /// This host instance's id (the `run` of every event it writes).
    pub(crate) run: String,
    /// What the user asked to run (`mock`, `bash`, ...).
    pub(crate) agent: String,
    /// The adapter profile, as TOML (the client resolved any override, so
    /// the host does not depend on its own environment to find it).
    pub(crate) profile_toml: String,
    /// Program (absolute path) and arguments.
    pub(crate) command: Vec<String>,
    pub(crate) cwd: PathBuf,
    /// The agent's environment, complete.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) mode: RunMode,
    /// Screen size for headless sessions; relayed sessions use their terminal's.
    pub(crate) size: Size,
    pub(crate) tmux: Option<TmuxTarget>,
    pub(crate) spawner_pane: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) meta: Option<Value>,
    /// The first task, delivered as a message (profiles with
    /// `context = "message"`).
    #[serde(default)]
    pub(crate) context_message: Option<String>,
    /// Stop after the first turn completes (`--auto-stop`).
    #[serde(default)]
    pub(crate) auto_stop: bool,
    /// How long a queued message waits before it expires, unless its
    /// sender says otherwise.
    pub(crate) inbox_ttl_ms: u64,
    /// What to do when the agent asks for approval.
    #[serde(default)]
    pub(crate) approve: ApprovalPolicy,
    /// How the host talks to the agent.
    #[serde(default)]
    pub(crate) transport: Transport,
    /// Codex sandbox mode for the app-server thread (`read-only`,
    /// `workspace-write`, `danger-full-access`); None = codex's own config.
    #[serde(default)]
    pub(crate) sandbox: Option<String>,
    /// Files whose changes the host announces to the agent (`--watch-file`).
    #[serde(default)]
    pub(crate) watch_files: Vec<WatchedFile>,
    /// The worker this session looks after (`reins buddy`).
    #[serde(default)]
    pub(crate) buddy_of: Option<String>,
    /// Where the dispatch record line goes at the end (none: not written).
    #[serde(default)]
    pub(crate) record: Option<PathBuf>,
    /// Stop the session after this long (`run --max-runtime`); its exit
    /// reason is then `timeout`.
    #[serde(default)]
    pub(crate) max_runtime_ms: Option<u64>,
    /// What to do when a usage limit lifts (`run --on-rate-limit`).
    #[serde(default)]
    pub(crate) on_rate_limit: RateLimitPolicy,
    /// The session's git worktree (`run --worktree`): `cwd` is inside it,
    /// and a restart from `launch.json` runs there again.
    #[serde(default)]
    pub(crate) worktree: Option<WorktreeRecord>,
    /// Rotate `transcript.log` at this size (`run --max-log`).
    #[serde(default)]
    pub(crate) max_log: LogLimit,
    /// The session `run` was called from inside, if any.
    #[serde(default)]
    pub(crate) parent: Option<crate::trust::Parent>,
    /// `[policy] agents` of config.toml when the session started.
    #[serde(default)]
    pub(crate) agent_control: crate::trust::AgentControl,
    /// `[notify]` of config.toml when the session started.
    #[serde(default)]
    pub(crate) notify: Option<crate::notify::Notify>,
}

/// How a session was launched, minus its environment: what `reins watch`
/// needs to start it again after its agent died. `run` writes it as
/// `launch.json` (0600); the environment is never written down, so a
/// restart uses the watcher's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LaunchRecord {
    /// The spec, with `env` empty and the command without the context.
    pub(crate) spec: LaunchSpec,
    /// The first task as the user gave it (`--context`), before reins
    /// framed it as `[reins session id=ID] ...`.
    pub(crate) context: Option<String>,
    /// The tmux window name, for tmux sessions.
    pub(crate) window: Option<String>,
    /// Environment set beyond the caller's (a model endpoint's), as
    /// templates: `{api_key}` is filled from `api_key_env` at each launch,
    /// so the key is never written here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) extra_env: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_key_env: Option<String>,
    /// `run --watch`/`--supervised`: the session asked to be watched, with
    /// these `reins watch` flags; `reins supervise` watches it whenever no
    /// one else does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) watch: Option<Vec<String>>,
}

/// `extra` with `{api_key}` filled from the variable `key_env` names
/// (`none` when there is none, or it is unset).
pub(crate) fn fill_key(extra: &[(String, String)], key_env: Option<&str>) -> Vec<(String, String)> {
    let key = key_env
        .and_then(|var| std::env::var(var).ok())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "none".into());
    extra.iter().map(|(k, v)| (k.clone(), v.replace("{api_key}", &key))).collect()
}

/// The caller's environment with `extra` set over it.
pub(crate) fn env_with(extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !extra.iter().any(|(set, _)| set == k))
        .collect();
    env.extend(extra);
    env
}

impl LaunchRecord {
    pub(crate) fn write(&self, path: &Path) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        crate::store::fsutil::write_atomic(path, &bytes)
    }

    /// The record at `path`; `None` if there is none (a session started by
    /// an older reins).
    pub(crate) fn read(path: &Path) -> io::Result<Option<LaunchRecord>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// What the host does when a usage limit lifts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RateLimitPolicy {
    /// Take messages again, send nothing by itself.
    #[default]
    Wait,
    /// Send the resume message, once.
    Resume,
}

/// What the host does when the agent shows an approval dialog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApprovalPolicy {
    /// Leave it on screen: the session reads `blocked{approval}` until
    /// someone runs `reins approve`.
    #[default]
    Ask,
    /// Allow every request (once each).
    Auto,
    /// Refuse every request.
    Never,
}

impl ApprovalPolicy {
    /// As written on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Ask => "ask",
            ApprovalPolicy::Auto => "auto",
            ApprovalPolicy::Never => "never",
        }
    }
}

impl LaunchSpec {
    pub(crate) fn state(&self) -> StateRoot {
        StateRoot::from_parts(self.state_root.clone(), self.runtime_dir.clone())
    }

    /// Reads a spec from a pipe or FIFO until EOF.
    pub(crate) fn read_from(mut reader: impl Read) -> io::Result<LaunchSpec> {
        let mut buf = Vec::new();
        reader.read_to_end(&mut buf)?;
        serde_json::from_slice(&buf).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// Reads a spec from the FIFO at `path` (blocks until the writer closes).
    pub(crate) fn read_fifo(path: &Path) -> io::Result<LaunchSpec> {
        let file = std::fs::File::open(path)?;
        LaunchSpec::read_from(file)
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("launch spec serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model endpoint's environment is recorded as templates and its key
    /// is read at each launch (the first and every restart).
    #[test]
    fn an_endpoints_key_is_filled_at_launch_and_never_recorded() {
        let extra = vec![
            ("OPENAI_BASE_URL".to_string(), "http://127.0.0.1:11434/v1".to_string()),
            ("OPENAI_API_KEY".to_string(), "{api_key}".to_string()),
        ];
        let var = "REINS_TEST_LAUNCH_KEY_4f1c";
        assert_eq!(fill_key(&extra, Some(var))[1].1, "none", "unset: none");
        assert_eq!(fill_key(&extra, None)[1].1, "none", "no key variable: none");
        // SAFETY: this variable is this test's own; nothing else reads it.
        unsafe { std::env::set_var(var, "sk-secret") };
        let filled = fill_key(&extra, Some(var));
        assert_eq!(filled[1], ("OPENAI_API_KEY".to_string(), "sk-secret".to_string()));
        let env = env_with(filled);
        let set: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| k == "OPENAI_API_KEY" || k == "OPENAI_BASE_URL").collect();
        assert_eq!(set.len(), 2, "set once each, over the caller's: {set:?}");
        // SAFETY: as above.
        unsafe { std::env::remove_var(var) };
    }
}
