//! tmux, by shelling out: one command per invocation, every exit status
//! checked, stderr kept for the error message.
//!
//! Which server: `$REINS_TMUX_SERVER` names a private server (`tmux -L`),
//! used by tests and by people who keep agents apart from their own tmux;
//! otherwise, inside tmux, the caller's own server (the socket in `$TMUX`);
//! otherwise tmux's default server. Panes are always addressed by their id
//! (`%N`), never by a name someone can rename.
//!
//! tmux 3.x expands formats in the window name (`-n`), the session name
//! (`-s`) and the start directory (`-c`) of `new-window`/`new-session`,
//! and `#(cmd)` in a format runs `cmd`: every piece of user or agent text
//! handed to tmux in such an argument goes through [`literal`] first.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::CliError;
use crate::store::events::TmuxTarget;

/// What `new-window`/`new-session -P` print about the new pane (the socket
/// too, so that opening a window is one tmux call, not three).
const PANE_FORMAT: &str = "#{pane_id}\t#{session_name}\t#{window_id}\t#{socket_path}";

/// The tmux session used when the caller is not inside tmux.
pub(crate) const DEFAULT_SESSION: &str = "reins";

/// How to reach one tmux server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Server {
    Default,
    /// `tmux -L NAME`.
    Named(String),
    /// `tmux -S PATH`.
    Socket(PathBuf),
}

/// A handle on a tmux server.
#[derive(Debug, Clone)]
pub(crate) struct Tmux {
    server: Server,
}

/// Where a new window goes.
#[derive(Debug, Clone)]
pub(crate) struct NewWindow<'a> {
    pub(crate) window_name: &'a str,
    pub(crate) cwd: &'a std::path::Path,
    /// Program and arguments, run directly in the pane.
    pub(crate) command: &'a [String],
}

impl Tmux {
    /// The server the caller should use (see the module docs).
    pub(crate) fn for_caller() -> Tmux {
        let server = if let Some(name) = env_non_empty("REINS_TMUX_SERVER") {
            Server::Named(name)
        } else if let Some(socket) = caller_socket() {
            Server::Socket(socket)
        } else {
            Server::Default
        };
        Tmux { server }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        match &self.server {
            Server::Default => {}
            Server::Named(name) => {
                cmd.args(["-L", name]);
            }
            Server::Socket(path) => {
                cmd.arg("-S").arg(path);
            }
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs one tmux command and returns its stdout, trimmed.
    fn run(&self, args: &[&str]) -> Result<String, TmuxError> {
        self.run_untrimmed(args).map(|out| out.trim().to_string())
    }

    /// Runs one tmux command and returns its stdout as printed.
    fn run_untrimmed(&self, args: &[&str]) -> Result<String, TmuxError> {
        let out = self.command().args(args).output().map_err(|err| TmuxError {
            command: args.first().unwrap_or(&"").to_string(),
            stderr: err.to_string(),
            missing: err.kind() == std::io::ErrorKind::NotFound,
        })?;
        if !out.status.success() {
            return Err(TmuxError {
                command: args.first().unwrap_or(&"").to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                missing: false,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Checks that tmux is on PATH, without running it: `run --tmux` must
    /// refuse before it starts anything, and must not spend a process on it.
    pub(crate) fn check_installed() -> Result<(), CliError> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let found = std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join("tmux"))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
        if found {
            return Ok(());
        }
        Err(CliError::failure("--tmux needs tmux, which is not installed")
            .hint("install tmux (e.g. apt-get install tmux), or use --detach"))
    }

    /// The socket path of this server, as tmux reports it.
    pub(crate) fn socket_path(&self) -> Result<String, TmuxError> {
        self.run(&["display-message", "-p", "#{socket_path}"])
    }

    /// Opens a new window for a session and returns its pane. Inside tmux it
    /// goes into the caller's tmux session; outside, into the `reins` tmux
    /// session, created on first use and reused after that (two runs racing
    /// to create it both succeed). Outside tmux that is one tmux command
    /// per session once the `reins` session exists.
    pub(crate) fn new_window(&self, spec: &NewWindow<'_>) -> Result<TmuxTarget, TmuxError> {
        let command = shell_join(spec.command);
        let cwd = literal(&spec.cwd.to_string_lossy());
        let name = literal(spec.window_name);
        let spec = &NewWindow { window_name: &name, ..spec.clone() };
        let caller_session = match (&self.server, env_non_empty("TMUX_PANE")) {
            (Server::Socket(_), Some(pane)) => {
                Some(self.run(&["display-message", "-p", "-t", &pane, "#{session_id}"])?)
            }
            _ => None,
        };
        let line = match caller_session {
            Some(session) => self.run_new_window(&format!("{session}:"), spec, &cwd, &command)?,
            None => self.new_window_in_default_session(spec, &cwd, &command)?,
        };
        let mut parts = line.split('\t');
        let pane = parts.next().unwrap_or_default().to_string();
        if !pane.starts_with('%') {
            return Err(TmuxError {
                command: "new-window".into(),
                stderr: format!("unexpected output {line:?}"),
                missing: false,
            });
        }
        let session = parts.next().map(str::to_string);
        let window = parts.next().map(str::to_string);
        let socket = match parts.next().filter(|s| !s.is_empty()) {
            Some(socket) => Some(socket.to_string()),
            None => self.socket_path().ok(),
        };
        Ok(TmuxTarget { pane, session, window, socket })
    }

    fn new_window_in_default_session(
        &self,
        spec: &NewWindow<'_>,
        cwd: &str,
        command: &str,
    ) -> Result<String, TmuxError> {
        let target = format!("={DEFAULT_SESSION}:");
        match self.run_new_window(&target, spec, cwd, command) {
            Err(err) if err.no_such_session() => {}
            done => return done,
        }
        let created = self.run(&[
            "new-session",
            "-d",
            "-P",
            "-F",
            PANE_FORMAT,
            "-s",
            DEFAULT_SESSION,
            "-n",
            spec.window_name,
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            cwd,
            command,
        ]);
        match created {
            Ok(line) => Ok(line),
            // Someone else created it a moment ago: use it.
            Err(err) if err.stderr.contains("duplicate session") => {
                self.run_new_window(&target, spec, cwd, command)
            }
            Err(err) => Err(err),
        }
    }

    /// `new-window` in session `target`, printing [`PANE_FORMAT`].
    fn run_new_window(
        &self,
        target: &str,
        spec: &NewWindow<'_>,
        cwd: &str,
        command: &str,
    ) -> Result<String, TmuxError> {
        self.run(&[
            "new-window",
            "-d",
            "-P",
            "-F",
            PANE_FORMAT,
            "-t",
            target,
            "-n",
            spec.window_name,
            "-c",
            cwd,
            command,
        ])
    }

    /// A handle on the server a session's target names.
    pub(crate) fn for_target(target: &TmuxTarget) -> Tmux {
        match &target.socket {
            Some(socket) => Tmux { server: Server::Socket(PathBuf::from(socket)) },
            None => Tmux::for_caller(),
        }
    }

    /// The visible text of a pane.
    pub(crate) fn capture(&self, pane: &str) -> Result<String, TmuxError> {
        // Untrimmed: a screen's first row may start with spaces, and blank
        // first rows are rows too.
        self.run_untrimmed(&["capture-pane", "-p", "-t", pane])
    }

    /// Makes `pane` the active pane of its window, and its window the
    /// current one of its tmux session.
    pub(crate) fn focus(&self, pane: &str) -> Result<(), TmuxError> {
        self.run(&["select-window", "-t", pane])?;
        self.run(&["select-pane", "-t", pane]).map(|_| ())
    }

    /// Switches the calling client (inside tmux) to `pane`.
    pub(crate) fn switch_client(&self, pane: &str) -> Result<(), TmuxError> {
        self.run(&["switch-client", "-t", pane]).map(|_| ())
    }

    /// Whether the caller runs inside this server (so `switch-client`
    /// applies rather than `attach-session`).
    pub(crate) fn is_callers_server(&self) -> bool {
        let Some(caller) = caller_socket() else { return false };
        self.socket_path().is_ok_and(|path| std::path::Path::new(&path) == caller)
    }

    /// `tmux attach-session -t pane`, for the caller to run in its terminal.
    pub(crate) fn attach_command(&self, pane: &str) -> Command {
        let mut cmd = self.command();
        cmd.args(["attach-session", "-t", pane]);
        cmd.stdin(Stdio::inherit());
        cmd
    }

    /// The server's prefix key as tmux writes it (`C-b` unless changed).
    pub(crate) fn prefix(&self) -> Option<String> {
        let out = self.run(&["show-options", "-gv", "prefix"]).ok()?;
        Some(out.trim().to_string()).filter(|p| !p.is_empty() && p != "None")
    }

    /// Kills a pane (used to clean up after a host that failed to start).
    pub(crate) fn kill_pane(&self, pane: &str) -> Result<(), TmuxError> {
        self.run(&["kill-pane", "-t", pane]).map(|_| ())
    }
}

/// A failed tmux command.
#[derive(Debug, Clone)]
pub(crate) struct TmuxError {
    pub(crate) command: String,
    pub(crate) stderr: String,
    pub(crate) missing: bool,
}

impl TmuxError {
    /// The server is not running, or has no session of that name.
    fn no_such_session(&self) -> bool {
        ["can't find session", "no server running", "error connecting"]
            .iter()
            .any(|m| self.stderr.contains(m))
    }
}

impl From<TmuxError> for CliError {
    fn from(err: TmuxError) -> Self {
        if err.missing {
            return CliError::failure("--tmux needs tmux, which is not installed")
                .hint("install tmux (e.g. apt-get install tmux), or use --detach");
        }
        CliError::failure(format!("tmux {} failed: {}", err.command, err.stderr))
            .hint("check that the tmux server is running and reachable (REINS_TMUX_SERVER, $TMUX)")
    }
}

/// `text` as a tmux format that expands to exactly `text`: `#` is the
/// only character formats treat specially (`#{..}`, `#(..)`, `#W`), and
/// `##` stands for one `#`.
pub(crate) fn literal(text: &str) -> String {
    text.replace('#', "##")
}

fn env_non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The socket of the tmux server the caller runs in: `$TMUX` is
/// `socket,pid,session`.
fn caller_socket() -> Option<PathBuf> {
    let tmux = env_non_empty("TMUX")?;
    let socket = tmux.split(',').next()?;
    (!socket.is_empty()).then(|| PathBuf::from(socket))
}

/// Joins argv into one POSIX shell command line, single-quoting as needed.
pub(crate) fn shell_join(argv: &[String]) -> String {
    argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_awkward_arguments() {
        let argv: Vec<String> = ["/bin/reins", "__host", "it's", "a b", "", "$HOME"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_join(&argv), r#"/bin/reins __host 'it'\''s' 'a b' '' '$HOME'"#);
    }

    #[test]
    fn literal_doubles_every_hash() {
        assert_eq!(literal("x#(touch pwn)#{pane_id}##"), "x##(touch pwn)##{pane_id}####");
        assert_eq!(literal("plain"), "plain");
    }
}
