//! Turns raw terminal input bytes into the few keys the mock agent knows.
//!
//! Bytes arrive in arbitrary chunks (a PTY read, a pipe read), so the decoder
//! keeps state across chunks: a UTF-8 character, an escape sequence or a
//! bracketed paste may be split anywhere. Escape sequences the agent has no
//! use for (arrows, focus events, mouse reports, terminal replies) are
//! swallowed whole so they never leak into the composer as text.

/// One thing the user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    /// Printable text typed key by key.
    Text(String),
    /// The body of a bracketed paste, newlines kept as `\n`.
    Paste(String),
    Enter,
    Backspace,
    /// Esc pressed on its own (not the start of a sequence).
    Esc,
    CtrlC,
    CtrlD,
    /// Ctrl-U: clear the composer, as in a shell.
    ClearLine,
}

const ESC: u8 = 0x1b;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// Where the decoder is between two chunks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    /// Just saw ESC.
    Escape,
    /// Inside `ESC [` (CSI): parameters until a final byte.
    Csi,
    /// Inside `ESC O` (SS3): one more byte.
    Ss3,
    /// Inside an X10 mouse report `CSI M`: this many raw bytes still to skip.
    Mouse(u8),
    /// Inside OSC/DCS/APC/PM/SOS: until BEL or `ESC \`.
    String { saw_esc: bool },
    /// Inside a bracketed paste.
    Paste,
}

/// A stateful byte-to-key decoder.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    state: State,
    /// Bytes of the current CSI sequence (to recognise paste start).
    seq: Vec<u8>,
    /// An incomplete UTF-8 character, or paste bytes collected so far.
    pending: Vec<u8>,
    /// Text decoded in this chunk, flushed as one `Key::Text`.
    text: String,
}

impl Decoder {
    /// Decodes one chunk of input.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut keys = Vec::new();
        for &byte in bytes {
            self.byte(byte, &mut keys);
        }
        self.flush_text(&mut keys);
        keys
    }

    /// Whether the input so far ends in a lone ESC or an unfinished escape
    /// sequence; the caller then calls [`Decoder::timeout`] if nothing
    /// follows shortly, because a lone ESC is the Esc key.
    pub(crate) fn is_waiting(&self) -> bool {
        matches!(self.state, State::Escape | State::Csi | State::Ss3 | State::Mouse(_))
    }

    /// Nothing followed a pending ESC: it was the Esc key; an unfinished
    /// sequence is dropped.
    pub(crate) fn timeout(&mut self) -> Vec<Key> {
        let state = std::mem::take(&mut self.state);
        self.seq.clear();
        if state == State::Escape { vec![Key::Esc] } else { Vec::new() }
    }

    fn byte(&mut self, byte: u8, keys: &mut Vec<Key>) {
        match self.state {
            State::Ground => self.ground(byte, keys),
            State::Escape => match byte {
                b'[' => {
                    self.state = State::Csi;
                    self.seq.clear();
                    self.seq.extend_from_slice(b"\x1b[");
                }
                b'O' => self.state = State::Ss3,
                b']' | b'P' | b'_' | b'^' | b'X' => {
                    self.state = State::String { saw_esc: false };
                }
                ESC => {
                    // ESC ESC: the first one was the Esc key.
                    self.flush_text(keys);
                    keys.push(Key::Esc);
                }
                _ => {
                    // ESC + key is Alt+key, which a keyboard-only agent
                    // treats as Esc followed by the key, so a fast Esc then
                    // typing (one read) is not lost.
                    self.flush_text(keys);
                    keys.push(Key::Esc);
                    self.state = State::Ground;
                    self.ground(byte, keys);
                }
            },
            State::Csi => {
                self.seq.push(byte);
                if (0x40..=0x7e).contains(&byte) {
                    self.state = State::Ground;
                    if self.seq == PASTE_START {
                        self.flush_text(keys);
                        self.pending.clear();
                        self.state = State::Paste;
                    } else if self.seq == b"\x1b[M" {
                        self.state = State::Mouse(3);
                    }
                    self.seq.clear();
                } else if !(0x20..=0x3f).contains(&byte) || self.seq.len() > 64 {
                    // Not a well-formed CSI: drop it rather than guess.
                    self.state = State::Ground;
                    self.seq.clear();
                }
            }
            State::Ss3 => self.state = State::Ground,
            State::Mouse(left) => {
                self.state = if left > 1 { State::Mouse(left - 1) } else { State::Ground };
            }
            State::String { saw_esc } => {
                self.state = match byte {
                    0x07 => State::Ground,
                    b'\\' if saw_esc => State::Ground,
                    ESC => State::String { saw_esc: true },
                    _ => State::String { saw_esc: false },
                };
            }
            State::Paste => {
                self.pending.push(byte);
                if self.pending.ends_with(PASTE_END) {
                    let body_len = self.pending.len() - PASTE_END.len();
                    let body = String::from_utf8_lossy(&self.pending[..body_len]);
                    keys.push(Key::Paste(clean_paste(&body)));
                    self.pending.clear();
                    self.state = State::Ground;
                }
            }
        }
    }

    fn ground(&mut self, byte: u8, keys: &mut Vec<Key>) {
        if byte >= 0x80 {
            self.utf8(byte);
            return;
        }
        // An unfinished UTF-8 character cut short by ASCII is invalid.
        self.pending.clear();
        let key = match byte {
            ESC => {
                self.state = State::Escape;
                return;
            }
            b'\r' | b'\n' => Key::Enter,
            0x7f | 0x08 => Key::Backspace,
            0x03 => Key::CtrlC,
            0x04 => Key::CtrlD,
            0x15 => Key::ClearLine,
            0x20..=0x7e => {
                self.text.push(char::from(byte));
                return;
            }
            // Tab and the other control keys mean nothing to this agent.
            _ => return,
        };
        self.flush_text(keys);
        keys.push(key);
    }

    /// Collects a multi-byte UTF-8 character; invalid bytes are dropped.
    fn utf8(&mut self, byte: u8) {
        self.pending.push(byte);
        match std::str::from_utf8(&self.pending) {
            Ok(text) => {
                self.text.push_str(text);
                self.pending.clear();
            }
            Err(err) if err.error_len().is_some() => self.pending.clear(),
            Err(_) => {} // incomplete: wait for the next byte
        }
    }

    fn flush_text(&mut self, keys: &mut Vec<Key>) {
        if !self.text.is_empty() {
            keys.push(Key::Text(std::mem::take(&mut self.text)));
        }
    }
}

/// Normalises a paste body: terminals send line ends as CR; tabs become a
/// space and other control characters are dropped so the composer can be
/// measured one column per character.
fn clean_paste(body: &str) -> String {
    let body = body.replace("\r\n", "\n").replace('\r', "\n");
    body.chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Key {
        Key::Text(s.to_owned())
    }

    #[test]
    fn plain_keys() {
        let mut d = Decoder::default();
        assert_eq!(
            d.feed(b"hi\x7f!\r\x03\x04\x08\x15"),
            vec![
                text("hi"),
                Key::Backspace,
                text("!"),
                Key::Enter,
                Key::CtrlC,
                Key::CtrlD,
                Key::Backspace,
                Key::ClearLine
            ]
        );
    }

    #[test]
    fn utf8_split_across_chunks() {
        let mut d = Decoder::default();
        let bytes = "é世".as_bytes();
        assert_eq!(d.feed(&bytes[..1]), vec![]);
        assert_eq!(d.feed(&bytes[1..3]), vec![text("é")]);
        assert_eq!(d.feed(&bytes[3..]), vec![text("世")]);
    }

    #[test]
    fn lone_esc_waits_for_the_timeout() {
        let mut d = Decoder::default();
        assert_eq!(d.feed(b"\x1b"), vec![]);
        assert!(d.is_waiting());
        assert_eq!(d.timeout(), vec![Key::Esc]);
        assert!(!d.is_waiting());
    }

    #[test]
    fn sequence_split_across_chunks_is_not_esc() {
        let mut d = Decoder::default();
        assert_eq!(d.feed(b"\x1b"), vec![]);
        assert_eq!(d.feed(b"[A"), vec![]);
        assert!(!d.is_waiting());
    }

    #[test]
    fn esc_followed_by_a_key_in_one_read() {
        let mut d = Decoder::default();
        assert_eq!(d.feed(b"\x1bx"), vec![Key::Esc, text("x")]);
        assert_eq!(d.feed(b"\x1b\x1b"), vec![Key::Esc]);
        assert_eq!(d.timeout(), vec![Key::Esc]);
    }

    #[test]
    fn other_sequences_are_ignored() {
        let mut d = Decoder::default();
        // arrows, SS3 F1, focus in/out, SGR mouse, X10 mouse, OSC reply, DCS reply
        let input = b"a\x1b[A\x1b[1;5C\x1bOPb\x1b[I\x1b[O\x1b[<0;3;4Mc\x1b[M !!d\x1b]11;rgb:0/0/0\x07e\x1bP>|tmux\x1b\\f";
        assert_eq!(d.feed(input), vec![text("abcdef")]);
    }

    #[test]
    fn bracketed_paste_keeps_newlines_and_controls_are_literal() {
        let mut d = Decoder::default();
        assert_eq!(
            d.feed(b"x\x1b[200~one\r\ntwo\x03\tthree\x1b[A"),
            vec![text("x")],
            "paste body waits for its end"
        );
        assert_eq!(
            d.feed(b"\x1b[20"),
            vec![],
            "partial end marker is kept in the body until complete"
        );
        assert_eq!(d.feed(b"1~\r"), vec![Key::Paste("one\ntwo three[A".into()), Key::Enter]);
    }
}
