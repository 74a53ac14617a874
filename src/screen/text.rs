//! A plain-text snapshot of a screen: what `pane` shows and what adapter
//! rules are matched against.
//!
//! The rows are the screen exactly as tmux's `capture-pane -p` prints it
//! (only trailing ASCII spaces dropped; a no-break space stays), so `pane`
//! and `pane --tmux` agree character for character. Rules read them through
//! [`ScreenText::matching_rows`], which puts U+00A0 (Claude writes `❯` and
//! `⎿` followed by one) back to a plain space, so a profile never has to
//! spell the no-break space.

use serde::Serialize;

/// The visible text of a screen at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ScreenText {
    /// Visible rows, top to bottom, as tmux shows them: trailing spaces
    /// trimmed, nothing else changed.
    pub(crate) rows: Vec<String>,
    /// Cursor row (0-based from the top).
    pub(crate) cursor_row: usize,
    /// Cursor column (0-based).
    pub(crate) cursor_col: usize,
    /// The window title the agent set, if any.
    pub(crate) title: String,
    /// Whether the agent is on the alternate screen.
    pub(crate) alternate: bool,
}

impl ScreenText {
    /// Builds a snapshot from text rows (used for example screens and
    /// `adapters explain --screen FILE`). The cursor is put on the last
    /// non-empty row.
    pub(crate) fn from_text(text: &str) -> ScreenText {
        let rows: Vec<String> = text.lines().map(|r| exact_row(r).to_string()).collect();
        let cursor_row = rows.iter().rposition(|r| !r.trim().is_empty()).unwrap_or(0);
        let cursor_col = rows.get(cursor_row).map_or(0, |r| r.chars().count());
        ScreenText { rows, cursor_row, cursor_col, title: String::new(), alternate: false }
    }

    /// The rows as rules read them: no-break spaces as spaces, trailing
    /// whitespace trimmed.
    pub(crate) fn matching_rows(&self) -> Vec<String> {
        self.rows.iter().map(|r| normalise_row(r)).collect()
    }
}

/// A row as `tmux capture-pane -p` prints it: trailing ASCII spaces
/// dropped, a trailing no-break space (Claude's empty prompt) kept.
pub(crate) fn exact_row(row: &str) -> &str {
    row.trim_end_matches(' ')
}

/// Trims trailing whitespace and replaces no-break spaces: the text rules
/// match and `logs` prints.
pub(crate) fn normalise_row(row: &str) -> String {
    let row = row.trim_end();
    if row.contains('\u{a0}') { row.replace('\u{a0}', " ") } else { row.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_exact_and_rules_read_them_normalised() {
        let text = ScreenText::from_text("❯\u{a0}\n  ⎿ \u{a0}Done   \nlast");
        assert_eq!(text.rows, ["❯\u{a0}", "  ⎿ \u{a0}Done", "last"]);
        assert_eq!(text.matching_rows(), ["❯", "  ⎿  Done", "last"]);
        assert_eq!(text.cursor_row, 2);
    }
}
