//! A progress line on standard error for commands that wait (`wait`,
//! `send`, `stop`): a spinner, what is being waited for, and the time so
//! far.
//!
//! Drawn only when standard error is a terminal (`style::progress_on`),
//! after a short delay (a quick answer never flickers), and erased before
//! the command prints its result. It never writes to standard output and
//! never changes terminal modes, so an interrupted command leaves at most
//! one line behind. When standard error is not a terminal, nothing at all
//! is drawn.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::style::{Paint, Stream};

/// Nothing is drawn for waits shorter than this.
const DELAY: Duration = Duration::from_millis(300);
/// Time between frames.
const FRAME: Duration = Duration::from_millis(100);
const GLYPHS: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// A running progress line; dropping it erases the line and stops the
/// drawing thread.
pub(crate) struct Spinner {
    running: Option<Running>,
}

struct Running {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: JoinHandle<()>,
}

struct Shared {
    done: bool,
    detail: String,
}

impl Spinner {
    /// Starts a progress line saying `label` (e.g. `waiting for w1: ready`),
    /// or nothing when standard error is not a terminal.
    pub(crate) fn start(label: impl Into<String>) -> Spinner {
        if !crate::style::progress_on() {
            return Spinner { running: None };
        }
        let label = label.into();
        let shared =
            Arc::new((Mutex::new(Shared { done: false, detail: String::new() }), Condvar::new()));
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("spinner".into())
                .spawn(move || draw(&label, &shared, Instant::now()))
                .ok()
        };
        Spinner { running: thread.map(|thread| Running { shared, thread }) }
    }

    /// Replaces the detail shown after the label (e.g. the session's state).
    pub(crate) fn detail(&self, detail: impl Into<String>) {
        if let Some(running) = &self.running
            && let Ok(mut shared) = running.shared.0.lock()
        {
            shared.detail = detail.into();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let Some(running) = self.running.take() else { return };
        if let Ok(mut shared) = running.shared.0.lock() {
            shared.done = true;
        }
        running.shared.1.notify_all();
        let _ = running.thread.join();
    }
}

/// The drawing thread: waits out the delay, then redraws every frame until
/// told to stop, then erases what it drew.
fn draw(label: &str, shared: &(Mutex<Shared>, Condvar), started: Instant) {
    let paint = Paint::new(Stream::Stderr);
    let (lock, wake) = shared;
    let Ok(mut state) = lock.lock() else { return };
    let mut drawn = false;
    let mut frame = 0usize;
    let mut next = started + DELAY;
    loop {
        let now = Instant::now();
        if now < next {
            state = match wake.wait_timeout(state, next - now) {
                Ok((guard, _)) => guard,
                Err(_) => return,
            };
            if !state.done {
                continue;
            }
        }
        if state.done {
            break;
        }
        let line = render(label, &state.detail, started.elapsed(), frame, paint);
        drawn |= write_line(&line);
        frame += 1;
        next = Instant::now() + FRAME;
    }
    if drawn {
        let _ = std::io::stderr().lock().write_all(b"\r\x1b[2K");
    }
}

fn render(label: &str, detail: &str, elapsed: Duration, frame: usize, paint: Paint) -> String {
    let glyph = paint.cyan(GLYPHS[frame % GLYPHS.len()]);
    let mut text = label.to_string();
    if !detail.is_empty() {
        text.push_str(" · ");
        text.push_str(detail);
    }
    text.push_str(" · ");
    text.push_str(&clock(elapsed));
    // Never wider than the terminal: a wrapped line cannot be erased.
    let cols = crate::term::size(std::io::stderr()).map_or(80, |s| usize::from(s.cols));
    let text: String = text.chars().take(cols.saturating_sub(3)).collect();
    format!("\r\x1b[2K{glyph} {}", paint.dim(&text))
}

fn write_line(line: &str) -> bool {
    let mut err = std::io::stderr().lock();
    err.write_all(line.as_bytes()).and_then(|()| err.flush()).is_ok()
}

/// Elapsed time as a clock reads: `7s`, `1m05s`, `2h03m`.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_reads_like_a_clock() {
        assert_eq!(clock(Duration::from_millis(7_900)), "7s");
        assert_eq!(clock(Duration::from_secs(65)), "1m05s");
        assert_eq!(clock(Duration::from_secs(2 * 3600 + 3 * 60 + 9)), "2h03m");
    }

    #[test]
    fn an_uncoloured_frame_is_plain_text_after_the_line_reset() {
        let off = Paint::plain();
        let line = render("waiting for w1: ready", "busy", Duration::from_secs(3), 0, off);
        assert!(line.starts_with("\r\x1b[2K"));
        assert!(line.contains("waiting for w1: ready · busy · 3s"), "{line:?}");
    }
}
