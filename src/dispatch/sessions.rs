//! The sessions a dispatcher starts, driven in process through session
//! control ([`crate::control`]): the same checks, launch and files as
//! `reins run`, `wait`, `pane` and `stop`, without starting a process for
//! each step; a worker's watcher runs on a task beside the attempt.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::config::AgentSpec;
use crate::control::lookup::{self, SessionView};
use crate::control::session;
use crate::control::start::Start;
use crate::control::wait::{Turn, Until, Wait};
use crate::store::events::{self, EventKind};
use crate::store::paths::StateRoot;
use crate::store::registry::Size;

/// Drives the sessions of a dispatch.
#[derive(Debug, Clone)]
pub(crate) struct Reins {
    /// Where the agents work (and where `reins` looks sessions up).
    pub(crate) cwd: PathBuf,
}

/// What a started session's `run --detach` said.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) events: PathBuf,
    pub(crate) run: String,
}

/// How waiting for the session's first task ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TurnEnd {
    /// `task_complete` with this status (`completed`, `failed`, `interrupted`).
    Complete(String),
    /// The session ended (or its host died) first: `wait`'s status.
    Ended(String),
    /// No `task_complete` in time.
    Timeout,
    /// `wait` itself failed.
    Error(String),
}

/// How long a session is given to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a session is started with.
pub(crate) struct Launch<'a> {
    pub(crate) id: &'a str,
    pub(crate) agent: &'a AgentSpec,
    pub(crate) model: Option<&'a str>,
    pub(crate) brief: &'a str,
    pub(crate) meta: Value,
    pub(crate) description: String,
    /// Verifiers get a wide screen so a verdict is not wrapped.
    pub(crate) size: Size,
    pub(crate) start_timeout: Duration,
    /// How the session's approval requests are answered.
    pub(crate) approve: crate::host::ApprovalPolicy,
}

impl Reins {
    pub(crate) fn new(cwd: &Path) -> std::io::Result<Reins> {
        // Sessions are started by the host binary: find it before the first.
        crate::control::start::reins_binary().map_err(std::io::Error::other)?;
        Ok(Reins { cwd: cwd.to_path_buf() })
    }

    /// The session `id` in the scope of the agents' working directory.
    fn find(&self, id: &str) -> Result<SessionView, String> {
        let state = StateRoot::from_env().map_err(|err| err.message)?;
        lookup::find(&state, id, Some(&self.cwd)).map_err(|err| err.message)
    }

    /// Starts the agent headless with the brief as its first task, as
    /// `reins run AGENT --detach --context BRIEF` does.
    pub(crate) async fn start(&self, launch: &Launch<'_>) -> Result<Started, String> {
        let (program, rest) = launch.agent.run_argv(launch.model);
        let mut start = Start::new(program);
        start.agent_args = rest;
        start.env = launch.agent.launch_env(launch.model);
        start.approve = launch.approve;
        start.id = Some(launch.id.to_string());
        start.cwd = Some(self.cwd.clone());
        start.size = launch.size;
        start.timeout = launch.start_timeout;
        start.description = Some(launch.description.clone());
        start.meta = Some(launch.meta.clone()).filter(|m| m.is_object());
        start.context = Some(launch.brief.to_string());
        let started = crate::control::start::prepare(start)
            .map_err(|err| err.message)?
            .launch()
            .await
            .map_err(|err| err.message)?;
        Ok(Started { events: started.events, run: started.run })
    }

    /// Waits for the session's first task to complete, for at most
    /// `timeout` (as `reins wait --until task_complete`).
    pub(crate) async fn wait_task(&self, id: &str, timeout: Duration) -> TurnEnd {
        let view = match self.find(id) {
            Ok(view) => view,
            Err(err) => return TurnEnd::Error(err),
        };
        let wait = match Wait::new(&view, Until::TaskComplete, Turn::Current) {
            Ok(wait) => wait,
            Err(err) => return TurnEnd::Error(err.message),
        };
        let waited = match wait.until(Some(timeout.max(Duration::from_millis(1))), |_| {}).await {
            Ok(waited) => waited,
            Err(err) => return TurnEnd::Error(err.message),
        };
        match waited.status.as_str() {
            "reached" => TurnEnd::Complete(
                waited
                    .event
                    .as_ref()
                    .and_then(|e| e["status"].as_str())
                    .unwrap_or("completed")
                    .to_string(),
            ),
            "timeout" => TurnEnd::Timeout,
            status => {
                let how = match &waited.exit {
                    Some(exit) => match exit.code {
                        Some(code) => {
                            format!("{status}: {}, exit code {code}", exit.reason.as_str())
                        }
                        None => format!("{status}: {}", exit.reason.as_str()),
                    },
                    None => status.to_string(),
                };
                TurnEnd::Ended(how)
            }
        }
    }

    /// What the session has sat blocked on (not a usage limit, which has
    /// its own policy) and for how long, from its last state change.
    pub(crate) fn blocked_for(&self, started: &Started) -> Option<(String, f64)> {
        let all = events::read_all(&started.events).ok()?;
        let last = all
            .iter()
            .rev()
            .filter(|e| e.header.run == started.run)
            .find(|e| matches!(e.kind, EventKind::State { .. }))?;
        let EventKind::State { to, kind, .. } = &last.kind else { return None };
        if *to != crate::state::State::Blocked {
            return None;
        }
        let kind = kind.unwrap_or(crate::state::BlockedKind::Dialog);
        if matches!(kind, crate::state::BlockedKind::RateLimit | crate::state::BlockedKind::Draft) {
            return None;
        }
        let secs = crate::time::seconds_since(&last.header.ts)?;
        Some((kind.as_str().to_string(), secs))
    }

    /// The session's screen as text; `None` when it cannot be read (the
    /// session is gone).
    pub(crate) async fn screen(&self, id: &str) -> Option<String> {
        let view = self.find(id).ok()?;
        let screen = session::screen(&view, None).await.ok()??;
        Some(screen.rows.join("\n").trim_end().to_string())
    }

    /// Stops the session, killing what does not end in time; errors are
    /// ignored (the session may have ended by itself).
    pub(crate) async fn stop(&self, id: &str) {
        if let Ok(view) = self.find(id) {
            let _ = session::stop(&view, STOP_TIMEOUT, true).await;
        }
    }

    /// Watches session `id` on a task of this process (as `reins watch`
    /// would), its words to `log`; aborting the task ends the watch.
    pub(crate) fn watch(
        &self,
        id: &str,
        options: crate::watch::Options,
        log: &Path,
    ) -> Option<tokio::task::JoinHandle<crate::watch::Summary>> {
        let file = crate::store::fsutil::open_append(log).ok()?;
        let paths = self.find(id).ok()?.paths;
        let log = crate::watch::Log::File(file);
        Some(tokio::spawn(crate::watch::supervise(paths, options, log, false)))
    }
}

/// Tokens the run reported, from its `summary` event (null when it never
/// showed any).
pub(crate) fn tokens_of(started: &Started) -> Option<u64> {
    let all = events::read_all(&started.events).ok()?;
    all.iter().rev().filter(|e| e.header.run == started.run).find_map(|e| match &e.kind {
        EventKind::Summary(summary) => {
            summary.total_tokens.or_else(|| match (summary.input_tokens, summary.output_tokens) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            })
        }
        _ => None,
    })
}
