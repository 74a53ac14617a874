//! The host's view of the inbox: pending messages in order, every change
//! written to `inbox.jsonl` before anyone is told about it.

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use jiff::Timestamp;

use crate::store::inbox::{self, Entry, InboxFile, InboxRecord, Message, MessageStatus};
use crate::time;

/// Pending messages of one session.
pub(crate) struct Queue {
    file: InboxFile,
    pending: VecDeque<Message>,
}

impl Queue {
    /// Opens the inbox and replays it. Messages whose delivery was under way
    /// when an earlier host died are marked stranded (typing them again
    /// could submit them twice); they are returned so the caller can report
    /// them.
    pub(crate) fn open(path: &Path) -> io::Result<(Queue, Vec<Message>)> {
        let entries = inbox::replay(path)?;
        let mut queue = Queue { file: InboxFile::open(path)?, pending: VecDeque::new() };
        let mut interrupted = Vec::new();
        for Entry { message, status, .. } in entries {
            match status {
                MessageStatus::Queued => queue.pending.push_back(message),
                MessageStatus::Delivering => {
                    queue.record(
                        &message.id,
                        MessageStatus::Stranded,
                        None,
                        Some("the host stopped while delivering it".into()),
                    )?;
                    interrupted.push(message);
                }
                _ => {}
            }
        }
        Ok((queue, interrupted))
    }

    /// Accepts a message: written to the file first, then queued. Forced
    /// messages go to the front.
    pub(crate) fn accept(&mut self, message: Message) -> io::Result<usize> {
        self.file.append(&InboxRecord::Message(Box::new(message.clone())))?;
        if message.force {
            let at = self.pending.iter().take_while(|m| m.force).count();
            self.pending.insert(at, message);
            Ok(at)
        } else {
            self.pending.push_back(message);
            Ok(self.pending.len() - 1)
        }
    }

    /// Records what happened to a message.
    pub(crate) fn record(
        &mut self,
        id: &str,
        status: MessageStatus,
        turn: Option<u64>,
        detail: Option<String>,
    ) -> io::Result<()> {
        self.file.append(&InboxRecord::Status {
            id: id.into(),
            ts: time::now_rfc3339(),
            status,
            turn,
            detail,
        })
    }

    pub(crate) fn front(&self) -> Option<&Message> {
        self.pending.front()
    }

    /// Takes the first pending message for delivery (recorded as such).
    pub(crate) fn take_front(&mut self) -> io::Result<Option<Message>> {
        let Some(message) = self.pending.pop_front() else { return Ok(None) };
        self.record(&message.id, MessageStatus::Delivering, None, None)?;
        Ok(Some(message))
    }

    pub(crate) fn pending(&self) -> impl Iterator<Item = &Message> {
        self.pending.iter()
    }

    /// Removes one pending message (`reins inbox --drop`).
    pub(crate) fn drop_message(&mut self, id: &str) -> io::Result<Option<Message>> {
        let Some(at) = self.pending.iter().position(|m| m.id == id) else { return Ok(None) };
        let message = self.pending.remove(at).expect("position is in range");
        self.record(id, MessageStatus::Dropped, None, None)?;
        Ok(Some(message))
    }

    /// Removes every pending message (`reins inbox --clear`).
    pub(crate) fn clear(&mut self) -> io::Result<Vec<Message>> {
        let all: Vec<Message> = self.pending.drain(..).collect();
        for m in &all {
            self.record(&m.id, MessageStatus::Dropped, None, None)?;
        }
        Ok(all)
    }

    /// Removes and returns the messages whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Timestamp) -> io::Result<Vec<Message>> {
        let (expired, kept): (Vec<Message>, Vec<Message>) =
            self.pending.drain(..).partition(|m| deadline(m).is_some_and(|d| d <= now));
        self.pending = kept.into();
        for m in &expired {
            self.record(&m.id, MessageStatus::Expired, None, None)?;
        }
        Ok(expired)
    }

    /// The earliest deadline among pending messages.
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.pending.iter().filter_map(deadline).min()
    }
}

fn deadline(message: &Message) -> Option<Timestamp> {
    message.expires_at.as_deref().and_then(time::parse_rfc3339)
}
