//! `reins gc`: clean up after session hosts that died, and retire
//! sessions that sat idle too long.

use std::time::Duration;

use crate::control::gc::{self, Report};
use crate::error::{CliResult, code};
use crate::store::paths::StateRoot;

/// Clean up sessions whose host process died: kill what is left of their
/// agents, record how they ended (`exited`, `exit.json`) and remove their
/// registry entries and sockets. Live sessions and the history of ended
/// ones (events, transcripts) are never touched.
///
/// Also lists the git worktrees (`run --worktree`) that sessions which no
/// longer run left behind; they are removed only with --worktrees, and
/// then only those without uncommitted changes (branches are kept).
///
/// With --idle DURATION (or `retire_after = "24h"` under [fleet] in
/// config.toml) it also retires live sessions that printed nothing for
/// that long: they are stopped and their exit reason is `retired`. Never
/// one whose turn is running or that has messages queued (its host checks
/// when asked).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins gc\n  reins gc --dry-run --json\n  reins gc --worktrees\n  reins gc --idle 24h\n\nExit codes: 0 cleaned (or nothing to clean), 1 the state directory cannot be\nused or a session could not be cleaned, 2 bad input."
)]
pub(crate) struct Args {
    /// Only list what would be cleaned.
    #[arg(long)]
    dry_run: bool,
    /// Also remove leftover worktrees of sessions that no longer run,
    /// unless they hold uncommitted changes; their branches are kept.
    #[arg(long)]
    worktrees: bool,
    /// Retire live sessions idle at least this long (default: [fleet]
    /// retire_after in config.toml, else never).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    idle: Option<Duration>,
    /// Print a JSON array instead of lines of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let options = gc::Options { dry_run: args.dry_run, worktrees: args.worktrees, idle: args.idle };
    let Report { dry_run, cleaned, retired, worktrees } =
        crate::cli::runtime().block_on(gc::gc(&state, &options))?;
    if args.json {
        crate::cli::print_json(&Report { dry_run, cleaned, retired, worktrees })?;
        return Ok(code::OK);
    }
    for r in &retired {
        let idle = crate::time::human(r.idle_s);
        match &r.kept {
            Some(why) => println!("kept {} in {} (idle {idle}): {why}", r.id, r.scope),
            None if args.dry_run => println!("would retire {} in {} (idle {idle})", r.id, r.scope),
            None => println!("retired {} in {} (idle {idle})", r.id, r.scope),
        }
    }
    if cleaned.is_empty() && worktrees.is_empty() && retired.is_empty() {
        println!("nothing to clean");
    } else {
        let verb = if args.dry_run { "would clean" } else { "cleaned" };
        for c in &cleaned {
            let killed = match (c.killed.is_empty(), args.dry_run) {
                (true, _) => String::new(),
                (false, true) => format!(" (would kill leftover pids {:?})", c.killed),
                (false, false) => format!(" (killed leftover pids {:?})", c.killed),
            };
            println!("{verb} {} in {}{killed}", c.id, c.scope);
        }
    }
    for w in &worktrees {
        let what =
            format!("worktree of session {}: {} (branch {})", w.id, w.path.display(), w.branch);
        match (&w.kept, w.removed) {
            (_, true) => println!("removed the {what}; the branch is kept"),
            (Some(why), false) => println!("kept the {what}: {why}"),
            (None, false) => {
                let state = match (w.exists, w.dirty) {
                    (false, _) => " [directory gone]",
                    (true, Some(true)) => " [uncommitted changes]",
                    _ => "",
                };
                println!("leftover {what}{state}")
            }
        }
    }
    if !args.worktrees && worktrees.iter().any(|w| !w.removed) {
        println!(
            "(leftover worktrees stay until you remove them: `reins worktree remove --id ID`, or \
             `reins gc --worktrees` for those without uncommitted changes)"
        );
    }
    Ok(code::OK)
}
