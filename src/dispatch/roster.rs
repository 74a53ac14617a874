//! The agents dispatch can use and whether each can take a task now: what
//! `reins agents` prints and the MCP `list_agents` tool answers.

use serde::Serialize;

use crate::adapter::probe::Check;
use crate::config::{AgentSpec, Agents, Source};
use crate::dispatch::avail::{self, Availability};
use crate::error::CliError;
use crate::store::outcomes::{Probe, Store};
use crate::store::paths::StateRoot;

/// One agent.
#[derive(Debug, Serialize)]
pub(crate) struct Row {
    pub(crate) name: String,
    /// Its adapter profile.
    pub(crate) agent: String,
    pub(crate) source: Source,
    pub(crate) model: Option<String>,
    pub(crate) args: Vec<String>,
    pub(crate) cooldown_s: f64,
    /// The model endpoint it runs on (a local tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<Box<crate::config::OnEndpoint>>,
    pub(crate) availability: Availability,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) probe: Option<Probe>,
}

/// Every agent asked about.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// No probe failed.
    pub(crate) ok: bool,
    /// The config file the agents come from, if there is one.
    pub(crate) config: Option<String>,
    pub(crate) agents: Vec<Row>,
    /// The model endpoints of config.toml (`reins agents` fills them in).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) endpoints: Vec<EndpointRow>,
}

/// One `[endpoints.NAME]`: whether it answers, which models it serves, and
/// which model its probes found answering.
#[derive(Debug, Serialize)]
pub(crate) struct EndpointRow {
    pub(crate) name: String,
    pub(crate) url: String,
    /// The configured models, first choice first.
    pub(crate) models: Vec<String>,
    pub(crate) reach: crate::endpoint::check::Reach,
    /// The model the latest probe found answering (none: no probe yet, or
    /// none answered).
    pub(crate) chosen: Option<String>,
    /// Whether that model (else the first it serves) is loaded now, asked
    /// as an attempt on it asks (within 200 ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warm: Option<crate::endpoint::check::Warm>,
    /// The latest probe as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_probe: Option<Probe>,
    /// The probe run just now, model by model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) probe: Option<crate::endpoint::check::EndpointProbe>,
}

/// The report for `chosen` (agents of `agents`), given their program
/// checks and the probes run just now (one per agent, `None` if none ran).
pub(crate) fn report(
    agents: &Agents,
    chosen: &[&AgentSpec],
    checks: Vec<Check>,
    probes: Vec<Option<Probe>>,
    store: &Store,
    state: &StateRoot,
) -> Result<Report, CliError> {
    let mut rows = Vec::new();
    for ((agent, check), probe) in chosen.iter().zip(checks).zip(probes) {
        let availability = avail::assess(agent, check, store, state, None)
            .map_err(|e| CliError::failure(e.to_string()))?;
        // On an endpoint with no model configured: the one its last probe chose.
        let chosen = match agent.endpoint.as_ref().filter(|on| on.default_model) {
            Some(on) => store
                .last_probe(&on.endpoint.probe_key())
                .map_err(|e| CliError::failure(e.to_string()))?
                .filter(|p| p.ok)
                .and_then(|p| p.model),
            None => None,
        };
        rows.push(Row {
            name: agent.name.clone(),
            agent: agent.base.clone(),
            source: agent.source,
            model: chosen.or_else(|| agent.model.clone()),
            endpoint: agent.endpoint.clone(),
            args: agent.args.clone(),
            cooldown_s: agent.cooldown.as_secs_f64(),
            availability,
            probe,
        });
    }
    let probe_failed = rows.iter().any(|r| r.probe.as_ref().is_some_and(|p| !p.ok));
    Ok(Report {
        ok: !probe_failed,
        config: agents.path.as_ref().map(|p| p.display().to_string()),
        agents: rows,
        endpoints: Vec::new(),
    })
}

/// The named agents (every one when `names` is empty), checked now
/// without probes.
pub(crate) fn current(
    names: &[String],
    timeout: std::time::Duration,
    state: &StateRoot,
) -> Result<Report, CliError> {
    let agents = Agents::load()?;
    let chosen: Vec<&AgentSpec> = if names.is_empty() {
        agents.list.iter().collect()
    } else {
        names.iter().map(|n| agents.get(n)).collect::<Result<_, _>>()?
    };
    let store = Store::open_in(state)?;
    let checks = avail::program_checks(&chosen, timeout);
    let probes = vec![None; chosen.len()];
    report(&agents, &chosen, checks, probes, &store, state)
}
