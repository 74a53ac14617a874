//! Whether an agent can take a task now: its program works (doctor's
//! check), its credentials are there (its profile's `[auth]`), it is not
//! resting after failures (a cooldown in the store), its
//! last probe did not fail, and it is under its concurrency cap (its live
//! sessions, from the registry).

use std::time::Duration;

use serde::Serialize;

use crate::adapter;
use crate::cli::doctor::{self, Check, Status};
use crate::cli::lookup::{Liveness, SessionView};
use crate::config::AgentSpec;
use crate::store::outcomes::{Cooldown, Probe, Store, StoreError};
use crate::store::paths::StateRoot;

/// What `reins agents` shows about an agent and `dispatch` decides by.
#[derive(Debug, Serialize)]
pub(crate) struct Availability {
    pub(crate) available: bool,
    /// Why not, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Where its credentials were found (`env NAME`, `file PATH`); null
    /// when its profile says nothing about them (not checked).
    pub(crate) auth: Option<String>,
    /// doctor's check of its program.
    pub(crate) check: Check,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cooldown: Option<Cooldown>,
    /// Live sessions of this agent.
    pub(crate) load: u32,
    pub(crate) max_concurrent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_probe: Option<Probe>,
}

/// doctor's check of the agent's program.
pub(crate) fn program_check(agent: &AgentSpec, timeout: Duration) -> Check {
    if agent.base == "generic" {
        let program = agent.args.first().map_or("", String::as_str);
        let (status, detail) = match doctor::on_path(program) {
            Some(path) => (Status::Ok, path.display().to_string()),
            None => (Status::Missing, format!("{program} is not on PATH")),
        };
        return Check {
            name: agent.name.clone(),
            status,
            path: None,
            version: None,
            tested: None,
            transport: None,
            detail,
            hint: None,
            required: false,
        };
    }
    match adapter::find(&agent.base) {
        Ok(Some(profile)) if !profile.launch.command.is_empty() => {
            let mut check = doctor::agent(&profile, timeout);
            check.name = agent.name.clone();
            check
        }
        other => Check {
            name: agent.name.clone(),
            status: Status::Broken,
            path: None,
            version: None,
            tested: None,
            transport: None,
            detail: match other {
                Err(err) => err.to_string(),
                _ => format!("no adapter profile {} that launches a program", agent.base),
            },
            hint: Some("`reins adapters list` shows the profiles".into()),
            required: false,
        },
    }
}

/// Checks every agent's program in parallel (each bounded by `timeout`).
pub(crate) fn program_checks(agents: &[&AgentSpec], timeout: Duration) -> Vec<Check> {
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            agents.iter().map(|a| scope.spawn(move || program_check(a, timeout))).collect();
        handles.into_iter().map(|h| h.join().expect("program check")).collect()
    })
}

/// Live sessions that belong to `agent`: started for it by `dispatch`
/// (their meta names it), or, for a built-in agent, any live session of
/// that profile started without one.
pub(crate) fn load_of(state: &StateRoot, agent: &AgentSpec) -> u32 {
    let builtin = agent.source == crate::config::Source::Builtin;
    let mut n = 0;
    for paths in state.list_sessions(None) {
        let view = SessionView::read(paths);
        let (Liveness::Live, Some(record)) = (view.liveness, &view.record) else { continue };
        let owner =
            record.meta.as_ref().and_then(|m| m.get("reins_agent")).and_then(|v| v.as_str());
        let mine = match owner {
            Some(owner) => owner == agent.name,
            None => builtin && record.agent == agent.name,
        };
        n += u32::from(mine);
    }
    n
}

/// Puts the facts together.
pub(crate) fn assess(
    agent: &AgentSpec,
    check: Check,
    store: &Store,
    state: &StateRoot,
) -> Result<Availability, StoreError> {
    let cooldown = store.cooldown(&agent.name)?;
    let last_probe = store.last_probe(&agent.name)?;
    let load = load_of(state, agent);
    let auth = adapter::find(&agent.base).ok().flatten().and_then(|p| p.auth).map(|a| a.find());
    let reason = if check.status != Status::Ok {
        Some(format!("its program does not work: {}", check.detail))
    } else if let Some(Err(missing)) = &auth {
        Some(missing.clone())
    } else if let Some(c) = &cooldown {
        Some(format!("cooling down for {:.0}s more ({})", c.left_s, c.reason))
    } else if let Some(p) = last_probe.as_ref().filter(|p| !p.ok) {
        Some(format!("its last probe failed: {}", p.detail))
    } else {
        agent
            .max_concurrent
            .filter(|cap| load >= *cap)
            .map(|cap| format!("at its cap: {load} of {cap} sessions"))
    };
    Ok(Availability {
        available: reason.is_none(),
        reason,
        auth: auth.and_then(Result::ok),
        check,
        cooldown,
        load,
        max_concurrent: agent.max_concurrent,
        last_probe,
    })
}
