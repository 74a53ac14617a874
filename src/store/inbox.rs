//! `inbox.jsonl`: the durable queue of messages for a session.
//!
//! Every message `send` hands to a host is appended here before the client
//! gets its answer, followed later by records of what happened to it
//! (delivering, delivered, stranded, expired, dropped). A host that starts
//! (again) replays the file: messages with no outcome are delivered, in
//! order. A message whose delivery was under way when a host died is marked
//! stranded instead of being typed a second time: never twice.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::fsutil;

/// One message as accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) id: String,
    /// When it was accepted (RFC 3339).
    pub(crate) ts: String,
    pub(crate) text: String,
    /// Press the submit key after the text (false: `--no-submit`).
    pub(crate) submit: bool,
    /// Only press the submit key (`--submit-only`); `text` is empty.
    #[serde(default)]
    pub(crate) submit_only: bool,
    /// Deliver at once, busy or not.
    #[serde(default)]
    pub(crate) force: bool,
    /// Drop it unless delivered by then (RFC 3339).
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
    /// `send`, or `context` for the session's first task.
    #[serde(default)]
    pub(crate) source: String,
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MessageStatus {
    /// Accepted, waiting for the agent.
    Queued,
    /// Being typed and verified.
    Delivering,
    /// Typed, submitted, and the turn it opened was seen starting.
    Delivered,
    /// Typed without submitting (`--no-submit`), or a key pressed without a
    /// turn to prove: nothing more to wait for.
    Typed,
    /// Typed, but no turn started despite re-pressing the submit key.
    Stranded,
    /// Not delivered before its deadline.
    Expired,
    /// Removed from the queue by `reins inbox --drop/--clear`.
    Dropped,
}

impl MessageStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Delivering => "delivering",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Typed => "typed",
            MessageStatus::Stranded => "stranded",
            MessageStatus::Expired => "expired",
            MessageStatus::Dropped => "dropped",
        }
    }
}

/// A line of `inbox.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum InboxRecord {
    Message(Box<Message>),
    Status {
        id: String,
        ts: String,
        status: MessageStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        turn: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    #[serde(other)]
    Other,
}

/// A message with its latest status, as replayed from the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Entry {
    pub(crate) message: Message,
    pub(crate) status: MessageStatus,
    pub(crate) turn: Option<u64>,
    pub(crate) detail: Option<String>,
}

/// Appends to `inbox.jsonl`.
#[derive(Debug)]
pub(crate) struct InboxFile {
    file: File,
}

impl InboxFile {
    pub(crate) fn open(path: &Path) -> io::Result<InboxFile> {
        let file = fsutil::open_jsonl(path)?;
        if let Some(dir) = path.parent() {
            // The file itself must survive a crash, not only its lines.
            fsutil::sync_dir(dir)?;
        }
        Ok(InboxFile { file })
    }

    /// Appends one record with a single write, and syncs it to disk before
    /// returning: a message is acknowledged to its sender only once it
    /// would survive a crash of the machine, and a delivery is marked
    /// under way before a key is typed (never typed twice after a crash).
    pub(crate) fn append(&mut self, record: &InboxRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).expect("inbox record serializes");
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()
    }
}

/// Every message in the file with its latest status, in acceptance order.
pub(crate) fn replay(path: &Path) -> io::Result<Vec<Entry>> {
    // Bytes, decoded lossily: one bad byte (a torn multi-byte character,
    // a damaged disk block) must not make every message unreadable.
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for line in text.lines() {
        // A torn last line (a host killed mid-write) is skipped, not fatal.
        let Ok(record) = serde_json::from_str::<InboxRecord>(line) else { continue };
        match record {
            InboxRecord::Message(message) => {
                index.insert(message.id.clone(), entries.len());
                entries.push(Entry {
                    message: *message,
                    status: MessageStatus::Queued,
                    turn: None,
                    detail: None,
                });
            }
            InboxRecord::Status { id, status, turn, detail, .. } => {
                if let Some(&i) = index.get(&id) {
                    let entry = &mut entries[i];
                    entry.status = status;
                    entry.turn = turn.or(entry.turn);
                    entry.detail = detail;
                }
            }
            InboxRecord::Other => {}
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> InboxRecord {
        InboxRecord::Message(Box::new(Message {
            id: id.into(),
            ts: "t".into(),
            text: format!("text {id}"),
            submit: true,
            submit_only: false,
            force: false,
            expires_at: None,
            source: "send".into(),
        }))
    }

    fn status(id: &str, status: MessageStatus, turn: Option<u64>) -> InboxRecord {
        InboxRecord::Status { id: id.into(), ts: "t".into(), status, turn, detail: None }
    }

    #[test]
    fn replay_keeps_order_and_latest_status() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("inbox.jsonl");
        let mut inbox = InboxFile::open(&path).unwrap();
        for r in [
            message("a"),
            message("b"),
            status("a", MessageStatus::Delivering, None),
            status("a", MessageStatus::Delivered, Some(1)),
            message("c"),
            status("b", MessageStatus::Dropped, None),
        ] {
            inbox.append(&r).unwrap();
        }
        // A torn last line from a host that died mid-write.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"type\":\"mes")
            .unwrap();
        let entries = replay(&path).unwrap();
        let got: Vec<(&str, MessageStatus, Option<u64>)> =
            entries.iter().map(|e| (e.message.id.as_str(), e.status, e.turn)).collect();
        assert_eq!(
            got,
            [
                ("a", MessageStatus::Delivered, Some(1)),
                ("b", MessageStatus::Dropped, None),
                ("c", MessageStatus::Queued, None)
            ]
        );
    }
}
