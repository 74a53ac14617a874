//! `run --worktree`: check everything first, then make the worktree (or
//! find the one an earlier run of the id left) and record it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::cmd::{query, work};
use super::record::{WorktreeRecord, short};
use crate::error::CliError;

/// Where `run --worktree` puts worktrees when `--worktree-root` is not given.
pub(crate) const ROOT_ENV: &str = "REINS_WORKTREE_ROOT";

/// What `run --worktree` will do, checked before anything is created.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The repository's main worktree.
    repo: PathBuf,
    /// Where `run` runs, which git commands run from.
    cwd: PathBuf,
    /// The cwd's place inside its working tree (`src/`), so the agent
    /// starts at the same place in the new one.
    prefix: String,
    base: String,
    base_branch: Option<String>,
    /// `--base` was given.
    base_given: bool,
    /// `--worktree BRANCH`; None: `reins/<id>`.
    branch: Option<String>,
    root: Root,
}

#[derive(Debug)]
enum Root {
    /// `<repo>.reins-worktrees/`, beside the repository.
    Beside,
    /// `--worktree-root DIR` or `$REINS_WORKTREE_ROOT`; worktrees go in
    /// `DIR/<scope>/<id>` so that several repositories can share it.
    Given { dir: PathBuf, from: &'static str },
}

/// What `run --worktree` made (or found) for the session.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) record: WorktreeRecord,
    /// Where the agent starts.
    pub(crate) cwd: PathBuf,
}

/// Checks `run --worktree` for a session started from `cwd`.
pub(crate) fn plan(
    cwd: &Path,
    branch: Option<&str>,
    base: Option<&str>,
    root: Option<&Path>,
) -> Result<Plan, CliError> {
    let prefix = query(cwd, &["rev-parse", "--show-prefix"])?.map_err(|out| {
        if out.stderr.contains("not a git repository") {
            CliError::usage(format!(
                "--worktree needs a git repository; {} is not in one",
                cwd.display()
            ))
            .hint("run it inside a repository (or pass --cwd DIR of one); `git init` makes one")
        } else {
            CliError::usage(format!(
                "--worktree needs a working tree; {}: {}",
                cwd.display(),
                out.reason()
            ))
        }
    })?;
    let repo = main_worktree(cwd)?;
    let rev = base.unwrap_or("HEAD");
    let base_sha = query(cwd, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])?
        .map_err(|_| match base {
            Some(rev) => {
                CliError::usage(format!("--base {rev}: no such commit in {}", repo.display()))
                    .hint("name a branch, tag or commit, e.g. --base main")
            }
            None => CliError::usage(format!("{} has no commits yet", repo.display()))
                .hint("a worktree starts from a commit: commit something first"),
        })?;
    let base_branch = match base {
        Some(rev) => {
            let local =
                query(cwd, &["show-ref", "--verify", "--quiet", &format!("refs/heads/{rev}")])?;
            local.ok().map(|_| rev.to_string())
        }
        None => query(cwd, &["symbolic-ref", "--quiet", "--short", "HEAD"])?.ok(),
    };
    if let Some(name) = branch {
        check_branch_name(cwd, name)?;
    }
    let root = match root {
        Some(dir) => Root::Given { dir: absolute(dir)?, from: "--worktree-root" },
        None => match std::env::var_os(ROOT_ENV).filter(|v| !v.is_empty()) {
            Some(dir) => Root::Given { dir: absolute(Path::new(&dir))?, from: ROOT_ENV },
            None => Root::Beside,
        },
    };
    if let Root::Given { dir, from } = &root {
        let resolved = resolve(dir);
        let toplevel = resolve(&cwd.join(prefix_up(&prefix)));
        for inside in [&repo, &toplevel] {
            if resolved.starts_with(inside) {
                return Err(CliError::usage(format!(
                    "{from} {}: it is inside the repository {}; worktrees must live outside it",
                    dir.display(),
                    inside.display()
                ))
                .hint(
                    "choose a directory outside the repository, or leave the default (beside it)",
                ));
            }
        }
    }
    Ok(Plan {
        repo,
        cwd: cwd.to_path_buf(),
        prefix,
        base: base_sha,
        base_branch,
        base_given: base.is_some(),
        branch: branch.map(str::to_string),
        root,
    })
}

impl Plan {
    /// Makes the session's worktree (or finds the one an earlier run of
    /// the same id made), records it in `record_path`, and says on stderr
    /// what a user should know.
    pub(crate) fn create(
        self,
        id: &str,
        scope: &str,
        record_path: &Path,
    ) -> Result<Prepared, CliError> {
        if let Some(old) = read_record(record_path)?
            && old.path.is_dir()
        {
            return self.reuse(id, old);
        }
        let branch = self.branch.clone().unwrap_or_else(|| format!("reins/{id}"));
        check_branch_name(&self.cwd, &branch)?;
        if query(&self.cwd, &["show-ref", "--verify", "--quiet", &format!("refs/heads/{branch}")])?
            .is_ok()
        {
            return Err(CliError::usage(format!("branch {branch} already exists")).hint(format!(
                "name a new branch with --worktree NAME, or delete it first (git branch -D \
                 {branch}); to run an agent on {branch} itself, check it out in a worktree \
                 yourself and pass --cwd DIR"
            )));
        }
        let (parent, given) = match &self.root {
            Root::Beside => {
                let name =
                    self.repo.file_name().map(OsString::from).unwrap_or_else(|| "repo".into());
                let mut dir = name;
                dir.push(".reins-worktrees");
                let parent = self.repo.parent().unwrap_or(Path::new("/")).join(dir);
                (parent, None)
            }
            Root::Given { dir, from } => (dir.join(scope), Some(*from)),
        };
        let path = parent.join(id);
        make_root(&parent, given)?;
        if std::fs::read_dir(&path).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(CliError::failure(format!(
                "{} already exists and is not empty",
                path.display()
            ))
            .hint("remove it, or use another --id"));
        }
        let out = work(
            &self.cwd,
            &["worktree", "add", "--quiet", "-b", &branch, &path.to_string_lossy(), &self.base],
        )?;
        if !out.success() {
            let _ = std::fs::remove_dir(&parent); // only if it is empty
            return Err(CliError::failure(format!(
                "cannot create a worktree at {}: {}",
                path.display(),
                out.reason()
            )));
        }
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let record = WorktreeRecord {
            path: path.clone(),
            branch: branch.clone(),
            base: self.base.clone(),
            base_branch: self.base_branch.clone(),
            repo: self.repo.clone(),
            created_at: crate::time::now_rfc3339(),
        };
        record.write(record_path).map_err(|err| {
            CliError::failure(format!(
                "made the worktree {} but cannot record it in {}: {err}",
                path.display(),
                record_path.display()
            ))
            .hint(format!("remove it with `git worktree remove {}`", path.display()))
        })?;
        if !self.base_given && self.tracked_changes()? {
            eprintln!(
                "reins: note: {} has uncommitted changes; the worktree starts from {} ({}) \
                 without them",
                self.cwd.display(),
                record.base_label(),
                short(&record.base)
            );
        }
        Ok(Prepared { cwd: self.start_dir(&path), record })
    }

    /// An earlier run of this id left its worktree: start there again,
    /// unless this run asked for something else.
    fn reuse(self, id: &str, old: WorktreeRecord) -> Result<Prepared, CliError> {
        let other_branch = self.branch.as_deref().is_some_and(|b| b != old.branch);
        if other_branch || self.base_given {
            return Err(CliError::usage(format!(
                "session {id} already has a worktree, {} on branch {}",
                old.path.display(),
                old.branch
            ))
            .hint(format!(
                "to start there again, pass --worktree without BRANCH or --base; for a new one, \
                 use another --id or remove it first: reins worktree remove --id {id}"
            )));
        }
        eprintln!(
            "reins: reusing the worktree of session {id}: {} (branch {})",
            old.path.display(),
            old.branch
        );
        Ok(Prepared { cwd: self.start_dir(&old.path), record: old })
    }

    /// The cwd's place in the new tree, when it exists there.
    fn start_dir(&self, top: &Path) -> PathBuf {
        let dir = top.join(&self.prefix);
        if self.prefix.is_empty() || !dir.is_dir() { top.to_path_buf() } else { dir }
    }

    fn tracked_changes(&self) -> Result<bool, CliError> {
        let out = work(&self.cwd, &["status", "--porcelain", "--untracked-files=no"])?;
        Ok(out.success() && !out.stdout.trim().is_empty())
    }
}

/// Refuses to restart a session whose worktree is gone (a watcher's
/// restart reuses the recorded worktree; it never makes a new one).
pub(crate) fn check_restart(id: &str, worktree: Option<&WorktreeRecord>) -> Result<(), CliError> {
    match worktree {
        Some(w) if !w.path.is_dir() => Err(CliError::failure(format!(
            "the worktree of session {id}, {}, is gone; it cannot be restarted there",
            w.path.display()
        ))
        .hint(format!(
            "start a new session: reins run AGENT --worktree (branch {} is still there, unless \
             it was deleted)",
            w.branch
        ))),
        _ => Ok(()),
    }
}

fn read_record(path: &Path) -> Result<Option<WorktreeRecord>, CliError> {
    WorktreeRecord::read(path)
        .map_err(|err| CliError::failure(format!("cannot read {}: {err}", path.display())))
}

/// Creates the directory worktrees go in and checks that it takes new
/// entries.
fn make_root(dir: &Path, given: Option<&str>) -> Result<(), CliError> {
    let fail = |what: String| match given {
        Some(from) => CliError::usage(format!("{from}: {what}")).hint(
            "choose a directory you can write to with --worktree-root DIR or REINS_WORKTREE_ROOT",
        ),
        None => CliError::failure(what).hint(
            "the default is beside the repository; choose another place with --worktree-root DIR \
             or REINS_WORKTREE_ROOT",
        ),
    };
    std::fs::create_dir_all(dir).map_err(|err| {
        fail(format!("cannot create the worktree directory {}: {err}", dir.display()))
    })?;
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK)
        .map_err(|err| fail(format!("cannot write in {}: {err}", dir.display())))
}

/// `git check-ref-format --branch`: refuses names git would refuse.
fn check_branch_name(cwd: &Path, name: &str) -> Result<(), CliError> {
    match query(cwd, &["check-ref-format", "--branch", name])? {
        Ok(_) if !name.starts_with('-') => Ok(()),
        _ => Err(CliError::usage(format!("{name:?} is not a valid branch name"))
            .hint("e.g. --worktree fix-login (default: reins/ID)")),
    }
}

/// The repository's main worktree (for a bare repository, the repository
/// itself).
fn main_worktree(cwd: &Path) -> Result<PathBuf, CliError> {
    let list = query(cwd, &["worktree", "list", "--porcelain"])?.map_err(|out| {
        CliError::failure(format!(
            "cannot list the worktrees of {}: {}",
            cwd.display(),
            out.reason()
        ))
    })?;
    let first = list
        .lines()
        .find_map(|l| l.strip_prefix("worktree "))
        .ok_or_else(|| CliError::failure("git listed no main worktree".to_string()))?;
    let path = PathBuf::from(first);
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

/// `src/deep/` → `../../`.
fn prefix_up(prefix: &str) -> String {
    prefix.split('/').filter(|c| !c.is_empty()).map(|_| "../").collect()
}

fn absolute(dir: &Path) -> Result<PathBuf, CliError> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    let here = std::env::current_dir()
        .map_err(|err| CliError::failure(format!("cannot read the current directory: {err}")))?;
    Ok(here.join(dir))
}

/// `path` with its longest existing ancestor resolved (symlinks, `..`), so
/// a directory that does not exist yet can be compared with others.
fn resolve(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |acc: PathBuf, c: &&std::ffi::OsStr| acc.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_climb_back_to_the_top() {
        assert_eq!(prefix_up(""), "");
        assert_eq!(prefix_up("src/deep/"), "../../");
    }

    #[test]
    fn missing_directories_resolve_through_existing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(resolve(&tmp.path().join("a/b")), real.join("a/b"));
    }
}
