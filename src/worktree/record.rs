//! The worktree record and where a worktree stands (ahead, behind, dirty).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::git;
use crate::store::fsutil;

/// How long `status` waits for one worktree's standing.
const STANDING: Duration = Duration::from_secs(1);
/// Git commands `status` runs at once, at most.
const STANDING_PARALLEL: usize = 8;

/// A session's worktree, as `worktree.json`, `launch.json` and
/// `session.json` record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WorktreeRecord {
    /// The worktree's top directory.
    pub(crate) path: PathBuf,
    /// The session's branch, checked out there.
    pub(crate) branch: String,
    /// The commit the branch started from.
    pub(crate) base: String,
    /// The local branch `base` was taken from (the one checked out where
    /// `run` ran, or `--base` when it names a local branch): ahead/behind
    /// count against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) base_branch: Option<String>,
    /// The repository's main worktree, which `worktree merge` merges into.
    pub(crate) repo: PathBuf,
    pub(crate) created_at: String,
}

impl WorktreeRecord {
    /// Reads `worktree.json`; `Ok(None)` when there is none.
    pub(crate) fn read(path: &Path) -> std::io::Result<Option<WorktreeRecord>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        json.push(b'\n');
        fsutil::write_atomic(path, &json)
    }

    /// What ahead/behind count against: the base branch, else the base
    /// commit.
    pub(super) fn against(&self) -> String {
        match &self.base_branch {
            Some(branch) => format!("refs/heads/{branch}"),
            None => self.base.clone(),
        }
    }

    pub(super) fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// The base as people read it: its branch, or a short commit.
    pub(crate) fn base_label(&self) -> String {
        self.base_branch.clone().unwrap_or_else(|| short(&self.base).to_string())
    }
}

/// Where a worktree stands now, as `status` and `worktree list` show it.
/// `None` fields: git could not tell in time (or the directory is gone).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Standing {
    pub(crate) path: PathBuf,
    pub(crate) branch: String,
    /// What `ahead` and `behind` count against.
    pub(crate) base: String,
    /// Commits on the branch that the base lacks.
    pub(crate) ahead: Option<u64>,
    /// Commits on the base that the branch lacks.
    pub(crate) behind: Option<u64>,
    /// Uncommitted changes, untracked files included.
    pub(crate) dirty: Option<bool>,
}

impl Standing {
    /// `reins/fix +2 -1 *`: branch, commits ahead and behind, `*` when
    /// dirty, `?` for what git could not tell.
    pub(crate) fn compact(&self) -> String {
        let mut s = self.branch.clone();
        match (self.ahead, self.behind) {
            (Some(ahead), Some(behind)) => {
                if ahead > 0 {
                    s.push_str(&format!(" +{ahead}"));
                }
                if behind > 0 {
                    s.push_str(&format!(" -{behind}"));
                }
            }
            _ => s.push_str(" ?"),
        }
        match self.dirty {
            Some(true) => s.push_str(" *"),
            Some(false) => {}
            None if self.ahead.is_some() => s.push_str(" ?"),
            None => {}
        }
        s
    }
}

/// The standing of each worktree: two bounded git commands per worktree,
/// run a few at a time, so `status` pays only for sessions that have one.
pub(crate) fn standings(records: &[&WorktreeRecord]) -> Vec<Standing> {
    let ranges: Vec<String> =
        records.iter().map(|r| format!("{}...{}", r.against(), r.branch_ref())).collect();
    let mut jobs: Vec<(&Path, Vec<&str>)> = Vec::new();
    for (record, range) in records.iter().zip(&ranges) {
        // The branch lives on in the repository even when the directory is gone.
        let here = if record.path.is_dir() { &record.path } else { &record.repo };
        jobs.push((here, vec!["rev-list", "--left-right", "--count", range.as_str()]));
        jobs.push((&record.path, vec!["status", "--porcelain", "--untracked-files=normal"]));
    }
    let mut results = git::run_all(&jobs, STANDING, STANDING_PARALLEL).into_iter();
    records
        .iter()
        .map(|record| {
            let counts = results.next().and_then(|r| r.ok()).filter(git::Output::success);
            let status = results.next().and_then(|r| r.ok()).filter(git::Output::success);
            let (behind, ahead) = counts.and_then(|o| left_right(&o.stdout)).unzip();
            Standing {
                path: record.path.clone(),
                branch: record.branch.clone(),
                base: record.base_label(),
                ahead,
                behind,
                dirty: status.filter(|_| record.path.is_dir()).map(|o| !o.stdout.trim().is_empty()),
            }
        })
        .collect()
}

/// `3\t1` (rev-list --left-right --count) → (3, 1).
fn left_right(text: &str) -> Option<(u64, u64)> {
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
    Some((it.next()??, it.next()??))
}

/// The first 7 characters of a commit id.
pub(crate) fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_standing_reads_like_a_prompt() {
        let mut s = Standing {
            path: "/w".into(),
            branch: "reins/a".into(),
            base: "main".into(),
            ahead: Some(2),
            behind: Some(1),
            dirty: Some(true),
        };
        assert_eq!(s.compact(), "reins/a +2 -1 *");
        s.behind = Some(0);
        s.dirty = Some(false);
        assert_eq!(s.compact(), "reins/a +2");
        s.ahead = None;
        s.dirty = None;
        assert_eq!(s.compact(), "reins/a ?");
    }

    #[test]
    fn left_right_counts_parse() {
        assert_eq!(left_right("3\t1\n"), Some((3, 1)));
        assert_eq!(left_right(""), None);
    }
}
