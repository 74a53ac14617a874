//! What a session did to its git repository, for the `git` events and the
//! dispatch record: where it started (commit, branch, uncommitted work)
//! and what changed by its end.
//!
//! Every call runs `git` with a deadline (a huge repository or a hung
//! filesystem must not hold up a session's end) and answers `None` when
//! the directory is not in a repository or git is missing or slow. The
//! runner underneath (`output`, `spawn`, `run_all`) is shared with the
//! worktree commands, which need git's exit code and its own words.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
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
    let out = output(cwd, args, DEADLINE).ok()?;
    out.success().then(|| out.stdout.trim().to_string())
}

/// What a finished git command said.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// The exit code; `None` when a signal ended it.
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Git's own words for why it failed: the last non-empty lines of
    /// stderr (`fatal: ...`, `error: ...`), for an error message.
    pub(crate) fn reason(&self) -> String {
        let text = self.stderr.trim();
        // Advice about finishing by hand is wrong after reins put things back.
        let advice = |l: &str| l.starts_with("hint:") || l.starts_with("Not committing merge");
        let lines: Vec<&str> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !advice(l)).collect();
        match lines.len() {
            0 => format!(
                "git exited with {}",
                self.code.map_or("a signal".into(), |c| c.to_string())
            ),
            n => lines[n.saturating_sub(3)..].join("; "),
        }
    }
}

/// Why a git command gave no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot run git: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("`git {args}` did not finish within {secs}s and was stopped")]
    Timeout { args: String, secs: u64 },
    #[error("cannot read git's output: {0}")]
    Read(#[source] std::io::Error),
}

/// A git command running in the background; its pipes are drained as it
/// runs, so a long output never blocks it.
pub(crate) struct Pending {
    child: Child,
    args: String,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Vec<u8>,
    err: Vec<u8>,
    timeout: Duration,
    deadline: Instant,
    code: Option<Option<i32>>,
}

/// Starts `git -C cwd ARGS` (no stdin, no prompts, no optional locks, so a
/// read never contends with an agent's own git commands).
pub(crate) fn spawn(cwd: &Path, args: &[&str], timeout: Duration) -> Result<Pending, Error> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(cwd)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Spawn)?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    for fd in [stdout.as_ref().map(|s| s.as_fd()), stderr.as_ref().map(|s| s.as_fd())]
        .into_iter()
        .flatten()
    {
        rustix::io::ioctl_fionbio(fd, true).map_err(|e| Error::Read(e.into()))?;
    }
    Ok(Pending {
        child,
        args: args.join(" "),
        stdout,
        stderr,
        out: Vec::new(),
        err: Vec::new(),
        timeout,
        deadline: Instant::now() + timeout,
        code: None,
    })
}

/// Runs `git -C cwd ARGS` to its end (or its deadline).
pub(crate) fn output(cwd: &Path, args: &[&str], timeout: Duration) -> Result<Output, Error> {
    spawn(cwd, args, timeout)?.wait()
}

impl Pending {
    /// Reads what is there; true once git has exited.
    fn poll(&mut self) -> Result<bool, Error> {
        drain(&mut self.stdout, &mut self.out)?;
        drain(&mut self.stderr, &mut self.err)?;
        if self.code.is_none() {
            if let Some(status) = self.child.try_wait().map_err(Error::Read)? {
                self.code = Some(status.code());
                // What it wrote just before exiting.
                drain(&mut self.stdout, &mut self.out)?;
                drain(&mut self.stderr, &mut self.err)?;
            } else if Instant::now() >= self.deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(Error::Timeout {
                    args: std::mem::take(&mut self.args),
                    secs: self.timeout.as_secs().max(1),
                });
            }
        }
        Ok(self.code.is_some())
    }

    fn finish(self) -> Output {
        Output {
            code: self.code.flatten(),
            stdout: String::from_utf8_lossy(&self.out).into_owned(),
            stderr: String::from_utf8_lossy(&self.err).into_owned(),
        }
    }

    /// Waits for git to finish.
    pub(crate) fn wait(mut self) -> Result<Output, Error> {
        let mut nap = Duration::from_micros(100);
        while !self.poll()? {
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(2));
        }
        Ok(self.finish())
    }
}

/// Runs many read-only git commands, at most `parallel` at a time, and
/// returns their results in order. `status` uses it so that the git
/// standing of many worktrees costs about as long as the slowest one,
/// without a fork storm.
pub(crate) fn run_all(
    jobs: &[(&Path, Vec<&str>)],
    timeout: Duration,
    parallel: usize,
) -> Vec<Result<Output, Error>> {
    let mut results: Vec<Option<Result<Output, Error>>> = jobs.iter().map(|_| None).collect();
    let mut running: Vec<(usize, Pending)> = Vec::new();
    let mut next = 0;
    let mut nap = Duration::from_micros(100);
    while next < jobs.len() || !running.is_empty() {
        while next < jobs.len() && running.len() < parallel.max(1) {
            let (cwd, args) = &jobs[next];
            match spawn(cwd, args, timeout) {
                Ok(pending) => running.push((next, pending)),
                Err(err) => results[next] = Some(Err(err)),
            }
            next += 1;
        }
        let mut progressed = false;
        let mut i = 0;
        while i < running.len() {
            match running[i].1.poll() {
                Ok(false) => i += 1,
                Ok(true) => {
                    let (n, pending) = running.swap_remove(i);
                    results[n] = Some(Ok(pending.finish()));
                    progressed = true;
                }
                Err(err) => {
                    let (n, _) = running.swap_remove(i);
                    results[n] = Some(Err(err));
                    progressed = true;
                }
            }
        }
        if progressed {
            nap = Duration::from_micros(100);
        } else if !running.is_empty() {
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(2));
        }
    }
    results.into_iter().map(|r| r.expect("every job ran")).collect()
}

/// Appends what a non-blocking pipe holds; closes it at its end.
fn drain(pipe: &mut Option<impl Read>, buf: &mut Vec<u8>) -> Result<(), Error> {
    let Some(reader) = pipe.as_mut() else { return Ok(()) };
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => {
                *pipe = None;
                return Ok(());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(Error::Read(err)),
        }
    }
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
    fn many_commands_run_in_order_and_long_outputs_do_not_block() {
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("SKIPPED: git is not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // More than a pipe holds (64 KiB), printed by git itself.
        let long = format!("x.y={}", "z".repeat(100_000));
        let out = output(dir.path(), &["-c", &long, "config", "--get", "x.y"], DEADLINE).unwrap();
        assert!(out.success(), "{}", out.reason());
        assert_eq!(out.stdout.trim().len(), 100_000);
        let values: Vec<String> = (0..5).map(|n| format!("x.n={n}")).collect();
        let jobs: Vec<(&Path, Vec<&str>)> = values
            .iter()
            .map(|v| (dir.path(), vec!["-c", v.as_str(), "config", "--get", "x.n"]))
            .collect();
        let results = run_all(&jobs, DEADLINE, 2);
        let got: Vec<String> =
            results.into_iter().map(|r| r.unwrap().stdout.trim().into()).collect();
        assert_eq!(got, ["0", "1", "2", "3", "4"]);
        let failed = output(dir.path(), &["rev-parse", "HEAD"], DEADLINE).unwrap();
        assert!(!failed.success());
        assert!(failed.reason().contains("not a git repository"), "{}", failed.reason());
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
