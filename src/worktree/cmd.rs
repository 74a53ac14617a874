//! Running git for the worktree commands: quick questions and slower work,
//! each with a deadline, failures turned into errors that say what to do.

use std::path::Path;
use std::time::Duration;

use crate::error::CliError;
use crate::git;

/// How long a question to git may take (rev-parse, status, ...).
const QUERY: Duration = Duration::from_secs(10);
/// How long git may take to check out, merge or remove a tree.
const WORK: Duration = Duration::from_secs(300);

/// Runs a quick git query: `Ok(Ok(stdout))` when it succeeded,
/// `Ok(Err(output))` when git said no, `Err` when git could not be asked.
pub(crate) fn query(cwd: &Path, args: &[&str]) -> Result<Result<String, git::Output>, CliError> {
    let out = git::output(cwd, args, QUERY).map_err(git_error)?;
    Ok(if out.success() { Ok(out.stdout.trim().to_string()) } else { Err(out) })
}

/// Runs a git command that changes things (longer deadline).
pub(crate) fn work(cwd: &Path, args: &[&str]) -> Result<git::Output, CliError> {
    git::output(cwd, args, WORK).map_err(git_error)
}

fn git_error(err: git::Error) -> CliError {
    let hint = match err {
        git::Error::Spawn(_) => "install git (the worktree commands run it)",
        _ => "try again; a slow file system or a hung git hook can cause this",
    };
    CliError::failure(err.to_string()).hint(hint)
}
