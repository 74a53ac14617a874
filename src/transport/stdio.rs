//! The pipes of an agent that speaks a line protocol on stdin/stdout
//! (codex app-server, claude stream-json).
//!
//! Three small tasks own the pipes: one writes lines to stdin in order, one
//! reads stdout line by line, one reads stderr. They only move bytes; the
//! session decides what the lines mean.
//!
//! The agent is untrusted, so nothing it writes can stop the draining or
//! grow the host without bound: lines are read as bytes (a stderr line that
//! is not UTF-8 is decoded lossily, a stdout one is reported as garbled),
//! a line longer than its cap is cut there and the rest skipped chunk by
//! chunk without being kept, and every channel between the tasks and the
//! session is bounded. A reader that is ahead of the session by
//! [`READ_AHEAD`] bytes waits, so a flooding agent is slowed down by its
//! own full pipe instead of growing the host.

use std::process::Stdio;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Longest stdout line passed on. One protocol message is one line, and
/// the biggest ones carry a whole command's output (codex's
/// `item/completed` with `aggregatedOutput`, claude's `tool_result`): a
/// few MiB at most in practice (4.6 MB seen in the wild), more once JSON
/// escapes it. 16 MiB leaves room for that, and is what one bad line can
/// cost the host.
pub(crate) const MAX_LINE: usize = 16 << 20;

/// Longest stderr line kept: stderr is the agent's log, only written to
/// `host.log`; a line longer than this is cut and marked.
pub(crate) const MAX_STDERR_LINE: usize = 64 << 10;

/// Bytes of lines read but not yet taken by the session. At least
/// [`MAX_LINE`], so that the longest line can pass.
const READ_AHEAD: usize = MAX_LINE;

/// Outputs waiting for the session, whatever their size.
const QUEUED_OUTPUTS: usize = 1024;

/// Lines waiting to be written to the agent's stdin. Only one turn request
/// is in flight at a time, so a full queue means the agent stopped reading.
const STDIN_BACKLOG: usize = 256;

/// Size of the read buffer of each pipe: the unit in which the rest of an
/// overlong line is skipped.
const CHUNK: usize = 64 << 10;

/// Something that came out of the agent.
#[derive(Debug)]
pub(crate) enum Output {
    /// One line of stdout, without its newline.
    Line(String),
    /// A stdout line that was not UTF-8 or too long.
    Garbled { error: String },
    /// One line of stderr (decoded lossily, cut at [`MAX_STDERR_LINE`]).
    Stderr(String),
    /// stdout ended (the agent closed it or exited); `error` if reading failed.
    Closed { error: Option<String> },
}

/// The read side: what the agent wrote, in order.
#[derive(Debug)]
pub(crate) struct Outputs {
    rx: mpsc::Receiver<(Output, OwnedSemaphorePermit)>,
}

impl Outputs {
    /// The next output; `None` once both stdout and stderr have ended.
    pub(crate) async fn recv(&mut self) -> Option<Output> {
        // Dropping the permit lets the readers read ahead again.
        self.rx.recv().await.map(|(output, _read_ahead)| output)
    }
}

/// Why a line was not queued for the agent's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NotSent {
    #[error("the agent's stdin is closed")]
    Closed,
    #[error("the agent is not reading its stdin ({STDIN_BACKLOG} lines wait)")]
    Backlogged,
}

/// The write side: lines for the agent's stdin.
#[derive(Debug, Clone)]
pub(crate) struct Lines {
    tx: mpsc::Sender<String>,
}

impl Lines {
    /// Queues one line (a newline is added).
    pub(crate) fn send(&self, line: String) -> Result<(), NotSent> {
        self.tx.try_send(line).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => NotSent::Backlogged,
            mpsc::error::TrySendError::Closed(_) => NotSent::Closed,
        })
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
pub(crate) fn spawn(spec: &Spawn<'_>) -> std::io::Result<(Child, Lines, Outputs)> {
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
    Ok((child, write_lines(stdin), read_outputs(stdout, stderr)))
}

/// Starts the two readers; what they read comes out of the returned
/// [`Outputs`] in order.
fn read_outputs(
    stdout: impl AsyncRead + Unpin + Send + 'static,
    stderr: impl AsyncRead + Unpin + Send + 'static,
) -> Outputs {
    let (tx, rx) = mpsc::channel(QUEUED_OUTPUTS);
    let budget = Arc::new(Semaphore::new(READ_AHEAD));
    let queue = Queue { tx: tx.clone(), budget: budget.clone() };
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(CHUNK, stdout);
        let mut buf = Vec::new();
        loop {
            let event = match read_line(&mut reader, &mut buf, MAX_LINE).await {
                Ok(Read::End) => Output::Closed { error: None },
                Ok(Read::TooLong { skipped }) => {
                    // Do not keep a huge buffer for the lines to come.
                    buf = Vec::new();
                    Output::Garbled {
                        error: format!(
                            "a line longer than {} MiB ({} bytes of it skipped)",
                            MAX_LINE >> 20,
                            skipped
                        ),
                    }
                }
                Ok(Read::Line) => match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(line) => Output::Line(line),
                    Err(err) => {
                        let shown: String =
                            String::from_utf8_lossy(err.as_bytes()).chars().take(200).collect();
                        Output::Garbled {
                            error: format!(
                                "a line that is not UTF-8 ({}): {shown}",
                                err.utf8_error()
                            ),
                        }
                    }
                },
                Err(err) => Output::Closed { error: Some(err.to_string()) },
            };
            let closed = matches!(event, Output::Closed { .. });
            if !queue.put(event).await || closed {
                break;
            }
        }
    });
    let queue = Queue { tx, budget };
    tokio::spawn(async move {
        let mut reader = BufReader::with_capacity(CHUNK, stderr);
        let mut buf = Vec::new();
        loop {
            let line = match read_line(&mut reader, &mut buf, MAX_STDERR_LINE).await {
                Ok(Read::End) | Err(_) => break,
                Ok(Read::Line) => String::from_utf8_lossy(&buf).into_owned(),
                Ok(Read::TooLong { skipped }) => {
                    format!("{} … ({skipped} more bytes cut)", String::from_utf8_lossy(&buf))
                }
            };
            if !queue.put(Output::Stderr(line)).await {
                break;
            }
        }
    });
    Outputs { rx }
}

/// A reader's end of the output channel.
struct Queue {
    tx: mpsc::Sender<(Output, OwnedSemaphorePermit)>,
    budget: Arc<Semaphore>,
}

impl Queue {
    /// Waits until the session is less than [`READ_AHEAD`] behind, then
    /// queues `output`. False if the session is gone.
    async fn put(&self, output: Output) -> bool {
        let size = match &output {
            Output::Line(s) | Output::Stderr(s) | Output::Garbled { error: s } => s.len(),
            Output::Closed { .. } => 0,
        };
        let size = u32::try_from(size.min(READ_AHEAD)).expect("READ_AHEAD fits in u32");
        let Ok(permit) = self.budget.clone().acquire_many_owned(size).await else {
            return false;
        };
        self.tx.send((output, permit)).await.is_ok()
    }
}

/// How [`read_line`] ended.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// A line is in the buffer (the last one may have had no newline).
    Line,
    /// The line was longer than the cap: the buffer holds its start and
    /// `skipped` more bytes were read past.
    TooLong { skipped: u64 },
    /// Nothing more to read.
    End,
}

/// Reads one line into `buf` without its line end (`\n`, and `\r` before
/// it), keeping at most `max` bytes; the rest of a longer line is consumed
/// a buffer at a time and dropped. `buf` never grows past `max`.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Read> {
    buf.clear();
    let mut any = false;
    let mut skipped: u64 = 0;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, used, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = max - buf.len();
        let kept = part.len().min(room);
        if kept > 0 {
            // Grow by doubling, but never past `max`.
            let want = buf.len() + kept;
            if want > buf.capacity() {
                let cap = (buf.capacity() * 2).clamp(want, max);
                buf.reserve_exact(cap - buf.len());
            }
            buf.extend_from_slice(&part[..kept]);
        }
        skipped += (part.len() - kept) as u64;
        reader.consume(used);
        if end {
            break;
        }
    }
    if !any {
        return Ok(Read::End);
    }
    if skipped > 0 {
        return Ok(Read::TooLong { skipped });
    }
    while buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Read::Line)
}

fn write_lines(mut stdin: ChildStdin) -> Lines {
    let (tx, mut rx) = mpsc::channel::<String>(STDIN_BACKLOG);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every line of `input` with `max`, as `(result, line)` pairs.
    async fn lines(input: &[u8], max: usize) -> Vec<(Read, Vec<u8>)> {
        let mut reader = BufReader::with_capacity(16, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            let read = read_line(&mut reader, &mut buf, max).await.unwrap();
            if read == Read::End {
                return out;
            }
            assert!(buf.len() <= max && buf.capacity() <= max.max(16), "{}", buf.capacity());
            out.push((read, buf.clone()));
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_overlong_line_is_cut_and_the_next_one_read_whole() {
        let mut input = vec![b'x'; 1000];
        input.extend_from_slice(b"\r\nnext\r\n\xff\xfe\nlast without end");
        let got = lines(&input, 100).await;
        // Skipped: the 900 other bytes and the `\r`.
        assert_eq!(got[0], (Read::TooLong { skipped: 901 }, vec![b'x'; 100]));
        assert_eq!(got[1], (Read::Line, b"next".to_vec()));
        assert_eq!(got[2], (Read::Line, b"\xff\xfe".to_vec()));
        assert_eq!(got[3], (Read::Line, b"last without end".to_vec()));
        assert_eq!(got.len(), 4);
        // A line of exactly the cap is whole.
        let exact = lines(&[b'y'; 100], 100).await;
        assert_eq!(exact, [(Read::Line, vec![b'y'; 100])]);
        assert_eq!(lines(b"\n\n", 10).await.len(), 2, "empty lines are lines");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stderr_line_that_is_not_utf8_does_not_stop_the_reading() {
        let stderr: &[u8] = b"bad \xff byte\nstill read\n";
        let stdout: &[u8] = b"{\"a\":1}\n\xc3\x28\n{\"b\":2}\n";
        let mut outputs = read_outputs(stdout, stderr);
        let mut seen = Vec::new();
        while let Some(output) = outputs.recv().await {
            seen.push(format!("{output:?}"));
        }
        let stderr: Vec<&String> = seen.iter().filter(|s| s.starts_with("Stderr")).collect();
        assert_eq!(stderr, ["Stderr(\"bad \u{fffd} byte\")", "Stderr(\"still read\")"]);
        let stdout: Vec<&String> = seen.iter().filter(|s| !s.starts_with("Stderr")).collect();
        assert_eq!(stdout.len(), 4, "{stdout:?}");
        assert!(stdout[1].starts_with("Garbled") && stdout[1].contains("not UTF-8"), "{stdout:?}");
        assert_eq!(stdout[2], "Line(\"{\\\"b\\\":2}\")");
        assert!(stdout[3].starts_with("Closed"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lines_for_an_agent_that_never_reads_stop_at_the_backlog() {
        let argv = ["sleep".to_string(), "60".to_string()];
        let env = [("PATH".to_string(), std::env::var("PATH").unwrap_or_default())];
        let spec = Spawn { argv: &argv, cwd: std::path::Path::new("/"), env: &env };
        let (mut child, lines, _outputs) = spawn(&spec).unwrap();
        let line = "x".repeat(1023);
        let mut sent = 0;
        let refused = loop {
            match lines.send(line.clone()) {
                Ok(()) => sent += 1,
                Err(err) => break err,
            }
            // Let the writer fill the pipe.
            tokio::task::yield_now().await;
            assert!(sent < 10_000, "lines queue without end");
        };
        assert_eq!(refused, NotSent::Backlogged);
        // The pipe (64 KiB: 64 lines), the one being written, the backlog.
        assert!(sent <= 64 + 1 + STDIN_BACKLOG + 8, "{sent} lines accepted");
        child.kill().await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn readers_wait_for_a_slow_session_instead_of_queueing_without_end() {
        // Four lines of half the read-ahead each: the reader stops after
        // two until the session takes one.
        let line = vec![b'z'; READ_AHEAD / 2];
        let mut input = Vec::new();
        for _ in 0..4 {
            input.extend_from_slice(&line[..line.len() - 1]);
            input.push(b'\n');
        }
        let mut outputs = read_outputs(std::io::Cursor::new(input), tokio::io::empty());
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let queued = outputs.rx.len();
        assert_eq!(queued, 2, "lines queued ahead of the session");
        let mut n = 0;
        while let Some(output) = outputs.recv().await {
            if matches!(output, Output::Line(_)) {
                n += 1;
            }
        }
        assert_eq!(n, 4);
    }
}
