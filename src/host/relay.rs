//! Relaying the agent to a real terminal (foreground and tmux modes).
//!
//! The host's stdin goes to the agent byte for byte (raw mode, so Ctrl-C is
//! a byte for the agent, not a signal for us), the agent's output goes to
//! the host's stdout, and size changes follow SIGWINCH. When the agent ends,
//! modes it left on (alternate screen, bracketed paste, mouse reporting, a
//! hidden cursor) are switched off so the user's terminal is usable again.

use std::io::Read;

use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::store::registry::Size;
use crate::term::{self, RawMode};

/// A live relay to the terminal on stdin/stdout.
pub(crate) struct Relay {
    _raw: Option<RawMode<'static>>,
    stdout: Option<tokio::io::Stdout>,
    input: mpsc::Receiver<Vec<u8>>,
    winch: Signal,
}

impl Relay {
    /// Puts the terminal in raw mode and starts reading it.
    pub(crate) fn start() -> std::io::Result<Relay> {
        let raw = RawMode::enter(rustix::stdio::stdin());
        let (tx, input) = mpsc::channel(64);
        std::thread::Builder::new().name("relay-stdin".into()).spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        })?;
        Ok(Relay {
            _raw: raw,
            stdout: Some(tokio::io::stdout()),
            input,
            winch: signal(SignalKind::window_change())?,
        })
    }

    /// The terminal's size, if stdout is a terminal.
    pub(crate) fn size() -> Option<Size> {
        term::size(rustix::stdio::stdout())
    }

    /// The next thing the terminal did: keystrokes or a resize. Keystrokes
    /// stop (this pends) once stdin is closed.
    pub(crate) async fn next(&mut self) -> TerminalEvent {
        tokio::select! {
            Some(bytes) = self.input.recv() => TerminalEvent::Input(bytes),
            _ = self.winch.recv() => TerminalEvent::Resized(Relay::size()),
        }
    }

    /// Shows agent output. A terminal that went away (its tmux pane was
    /// killed) stops the relay; the host goes on headless until the hangup
    /// signal arrives.
    pub(crate) async fn output(&mut self, bytes: &[u8]) {
        let Some(out) = self.stdout.as_mut() else {
            return;
        };
        if out.write_all(bytes).await.is_err() || out.flush().await.is_err() {
            self.stdout = None;
        }
    }

    /// Switches off terminal modes the agent left on.
    pub(crate) async fn restore_modes(&mut self, modes: LeftoverModes) {
        let mut reset = String::new();
        if modes.alternate {
            reset.push_str("\x1b[?1049l");
        }
        if modes.bracketed_paste {
            reset.push_str("\x1b[?2004l");
        }
        if modes.mouse {
            reset.push_str("\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l");
        }
        if modes.hidden_cursor {
            reset.push_str("\x1b[?25h");
        }
        if !reset.is_empty() {
            self.output(reset.as_bytes()).await;
        }
    }
}

/// Something the relayed terminal did.
#[derive(Debug)]
pub(crate) enum TerminalEvent {
    /// Keystrokes (or a paste) for the agent.
    Input(Vec<u8>),
    /// The terminal changed size.
    Resized(Option<Size>),
}

/// Terminal modes an exited agent may have left switched on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LeftoverModes {
    pub(crate) alternate: bool,
    pub(crate) bracketed_paste: bool,
    pub(crate) mouse: bool,
    pub(crate) hidden_cursor: bool,
}
