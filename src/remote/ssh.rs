//! The ssh transport: one shared OpenSSH connection per host, and the
//! remote `reins` command line built so no shell reinterprets a word.
//!
//! The system `ssh` does the work (its config, keys, agent and known
//! hosts are the user's own). Every call names a control socket in a 0700
//! directory under the runtime directory, so the first command to a host
//! opens a master connection that later commands reuse for
//! `ControlPersist`: a command then costs one round trip. `BatchMode`
//! keeps ssh from asking for a password on a terminal that is not there,
//! a connect timeout bounds a host that does not answer, and keepalives
//! end a connection that stalls (a host gone without a word) within
//! seconds, so no `--host` command waits on it for ever.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use crate::config::HostTable;
use crate::error::{CliError, code};
use crate::store::fsutil;
use crate::store::paths::StateRoot;

/// How long ssh may take to connect before it gives up.
const CONNECT_TIMEOUT_S: u32 = 10;
/// Keepalives: one every this many seconds, the connection dropped after
/// [`ALIVE_COUNT`] unanswered (about 15 s).
const ALIVE_INTERVAL_S: u32 = 5;
const ALIVE_COUNT: u32 = 3;
/// How long an idle shared connection stays open.
const PERSIST: &str = "10m";
/// ssh's own exit code for its own failures.
pub(crate) const SSH_FAILED: i32 = 255;

/// A machine `--host NAME` names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// As given: a `[hosts.NAME]` entry or an ssh destination.
    pub(crate) name: String,
    pub(crate) destination: String,
    pub(crate) ssh_options: Vec<String>,
    /// The `reins` program there, when config.toml names one.
    pub(crate) reins: Option<String>,
    /// Whether config.toml has a `[hosts.NAME]` table for it.
    pub(crate) configured: bool,
}

impl Target {
    /// `name` as config.toml's `[hosts.NAME]` defines it, else as an ssh
    /// destination.
    pub(crate) fn resolve(name: &str) -> Result<Target, CliError> {
        let hosts = crate::config::hosts()?;
        Self::check_name(name)?;
        Ok(match hosts.get(name) {
            Some(table) => Target::from_table(name, table),
            None => Target {
                name: name.to_string(),
                destination: name.to_string(),
                ssh_options: Vec::new(),
                reins: None,
                configured: false,
            },
        })
    }

    pub(crate) fn from_table(name: &str, table: &HostTable) -> Target {
        Target {
            name: name.to_string(),
            destination: table.destination.clone().unwrap_or_else(|| name.to_string()),
            ssh_options: table.ssh_options.clone(),
            reins: table.reins.clone(),
            configured: true,
        }
    }

    /// A destination that starts with `-` would be read by ssh as an option.
    fn check_name(name: &str) -> Result<(), CliError> {
        if name.is_empty() || name.starts_with('-') || name.chars().any(char::is_whitespace) {
            return Err(CliError::usage(format!(
                "--host {}: not a host name",
                crate::ids::quoted(name)
            ))
            .hint("name a [hosts.NAME] table of config.toml, or an ssh destination (user@host)"));
        }
        Ok(())
    }
}

/// What the remote command does with the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tty {
    /// No input: ssh reads nothing from our stdin (`-n`).
    None,
    /// Our stdin is passed on (a message piped to `send`).
    Stdin,
    /// A terminal there for an interactive command (`attach`): `-t`.
    Terminal,
}

/// One host, reached over a shared ssh connection.
#[derive(Debug, Clone)]
pub(crate) struct Ssh {
    pub(crate) target: Target,
    control: PathBuf,
}

impl Ssh {
    /// The connection to `target`; its control socket lives in
    /// `RUNTIME/ssh/` (created 0700: whoever can reach a master's socket
    /// can run commands as you on that host).
    pub(crate) fn new(target: Target, state: &StateRoot) -> Result<Ssh, CliError> {
        let dir = state.runtime().join("ssh");
        fsutil::create_private_dir_all(&dir).map_err(|err| {
            CliError::failure(format!("cannot create {}: {err}", dir.display()))
                .hint("set XDG_RUNTIME_DIR to a directory of your own")
        })?;
        let key = format!("{}\0{}", target.destination, target.ssh_options.join("\0"));
        let hash = crate::store::scope::hash32_bytes(key.as_bytes());
        let control = dir.join(format!("{hash:08x}"));
        Ok(Ssh { target, control })
    }

    /// `ssh` with the options every call shares, up to (not including)
    /// the destination.
    fn base(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-o").arg("BatchMode=yes");
        cmd.arg("-o").arg(format!("ConnectTimeout={CONNECT_TIMEOUT_S}"));
        cmd.arg("-o").arg("ControlMaster=auto");
        cmd.arg("-o").arg(OsString::from_vec(
            [b"ControlPath=".as_slice(), self.control.as_os_str().as_bytes()].concat(),
        ));
        cmd.arg("-o").arg(format!("ControlPersist={PERSIST}"));
        cmd.args(&self.target.ssh_options);
        // After the host's own options: ssh takes the first value it is
        // given, so a host's ServerAlive settings win over these.
        cmd.arg("-o").arg(format!("ServerAliveInterval={ALIVE_INTERVAL_S}"));
        cmd.arg("-o").arg(format!("ServerAliveCountMax={ALIVE_COUNT}"));
        cmd
    }

    /// Whether a shared connection is up (asks the master; no network).
    pub(crate) fn connected(&self) -> bool {
        if !self.control.exists() {
            return false;
        }
        let mut cmd = self.base();
        cmd.args(["-O", "check", "--", &self.target.destination]);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// Opens the shared connection unless it is up; a failure is an error
    /// that says what ssh said and what to check.
    pub(crate) fn connect(&self) -> Result<(), CliError> {
        if self.control.exists() {
            return Ok(());
        }
        let mut cmd = self.base();
        cmd.args(["-T", "-n", "--", &self.target.destination, "true"]);
        let out = spawn_output(cmd)?;
        if out.status.success() {
            return Ok(());
        }
        Err(self.unreachable(&String::from_utf8_lossy(&out.stderr)))
    }

    /// Opens the shared connection again after it dropped: a control
    /// socket its dead master left behind is removed first.
    pub(crate) fn reconnect(&self) -> Result<(), CliError> {
        if self.connected() {
            return Ok(());
        }
        let _ = fsutil::remove_if_exists(&self.control);
        self.connect()
    }

    /// The error for a host ssh could not reach.
    pub(crate) fn unreachable(&self, said: &str) -> CliError {
        let said: Vec<&str> = said
            .lines()
            .map(|l| l.trim().trim_start_matches("ssh: "))
            .filter(|l| !l.is_empty())
            .collect();
        let said = if said.is_empty() { "no reason given".to_string() } else { said.join("; ") };
        let t = &self.target;
        let how = if t.configured {
            format!("[hosts.{}] in config.toml", t.name)
        } else {
            format!(
                "{} is not a [hosts.NAME] of config.toml, so it was used as an ssh destination",
                t.name
            )
        };
        CliError::with_code(
            format!("cannot reach host {}: ssh: {said}", crate::ids::quoted(&t.name)),
            code::UNREACHABLE,
        )
        .hint(format!(
            "check that `ssh -o BatchMode=yes {} true` works without a password prompt \
             (a key in ssh-agent or ~/.ssh); {how}",
            shell_words(&t.ssh_options, &t.destination)
        ))
    }

    /// The `ssh` command that runs `reins ARGS` there.
    pub(crate) fn reins_command(&self, args: &[OsString], tty: Tty) -> Command {
        let mut cmd = self.base();
        match tty {
            Tty::None => {
                cmd.arg("-T").arg("-n");
            }
            Tty::Stdin => {
                cmd.arg("-T");
            }
            Tty::Terminal => {
                cmd.arg("-t");
            }
        }
        cmd.arg("--").arg(&self.target.destination);
        cmd.arg(remote_line(self.target.reins.as_deref(), args));
        cmd
    }

    /// Runs `reins ARGS` there with this process's stdout and stderr, and
    /// returns its exit code (an ssh failure is an error instead).
    pub(crate) fn run_reins(&self, args: &[OsString], tty: Tty) -> Result<u8, CliError> {
        self.connect()?;
        let mut cmd = self.reins_command(args, tty);
        if tty == Tty::None {
            cmd.stdin(Stdio::null());
        }
        let status = cmd.status().map_err(spawn_error)?;
        self.settle(status)
    }

    /// Runs `reins ARGS` there and collects what it printed.
    pub(crate) fn reins_output(&self, args: &[OsString]) -> Result<Output, CliError> {
        self.connect()?;
        let out = spawn_output(self.reins_command(args, Tty::None))?;
        if out.status.code() == Some(SSH_FAILED) && !self.connected() {
            return Err(self.lost(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out)
    }

    /// Runs a shell command line there (the words already quoted) and
    /// collects what it printed, feeding it `input`.
    pub(crate) fn shell_output(
        &self,
        line: &str,
        input: Option<&Path>,
    ) -> Result<Output, CliError> {
        self.connect()?;
        let mut cmd = self.base();
        cmd.args(["-T", "--", &self.target.destination, line]);
        let stdin = match input {
            Some(path) => Stdio::from(std::fs::File::open(path).map_err(|err| {
                CliError::failure(format!("cannot read {}: {err}", path.display()))
            })?),
            None => Stdio::null(),
        };
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = cmd.output().map_err(spawn_error)?;
        if out.status.code() == Some(SSH_FAILED) && !self.connected() {
            return Err(self.lost(&String::from_utf8_lossy(&out.stderr)));
        }
        Ok(out)
    }

    /// The remote command's own exit code; ssh's 255 with the connection
    /// gone is the connection's failure, not the command's.
    fn settle(&self, status: ExitStatus) -> Result<u8, CliError> {
        match status.code() {
            Some(SSH_FAILED) if !self.connected() => Err(self.lost("")),
            Some(code) => Ok(u8::try_from(code).unwrap_or(code::FAILURE)),
            None => Err(CliError::failure(format!(
                "ssh to host {} was killed by a signal",
                crate::ids::quoted(&self.target.name)
            ))),
        }
    }

    fn lost(&self, said: &str) -> CliError {
        let mut err = self.unreachable(said);
        err.message = format!(
            "lost the connection to host {} (the command there may or may not have run)",
            crate::ids::quoted(&self.target.name)
        );
        err
    }
}

fn spawn_output(mut cmd: Command) -> Result<Output, CliError> {
    // The master a first call leaves behind closes its stdio when it
    // detaches, so reading to the end does not wait for it.
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().map_err(spawn_error)
}

fn spawn_error(err: std::io::Error) -> CliError {
    if err.kind() == std::io::ErrorKind::NotFound {
        return CliError::with_code("cannot run ssh: it is not installed", code::UNREACHABLE)
            .hint("install OpenSSH's client (the `openssh-client` package)");
    }
    CliError::failure(format!("cannot run ssh: {err}"))
}

/// `word` quoted for a POSIX shell: single quotes, each `'` as `'\''`.
pub(crate) fn quote(word: &OsStr) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word.as_bytes() {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The program word: a path from `~/` stays relative to the remote home.
fn program_word(reins: Option<&str>) -> Vec<u8> {
    match reins {
        None => b"reins".to_vec(),
        Some(path) => match path.strip_prefix("~/") {
            Some(rest) => [b"\"$HOME\"/".as_slice(), &quote(OsStr::new(rest))].concat(),
            None => quote(OsStr::new(path)),
        },
    }
}

/// The prologue of every remote command line: the client's version (a
/// remote `reins` of another one refuses), and `~/.local/bin` (where
/// `reins hosts install` puts it) after the PATH a non-login shell has.
fn prologue() -> String {
    format!(
        "export {}={}; PATH=\"$PATH:$HOME/.local/bin\"; ",
        super::CLIENT_VERSION_VAR,
        super::VERSION
    )
}

/// The line the remote shell runs: `reins ARGS`, every word quoted.
pub(crate) fn remote_line(reins: Option<&str>, args: &[OsString]) -> OsString {
    let mut line = prologue().into_bytes();
    line.extend_from_slice(b"exec ");
    line.extend(program_word(reins));
    for arg in args {
        line.push(b' ');
        line.extend(quote(arg));
    }
    OsString::from_vec(line)
}

/// A shell line that runs `body` with `$R` set to the remote `reins`, or
/// exits 127 when there is none.
pub(crate) fn with_reins(reins: Option<&str>, body: &str) -> String {
    let program = String::from_utf8_lossy(&program_word(reins)).into_owned();
    format!("{}R={program}; command -v \"$R\" >/dev/null 2>&1 || exit 127; {body}", prologue())
}

/// `[-o ...] DEST` as a user would type it, for hints.
fn shell_words(options: &[String], destination: &str) -> String {
    let mut words: Vec<String> = options
        .iter()
        .map(|o| {
            if o.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:@,".contains(c)) {
                o.clone()
            } else {
                String::from_utf8_lossy(&quote(OsStr::new(o))).into_owned()
            }
        })
        .collect();
    words.push(destination.to_string());
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_quoted_for_the_remote_shell() {
        let args: Vec<OsString> = ["send", "--id", "w1", "it's $(rm -rf ~); `x` \"y\" *"]
            .iter()
            .map(Into::into)
            .collect();
        let line = remote_line(None, &args);
        let line = line.to_str().unwrap();
        assert!(
            line.ends_with("exec reins 'send' '--id' 'w1' 'it'\\''s $(rm -rf ~); `x` \"y\" *'"),
            "{line}"
        );
        // The shell reads the words back exactly.
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\n' {}", line.split_once("exec reins ").unwrap().1))
            .output()
            .unwrap();
        let words: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(words, ["send", "--id", "w1", "it's $(rm -rf ~); `x` \"y\" *"]);
    }

    #[test]
    fn a_home_relative_program_stays_relative_to_the_remote_home() {
        let line = remote_line(Some("~/bin/re ins"), &[]);
        assert!(line.to_str().unwrap().ends_with("exec \"$HOME\"/'bin/re ins'"), "{line:?}");
    }
}
