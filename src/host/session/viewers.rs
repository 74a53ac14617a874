//! Viewers: terminals that joined the session with `reins attach`.
//!
//! Each viewer gets the current screen first, then everything the agent
//! draws, through a bounded channel: a viewer that cannot keep up is
//! dropped, never waited for, so no viewer can slow the agent down. An
//! interactive viewer's keystrokes go to the agent and, in a headless
//! session, its terminal size becomes the agent's (the latest to join or
//! resize wins); when the last one leaves, the session goes back to its
//! own size. Read-only viewers only watch. Sessions relayed to a terminal
//! of their own (foreground, tmux) keep that terminal's size, and
//! protocol sessions (whose screen is reins' transcript) are watch-only.
//!
//! A viewer's size is held within the bounds of `run --size`
//! ([`Size::clamped`]): a terminal of 3000x1500 asked for 147 MB of screen.

use bytes::Bytes;

use super::{Link, Session};
use crate::host::input::Input;
use crate::ipc::api::{Attach, AttachReply};
use crate::store::registry::Size;

/// The viewers of one session.
#[derive(Debug, Default)]
pub(crate) struct Viewers {
    next: u64,
    list: Vec<Viewer>,
}

#[derive(Debug)]
struct Viewer {
    id: u64,
    read_only: bool,
    output: tokio::sync::mpsc::Sender<Bytes>,
}

impl Viewers {
    /// Sends agent output to every viewer; drops the ones that fell behind
    /// or went away.
    pub(crate) fn broadcast(&mut self, bytes: &[u8]) {
        if self.list.is_empty() {
            return;
        }
        let chunk = Bytes::copy_from_slice(bytes);
        self.list.retain(|v| match v.output.try_send(chunk.clone()) {
            Ok(()) => true,
            Err(err) => {
                tracing::info!("viewer {} dropped: {err}", v.id);
                false
            }
        });
    }

    fn interactive(&self, id: u64) -> bool {
        self.list.iter().any(|v| v.id == id && !v.read_only)
    }
}

impl Session {
    /// Whether viewers may type and resize here.
    fn viewers_may_drive(&self) -> bool {
        matches!(self.link, Link::Terminal { .. }) && self.relay.is_none()
    }

    /// `GET /v1/attach`: a viewer joins.
    pub(super) fn attach_request(&mut self, attach: Attach) -> (u16, serde_json::Value) {
        let read_only = attach.read_only || !matches!(self.link, Link::Terminal { .. });
        let viewers = &mut self.viewers;
        viewers.next += 1;
        let id = viewers.next;
        if let Some(size) = attach.size.filter(|_| !read_only && self.viewers_may_drive()) {
            self.on_resize(Some(size.clamped()));
        }
        // The current screen first (drawn at the session's size).
        let _ = attach.output.try_send(Bytes::from(self.screen.formatted()));
        self.viewers.list.push(Viewer { id, read_only, output: attach.output });
        tracing::info!("viewer {id} attached{}", if read_only { " (read-only)" } else { "" });
        let reply = AttachReply { ok: true, viewer: id, read_only, size: self.record.size };
        (200, serde_json::to_value(reply).expect("serializes"))
    }

    /// Keystrokes from a viewer.
    pub(super) fn viewer_input(&mut self, viewer: u64, bytes: Vec<u8>) {
        if self.viewers.interactive(viewer) && matches!(self.link, Link::Terminal { .. }) {
            self.send_input(Input::Bytes(bytes));
        }
    }

    /// A viewer's terminal changed size.
    pub(super) fn viewer_resize(&mut self, viewer: u64, size: Size) {
        if self.viewers.interactive(viewer) && self.viewers_may_drive() {
            self.on_resize(Some(size.clamped()));
        }
    }

    /// A viewer left; the last interactive one gives the session its own
    /// size back.
    pub(super) fn viewer_left(&mut self, viewer: u64) {
        self.viewers.list.retain(|v| v.id != viewer);
        tracing::info!("viewer {viewer} detached");
        let driven = self.viewers.list.iter().any(|v| !v.read_only);
        if !driven && self.viewers_may_drive() {
            self.on_resize(Some(self.spec.size));
        }
    }
}
