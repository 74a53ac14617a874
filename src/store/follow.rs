//! Following files that only grow, and hosts that may die, without polling.
//!
//! `Follower` watches the file's directory with inotify (through `notify`)
//! and re-reads from its last offset whenever the file changes; watching the
//! directory means a file that does not exist yet is picked up when it
//! appears. `host_gone` turns "the host released its lock" into an event.
//! Together they let `wait`, `events --follow` and `logs --follow` react in
//! milliseconds and still end when a host dies without a word.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::{mpsc, oneshot};

/// Reads what is appended to a file, woken by file-system events.
pub(crate) struct Follower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    partial: Vec<u8>,
    changes: mpsc::UnboundedReceiver<()>,
    _watcher: notify::RecommendedWatcher,
}

impl Follower {
    /// Starts following `path` from byte `offset`. The watch is set up
    /// before the first read, so nothing appended in between is missed.
    pub(crate) fn new(path: &Path, offset: u64) -> io::Result<Follower> {
        let (tx, changes) = mpsc::unbounded_channel();
        let target = path.to_path_buf();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Errors (e.g. queue overflow) also wake the reader: re-reading
            // is always safe, missing an append is not.
            if res.as_ref().map_or(true, |ev| ev.paths.iter().any(|p| p == &target)) {
                let _ = tx.send(());
            }
        })
        .map_err(io::Error::other)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        watcher.watch(dir, RecursiveMode::NonRecursive).map_err(io::Error::other)?;
        Ok(Follower {
            path: path.to_path_buf(),
            file: None,
            offset,
            partial: Vec::new(),
            changes,
            _watcher: watcher,
        })
    }

    /// Everything appended since the last call (possibly nothing).
    pub(crate) fn read_new(&mut self) -> io::Result<Vec<u8>> {
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(err) => return Err(err),
            }
        }
        let file = self.file.as_mut().expect("opened above");
        let len = file.metadata()?.len();
        if len < self.offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} was truncated while being followed", self.path.display()),
            ));
        }
        let mut buf = Vec::with_capacity((len - self.offset) as usize);
        file.seek(SeekFrom::Start(self.offset))?;
        file.read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        Ok(buf)
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
        if self.changes.recv().await.is_some() {
            while self.changes.try_recv().is_ok() {}
        } else {
            // The watcher is gone; never spin.
            std::future::pending::<()>().await;
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

    #[tokio::test(flavor = "current_thread")]
    async fn follows_appends_by_event_and_keeps_partial_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("events.jsonl");
        let mut f = Follower::new(&path, 0).unwrap();
        assert!(f.read_lines().unwrap().is_empty(), "absent file reads as empty");

        let mut w = crate::store::fsutil::open_append(&path).unwrap();
        w.write_all(b"one\ntw").unwrap();
        tokio::time::timeout(Duration::from_secs(5), f.changed()).await.unwrap();
        assert_eq!(f.read_lines().unwrap(), ["one"]);
        w.write_all(b"o\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), f.changed()).await.unwrap();
        assert_eq!(f.read_lines().unwrap(), ["two"]);
    }
}
