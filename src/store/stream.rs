//! A session's events as an async stream: what is in `events.jsonl` from an
//! offset on, then every event as it is appended, until the host is gone
//! and its last words are read. `wait`, `send`, `events --follow` and
//! `run` all read events this way, so none of them polls.

use std::collections::VecDeque;
use std::io;

use tokio::sync::oneshot;

use crate::store::events::EventLine;
use crate::store::follow::{self, Follower, SessionFile};
use crate::store::paths::SessionPaths;

/// Events of one session, live.
pub(crate) struct EventStream {
    follower: Follower,
    gone: oneshot::Receiver<()>,
    host_gone: bool,
    buffered: VecDeque<EventLine>,
}

impl EventStream {
    /// Streams `events.jsonl` from byte `offset`.
    pub(crate) fn open(paths: &SessionPaths, offset: u64) -> EventStream {
        // Watch the host before reading, so its death cannot slip between.
        let gone = follow::host_gone(&paths.host_lock());
        EventStream {
            follower: Follower::new(paths, SessionFile::Events, offset),
            gone,
            host_gone: false,
            buffered: VecDeque::new(),
        }
    }

    /// Streams only what is appended from now on.
    pub(crate) fn from_end(paths: &SessionPaths) -> EventStream {
        let offset = std::fs::metadata(paths.events()).map_or(0, |m| m.len());
        EventStream::open(paths, offset)
    }

    /// The next event; `None` once the host is gone and all it wrote was
    /// read (so `None` without an `exited` means it died without one).
    pub(crate) async fn next(&mut self) -> io::Result<Option<EventLine>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Ok(Some(event));
            }
            self.buffered
                .extend(self.follower.read_lines()?.iter().filter_map(|l| EventLine::parse(l)));
            if !self.buffered.is_empty() {
                continue;
            }
            if self.host_gone {
                return Ok(None);
            }
            tokio::select! {
                _ = self.follower.changed() => {}
                _ = &mut self.gone => self.host_gone = true,
            }
        }
    }
}
