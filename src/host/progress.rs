//! When the agent last got somewhere, and how reins knows.
//!
//! `reins watch` decides whether a session is stalled from this, so it
//! must not mistake motion for progress. In order of trust:
//!
//! - **protocol**: every message a structured transport receives (items,
//!   token usage, turn notifications) is progress;
//! - **turn**: a message delivered, a turn started or ended, an approval
//!   answered;
//! - **screen**: the settled screen's text changed outside the lines the
//!   profile's `[progress] ignore` patterns match (spinners, elapsed-time
//!   counters), so an agent whose spinner turns while its model hangs still
//!   reads as making no progress.
//!
//! Nothing here is timed: the host records instants when things happen, and
//! the watcher does the arithmetic when it asks.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::screen::ScreenText;
use crate::time;

/// How the last progress was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// The session started (no progress seen since).
    Start,
    /// A structured transport message.
    Protocol,
    /// A turn event.
    Turn,
    /// The screen changed meaningfully.
    Screen,
}

/// The last progress of one run.
#[derive(Debug)]
pub(crate) struct Progress {
    at: Instant,
    at_wall: String,
    source: Source,
    /// Digest of the screen lines that count, as last seen.
    screen: Option<u64>,
}

/// What `status` says about progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProgressReport {
    /// When (RFC 3339).
    pub(crate) at: String,
    /// Seconds since then.
    pub(crate) idle_s: f64,
    pub(crate) source: Source,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            at: Instant::now(),
            at_wall: time::now_rfc3339(),
            source: Source::Start,
            screen: None,
        }
    }

    /// Records progress seen just now.
    pub(crate) fn note(&mut self, source: Source) {
        self.at = Instant::now();
        self.at_wall = time::now_rfc3339();
        self.source = source;
    }

    /// Looks at a settled screen: progress if the lines that count differ
    /// from the last screen's.
    pub(crate) fn screen(&mut self, text: &ScreenText, ignore: &[Regex]) {
        let digest = digest(text, ignore);
        if self.screen.is_some_and(|last| last != digest) {
            self.note(Source::Screen);
        }
        self.screen = Some(digest);
    }

    pub(crate) fn report(&self) -> ProgressReport {
        let idle_s = (self.at.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        ProgressReport { at: self.at_wall.clone(), idle_s, source: self.source }
    }
}

/// A digest of the rows no ignore pattern matches.
fn digest(text: &ScreenText, ignore: &[Regex]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for row in text.rows.iter().filter(|row| !ignore.iter().any(|re| re.is_match(row))) {
        row.hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(rows: &[&str]) -> ScreenText {
        ScreenText::from_text(&rows.join("\n"))
    }

    #[test]
    fn a_turning_spinner_is_not_progress_but_new_output_is() {
        let ignore = [Regex::new("esc to interrupt").unwrap()];
        let mut p = Progress::new();
        p.screen(&screen(&["> task", "⠙ Working… (1s · esc to interrupt)"]), &ignore);
        assert_eq!(p.source, Source::Start, "the first screen is the baseline");
        p.screen(&screen(&["> task", "⠹ Working… (2s · esc to interrupt)"]), &ignore);
        assert_eq!(p.source, Source::Start, "only the spinner line changed");
        p.screen(
            &screen(&["> task", "· step 1 done", "⠸ Working… (3s · esc to interrupt)"]),
            &ignore,
        );
        assert_eq!(p.source, Source::Screen);
    }

    #[test]
    fn without_ignore_patterns_any_change_counts() {
        let mut p = Progress::new();
        p.screen(&screen(&["$ make", "[1/3]"]), &[]);
        p.screen(&screen(&["$ make", "[2/3]"]), &[]);
        assert_eq!(p.source, Source::Screen);
    }

    #[test]
    fn notes_move_the_time_and_source() {
        let mut p = Progress::new();
        let before = p.report();
        p.note(Source::Protocol);
        let after = p.report();
        assert_eq!(after.source, Source::Protocol);
        assert!(after.at >= before.at, "timestamps of one format sort by time");
    }
}
