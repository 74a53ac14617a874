//! `reins worktree list|diff|merge|remove`, and `run --worktree`'s options:
//! the git worktrees sessions work in (`crate::worktree` does the git work).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::control::lookup::{self, Liveness, SessionView};
use crate::control::worktrees::{WithWorktree, check_not_running, sessions_with_worktrees};
use crate::error::{CliError, CliResult, code};
use crate::store::paths::StateRoot;
use crate::worktree::{self, MergeOptions, RemoveOptions, WorktreeRecord};

/// `run`'s worktree options.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct RunArgs {
    /// Run the agent in a new git worktree of the repository, on a new
    /// branch (BRANCH, default reins/ID) started from the current HEAD or
    /// --base. The worktree goes beside the repository, in
    /// <repo>.reins-worktrees/ID, never inside it. The session stays in
    /// the repository's scope; `reins worktree --help` tells what comes
    /// next. Running the same --id with --worktree again reuses it.
    #[arg(long, value_name = "BRANCH", num_args = 0..=1, default_missing_value = "")]
    pub(crate) worktree: Option<String>,
    /// Start the worktree's branch at REV (branch, tag or commit) instead
    /// of the current HEAD.
    #[arg(long, value_name = "REV", requires = "worktree")]
    pub(crate) base: Option<String>,
    /// Put worktrees in DIR/<repo>-<hash>/ID (default: $REINS_WORKTREE_ROOT
    /// when set, else beside the repository).
    #[arg(long, value_name = "DIR", requires = "worktree")]
    pub(crate) worktree_root: Option<PathBuf>,
}

impl RunArgs {
    /// `reins run --worktree mock`: clap took the agent for the BRANCH.
    pub(crate) fn take_agent(&mut self, agent: &mut Option<String>) {
        if agent.is_none()
            && let Some(branch) = self.worktree.as_mut().filter(|b| !b.is_empty())
        {
            *agent = Some(std::mem::take(branch));
        }
    }
}

/// The git worktrees of sessions started with `reins run --worktree`.
///
/// Each such session works on its own branch (reins/ID unless named) in
/// its own worktree beside the repository. `list` shows them with how far
/// each branch is ahead of or behind its base and whether it has
/// uncommitted work; `diff` shows what a branch changed; `merge` merges it
/// into the branch checked out in the repository's main worktree; `remove`
/// deletes the worktree (the branch stays unless --delete-branch).
/// Nothing is deleted unless asked, and `reins gc` lists the worktrees of
/// sessions that ended.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins run claude --id fix-1 --worktree --detach --context 'fix the login test'
  reins worktree list
  reins worktree diff --id fix-1 --stat
  reins worktree merge --id fix-1 --squash
  reins stop --id fix-1 && reins worktree remove --id fix-1 --delete-branch

Exit codes: 0 ok, 1 refused or failed (nothing was changed unless the message
says so), 2 usage error.")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    List(ListArgs),
    Diff(DiffArgs),
    Merge(MergeArgs),
    Remove(RemoveArgs),
}

/// List the worktrees of this repository's sessions.
///
/// Columns: ID, SESSION (live, dead: its host died, exited), BRANCH, BASE
/// (what AHEAD and BEHIND count against), AHEAD, BEHIND, DIRTY
/// (uncommitted changes, new files included), PATH.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins worktree list
  reins worktree list --all --json
  reins worktree list --json | jq -r '.[] | select(.dirty) | .id'

Exit codes: 0 listed (an empty list too), 1 the state directory cannot be
read, 2 bad input (e.g. --repo is not a directory).")]
struct ListArgs {
    /// Worktrees of every repository's sessions.
    #[arg(long, short)]
    all: bool,
    /// Worktrees of the repository at DIR instead of the current one.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// Show what a session's branch changed against its base.
///
/// The diff runs from where the branch left its base (their merge base)
/// to the branch's last commit: what `merge` would bring in. With
/// --uncommitted, to the files in the worktree instead (new files that
/// were never added are not shown).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins worktree diff --id fix-1
  reins worktree diff --id fix-1 --stat --uncommitted
  reins worktree diff --id fix-1 --json

Exit codes: 0 shown, 1 no such session, it has no worktree (or it is gone), or
git failed; 2 bad input.")]
struct DiffArgs {
    /// The session.
    #[arg(long)]
    id: String,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Files and counts of changed lines instead of the patch.
    #[arg(long)]
    stat: bool,
    /// Include the worktree's uncommitted changes.
    #[arg(long)]
    uncommitted: bool,
    /// Changed files and line counts as one JSON object.
    #[arg(long, conflicts_with = "stat")]
    json: bool,
}

/// Merge a session's branch into the branch checked out in the main
/// worktree.
///
/// Makes a merge commit (so the session's work stays one unit, and `git
/// revert -m 1` takes it back), or with --squash one ordinary commit.
/// Refuses, changing nothing, while the main worktree has uncommitted
/// changes or when the branches conflict (tested with `git merge-tree`
/// before anything is touched). Only commits are merged: uncommitted work
/// in the session's worktree is left out (and said so). Your git hooks
/// and signing settings apply.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins worktree merge --id fix-1
  reins worktree merge --id fix-1 --squash -m 'Fix the login test'

Exit codes: 0 merged (or nothing to merge), 1 refused, nothing changed: no such
session or worktree, uncommitted changes in the main worktree, a conflict, or
the main worktree has no branch checked out; 2 bad input (e.g. the session's
branch is the one checked out there).")]
struct MergeArgs {
    /// The session.
    #[arg(long)]
    id: String,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// One new commit with all the branch's changes instead of a merge
    /// commit.
    #[arg(long)]
    squash: bool,
    /// The commit message (default: names the session and the branch).
    #[arg(long, short, value_name = "TEXT")]
    message: Option<String>,
    /// Print what was done as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Remove a session's worktree.
///
/// Refuses while the session runs, and while the worktree has uncommitted
/// changes (new files included) unless --force. The branch is kept (its
/// commits stay reachable) unless --delete-branch, which refuses while the
/// branch has commits that the main worktree's HEAD lacks, unless --force.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins worktree remove --id fix-1
  reins worktree remove --id fix-1 --delete-branch
  reins worktree remove --id fix-1 --force    throw away uncommitted changes

Exit codes: 0 removed, 1 refused, nothing removed: no such session or worktree,
the session still runs, uncommitted changes (without --force), or unmerged
commits on the branch (--delete-branch without --force); 2 bad input.")]
struct RemoveArgs {
    /// The session.
    #[arg(long)]
    id: String,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Remove it even with uncommitted changes; with --delete-branch,
    /// delete the branch even when it is not merged.
    #[arg(long)]
    force: bool,
    /// Delete the session's branch too.
    #[arg(long)]
    delete_branch: bool,
    /// Print what was done as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    match args.command {
        Sub::List(args) => list(args),
        Sub::Diff(args) => diff(args),
        Sub::Merge(args) => merge(args),
        Sub::Remove(args) => remove(args),
    }
}

/// One worktree as `worktree list --json` reports it.
#[derive(Debug, Serialize)]
struct ListRow {
    id: String,
    scope: String,
    /// `live`, `dead` (its host died) or `exited`.
    session: &'static str,
    path: PathBuf,
    /// Whether the directory is still there.
    exists: bool,
    branch: String,
    /// What `ahead` and `behind` count against: the base branch, or the
    /// base commit.
    base: String,
    base_commit: String,
    ahead: Option<u64>,
    behind: Option<u64>,
    dirty: Option<bool>,
    repo: PathBuf,
    created_at: String,
}

fn liveness(view: &SessionView) -> &'static str {
    match view.liveness {
        Liveness::Live => "live",
        Liveness::Dead => "dead",
        Liveness::Exited => "exited",
    }
}

fn list(args: ListArgs) -> CliResult {
    let state = StateRoot::from_env()?;
    let here = lookup::client_scope(args.repo.as_deref())?;
    let scope = (!args.all).then_some(here.name.as_str());
    let found = sessions_with_worktrees(&state, scope);
    let records: Vec<&WorktreeRecord> = found.iter().map(|f| &f.record).collect();
    let standings = worktree::standings(&records);
    let rows: Vec<ListRow> = found
        .iter()
        .zip(standings)
        .map(|(f, s)| ListRow {
            id: f.view.paths.id.clone(),
            scope: f.view.paths.scope.clone(),
            session: liveness(&f.view),
            exists: f.record.path.is_dir(),
            path: f.record.path.clone(),
            branch: f.record.branch.clone(),
            base: s.base,
            base_commit: f.record.base.clone(),
            ahead: s.ahead,
            behind: s.behind,
            dirty: s.dirty,
            repo: f.record.repo.clone(),
            created_at: f.record.created_at.clone(),
        })
        .collect();
    if args.json {
        crate::cli::print_json(&rows)?;
        return Ok(code::OK);
    }
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "No session worktrees. Start one with: reins run AGENT --worktree --detach")?;
        return Ok(code::OK);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let num = |n: Option<u64>| n.map_or("?".into(), |n| n.to_string());
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.session.to_string(),
                r.branch.clone(),
                r.base.clone(),
                num(r.ahead),
                num(r.behind),
                match r.dirty {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "?".into(),
                },
                if r.exists {
                    crate::cli::status::short_path(&r.path, home.as_deref(), 48)
                } else {
                    format!(
                        "{} (gone)",
                        crate::cli::status::short_path(&r.path, home.as_deref(), 40)
                    )
                },
            ]
        })
        .collect();
    let header = ["ID", "SESSION", "BRANCH", "BASE", "AHEAD", "BEHIND", "DIRTY", "PATH"];
    let mut widths = header.map(|h| h.chars().count());
    for cells in &table {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (cell, w) in cells.zip(widths) {
            s.push_str(&format!("{cell:<w$}  "));
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&mut header.iter().copied()))?;
    for cells in &table {
        writeln!(out, "{}", line(&mut cells.iter().map(String::as_str)))?;
    }
    Ok(code::OK)
}

/// The session `--id` names and its worktree record.
fn find(id: &str, repo: Option<&Path>) -> Result<WithWorktree, CliError> {
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, id, repo)?;
    let record = WorktreeRecord::read(&view.paths.worktree_record()).map_err(|err| {
        CliError::failure(format!("cannot read {}: {err}", view.paths.worktree_record().display()))
    })?;
    match record {
        Some(record) => Ok(WithWorktree { view, record }),
        None => Err(CliError::failure(format!("session {id} has no worktree"))
            .hint("only sessions started with `reins run --worktree` have one, until it is removed; `reins worktree list` shows them")),
    }
}

/// One file of `worktree diff --json`.
#[derive(Debug, Serialize)]
struct DiffFile {
    path: String,
    /// Lines added and removed; `None` for a binary file.
    added: Option<u64>,
    removed: Option<u64>,
}

#[derive(Debug, Serialize)]
struct DiffReport {
    id: String,
    branch: String,
    base: String,
    /// The commit the diff starts from (where the branch left its base).
    from: String,
    uncommitted: bool,
    files: Vec<DiffFile>,
    added: u64,
    removed: u64,
}

fn diff(args: DiffArgs) -> CliResult {
    let WithWorktree { record, .. } = find(&args.id, args.repo.as_deref())?;
    let branch_ref = format!("refs/heads/{}", record.branch);
    let repo = &record.repo;
    let base_ref = match &record.base_branch {
        Some(b)
            if worktree::query(
                repo,
                &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{b}")],
            )?
            .is_ok() =>
        {
            format!("refs/heads/{b}")
        }
        _ => record.base.clone(),
    };
    let from = worktree::query(repo, &["merge-base", &base_ref, &branch_ref])?.map_err(|out| {
        CliError::failure(format!(
            "cannot find where {} left {}: {}",
            record.branch,
            record.base_label(),
            out.reason()
        ))
    })?;
    if args.uncommitted && !record.path.is_dir() {
        return Err(CliError::failure(format!("the worktree {} is gone", record.path.display()))
            .hint("leave out --uncommitted to see the branch's commits"));
    }
    // Committed: from..branch, in the repository. Uncommitted: from..the
    // files, in the worktree.
    let (dir, range): (&Path, Vec<&str>) = if args.uncommitted {
        (&record.path, vec![from.as_str()])
    } else {
        (repo, vec![from.as_str(), branch_ref.as_str()])
    };
    if args.json {
        let mut git_args = vec!["diff", "--numstat"];
        git_args.extend(&range);
        let out = worktree::work(dir, &git_args)?;
        if !out.success() {
            return Err(CliError::failure(format!("git diff failed: {}", out.reason())));
        }
        let files: Vec<DiffFile> = out
            .stdout
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(3, '\t');
                let (added, removed, path) = (parts.next()?, parts.next()?, parts.next()?);
                Some(DiffFile {
                    path: path.to_string(),
                    added: added.parse().ok(),
                    removed: removed.parse().ok(),
                })
            })
            .collect();
        let report = DiffReport {
            id: args.id.clone(),
            branch: record.branch.clone(),
            base: record.base_label(),
            added: files.iter().filter_map(|f| f.added).sum(),
            removed: files.iter().filter_map(|f| f.removed).sum(),
            from,
            uncommitted: args.uncommitted,
            files,
        };
        crate::cli::print_json(&report)?;
        return Ok(code::OK);
    }
    // Git writes the diff itself: its colours, its pager, as `git diff` would.
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir).arg("diff");
    if args.stat {
        cmd.arg("--stat");
    }
    cmd.args(&range);
    let status = cmd.status().map_err(|err| {
        CliError::failure(format!("cannot run git: {err}"))
            .hint("install git (the worktree commands run it)")
    })?;
    if !status.success() {
        return Err(CliError::failure(format!("git diff failed ({status})")));
    }
    Ok(code::OK)
}

fn merge(args: MergeArgs) -> CliResult {
    let WithWorktree { view, record } = find(&args.id, args.repo.as_deref())?;
    let merged = worktree::merge(
        &args.id,
        &record,
        MergeOptions {
            squash: args.squash,
            message: args.message.as_deref(),
            running: view.liveness != Liveness::Exited,
        },
    )?;
    for note in &merged.notes {
        eprintln!("reins: note: {note}");
    }
    if args.json {
        crate::cli::print_json(&merged)?;
    } else if merged.commits == 0 {
        println!("nothing to merge: {} has no commits that {} lacks", merged.branch, merged.into);
    } else {
        let s = if merged.commits == 1 { "" } else { "s" };
        if merged.squash {
            println!(
                "squashed {} commit{s} of {} into one commit on {} ({}): {}",
                merged.commits,
                merged.branch,
                merged.into,
                merged.repo.display(),
                worktree::short(&merged.after)
            );
        } else {
            println!(
                "merged {} ({} commit{s}) into {} ({}): merge commit {}",
                merged.branch,
                merged.commits,
                merged.into,
                merged.repo.display(),
                worktree::short(&merged.after)
            );
        }
    }
    Ok(code::OK)
}

fn remove(args: RemoveArgs) -> CliResult {
    let WithWorktree { view, record } = find(&args.id, args.repo.as_deref())?;
    check_not_running(&view)?;
    let removed = worktree::remove(
        &args.id,
        &record,
        &view.paths.worktree_record(),
        RemoveOptions { force: args.force, delete_branch: args.delete_branch },
    )?;
    if args.json {
        crate::cli::print_json(&removed)?;
        return Ok(code::OK);
    }
    if removed.was_missing {
        println!(
            "the worktree {} of session {} was already gone; dropped git's record of it",
            removed.path.display(),
            removed.id
        );
    } else {
        println!("removed the worktree {} of session {}", removed.path.display(), removed.id);
    }
    if !removed.discarded.is_empty() {
        println!(
            "threw away uncommitted changes in {} file{}",
            removed.discarded.len(),
            if removed.discarded.len() == 1 { "" } else { "s" }
        );
    }
    println!("{}", branch_fate(&removed));
    Ok(code::OK)
}

/// What happened to the branch, in words.
pub(crate) fn branch_fate(removed: &worktree::Removed) -> String {
    let b = &removed.branch;
    match (removed.branch_deleted, removed.unmerged) {
        (true, Some(n)) if n > 0 => format!("deleted branch {b} and its {n} unmerged commit(s)"),
        (true, _) => format!("deleted branch {b}"),
        (false, None) => format!("branch {b} no longer exists"),
        (false, Some(0)) => format!("kept branch {b} (merged; `git branch -d {b}` deletes it)"),
        (false, Some(n)) => format!(
            "kept branch {b}: {n} commit{} not merged into the main worktree's HEAD",
            if n == 1 { "" } else { "s" }
        ),
    }
}
