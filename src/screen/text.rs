//! A plain-text snapshot of a screen: what adapter rules are matched against.

use serde::Serialize;

/// The visible text of a screen at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ScreenText {
    /// Visible rows, top to bottom, trailing blanks trimmed, U+00A0
    /// normalised to a space (Claude's prompt uses it).
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
        let rows: Vec<String> = text.lines().map(normalise_row).collect();
        let cursor_row = rows.iter().rposition(|r| !r.is_empty()).unwrap_or(0);
        let cursor_col = rows.get(cursor_row).map_or(0, |r| r.chars().count());
        ScreenText { rows, cursor_row, cursor_col, title: String::new(), alternate: false }
    }
}

/// Trims trailing whitespace and replaces no-break spaces.
pub(crate) fn normalise_row(row: &str) -> String {
    let row = row.trim_end();
    if row.contains('\u{a0}') { row.replace('\u{a0}', " ") } else { row.to_string() }
}
