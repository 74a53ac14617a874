//! Builds the bytes of each frame for an inline (main screen) TUI, the way
//! Claude Code draws: finished transcript lines scroll up into scrollback,
//! and only the live region at the bottom is redrawn.
//!
//! The [`Painter`] remembers what it last drew (the live region's lines and
//! the cursor's row in it) so that the next frame can go back to the top of
//! the region with CR + `CSI n A`, erase below with `CSI J`, and draw again.
//! A frame is one string, written with one `write`, so a reader of the PTY
//! rarely sees half a frame.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::render::{LiveRegion, width_of};

/// Transcript lines kept for repainting the screen after a width change.
const HISTORY: usize = 1000;
/// Enables bracketed paste, so a paste arrives as one `Key::Paste`.
const PASTE_ON: &str = "\x1b[?2004h";
const PASTE_OFF: &str = "\x1b[?2004l";

/// What is on the terminal, and how to change it.
#[derive(Debug)]
pub(crate) struct Painter {
    cols: usize,
    rows: usize,
    /// The live region as last drawn; empty before the first frame.
    drawn: LiveRegion,
    title: Option<String>,
    /// The end of the transcript, to redraw the screen after a resize.
    history: VecDeque<String>,
    /// The width changed: the terminal may have re-wrapped (tmux does) or
    /// cut (vt100 does) the old lines, so the live region's height on screen
    /// is unknown. Clear the screen and draw it all again, as Claude does.
    repaint: bool,
}

impl Painter {
    /// A painter for a terminal of this size, with nothing drawn yet.
    pub(crate) fn new(cols: usize, rows: usize) -> Painter {
        Painter {
            cols,
            rows,
            drawn: LiveRegion { lines: Vec::new(), cursor_row: 0, cursor_col: 0 },
            title: None,
            history: VecDeque::new(),
            repaint: false,
        }
    }

    /// The terminal width the live region must fit.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// The terminal now has this size.
    pub(crate) fn resize(&mut self, cols: usize, rows: usize) {
        if cols != self.cols && !self.drawn.lines.is_empty() {
            self.repaint = true;
        }
        (self.cols, self.rows) = (cols, rows);
    }

    /// The bytes that print `printed` into the transcript and show `live`
    /// below it with the window title `title`; empty if nothing changes.
    pub(crate) fn frame(&mut self, printed: &[String], live: &LiveRegion, title: &str) -> String {
        let mut out = String::new();
        if self.title.is_none() {
            // The first frame: the terminal modes this agent uses.
            out.push_str(PASTE_ON);
        }
        if self.title.as_deref() != Some(title) {
            // OSC 2 sets the window title: the state seen by tmux and hosts.
            let _ = write!(out, "\x1b]2;{title}\x07");
            self.title = Some(title.to_owned());
        }
        if printed.is_empty() && !self.repaint && *live == self.drawn {
            return out;
        }
        self.remember(printed);
        if self.repaint {
            self.repaint = false;
            out.push_str("\x1b[H\x1b[2J");
            for line in self.history_that_fits(live.lines.len()) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        } else {
            self.erase(&mut out);
            for line in printed {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str(&live.lines.join("\r\n"));
        let up = live.lines.len().saturating_sub(1).saturating_sub(live.cursor_row);
        move_up(&mut out, up);
        out.push('\r');
        if live.cursor_col > 0 {
            let _ = write!(out, "\x1b[{}C", live.cursor_col);
        }
        self.drawn = live.clone();
        out
    }

    /// The bytes that erase the live region, print `printed`, leave the
    /// cursor at the start of the next line and turn bracketed paste off:
    /// the screen a user sees after the agent exits.
    pub(crate) fn finish(&mut self, printed: &[String]) -> String {
        let mut out = String::new();
        self.erase(&mut out);
        for line in printed {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(PASTE_OFF);
        self.drawn = LiveRegion { lines: Vec::new(), cursor_row: 0, cursor_col: 0 };
        out
    }

    /// The bytes that move the cursor to a fresh line below the live
    /// region without erasing anything, for a crash message.
    pub(crate) fn below(&self) -> String {
        let mut out = String::new();
        let down = self.drawn.lines.len().saturating_sub(1).saturating_sub(self.drawn.cursor_row);
        if down > 0 {
            let _ = write!(out, "\x1b[{down}B");
        }
        if !self.drawn.lines.is_empty() {
            out.push_str("\r\n");
        }
        out
    }

    /// Goes to the first row of the live region and erases to the end of
    /// the screen.
    fn erase(&self, out: &mut String) {
        if self.drawn.lines.is_empty() {
            return;
        }
        out.push('\r');
        move_up(out, self.drawn.cursor_row);
        out.push_str("\x1b[J");
    }

    fn remember(&mut self, printed: &[String]) {
        for line in printed {
            if self.history.len() == HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(line.clone());
        }
    }

    /// The last transcript lines that fit above a live region of
    /// `live_rows` rows, counting the rows a long line wraps into.
    fn history_that_fits(&self, live_rows: usize) -> impl Iterator<Item = &String> {
        let mut room = self.rows.saturating_sub(live_rows);
        let mut count = 0;
        for line in self.history.iter().rev() {
            let rows = width_of(line).div_ceil(self.cols.max(1)).max(1);
            if rows > room {
                break;
            }
            room -= rows;
            count += 1;
        }
        self.history.iter().skip(self.history.len() - count)
    }
}

/// `CSI n A`, leaving out `n == 0` (which terminals read as 1).
fn move_up(out: &mut String, n: usize) {
    if n > 0 {
        let _ = write!(out, "\x1b[{n}A");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(lines: &[&str], cursor_row: usize, cursor_col: usize) -> LiveRegion {
        LiveRegion { lines: lines.iter().map(|s| s.to_string()).collect(), cursor_row, cursor_col }
    }

    #[test]
    fn first_frame_draws_and_places_the_cursor() {
        let mut p = Painter::new(20, 10);
        let out = p.frame(&[], &region(&["top", "> x", "bottom", "footer"], 1, 3), "t");
        assert_eq!(out, "\x1b[?2004h\x1b]2;t\x07top\r\n> x\r\nbottom\r\nfooter\x1b[2A\r\x1b[3C");
    }

    #[test]
    fn unchanged_frame_writes_nothing() {
        let mut p = Painter::new(20, 10);
        let live = region(&["a", "b"], 0, 0);
        p.frame(&[], &live, "t");
        assert_eq!(p.frame(&[], &live, "t"), "");
    }

    #[test]
    fn printing_erases_the_region_first() {
        let mut p = Painter::new(20, 10);
        p.frame(&[], &region(&["a", "b", "c"], 1, 0), "t");
        let out = p.frame(&["line".into()], &region(&["a", "b", "c"], 1, 0), "t");
        assert_eq!(out, "\r\x1b[1A\x1b[Jline\r\na\r\nb\r\nc\x1b[1A\r");
    }

    #[test]
    fn finish_leaves_a_fresh_line() {
        let mut p = Painter::new(20, 10);
        p.frame(&[], &region(&["a", "b"], 1, 2), "t");
        assert_eq!(p.finish(&["bye".into()]), "\r\x1b[1A\x1b[Jbye\r\n\x1b[?2004l");
    }

    #[test]
    fn below_moves_past_the_region() {
        let mut p = Painter::new(20, 10);
        p.frame(&[], &region(&["a", "b", "c", "d"], 1, 2), "t");
        assert_eq!(p.below(), "\x1b[2B\r\n");
    }

    #[test]
    fn width_change_repaints_the_history_that_fits() {
        let mut p = Painter::new(20, 4);
        let live = region(&["x", "y"], 0, 0);
        p.frame(&["one".into(), "two".into(), "a line wider than 10".into()], &live, "t");
        p.resize(10, 4);
        let out = p.frame(&[], &live, "t");
        assert_eq!(out, "\x1b[H\x1b[2Ja line wider than 10\r\nx\r\ny\x1b[1A\r");
        p.resize(10, 8);
        assert_eq!(p.frame(&[], &live, "t"), "", "a height change needs no repaint");
    }
}
