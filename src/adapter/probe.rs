//! Is an agent CLI (or tmux) installed here, and does it work: found on
//! PATH, answers `--version` (its output drained while it runs, the whole
//! process group killed at the deadline), and for agents with an
//! app-server or an ACP command, completes the same `initialize` a session
//! starts with.
//! `reins doctor`, `reins agents` and `dispatch` all ask these questions.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;

use crate::adapter::{Profile, Transport};
use crate::transport::Effect;
use crate::transport::acp::{self, Acp};
use crate::transport::codex::{CodexAppServer, Settings};
use crate::transport::stdio::{self, Output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    /// Usable.
    Ok,
    /// Not installed (not on PATH).
    Missing,
    /// Installed but does not work.
    Broken,
}

/// One thing doctor checked (`reins agents` shows the agents' checks too).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) status: Status,
    /// The program that was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
    /// What the program says its version is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<String>,
    /// Whether that version is one the profile was tested with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tested: Option<bool>,
    /// The transport `reins run NAME` uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transport: Option<Transport>,
    /// What was found, in words.
    pub(crate) detail: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
    /// Named on the command line (or part of reins itself).
    pub(crate) required: bool,
    /// For a model endpoint: what its model list said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<crate::endpoint::check::Reach>,
}

impl Check {
    pub(crate) fn new(name: &str, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_string(),
            status,
            path: None,
            version: None,
            tested: None,
            transport: None,
            detail: detail.into(),
            hint: None,
            required: false,
            endpoint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: Option<String>) -> Check {
        self.hint = hint;
        self
    }
}

/// tmux: found, and its version.
pub(crate) fn tmux(timeout: Duration) -> Check {
    let Some(path) = on_path("tmux") else {
        return Check::new("tmux", Status::Missing, "not on PATH (needed for --tmux only)")
            .hint(Some("apt-get install tmux (or your system's package)".into()));
    };
    let mut check = match version_of(&path, "-V", timeout) {
        Ok(text) => {
            let mut c = Check::new("tmux", Status::Ok, text.clone());
            c.version = version_number(&text);
            c
        }
        Err(err) => Check::new("tmux", Status::Broken, err),
    };
    check.path = Some(path.display().to_string());
    check
}

/// One agent profile's program: found, its version, and the handshake of
/// the protocol `reins run NAME` speaks to it (app-server, ACP).
pub(crate) fn agent(profile: &Profile, timeout: Duration) -> Check {
    agent_checked(profile, timeout, false)
}

/// [`agent`], and the ACP handshake of an agent that speaks ACP only when
/// asked to (`--transport acp`): what `reins doctor` reports.
pub(crate) fn agent_and_its_protocols(profile: &Profile, timeout: Duration) -> Check {
    agent_checked(profile, timeout, true)
}

fn agent_checked(profile: &Profile, timeout: Duration, every_protocol: bool) -> Check {
    let name = profile.name.as_str();
    let program = &profile.launch.command[0];
    let mut check = if program == "{reins}" {
        let mut c = Check::new(name, Status::Ok, "built into reins");
        c.version = Some(env!("CARGO_PKG_VERSION").to_string());
        c
    } else {
        probe_program(profile, program, timeout, every_protocol)
    };
    check.transport = Some(profile.transport);
    check
}

fn probe_program(
    profile: &Profile,
    program: &str,
    timeout: Duration,
    every_protocol: bool,
) -> Check {
    let name = profile.name.as_str();
    let Some(path) = on_path(program) else {
        return Check::new(name, Status::Missing, format!("{program} is not on PATH"))
            .hint(profile.install.clone());
    };
    let mut check = match version_of(&path, "--version", timeout) {
        Err(err) => Check::new(name, Status::Broken, err).hint(profile.install.clone()),
        Ok(text) => {
            let version = version_number(&text);
            let tested = version.as_ref().map(|v| {
                profile.tested_versions.iter().any(|t| t.split_whitespace().any(|w| w == v))
            });
            let mut detail = text;
            if tested == Some(false) {
                detail.push_str(&format!(
                    " (untested; profile tested with {})",
                    profile.tested_versions.join(", ")
                ));
            }
            let mut c = Check::new(name, Status::Ok, detail);
            c.version = version;
            c.tested = tested;
            c
        }
    };
    check.path = Some(path.display().to_string());
    if check.status == Status::Ok
        && profile.transport == Transport::CodexAppServer
        && let Some(spec) = &profile.app_server
    {
        let mut argv = spec.command.clone();
        argv[0] = on_path(&argv[0]).map_or(argv[0].clone(), |p| p.display().to_string());
        match app_server_handshake(&argv, timeout) {
            Ok(agent) => check.detail.push_str(&format!("; app-server handshake ok ({agent})")),
            Err(err) => {
                check.status = Status::Broken;
                check.detail = format!("{}: app-server handshake failed: {err}", argv.join(" "));
                check.hint = Some(format!("`reins run {name} --pty` uses its terminal UI instead"));
            }
        }
    }
    if check.status == Status::Ok
        && let Some(spec) = &profile.acp
        && (every_protocol || profile.transport == Transport::Acp)
    {
        let mut argv = spec.command.clone();
        argv[0] = on_path(&argv[0]).map_or(argv[0].clone(), |p| p.display().to_string());
        let shown = argv.join(" ");
        match acp_handshake(&argv, timeout) {
            Ok(agent) => check.detail.push_str(&format!("; acp handshake ok ({agent})")),
            // ACP is how `reins run NAME` talks to it: the agent is broken.
            Err(err) if profile.transport == Transport::Acp => {
                check.status = Status::Broken;
                check.detail = format!("{shown}: acp handshake failed: {err}");
                check.hint = Some(if profile.rules.is_empty() {
                    format!("run `{shown}` by hand to see why it does not answer")
                } else {
                    format!("`reins run {name} --pty` uses its terminal UI instead")
                });
            }
            // Only `--transport acp` needs it: said, not failed.
            Err(err) => check.detail.push_str(&format!(
                "; acp handshake failed ({shown}: {err}): `--transport acp` will not work"
            )),
        }
    }
    check
}

/// How much of a `--version` answer is kept (the rest is read and dropped).
const VERSION_OUTPUT_CAP: usize = 64 * 1024;

/// `PROGRAM FLAG`'s first line of output, within `timeout`. Both pipes are
/// drained while it runs (a program that writes more than a pipe holds
/// before it exits would otherwise wait for us forever), keeping the first
/// [`VERSION_OUTPUT_CAP`] bytes of each. It runs in a process group of its
/// own, killed as a whole at the deadline.
fn version_of(path: &std::path::Path, flag: &str, timeout: Duration) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    let shown = format!("{} {flag}", path.display());
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(path)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot run {shown}: {err}"))?;
    let (tx, rx) = mpsc::channel::<Drained>();
    let stdout = child.stdout.take().map(|pipe| drain(pipe, Pipe::Stdout, tx.clone()));
    let stderr = child.stderr.take().map(|pipe| drain(pipe, Pipe::Stderr, tx.clone()));
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(Drained::Exited(child.wait()));
    });
    let (mut out, mut err, mut status) = (None, None, None);
    let pipes = usize::from(stdout.is_some()) + usize::from(stderr.is_some());
    let mut closed = 0;
    while status.is_none() || closed < pipes {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Drained::Pipe(Pipe::Stdout, bytes)) => (out, closed) = (Some(bytes), closed + 1),
            Ok(Drained::Pipe(Pipe::Stderr, bytes)) => (err, closed) = (Some(bytes), closed + 1),
            Ok(Drained::Exited(Ok(exit))) => status = Some(exit),
            Ok(Drained::Exited(Err(e))) => return Err(format!("cannot wait for {shown}: {e}")),
            Err(_) => {
                // Its whole group: whatever holds the pipes open goes too,
                // so the threads above end.
                if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                return Err(match status {
                    None => format!("{shown} did not answer within {}s", timeout.as_secs_f64()),
                    Some(_) => format!(
                        "{shown} exited but something it started kept its output open past {}s",
                        timeout.as_secs_f64()
                    ),
                });
            }
        }
    }
    let status = status.expect("the loop ends with a status");
    let text = |bytes: Option<Vec<u8>>| {
        String::from_utf8_lossy(&bytes.unwrap_or_default())
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(String::from)
    };
    match (status.success(), text(out).or_else(|| text(err))) {
        (true, Some(line)) => Ok(line),
        (true, None) => Err(format!("{shown} printed nothing")),
        (false, line) => Err(format!(
            "{shown} failed ({status}){}",
            line.map(|l| format!(": {l}")).unwrap_or_default()
        )),
    }
}

#[derive(Debug, Clone, Copy)]
enum Pipe {
    Stdout,
    Stderr,
}

/// What the threads of [`version_of`] report.
enum Drained {
    /// A pipe reached its end: the first bytes it carried.
    Pipe(Pipe, Vec<u8>),
    Exited(std::io::Result<std::process::ExitStatus>),
}

/// Reads `pipe` to its end on a thread of its own, keeping the first
/// [`VERSION_OUTPUT_CAP`] bytes.
fn drain(
    mut pipe: impl std::io::Read + Send + 'static,
    which: Pipe,
    tx: std::sync::mpsc::Sender<Drained>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = VERSION_OUTPUT_CAP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(Drained::Pipe(which, kept));
    })
}

/// `0.169.0` out of `codex-cli 0.169.0`, `2.1.197 (Claude Code)`, `tmux 3.4`.
pub(crate) fn version_number(text: &str) -> Option<String> {
    static VERSION: OnceLock<Regex> = OnceLock::new();
    let re = VERSION.get_or_init(|| Regex::new(r"\d+\.\d+[0-9A-Za-z.+-]*").expect("regex"));
    re.find(text).map(|m| m.as_str().to_string())
}

/// The executable `program` (a path, or a name looked up on PATH).
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &PathBuf| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var).map(|dir| dir.join(program)).find(executable)
}

/// Starts the app-server and runs the `initialize` step of the handshake
/// exactly as a session does; returns the server's user agent.
fn app_server_handshake(argv: &[String], timeout: Duration) -> Result<String, String> {
    handshake(
        argv,
        timeout,
        |cwd, started| {
            let settings = Settings {
                client_version: env!("CARGO_PKG_VERSION").to_string(),
                cwd: cwd.display().to_string(),
                approval_policy: None,
                sandbox: None,
                model: None,
                request_timeout: timeout,
            };
            CodexAppServer::start(settings, started)
        },
        |client, line| {
            let effects = client.on_line(line, Instant::now());
            match &client.user_agent {
                Some(agent) if agent.is_empty() => Some(Ok("no user agent".into())),
                Some(agent) => Some(Ok(agent.clone())),
                None => disconnected(&effects).map(Err),
            }
        },
    )
}

/// Starts the agent's ACP command and runs `initialize` exactly as a
/// session does (and no further: `session/new` would leave a session
/// behind in the agent's store); returns the agent's name and version.
fn acp_handshake(argv: &[String], timeout: Duration) -> Result<String, String> {
    handshake(
        argv,
        timeout,
        |cwd, started| {
            let settings = acp::Settings {
                client_version: env!("CARGO_PKG_VERSION").to_string(),
                cwd: cwd.display().to_string(),
                request_timeout: timeout,
                credentials: Vec::new(),
            };
            Acp::start(settings, started)
        },
        |client, line| {
            let effects = client.on_line(line, Instant::now());
            match &client.agent {
                Some(agent) => Some(Ok(agent.clone())),
                None => disconnected(&effects).map(Err),
            }
        },
    )
}

/// What a `Disconnected` effect says, if there is one.
fn disconnected(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::Disconnected { message, .. } => Some(message.clone()),
        _ => None,
    })
}

/// Starts `argv` on pipes, sends what `start` makes the client send, and
/// feeds the agent's lines to `answered` until it says how the first
/// request went, within `timeout`; the agent's whole tree is killed then.
fn handshake<C>(
    argv: &[String],
    timeout: Duration,
    start: impl FnOnce(&std::path::Path, Instant) -> (C, Vec<Effect>),
    answered: impl Fn(&mut C, &str) -> Option<Result<String, String>>,
) -> Result<String, String> {
    let cwd = std::env::current_dir().map_err(|err| format!("no working directory: {err}"))?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    crate::control::runtime().block_on(async {
        let spec = stdio::Spawn { argv, cwd: &cwd, env: &env };
        let (mut child, lines, mut output) =
            stdio::spawn(&spec).map_err(|err| format!("cannot start it: {err}"))?;
        let started = Instant::now();
        let (mut client, effects) = start(&cwd, started);
        for effect in effects {
            if let Effect::Send(line) = effect {
                let _ = lines.send(line);
            }
        }
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let mut stderr: Vec<String> = Vec::new();
        let said = |stderr: &[String]| match stderr.last() {
            Some(line) => format!(" (its last words: {line})"),
            None => String::new(),
        };
        let result = loop {
            match tokio::time::timeout_at(deadline, output.recv()).await {
                Err(_) => {
                    break Err(format!(
                        "no answer to initialize within {}s{}",
                        timeout.as_secs_f64(),
                        said(&stderr)
                    ));
                }
                Ok(None | Some(Output::Closed { .. })) => {
                    // Its dying words may still be on the way.
                    let grace = tokio::time::Instant::now() + Duration::from_millis(200);
                    while let Ok(Some(Output::Stderr(line))) =
                        tokio::time::timeout_at(grace, output.recv()).await
                    {
                        stderr.push(line);
                    }
                    break Err(format!("it exited before answering initialize{}", said(&stderr)));
                }
                Ok(Some(Output::Stderr(line))) => stderr.push(line),
                Ok(Some(Output::Garbled { error })) => break Err(format!("it wrote {error}")),
                Ok(Some(Output::Line(line))) => {
                    if let Some(result) = answered(&mut client, &line) {
                        break result;
                    }
                }
            }
        };
        if let Some(pid) = child.id() {
            crate::procs::signal_tree(pid, rustix::process::Signal::KILL);
        }
        let _ = child.wait().await;
        result
    })
}
