//! Following a session's growing files (`events.jsonl`, `transcript.log`)
//! and hosts that may die, without polling.
//!
//! A [`Follower`] re-reads from its last offset whenever it is woken, and is
//! woken by one of:
//! - **inotify** (through `notify`) on the file's directory, so a file that
//!   does not exist yet is picked up when it appears;
//! - **the session's host**, when inotify cannot be had: every process of a
//!   user shares 128 inotify instances by default
//!   (`fs.inotify.max_user_instances`), and a hundred agents with a `wait`
//!   each use them up. The host writes both files itself, so a long poll on
//!   its control socket (`GET /v1/grown`) answers as soon as the file
//!   differs from what the follower has read. `REINS_NO_INOTIFY=1` chooses
//!   this from the start.
//!
//! A transcript that rotates (`transcript.log` → `transcript.log.1`) is
//! followed across the rotation: the old file is read to its end, then the
//! new one. `host_gone` turns "the host released its lock" into an event.
//! Together they let `wait`, `send`, `events --follow` and `logs --follow`
//! react in milliseconds and still end when a host dies without a word.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, oneshot};

use crate::ipc::{Client, GrownReply};
use crate::store::paths::SessionPaths;

/// How long to wait before asking a host that did not answer again (it is
/// not up yet, or it is going away and `host_gone` is about to say so).
const HOST_RETRY: Duration = Duration::from_millis(20);

/// The longest a long poll on the host may take before it is renewed.
const LONG_POLL: Duration = Duration::from_secs(3600);

/// A file of a session that grows while its host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionFile {
    /// `events.jsonl`.
    Events,
    /// `transcript.log` (rotates at `run --max-log`).
    Transcript,
}

impl SessionFile {
    /// The name the control API uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SessionFile::Events => "events",
            SessionFile::Transcript => "transcript",
        }
    }

    /// The file for a control API name.
    pub(crate) fn parse(name: &str) -> Option<SessionFile> {
        match name {
            "events" => Some(SessionFile::Events),
            "transcript" => Some(SessionFile::Transcript),
            _ => None,
        }
    }
}

/// Reads what is appended to a session file, woken by file-system events
/// or by the host.
pub(crate) struct Follower {
    path: PathBuf,
    /// Where the file goes when it rotates.
    rotated: Option<PathBuf>,
    file: Option<File>,
    /// Inode of `file` (0 while none is open).
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
    wake: Wake,
}

enum Wake {
    Inotify { changes: mpsc::UnboundedReceiver<()>, _watcher: notify::RecommendedWatcher },
    Host { client: Client, file: SessionFile },
}

impl Follower {
    /// Starts following `file` of the session from byte `offset`. The watch
    /// is set up before the first read, so nothing appended in between is
    /// missed.
    pub(crate) fn new(paths: &SessionPaths, file: SessionFile, offset: u64) -> Follower {
        Follower::reading(paths, file, offset, true)
    }

    /// A follower set up as [`Follower::new`] when it will wait for more
    /// (`follow`); otherwise a one-shot reader without an inotify watch
    /// (setting one up and tearing it down costs a thread and
    /// milliseconds).
    pub(crate) fn reading(
        paths: &SessionPaths,
        file: SessionFile,
        offset: u64,
        follow: bool,
    ) -> Follower {
        let path = match file {
            SessionFile::Events => paths.events(),
            SessionFile::Transcript => paths.transcript(),
        };
        let rotated = (file == SessionFile::Transcript).then(|| paths.transcript_rotated());
        let inotify = if follow && !inotify_disabled() { watch(&path) } else { None };
        let wake = inotify
            .unwrap_or_else(|| Wake::Host { client: Client::new(&paths.socket, LONG_POLL), file });
        Follower { path, rotated, file: None, ino: 0, offset, partial: Vec::new(), wake }
    }

    /// Follows an already opened `transcript.log` from its start (a reader
    /// that opened it together with the rotated file, under the rotation
    /// lock).
    /// `follow`: it will wait for more (else it only reads what is there).
    pub(crate) fn from_open_transcript(
        paths: &SessionPaths,
        file: File,
        follow: bool,
    ) -> io::Result<Follower> {
        let mut follower = Follower::reading(paths, SessionFile::Transcript, 0, follow);
        follower.ino = file.metadata()?.ino();
        follower.file = Some(file);
        Ok(follower)
    }

    /// Whether the follower is woken by the host instead of inotify.
    #[cfg(test)]
    fn asks_host(&self) -> bool {
        matches!(self.wake, Wake::Host { .. })
    }

    /// Everything appended since the last call (possibly nothing), across
    /// a rotation if one happened.
    pub(crate) fn read_new(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if self.file.is_none() && !self.open_current()? {
            return Ok(buf);
        }
        self.read_open(&mut buf)?;
        let now = match std::fs::metadata(&self.path) {
            Ok(meta) => meta.ino(),
            // Between the rename and the new file: the rest comes later.
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(buf),
            Err(err) => return Err(err),
        };
        if now != self.ino {
            // Rotated: what was written before the rename is in our file.
            self.read_open(&mut buf)?;
            self.read_skipped_generation(&mut buf)?;
            self.file = None;
            self.offset = 0;
            if self.open_current()? {
                self.read_open(&mut buf)?;
            }
        }
        Ok(buf)
    }

    /// After a rotation: if the rotated file is not the one we read, the
    /// file rotated twice since we last looked, and that whole file is new.
    fn read_skipped_generation(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let Some(rotated) = &self.rotated else { return Ok(()) };
        let Ok(mut file) = File::open(rotated) else { return Ok(()) };
        if file.metadata()?.ino() != self.ino {
            file.read_to_end(buf)?;
        }
        Ok(())
    }

    /// Opens the file at its path; false if it does not exist (yet).
    fn open_current(&mut self) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(file) => {
                self.ino = file.metadata()?.ino();
                self.file = Some(file);
                Ok(true)
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Appends what the open file holds past the offset to `buf`.
    fn read_open(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let file = self.file.as_mut().expect("a file is open");
        let len = file.metadata()?.len();
        if len < self.offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} was truncated while being followed", self.path.display()),
            ));
        }
        buf.reserve((len - self.offset) as usize);
        file.seek(SeekFrom::Start(self.offset))?;
        let n = file.read_to_end(buf)?;
        self.offset += n as u64;
        Ok(())
    }

    /// Where the next complete line starts: the bytes read so far, less a
    /// trailing partial line (a reader that starts over later, from this
    /// offset, reads that line whole).
    pub(crate) fn consumed(&self) -> u64 {
        self.offset - self.partial.len() as u64
    }

    /// Complete lines appended since the last call; a trailing partial line
    /// is kept until its newline arrives.
    pub(crate) fn read_lines(&mut self) -> io::Result<Vec<String>> {
        let new = self.read_new()?;
        self.partial.extend_from_slice(&new);
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(last_nl + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        Ok(String::from_utf8_lossy(&complete).lines().map(str::to_string).collect())
    }

    /// Waits until the file may have changed.
    pub(crate) async fn changed(&mut self) {
        let (ino, len, open) = (self.ino, self.offset, self.file.is_some());
        match &mut self.wake {
            Wake::Inotify { changes, .. } => {
                if changes.recv().await.is_some() {
                    while changes.try_recv().is_ok() {}
                } else {
                    // The watcher is gone; never spin.
                    std::future::pending::<()>().await;
                }
            }
            // Not there yet: the host creates it as it starts.
            Wake::Host { .. } if !open => tokio::time::sleep(HOST_RETRY).await,
            Wake::Host { client, file } => {
                let path = format!("/v1/grown?file={}&ino={ino}&len={len}", file.as_str());
                if client.get::<GrownReply>(&path).await.is_err() {
                    tokio::time::sleep(HOST_RETRY).await;
                }
            }
        }
    }
}

/// `REINS_NO_INOTIFY=1`: wake followers through the host only.
fn inotify_disabled() -> bool {
    std::env::var_os("REINS_NO_INOTIFY").is_some_and(|v| !v.is_empty() && v != "0")
}

/// An inotify watch on the directory of `path`, or `None` when inotify
/// cannot be had (out of instances or watches, or not supported).
fn watch(path: &Path) -> Option<Wake> {
    let (tx, changes) = mpsc::unbounded_channel();
    let target = path.to_path_buf();
    let made = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Errors (e.g. queue overflow) also wake the reader: re-reading is
        // always safe, missing an append is not.
        if res.as_ref().map_or(true, |ev| ev.paths.iter().any(|p| p == &target)) {
            let _ = tx.send(());
        }
    });
    let dir = path.parent().unwrap_or(Path::new("."));
    let watcher = made.and_then(|mut w| w.watch(dir, RecursiveMode::NonRecursive).map(|()| w));
    match watcher {
        Ok(watcher) => Some(Wake::Inotify { changes, _watcher: watcher }),
        Err(err) => {
            tracing::debug!("inotify is unavailable ({err}); asking the host instead");
            None
        }
    }
}

/// Resolves when no host holds `lock` any more (immediately if none does).
pub(crate) fn host_gone(lock: &Path) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let lock = lock.to_path_buf();
    std::thread::Builder::new()
        .name("host-watch".into())
        .spawn(move || {
            // An I/O error here means we cannot watch; report "gone" only
            // when the lock really is free.
            if crate::store::lock::wait_host_gone(&lock).is_ok() {
                let _ = tx.send(());
            }
        })
        .expect("spawn host-watch thread");
    rx
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;
    use crate::store::paths::StateRoot;

    fn session() -> (tempfile::TempDir, SessionPaths) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateRoot::from_parts(tmp.path().join("state"), tmp.path().join("run"));
        let paths = state.session("scope", "f1");
        paths.ensure_dirs().unwrap();
        (tmp, paths)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn follows_appends_by_event_and_keeps_partial_lines() {
        let (_tmp, paths) = session();
        let mut f = Follower::new(&paths, SessionFile::Events, 0);
        assert!(!f.asks_host(), "inotify is the first choice");
        assert!(f.read_lines().unwrap().is_empty(), "absent file reads as empty");

        let mut w = crate::store::fsutil::open_append(&paths.events()).unwrap();
        w.write_all(b"one\ntw").unwrap();
        tokio::time::timeout(Duration::from_secs(5), f.changed()).await.unwrap();
        assert_eq!(f.read_lines().unwrap(), ["one"]);
        w.write_all(b"o\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), f.changed()).await.unwrap();
        assert_eq!(f.read_lines().unwrap(), ["two"]);
    }

    #[test]
    fn a_rotation_is_followed_into_the_new_file_without_losing_the_tail() {
        let (_tmp, paths) = session();
        let mut w = crate::store::fsutil::open_append(&paths.transcript()).unwrap();
        w.write_all(b"abc").unwrap();
        let mut f = Follower::new(&paths, SessionFile::Transcript, 0);
        assert_eq!(f.read_new().unwrap(), b"abc");
        w.write_all(b"def").unwrap();
        std::fs::rename(paths.transcript(), paths.transcript_rotated()).unwrap();
        let mut w = crate::store::fsutil::open_append(&paths.transcript()).unwrap();
        w.write_all(b"ghi").unwrap();
        assert_eq!(f.read_new().unwrap(), b"defghi");
        w.write_all(b"jkl").unwrap();
        assert_eq!(f.read_new().unwrap(), b"jkl");
    }

    #[test]
    fn a_generation_rotated_past_unread_is_read_whole() {
        let (_tmp, paths) = session();
        let rotate = |text: &[u8]| {
            std::fs::rename(paths.transcript(), paths.transcript_rotated()).unwrap();
            let mut w = crate::store::fsutil::open_append(&paths.transcript()).unwrap();
            w.write_all(text).unwrap();
        };
        crate::store::fsutil::open_append(&paths.transcript()).unwrap().write_all(b"1").unwrap();
        let mut f = Follower::new(&paths, SessionFile::Transcript, 0);
        assert_eq!(f.read_new().unwrap(), b"1");
        rotate(b"2");
        rotate(b"3");
        assert_eq!(f.read_new().unwrap(), b"23");
    }
}
