//! Who is asking: the line between a session and the agents reins runs
//! (DESIGN §10).
//!
//! Every process of the user may talk to a session's control socket, and
//! agents must stay able to: buddies, dispatches and chains run inside
//! agents and drive the sessions they start. What an agent must not do is
//! answer its own session's approval request, however it asks. So a host
//! learns who is on the other end of each control connection (the peer's
//! credentials give its pid), and this module tells what that process is:
//!
//! - whether it is inside *this* session's agent tree (the agent itself,
//!   a process of the agent's session, a descendant of the agent, or a
//!   process carrying this run's `REINS_RUN` mark: one that left the
//!   session with `setsid` but kept its environment). Any one sign is
//!   enough to refuse;
//! - which session's agent tree it is in, if any, *proven* by the process
//!   tree (the nearest ancestor that is a session's agent, or a member of
//!   its process session). A process's environment alone proves nothing,
//!   since it can write any: it may only ever cost the asker a right.
//!
//! A process of the same user that leaves the agent's process tree, its
//! session and its environment all at once (asking a daemon such as tmux
//! or cron to run a command for it) is not recognised. Same-user isolation
//! is defence in depth, not a sandbox: give an agent its own user or
//! container where that matters.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::procs;
use crate::store::registry::SessionRecord;

/// The process behind a control request, as events record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Requester {
    pub(crate) pid: u32,
    pub(crate) uid: u32,
    /// Its command name (`/proc/PID/comm`), when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<String>,
    /// The session whose agent tree it is in, when the process tree shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<String>,
    /// That session's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
}

/// The agent of one run: what identifies its tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AgentTree<'a> {
    pub(crate) pid: u32,
    pub(crate) start_ticks: Option<u64>,
    pub(crate) run: &'a str,
}

impl AgentTree<'_> {
    /// Whether `pid` is inside this agent's tree (see the module docs: any
    /// sign counts).
    pub(crate) fn contains(&self, pid: u32) -> bool {
        let is_agent = |p: u32, st: &procs::ProcStat| {
            p == self.pid && self.start_ticks.is_none_or(|t| t == st.start_ticks)
        };
        let in_session = |st: &procs::ProcStat| {
            st.session == self.pid as i32 && self.start_ticks.is_none_or(|t| st.start_ticks >= t)
        };
        let chain = procs::ancestry(pid);
        if chain.iter().any(|(p, st)| is_agent(*p, st) || in_session(st)) {
            return true;
        }
        procs::environ_has(pid, &format!("REINS_RUN={}", self.run))
    }
}

/// Identifies the process `pid` of user `uid`.
pub(crate) fn identify(pid: u32, uid: u32) -> Requester {
    let session = session_of(pid);
    Requester {
        pid,
        uid,
        command: procs::command_name(pid),
        session: session.as_ref().map(|s| s.id.clone()),
        scope: session.map(|s| s.scope),
    }
}

/// A session, as the process tree shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionRef {
    pub(crate) id: String,
    pub(crate) scope: String,
    pub(crate) run: String,
}

/// The session whose agent tree `pid` is in, proven by the process tree:
/// walking up from `pid`, the first process that names a session in its
/// environment and is that run's agent (or a member of its process
/// session) by the registry, or, in the first moments of a run before the
/// registry is written, a child of the live host of that session (the
/// process holding its `host.lock`).
pub(crate) fn session_of(pid: u32) -> Option<SessionRef> {
    for (p, st) in procs::ancestry(pid) {
        let Some(dir) = procs::environ_var(p, "REINS_SESSION_DIR") else { continue };
        let Some(run) = procs::environ_var(p, "REINS_RUN") else { continue };
        let dir = Path::new(&dir);
        if let Ok(Some(record)) = SessionRecord::read(&dir.join("session.json")) {
            let agent_ticks_match = record
                .agent_start_ticks
                .is_none_or(|t| procs::stat(record.agent_pid).is_some_and(|a| a.start_ticks == t));
            let is_agent = p == record.agent_pid || st.session == record.agent_pid as i32;
            if record.run == run && agent_ticks_match && is_agent {
                return Some(SessionRef { id: record.id, scope: record.scope, run });
            }
        }
        let host = std::fs::File::open(dir.join("host.lock"))
            .ok()
            .and_then(|f| crate::store::lock::flock_holder(&f));
        if host.is_some_and(|h| h == st.ppid) {
            let id = dir.file_name()?.to_str()?.to_string();
            let scope = dir.parent()?.file_name()?.to_str()?.to_string();
            return Some(SessionRef { id, scope, run });
        }
    }
    None
}

/// `[policy] agents` in config.toml: which sessions an agent may change
/// (send to, interrupt, stop, approve in).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AgentControl {
    /// Any session but its own approvals (the default).
    #[default]
    Any,
    /// Only the sessions it started (directly or through them), and its own.
    Started,
}

/// A session started from inside another: the one it was started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Parent {
    pub(crate) id: String,
    pub(crate) scope: String,
    /// The parent's run at the time.
    pub(crate) run: String,
}

impl Parent {
    /// The session the calling process runs inside, if any.
    pub(crate) fn of_caller() -> Option<Parent> {
        session_of(std::process::id()).map(|s| Parent { id: s.id, scope: s.scope, run: s.run })
    }
}

/// Whether the session `(scope, id)` is `parent` or one of its ancestors,
/// following the `parent` links of live sessions' registries under
/// `sessions_dir` (the state root's `sessions/`).
pub(crate) fn descends_from(
    sessions_dir: &Path,
    mut parent: Option<Parent>,
    scope: &str,
    id: &str,
) -> bool {
    for _ in 0..32 {
        let Some(p) = parent else { return false };
        if p.scope == scope && p.id == id {
            return true;
        }
        let path = sessions_dir.join(&p.scope).join(&p.id).join("session.json");
        parent = SessionRecord::read(&path).ok().flatten().and_then(|r| r.parent);
    }
    false
}
