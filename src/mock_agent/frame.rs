//! Builds the bytes of each frame for an inline (main screen) TUI. Finished
//! transcript lines scroll up into scrollback and only the live region is
//! redrawn, in one of two ways ([`Draw`]):
//!
//! - **inline**, the way Claude Code draws: the live region sits right under
//!   the last line printed. The [`Painter`] remembers what it last drew (the
//!   live region's lines and the cursor's row in it) so that the next frame
//!   can go back to the top of the region with CR + `CSI n A`, erase below
//!   with `CSI J`, and draw again; printing scrolls the whole screen.
//! - **scroll region**, the way Codex draws with `--no-alt-screen`: the live
//!   region is pinned to the bottom rows with absolute cursor moves, and
//!   printed lines fill the rows above it; once those are full, each new
//!   line goes in at the bottom of a scroll region anchored at the top row
//!   (`CSI 1;N r`, then CR LF), so the top row leaves the screen while the
//!   live region stays put; a live region that grows pushes the rows above
//!   it up the same way with IND (`ESC D`). A terminal keeps what leaves as
//!   history, as it keeps a whole-screen scroll.
//!
//! A frame is one string, written with one `write`, so a reader of the PTY
//! rarely sees half a frame.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::render::{LiveRegion, width_of, wrap};

/// Transcript lines kept for repainting the screen after a width change.
const HISTORY: usize = 1000;
/// Enables bracketed paste, so a paste arrives as one `Key::Paste`.
const PASTE_ON: &str = "\x1b[?2004h";
const PASTE_OFF: &str = "\x1b[?2004l";

/// How printed lines reach the screen (`reins mock-agent --draw`; the
/// option's help describes the values, so they carry no doc comments of
/// their own, which clap would list a second time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Draw {
    // Like Claude Code: the live region follows the last printed line and
    // the whole screen scrolls.
    #[default]
    Inline,
    // Like Codex with --no-alt-screen: the live region is pinned to the
    // bottom and printed lines are pushed up through a scroll region that
    // starts at the top row.
    ScrollRegion,
}

/// What is on the terminal, and how to change it.
#[derive(Debug)]
pub(crate) struct Painter {
    cols: usize,
    rows: usize,
    draw: Draw,
    /// Scroll-region drawing: rows of printed lines on screen, from the
    /// top; the live region sits below them at the bottom.
    used: usize,
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
    pub(crate) fn new(cols: usize, rows: usize, draw: Draw) -> Painter {
        Painter {
            cols,
            rows,
            draw,
            used: 0,
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
        match self.draw {
            Draw::Inline => self.inline_frame(&mut out, printed, live),
            Draw::ScrollRegion => self.region_frame(&mut out, printed, live),
        }
        self.drawn = live.clone();
        out
    }

    fn inline_frame(&mut self, out: &mut String, printed: &[String], live: &LiveRegion) {
        if self.repaint {
            self.repaint = false;
            out.push_str("\x1b[H\x1b[2J");
            for line in self.history_that_fits(live.lines.len()) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        } else {
            self.erase(out);
            for line in printed {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str(&live.lines.join("\r\n"));
        let up = live.lines.len().saturating_sub(1).saturating_sub(live.cursor_row);
        move_up(out, up);
        out.push('\r');
        if live.cursor_col > 0 {
            let _ = write!(out, "\x1b[{}C", live.cursor_col);
        }
    }

    fn region_frame(&mut self, out: &mut String, printed: &[String], live: &LiveRegion) {
        // The live region's first row (0-based); printed rows live above.
        let top = self.rows.saturating_sub(live.lines.len());
        if self.repaint {
            self.repaint = false;
            out.push_str("\x1b[H\x1b[2J");
            self.used = 0;
            let lines: Vec<String> = self.history_that_fits(live.lines.len()).cloned().collect();
            self.insert(out, &lines, top);
        } else {
            if self.used > top {
                // The live region grew over printed rows: push them up.
                let over = self.used - top;
                self.scroll_up(out, over);
            }
            self.insert(out, printed, top);
        }
        // Erase the old live region (and any gap a smaller one leaves),
        // then draw the new one at the bottom.
        let _ = write!(out, "\x1b[{};1H\x1b[J", self.used + 1);
        for (i, line) in live.lines.iter().enumerate() {
            let _ = write!(out, "\x1b[{};1H{line}", top + i + 1);
        }
        let _ = write!(out, "\x1b[{};{}H", top + live.cursor_row + 1, live.cursor_col + 1);
    }

    /// Puts `lines` (wrapped to the width) on the rows above row `top`:
    /// into free rows first, then in at the bottom of the scroll region
    /// `1..=top`, which pushes its first row off the screen.
    fn insert(&mut self, out: &mut String, lines: &[String], top: usize) {
        let rows: Vec<String> = lines.iter().flat_map(|line| wrap(line, self.cols)).collect();
        let mut rows = rows.iter();
        for row in rows.by_ref().take(top.saturating_sub(self.used)) {
            let _ = write!(out, "\x1b[{};1H\x1b[2K{row}", self.used + 1);
            self.used += 1;
        }
        let rest: Vec<&String> = rows.collect();
        if rest.is_empty() {
            return;
        }
        if top >= 2 {
            let _ = write!(out, "\x1b[1;{top}r\x1b[{top};1H");
            for row in rest {
                let _ = write!(out, "\r\n{row}");
            }
            out.push_str("\x1b[r");
        } else {
            // No room for a region (DECSTBM needs two rows): the whole
            // screen scrolls (the live region is drawn again after). With
            // one row above the live region, each row pushes out the one
            // there and takes its place; with none, it only passes through.
            let scroll = format!("\x1b[{};1H\x1bD", self.rows);
            for row in rest {
                if top == 1 {
                    let _ = write!(out, "{scroll}\x1b[1;1H\x1b[2K{row}");
                } else {
                    let _ = write!(out, "\x1b[1;1H\x1b[2K{row}{scroll}");
                }
            }
        }
    }

    /// Scrolls the printed rows up by `n` within the region `1..=used`,
    /// with IND (`ESC D`) at its bottom margin.
    fn scroll_up(&mut self, out: &mut String, n: usize) {
        if self.used >= 2 {
            let _ = write!(out, "\x1b[1;{used}r\x1b[{used};1H", used = self.used);
            out.push_str(&"\x1bD".repeat(n));
            out.push_str("\x1b[r");
        } else {
            // One row cannot be a region: scroll the whole screen (the live
            // region is drawn again right after).
            let _ = write!(out, "\x1b[{};1H{}", self.rows, "\n".repeat(n));
        }
        self.used = self.used.saturating_sub(n);
    }

    /// The bytes that erase the live region, print `printed`, leave the
    /// cursor at the start of the next line and turn bracketed paste off:
    /// the screen a user sees after the agent exits.
    pub(crate) fn finish(&mut self, printed: &[String]) -> String {
        let mut out = String::new();
        match self.draw {
            Draw::Inline => {
                self.erase(&mut out);
                for line in printed {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            }
            Draw::ScrollRegion => {
                // Everything but the last row holds printed lines; the
                // cursor rests on a fresh line after them.
                let top = self.rows.saturating_sub(1);
                if self.used > top {
                    let over = self.used - top;
                    self.scroll_up(&mut out, over);
                }
                self.insert(&mut out, printed, top);
                let _ = write!(out, "\x1b[{};1H\x1b[J", self.used + 1);
            }
        }
        out.push_str(PASTE_OFF);
        self.drawn = LiveRegion { lines: Vec::new(), cursor_row: 0, cursor_col: 0 };
        out
    }

    /// The bytes that move the cursor to a fresh line below the live
    /// region without erasing anything, for a crash message.
    pub(crate) fn below(&self) -> String {
        let mut out = String::new();
        if self.draw == Draw::ScrollRegion {
            // The live region is at the bottom: a fresh line below it.
            let _ = write!(out, "\x1b[{};1H\r\n", self.rows);
            return out;
        }
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
        let mut p = Painter::new(20, 10, Draw::Inline);
        let out = p.frame(&[], &region(&["top", "> x", "bottom", "footer"], 1, 3), "t");
        assert_eq!(out, "\x1b[?2004h\x1b]2;t\x07top\r\n> x\r\nbottom\r\nfooter\x1b[2A\r\x1b[3C");
    }

    #[test]
    fn unchanged_frame_writes_nothing() {
        let mut p = Painter::new(20, 10, Draw::Inline);
        let live = region(&["a", "b"], 0, 0);
        p.frame(&[], &live, "t");
        assert_eq!(p.frame(&[], &live, "t"), "");
    }

    #[test]
    fn printing_erases_the_region_first() {
        let mut p = Painter::new(20, 10, Draw::Inline);
        p.frame(&[], &region(&["a", "b", "c"], 1, 0), "t");
        let out = p.frame(&["line".into()], &region(&["a", "b", "c"], 1, 0), "t");
        assert_eq!(out, "\r\x1b[1A\x1b[Jline\r\na\r\nb\r\nc\x1b[1A\r");
    }

    #[test]
    fn finish_leaves_a_fresh_line() {
        let mut p = Painter::new(20, 10, Draw::Inline);
        p.frame(&[], &region(&["a", "b"], 1, 2), "t");
        assert_eq!(p.finish(&["bye".into()]), "\r\x1b[1A\x1b[Jbye\r\n\x1b[?2004l");
    }

    #[test]
    fn below_moves_past_the_region() {
        let mut p = Painter::new(20, 10, Draw::Inline);
        p.frame(&[], &region(&["a", "b", "c", "d"], 1, 2), "t");
        assert_eq!(p.below(), "\x1b[2B\r\n");
    }

    /// Replays `frames` the way `reins logs` reads them, on a screen of
    /// `rows`×20: the rows that left the screen and the rows on it.
    fn replay(rows: u16, frames: &[String]) -> (Vec<String>, Vec<String>) {
        use crate::screen::{Renderer, SizeMark};
        let size = crate::store::registry::Size { rows, cols: 20 };
        let first = SizeMark { offset: 0, size, new_run: Some("r".into()) };
        let mut r = Renderer::new(vec![first], 0);
        for frame in frames {
            r.feed(frame.as_bytes());
        }
        (r.take_finished(), r.screen_lines())
    }

    fn lines(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scroll_region_drawing_pushes_printed_rows_off_the_top() {
        let mut p = Painter::new(20, 6, Draw::ScrollRegion);
        let live = region(&["> x", "footer"], 0, 3);
        let first = p.frame(&lines(&["l1", "l2", "l3", "l4", "l5", "l6"]), &live, "t");
        assert!(first.contains("\x1b[1;4r\x1b[4;1H\r\nl5\r\nl6\x1b[r"), "{first:?}");
        let (gone, shown) = replay(6, std::slice::from_ref(&first));
        assert_eq!(gone, ["l1", "l2"], "they left through the region's top");
        assert_eq!(shown, ["l3", "l4", "l5", "l6", "> x", "footer"]);

        // A taller live region pushes printed rows up (IND); a shorter one
        // leaves a gap that the next line fills.
        let busy = p.frame(&[], &region(&["busy", "> x", "footer"], 1, 3), "t");
        assert!(busy.contains("\x1b[1;4r\x1b[4;1H\x1bD\x1b[r"), "{busy:?}");
        let idle = p.frame(&lines(&["l7"]), &live, "t");
        let (gone, shown) = replay(6, &[first.clone(), busy.clone(), idle.clone()]);
        assert_eq!(gone, ["l1", "l2", "l3"]);
        assert_eq!(shown, ["l4", "l5", "l6", "l7", "> x", "footer"]);

        let end = p.finish(&lines(&["bye"]));
        let (gone, shown) = replay(6, &[first, busy, idle, end]);
        assert_eq!(gone, ["l1", "l2", "l3"]);
        assert_eq!(shown, ["l4", "l5", "l6", "l7", "bye"], "the cursor rests on the last row");
    }

    #[test]
    fn scroll_region_drawing_loses_nothing_without_room_for_a_region() {
        let mut p = Painter::new(20, 3, Draw::ScrollRegion);
        let first = p.frame(&lines(&["l1", "l2", "l3"]), &region(&["> x", "footer"], 0, 3), "t");
        let (gone, shown) = replay(3, std::slice::from_ref(&first));
        assert_eq!(gone, ["l1", "l2"]);
        assert_eq!(shown, ["l3", "> x", "footer"]);
        let tall = p.frame(&lines(&["m1"]), &region(&["a", "b", "c"], 0, 1), "t");
        let (gone, shown) = replay(3, &[first, tall]);
        assert_eq!(gone, ["l1", "l2", "l3", "m1"]);
        assert_eq!(shown, ["a", "b", "c"]);
    }

    #[test]
    fn width_change_repaints_the_history_that_fits() {
        let mut p = Painter::new(20, 4, Draw::Inline);
        let live = region(&["x", "y"], 0, 0);
        p.frame(&["one".into(), "two".into(), "a line wider than 10".into()], &live, "t");
        p.resize(10, 4);
        let out = p.frame(&[], &live, "t");
        assert_eq!(out, "\x1b[H\x1b[2Ja line wider than 10\r\nx\r\ny\x1b[1A\r");
        p.resize(10, 8);
        assert_eq!(p.frame(&[], &live, "t"), "", "a height change needs no repaint");
    }
}
