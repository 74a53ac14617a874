//! Whether an agent can take a task now: its program works (doctor's
//! check), its credentials are there (its profile's `[auth]`), it is not
//! resting after failures (a cooldown in the store), its
//! last probe did not fail, and it is under its concurrency cap (its live
//! sessions, from the registry; for an agent on another machine, from the
//! `reins status --json` there, one round trip over the shared ssh
//! connection — a host that cannot be reached makes the agent unavailable).
//!
//! The cap is kept across processes by [`Slot`]: a dispatcher counts an
//! agent's live sessions and starts its own while holding the agent's lock
//! file (`locks/agent-NAME.lock` in the state root), so two dispatchers can
//! never both see the last place free.

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::adapter;
use crate::adapter::probe::{self, Check, Status};
use crate::config::AgentSpec;
use crate::control::lookup::{Liveness, SessionView};
use crate::remote::{Ssh, Target};
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
    /// Live sessions of this agent (null: they could not be counted, its
    /// host did not answer; `reason` says why).
    pub(crate) load: Option<u32>,
    pub(crate) max_concurrent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_probe: Option<Probe>,
}

/// doctor's check of the agent's program.
pub(crate) fn program_check(agent: &AgentSpec, timeout: Duration) -> Check {
    if let Some(host) = &agent.host {
        // Its program and credentials are on that machine: the session
        // start there checks them (`reins hosts` lists what it has).
        return Check {
            name: agent.name.clone(),
            status: Status::Ok,
            path: None,
            version: None,
            tested: None,
            transport: None,
            detail: format!("runs on host {host} (checked there when it starts)"),
            hint: None,
            required: false,
            endpoint: None,
        };
    }
    if agent.base == "generic" {
        let program = agent.args.first().map_or("", String::as_str);
        let (status, detail) = match probe::on_path(program) {
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
            endpoint: None,
        };
    }
    match adapter::find(&agent.base) {
        Ok(Some(profile)) if !profile.launch.command.is_empty() => {
            let mut check = probe::agent(&profile, timeout);
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
            endpoint: None,
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

/// Why an agent's live sessions could not be counted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot count its sessions on host {host}: {reason}")]
pub(crate) struct LoadError {
    host: String,
    reason: String,
}

/// Live sessions that belong to `agent`: started for it by `dispatch`
/// (their meta names it), or, for a built-in agent, any live session of
/// that profile started without one. An agent with a `host` is counted
/// there (blocking: one ssh round trip; [`counted`] runs it off the
/// runtime).
pub(crate) fn load_of(state: &StateRoot, agent: &AgentSpec) -> Result<u32, LoadError> {
    if let Some(host) = &agent.host {
        return remote_load(state, host, agent);
    }
    let builtin = agent.source == crate::config::Source::Builtin;
    let mut n = 0;
    for paths in state.list_sessions(None) {
        let view = SessionView::read(paths);
        let (Liveness::Live, Some(record)) = (view.liveness, &view.record) else { continue };
        let owner =
            record.meta.as_ref().and_then(|m| m.get("reins_agent")).and_then(|v| v.as_str());
        n += u32::from(owns(owner, record.agent.as_str(), builtin, agent));
    }
    Ok(n)
}

/// Whether a live session whose meta names `owner` (and whose profile is
/// `profile`) is one of `agent`'s.
fn owns(owner: Option<&str>, profile: &str, builtin: bool, agent: &AgentSpec) -> bool {
    match owner {
        Some(owner) => owner == agent.name,
        None => builtin && profile == agent.name,
    }
}

/// [`load_of`] on a blocking thread: the ssh call of a remote agent must
/// not hold up the runtime (a chain runs several dispatches on it).
pub(crate) async fn counted(state: &StateRoot, agent: &AgentSpec) -> Result<u32, LoadError> {
    if agent.host.is_none() {
        return load_of(state, agent);
    }
    let (state, agent) = (state.clone(), agent.clone());
    tokio::task::spawn_blocking(move || load_of(&state, &agent))
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

/// The agent's live sessions on `host`: every repository's sessions there
/// in one `reins status --all --json` (the live ones are `"host":
/// "live"`), counted by the same rule as here.
fn remote_load(state: &StateRoot, host: &str, agent: &AgentSpec) -> Result<u32, LoadError> {
    let fail = |reason: String| LoadError { host: host.to_string(), reason };
    let target = Target::resolve(host).map_err(|e| fail(e.message))?;
    let ssh = Ssh::new(target, state).map_err(|e| fail(e.message))?;
    let args: Vec<std::ffi::OsString> = ["status", "--all", "--json"].map(Into::into).to_vec();
    let out = ssh.reins_output(&args).map_err(|e| fail(e.message))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = match serde_json::from_str(text.trim()) {
        Ok(rows) if out.status.success() => rows,
        _ => {
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said.trim().trim_start_matches("reins: ");
            return Err(fail(if said.is_empty() {
                format!("`reins status` there failed (exit {:?})", out.status.code())
            } else {
                format!("`reins status` there failed: {said}")
            }));
        }
    };
    let builtin = agent.source == crate::config::Source::Builtin;
    let n = rows
        .iter()
        .filter(|r| r["host"] == "live")
        .filter(|r| {
            let owner = r["meta"]["reins_agent"].as_str();
            owns(owner, r["agent"].as_str().unwrap_or_default(), builtin, agent)
        })
        .count();
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// One of an agent's `max_concurrent` places, held from the count of its
/// live sessions until the session that takes it is registered (then a
/// count sees that session). Dropping it lets the next dispatcher count.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The agent's lock; `None` for an agent without a cap.
    _lock: Option<File>,
}

impl Slot {
    /// No place to hold: the agent has no cap, or the route ignores it.
    pub(crate) fn uncapped() -> Slot {
        Slot { _lock: None }
    }
}

/// Why an agent has no place for a new session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SlotError {
    #[error("at its cap: {load} of {cap} sessions")]
    Full { load: u32, cap: u32 },
    #[error("another dispatcher held its lock {} for over {:.0}s", path.display(), waited.as_secs_f64())]
    Busy { path: PathBuf, waited: Duration },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Uncounted(#[from] LoadError),
}

/// The lock file that serializes the count-and-start of `agent`'s sessions.
pub(crate) fn slot_lock_path(state: &StateRoot, agent: &str) -> PathBuf {
    state.root().join("locks").join(format!("agent-{agent}.lock"))
}

/// Takes one of `agent`'s places: waits (up to `patience`) for any other
/// dispatcher counting or starting a session of it, then counts its live
/// sessions. The wait is a blocking `flock` on a thread of its own (an
/// event, not a poll); a holder keeps it for at most one session start.
pub(crate) async fn claim(
    state: &StateRoot,
    agent: &AgentSpec,
    patience: Duration,
) -> Result<Slot, SlotError> {
    let Some(cap) = agent.max_concurrent else { return Ok(Slot::uncapped()) };
    let path = slot_lock_path(state, &agent.name);
    let io = |source| SlotError::Io { path: path.clone(), source };
    if let Some(dir) = path.parent() {
        crate::store::fsutil::create_private_dir_all(dir).map_err(io)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    // Abandoned on timeout, the thread still gets the lock at some point
    // and drops it at once with the file.
    let locking = tokio::task::spawn_blocking(move || file.lock().map(|()| file));
    let file = match tokio::time::timeout(patience, locking).await {
        Err(_) => return Err(SlotError::Busy { path, waited: patience }),
        Ok(Err(join)) => std::panic::resume_unwind(join.into_panic()),
        Ok(Ok(locked)) => locked.map_err(io)?,
    };
    let load = counted(state, agent).await?;
    if load >= cap {
        return Err(SlotError::Full { load, cap });
    }
    Ok(Slot { _lock: Some(file) })
}

/// Puts the facts together (counting the agent's sessions here: blocking
/// for an agent on another machine).
pub(crate) fn assess(
    agent: &AgentSpec,
    check: Check,
    store: &Store,
    state: &StateRoot,
    task: Option<&str>,
) -> Result<Availability, StoreError> {
    assess_counted(agent, check, load_of(state, agent), store, task)
}

/// [`assess`] inside a runtime: the count runs off it.
pub(crate) async fn assess_now(
    agent: &AgentSpec,
    check: Check,
    store: &Store,
    state: &StateRoot,
    task: Option<&str>,
) -> Result<Availability, StoreError> {
    let load = counted(state, agent).await;
    assess_counted(agent, check, load, store, task)
}

/// Puts the facts together, the agent's live sessions counted.
fn assess_counted(
    agent: &AgentSpec,
    check: Check,
    load: Result<u32, LoadError>,
    store: &Store,
    task: Option<&str>,
) -> Result<Availability, StoreError> {
    let cooldown = store.cooldown(&agent.name, task)?;
    let last_probe = store.last_probe(&agent.name)?;
    // An agent on another machine is checked there; one on a model
    // endpoint needs no credentials of its own, but an endpoint whose last
    // probe did not fail.
    let auth = match (&agent.host, &agent.endpoint) {
        (Some(_), _) | (_, Some(_)) => None,
        (None, None) => {
            adapter::find(&agent.base).ok().flatten().and_then(|p| p.auth).map(|a| a.find())
        }
    };
    let endpoint_probe = match &agent.endpoint {
        Some(on) => store.last_probe(&on.endpoint.probe_key())?,
        None => None,
    };
    let reason = if check.status != Status::Ok {
        Some(format!("its program does not work: {}", check.detail))
    } else if let Some(p) = endpoint_probe.as_ref().filter(|p| !p.ok) {
        Some(format!("its endpoint's last probe failed: {}", p.detail))
    } else if let Some(Err(missing)) = &auth {
        Some(missing.clone())
    } else if let Some(c) = &cooldown {
        Some(format!(
            "cooling down until {} ({:.0}s more{}: {})",
            c.until,
            c.left_s,
            if c.task.is_some() { ", for this task" } else { "" },
            c.reason
        ))
    } else if let Some(p) = last_probe.as_ref().filter(|p| !p.ok) {
        Some(format!("its last probe failed: {}", p.detail))
    } else {
        match &load {
            Err(err) => Some(err.to_string()),
            Ok(load) => agent
                .max_concurrent
                .filter(|cap| load >= cap)
                .map(|cap| format!("at its cap: {load} of {cap} sessions")),
        }
    };
    Ok(Availability {
        available: reason.is_none(),
        reason,
        auth: auth.and_then(Result::ok),
        check,
        cooldown,
        load: load.ok(),
        max_concurrent: agent.max_concurrent,
        last_probe,
    })
}
