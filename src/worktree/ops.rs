//! Merging a session's branch and removing its worktree (`worktree merge`,
//! `worktree remove`, `gc --worktrees`). Both check everything before they
//! change anything, and say what they did.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cmd::{query, work};
use super::record::WorktreeRecord;
use crate::error::CliError;
use crate::store::fsutil;

/// What `merge` did.
#[derive(Debug, Serialize)]
pub(crate) struct Merged {
    pub(crate) id: String,
    pub(crate) branch: String,
    /// The branch merged into: the one checked out in the main worktree.
    pub(crate) into: String,
    pub(crate) repo: PathBuf,
    /// Commits of the session's branch that `into` lacked (0: nothing to
    /// merge, nothing done).
    pub(crate) commits: u64,
    pub(crate) squash: bool,
    /// The main worktree's HEAD before and after.
    pub(crate) before: String,
    pub(crate) after: String,
    /// What a user should know: the session still runs, uncommitted work
    /// was left out.
    pub(crate) notes: Vec<String>,
}

/// How to merge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergeOptions<'a> {
    /// One new commit on `into` instead of a merge commit.
    pub(crate) squash: bool,
    /// The commit message (default: says which session and branch).
    pub(crate) message: Option<&'a str>,
    /// The session is still running (noted, not refused).
    pub(crate) running: bool,
}

/// Merges the session's branch into the branch checked out in the
/// repository's main worktree: a merge commit (`--no-ff`, so the session's
/// work stays one unit that `git revert -m 1` can take back), or with
/// `squash` one ordinary commit. Refuses while the main worktree has
/// uncommitted changes or when the branches conflict, and then leaves
/// everything as it was.
pub(crate) fn merge(
    id: &str,
    rec: &WorktreeRecord,
    opts: MergeOptions<'_>,
) -> Result<Merged, CliError> {
    let repo = &rec.repo;
    if !repo.is_dir() {
        return Err(CliError::failure(format!(
            "the repository's main worktree {} is gone",
            repo.display()
        )));
    }
    let into = query(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"])?.map_err(|_| {
        CliError::failure(format!(
            "the main worktree {} has no branch checked out (detached HEAD); nothing was merged",
            repo.display()
        ))
        .hint("check out the branch to merge into there, then merge again")
    })?;
    let branch_ref = format!("refs/heads/{}", rec.branch);
    if into == rec.branch {
        return Err(CliError::usage(format!(
            "branch {} is checked out in the main worktree {} itself",
            rec.branch,
            repo.display()
        ))
        .hint("check out the branch to merge into there, then merge again"));
    }
    query(repo, &["rev-parse", "--verify", "--quiet", &branch_ref])?.map_err(|_| {
        CliError::failure(format!("branch {} of session {id} no longer exists", rec.branch))
    })?;
    let before = head(repo)?;
    let changed = changes(repo, false)?;
    if !changed.is_empty() {
        return Err(CliError::failure(format!(
            "the main worktree {} has uncommitted changes ({}); nothing was merged",
            repo.display(),
            list(&changed)
        ))
        .hint("commit or stash them first, then merge again"));
    }
    let commits = count(repo, &format!("HEAD..{branch_ref}"))?;
    let mut notes = Vec::new();
    if opts.running {
        notes.push(format!(
            "session {id} is still running: what it commits from now on is not part of this merge"
        ));
    }
    if rec.path.is_dir() {
        let left_out = changes(&rec.path, true)?;
        if !left_out.is_empty() {
            notes.push(format!(
                "uncommitted changes in {} ({}) are not part of the merge",
                rec.path.display(),
                list(&left_out)
            ));
        }
    }
    let mut merged = Merged {
        id: id.to_string(),
        branch: rec.branch.clone(),
        into: into.clone(),
        repo: repo.clone(),
        commits,
        squash: opts.squash,
        before: before.clone(),
        after: before.clone(),
        notes,
    };
    if commits == 0 {
        return Ok(merged);
    }
    let conflicted = conflicts(repo, &branch_ref)?;
    if !conflicted.is_empty() {
        return Err(CliError::failure(format!(
            "cannot merge {} into {into}: they conflict in {}; nothing was changed",
            rec.branch,
            list(&conflicted)
        ))
        .hint(format!(
            "resolve it on the session's branch: merge {into} there (cd {} && git merge {into}, \
             or ask the agent to), commit, then merge again",
            rec.path.display()
        )));
    }
    if opts.squash {
        let message = match opts.message {
            Some(m) => m.to_string(),
            None => squash_message(repo, id, &rec.branch, &branch_ref, commits)?,
        };
        let out = work(repo, &["merge", "--squash", "--quiet", &branch_ref])?;
        if !out.success() {
            restore(repo, &before)?;
            return Err(git_refused("merge --squash", &out.reason()));
        }
        let out = work(repo, &["commit", "--quiet", "-m", &message])?;
        if !out.success() {
            restore(repo, &before)?;
            return Err(git_refused("commit", &out.reason()));
        }
    } else {
        let message = opts
            .message
            .map(str::to_string)
            .unwrap_or_else(|| format!("Merge branch '{}' (reins session {id})", rec.branch));
        let out =
            work(repo, &["merge", "--no-ff", "--no-edit", "--quiet", "-m", &message, &branch_ref])?;
        if !out.success() {
            restore(repo, &before)?;
            return Err(git_refused("merge", &out.reason()));
        }
    }
    merged.after = head(repo)?;
    Ok(merged)
}

fn git_refused(what: &str, reason: &str) -> CliError {
    CliError::failure(format!("git {what} failed: {reason}; everything was put back as it was"))
        .hint("fix what git says (a hook, your identity, a file in the way), then merge again")
}

/// `reins session ID: N commits from BRANCH, squashed` and their subjects.
fn squash_message(
    repo: &Path,
    id: &str,
    branch: &str,
    branch_ref: &str,
    commits: u64,
) -> Result<String, CliError> {
    let log = query(repo, &["log", "--reverse", "--format=* %s", &format!("HEAD..{branch_ref}")])?
        .unwrap_or_default();
    let s = if commits == 1 { "" } else { "s" };
    Ok(format!("reins session {id}: {commits} commit{s} from {branch}, squashed\n\n{log}\n"))
}

/// Files the two sides of a merge both changed in conflicting ways. Asks
/// `git merge-tree --write-tree` (git 2.38+), which touches no file; with
/// an older git, merges with `--no-commit` and aborts.
fn conflicts(repo: &Path, branch_ref: &str) -> Result<Vec<String>, CliError> {
    let out = work(
        repo,
        &["merge-tree", "--write-tree", "--name-only", "--no-messages", "HEAD", branch_ref],
    )?;
    match out.code {
        Some(0) => Ok(Vec::new()),
        Some(1) => {
            let files: Vec<String> = out
                .stdout
                .lines()
                .skip(1) // the tree
                .take_while(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            Ok(if files.is_empty() { vec!["files git did not name".into()] } else { files })
        }
        Some(129) => trial_merge(repo, branch_ref), // an older git: no --write-tree
        _ => Err(CliError::failure(format!(
            "cannot test the merge for conflicts: {}; nothing was changed",
            out.reason()
        ))),
    }
}

fn trial_merge(repo: &Path, branch_ref: &str) -> Result<Vec<String>, CliError> {
    let before = head(repo)?;
    let out = work(repo, &["merge", "--no-commit", "--no-ff", "--quiet", branch_ref])?;
    let files = if out.success() {
        Vec::new()
    } else {
        let unmerged =
            query(repo, &["diff", "--name-only", "--diff-filter=U"])?.unwrap_or_default();
        let files: Vec<String> = unmerged.lines().map(str::to_string).collect();
        if files.is_empty() { vec![out.reason()] } else { files }
    };
    restore(repo, &before)?;
    Ok(files)
}

/// Puts the main worktree back after a merge that failed or was only a
/// test (its tracked files were clean before, so nothing of the user's is
/// lost).
fn restore(repo: &Path, before: &str) -> Result<(), CliError> {
    let in_merge = query(repo, &["rev-parse", "--verify", "--quiet", "MERGE_HEAD"])?.is_ok();
    let out = if in_merge {
        work(repo, &["merge", "--abort"])?
    } else {
        work(repo, &["reset", "--quiet", "--merge", before])?
    };
    if let Ok(msg) = query(repo, &["rev-parse", "--git-path", "SQUASH_MSG"])? {
        let _ = fsutil::remove_if_exists(&repo.join(msg));
    }
    if out.success() {
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "the merge failed and {} could not be put back: {}",
            repo.display(),
            out.reason()
        ))
        .hint(format!("look at `git -C {} status`; `git merge --abort` may help", repo.display())))
    }
}

/// What `remove` did.
#[derive(Debug, Serialize)]
pub(crate) struct Removed {
    pub(crate) id: String,
    pub(crate) path: PathBuf,
    pub(crate) branch: String,
    /// The directory was already gone: only git's record of it was pruned.
    pub(crate) was_missing: bool,
    /// Uncommitted changes thrown away (`--force`).
    pub(crate) discarded: Vec<String>,
    pub(crate) branch_deleted: bool,
    /// Commits on the branch that the main worktree's HEAD lacks (what a
    /// kept branch still holds, or what `--force` deleted with it).
    pub(crate) unmerged: Option<u64>,
}

/// How to remove.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RemoveOptions {
    /// Remove even with uncommitted changes, and delete an unmerged branch.
    pub(crate) force: bool,
    /// Delete the branch too (refused when unmerged, unless `force`).
    pub(crate) delete_branch: bool,
}

/// Removes a session's worktree (the caller made sure the session is not
/// running) and `record_path`, its `worktree.json`. Refuses, changing
/// nothing, when the tree has uncommitted work or the branch to delete has
/// unmerged commits, unless `force`.
pub(crate) fn remove(
    id: &str,
    rec: &WorktreeRecord,
    record_path: &Path,
    opts: RemoveOptions,
) -> Result<Removed, CliError> {
    let repo = &rec.repo;
    if !repo.is_dir() {
        return Err(CliError::failure(format!(
            "the repository's main worktree {} is gone",
            repo.display()
        ))
        .hint(format!("remove {} by hand if you no longer need it", rec.path.display())));
    }
    let exists = rec.path.is_dir();
    let dirty = if exists { changes(&rec.path, true)? } else { Vec::new() };
    if !dirty.is_empty() && !opts.force {
        return Err(CliError::failure(format!(
            "the worktree {} of session {id} has uncommitted changes ({}); nothing was removed",
            rec.path.display(),
            list(&dirty)
        ))
        .hint(format!(
            "commit them (they stay on branch {}), or pass --force to throw them away",
            rec.branch
        )));
    }
    let branch_ref = format!("refs/heads/{}", rec.branch);
    let has_branch = query(repo, &["rev-parse", "--verify", "--quiet", &branch_ref])?.is_ok();
    let unmerged =
        if has_branch { Some(count(repo, &format!("HEAD..{branch_ref}"))?) } else { None };
    if opts.delete_branch && !opts.force && unmerged.is_some_and(|n| n > 0) {
        let n = unmerged.unwrap_or(0);
        return Err(CliError::failure(format!(
            "branch {} has {n} commit{} that the main worktree's HEAD lacks; nothing was removed",
            rec.branch,
            if n == 1 { "" } else { "s" }
        ))
        .hint(format!(
            "merge it first (reins worktree merge --id {id}), keep the branch (leave out \
             --delete-branch), or pass --force to delete the commits too"
        )));
    }
    if exists {
        let path = rec.path.to_string_lossy();
        let mut args = vec!["worktree", "remove"];
        if opts.force {
            args.push("--force");
        }
        args.push(&path);
        let out = work(repo, &args)?;
        if !out.success() {
            return Err(CliError::failure(format!(
                "cannot remove the worktree {}: {}",
                rec.path.display(),
                out.reason()
            )));
        }
    } else {
        // Only drops git's records of worktrees whose directory is gone.
        let _ = work(repo, &["worktree", "prune"])?;
    }
    fsutil::remove_if_exists(record_path).map_err(|err| {
        CliError::failure(format!("cannot remove {}: {err}", record_path.display()))
    })?;
    if let Some(parent) = rec.path.parent() {
        let _ = std::fs::remove_dir(parent); // the worktrees' directory, once empty
    }
    let mut branch_deleted = false;
    if opts.delete_branch && has_branch {
        let out = work(repo, &["branch", "--quiet", "-D", &rec.branch])?;
        if !out.success() {
            return Err(CliError::failure(format!(
                "removed the worktree {}, but cannot delete branch {}: {}",
                rec.path.display(),
                rec.branch,
                out.reason()
            )));
        }
        branch_deleted = true;
    }
    Ok(Removed {
        id: id.to_string(),
        path: rec.path.clone(),
        branch: rec.branch.clone(),
        was_missing: !exists,
        discarded: dirty,
        branch_deleted,
        unmerged,
    })
}

/// Uncommitted changes in a working tree (`untracked`: new files count),
/// as paths.
fn changes(dir: &Path, untracked: bool) -> Result<Vec<String>, CliError> {
    let flag = if untracked { "--untracked-files=normal" } else { "--untracked-files=no" };
    let out = work(dir, &["status", "--porcelain", flag])?;
    if !out.success() {
        return Err(CliError::failure(format!(
            "cannot read the state of {}: {}",
            dir.display(),
            out.reason()
        )));
    }
    // `XY path`: the two status columns are significant, so no trimming.
    Ok(out.stdout.lines().filter_map(|l| l.get(3..)).map(str::to_string).collect())
}

fn head(repo: &Path) -> Result<String, CliError> {
    query(repo, &["rev-parse", "HEAD"])?.map_err(|out| {
        CliError::failure(format!("cannot read HEAD of {}: {}", repo.display(), out.reason()))
    })
}

fn count(repo: &Path, range: &str) -> Result<u64, CliError> {
    let out = query(repo, &["rev-list", "--count", range])?.map_err(|out| {
        CliError::failure(format!("cannot count commits {range}: {}", out.reason()))
    })?;
    Ok(out.parse().unwrap_or(0))
}

/// `a.txt, b.txt, … (7 more)`.
fn list(files: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut s = files.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if files.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", files.len() - SHOWN));
    }
    s
}
