//! Where reins keeps things (DESIGN §4).
//!
//! State root: `$REINS_STATE_DIR`, else `$HARNEX_STATE_DIR`, else
//! `$XDG_STATE_HOME/reins`, else `~/.local/state/reins` (invoked as
//! `harnex`: `~/.local/state/harnex`, see docs/harnex.md). One directory per session under
//! `sessions/<scope>/<id>/`. Control sockets live under
//! `$XDG_RUNTIME_DIR/reins/` when that is set, else under the state root, in
//! a subdirectory keyed by state root and scope so two state roots never
//! share a socket name.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::store::fsutil;
use crate::store::scope::hash32_bytes;

/// The longest Unix socket path Linux accepts (`sun_path` holds 108 bytes
/// including the terminating NUL).
const SOCKET_PATH_MAX: usize = 107;

/// The state root and the runtime directory, resolved from the environment.
#[derive(Debug, Clone)]
pub(crate) struct StateRoot {
    root: PathBuf,
    runtime: PathBuf,
}

impl StateRoot {
    /// Resolves the state root from the environment, refusing directories
    /// that are not private to this user (nothing is created here).
    pub(crate) fn from_env() -> Result<Self, CliError> {
        let root = if let Some(dir) = crate::compat::env_var("STATE_DIR") {
            PathBuf::from(dir)
        } else if let Some(dir) = crate::compat::harnex_state_dir() {
            dir
        } else if let Some(dir) = non_empty_env("XDG_STATE_HOME") {
            PathBuf::from(dir).join("reins")
        } else if let Some(home) = non_empty_env("HOME") {
            PathBuf::from(home).join(".local/state/reins")
        } else {
            return Err(CliError::failure("cannot find a state directory")
                .hint("set REINS_STATE_DIR (or HOME or XDG_STATE_HOME)"));
        };
        let root = absolute(root);
        let runtime = match non_empty_env("XDG_RUNTIME_DIR") {
            Some(dir) => absolute(PathBuf::from(dir)).join("reins"),
            None => root.join("run"),
        };
        check_private(&root, "state directory", "REINS_STATE_DIR")?;
        check_private(&runtime, "runtime directory", "XDG_RUNTIME_DIR")?;
        Ok(StateRoot { root, runtime })
    }

    /// A state root with both directories given (a host gets them from its
    /// launch spec, not from its own environment).
    pub(crate) fn from_parts(root: PathBuf, runtime: PathBuf) -> Self {
        StateRoot { root, runtime }
    }

    pub(crate) fn runtime(&self) -> &Path {
        &self.runtime
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn sessions_dir(&self) -> PathBuf {
        self.root.join("sessions")
    }

    /// Creates the state root (0700), with an error that says what to do if
    /// it cannot be created or written.
    pub(crate) fn ensure(&self) -> Result<(), CliError> {
        let check = || -> std::io::Result<()> {
            fsutil::create_private_dir_all(&self.sessions_dir())?;
            let probe = self.root.join(format!(".probe.{}", std::process::id()));
            fsutil::create_private(&probe)?;
            fs::remove_file(&probe)
        };
        check().map_err(|err| {
            CliError::failure(format!(
                "state directory {} is not writable: {err}",
                self.root.display()
            ))
            .hint("point REINS_STATE_DIR at a directory you own, or fix its permissions")
        })
    }

    /// Paths of one session.
    pub(crate) fn session(&self, scope: &str, id: &str) -> SessionPaths {
        let dir = self.sessions_dir().join(scope).join(id);
        let key = hash32_bytes(format!("{}\0{scope}", self.root.display()).as_bytes());
        let socket = self.runtime.join(format!("{key:08x}")).join(format!("{id}.sock"));
        SessionPaths { dir, socket, scope: scope.to_string(), id: id.to_string() }
    }

    /// Every session directory under the state root, optionally in one scope.
    pub(crate) fn list_sessions(&self, scope: Option<&str>) -> Vec<SessionPaths> {
        let mut out = Vec::new();
        let scopes: Vec<String> = match scope {
            Some(s) => vec![s.to_string()],
            None => read_dir_names(&self.sessions_dir()),
        };
        for scope in scopes {
            for id in read_dir_names(&self.sessions_dir().join(&scope)) {
                out.push(self.session(&scope, &id));
            }
        }
        out
    }
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Refuses a directory (if it exists) that another user owns or that
/// others may write: whoever can write there can plant a session's files
/// or its control socket. Missing directories are created private later.
fn check_private(path: &Path, what: &str, var: &str) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt;
    // A directory that cannot be read (missing, or under a file) is left
    // to the code that creates it, which says what is wrong with it.
    let Ok(meta) = fs::metadata(path) else { return Ok(()) };
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(CliError::failure(format!(
            "{what} {} belongs to uid {}, not to you (uid {me}): refusing to use it",
            path.display(),
            meta.uid()
        ))
        .hint(format!("set {var} to a directory of your own")));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CliError::failure(format!(
            "{what} {} can be written by other users (mode {mode:04o}): refusing to use it",
            path.display()
        ))
        .hint(format!(
            "chmod go-w {}, or set {var} to a directory only you can write",
            path.display()
        )));
    }
    Ok(())
}

fn non_empty_env(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.is_empty())
}

fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        env::current_dir().map(|cwd| cwd.join(&path)).unwrap_or(path)
    }
}

/// The files of one session (DESIGN §4).
#[derive(Debug, Clone)]
pub(crate) struct SessionPaths {
    pub(crate) dir: PathBuf,
    pub(crate) socket: PathBuf,
    pub(crate) scope: String,
    pub(crate) id: String,
}

impl SessionPaths {
    /// `session.json`: the registry entry of the live host.
    pub(crate) fn registry(&self) -> PathBuf {
        self.dir.join("session.json")
    }
    /// `events.jsonl`: the append-only event log across runs.
    pub(crate) fn events(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
    /// `transcript.log`: raw agent output.
    pub(crate) fn transcript(&self) -> PathBuf {
        self.dir.join("transcript.log")
    }
    /// `transcript.log.1`: the transcript before its last rotation.
    pub(crate) fn transcript_rotated(&self) -> PathBuf {
        self.dir.join("transcript.log.1")
    }
    /// `inbox.jsonl`: the durable message queue.
    pub(crate) fn inbox(&self) -> PathBuf {
        self.dir.join("inbox.jsonl")
    }
    /// `exit.json`: how the last run ended.
    pub(crate) fn exit_record(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    /// `host.log`: the host's own tracing output.
    pub(crate) fn host_log(&self) -> PathBuf {
        self.dir.join("host.log")
    }
    /// Held exclusively by the live host for its whole life.
    pub(crate) fn host_lock(&self) -> PathBuf {
        self.dir.join("host.lock")
    }
    /// The ended run a watcher gave up on, if one did.
    pub(crate) fn given_up(&self) -> PathBuf {
        self.dir.join("given_up.json")
    }
    /// Held by the session's watcher, if it has one.
    pub(crate) fn watch_lock(&self) -> PathBuf {
        self.dir.join("watch.lock")
    }
    /// Held by a `run` client while it brings a host up.
    pub(crate) fn claim_lock(&self) -> PathBuf {
        self.dir.join("claim.lock")
    }
    /// FIFO through which a tmux-launched host receives its launch spec.
    pub(crate) fn launch_fifo(&self) -> PathBuf {
        self.dir.join("launch.fifo")
    }
    /// `launch.json`: how the last run was launched, without its
    /// environment (what a watcher needs to start it again).
    pub(crate) fn launch_record(&self) -> PathBuf {
        self.dir.join("launch.json")
    }

    /// `worktree.json`: the git worktree `run --worktree` made for this
    /// session; kept until `reins worktree remove` removes the worktree.
    pub(crate) fn worktree_record(&self) -> PathBuf {
        self.dir.join("worktree.json")
    }

    /// Refuses ids whose socket path would not fit in `sun_path`.
    pub(crate) fn check_socket_len(&self) -> Result<(), CliError> {
        let len = self.socket.as_os_str().len();
        if len > SOCKET_PATH_MAX {
            return Err(CliError::usage(format!(
                "session id {:?} is too long for this machine: its control socket path {} would \
                 be {len} bytes, the limit is {SOCKET_PATH_MAX}",
                self.id,
                self.socket.display()
            ))
            .hint("use a shorter --id, or set XDG_RUNTIME_DIR to a shorter directory"));
        }
        Ok(())
    }

    /// Creates the session directory and the socket directory (both 0700).
    pub(crate) fn ensure_dirs(&self) -> std::io::Result<()> {
        fsutil::create_private_dir_all(&self.dir)?;
        if let Some(parent) = self.socket.parent() {
            fsutil::create_private_dir_all(parent)?;
        }
        Ok(())
    }
}
