//! `reins agents`: the agents `dispatch` can use, and whether each can
//! take a task now; `--probe` runs one tiny real turn on each.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::adapter::probe::Status;
use crate::config::{AgentSpec, Agents};
use crate::dispatch::avail;
use crate::dispatch::roster::{self, Report};
use crate::dispatch::sessions::{Launch, Reins, TurnEnd};
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

  [[route]]                      # dispatch without --agent/--prefer/--ladder:
  when = [\"(?i)flaky|test\", \"label:tests\"]  # regexes on the task, label:NAME
  prefer = [\"strong\", \"cheap\"]  # these first, then the rest of the pool
  weight = 2                     # score = weight x patterns matched (default 1)

Examples:
  reins agents                  a table
  reins agents --json
  reins agents --probe cheap    one real turn on cheap, recorded

Exit codes: 0 ok (also when agents are unavailable), 1 a probe failed, 2
usage error (an unknown NAME, a broken config file).")]
pub(crate) struct Args {
    /// Only these agents.
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
    let chosen: Vec<&AgentSpec> = if args.names.is_empty() {
        agents.list.iter().collect()
    } else {
        args.names.iter().map(|n| agents.get(n)).collect::<Result<_, _>>()?
    };
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
    let report = roster::report(&agents, &chosen, checks, probes, &store, &state)?;
    let probe_failed = !report.ok;
    if args.json {
        crate::cli::print_json(&report)?;
    } else {
        print_table(&report)?;
    }
    Ok(if probe_failed { code::FAILURE } else { code::OK })
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
        let load = match a.max_concurrent {
            Some(cap) => format!("{}/{cap}", a.load),
            None => a.load.to_string(),
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
