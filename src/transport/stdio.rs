//! The pipes of an agent that speaks a line protocol on stdin/stdout
//! (codex app-server, claude stream-json).
//!
//! Three small tasks own the pipes: one writes lines to stdin in order, one
//! reads stdout line by line, one reads stderr. They only move bytes; the
//! session decides what the lines mean. A line longer than the limit is
//! reported as garbled rather than buffered without end.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Longest protocol line accepted (a whole turn's items can be large).
const MAX_LINE: usize = 64 << 20;

/// Something that came out of the agent.
#[derive(Debug)]
pub(crate) enum Output {
    /// One line of stdout, without its newline.
    Line(String),
    /// A stdout line that was not UTF-8 or too long.
    Garbled { error: String },
    /// One line of stderr.
    Stderr(String),
    /// stdout ended (the agent closed it or exited); `error` if reading failed.
    Closed { error: Option<String> },
}

/// The write side: lines for the agent's stdin.
#[derive(Debug, Clone)]
pub(crate) struct Lines {
    tx: mpsc::UnboundedSender<String>,
}

impl Lines {
    /// Queues one line (a newline is added). False if stdin is closed.
    pub(crate) fn send(&self, line: String) -> bool {
        self.tx.send(line).is_ok()
    }
}

/// What to run.
pub(crate) struct Spawn<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) cwd: &'a std::path::Path,
    pub(crate) env: &'a [(String, String)],
}

/// Starts the agent with piped stdio in its own session and process group,
/// and the tasks that own the pipes.
pub(crate) fn spawn(
    spec: &Spawn<'_>,
) -> std::io::Result<(Child, Lines, mpsc::UnboundedReceiver<Output>)> {
    let (program, args) = spec.argv.split_first().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty agent command")
    })?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::host::child::prepare(&mut cmd, crate::host::child::Stdio::Pipes);
    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let lines = write_lines(stdin);

    let tx = out_tx.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await;
            let event = match read {
                Ok(0) => Output::Closed { error: None },
                Ok(_) if buf.len() > MAX_LINE => {
                    // Skip the rest of an overlong line.
                    let mut rest = Vec::new();
                    let _ = reader.read_until(b'\n', &mut rest).await;
                    Output::Garbled { error: format!("a line longer than {MAX_LINE} bytes") }
                }
                Ok(_) => {
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    match String::from_utf8(std::mem::take(&mut buf)) {
                        Ok(line) => Output::Line(line),
                        Err(err) => {
                            Output::Garbled { error: format!("a line that is not UTF-8: {err}") }
                        }
                    }
                }
                Err(err) => Output::Closed { error: Some(err.to_string()) },
            };
            let closed = matches!(event, Output::Closed { .. });
            if tx.send(event).is_err() || closed {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if out_tx.send(Output::Stderr(line)).is_err() {
                break;
            }
        }
    });
    Ok((child, lines, out_rx))
}

fn write_lines(mut stdin: ChildStdin) -> Lines {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(mut line) = rx.recv().await {
            line.push('\n');
            if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
        // All senders gone (the session is closing stdin on purpose) or
        // the agent stopped reading: dropping stdin closes the pipe.
    });
    Lines { tx }
}

use tokio::io::AsyncReadExt as _;
