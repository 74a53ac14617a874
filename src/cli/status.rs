//! `reins status`: the sessions of this repository (or all), from their
//! files alone, so it answers in milliseconds however many sessions run and
//! whatever state their hosts are in.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::{CliResult, code};
use crate::store::events::TmuxTarget;
use crate::store::paths::StateRoot;
use crate::store::registry::WatchedFile;
use crate::style::{Paint, Stream};
use crate::time;
use crate::worktree::{self, Standing, WorktreeRecord};

/// List sessions: state, turn, idle time, where they run.
///
/// By default, the sessions of the repository you are in (worktrees
/// included); `--all` lists every repository's. Sessions whose host process
/// died show as `dead` until `reins gc` cleans them up.
///
/// Columns: ID, AGENT, STATE (starting, ready, busy, blocked{kind}, unknown,
/// dead), TURN (turns started), IDLE (time since the agent last printed),
/// AGE, PANE (tmux pane id), BRANCH (only when a session works in a git
/// worktree, `run --worktree`: its branch, +commits ahead of and -behind
/// its base, `*` for uncommitted changes), CWD, DESC.
///
/// A buddy (`reins buddy`) is listed under its worker as `└ ID`; where only
/// one of the two is listed, its ID reads `ID (buddy of W)` or `ID (buddy:
/// B)`. In `--json`, `buddy_of` and `buddies` link them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins status\n  reins ls --all\n  reins status --id demo --json\n  reins status --json | jq -r '.[] | select(.state == \"ready\") | .id'\n\nExit codes: 0 listed (an empty list too), 1 --id names no session, 2 bad input."
)]
pub(crate) struct Args {
    /// Show only this session (it may have exited).
    #[arg(long)]
    id: Option<String>,
    /// Sessions of every repository.
    #[arg(long, short)]
    all: bool,
    /// Sessions of the repository at DIR instead of the current one.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// One session as `status --json` reports it.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    scope: String,
    /// `live`, `dead` (host died) or `exited`.
    host: &'static str,
    state: String,
    kind: Option<String>,
    state_since: Option<String>,
    turn: u64,
    agent: Option<String>,
    adapter: Option<String>,
    transport: Option<String>,
    mode: Option<String>,
    run: Option<String>,
    host_pid: Option<u32>,
    agent_pid: Option<u32>,
    started_at: Option<String>,
    age_s: Option<f64>,
    idle_s: Option<f64>,
    cwd: Option<PathBuf>,
    repo_root: Option<PathBuf>,
    tmux: Option<TmuxTarget>,
    description: Option<String>,
    meta: Option<Value>,
    session_dir: PathBuf,
    socket: Option<PathBuf>,
    /// Why the registry could not be read, when it is corrupt.
    error: Option<String>,
    /// The latest token usage a structured transport reported.
    usage: Option<Value>,
    /// The last error the agent or its transport reported.
    last_error: Option<String>,
    /// How the last run ended, for exited sessions.
    exit: Option<Value>,
    /// Files whose changes are announced to the agent (`run --watch-file`).
    watch_files: Vec<WatchedFile>,
    /// The worker this session looks after, if it is a buddy.
    buddy_of: Option<String>,
    /// The running buddies that look after this session.
    buddies: Vec<String>,
    /// The session it was started from inside (its agent ran `reins run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<crate::trust::Parent>,
    /// The oldest approval request the agent waits on: what `reins
    /// approve --request` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<crate::ipc::PendingApproval>,
    /// The session's git worktree (`run --worktree`) and where its branch
    /// stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    worktree: Option<Standing>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let (views, hidden) = match &args.id {
        Some(id) => (vec![lookup::find(&state, id, args.repo.as_deref())?], 0),
        None => {
            let here = lookup::client_scope(args.repo.as_deref())?;
            let all: Vec<SessionView> = state
                .list_sessions(None)
                .into_iter()
                .map(SessionView::read)
                .filter(|v| v.liveness != Liveness::Exited)
                .collect();
            let (mine, others): (Vec<_>, Vec<_>) =
                all.into_iter().partition(|v| args.all || v.paths.scope == here.name);
            (mine, others.len())
        }
    };
    let mut rows: Vec<Row> = views.iter().map(row).collect();
    let links = match &args.id {
        // One session: its buddies are among the sessions of its scope.
        Some(_) => buddy_links(
            views
                .iter()
                .flat_map(|v| state.list_sessions(Some(&v.paths.scope)))
                .map(SessionView::read),
        ),
        None => buddy_links(views.iter()),
    };
    for r in &mut rows {
        r.buddies = links.get(&(r.scope.clone(), r.id.clone())).cloned().unwrap_or_default();
    }
    add_worktrees(&views, &mut rows);
    rows.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));

    if args.json {
        crate::cli::print_json(&rows)?;
    } else {
        print_table(&rows)?;
    }
    if hidden > 0 {
        eprintln!(
            "{hidden} more session{} in other repositories (reins status --all)",
            if hidden == 1 { "" } else { "s" }
        );
    }
    Ok(code::OK)
}

fn row(view: &SessionView) -> Row {
    let idle_s = std::fs::metadata(view.paths.transcript())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_secs_f64());
    let host = match view.liveness {
        Liveness::Live => "live",
        Liveness::Dead => "dead",
        Liveness::Exited => "exited",
    };
    let exit_record = (view.liveness == Liveness::Exited).then(|| view.exit_record()).flatten();
    let exit = exit_record.as_ref().and_then(|e| serde_json::to_value(e).ok());
    let base = Row {
        id: view.paths.id.clone(),
        scope: view.paths.scope.clone(),
        host,
        state: match view.liveness {
            Liveness::Live => "starting".into(),
            Liveness::Dead => "dead".into(),
            Liveness::Exited => "exited".into(),
        },
        kind: None,
        state_since: exit_record.as_ref().map(|e| e.exited_at.clone()),
        // An ended run's turns are in its exit record.
        turn: exit_record.as_ref().map_or(0, |e| e.turns),
        agent: None,
        adapter: None,
        transport: None,
        mode: None,
        run: exit_record.as_ref().map(|e| e.run.clone()),
        host_pid: None,
        agent_pid: None,
        started_at: exit_record.as_ref().map(|e| e.started_at.clone()),
        age_s: None,
        idle_s,
        cwd: None,
        repo_root: None,
        tmux: None,
        description: None,
        meta: None,
        session_dir: view.paths.dir.clone(),
        socket: None,
        error: view.corrupt.clone().map(|e| format!("corrupt session.json: {e}")),
        usage: None,
        last_error: None,
        exit,
        watch_files: Vec::new(),
        buddy_of: None,
        buddies: Vec::new(),
        parent: None,
        approval: None,
        worktree: None,
    };
    let Some(r) = &view.record else { return base };
    Row {
        // A dead host's last recorded state is not the truth any more.
        state: if view.liveness == Liveness::Live { r.state.state.to_string() } else { base.state },
        kind: r.state.kind.filter(|_| view.liveness == Liveness::Live).map(|k| k.as_str().into()),
        state_since: Some(r.state_since.clone()),
        turn: r.turn,
        agent: Some(r.agent.clone()),
        adapter: Some(r.adapter.clone()),
        transport: Some(r.transport.clone()),
        mode: Some(r.mode.as_str().into()),
        run: Some(r.run.clone()),
        host_pid: Some(r.host_pid),
        agent_pid: Some(r.agent_pid),
        age_s: time::seconds_since(&r.started_at),
        started_at: Some(r.started_at.clone()),
        cwd: Some(r.cwd.clone()),
        repo_root: r.repo_root.clone(),
        tmux: r.tmux.clone(),
        description: r.description.clone(),
        meta: r.meta.clone(),
        socket: Some(r.socket.clone()),
        usage: r.usage.clone(),
        last_error: r.last_error.clone(),
        watch_files: r.watch_files.clone(),
        buddy_of: r.buddy_of.clone(),
        parent: r.parent.clone(),
        approval: r.approval.clone().filter(|_| view.liveness == Liveness::Live),
        ..base
    }
}

/// Buddies of each worker, by (scope, worker id), from the registries of
/// running (or dead, not yet collected) sessions.
fn buddy_links<V: std::borrow::Borrow<SessionView>>(
    views: impl Iterator<Item = V>,
) -> HashMap<(String, String), Vec<String>> {
    let mut links: HashMap<(String, String), Vec<String>> = HashMap::new();
    for view in views {
        let view = view.borrow();
        let Some(worker) = view.record.as_ref().and_then(|r| r.buddy_of.clone()) else {
            continue;
        };
        let buddies = links.entry((view.paths.scope.clone(), worker)).or_default();
        if !buddies.contains(&view.paths.id) {
            buddies.push(view.paths.id.clone());
        }
    }
    for buddies in links.values_mut() {
        buddies.sort();
    }
    links
}

/// The table's rows in order, each with its ID cell: a buddy goes right
/// under its worker when both are listed.
fn table_order(rows: &[Row]) -> Vec<(&Row, String)> {
    let listed = |scope: &str, id: &str| rows.iter().any(|r| r.scope == scope && r.id == id);
    let nested = |r: &Row| r.buddy_of.as_deref().is_some_and(|w| listed(&r.scope, w));
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().filter(|r| !nested(r)) {
        let unlisted: Vec<&str> =
            r.buddies.iter().map(String::as_str).filter(|b| !listed(&r.scope, b)).collect();
        let cell = match (&r.buddy_of, unlisted.is_empty()) {
            (Some(worker), _) => format!("{} (buddy of {worker})", r.id),
            (None, false) => format!("{} (buddy: {})", r.id, unlisted.join(", ")),
            (None, true) => r.id.clone(),
        };
        out.push((r, cell));
        for b in rows.iter().filter(|b| nested(b) && b.scope == r.scope) {
            if b.buddy_of.as_deref() == Some(r.id.as_str()) {
                out.push((b, format!("└ {}", b.id)));
            }
        }
    }
    out
}

/// Where the branches of sessions in worktrees stand: only those sessions
/// pay for the git commands, which run a few at a time with a deadline.
fn add_worktrees(views: &[SessionView], rows: &mut [Row]) {
    let with: Vec<(usize, &WorktreeRecord)> = views
        .iter()
        .enumerate()
        .filter_map(|(i, v)| Some((i, v.record.as_ref()?.worktree.as_ref()?)))
        .collect();
    if with.is_empty() {
        return;
    }
    let records: Vec<&WorktreeRecord> = with.iter().map(|(_, r)| *r).collect();
    for ((i, _), standing) in with.iter().zip(worktree::standings(&records)) {
        rows[*i].worktree = Some(standing);
    }
}

fn print_table(rows: &[Row]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if rows.is_empty() {
        writeln!(out, "No sessions. Start one with: reins run mock --detach")?;
        return Ok(());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let branches = rows.iter().any(|r| r.worktree.is_some());
    let table: Vec<Vec<String>> = table_order(rows)
        .into_iter()
        .map(|(r, id)| {
            let state = match &r.kind {
                Some(kind) => format!("{}{{{kind}}}", r.state),
                None => r.state.clone(),
            };
            let mut cells = vec![
                id,
                r.agent.clone().unwrap_or_else(|| "-".into()),
                state,
                r.turn.to_string(),
                r.idle_s.map_or("-".into(), time::compact),
                r.age_s.map_or("-".into(), time::compact),
                r.tmux.as_ref().map_or("-".into(), |t| t.pane.clone()),
                r.cwd.as_deref().map_or("-".into(), |c| short_path(c, home.as_deref(), 28)),
                truncate(r.description.as_deref().unwrap_or(""), 30),
            ];
            if branches {
                cells.insert(7, r.worktree.as_ref().map_or("-".into(), Standing::compact));
            }
            cells
        })
        .collect();
    const STATE_COLUMN: usize = 2;
    let mut header = vec!["ID", "AGENT", "STATE", "TURN", "IDLE", "AGE", "PANE", "CWD", "DESC"];
    if branches {
        header.insert(7, "BRANCH");
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for cells in &table {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Colour (on a terminal only) goes on after padding, so it cannot
    // change the columns' widths.
    let paint = Paint::new(Stream::Stdout);
    let line = |cells: &[&str], color: bool| {
        let mut s = String::new();
        for (i, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let padded = format!("{cell:<w$}  ");
                if color && i == STATE_COLUMN {
                    s.push_str(&paint.state(cell));
                    s.push_str(&padded[cell.len()..]);
                } else {
                    s.push_str(&padded);
                }
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header, false))?;
    for cells in &table {
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&refs, true))?;
    }
    Ok(())
}

pub(crate) fn short_path(path: &Path, home: Option<&Path>, max: usize) -> String {
    let text = match home.and_then(|h| path.strip_prefix(h).ok()) {
        Some(rest) if rest.as_os_str().is_empty() => "~".to_string(),
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    };
    let n = text.chars().count();
    if n <= max {
        text
    } else {
        let tail: String = text.chars().skip(n - (max - 1)).collect();
        format!("…{tail}")
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}
