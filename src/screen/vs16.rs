//! U+FE0F (VS16, "emoji presentation") read the way tmux reads it.
//!
//! The agents write `⚠️` (U+26A0 U+FE0F) and lay the row out as if it
//! took two columns. tmux 3.3 keeps the cell one column wide (VS16 is a
//! zero-width mark on it), vt100 0.18 widens the cell to two columns when
//! VS16 arrives. So the two screens differ by a blank after the sign, and
//! where Codex keeps writing without repositioning, vt100 shifts the rest
//! of the row and then cuts a wide character in half
//! (`reference/screen-emulation-spike.md`, section 2).
//!
//! The host reads screens the way its tmux panes show them: before vt100
//! sees the bytes, every VS16 becomes a stand-in that vt100 also appends
//! to the cell as a zero-width mark but that does not widen it (VS256,
//! U+E01EF, a selector no font or agent uses alone), and text taken back
//! out of vt100 has the stand-in turned back into VS16.

use std::borrow::Cow;

/// U+FE0F in UTF-8.
const VS16: &[u8] = "\u{fe0f}".as_bytes();
/// U+E01EF in UTF-8: zero width for vt100, and it never widens a cell.
const STAND_IN: &[u8] = "\u{e01ef}".as_bytes();
const STAND_IN_CHAR: char = '\u{e01ef}';

/// Rewrites a byte stream fed in chunks: a VS16 split between two chunks
/// is held back (at most two bytes of an unfinished character, which vt100
/// would hold too) until the next chunk completes or refutes it.
#[derive(Debug, Default)]
pub(crate) struct Vs16Filter {
    held: Vec<u8>,
}

impl Vs16Filter {
    /// `bytes` with each VS16 replaced by the stand-in.
    pub(crate) fn filter<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.held.is_empty() && !bytes.contains(&VS16[0]) {
            return Cow::Borrowed(bytes);
        }
        let mut input = std::mem::take(&mut self.held);
        input.extend_from_slice(bytes);
        // A trailing prefix of VS16 waits for the rest.
        let keep = (1..VS16.len()).rev().find(|n| input.ends_with(&VS16[..*n])).unwrap_or(0);
        self.held = input.split_off(input.len() - keep);
        let mut out = Vec::with_capacity(input.len() + 8);
        let mut rest = input.as_slice();
        while let Some(at) = find(rest, VS16) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(STAND_IN);
            rest = &rest[at + VS16.len()..];
        }
        out.extend_from_slice(rest);
        Cow::Owned(out)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Text taken from vt100 (rows, titles, a formatted screen) with VS16
/// where the stream had it.
pub(crate) fn restore(text: String) -> String {
    if text.contains(STAND_IN_CHAR) { text.replace(STAND_IN_CHAR, "\u{fe0f}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen_row(chunks: &[&[u8]]) -> String {
        let mut filter = Vs16Filter::default();
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(size(2), size(20), 0);
        for chunk in chunks {
            parser.process(&filter.filter(chunk));
        }
        restore(parser.screen().rows(0, 20).next().unwrap())
    }

    #[test]
    fn vs16_keeps_the_cell_one_column_wide_as_in_tmux() {
        // tmux 3.3a: `⚠️` takes one column, `x` follows at once.
        assert_eq!(screen_row(&["a⚠\u{fe0f}x".as_bytes()]), "a⚠\u{fe0f}x");
        // An agent that lays `⚠️` out as two columns moves past the blank.
        assert_eq!(screen_row(&["⚠\u{fe0f}\x1b[3Gx".as_bytes()]), "⚠\u{fe0f} x");
    }

    #[test]
    fn a_vs16_split_between_reads_is_still_found() {
        let bytes = "a⚠\u{fe0f}x".as_bytes();
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let chunks = [&bytes[..cut], &bytes[cut..second], &bytes[second..]];
                assert_eq!(screen_row(&chunks), "a⚠\u{fe0f}x", "cut at {cut} and {second}");
            }
        }
    }

    #[test]
    fn other_characters_pass_unchanged() {
        let mut filter = Vs16Filter::default();
        // U+FFFD and U+F8FF start with the same byte as VS16.
        let text = "\u{fffd}\u{f8ff} plain \u{fe0e}";
        let mut out = filter.filter(&text.as_bytes()[..4]).into_owned();
        out.extend_from_slice(&filter.filter(&text.as_bytes()[4..]));
        assert_eq!(out, text.as_bytes());
        assert!(matches!(filter.filter(b"ascii"), Cow::Borrowed(_)));
    }
}
