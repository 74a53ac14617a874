//! Rendering a transcript (the raw bytes an agent wrote) as text lines.
//!
//! The bytes are replayed through an emulator at the sizes the agent really
//! had (from the `started` and `resized` events), so cursor-addressed
//! redraws, spinners and erased lines come out as the user saw them. A row
//! becomes a finished line when it scrolls off the top of the screen: the
//! whole screen scrolling, or a scroll region that starts at the top row
//! (Codex keeps its composer at the bottom and pushes its transcript up
//! that way), which is what a terminal keeps as history. The rows still on
//! screen are finished only when the run ends (or when a snapshot asks for
//! them). So nothing is printed twice and no half-drawn frame is ever
//! printed. Rows of the alternate screen are never history: a full-screen
//! program redraws it (tmux keeps no history of it either).

use std::num::NonZeroU16;

use crate::screen::fixup::{self, Fixup};
use crate::screen::text::normalise_row;
use crate::store::registry::Size;

/// A size change at a byte offset of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SizeMark {
    pub(crate) offset: u64,
    pub(crate) size: Size,
    /// At the start of a run (the terminal is fresh): how to name it in the
    /// separator line that marks where a run after the first one starts.
    pub(crate) new_run: Option<String>,
}

#[derive(Default)]
struct Collector {
    finished: Vec<String>,
}

impl vt100::Callbacks for Collector {
    fn on_scroll(&mut self, row: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        // Full-screen apps scroll their alternate screen only as part of a
        // redraw; those rows are not output.
        if alternate_screen {
            return;
        }
        let mut formatted = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        if row.write_formatted_basic(&mut formatted, &mut state).is_ok() {
            let plain: String = vt100::capture::basic_formatted_to_plain(&formatted).collect();
            self.finished.push(fixup::restore(normalise_row(&plain)));
        }
    }
}

/// Turns transcript bytes into finished lines.
pub(crate) struct Renderer {
    parser: vt100::Parser<Collector>,
    marks: Vec<SizeMark>,
    next_mark: usize,
    offset: u64,
    fixup: Fixup,
}

impl Renderer {
    /// A renderer starting at transcript byte `offset`, with the size marks
    /// of the session (sorted by offset).
    pub(crate) fn new(marks: Vec<SizeMark>, offset: u64) -> Renderer {
        let initial = marks
            .iter()
            .take_while(|m| m.offset <= offset)
            .last()
            .map_or(Size { rows: 40, cols: 120 }, |m| m.size);
        let before = marks.iter().take_while(|m| m.offset <= offset).count();
        Renderer {
            parser: parser(initial),
            marks,
            next_mark: before,
            offset,
            fixup: Fixup::default(),
        }
    }

    /// Feeds transcript bytes, applying size marks where they fall.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let until_mark = self
                .marks
                .get(self.next_mark)
                .map_or(u64::MAX, |m| m.offset.saturating_sub(self.offset));
            if until_mark == 0 {
                self.apply_mark();
                continue;
            }
            let take = (bytes.len() as u64).min(until_mark) as usize;
            self.parser.process(&self.fixup.apply(&bytes[..take]));
            self.offset += take as u64;
            bytes = &bytes[take..];
        }
        // Marks exactly at the end apply now, so a new run's first bytes
        // start on a fresh screen.
        while self.marks.get(self.next_mark).is_some_and(|m| m.offset <= self.offset) {
            self.apply_mark();
        }
    }

    fn apply_mark(&mut self) {
        let mark = self.marks[self.next_mark].clone();
        self.next_mark += 1;
        let (rows, cols) = dims(mark.size);
        if let Some(run) = &mark.new_run {
            self.flush_screen();
            self.fixup = Fixup::default();
            let mut finished = std::mem::take(&mut self.parser.callbacks_mut().finished);
            finished.push(format!("──── {run} ────"));
            self.parser = parser(mark.size);
            self.parser.callbacks_mut().finished = finished;
        } else {
            self.parser.set_size(rows, cols);
        }
    }

    /// Lines finished since the last call.
    pub(crate) fn take_finished(&mut self) -> Vec<String> {
        std::mem::take(&mut self.parser.callbacks_mut().finished)
    }

    /// The rows still on screen, trailing blank rows dropped.
    pub(crate) fn screen_lines(&self) -> Vec<String> {
        let screen = self.parser.screen();
        let (_, cols) = screen.size();
        let mut rows: Vec<String> =
            screen.rows(0, cols.get()).map(|r| fixup::restore(normalise_row(&r))).collect();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        rows
    }

    /// Moves the rows on screen into the finished lines (end of a run).
    pub(crate) fn flush_screen(&mut self) {
        let rows = self.screen_lines();
        self.parser.callbacks_mut().finished.extend(rows);
        let size = self.parser.screen().size();
        let finished = std::mem::take(&mut self.parser.callbacks_mut().finished);
        self.parser = vt100::Parser::new_with_callbacks(size.0, size.1, 0, Collector { finished });
    }
}

fn parser(size: Size) -> vt100::Parser<Collector> {
    let (rows, cols) = dims(size);
    vt100::Parser::new_with_callbacks(rows, cols, 0, Collector::default())
}

fn dims(size: Size) -> (NonZeroU16, NonZeroU16) {
    (
        NonZeroU16::new(size.rows).unwrap_or(NonZeroU16::MIN),
        NonZeroU16::new(size.cols).unwrap_or(NonZeroU16::MIN),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(offset: u64, cols: u16, new_run: bool) -> SizeMark {
        let new_run = new_run.then(|| format!("run at {offset}"));
        SizeMark { offset, size: Size { rows: 3, cols }, new_run }
    }

    #[test]
    fn rows_finish_when_they_scroll_off_and_redraws_do_not_repeat() {
        let mut r = Renderer::new(vec![mark(0, 20, true)], 0);
        // A spinner redrawn in place, then three lines that push it off.
        r.feed(b"work |\rwork /\rwork -\r\nline 2\r\nline 3\r\n");
        assert_eq!(r.take_finished(), ["work -"]);
        assert_eq!(r.screen_lines(), ["line 2", "line 3"]);
        r.flush_screen();
        assert_eq!(r.take_finished(), ["line 2", "line 3"]);
    }

    #[test]
    fn a_new_run_starts_on_a_fresh_screen_under_a_separator() {
        let first = b"run one\r\n";
        let mut r = Renderer::new(vec![mark(0, 20, true), mark(first.len() as u64, 20, true)], 0);
        r.feed(first);
        r.feed(b"run two");
        r.flush_screen();
        assert_eq!(r.take_finished(), ["run one", "──── run at 9 ────", "run two"]);
    }

    fn screen(rows: u16, cols: u16) -> Renderer {
        let first = SizeMark { offset: 0, size: Size { rows, cols }, new_run: Some("r".into()) };
        Renderer::new(vec![first], 0)
    }

    #[test]
    fn rows_leaving_a_scroll_region_at_the_top_are_finished() {
        // A 5-row screen: a footer on the last row, the transcript in the
        // region 1..4 above it, pushed up the ways an agent can: LF, IND
        // and NEL at the region's bottom, and SU.
        let mut r = screen(5, 20);
        r.feed(b"\x1b[5;1Hfooter\x1b[1;4r\x1b[1;1Hl1\r\nl2\r\nl3\r\nl4");
        r.feed(b"\r\nl5\x1bD\rl6\x1bEl7");
        assert_eq!(r.take_finished(), ["l1", "l2", "l3"]);
        r.feed(b"\x1b[2S\x1b[r");
        assert_eq!(r.take_finished(), ["l4", "l5"]);
        assert_eq!(r.screen_lines(), ["l6", "l7", "", "", "footer"]);
    }

    #[test]
    fn alternate_screen_scrolls_are_not_history() {
        // A full-screen app's scrolling is part of a redraw; a terminal
        // keeps no history of its alternate screen either.
        let mut r = screen(3, 20);
        r.feed(b"main\r\n\x1b[?1049ha\r\nb\r\nc\r\nd\x1b[1;2r\x1b[2;1H\n\x1b[S\x1b[r");
        assert!(r.take_finished().is_empty());
        r.feed(b"\x1b[?1049l");
        r.flush_screen();
        assert_eq!(r.take_finished(), ["main"]);
    }

    /// What tmux keeps of a 40x10 screen where lines leave a scroll region
    /// at the top every way they can (LF, IND, NEL, SU, after SD and RI):
    /// its history and screen (`capture-pane -p -S -`) are the log lines.
    #[test]
    fn lines_pushed_off_a_scroll_region_are_the_history_tmux_keeps() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tmux-screens");
        let bytes = std::fs::read(format!("{dir}/region.bytes")).unwrap();
        let tmux = std::fs::read_to_string(format!("{dir}/region.history.txt")).unwrap();
        let mut r = screen(10, 40);
        r.feed(&bytes);
        r.flush_screen();
        let mut want: Vec<&str> = tmux.lines().collect();
        while want.last().is_some_and(|l| l.is_empty()) {
            want.pop();
        }
        assert_eq!(r.take_finished(), want);
    }

    /// The real Codex TUI (0.169.0, `--no-alt-screen`, 120x40, in tmux)
    /// answering `answer 01` … `answer 10`: it keeps its composer at the
    /// bottom and pushes each turn up through `CSI 1;N r` + LF. Every answer
    /// is a log line once, the first ones because they scrolled off.
    #[test]
    fn a_recorded_codex_inline_session_keeps_every_answer() {
        let bytes = include_bytes!("../../tests/fixtures/logs/codex-inline-10-turns.bytes");
        let mut r = screen(40, 120);
        for chunk in bytes.chunks(4095) {
            r.feed(chunk);
        }
        let scrolled = r.take_finished();
        let answer = |i: usize| format!("• MOCK_OK (you said: answer {i:02})");
        assert!(scrolled.contains(&answer(1)), "answer 01 scrolled off:\n{scrolled:#?}");
        r.flush_screen();
        let lines = [scrolled, r.take_finished()].concat();
        let position = |text: &str| {
            let at: Vec<usize> = (0..lines.len()).filter(|i| lines[*i] == text).collect();
            assert_eq!(at.len(), 1, "{text:?} once:\n{lines:#?}");
            at[0]
        };
        let answers: Vec<usize> = (1..=10).map(|i| position(&answer(i))).collect();
        assert!(answers.is_sorted(), "in order: {answers:?}");
        position("  >_ OpenAI Codex (v0.169.0)");
    }

    #[test]
    fn widths_follow_resize_marks() {
        let text = b"abcdefghij";
        let mut r = Renderer::new(vec![mark(0, 5, true), mark(5, 10, false)], 0);
        r.feed(text);
        r.flush_screen();
        // The first five bytes wrapped at width 5 before the resize.
        assert_eq!(r.take_finished().concat(), "abcdefghij");
    }
}
