//! Listing sessions: what the files of each say about it (state, turn,
//! idle time, where it runs, how it ended), in milliseconds however many
//! sessions run and whatever state their hosts are in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::CliError;
use crate::store::events::TmuxTarget;
use crate::store::paths::StateRoot;
use crate::store::registry::WatchedFile;
use crate::time;
use crate::worktree::{self, Standing, WorktreeRecord};

/// Which sessions to list.
#[derive(Debug, Clone)]
pub(crate) enum Which<'a> {
    /// One session (it may have exited).
    Id { id: &'a str, repo: Option<&'a Path> },
    /// Those of a repository (`repo`, else the current directory's) that
    /// have not exited, or with `all`, of every repository.
    Running { all: bool, repo: Option<&'a Path> },
}

/// Sessions listed, oldest first, and how many others were left out
/// (running in other repositories).
#[derive(Debug)]
pub(crate) struct Listing {
    pub(crate) sessions: Vec<SessionInfo>,
    pub(crate) hidden: usize,
}

/// Lists sessions.
pub(crate) fn list(state: &StateRoot, which: Which<'_>) -> Result<Listing, CliError> {
    let (views, hidden) = match &which {
        Which::Id { id, repo } => (vec![lookup::find(state, id, *repo)?], 0),
        Which::Running { all, repo } => {
            let here = lookup::client_scope(*repo)?;
            let all_views: Vec<SessionView> = state
                .list_sessions(None)
                .into_iter()
                .map(SessionView::read)
                .filter(|v| v.liveness != Liveness::Exited)
                .collect();
            let (mine, others): (Vec<_>, Vec<_>) =
                all_views.into_iter().partition(|v| *all || v.paths.scope == here.name);
            (mine, others.len())
        }
    };
    let mut rows: Vec<SessionInfo> = views.iter().map(info).collect();
    let links = match which {
        // One session: its buddies are among the sessions of its scope.
        Which::Id { .. } => buddy_links(
            views
                .iter()
                .flat_map(|v| state.list_sessions(Some(&v.paths.scope)))
                .map(SessionView::read),
        ),
        Which::Running { .. } => buddy_links(views.iter()),
    };
    for r in &mut rows {
        r.buddies = links.get(&(r.scope.clone(), r.id.clone())).cloned().unwrap_or_default();
    }
    add_worktrees(&views, &mut rows);
    rows.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
    Ok(Listing { sessions: rows, hidden })
}

/// One session as `status --json` reports it: what its files say.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionInfo {
    pub(crate) id: String,
    pub(crate) scope: String,
    /// `live`, `dead` (host died) or `exited`.
    pub(crate) host: &'static str,
    pub(crate) state: String,
    pub(crate) kind: Option<String>,
    pub(crate) state_since: Option<String>,
    pub(crate) turn: u64,
    pub(crate) agent: Option<String>,
    pub(crate) adapter: Option<String>,
    pub(crate) transport: Option<String>,
    pub(crate) mode: Option<String>,
    pub(crate) run: Option<String>,
    pub(crate) host_pid: Option<u32>,
    pub(crate) agent_pid: Option<u32>,
    pub(crate) started_at: Option<String>,
    pub(crate) age_s: Option<f64>,
    pub(crate) idle_s: Option<f64>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) repo_root: Option<PathBuf>,
    pub(crate) tmux: Option<TmuxTarget>,
    pub(crate) description: Option<String>,
    pub(crate) meta: Option<Value>,
    pub(crate) session_dir: PathBuf,
    pub(crate) socket: Option<PathBuf>,
    /// Why the registry could not be read, when it is corrupt.
    pub(crate) error: Option<String>,
    /// The latest token usage a structured transport reported.
    pub(crate) usage: Option<Value>,
    /// The last error the agent or its transport reported.
    pub(crate) last_error: Option<String>,
    /// How the last run ended, for exited sessions.
    pub(crate) exit: Option<Value>,
    /// Files whose changes are announced to the agent (`run --watch-file`).
    pub(crate) watch_files: Vec<WatchedFile>,
    /// The worker this session looks after, if it is a buddy.
    pub(crate) buddy_of: Option<String>,
    /// The running buddies that look after this session.
    pub(crate) buddies: Vec<String>,
    /// The session it was started from inside (its agent ran `reins run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<crate::trust::Parent>,
    /// The oldest approval request the agent waits on: what `reins
    /// approve --request` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) approval: Option<crate::ipc::PendingApproval>,
    /// The session's git worktree (`run --worktree`) and where its branch
    /// stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<Standing>,
    /// harnex's names for the same facts, so jq filters written for
    /// `harnex status --json` keep working (docs/harnex.md).
    pub(crate) agent_state: String,
    /// = `agent`.
    pub(crate) cli: Option<String>,
    /// = `idle_s`, null while the agent has printed nothing.
    pub(crate) log_idle_s: Option<f64>,
    /// When the last turn of this run completed.
    pub(crate) last_completed_at: Option<String>,
    /// `model` and `effort` of `run --meta`.
    pub(crate) model: Option<Value>,
    pub(crate) effort: Option<Value>,
    /// Disconnects of the agent's transport this run.
    pub(crate) auto_disconnects: Option<u64>,
}

/// harnex's `agent_state` for a reins state: `prompt` for ready, and
/// `unknown` where harnex has no word (a session still starting).
fn harnex_state(state: &str) -> String {
    match state {
        "ready" => "prompt",
        "starting" => "unknown",
        other => other,
    }
    .to_string()
}

/// What the files of one session say about it.
pub(crate) fn info(view: &SessionView) -> SessionInfo {
    let transcript = std::fs::metadata(view.paths.transcript()).ok();
    let idle_s = transcript
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.elapsed().ok())
        .map(|d| d.as_secs_f64());
    let printed = transcript.is_some_and(|m| m.len() > 0);
    let host = match view.liveness {
        Liveness::Live => "live",
        Liveness::Dead => "dead",
        Liveness::Exited => "exited",
    };
    let exit_record = (view.liveness == Liveness::Exited).then(|| view.exit_record()).flatten();
    let exit = exit_record.as_ref().and_then(|e| serde_json::to_value(e).ok());
    let base = SessionInfo {
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
        agent_state: String::new(),
        cli: None,
        log_idle_s: idle_s.filter(|_| printed),
        last_completed_at: None,
        model: None,
        effort: None,
        auto_disconnects: None,
    };
    let Some(r) = &view.record else {
        return SessionInfo { agent_state: harnex_state(&base.state), ..base };
    };
    let meta = |key: &str| r.meta.as_ref().and_then(|m| m.get(key)).cloned();
    let state =
        if view.liveness == Liveness::Live { r.state.state.to_string() } else { base.state };
    SessionInfo {
        // A dead host's last recorded state is not the truth any more.
        agent_state: harnex_state(&state),
        state,
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
        cli: Some(r.agent.clone()),
        last_completed_at: r.last_completed_at.clone(),
        model: meta("model"),
        effort: meta("effort"),
        auto_disconnects: r.disconnects,
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

/// Where the branches of sessions in worktrees stand: only those sessions
/// pay for the git commands, which run a few at a time with a deadline.
fn add_worktrees(views: &[SessionView], rows: &mut [SessionInfo]) {
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
