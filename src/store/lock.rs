//! Liveness and ownership of a session id, by file locks.
//!
//! A live host holds `host.lock` exclusively for its whole life; the kernel
//! drops the lock when the process dies, however it dies. So "is the host
//! alive?" is a non-blocking shared-lock probe (no pid reuse problems), and
//! "tell me when it dies" is a blocking shared-lock request on a thread, an
//! event rather than a poll.
//!
//! A `run` client holds `claim.lock` while it brings a host up, so two runs
//! racing for one id serialize: exactly one of them wins.
//!
//! A watcher holds `watch.lock` while it watches, so a session is never
//! nudged or restarted by two watchers at once: `reins supervise` takes over
//! only the sessions nobody watches.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The host's exclusive hold on its session id. Dropping it releases the id.
#[derive(Debug)]
pub(crate) struct HostLock {
    _file: File,
}

impl HostLock {
    /// Takes the host lock, retrying briefly: clients probe it with
    /// momentary shared locks, which must not make a starting host fail.
    /// Returns `None` if another host holds it.
    pub(crate) fn acquire(path: &Path, patience: Duration) -> io::Result<Option<HostLock>> {
        let file = open_lock_file(path)?;
        let deadline = Instant::now() + patience;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(HostLock { _file: file })),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(err)) => return Err(err),
            }
        }
    }
}

/// A `run` client's claim on an id while it starts a host.
#[derive(Debug)]
pub(crate) struct ClaimLock {
    _file: File,
}

impl ClaimLock {
    /// Claims the id, or returns `None` if another `run` is starting it now.
    pub(crate) fn try_claim(path: &Path) -> io::Result<Option<ClaimLock>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ClaimLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }
}

/// One process's hold on what it alone may do — a session's watch, a
/// state directory's supervisor, a chain's runner — let go when it drops
/// the lock or dies.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    _file: File,
}

impl OwnerLock {
    /// Takes the lock at `path`, or says who holds it (the holder's pid,
    /// when the kernel tells).
    pub(crate) fn try_take(path: &Path) -> io::Result<Result<OwnerLock, Option<u32>>> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Ok(OwnerLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(Err(flock_holder(&file))),
            Err(TryLockError::Error(err)) => Err(err),
        }
    }
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(path)
}

/// Whether a host currently holds the lock at `path`.
pub(crate) fn host_alive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        // A lock we cannot even probe is treated as held: never report a
        // live session as dead on an I/O error.
        Err(TryLockError::Error(_)) => true,
    }
}

/// Blocks until no host holds the lock at `path`. Run it on its own thread.
pub(crate) fn wait_host_gone(path: &Path) -> io::Result<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    file.lock_shared()?;
    // Dropping the file releases the shared lock at once, so a new host for
    // the same id is not held up by us.
    Ok(())
}

/// The pid of the process holding a `flock` on `file`, from the kernel's
/// list of locks (`/proc/locks`: `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE
/// 0 EOF`, device numbers in hex; `N: -> …` lines are waiters).
pub(crate) fn flock_holder(file: &File) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let (major, minor) = (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()));
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, dev, ..] if *dev == id => pid.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_lock_is_exclusive_and_probed_without_harm() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("host.lock");
        assert!(!host_alive(&path));
        let lock = HostLock::acquire(&path, Duration::ZERO).unwrap().unwrap();
        assert!(host_alive(&path));
        assert!(HostLock::acquire(&path, Duration::from_millis(20)).unwrap().is_none());
        drop(lock);
        assert!(!host_alive(&path));
        wait_host_gone(&path).unwrap();
        assert!(HostLock::acquire(&path, Duration::ZERO).unwrap().is_some());
    }

    #[test]
    fn one_watcher_at_a_time_and_the_second_learns_who() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("watch.lock");
        let first = OwnerLock::try_take(&path).unwrap().unwrap();
        let holder = OwnerLock::try_take(&path).unwrap().unwrap_err();
        assert_eq!(holder, Some(std::process::id()));
        drop(first);
        assert!(OwnerLock::try_take(&path).unwrap().is_ok());
    }

    #[test]
    fn only_one_claim_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("claim.lock");
        let first = ClaimLock::try_claim(&path).unwrap();
        assert!(first.is_some());
        assert!(ClaimLock::try_claim(&path).unwrap().is_none());
        drop(first);
        assert!(ClaimLock::try_claim(&path).unwrap().is_some());
    }
}
