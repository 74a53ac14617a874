//! Draws the live region (composer box, busy line, approval dialog, footer)
//! for a [`View`] at a given terminal width, as plain text lines.
//!
//! The texts here are what screen rules match (`? for shortcuts`,
//! `esc to interrupt`, `Working…`, `❯ 1. Yes`), so they are fixed strings.
//! No line is ever wider than the terminal: a line that reached the last
//! column would wrap on some terminals and break the live region's height.

use super::agent::View;

/// The composer text shown while the input is empty.
pub(crate) const PLACEHOLDER: &str = "Type a task for mock";
/// The line shown while booting.
pub(crate) const BOOTING: &str = "booting mock-agent…";
const FOOTER_IDLE: &str = "  ? for shortcuts · /exit to quit";
const FOOTER_TYPED: &str = "  enter to send";
const FOOTER_BUSY: &str = "  esc to interrupt";
const FOOTER_EXIT_HINT: &str = "  Press Ctrl-C again to exit";
const FOOTER_APPROVAL: &str = "  [y/n] y or enter to allow · n or esc to deny";
const APPROVAL_TITLE: &str = "─ Permission ";
const APPROVAL_CHOICES: &str = "❯ 1. Yes   2. No";
/// Width of `│ ` (and of ` │`) around box contents.
const BORDER: usize = 2;

/// The lines of the live region and where the cursor rests in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveRegion {
    pub(crate) lines: Vec<String>,
    /// Row within `lines`.
    pub(crate) cursor_row: usize,
    /// Column, in terminal cells.
    pub(crate) cursor_col: usize,
}

/// Draws `view` for a terminal `width` columns wide.
pub(crate) fn live_region(view: &View<'_>, width: usize) -> LiveRegion {
    let mut lines = Vec::new();
    let (cursor_row, cursor_col);
    match view {
        View::Booting => {
            lines.push(BOOTING.to_owned());
            (cursor_row, cursor_col) = (0, width_of(BOOTING));
        }
        View::Idle { input, exit_hint } => {
            let footer = if *exit_hint {
                FOOTER_EXIT_HINT
            } else if input.is_empty() {
                FOOTER_IDLE
            } else {
                FOOTER_TYPED
            };
            (cursor_row, cursor_col) = composer(&mut lines, input, width);
            lines.push(footer.to_owned());
        }
        View::Busy { input, spinner, secs } => {
            lines.push(format!("{spinner} Working… ({secs}s · esc to interrupt)"));
            (cursor_row, cursor_col) = composer(&mut lines, input, width);
            lines.push(FOOTER_BUSY.to_owned());
        }
        View::Approval { cmd } => {
            let inner = width.saturating_sub(2);
            let rule = "─".repeat(inner.saturating_sub(width_of(APPROVAL_TITLE)));
            lines.push(format!("╭{APPROVAL_TITLE}{rule}╮"));
            lines.push(boxed(&format!("Allow mock to run `{cmd}`?"), width));
            lines.push(boxed(APPROVAL_CHOICES, width));
            lines.push(bottom(width));
            lines.push(FOOTER_APPROVAL.to_owned());
            (cursor_row, cursor_col) = (2, BORDER);
        }
    }
    let lines: Vec<String> = lines.iter().map(|line| fit(line, width)).collect();
    LiveRegion { lines, cursor_row, cursor_col: cursor_col.min(width.saturating_sub(1)) }
}

/// Appends the composer box; returns the cursor position (end of input).
fn composer(lines: &mut Vec<String>, input: &str, width: usize) -> (usize, usize) {
    let inner = width.saturating_sub(2 * BORDER);
    let shown = if input.is_empty() {
        format!("> {PLACEHOLDER}")
    } else {
        // One row: newlines show as ↵, and a long input keeps its end (where
        // the user is typing), cut from the left.
        format!("> {}", tail(&input.replace('\n', "↵"), inner.saturating_sub(2)))
    };
    let cursor_col = BORDER + if input.is_empty() { 2 } else { width_of(&shown) };
    lines.push(top(width));
    let row = lines.len();
    lines.push(boxed(&shown, width));
    lines.push(bottom(width));
    (row, cursor_col)
}

fn top(width: usize) -> String {
    format!("╭{}╮", "─".repeat(width.saturating_sub(2)))
}

fn bottom(width: usize) -> String {
    format!("╰{}╯", "─".repeat(width.saturating_sub(2)))
}

/// `│ text… │`, padded or cut to exactly `width` columns.
fn boxed(text: &str, width: usize) -> String {
    let inner = width.saturating_sub(2 * BORDER);
    let text = fit(text, inner);
    let pad = inner - width_of(&text);
    format!("│ {text}{} │", " ".repeat(pad))
}

/// `text` cut to at most `width` columns, ending in `…` when cut.
pub(crate) fn fit(text: &str, width: usize) -> String {
    if width_of(text) <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// The end of `text` that fits in `width` columns, starting with `…` when cut.
fn tail(text: &str, width: usize) -> String {
    if width_of(text) <= width {
        return text.to_owned();
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        kept.push(c);
        used += w;
    }
    let mut out = String::from(if width > 0 { "…" } else { "" });
    out.extend(kept.into_iter().rev());
    out
}

/// `text` in rows of at most `width` columns (one empty row for an empty
/// text), cut between characters.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut rows = vec![String::new()];
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w > width.max(1) && used > 0 {
            rows.push(String::new());
            used = 0;
        }
        rows.last_mut().expect("never empty").push(c);
        used += w;
    }
    rows
}

/// Columns `text` takes on a terminal.
pub(crate) fn width_of(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// Columns one character takes: an approximation of East Asian Width good
/// enough for CJK, Hangul and emoji typed into the composer. (A full table
/// would need the unicode-width crate; every glyph this agent draws itself
/// is one column.)
fn char_width(c: char) -> usize {
    match u32::from(c) {
        0..=0x1f | 0x7f..=0x9f => 0,
        // Combining marks, zero-width spaces and joiners, variation selectors.
        0x300..=0x36f | 0x200b..=0x200f | 0x20d0..=0x20ff | 0xfe00..=0xfe0f => 0,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 60;

    fn assert_fits(region: &LiveRegion, width: usize) {
        for line in &region.lines {
            assert!(width_of(line) <= width, "{line:?} is wider than {width}");
        }
        assert!(region.cursor_row < region.lines.len());
        assert!(region.cursor_col < width.max(1));
    }

    fn all_views(long: &str) -> Vec<View<'_>> {
        vec![
            View::Booting,
            View::Idle { input: "", exit_hint: false },
            View::Idle { input: "hello", exit_hint: false },
            View::Idle { input: "", exit_hint: true },
            View::Idle { input: long, exit_hint: false },
            View::Busy { input: "", spinner: '⠋', secs: 3 },
            View::Busy { input: long, spinner: '⠙', secs: 12 },
            View::Approval { cmd: "touch x.txt" },
            View::Approval { cmd: long },
        ]
    }

    #[test]
    fn idle_screen_at_width_60() {
        let region = live_region(&View::Idle { input: "", exit_hint: false }, W);
        assert_eq!(
            region.lines,
            [
                format!("╭{}╮", "─".repeat(58)),
                format!("│ > Type a task for mock{} │", " ".repeat(34)),
                format!("╰{}╯", "─".repeat(58)),
                "  ? for shortcuts · /exit to quit".to_owned(),
            ]
        );
        assert_eq!((region.cursor_row, region.cursor_col), (1, 4));
        assert!(region.lines.iter().take(3).all(|line| width_of(line) == W));
    }

    #[test]
    fn typed_screen() {
        let region = live_region(&View::Idle { input: "hello", exit_hint: false }, W);
        assert!(region.lines[1].starts_with("│ > hello "));
        assert_eq!(region.lines[3], "  enter to send");
        assert_eq!((region.cursor_row, region.cursor_col), (1, 9));
    }

    #[test]
    fn exit_hint_screen() {
        let region = live_region(&View::Idle { input: "", exit_hint: true }, W);
        assert_eq!(region.lines[3], "  Press Ctrl-C again to exit");
    }

    #[test]
    fn busy_screen() {
        let region = live_region(&View::Busy { input: "", spinner: '⠋', secs: 3 }, W);
        assert_eq!(region.lines[0], "⠋ Working… (3s · esc to interrupt)");
        assert!(region.lines[2].starts_with("│ > Type a task for mock "));
        assert_eq!(region.lines[4], "  esc to interrupt");
        assert_eq!(region.cursor_row, 2);
    }

    #[test]
    fn approval_screen() {
        let region = live_region(&View::Approval { cmd: "touch x.txt" }, W);
        assert_eq!(
            region.lines,
            [
                format!("╭─ Permission {}╮", "─".repeat(45)),
                format!("│ Allow mock to run `touch x.txt`?{} │", " ".repeat(24)),
                format!("│ ❯ 1. Yes   2. No{} │", " ".repeat(40)),
                format!("╰{}╯", "─".repeat(58)),
                "  [y/n] y or enter to allow · n or esc to deny".to_owned(),
            ]
        );
    }

    #[test]
    fn long_input_keeps_its_end() {
        let input = format!("{}END", "x".repeat(100));
        let region = live_region(&View::Idle { input: &input, exit_hint: false }, W);
        let line = &region.lines[1];
        assert!(line.starts_with("│ > …xxx"), "{line}");
        assert!(line.ends_with("END │"), "{line}");
        assert_eq!(width_of(line), W);
        assert_eq!(region.cursor_col, W - 2);
    }

    #[test]
    fn multi_line_input_stays_on_one_row() {
        let region = live_region(&View::Idle { input: "a\nb", exit_hint: false }, W);
        assert!(region.lines[1].starts_with("│ > a↵b "));
    }

    #[test]
    fn no_line_is_wider_than_the_terminal() {
        let long = "long words 世界 ".repeat(20);
        for width in [0, 1, 2, 5, 10, 20, 33, 60, 61, 80, 200] {
            for view in all_views(&long) {
                assert_fits(&live_region(&view, width), width);
            }
        }
    }

    #[test]
    fn wide_characters_are_measured() {
        assert_eq!(width_of("世界"), 4);
        assert_eq!(width_of("e\u{301}"), 1);
        assert_eq!(width_of("╭─╮│❯⠋…●✻■✔✗"), 12);
        assert_eq!(fit("世界世界", 5), "世界…");
        assert_eq!(tail("世界世界", 5), "…世界");
    }

    #[test]
    fn wrap_cuts_rows_at_the_width() {
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("a世界", 4), ["a世", "界"]);
    }
}
