//! Colour on a terminal, and when to use it.
//!
//! Escape sequences go only to a stream that is a terminal, so a script that
//! parses reins' output always reads plain text. The usual conventions
//! decide, in this order: `NO_COLOR` (set and not empty) turns colour off,
//! `CLICOLOR_FORCE` (not `0`) turns it on even without a terminal,
//! `CLICOLOR=0` and `TERM=dumb` turn it off. clap's own help follows the
//! same rules.

use std::io::IsTerminal;

/// A standard stream reins writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// Whether reins may colour what it writes to `stream`.
pub(crate) fn color_on(stream: Stream) -> bool {
    decide(|key| std::env::var(key).ok(), || stream.is_terminal())
}

/// Whether a progress line may be drawn (and redrawn) on standard error:
/// only on a terminal that can move the cursor. It is not colour, so
/// `NO_COLOR` leaves it on (uncoloured).
pub(crate) fn progress_on() -> bool {
    std::env::var("TERM").map_or(true, |t| t != "dumb") && Stream::Stderr.is_terminal()
}

fn decide(var: impl Fn(&str) -> Option<String>, terminal: impl Fn() -> bool) -> bool {
    if var("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    if var("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    if var("CLICOLOR").is_some_and(|v| v == "0") || var("TERM").is_some_and(|t| t == "dumb") {
        return false;
    }
    terminal()
}

/// Paints text for one stream: with ANSI colours when `color_on`, as it
/// is otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paint {
    on: bool,
}

impl Paint {
    /// The paint for `stream`, decided once.
    pub(crate) fn new(stream: Stream) -> Paint {
        Paint { on: color_on(stream) }
    }

    /// A paint that never colours.
    #[cfg(test)]
    pub(crate) fn plain() -> Paint {
        Paint { on: false }
    }

    fn wrap(self, sgr: &str, text: &str) -> String {
        if self.on && !text.is_empty() {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub(crate) fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }

    pub(crate) fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }

    pub(crate) fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }

    pub(crate) fn cyan(self, text: &str) -> String {
        self.wrap("36", text)
    }

    pub(crate) fn dim(self, text: &str) -> String {
        self.wrap("2", text)
    }

    pub(crate) fn bold_red(self, text: &str) -> String {
        self.wrap("1;31", text)
    }

    /// A session state as `status` shows it: ready green, busy yellow,
    /// blocked red, the ended and unknown ones dim.
    pub(crate) fn state(self, state: &str) -> String {
        match state.split('{').next().unwrap_or(state) {
            "ready" => self.green(state),
            "busy" | "starting" => self.yellow(state),
            "blocked" | "dead" | "disconnected" => self.red(state),
            "exited" | "unknown" => self.dim(state),
            _ => state.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)], terminal: bool) -> bool {
        decide(|key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string()), || terminal)
    }

    #[test]
    fn colour_follows_no_color_then_clicolor_force_then_the_terminal() {
        assert!(with(&[], true));
        assert!(!with(&[], false));
        assert!(!with(&[("NO_COLOR", "1")], true));
        assert!(with(&[("NO_COLOR", "")], true), "an empty NO_COLOR is unset");
        assert!(!with(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")], true));
        assert!(with(&[("CLICOLOR_FORCE", "1")], false));
        assert!(!with(&[("CLICOLOR_FORCE", "0")], false));
        assert!(!with(&[("CLICOLOR", "0")], true));
        assert!(!with(&[("TERM", "dumb")], true));
    }

    #[test]
    fn paint_off_is_the_text_itself() {
        let off = Paint { on: false };
        assert_eq!(off.state("blocked{approval}"), "blocked{approval}");
        let on = Paint { on: true };
        assert_eq!(on.state("ready"), "\x1b[32mready\x1b[0m");
        assert_eq!(on.state("blocked{approval}"), "\x1b[31mblocked{approval}\x1b[0m");
    }
}
