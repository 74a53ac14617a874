//! Bytes rewritten on their way into vt100, where vt100 0.18.1 reads them
//! differently from tmux (the terminal reins runs agents in, and the one
//! `pane --tmux` and the recorded reference screens come from).
//!
//! - **IND and NEL** (`ESC D`, `ESC E`): vt100 ignores them, so a program
//!   that pushes lines up a scroll region with IND at its bottom margin
//!   scrolls nothing, and those lines never reach the history. With no
//!   newline mode in vt100, LF is exactly IND there, and CR LF exactly NEL;
//!   each becomes `ESC \` (a no-op for vt100, so the parser walks through
//!   the same states as for the original escape: a sequence it interrupts
//!   ends the same way) followed by LF or CR LF.
//! - **VS16** (U+FE0F, "emoji presentation"): the agents write `⚠️`
//!   (U+26A0 U+FE0F) and lay the row out as if it took two columns. tmux
//!   3.3 keeps the cell one column wide (VS16 is a zero-width mark on it);
//!   vt100 widens the cell when VS16 arrives, so its row has one blank less
//!   than tmux's, and where Codex keeps writing without repositioning, the
//!   rest of the row shifts and a wide character is cut in half
//!   (`reference/screen-emulation-spike.md`, section 2). Every VS16 becomes
//!   a stand-in that vt100 also appends to the cell as a zero-width mark
//!   but that never widens it (VS256, U+E01EF, a selector nothing uses on
//!   its own); text taken back out of vt100 goes through [`restore`].
//!
//! Output arrives in chunks that can split a sequence: up to two trailing
//! bytes that may begin one are held back until the next chunk (bytes of
//! an unfinished escape or character, which vt100 would not have acted on
//! yet either).

use std::borrow::Cow;

const ESC: u8 = 0x1b;
/// U+FE0F in UTF-8.
const VS16: &[u8] = "\u{fe0f}".as_bytes();
/// U+E01EF in UTF-8: zero width for vt100, and it never widens a cell.
const STAND_IN: &[u8] = "\u{e01ef}".as_bytes();
const STAND_IN_CHAR: char = '\u{e01ef}';
/// What `ESC D` (IND) and `ESC E` (NEL) become.
const IND: &[u8] = b"\x1b\\\n";
const NEL: &[u8] = b"\x1b\\\r\n";

/// The rewriting state of one byte stream.
#[derive(Debug, Default)]
pub(crate) struct Fixup {
    held: Vec<u8>,
}

impl Fixup {
    /// `bytes` (after what was held back) rewritten for vt100.
    pub(crate) fn apply<'a>(&mut self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.held.is_empty() && hold(bytes) == 0 && !needs_rewrite(bytes) {
            return Cow::Borrowed(bytes);
        }
        let mut input = std::mem::take(&mut self.held);
        input.extend_from_slice(bytes);
        let keep = hold(&input);
        self.held = input.split_off(input.len() - keep);
        let mut out = Vec::with_capacity(input.len() + 16);
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            let (replacement, len): (&[u8], usize) = match rest {
                [ESC, b'D', ..] => (IND, 2),
                [ESC, b'E', ..] => (NEL, 2),
                _ if rest.starts_with(VS16) => (STAND_IN, VS16.len()),
                [byte, ..] => (std::slice::from_ref(byte), 1),
                [] => unreachable!("i < len"),
            };
            out.extend_from_slice(replacement);
            i += len;
        }
        Cow::Owned(out)
    }
}

fn needs_rewrite(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == [ESC, b'D'] || w == [ESC, b'E'])
        || bytes.windows(VS16.len()).any(|w| w == VS16)
}

/// How many trailing bytes of `bytes` may begin a sequence to rewrite.
fn hold(bytes: &[u8]) -> usize {
    match bytes {
        [.., ESC] => 1,
        [.., a, b] if [*a, *b] == VS16[..2] => 2,
        [.., a] if *a == VS16[0] => 1,
        _ => 0,
    }
}

/// Text taken from vt100 (rows, titles, a formatted screen) with VS16
/// where the stream had it.
pub(crate) fn restore(text: String) -> String {
    if text.contains(STAND_IN_CHAR) { text.replace(STAND_IN_CHAR, "\u{fe0f}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of a 4×20 vt100 screen fed `chunks` through a [`Fixup`],
    /// and how many rows went into its scrollback.
    fn screen(chunks: &[&[u8]]) -> (Vec<String>, usize) {
        let mut fixup = Fixup::default();
        let size = |n| std::num::NonZeroU16::new(n).unwrap();
        let mut parser = vt100::Parser::new(size(4), size(20), 100);
        for chunk in chunks {
            parser.process(&fixup.apply(chunk));
        }
        let rows = parser.screen().rows(0, 20).map(restore).collect();
        parser.screen_mut().set_scrollback(usize::MAX);
        (rows, parser.screen().scrollback())
    }

    /// Every way of cutting `bytes` into three reads gives the same screen.
    fn same_in_any_chunks(bytes: &[u8]) -> (Vec<String>, usize) {
        let whole = screen(&[bytes]);
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let chunks = [&bytes[..cut], &bytes[cut..second], &bytes[second..]];
                assert_eq!(screen(&chunks), whole, "cut at {cut} and {second}");
            }
        }
        whole
    }

    #[test]
    fn vs16_keeps_the_cell_one_column_wide_as_in_tmux() {
        // tmux 3.3a: `⚠️` takes one column, `x` follows at once.
        let (rows, _) = same_in_any_chunks("a⚠\u{fe0f}x".as_bytes());
        assert_eq!(rows[0], "a⚠\u{fe0f}x");
        // An agent that lays `⚠️` out as two columns moves past the blank.
        assert_eq!(screen(&["⚠\u{fe0f}\x1b[3Gx".as_bytes()]).0[0], "⚠\u{fe0f} x");
    }

    #[test]
    fn ind_and_nel_scroll_a_region_at_its_bottom_margin() {
        // Region rows 1..3, a footer below it; IND at the margin keeps the
        // column, NEL goes back to column 0, both push row 1 off the top.
        let (rows, gone) =
            same_in_any_chunks(b"\x1b[4;1Hfoot\x1b[1;3r\x1b[1;1Hl1\r\nl2\r\nab\x1bDc\x1bEd");
        assert_eq!(rows, ["ab", "  c", "d", "foot"]);
        assert_eq!(gone, 2, "l1 and l2 left through the region's top");
        // Above the margin IND only moves down.
        let (rows, gone) = screen(&[b"a\x1bDb\x1bEc"]);
        assert_eq!(rows, ["a", " b", "c", ""]);
        assert_eq!(gone, 0);
    }

    #[test]
    fn an_interrupted_sequence_ends_as_it_would_have() {
        // ESC inside a CSI or after a lone ESC starts the IND afresh.
        let (rows, _) = screen(&[b"x\x1b[1\x1bDy\x1b\x1bEz"]);
        assert_eq!(rows, ["x", " y", "z", ""]);
    }

    #[test]
    fn other_bytes_pass_unchanged() {
        let mut fixup = Fixup::default();
        // U+FFFD and U+F8FF start with the same byte as VS16; ESC [ D is
        // a cursor move.
        let text = "\u{fffd}\u{f8ff} \x1b[D plain \u{fe0e}";
        let mut out = fixup.apply(&text.as_bytes()[..4]).into_owned();
        out.extend_from_slice(&fixup.apply(&text.as_bytes()[4..]));
        assert_eq!(out, text.as_bytes());
        assert!(matches!(fixup.apply(b"plain \x1b[1;2H text"), Cow::Borrowed(_)));
    }
}
