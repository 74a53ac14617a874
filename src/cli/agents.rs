//! `reins agents`: the agents `dispatch` can use, and whether each can
//! take a task now; `--probe` runs one tiny real turn on each.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::adapter::probe::Status;
use crate::config::{AgentSpec, Agents};
use crate::dispatch::avail;
use crate::dispatch::roster::{self, EndpointRow, Report};
use crate::dispatch::sessions::{Launch, Reins, TurnEnd};
use crate::endpoint::Endpoint;
use crate::endpoint::check;
use crate::error::{CliError, CliResult, code};
use crate::store::outcomes::Probe;
use crate::store::paths::StateRoot;

/// List the agents dispatch can use, with whether each is available now:
/// its program works (as `reins doctor` checks it), its credentials are
/// where its profile's [auth] says they can be (only whether they are
/// there; no value is read out), it is not cooling down after failures, its last probe did not fail, and its live sessions are
/// under its max_concurrent.
///
/// Agents come from $XDG_CONFIG_HOME/reins/config.toml (one [agents.NAME]
/// table each, see below), plus every adapter profile as an agent of its
/// own name.
///
/// `--probe` starts each available agent (or the NAMEs) headless with a
/// one-line task, waits for the turn to complete, stops it, and records
/// success and latency in the outcome store; an agent whose last probe
/// failed is not available until a probe succeeds.
///
/// Model endpoints ([endpoints.NAME]) are listed after the agents: whether
/// each answers, which of its models it serves, and the model its last
/// probe chose. `--probe` sends each a tiny request, model by model in the
/// configured order (skipping models it does not serve), and records the
/// first that answers.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
config.toml:
  [agents.cheap]
  agent = \"codex\"                # the adapter profile (default: the name)
  model = \"gpt-5-mini\"
  args = [\"--search\"]            # more arguments for the agent
  max_concurrent = 2             # live sessions at most (default: no cap)
  cooldown = \"10m\"               # rest after failing a task over (default 10m)
  model_args = [\"-m\", \"{model}\"] # how the model is passed (default: per profile)
  host = \"gpu\"                   # its sessions run there ([hosts.gpu], `reins hosts`)

  [endpoints.local]              # a model server (see `reins doctor --help`)
  url = \"http://127.0.0.1:11434/v1\"
  models = [\"qwen2.5-coder:7b\", \"phi4-mini\"]  # first choice first

  [agents.local-qwen]            # a local tier: a real coding agent on it
  agent = \"codex\"                # codex, opencode or qwen (profiles with [endpoint])
  endpoint = \"local\"             # model: as set, else what its probe chose

  [[route]]                      # dispatch without --agent/--prefer/--ladder:
  when = [\"(?i)flaky|test\", \"label:tests\"]  # regexes on the task, label:NAME
  prefer = [\"strong\", \"cheap\"]  # these first, then the rest of the pool
  weight = 2                     # score = weight x patterns matched (default 1)

  [[route]]                      # or a routing chain: one attempt per rung
  when = [\"label:feature\"]
  ladder = [\"local-qwen\", \"strong\"]  # instead of prefer
  verifier = \"reviewer\"          # unless dispatch names one

  [dispatch]                     # when no rule routes the task
  default_ladder = [\"local-qwen\", \"strong\"]
  verifier = \"reviewer\"

  [agents.strong]
  self_certify = true            # accepted on its checks alone: no verifier call

Examples:
  reins agents                  a table
  reins agents --json
  reins agents --probe cheap    one real turn on cheap, recorded
  reins agents --probe local    the first model of endpoint local that answers

Exit codes: 0 ok (also when agents are unavailable), 1 a probe failed, 2
usage error (an unknown NAME, a broken config file).")]
pub(crate) struct Args {
    /// Only these agents (or endpoints).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Run one tiny real turn on each agent and record how it went.
    #[arg(long)]
    probe: bool,
    /// How long a probe may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::time::parse_duration)]
    probe_timeout: Duration,
    /// How long each program check may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::time::parse_duration)]
    timeout: Duration,
}

pub(crate) fn run(args: Args) -> CliResult {
    let agents = Agents::load()?;
    let is_endpoint = |n: &String| {
        agents.endpoints.iter().any(|e| &e.name == n) && !agents.list.iter().any(|a| &a.name == n)
    };
    let chosen: Vec<&AgentSpec> = if args.names.is_empty() {
        agents.list.iter().collect()
    } else {
        args.names
            .iter()
            .filter(|n| !is_endpoint(n))
            .map(|n| agents.get(n))
            .collect::<Result<_, _>>()?
    };
    let endpoints: Vec<&Endpoint> = agents
        .endpoints
        .iter()
        .filter(|e| args.names.is_empty() || args.names.contains(&e.name))
        .collect();
    let state = StateRoot::from_env()?;
    let store = crate::store::outcomes::Store::open_in(&state)?;
    let checks = avail::program_checks(&chosen, args.timeout);
    let mut probes: Vec<Option<Probe>> = vec![None; chosen.len()];
    if args.probe {
        let reins = Reins::new(&std::env::current_dir()?)?;
        let runtime = crate::cli::runtime();
        for (i, agent) in chosen.iter().enumerate() {
            let runs = checks[i].status == Status::Ok;
            let usable = runs
                && store
                    .cooldown(&agent.name, None)
                    .map_err(|e| CliError::failure(e.to_string()))?
                    .is_none();
            if !usable && args.names.is_empty() {
                continue; // probe what could be used; a NAME is probed anyway
            }
            let probe = runtime.block_on(probe(&reins, agent, args.probe_timeout));
            store.add_probe(&probe).map_err(|e| CliError::failure(e.to_string()))?;
            if !args.json {
                eprintln!(
                    "reins agents: probe of {}: {} ({})",
                    agent.name,
                    if probe.ok { "ok" } else { "FAILED" },
                    probe.detail
                );
            }
            probes[i] = Some(probe);
        }
    }
    let mut report = roster::report(&agents, &chosen, checks, probes, &store, &state)?;
    report.endpoints = endpoint_rows(&endpoints, &args, &store)?;
    report.ok &=
        report.endpoints.iter().all(|e| e.probe.as_ref().is_none_or(|p| p.chosen.is_some()));
    let probe_failed = !report.ok;
    if args.json {
        crate::cli::print_json(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(if probe_failed { code::FAILURE } else { code::OK })
}

/// Each endpoint: its model list now, and with `--probe` the first model
/// that answers (recorded).
fn endpoint_rows(
    endpoints: &[&Endpoint],
    args: &Args,
    store: &crate::store::outcomes::Store,
) -> Result<Vec<EndpointRow>, CliError> {
    if endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let runtime = crate::cli::runtime();
    let timeout = args.timeout;
    let reaches = runtime.block_on(async {
        let asks: Vec<_> = endpoints
            .iter()
            .map(|ep| {
                let ep = (*ep).clone();
                tokio::spawn(async move { check::reach(&ep, timeout).await })
            })
            .collect();
        let mut out = Vec::new();
        for ask in asks {
            out.push(ask.await.map_err(|e| CliError::failure(format!("internal error: {e}")))?);
        }
        Ok::<_, CliError>(out)
    })?;
    let mut rows = Vec::new();
    for (ep, reach) in endpoints.iter().zip(reaches) {
        let probe = if args.probe {
            let probe = runtime.block_on(check::probe(ep));
            let stored = probe.as_probe(ep);
            store.add_probe(&stored).map_err(|e| CliError::failure(e.to_string()))?;
            if !args.json {
                eprintln!(
                    "reins agents: probe of endpoint {}: {} ({})",
                    ep.name,
                    if stored.ok { "ok" } else { "FAILED" },
                    stored.detail
                );
            }
            Some(probe)
        } else {
            None
        };
        let last_probe =
            store.last_probe(&ep.probe_key()).map_err(|e| CliError::failure(e.to_string()))?;
        let chosen = last_probe.as_ref().and_then(|p| p.model.clone());
        let warm = match chosen.as_ref().or(reach.present.first()) {
            Some(model) if reach.reachable => Some(runtime.block_on(check::warm(ep, model))),
            _ => None,
        };
        rows.push(EndpointRow {
            name: ep.name.clone(),
            url: ep.url.clone(),
            models: ep.models.clone(),
            reach,
            warm,
            chosen,
            last_probe,
            probe,
        });
    }
    Ok(rows)
}

fn print_table(report: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let width = report.agents.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "{:width$}  {:<9} {:<14} {:<9} {:<5}  WHY",
        "NAME", "AGENT", "MODEL", "AVAILABLE", "LOAD"
    )?;
    for r in &report.agents {
        let a = &r.availability;
        // `?`: its host did not answer (the reason says so).
        let load = a.load.map_or_else(|| "?".to_string(), |n| n.to_string());
        let load = match a.max_concurrent {
            Some(cap) => format!("{load}/{cap}"),
            None => load,
        };
        writeln!(
            out,
            "{:width$}  {:<9} {:<14} {:<9} {:<5}  {}",
            r.name,
            r.agent,
            r.model.as_deref().unwrap_or("-"),
            if a.available { "yes" } else { "no" },
            load,
            match (&a.reason, &a.auth) {
                (Some(reason), _) => reason.clone(),
                (None, Some(auth)) => format!("{}; credentials: {auth}", a.check.detail),
                (None, None) => a.check.detail.clone(),
            }
        )?;
    }
    if !report.endpoints.is_empty() {
        let width = report.endpoints.iter().map(|e| e.name.len()).max().unwrap_or(8).max(8);
        writeln!(
            out,
            "{:width$}  {:<9} {:<14} {:<4} MODELS",
            "ENDPOINT", "REACHABLE", "CHOSEN", "WARM"
        )?;
        for e in &report.endpoints {
            let reachable = match e.reach.latency_ms {
                Some(ms) if e.reach.reachable => format!("yes {ms}ms"),
                _ => "no".into(),
            };
            let models = if e.reach.reachable {
                let mut shown = e.reach.present.join(", ");
                if !e.reach.missing.is_empty() {
                    shown.push_str(&format!(" (lacks {})", e.reach.missing.join(", ")));
                }
                shown
            } else {
                e.reach.error.clone().unwrap_or_default()
            };
            let warm = match e.warm {
                Some(w) if w.warm => "yes",
                Some(_) => "no",
                None => "-",
            };
            writeln!(
                out,
                "{:width$}  {:<9} {:<14} {warm:<4} {models}",
                e.name,
                reachable,
                e.chosen.as_deref().unwrap_or("-"),
            )?;
        }
    }
    match &report.config {
        Some(path) => writeln!(out, "config: {path}"),
        None => writeln!(out, "config: none (built-in agents only)"),
    }
}

/// One tiny real turn through the agent's own transport.
async fn probe(reins: &Reins, agent: &AgentSpec, timeout: Duration) -> Probe {
    let session = format!("probe-{}-{}", agent.name, crate::ids::random_hex(3));
    let started_at = crate::time::now_rfc3339();
    let t0 = Instant::now();
    let launch = Launch {
        id: &session,
        agent,
        model: agent.model.as_deref(),
        brief: "This is a reins probe. Reply with the single word OK and do nothing else.",
        meta: serde_json::json!({"reins_agent": agent.name, "model": agent.model, "role": "probe"}),
        description: format!("probe of {}", agent.name),
        size: crate::store::registry::Size { cols: 120, rows: 40 },
        start_timeout: timeout,
        approve: crate::host::ApprovalPolicy::Never,
    };
    let (ok, detail) = match reins.start(&launch).await {
        Err(reason) => (false, reason),
        Ok(_) => {
            let left = timeout.saturating_sub(t0.elapsed());
            let end = reins.wait_task(&session, left).await;
            let latency = t0.elapsed().as_secs_f64();
            reins.stop(&session).await;
            match end {
                TurnEnd::Complete(s) if s == "completed" => {
                    (true, format!("a turn completed in {latency:.1}s"))
                }
                TurnEnd::Complete(s) => (false, format!("the turn ended {s}")),
                TurnEnd::Ended(how) => (false, format!("it ended before its turn did ({how})")),
                TurnEnd::Timeout => {
                    (false, format!("no turn completed within {}s", timeout.as_secs_f64()))
                }
                TurnEnd::Error(err) => (false, err),
            }
        }
    };
    Probe {
        agent: agent.name.clone(),
        model: agent.model.clone(),
        session,
        started_at,
        latency_s: ok.then(|| (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
        ok,
        detail,
    }
}
