//! Cleaning up: after session hosts that died (what they left running is
//! killed and their runs closed), sessions that sat idle too long
//! (retired), and the git worktrees of sessions that no longer run.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::control::cleanup::{self, Cleaned};
use crate::control::lookup::{self, Liveness, SessionView};
use crate::control::worktrees::{self, WithWorktree};
use crate::error::CliError;
use crate::ipc::{Client, StatusReply, StopReply, StopRequest};
use crate::store::exit_record::ExitReason;
use crate::store::paths::StateRoot;
use crate::worktree::{self, RemoveOptions, WorktreeRecord};

/// What to clean up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    /// Only say what would be cleaned.
    pub(crate) dry_run: bool,
    /// Also remove leftover worktrees without uncommitted changes.
    pub(crate) worktrees: bool,
    /// Retire live sessions idle this long (default: `[fleet]
    /// retire_after` in config.toml, else never).
    pub(crate) idle: Option<Duration>,
}

/// Cleans up after hosts that died, retires idle sessions, and lists (or
/// removes) the worktrees of sessions that no longer run.
pub(crate) async fn gc(state: &StateRoot, options: &Options) -> Result<Report, CliError> {
    let mut cleaned = Vec::new();
    for paths in state.list_sessions(None) {
        let view = SessionView::read(paths);
        if view.liveness != Liveness::Dead {
            continue;
        }
        if options.dry_run {
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
    let idle = match options.idle {
        Some(idle) => Some(idle),
        None => crate::config::retire_after()?,
    };
    let retired = match idle {
        Some(idle) => retire_idle(state, idle, options.dry_run).await?,
        None => Vec::new(),
    };
    let worktrees = leftover_worktrees(state, options.worktrees && !options.dry_run);
    Ok(Report { dry_run: options.dry_run, cleaned, retired, worktrees })
}

/// A session retired (or, with --dry-run, that would be) or kept.
#[derive(Debug, Serialize)]
pub(crate) struct Idle {
    pub(crate) id: String,
    pub(crate) scope: String,
    pub(crate) idle_s: f64,
    /// Why it was not retired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kept: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) dry_run: bool,
    pub(crate) cleaned: Vec<Cleaned>,
    /// Live sessions idle past --idle: retired, or kept (with why).
    pub(crate) retired: Vec<Idle>,
    /// Worktrees of sessions that no longer run.
    pub(crate) worktrees: Vec<Leftover>,
}

/// A worktree a session that no longer runs left behind.
#[derive(Debug, Serialize)]
pub(crate) struct Leftover {
    pub(crate) id: String,
    pub(crate) scope: String,
    pub(crate) path: PathBuf,
    pub(crate) exists: bool,
    pub(crate) branch: String,
    /// Uncommitted changes (new files included); `None`: git could not tell.
    pub(crate) dirty: Option<bool>,
    /// Removed by this `gc --worktrees`.
    pub(crate) removed: bool,
    /// Why `gc --worktrees` left it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kept: Option<String>,
}

/// Retires the live sessions whose transcript has not grown for `idle`,
/// unless their host says a turn runs or messages wait.
pub(crate) async fn retire_idle(
    state: &StateRoot,
    idle: Duration,
    dry_run: bool,
) -> Result<Vec<Idle>, CliError> {
    let mut out = Vec::new();
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
        entry.kept = async {
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
        }
        .await;
        out.push(entry);
    }
    Ok(out)
}

/// The worktrees of sessions that no longer run; with `remove`, removes
/// those without uncommitted changes (keeping their branches).
fn leftover_worktrees(state: &StateRoot, remove: bool) -> Vec<Leftover> {
    let found: Vec<WithWorktree> = worktrees::sessions_with_worktrees(state, None)
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
                let removed = worktrees::check_not_running(&f.view).and_then(|()| {
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
