//! The controlling terminal: raw mode with guaranteed restore, and its size.
//!
//! Only what the relay and the mock agent need; bytes are never decoded into
//! key events (that would lose bracketed paste and kitty sequences), they are
//! copied as they are.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::termios::{self, OptionalActions, Termios};

use crate::store::registry::Size;

/// Puts a terminal into raw mode and restores the previous mode on drop
/// (including when unwinding from a panic).
pub(crate) struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Enters raw mode on `fd`; `None` if it is not a terminal.
    pub(crate) fn enter(fd: BorrowedFd<'fd>) -> Option<RawMode<'fd>> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, OptionalActions::Flush, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, OptionalActions::Now, &self.saved);
    }
}

/// Whether `fd` is a terminal.
pub(crate) fn is_tty(fd: impl AsFd) -> bool {
    termios::isatty(fd)
}

/// The size of the terminal on `fd`, if it is one with a real size.
pub(crate) fn size(fd: impl AsFd) -> Option<Size> {
    let ws = termios::tcgetwinsize(fd).ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(Size { rows: ws.ws_row, cols: ws.ws_col })
}
