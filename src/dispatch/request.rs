//! What a caller asks of a dispatch (the flags of `reins dispatch`, the
//! arguments of the MCP `dispatch` tool), checked and turned into a
//! [`Plan`]: which agents in which order (`--agent`, a ladder, `--prefer`,
//! else the configured pool in round-robin order with the routing rules'
//! picks first), the task, the id.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{AgentSpec, Agents};
use crate::dispatch::{Plan, Route, Rung, dir_of, done};
use crate::error::CliError;
use crate::ids;
use crate::store::outcomes::Store;
use crate::store::paths::StateRoot;

/// A dispatch, as asked for.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) task: String,
    /// Only this agent.
    pub(crate) agent: Option<String>,
    /// These agents, the first available one first.
    pub(crate) prefer: Vec<String>,
    /// Rungs `AGENT[:MODEL]`, one attempt each.
    pub(crate) ladder: Vec<String>,
    pub(crate) id: Option<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) checks: Vec<done::Check>,
    pub(crate) verifier: Option<String>,
    pub(crate) max_failures: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_timeout: Duration,
    pub(crate) verify_timeout: Duration,
    pub(crate) check_timeout: Duration,
    /// The agents' and checks' working directory (default: here).
    pub(crate) cwd: Option<PathBuf>,
    /// How to watch every worker session, when watching.
    pub(crate) watch: Option<crate::watch::Options>,
    /// How the sessions' approval requests are answered.
    pub(crate) approve: crate::host::ApprovalPolicy,
    /// How long an attempt may sit blocked before it fails over.
    pub(crate) blocked_grace: Duration,
}

impl Request {
    /// A dispatch of `task` with every default.
    pub(crate) fn new(task: impl Into<String>) -> Request {
        Request {
            task: task.into(),
            agent: None,
            prefer: Vec::new(),
            ladder: Vec::new(),
            id: None,
            labels: Vec::new(),
            checks: Vec::new(),
            verifier: None,
            max_failures: 2,
            timeout: None,
            attempt_timeout: Duration::from_secs(30 * 60),
            verify_timeout: Duration::from_secs(10 * 60),
            check_timeout: Duration::from_secs(10 * 60),
            cwd: None,
            watch: None,
            approve: crate::host::ApprovalPolicy::Ask,
            blocked_grace: crate::dispatch::DEFAULT_BLOCKED_GRACE,
        }
    }

    /// Checks the request against the configured agents and decides the
    /// route and the id; nothing starts yet.
    pub(crate) fn plan(self, state: &StateRoot) -> Result<Plan, CliError> {
        if self.task.trim().is_empty() {
            return Err(CliError::usage("the task is empty").hint("say what the agent should do"));
        }
        if !(1..=25).contains(&self.max_failures) {
            return Err(CliError::usage(format!(
                "max_failures must be 1 to 25, not {}",
                self.max_failures
            )));
        }
        let agents = Agents::load()?;
        let (route, chain_verifier, routed_by) = route(&self, &agents, state)?;
        let advisor = match crate::config::advisor()? {
            Some(config) if config.dispatch => Some(
                crate::watch::advisor::Advisor::new(&config.url, "default", config.timeout, None)
                    .map_err(|err| CliError::usage(format!("[advisor] in config.toml: {err}")))?
                    .with_models(config.models),
            ),
            _ => None,
        };
        // The caller's verifier, else the routing chain's, else [dispatch]'s.
        let verifier = self
            .verifier
            .as_deref()
            .or(chain_verifier.as_deref())
            .or(agents.dispatch.verifier.as_deref())
            .map(|v| agents.get(v).cloned())
            .transpose()?;
        let cwd = match &self.cwd {
            Some(dir) if !dir.is_dir() => {
                return Err(CliError::usage(format!("--cwd {}: not a directory", dir.display())));
            }
            Some(dir) => std::fs::canonicalize(dir)?,
            None => std::env::current_dir()?,
        };
        state.ensure()?;
        let id = match &self.id {
            Some(id) => {
                ids::validate(id)?;
                id.clone()
            }
            None => ids::random(|id| dir_of(state, id).exists()),
        };
        Ok(Plan {
            id,
            task: self.task,
            labels: self.labels,
            checks: self.checks,
            check_env: Vec::new(),
            verifier,
            max_failures: self.max_failures,
            timeout: self.timeout,
            attempt_timeout: self.attempt_timeout,
            verify_timeout: self.verify_timeout,
            check_timeout: self.check_timeout,
            start_timeout: Duration::from_secs(30),
            program_timeout: Duration::from_secs(10),
            cwd,
            watch: self.watch,
            route,
            first_attempt: 1,
            cool_down: true,
            routed_by: routed_by.to_string(),
            advisor,
            approve: self.approve,
            blocked_grace: self.blocked_grace,
        })
    }
}

/// The route, the verifier of the routing chain it came from (if any), and
/// how it was chosen.
fn route(
    request: &Request,
    agents: &Agents,
    state: &StateRoot,
) -> Result<(Route, Option<String>, &'static str), CliError> {
    let explicit =
        request.agent.is_some() || !request.prefer.is_empty() || !request.ladder.is_empty();
    if !explicit {
        let file = agents.path.as_deref().map_or("config.toml".into(), |p| p.display().to_string());
        let ladder = |rungs: &[String]| -> Result<Route, CliError> {
            Ok(Route::Ladder(
                rungs.iter().map(|r| Rung::parse(r, agents)).collect::<Result<_, _>>()?,
            ))
        };
        if let Some((rule, why)) =
            crate::dispatch::routing::chain(&agents.rules, &request.task, &request.labels)
        {
            eprintln!("reins dispatch: routed by {file}: {why}: ladder {}", rule.ladder.join(", "));
            return Ok((ladder(&rule.ladder)?, rule.verifier.clone(), "chain"));
        }
        let routed = agents.routed(&[], &request.task, &request.labels).is_some();
        if !routed && !agents.dispatch.default_ladder.is_empty() {
            eprintln!(
                "reins dispatch: the default ladder of {file}: {}",
                agents.dispatch.default_ladder.join(", ")
            );
            return Ok((ladder(&agents.dispatch.default_ladder)?, None, "default_ladder"));
        }
    }
    let route = route_flags(request, agents, state)?;
    let how = match &route {
        Route::Pinned(_) => "agent",
        Route::Candidates { how, .. } => how,
        Route::Ladder(_) => "ladder",
    };
    Ok((route, None, how))
}

fn route_flags(request: &Request, agents: &Agents, state: &StateRoot) -> Result<Route, CliError> {
    let conflict =
        [request.agent.is_some(), !request.prefer.is_empty(), !request.ladder.is_empty()]
            .iter()
            .filter(|given| **given)
            .count()
            > 1;
    if conflict {
        return Err(CliError::usage("give one of agent, prefer and ladder").hint(
            "agent: only that one; prefer: the first available; ladder: one attempt per rung",
        ));
    }
    if let Some(name) = &request.agent {
        return Ok(Route::Pinned(agents.get(name)?.clone()));
    }
    if !request.ladder.is_empty() {
        let rungs =
            request.ladder.iter().map(|r| Rung::parse(r, agents)).collect::<Result<_, _>>()?;
        return Ok(Route::Ladder(rungs));
    }
    if !request.prefer.is_empty() {
        let list: Vec<AgentSpec> = request
            .prefer
            .iter()
            .map(|n| agents.get(n.trim()).cloned())
            .collect::<Result<_, _>>()?;
        return Ok(Route::Candidates { agents: list, how: "prefer" });
    }
    let pool: Vec<AgentSpec> = agents.pool().into_iter().cloned().collect();
    if pool.is_empty() {
        return Err(CliError::usage("no agents to dispatch to")
            .hint("configure some in config.toml ([agents.NAME]) or name one with --agent"));
    }
    // Round robin: start after the agent that took the last dispatch.
    let last = Store::open_in(state)?.last_first_choice().ok().flatten();
    let start = last
        .and_then(|last| pool.iter().position(|a| a.name == last))
        .map_or(0, |i| (i + 1) % pool.len());
    let mut rotated = pool[start..].to_vec();
    rotated.extend_from_slice(&pool[..start]);
    // Routing rules put the agents that suit the task first.
    if let Some((ordered, why)) = agents.routed(&rotated, &request.task, &request.labels) {
        let file = agents.path.as_deref().map_or("config.toml".into(), |p| p.display().to_string());
        eprintln!("reins dispatch: routed by {file}: {why}");
        return Ok(Route::Candidates { agents: ordered, how: "route" });
    }
    Ok(Route::Candidates { agents: rotated, how: "round_robin" })
}
