//! What a session did to its git repository, for the `git` events and the
//! dispatch record: where it started (commit, branch, uncommitted work)
//! and what changed by its end.
//!
//! Every call runs `git` with a deadline (a huge repository or a hung
//! filesystem must not hold up a session's end) and answers `None` when
//! the directory is not in a repository or git is missing or slow.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long one git command may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// The repository at the start of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) sha: String,
    /// `HEAD` when detached.
    pub(crate) branch: String,
    /// Uncommitted changes were there already.
    pub(crate) dirty: bool,
}

/// What changed between a run's start and its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct End {
    pub(crate) sha: String,
    pub(crate) branch: String,
    pub(crate) dirty: bool,
    /// Commits made since the start commit.
    pub(crate) commits: u64,
    /// The counts below include uncommitted work: only when the tree was
    /// clean at the start (otherwise they would count what was there
    /// before), else they cover commits since the start only.
    pub(crate) counts_uncommitted: bool,
    /// Against the start commit.
    pub(crate) files_changed: u64,
    pub(crate) loc_added: u64,
    pub(crate) loc_removed: u64,
}

/// Where the repository at `cwd` stands now.
pub(crate) fn start(cwd: &Path) -> Option<Start> {
    let sha = git(cwd, &["rev-parse", "HEAD"])?;
    let branch = git(cwd, &["rev-parse", "--abbrev-ref", "HEAD"])?;
    let dirty = !git(cwd, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    Some(Start { sha, branch, dirty })
}

/// What changed since the run started at `since`.
pub(crate) fn end(cwd: &Path, since: &Start) -> Option<End> {
    let now = start(cwd)?;
    let commits =
        git(cwd, &["rev-list", "--count", &format!("{}..HEAD", since.sha)])?.parse().unwrap_or(0);
    let counts_uncommitted = !since.dirty;
    let diff = if counts_uncommitted {
        git(cwd, &["diff", "--shortstat", &since.sha])?
    } else {
        git(cwd, &["diff", "--shortstat", &since.sha, "HEAD"])?
    };
    let (files_changed, loc_added, loc_removed) = shortstat(&diff);
    Some(End {
        sha: now.sha,
        branch: now.branch,
        dirty: now.dirty,
        commits,
        counts_uncommitted,
        files_changed,
        loc_added,
        loc_removed,
    })
}

/// ` 3 files changed, 10 insertions(+), 2 deletions(-)` → (3, 10, 2).
fn shortstat(text: &str) -> (u64, u64, u64) {
    let mut out = (0, 0, 0);
    for part in text.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
        let n: u64 = n.parse().unwrap_or(0);
        match what {
            w if w.starts_with("file") => out.0 = n,
            w if w.starts_with("insertion") => out.1 = n,
            w if w.starts_with("deletion") => out.2 = n,
            _ => {}
        }
    }
    out
}

/// `git -C cwd ARGS`'s trimmed stdout, if it succeeds within the deadline.
fn git(cwd: &Path, args: &[&str]) -> Option<String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        match child.try_wait().ok()? {
            Some(status) if status.success() => break,
            Some(_) => return None,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    Some(out.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortstat_parses_every_form() {
        assert_eq!(shortstat(" 3 files changed, 10 insertions(+), 2 deletions(-)"), (3, 10, 2));
        assert_eq!(shortstat(" 1 file changed, 1 insertion(+)"), (1, 1, 0));
        assert_eq!(shortstat(" 1 file changed, 4 deletions(-)"), (1, 0, 4));
        assert_eq!(shortstat(""), (0, 0, 0));
    }

    #[test]
    fn a_repository_is_read_and_its_changes_counted() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("SKIPPED: git is not installed");
            return;
        }
        assert_eq!(start(dir.path()), None, "not a repository");
        run(&["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
        run(&["add", "a.txt"]);
        run(&["commit", "-q", "-m", "first"]);
        let s = start(dir.path()).unwrap();
        assert_eq!((s.branch.as_str(), s.dirty), ("main", false));
        std::fs::write(dir.path().join("a.txt"), "one\nTWO\nthree\n").unwrap();
        run(&["commit", "-q", "-am", "second"]);
        std::fs::write(dir.path().join("b.txt"), "new\n").unwrap();
        run(&["add", "b.txt"]);
        let e = end(dir.path(), &s).unwrap();
        assert_eq!(e.commits, 1);
        assert!(e.dirty, "b.txt is staged, not committed");
        assert!(e.counts_uncommitted, "the tree was clean at the start");
        assert_eq!((e.files_changed, e.loc_added, e.loc_removed), (2, 3, 1));
        // Started dirty: only what was committed since counts.
        let dirty_start = start(dir.path()).unwrap();
        assert!(dirty_start.dirty);
        std::fs::write(dir.path().join("c.txt"), "c\n").unwrap();
        run(&["add", "c.txt"]);
        run(&["commit", "-q", "-m", "third"]);
        let e = end(dir.path(), &dirty_start).unwrap();
        assert!(!e.counts_uncommitted);
        assert_eq!((e.commits, e.files_changed), (1, 2), "b.txt and c.txt were committed");
    }
}
