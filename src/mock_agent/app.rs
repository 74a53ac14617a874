//! Runs the mock agent on the real terminal: raw mode, the input thread,
//! signals, timers, and writing frames.
//!
//! One `select!` loop owns the [`Agent`], the input [`Decoder`] and the
//! [`Painter`]; everything else (standard input on its own thread, signals)
//! reaches it as messages. It sleeps only until the agent's next deadline,
//! and not at all when idle, so an idle mock agent uses no CPU.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::agent::{Agent, Config, Effect};
use super::frame::{Draw, Painter};
use super::input::{Decoder, Key};
use super::markers::DEFAULT_CRASH_CODE;
use super::render;
use crate::error::CliResult;
use crate::term;

/// How long a lone ESC waits for the rest of an escape sequence before it
/// counts as the Esc key. Terminals send a sequence in one write, so this
/// only matters when a read splits one.
const ESC_WAIT: Duration = Duration::from_millis(50);
/// Size assumed when standard output is not a terminal.
const DEFAULT_SIZE: (usize, usize) = (80, 24);
/// Exit codes for the signals that end the agent: 128 + signal number.
const EXIT_SIGHUP: u8 = 129;
const EXIT_SIGTERM: u8 = 143;

/// How `reins mock-agent` was invoked.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) work: Duration,
    pub(crate) boot_delay: Duration,
    pub(crate) ignore_exit: bool,
    /// Ignore SIGTERM and SIGHUP (and a terminal that went away), so only
    /// SIGKILL ends the agent.
    pub(crate) ignore_term: bool,
    /// Crash with code 3 this long after starting.
    pub(crate) crash_after: Option<Duration>,
    /// The first message, submitted once booted.
    pub(crate) prompt: Option<String>,
    /// Enter presses to turn into newlines instead of submitting.
    pub(crate) swallow_enter: u32,
    /// The model name shown in the banner.
    pub(crate) model: String,
    /// What every turn answers instead of `MOCK_OK (you said: …)`.
    pub(crate) reply: Option<String>,
    /// Ask for approval on every turn.
    pub(crate) ask_approval: bool,
    /// How printed lines reach the screen.
    pub(crate) draw: Draw,
}

/// Runs the mock agent until it exits; returns its exit code.
pub(crate) async fn run(options: Options) -> CliResult<u8> {
    let stdin = rustix::stdio::stdin();
    let stdin_is_tty = term::is_tty(stdin);
    // Restored on every return path, and when unwinding from a panic.
    let raw = if stdin_is_tty { term::RawMode::enter(stdin) } else { None };
    let mut app = App::new(options, stdin_is_tty, raw.is_some())?;
    let code = app.run().await;
    drop(raw);
    code
}

struct App {
    options: Options,
    agent: Agent,
    painter: Painter,
    decoder: Decoder,
    /// A terminal's input ending means a hang-up, not "no more messages".
    stdin_is_tty: bool,
    /// Line end for messages on stderr: raw mode turns off `\n` to `\r\n`.
    newline: &'static str,
    /// Writing to the terminal failed (it went away); with `--ignore-term`
    /// the agent keeps running without output.
    output_gone: bool,
}

impl App {
    fn new(options: Options, stdin_is_tty: bool, raw: bool) -> CliResult<App> {
        let cwd = std::env::current_dir().map(|dir| dir.display().to_string())?;
        let config = Config {
            work: options.work,
            boot_delay: options.boot_delay,
            ignore_exit: options.ignore_exit,
            cwd,
            prompt: options.prompt.clone(),
            swallow_enter: options.swallow_enter,
            model: options.model.clone(),
            reply: options.reply.clone(),
            ask_approval: options.ask_approval,
        };
        let (cols, rows) = terminal_size();
        Ok(App {
            agent: Agent::new(config, Instant::now()),
            painter: Painter::new(cols, rows, options.draw),
            decoder: Decoder::default(),
            stdin_is_tty,
            newline: if raw { "\r\n" } else { "\n" },
            output_gone: false,
            options,
        })
    }

    async fn run(&mut self) -> CliResult<u8> {
        let started = Instant::now();
        let crash_at = self.options.crash_after.map(|after| started + after);
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sighup = signal(SignalKind::hangup())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sigwinch = signal(SignalKind::window_change())?;
        let mut input = spawn_reader();
        let mut input_open = true;
        let mut esc_deadline: Option<Instant> = None;

        if let Some(code) = self.draw(&[]) {
            return Ok(code);
        }
        loop {
            let now = Instant::now();
            let deadline =
                [self.agent.next_deadline(now), esc_deadline, crash_at].into_iter().flatten().min();
            let mut effects = Vec::new();
            tokio::select! {
                _ = sigterm.recv() => {
                    if !self.options.ignore_term {
                        return Ok(self.exit(EXIT_SIGTERM, "terminated by SIGTERM"));
                    }
                }
                _ = sighup.recv() => {
                    if !self.options.ignore_term {
                        return Ok(self.exit(EXIT_SIGHUP, "terminated by SIGHUP"));
                    }
                }
                // Only reaches us when stdin is not a raw terminal (in raw
                // mode Ctrl-C is a byte): treat it as the key.
                _ = sigint.recv() => effects = self.agent.key(Key::CtrlC, now),
                _ = sigwinch.recv() => {
                    let (cols, rows) = terminal_size();
                    self.painter.resize(cols, rows);
                }
                chunk = input.recv(), if input_open => match chunk {
                    Some(bytes) => {
                        for key in self.decoder.feed(&bytes) {
                            effects.extend(self.agent.key(key, Instant::now()));
                        }
                        esc_deadline = self.decoder.is_waiting().then(|| now + ESC_WAIT);
                    }
                    None => {
                        input_open = false;
                        if !self.stdin_is_tty {
                            effects = self.agent.input_closed();
                        }
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let now = Instant::now();
                    if crash_at.is_some_and(|at| now >= at) {
                        return Ok(self.crash(DEFAULT_CRASH_CODE));
                    }
                    if esc_deadline.is_some_and(|at| now >= at) {
                        esc_deadline = None;
                        for key in self.decoder.timeout() {
                            effects.extend(self.agent.key(key, now));
                        }
                    }
                    effects.extend(self.agent.tick(now));
                }
            }
            if let Some(code) = self.apply(effects) {
                return Ok(code);
            }
        }
    }

    /// Carries out effects in order, then draws the new frame. Returns the
    /// exit code when the agent is done.
    fn apply(&mut self, effects: Vec<Effect>) -> Option<u8> {
        let mut printed = Vec::new();
        for effect in effects {
            match effect {
                Effect::Print(line) => printed.push(line),
                Effect::Spawn => printed.push(spawn_sleeper()),
                Effect::Exit { code, message } => {
                    printed.push(message);
                    let bytes = self.painter.finish(&printed);
                    self.write(&bytes);
                    return Some(code);
                }
                Effect::Crash { code } => {
                    // The echo of the message that crashed it is shown first.
                    if let Some(code) = self.draw(&printed) {
                        return Some(code);
                    }
                    return Some(self.crash(code));
                }
            }
        }
        self.draw(&printed)
    }

    /// Draws a frame. Returns an exit code if the terminal went away.
    fn draw(&mut self, printed: &[String]) -> Option<u8> {
        let live = render::live_region(&self.agent.view(Instant::now()), self.painter.cols());
        let bytes = self.painter.frame(printed, &live, self.agent.title());
        if self.write(&bytes) || self.options.ignore_term { None } else { Some(EXIT_SIGHUP) }
    }

    /// Cleans up the screen, prints `message` and returns `code`.
    fn exit(&mut self, code: u8, message: &str) -> u8 {
        let bytes = self.painter.finish(&[message.to_owned()]);
        self.write(&bytes);
        code
    }

    /// Leaves the screen as it is (a crash does not clean up), moves below
    /// the live region so the message is readable, and returns `code`.
    fn crash(&mut self, code: u8) -> u8 {
        let below = self.painter.below();
        self.write(&below);
        let message = format!("mock-agent: crashing with code {code}{}", self.newline);
        let _ = write_all(rustix::stdio::stderr(), message.as_bytes());
        code
    }

    /// Writes to standard output; false if the terminal is gone.
    fn write(&mut self, bytes: &str) -> bool {
        if self.output_gone || bytes.is_empty() {
            return !self.output_gone;
        }
        if write_all(rustix::stdio::stdout(), bytes.as_bytes()).is_err() {
            self.output_gone = true;
        }
        !self.output_gone
    }
}

/// Starts the thread that reads standard input; `None` from the channel
/// means end of input (or a read error, such as a terminal hang-up).
fn spawn_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(64);
    // Blocking reads live on their own thread, never on the runtime. The
    // thread is not joined: it ends with the process.
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rustix::io::read(rustix::stdio::stdin(), &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(Errno::INTR | Errno::AGAIN) => continue,
                Err(_) => break,
            }
        }
    });
    rx
}

/// Starts `sleep 3600` in our process group (not a new session: `reins
/// stop` must find it by killing the agent's group) and returns the line
/// to print.
fn spawn_sleeper() -> String {
    let child = Command::new("sleep")
        .arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    // The child is not waited for: it is meant to outlive the turn, and if
    // the agent dies first it is left for whoever stops the process group.
    match child {
        Ok(child) => format!("spawned child pid {}", child.id()),
        Err(err) => format!("failed to spawn child: {err}"),
    }
}

/// The terminal size as (columns, rows).
fn terminal_size() -> (usize, usize) {
    match term::size(rustix::stdio::stdout()) {
        Some(size) => (usize::from(size.cols), usize::from(size.rows)),
        None => DEFAULT_SIZE,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(deadline) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    }
}

fn write_all(fd: rustix::fd::BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => std::thread::sleep(Duration::from_millis(1)),
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
