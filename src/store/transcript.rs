//! `transcript.log`: everything the agent printed, bounded by rotation.
//!
//! The host appends every chunk of agent output (or the transcript it
//! synthesizes for a protocol agent). With a limit (`run --max-log`), a
//! chunk that would take the file past it first moves `transcript.log` to
//! `transcript.log.1` (replacing the previous one) and starts a new file, so
//! a session keeps at most about twice the limit on disk.
//!
//! Offsets in events (`started`, `resized`, `transcript_rotated`) are
//! *logical*: bytes the session's transcript has received since it was
//! created, across runs and rotations. Until the first rotation that is the
//! offset in `transcript.log`. Each `transcript_rotated` event records the
//! logical offset at which the new file starts, so a reader knows where each
//! file sits in the whole.
//!
//! Readers and the rotation agree through a lock on `events.jsonl`: the host
//! renames, reopens and records the rotation while it holds the lock
//! exclusively (and postpones a rotation when a reader holds it), and a
//! reader holds it shared while it opens the files and notes how much of the
//! event log describes them. So a reader never pairs a file with the wrong
//! offset.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::str::FromStr;

use crate::store::events::{EventKind, EventLine, EventWriter};
use crate::store::fsutil;
use crate::store::paths::SessionPaths;

/// The default of `run --max-log`.
pub(crate) const DEFAULT_MAX_LOG: &str = "32M";

/// The host's side: appends output and rotates the file at its limit.
#[derive(Debug)]
pub(crate) struct TranscriptWriter {
    file: File,
    paths: SessionPaths,
    /// Inode of the current `transcript.log`.
    ino: u64,
    /// Bytes in the current file.
    len: u64,
    /// Logical offset of the current file's first byte.
    base: u64,
    limit: LogLimit,
}

impl TranscriptWriter {
    /// Opens (creating if needed) the session's transcript for appending.
    /// The logical offset of what is already there comes from the last
    /// rotation the event log records.
    pub(crate) fn open(paths: &SessionPaths, limit: LogLimit) -> io::Result<TranscriptWriter> {
        let file = fsutil::open_append(&paths.transcript())?;
        let meta = file.metadata()?;
        Ok(TranscriptWriter {
            file,
            paths: paths.clone(),
            ino: meta.ino(),
            len: meta.len(),
            base: last_rotation(&paths.events())?.unwrap_or(0),
            limit,
        })
    }

    /// The logical offset the next byte will have.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.len
    }

    /// Inode and length of the current file (what followers compare with).
    pub(crate) fn file_state(&self) -> (u64, u64) {
        (self.ino, self.len)
    }

    /// Appends `bytes`, rotating first when they would take the file past
    /// its limit. A rotation that cannot happen now (a reader holds the
    /// lock, or the rename failed) is tried again with the next chunk; the
    /// output itself is never dropped.
    pub(crate) fn write(&mut self, bytes: &[u8], events: &mut EventWriter) -> io::Result<()> {
        if let Some(max) = self.limit.0
            && self.len > 0
            && self.len + bytes.len() as u64 > max
        {
            match events.with_exclusive_lock(|events| self.rotate(events)) {
                Ok(Some(Err(err))) | Err(err) => {
                    tracing::warn!("cannot rotate the transcript: {err}")
                }
                Ok(Some(Ok(()))) => {}
                Ok(None) => {
                    tracing::debug!("transcript rotation postponed: a reader holds the lock")
                }
            }
        }
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Moves `transcript.log` to `transcript.log.1`, starts a new file and
    /// records where it begins. Runs under the event log's exclusive lock.
    fn rotate(&mut self, events: &mut EventWriter) -> io::Result<()> {
        let current = self.paths.transcript();
        let older = self.paths.transcript_rotated();
        let dropped = std::fs::metadata(&older).map_or(0, |m| m.len());
        std::fs::rename(&current, &older)?;
        let file = match fsutil::open_append(&current) {
            Ok(file) => file,
            Err(err) => {
                // Put the file back so names and offsets still agree.
                let _ = std::fs::rename(&older, &current);
                return Err(err);
            }
        };
        self.ino = file.metadata()?.ino();
        self.file = file;
        self.base += self.len;
        self.len = 0;
        events.emit(
            None,
            &EventKind::TranscriptRotated { transcript_offset: self.base, dropped_bytes: dropped },
        )?;
        Ok(())
    }
}

/// The logical offset where the newest rotated-in file starts, from the
/// last `transcript_rotated` event of `events_path`.
fn last_rotation(events_path: &Path) -> io::Result<Option<u64>> {
    let text = match std::fs::read(events_path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    Ok(rotations(&String::from_utf8_lossy(&text)).last().copied())
}

/// Offsets of every `transcript_rotated` event in `log` (the event log's
/// text), in order. Lines are filtered by text before parsing, so a long
/// log costs one scan.
fn rotations(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("\"transcript_rotated\""))
        .filter_map(EventLine::parse)
        .filter_map(|e| match e.kind {
            EventKind::TranscriptRotated { transcript_offset, .. } => Some(transcript_offset),
            _ => None,
        })
        .collect()
}

/// A reader's consistent view of a session's transcript files.
pub(crate) struct TranscriptFiles {
    /// `transcript.log.1` and its logical offset, if there is one.
    pub(crate) older: Option<(File, u64)>,
    /// `transcript.log` and its logical offset, if there is one.
    pub(crate) current: Option<(File, u64)>,
    /// The event log as it was when the files were opened.
    pub(crate) events: Vec<EventLine>,
}

impl TranscriptFiles {
    /// Opens both transcript files under the rotation lock and reads the
    /// events that describe them.
    pub(crate) fn open(paths: &SessionPaths) -> io::Result<TranscriptFiles> {
        let mut log = match File::open(paths.events()) {
            Ok(file) => Some(file),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        if let Some(file) = &log {
            file.lock_shared()?;
        }
        let opened = (|| {
            let current = open_existing(&paths.transcript())?;
            let older = open_existing(&paths.transcript_rotated())?;
            let log_len = log.as_ref().map(|f| f.metadata().map(|m| m.len())).transpose()?;
            Ok::<_, io::Error>((current, older, log_len))
        })();
        if let Some(file) = &log {
            file.unlock()?;
        }
        let (current, older, log_len) = opened?;
        let mut text = Vec::new();
        if let (Some(file), Some(len)) = (log.as_mut(), log_len) {
            file.take(len).read_to_end(&mut text)?;
        }
        let end = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let text = String::from_utf8_lossy(&text[..end]);
        let rotated = rotations(&text);
        let base_current = rotated.last().copied().unwrap_or(0);
        let base_older = rotated.len().checked_sub(2).map_or(0, |i| rotated[i]);
        Ok(TranscriptFiles {
            older: older.map(|f| (f, base_older)),
            current: current.map(|f| (f, base_current)),
            events: text.lines().filter_map(EventLine::parse).collect(),
        })
    }

    /// The logical offset of the first byte these files hold.
    pub(crate) fn start(&self) -> u64 {
        self.older.as_ref().or(self.current.as_ref()).map_or(0, |(_, base)| *base)
    }
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// How big `transcript.log` may grow before it rotates; `None` = unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LogLimit(pub(crate) Option<u64>);

impl Default for LogLimit {
    fn default() -> Self {
        DEFAULT_MAX_LOG.parse().expect("the default parses")
    }
}

impl FromStr for LogLimit {
    type Err = String;

    /// `64M`, `512K`, `1G`, `1048576` (bytes); `0` or `none` for no limit.
    fn from_str(s: &str) -> Result<LogLimit, String> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("none") {
            return Ok(LogLimit(None));
        }
        let bad = || format!("{s:?} is not a size: use e.g. 64M, 512K, 1G, a byte count, or none");
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let scale: u64 =
            match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => return Err(bad()),
            };
        let bytes = n.checked_mul(scale).ok_or_else(bad)?;
        const MIN: u64 = 4096;
        match bytes {
            0 => Ok(LogLimit(None)),
            b if b < MIN => Err(format!("{s:?} is too small: the least is 4K (or none)")),
            b => Ok(LogLimit(Some(b))),
        }
    }
}

impl fmt::Display for LogLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some(b) if b % (1 << 30) == 0 => write!(f, "{}G", b >> 30),
            Some(b) if b % (1 << 20) == 0 => write!(f, "{}M", b >> 20),
            Some(b) if b % (1 << 10) == 0 => write!(f, "{}K", b >> 10),
            Some(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::paths::StateRoot;

    fn session() -> (tempfile::TempDir, SessionPaths) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateRoot::from_parts(tmp.path().join("state"), tmp.path().join("run"));
        let paths = state.session("scope", "t1");
        paths.ensure_dirs().unwrap();
        (tmp, paths)
    }

    #[test]
    fn sizes_parse_with_binary_units_and_none() {
        assert_eq!("64M".parse::<LogLimit>().unwrap(), LogLimit(Some(64 << 20)));
        assert_eq!("512k".parse::<LogLimit>().unwrap(), LogLimit(Some(512 << 10)));
        assert_eq!("1GiB".parse::<LogLimit>().unwrap(), LogLimit(Some(1 << 30)));
        assert_eq!("8192".parse::<LogLimit>().unwrap(), LogLimit(Some(8192)));
        assert_eq!("none".parse::<LogLimit>().unwrap(), LogLimit(None));
        assert_eq!("0".parse::<LogLimit>().unwrap(), LogLimit(None));
        assert!("12X".parse::<LogLimit>().is_err());
        assert!("100".parse::<LogLimit>().is_err(), "under 4K is refused");
        assert!("M".parse::<LogLimit>().is_err());
        assert_eq!(LogLimit::default().to_string(), "32M");
    }

    #[test]
    fn rotation_keeps_one_old_file_and_records_where_the_new_one_starts() {
        let (_tmp, paths) = session();
        let mut events = EventWriter::open(&paths.events(), "r1", "t1").unwrap();
        let mut t = TranscriptWriter::open(&paths, LogLimit(Some(4096))).unwrap();
        for chunk in 0..5u8 {
            t.write(&[b'a' + chunk; 3000], &mut events).unwrap();
        }
        assert_eq!(t.end(), 15000);
        assert_eq!(std::fs::read(paths.transcript()).unwrap(), [b'e'; 3000]);
        assert_eq!(std::fs::read(paths.transcript_rotated()).unwrap(), [b'd'; 3000]);

        let files = TranscriptFiles::open(&paths).unwrap();
        assert_eq!(files.older.as_ref().map(|(_, base)| *base), Some(9000));
        assert_eq!(files.current.as_ref().map(|(_, base)| *base), Some(12000));
        assert_eq!(files.start(), 9000);

        // A new run continues the logical offsets.
        drop(t);
        let t = TranscriptWriter::open(&paths, LogLimit(None)).unwrap();
        assert_eq!(t.end(), 15000);
    }

    #[test]
    fn a_reader_holding_the_lock_postpones_the_rotation() {
        let (_tmp, paths) = session();
        let mut events = EventWriter::open(&paths.events(), "r1", "t1").unwrap();
        let mut t = TranscriptWriter::open(&paths, LogLimit(Some(4096))).unwrap();
        t.write(&[b'a'; 3000], &mut events).unwrap();
        let reader = File::open(paths.events()).unwrap();
        reader.lock_shared().unwrap();
        t.write(&[b'b'; 3000], &mut events).unwrap();
        assert!(!paths.transcript_rotated().exists(), "no rotation while a reader looks");
        reader.unlock().unwrap();
        t.write(&[b'c'; 100], &mut events).unwrap();
        assert_eq!(std::fs::metadata(paths.transcript_rotated()).unwrap().len(), 6000);
        assert_eq!(t.end(), 6100);
    }

    #[test]
    fn without_a_limit_nothing_rotates() {
        let (_tmp, paths) = session();
        let mut events = EventWriter::open(&paths.events(), "r1", "t1").unwrap();
        let mut t = TranscriptWriter::open(&paths, LogLimit(None)).unwrap();
        for _ in 0..4 {
            t.write(&[b'x'; 5000], &mut events).unwrap();
        }
        assert!(!paths.transcript_rotated().exists());
        assert_eq!(std::fs::metadata(paths.transcript()).unwrap().len(), 20000);
    }
}
