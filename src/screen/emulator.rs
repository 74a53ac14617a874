//! The emulator wrapper: vt100 plus what vt100 does not do for us.
//!
//! - **Synchronized output** (DECSET 2026): vt100 applies a frame as it
//!   arrives, so a read that ends inside a BSU…ESU block shows a half-drawn
//!   frame. We track the mode and refuse to classify while a block is open,
//!   with a watchdog (a block left open longer than the timeout is treated as
//!   closed, as alacritty does).
//! - **Terminal queries**: with no real terminal behind us (detached mode)
//!   nobody answers DA1, cursor-position or colour queries, and agents stall
//!   or change their output waiting; the responder answers them the way a
//!   plain xterm-compatible terminal would.
//! - **Window titles**: agents publish their state there (Gemini's "◇ Ready").
//! - **What vt100 reads differently from tmux** (IND/NEL, VS16): rewritten
//!   on the way in (`fixup`), so the screen equals the tmux pane's.

use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use crate::screen::fixup::{self, Fixup};
use crate::screen::text::{ScreenText, exact_row};
use crate::store::registry::Size;

/// A terminal screen fed with an agent's output.
pub(crate) struct Screen {
    parser: vt100::Parser<Hooks>,
    fixup: Fixup,
}

#[derive(Default)]
struct Hooks {
    /// When the open synchronized-output block began, if one is open.
    sync_since: Option<Instant>,
    title: String,
    /// Answer terminal queries (only when no real terminal does).
    answer_queries: bool,
    replies: Vec<u8>,
    /// Rows scrolled off the top while a turn's answer is being kept
    /// (`keep_history`), oldest first, at most [`MAX_KEPT_ROWS`].
    kept: Option<Kept>,
}

/// Rows the agent scrolled off the screen since [`Screen::keep_history`].
#[derive(Default)]
struct Kept {
    rows: std::collections::VecDeque<String>,
    /// Rows dropped from the front past [`MAX_KEPT_ROWS`].
    dropped: u64,
    /// While a message is typed, before its submit key: only the first
    /// [`ECHO_ROWS`] rows are kept (where the echo starts). A long message
    /// scrolls its composer over and over as it arrives, and reading every
    /// row of that cost seconds for a 1 MiB message.
    typing: bool,
}

/// The most rows of history a screen keeps for one turn's answer.
const MAX_KEPT_ROWS: usize = 10_000;

/// The rows kept while a message is being typed: its echo's first rows.
const ECHO_ROWS: usize = 64;

impl vt100::Callbacks for Hooks {
    fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        // A full-screen app's scrolling is a redraw, not history.
        let Some(kept) = self.kept.as_mut().filter(|_| !alternate_screen) else { return };
        if kept.typing && kept.rows.len() >= ECHO_ROWS {
            return;
        }
        let mut formatted = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        if row.write_formatted_basic(&mut formatted, &mut state).is_ok() {
            let plain: String = vt100::capture::basic_formatted_to_plain(&formatted).collect();
            kept.rows.push_back(fixup::restore(exact_row(&plain).to_string()));
            if kept.rows.len() > MAX_KEPT_ROWS {
                kept.rows.pop_front();
                kept.dropped += 1;
            }
        }
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = String::from_utf8_lossy(title).into_owned();
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied().unwrap_or(0);
        match (i1, c) {
            (Some(b'?'), 'h') if params.iter().any(|p| *p == [2026]) => {
                self.sync_since.get_or_insert_with(Instant::now);
            }
            (Some(b'?'), 'l') if params.iter().any(|p| *p == [2026]) => self.sync_since = None,
            _ if !self.answer_queries => {}
            // DA1: "I am a VT102"-class terminal, as alacritty answers.
            (None, 'c') if first == 0 => self.replies.extend_from_slice(b"\x1b[?6c"),
            // DSR: status OK.
            (None, 'n') if first == 5 => self.replies.extend_from_slice(b"\x1b[0n"),
            // CPR: the cursor position at the moment of the query.
            (None, 'n') if first == 6 => {
                let (row, col) = screen.cursor_position();
                let reply = format!("\x1b[{};{}R", row + 1, col + 1);
                self.replies.extend_from_slice(reply.as_bytes());
            }
            _ => {}
        }
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        if !self.answer_queries {
            return;
        }
        // OSC 10/11 colour queries: a light-grey-on-black terminal.
        match params {
            [b"10", b"?"] => self.replies.extend_from_slice(b"\x1b]10;rgb:d8d8/d8d8/d8d8\x1b\\"),
            [b"11", b"?"] => self.replies.extend_from_slice(b"\x1b]11;rgb:0000/0000/0000\x1b\\"),
            _ => {}
        }
    }
}

impl Screen {
    /// A screen of `size` keeping `scrollback` rows of history.
    /// `answer_queries` turns the query responder on.
    pub(crate) fn new(size: Size, scrollback: usize, answer_queries: bool) -> Screen {
        let hooks = Hooks { answer_queries, ..Hooks::default() };
        let (rows, cols) = dims(size);
        Screen {
            parser: vt100::Parser::new_with_callbacks(rows, cols, scrollback, hooks),
            fixup: Fixup::default(),
        }
    }

    /// Feeds agent output. Returns the bytes to write back to the agent
    /// (answers to its terminal queries), usually none.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.parser.process(&self.fixup.apply(bytes));
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    pub(crate) fn resize(&mut self, size: Size) {
        let (rows, cols) = dims(size);
        self.parser.set_size(rows, cols);
    }

    pub(crate) fn size(&self) -> Size {
        let (rows, cols) = self.parser.screen().size();
        Size { rows: rows.get(), cols: cols.get() }
    }

    /// Whether a synchronized-output block is open (and younger than
    /// `timeout`): the frame on screen may be half drawn.
    pub(crate) fn in_sync_update(&self, timeout: Duration) -> bool {
        self.parser.callbacks().sync_since.is_some_and(|since| since.elapsed() < timeout)
    }

    /// How long until an open synchronized-output block times out.
    pub(crate) fn sync_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.parser.callbacks().sync_since.map(|since| since + timeout)
    }

    /// Whether the agent enabled bracketed paste (mode 2004).
    pub(crate) fn bracketed_paste(&self) -> bool {
        self.parser.screen().bracketed_paste()
    }

    /// Terminal modes the agent has switched on that a real terminal would
    /// keep after the agent is gone.
    pub(crate) fn leftover_modes(&self) -> crate::host::LeftoverModes {
        let screen = self.parser.screen();
        crate::host::LeftoverModes {
            alternate: screen.alternate_screen(),
            bracketed_paste: screen.bracketed_paste(),
            mouse: screen.mouse_protocol_mode() != vt100::MouseProtocolMode::None,
            hidden_cursor: screen.hide_cursor(),
        }
    }

    /// Bytes that draw this screen on a terminal of the same size, with
    /// the agent's input modes (cursor keys, bracketed paste, mouse): what
    /// a viewer joining the session (`reins attach`) sees first.
    pub(crate) fn formatted(&self) -> Vec<u8> {
        fixup::restore(self.parser.screen().state_formatted()).into_bytes()
    }

    /// Starts keeping the rows that scroll off the top from now on (and
    /// forgets those kept before): a turn's answer may be longer than a
    /// screen. `typing`: a message is being typed, and only its echo's
    /// first rows are kept until [`Screen::keep_all_history`].
    pub(crate) fn keep_history(&mut self, typing: bool) {
        self.parser.callbacks_mut().kept = Some(Kept { typing, ..Kept::default() });
    }

    /// The message's submit key is pressed: every row from now on is kept.
    pub(crate) fn keep_all_history(&mut self) {
        if let Some(kept) = self.parser.callbacks_mut().kept.as_mut() {
            kept.typing = false;
        }
    }

    /// Stops keeping history.
    pub(crate) fn drop_history(&mut self) {
        self.parser.callbacks_mut().kept = None;
    }

    /// The rows scrolled off since [`Screen::keep_history`] followed by the
    /// rows on screen now, and how many rows were dropped from the front.
    pub(crate) fn rows_since_kept(&self) -> (Vec<String>, u64) {
        let (mut rows, dropped) = match &self.parser.callbacks().kept {
            Some(kept) => (kept.rows.iter().cloned().collect::<Vec<_>>(), kept.dropped),
            None => (Vec::new(), 0),
        };
        rows.extend(self.text().rows);
        (rows, dropped)
    }

    /// The visible text, for rule matching and `pane`.
    pub(crate) fn text(&self) -> ScreenText {
        let screen = self.parser.screen();
        let (_, cols) = screen.size();
        let rows =
            screen.rows(0, cols.get()).map(|r| fixup::restore(exact_row(&r).to_string())).collect();
        let (cursor_row, cursor_col) = screen.cursor_position();
        ScreenText {
            rows,
            cursor_row: usize::from(cursor_row),
            cursor_col: usize::from(cursor_col),
            title: fixup::restore(self.parser.callbacks().title.clone()),
            alternate: screen.alternate_screen(),
        }
    }
}

fn dims(size: Size) -> (NonZeroU16, NonZeroU16) {
    let one = NonZeroU16::MIN;
    (NonZeroU16::new(size.rows).unwrap_or(one), NonZeroU16::new(size.cols).unwrap_or(one))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size() -> Size {
        Size { rows: 5, cols: 20 }
    }

    #[test]
    fn text_is_trimmed_as_tmux_does_and_nbsp_normalised_for_rules() {
        let mut s = Screen::new(size(), 0, false);
        s.feed("❯\u{a0}hi   \r\n❯\u{a0}\r\n\x1b]2;◇ Ready\x07".as_bytes());
        let t = s.text();
        assert_eq!(t.rows[..2], ["❯\u{a0}hi", "❯\u{a0}"]);
        assert_eq!(t.matching_rows()[..2], ["❯ hi", "❯"]);
        assert_eq!(t.cursor_row, 2);
        assert_eq!(t.title, "◇ Ready");
    }

    #[test]
    fn synchronized_output_is_tracked_with_a_watchdog() {
        let mut s = Screen::new(size(), 0, false);
        s.feed(b"\x1b[?2026h half");
        assert!(s.in_sync_update(Duration::from_secs(60)));
        assert!(!s.in_sync_update(Duration::ZERO), "an over-long block counts as closed");
        s.feed(b" frame\x1b[?2026l");
        assert!(!s.in_sync_update(Duration::from_secs(60)));
    }

    #[test]
    fn scrollback_stays_within_its_bound() {
        let mut s = Screen::new(size(), 3, false);
        for i in 0..1000 {
            s.feed(format!("line {i}\r\n").as_bytes());
        }
        s.parser.screen_mut().set_scrollback(usize::MAX);
        assert_eq!(s.parser.screen().scrollback(), 3);
        let mut none = Screen::new(size(), 0, false);
        none.feed(&b"x\r\n".repeat(100));
        none.parser.screen_mut().set_scrollback(usize::MAX);
        assert_eq!(none.parser.screen().scrollback(), 0);
    }

    #[test]
    fn queries_are_answered_only_when_asked_to() {
        let mut quiet = Screen::new(size(), 0, false);
        assert!(quiet.feed(b"\x1b[c\x1b[6n").is_empty());

        let mut s = Screen::new(size(), 0, true);
        assert_eq!(s.feed(b"ab\x1b[6n"), b"\x1b[1;3R");
        assert_eq!(s.feed(b"\x1b[c"), b"\x1b[?6c");
        assert_eq!(s.feed(b"\x1b]11;?\x07"), b"\x1b]11;rgb:0000/0000/0000\x1b\\");
    }
}
