//! `reins attach`: step into a session's terminal from anywhere.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::control::lookup;
use crate::error::{CliError, CliResult, code};
use crate::ipc::AttachReply;
use crate::ipc::attach::{Frame, PROTOCOL, REPLY_HEADER};
use crate::store::paths::StateRoot;
use crate::store::registry::SessionRecord;
use crate::term::{self, RawMode};
use crate::tmux::Tmux;

/// The key that leaves the session (Ctrl-]).
const DETACH_KEY: u8 = 0x1d;

/// Modes an agent may have left on in the viewer's terminal, switched off
/// on the way out, then back to the screen you had before attaching.
const RESTORE: &[u8] = b"\x1b[0m\x1b[?25h\x1b[?1l\x1b>\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1049l";

/// Join a session's terminal from here: see its screen, type to its agent,
/// and leave it running with Ctrl-].
///
/// A session in a tmux window: inside tmux, switches to its pane; outside,
/// attaches to its tmux session with the pane selected — tmux then owns the
/// terminal, and you leave with tmux's detach key (prefix then d, `C-b d`
/// by default; `--relay` gives Ctrl-] instead). A headless session:
/// reins relays the agent's screen and your keystrokes through the host —
/// the screen you get is the current one, your terminal's size becomes the
/// agent's while you are there (the latest viewer to join or resize wins;
/// it gets its own size back when the last one leaves), and several people
/// can attach at once. `--read-only` watches without typing or resizing.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins attach --id w1                 step in (Ctrl-] leaves it running)
  reins attach --id w1 --read-only     watch without typing
  reins attach --id w1 --relay         relay even a tmux session through reins

To watch from a script instead, use `reins pane --id ID --follow`.

Exit codes: 0 detached or the session ended, 1 no such live session (or the
connection to it failed), 2 usage error (e.g. not run in a terminal).")]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// Look the id up in this repository's sessions.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Watch only: keystrokes and size changes are not sent.
    #[arg(long)]
    read_only: bool,
    /// Relay through the host even for a session in a tmux window.
    #[arg(long)]
    relay: bool,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let record = lookup::require_live(&view)?.clone();
    if let Some(target) = record.tmux.as_ref().filter(|_| !args.relay && !args.read_only) {
        return join_tmux(&record, &target.pane);
    }
    if !term::is_tty(rustix::stdio::stdin()) || !term::is_tty(rustix::stdio::stdout()) {
        return Err(CliError::usage("attach needs a terminal on stdin and stdout")
            .hint(format!("to watch from a script: `reins pane --id {} --follow`", args.id)));
    }
    relay(&record, &view.paths.socket, args.read_only)
}

/// A tmux session: switch to its pane, or attach to its tmux session.
fn join_tmux(record: &SessionRecord, pane: &str) -> CliResult {
    let target = record.tmux.as_ref().expect("checked by the caller");
    let tmux = Tmux::for_target(target);
    tmux.focus(pane)?;
    if tmux.is_callers_server() {
        tmux.switch_client(pane)?;
        return Ok(code::OK);
    }
    if !term::is_tty(rustix::stdio::stdin()) {
        return Err(CliError::usage("attaching to a tmux session needs a terminal")
            .hint(format!("to watch from a script: `reins pane --id {} --follow`", record.id)));
    }
    // tmux owns this terminal once attached: Ctrl-] is an ordinary key
    // there, and its own detach key is the way out.
    let detach = match tmux.prefix() {
        Some(prefix) => format!("{prefix} d"),
        None => "the tmux detach-client command".into(),
    };
    eprintln!(
        "reins: attaching to {} in tmux; leave with {detach} (tmux's own detach: Ctrl-] does \
         not work here)",
        record.id
    );
    let err = tmux.attach_command(pane).exec();
    Err(CliError::failure(format!("cannot run tmux attach-session: {err}")))
}

/// A headless (or foreground) session: relay its screen and our keys.
fn relay(record: &SessionRecord, socket: &std::path::Path, read_only: bool) -> CliResult {
    let runtime = crate::cli::runtime();
    let upgraded = runtime.block_on(connect(socket, read_only))?;
    let (reply, upgraded) = upgraded;
    eprintln!(
        "reins: attached to {} ({}){}; Ctrl-] detaches",
        record.id,
        record.agent,
        if reply.read_only { ", read-only" } else { "" }
    );
    let raw = RawMode::enter(rustix::stdio::stdin());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(b"\x1b[?1049h");
    let _ = stdout.flush();
    drop(stdout);
    let ended = runtime.block_on(pump(upgraded, reply.read_only));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(RESTORE);
    let _ = stdout.flush();
    drop(raw);
    match ended {
        Ok(End::Detached) => {
            eprintln!("reins: detached from {}; it is still running", record.id);
            Ok(code::OK)
        }
        Ok(End::SessionEnded) => {
            eprintln!("reins: session {} ended", record.id);
            Ok(code::OK)
        }
        Err(err) => Err(CliError::failure(format!("the attach connection failed: {err}"))),
    }
}

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// Asks the host for an attach stream.
async fn connect(
    socket: &std::path::Path,
    read_only: bool,
) -> Result<(AttachReply, Upgraded), CliError> {
    let fail =
        |what: String| CliError::failure(what).hint("is the session still running? `reins status`");
    let stream = crate::ipc::connect(socket).await.map_err(|err| fail(err.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| fail(format!("control handshake failed: {err}")))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut path = format!("/v1/attach?read_only={}", u8::from(read_only));
    if let Some(size) = term::size(rustix::stdio::stdout()) {
        path.push_str(&format!("&cols={}&rows={}", size.cols, size.rows));
    }
    let request = Request::get(path)
        .header(hyper::header::HOST, "reins")
        .header(hyper::header::CONNECTION, "upgrade")
        .header(hyper::header::UPGRADE, PROTOCOL)
        .body(Full::new(Bytes::new()))
        .expect("static request parts are valid");
    let mut response = sender
        .send_request(request)
        .await
        .map_err(|err| fail(format!("attach request failed: {err}")))?;
    if response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status().as_u16();
        let body = response.body_mut().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(fail(format!("the host refused the attach ({status}): {message}")));
    }
    let header = response.headers().get(REPLY_HEADER).map(|v| v.as_bytes().to_vec());
    let reply: AttachReply = serde_json::from_slice(&header.unwrap_or_default())
        .map_err(|err| fail(format!("the host's attach answer is unreadable: {err}")))?;
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|err| fail(format!("the attach upgrade failed: {err}")))?;
    Ok((reply, TokioIo::new(upgraded)))
}

enum End {
    Detached,
    SessionEnded,
}

/// Copies the agent's output to the terminal and the terminal's keys (and
/// size changes) to the agent until Ctrl-] or the session's end.
async fn pump(upgraded: Upgraded, read_only: bool) -> std::io::Result<End> {
    let (mut from_host, mut to_host) = tokio::io::split(upgraded);
    let (keys_tx, mut keys) = mpsc::channel::<Vec<u8>>(64);
    std::thread::Builder::new().name("attach-stdin".into()).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || keys_tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    })?;
    let mut winch = signal(SignalKind::window_change())?;
    let mut stdout = tokio::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            read = from_host.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Ok(End::SessionEnded);
                }
                stdout.write_all(&buf[..n]).await?;
                stdout.flush().await?;
            }
            Some(mut bytes) = keys.recv() => {
                let detach = bytes.iter().position(|b| *b == DETACH_KEY);
                if let Some(at) = detach {
                    bytes.truncate(at);
                }
                if !read_only && !bytes.is_empty() {
                    to_host.write_all(&Frame::Input(bytes).encode()).await?;
                }
                if detach.is_some() {
                    let _ = to_host.shutdown().await;
                    return Ok(End::Detached);
                }
            }
            _ = winch.recv() => {
                if let (false, Some(size)) = (read_only, term::size(rustix::stdio::stdout())) {
                    to_host.write_all(&Frame::Resize(size).encode()).await?;
                }
            }
        }
    }
}
