//! `reins gc`: clean up after session hosts that died, and retire
//! sessions that sat idle too long.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cli::worktree::{self as worktree_cli, WithWorktree};
use crate::control::cleanup::{self, Cleaned};
use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::{CliError, CliResult, code};
use crate::ipc::{Client, StatusReply, StopReply, StopRequest};
use crate::store::exit_record::ExitReason;
use crate::store::paths::StateRoot;
use crate::worktree::{self, RemoveOptions, WorktreeRecord};

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
}

/// A session retired (or, with --dry-run, that would be) or kept.
#[derive(Debug, Serialize)]
struct Idle {
    id: String,
    scope: String,
    idle_s: f64,
    /// Why it was not retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    cleaned: Vec<Cleaned>,
    /// Live sessions idle past --idle: retired, or kept (with why).
    retired: Vec<Idle>,
    /// Worktrees of sessions that no longer run.
    worktrees: Vec<Leftover>,
}

/// A worktree a session that no longer runs left behind.
#[derive(Debug, Serialize)]
struct Leftover {
    id: String,
    scope: String,
    path: PathBuf,
    exists: bool,
    branch: String,
    /// Uncommitted changes (new files included); `None`: git could not tell.
    dirty: Option<bool>,
    /// Removed by this `gc --worktrees`.
    removed: bool,
    /// Why `gc --worktrees` left it.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept: Option<String>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let mut cleaned = Vec::new();
    for paths in state.list_sessions(None) {
        let view = SessionView::read(paths);
        if view.liveness != Liveness::Dead {
            continue;
        }
        if args.dry_run {
            cleaned.push(Cleaned {
                id: view.paths.id.clone(),
                scope: view.paths.scope.clone(),
                // What a real run would kill.
                killed: view.record.as_ref().map_or_else(Vec::new, |r| {
                    crate::procs::leftovers(&r.run, r.agent_pid, r.agent_start_ticks)
                }),
                closed_run: false,
            });
        } else if let Some(done) = cleanup::clean_dead(&view, ExitReason::Failure)? {
            cleaned.push(done);
        }
    }
    let idle = match args.idle {
        Some(idle) => Some(idle),
        None => crate::config::retire_after()?,
    };
    let retired = match idle {
        Some(idle) => retire_idle(&state, idle, args.dry_run)?,
        None => Vec::new(),
    };
    let worktrees = leftover_worktrees(&state, args.worktrees && !args.dry_run);
    if args.json {
        crate::cli::print_json(&Report { dry_run: args.dry_run, cleaned, retired, worktrees })?;
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

/// Retires the live sessions whose transcript has not grown for `idle`,
/// unless their host says a turn runs or messages wait.
fn retire_idle(state: &StateRoot, idle: Duration, dry_run: bool) -> Result<Vec<Idle>, CliError> {
    let mut out = Vec::new();
    let rt = crate::cli::runtime();
    for paths in state.list_sessions(None) {
        let view = SessionView::read(paths);
        if view.liveness != Liveness::Live {
            continue;
        }
        let idle_s = std::fs::metadata(view.paths.transcript())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map_or(0.0, |d| d.as_secs_f64());
        if idle_s < idle.as_secs_f64() {
            continue;
        }
        let Ok(record) = lookup::require_live(&view) else { continue };
        let mut entry = Idle {
            id: view.paths.id.clone(),
            scope: view.paths.scope.clone(),
            idle_s: (idle_s * 10.0).round() / 10.0,
            kept: None,
        };
        let client = Client::new(&record.socket, Duration::from_secs(3));
        entry.kept = rt.block_on(async {
            let status: StatusReply = match client.get("/v1/status").await {
                Ok(status) => status,
                Err(err) => return Some(format!("its host did not answer: {err}")),
            };
            if status.turn_open {
                return Some("a turn is running".into());
            }
            if status.queued > 0 {
                return Some(format!("{} message(s) are queued", status.queued));
            }
            if dry_run {
                return None;
            }
            let mut gone = crate::store::follow::host_gone(&view.paths.host_lock());
            let request = StopRequest { timeout_ms: Some(10_000), retire: true };
            match client.post::<_, StopReply>("/v1/stop", &request).await {
                Ok(reply) if !reply.ok => {
                    Some(reply.refused.unwrap_or_else(|| "its host refused".into()))
                }
                Ok(_) => match tokio::time::timeout(Duration::from_secs(15), &mut gone).await {
                    Ok(_) => None,
                    Err(_) => Some("it did not stop within 15s (`reins stop --force`)".into()),
                },
                Err(err) => Some(format!("cannot ask it to stop: {err}")),
            }
        });
        out.push(entry);
    }
    Ok(out)
}

/// The worktrees of sessions that no longer run; with `remove`, removes
/// those without uncommitted changes (keeping their branches).
fn leftover_worktrees(state: &StateRoot, remove: bool) -> Vec<Leftover> {
    let found: Vec<WithWorktree> = worktree_cli::sessions_with_worktrees(state, None)
        .into_iter()
        .filter(|f| f.view.liveness != Liveness::Live)
        .collect();
    let records: Vec<&WorktreeRecord> = found.iter().map(|f| &f.record).collect();
    let standings = worktree::standings(&records);
    found
        .iter()
        .zip(standings)
        .map(|(f, standing)| {
            let mut left = Leftover {
                id: f.view.paths.id.clone(),
                scope: f.view.paths.scope.clone(),
                path: f.record.path.clone(),
                exists: f.record.path.is_dir(),
                branch: f.record.branch.clone(),
                dirty: standing.dirty,
                removed: false,
                kept: None,
            };
            if remove {
                let options = RemoveOptions { force: false, delete_branch: false };
                let removed = worktree_cli::check_not_running(&f.view).and_then(|()| {
                    worktree::remove(&left.id, &f.record, &f.view.paths.worktree_record(), options)
                });
                match removed {
                    Ok(_) => left.removed = true,
                    Err(err) => left.kept = Some(err.message),
                }
            }
            left
        })
        .collect()
}
