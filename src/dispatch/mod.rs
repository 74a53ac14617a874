//! `reins dispatch`: hand one task to whichever agent should get it, check
//! the result by evidence, and try again elsewhere when it fails.
//!
//! The dispatcher owns no agent itself: every attempt is an ordinary
//! session started with `reins run --detach` (see [`sessions`]), waited for
//! with `reins wait --until task_complete`, read with `reins pane` and
//! stopped with `reins stop`. What it adds is the choice of agent
//! ([`avail`]), the done checks ([`done`]), the verifier ([`verdict`]), and
//! the record: one `attempt` event per attempt in its own log
//! (`$REINS_STATE_DIR/dispatches/ID/events.jsonl`, same envelope as a
//! session's) and one row per attempt in the outcome store (`reins.db`).
//!
//! Attempt sessions are named ID, ID-b, ID-c, …; a verifier of attempt
//! session S is S-verify. Every session the dispatcher started is stopped
//! before it exits, also when it is interrupted or runs out of time.

pub(crate) mod avail;
pub(crate) mod blocked;
pub(crate) mod done;
pub(crate) mod request;
pub(crate) mod roster;
pub(crate) mod routing;
pub(crate) mod sessions;
pub(crate) mod status;
pub(crate) mod verdict;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::adapter::probe::Check as ProgramCheck;
use crate::config::AgentSpec;
use crate::error::{CliError, code};
use crate::store::events::EventWriter;
use crate::store::outcomes::{Attempt, Store};
use crate::store::paths::StateRoot;
use sessions::{Launch, Reins, TurnEnd};

/// How long an attempt may sit blocked on something nobody answers
/// before it fails over.
pub(crate) const DEFAULT_BLOCKED_GRACE: Duration = Duration::from_secs(30);

/// How the agent of each attempt is chosen.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// `--agent A`: only A, no failover, no ladder.
    Pinned(AgentSpec),
    /// `--prefer A,B` or the configured pool (rotated for round robin):
    /// the first available one, the next after `max_failures` failures.
    Candidates { agents: Vec<AgentSpec>, how: &'static str },
    /// `--ladder A:M,B:M`: one attempt per rung, up on every failure.
    Ladder(Vec<Rung>),
}

/// One rung of a ladder.
#[derive(Debug, Clone)]
pub(crate) struct Rung {
    pub(crate) agent: AgentSpec,
    pub(crate) model: Option<String>,
}

impl Rung {
    /// `AGENT[:MODEL]`, as `--ladder` and a chain step's `ladder` write it.
    pub(crate) fn parse(text: &str, agents: &crate::config::Agents) -> Result<Rung, CliError> {
        let (name, model) = split_rung(text).map_err(|what| {
            CliError::usage(what).hint("write AGENT:MODEL or just AGENT, e.g. cheap:mini")
        })?;
        Ok(Rung { agent: agents.get(name)?.clone(), model })
    }
}

/// The agent and model of a ladder rung `AGENT[:MODEL]`; a colon with no
/// model after it is an error.
pub(crate) fn split_rung(text: &str) -> Result<(&str, Option<String>), String> {
    match text.split_once(':') {
        Some((name, model)) if !model.trim().is_empty() => {
            Ok((name.trim(), Some(model.trim().to_string())))
        }
        Some(_) => Err(format!("ladder rung {text:?} has no model")),
        None => Ok((text.trim(), None)),
    }
}

/// Everything a dispatch was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) task: String,
    pub(crate) labels: Vec<String>,
    pub(crate) checks: Vec<done::Check>,
    /// Variables the `cmd:` checks run with (a chain passes its task this
    /// way, never as shell text).
    pub(crate) check_env: Vec<(String, String)>,
    pub(crate) verifier: Option<AgentSpec>,
    pub(crate) max_failures: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) attempt_timeout: Duration,
    pub(crate) verify_timeout: Duration,
    pub(crate) check_timeout: Duration,
    pub(crate) start_timeout: Duration,
    pub(crate) program_timeout: Duration,
    pub(crate) cwd: PathBuf,
    /// How to watch every worker session, when watching.
    pub(crate) watch: Option<crate::watch::Options>,
    pub(crate) route: Route,
    /// The number of the first attempt (1 for a new dispatch; more when a
    /// chain runs a task again under the same dispatch id, so its sessions
    /// and store rows go on from the earlier ones).
    pub(crate) first_attempt: u32,
    /// Whether an agent that failed the task `max_failures` times rests
    /// (its cooldown). A chain says no: a task that fails its checks says
    /// little about the agent, and the chain's gate decides what follows.
    pub(crate) cool_down: bool,
    /// How the sessions' approval requests are answered.
    pub(crate) approve: crate::host::ApprovalPolicy,
    /// An attempt or its verifier blocked this long (on an approval,
    /// trust, a dialog or sign-in) fails instead of waiting out its timeout.
    pub(crate) blocked_grace: Duration,
    /// How the agents were chosen (recorded with every attempt).
    pub(crate) routed_by: String,
    /// A dispatch advisor (`[advisor] dispatch = true`): may pick the first
    /// of the candidates from the store's figures.
    pub(crate) advisor: Option<crate::watch::advisor::Advisor>,
}

/// Sees every event of a dispatch's log as it is written (a chain copies
/// the `attempt` events into its own log and tracks the sessions).
pub(crate) type Tap = std::rc::Rc<dyn Fn(&serde_json::Value)>;

/// Tells a running dispatch to stop, and how to call its ending.
pub(crate) type Cancel = tokio::sync::watch::Receiver<Option<Ending>>;

/// How a dispatch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Ending {
    Accepted,
    Failed,
    Timeout,
    Interrupted,
}

impl Ending {
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Ending::Accepted => code::OK,
            Ending::Failed => code::FAILURE,
            Ending::Timeout => code::TIMEOUT,
            Ending::Interrupted => 130,
        }
    }
}

/// The final summary (`--json`).
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) ok: bool,
    pub(crate) id: String,
    pub(crate) result: Ending,
    /// The accepted attempt's agent, model and session.
    pub(crate) agent: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) task_hash: String,
    pub(crate) labels: Vec<String>,
    pub(crate) duration_s: f64,
    pub(crate) log: PathBuf,
    pub(crate) attempts: Vec<Attempt>,
    /// The accepted attempt's screen when its turn ended.
    #[serde(skip)]
    pub(crate) answer: Option<String>,
    /// The agents passed over, and why.
    pub(crate) skipped: Vec<Skipped>,
}

/// An agent a dispatch passed over.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Skipped {
    pub(crate) agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rung: Option<u32>,
    pub(crate) reason: String,
}

/// The dispatcher's own events (same envelope as a session's).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Note<'a> {
    DispatchStarted {
        task_hash: &'a str,
        labels: &'a [String],
        route: &'a str,
        agents: Vec<String>,
        checks: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verifier: Option<&'a str>,
        max_failures: u32,
        cwd: &'a Path,
    },
    AttemptStarted {
        attempt: u32,
        session: &'a str,
        agent: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        model: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rung: Option<u32>,
    },
    /// How an attempt ended: the same fields as its row in the store.
    Attempt(&'a Attempt),
    /// An agent was passed over.
    Skipped {
        agent: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        rung: Option<u32>,
        reason: &'a str,
    },
    /// An agent was put to rest after failing the task `max_failures` times.
    Cooldown { agent: &'a str, for_s: f64, reason: &'a str },
    DispatchEnded {
        result: Ending,
        attempts: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<&'a str>,
        duration_s: f64,
    },
}

/// The session id of attempt `n`: ID, ID-b, ID-c, …, ID-z, ID-27, …
pub(crate) fn session_id(id: &str, n: u32) -> String {
    match n {
        0 | 1 => id.to_string(),
        2..=26 => format!("{id}-{}", (b'a' + n as u8 - 1) as char),
        _ => format!("{id}-{n}"),
    }
}

/// Where a dispatch keeps its log and the files of its attempts.
pub(crate) fn dir_of(state: &StateRoot, id: &str) -> PathBuf {
    state.root().join("dispatches").join(id)
}

struct Engine {
    plan: Plan,
    reins: Reins,
    store: Store,
    state: StateRoot,
    dir: PathBuf,
    log: EventWriter,
    task_hash: String,
    start_sha: Option<String>,
    programs: HashMap<String, ProgramCheck>,
    attempts: Vec<Attempt>,
    /// Sessions started and not yet stopped.
    live: Vec<String>,
    /// The attempt under way: its store row and when it began.
    current: Option<(Option<i64>, Attempt, Instant)>,
    /// The accepted attempt's screen.
    answer: Option<String>,
    tap: Option<Tap>,
    /// Agents passed over so far.
    skipped: Vec<Skipped>,
}

/// Runs a dispatch to its end; returns the summary. Ctrl-C and SIGTERM
/// stop it (and every session it started).
pub(crate) fn run(plan: Plan, state: StateRoot, store: Store) -> std::io::Result<Summary> {
    crate::control::runtime().block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let (tx, rx) = tokio::sync::watch::channel(None);
        let signals = async {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            let _ = tx.send(Some(Ending::Interrupted));
            std::future::pending::<()>().await
        };
        tokio::select! {
            summary = drive(plan, state, store, rx, None) => summary,
            _ = signals => unreachable!("the signal future never ends"),
        }
    })
}

/// Runs a dispatch to its end inside a runtime: until an attempt is
/// accepted, every way failed, its `--timeout` passed, or `cancel` says
/// stop. Every session it started is stopped before it returns.
pub(crate) async fn drive(
    plan: Plan,
    state: StateRoot,
    store: Store,
    mut cancel: Cancel,
    tap: Option<Tap>,
) -> std::io::Result<Summary> {
    let dir = dir_of(&state, &plan.id);
    crate::store::fsutil::create_private_dir_all(&dir)?;
    let log_path = dir.join("events.jsonl");
    let log = EventWriter::open(&log_path, &crate::ids::random_hex(8), &plan.id)?;
    let reins = Reins::new(&plan.cwd)?;
    let start_sha = crate::git::start(&plan.cwd).map(|s| s.sha);
    let mut engine = Engine {
        task_hash: crate::store::outcomes::task_hash(&plan.task),
        plan,
        reins,
        store,
        state,
        dir,
        log,
        start_sha,
        programs: HashMap::new(),
        attempts: Vec::new(),
        live: Vec::new(),
        current: None,
        answer: None,
        tap,
        skipped: Vec::new(),
    };
    let started = Instant::now();
    engine.advise().await;
    engine.note_start();
    let deadline = engine.plan.timeout.map(|t| tokio::time::Instant::from_std(started + t));
    let ending = tokio::select! {
        ending = engine.run() => ending,
        _ = async { match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        } } => Ending::Timeout,
        ending = async {
            match cancel.wait_for(Option::is_some).await {
                Ok(ending) => ending.unwrap_or(Ending::Interrupted),
                Err(_) => std::future::pending().await,
            }
        } => ending,
    };
    engine.clean_up(ending).await;
    let duration_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    let accepted = engine.attempts.iter().rev().find(|a| a.result == "accepted").cloned();
    engine.emit(&Note::DispatchEnded {
        result: ending,
        attempts: engine.attempts.len() as u32,
        session: accepted.as_ref().map(|a| a.session.as_str()),
        duration_s,
    });
    Ok(Summary {
        ok: ending == Ending::Accepted,
        id: engine.plan.id.clone(),
        result: ending,
        agent: accepted.as_ref().map(|a| a.agent.clone()),
        model: accepted.as_ref().and_then(|a| a.model.clone()),
        session: accepted.as_ref().map(|a| a.session.clone()),
        task_hash: engine.task_hash.clone(),
        labels: engine.plan.labels.clone(),
        duration_s,
        log: log_path,
        attempts: engine.attempts,
        answer: engine.answer,
        skipped: engine.skipped,
    })
}

impl Engine {
    fn say(&self, text: &str) {
        eprintln!("reins dispatch {}: {text}", self.plan.id);
    }

    /// Passes over an agent that cannot take the task now, and says why.
    fn skip(&mut self, agent: &str, rung: Option<u32>, reason: String) {
        match rung {
            Some(n) => self.say(&format!("skipping rung {n} ({agent}): {reason}")),
            None => self.say(&format!("skipping {agent}: {reason}")),
        }
        self.emit(&Note::Skipped { agent, rung, reason: &reason });
        self.skipped.push(Skipped { agent: agent.to_string(), rung, reason });
    }

    fn emit(&mut self, note: &Note<'_>) {
        match self.log.emit_payload(None, note) {
            Ok(line) => {
                if let Some(tap) = &self.tap
                    && let Ok(value) = serde_json::from_str(&line)
                {
                    tap(&value);
                }
            }
            Err(err) => eprintln!("reins: warning: cannot write the dispatch log: {err}"),
        }
    }

    /// Asks the dispatch advisor which candidate goes first, showing it
    /// each one's success rate and median duration on tasks with these
    /// labels; an invalid or late answer leaves the rules' order.
    async fn advise(&mut self) {
        let Some(advisor) = self.plan.advisor.clone() else { return };
        let Route::Candidates { agents, how } = &self.plan.route else { return };
        if !matches!(*how, "round_robin" | "route") || agents.len() < 2 {
            return;
        }
        let figures = self.store.figures(&self.plan.labels).unwrap_or_default();
        let shown: Vec<serde_json::Value> = agents
            .iter()
            .map(|a| {
                let f = figures.iter().find(|f| f.agent == a.name);
                json!({
                    "agent": a.name,
                    "model": a.model,
                    "tier": if a.endpoint.is_some() { "local" } else { "cloud" },
                    "attempts": f.map_or(0, |f| f.attempts),
                    "success_rate": f.map(|f| (f.success_rate * 1000.0).round() / 1000.0),
                    "median_duration_s": f.and_then(|f| f.median_duration_s),
                })
            })
            .collect();
        let task: String = self.plan.task.chars().take(2000).collect();
        let asked = json!({"task": task, "labels": self.plan.labels, "agents": shown});
        let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
        match advisor.pick(&asked, &names).await {
            Ok(advice) => {
                let mut ordered = agents.clone();
                if let Some(i) = ordered.iter().position(|a| a.name == advice.decision) {
                    let chosen = ordered.remove(i);
                    ordered.insert(0, chosen);
                }
                self.say(&format!("the advisor picked {}: {}", advice.decision, advice.reason));
                self.plan.route = Route::Candidates { agents: ordered, how: "advisor" };
                self.plan.routed_by = "advisor".into();
            }
            Err(why) => self.say(&format!("advice not taken ({why}); the rules decide")),
        }
    }

    fn note_start(&mut self) {
        let (route, agents): (&str, Vec<String>) = match &self.plan.route {
            Route::Pinned(a) => ("agent", vec![a.name.clone()]),
            Route::Candidates { agents, how } => {
                (how, agents.iter().map(|a| a.name.clone()).collect())
            }
            Route::Ladder(rungs) => (
                "ladder",
                rungs
                    .iter()
                    .map(|r| match &r.model {
                        Some(m) => format!("{}:{m}", r.agent.name),
                        None => r.agent.name.clone(),
                    })
                    .collect(),
            ),
        };
        let checks: Vec<String> = self.plan.checks.iter().map(|c| c.to_string()).collect();
        let verifier = self.plan.verifier.as_ref().map(|v| v.name.clone());
        let (hash, labels, cwd, max) = (
            self.task_hash.clone(),
            self.plan.labels.clone(),
            self.plan.cwd.clone(),
            self.plan.max_failures,
        );
        self.emit(&Note::DispatchStarted {
            task_hash: &hash,
            labels: &labels,
            route,
            agents,
            checks,
            verifier: verifier.as_deref(),
            max_failures: max,
            cwd: &cwd,
        });
    }

    async fn run(&mut self) -> Ending {
        match self.plan.route.clone() {
            Route::Pinned(agent) => {
                if let Some(reason) = self.unavailable(&agent).await {
                    self.say(&format!("warning: {} may not work: {reason}", agent.name));
                }
                self.on_agents(&[agent], false).await
            }
            Route::Candidates { agents, .. } => self.on_agents(&agents, true).await,
            Route::Ladder(rungs) => self.ladder(&rungs).await,
        }
    }

    /// Why `agent` cannot take the task now, if it cannot.
    async fn unavailable(&mut self, agent: &AgentSpec) -> Option<String> {
        let check = match self.programs.get(&agent.name) {
            Some(check) => check.clone(),
            None => {
                // doctor's check blocks (codex: an app-server handshake on
                // a runtime of its own), so it runs off this runtime.
                let (spec, timeout) = (agent.clone(), self.plan.program_timeout);
                let check =
                    tokio::task::spawn_blocking(move || avail::program_check(&spec, timeout))
                        .await
                        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
                self.programs.insert(agent.name.clone(), check.clone());
                check
            }
        };
        match avail::assess_now(agent, check, &self.store, &self.state, Some(&self.task_hash)).await
        {
            Ok(a) => a.reason,
            Err(err) => {
                self.say(&format!("warning: {err}"));
                None
            }
        }
    }

    /// Tries the agents in order: up to `max_failures` attempts each, the
    /// next available one after that (`failover`), none when pinned.
    async fn on_agents(&mut self, agents: &[AgentSpec], failover: bool) -> Ending {
        let mut note: Option<String> = None;
        for agent in agents {
            let mut agent_faults = 0;
            if failover && let Some(reason) = self.unavailable(agent).await {
                self.skip(&agent.name, None, reason);
                continue;
            }
            let mut full = false;
            for _ in 0..self.plan.max_failures {
                // Pinned, the agent is used whatever its state (see `run`).
                let slot = match self.claim(agent, failover).await {
                    Ok(slot) => slot,
                    Err(reason) => {
                        self.skip(&agent.name, None, reason);
                        full = true;
                        break;
                    }
                };
                let attempt =
                    self.attempt(agent, agent.model.clone(), None, note.as_deref(), slot).await;
                if attempt.result == "accepted" {
                    return Ending::Accepted;
                }
                agent_faults += u32::from(attempt.agent_fault);
                note = Some(failure_note(&attempt));
            }
            if full {
                continue;
            }
            // An agent that could not do any work rests from every task; one
            // that worked but did not get this task done rests from it only.
            let (task, reason) = if agent_faults == self.plan.max_failures {
                (None, format!("failed to run {} time(s)", self.plan.max_failures))
            } else {
                (
                    Some(self.task_hash.as_str()),
                    format!(
                        "failed {} attempt(s) at task {}",
                        self.plan.max_failures, self.task_hash
                    ),
                )
            };
            if self.plan.cool_down {
                let cooldown = agent.cooldown;
                if let Err(err) = self.store.set_cooldown(&agent.name, task, cooldown, &reason) {
                    self.say(&format!("warning: {err}"));
                }
                self.emit(&Note::Cooldown {
                    agent: &agent.name,
                    for_s: agent.cooldown.as_secs_f64(),
                    reason: &reason,
                });
            }
            if !failover {
                break;
            }
            self.say(&format!(
                "{} failed {} time(s); trying the next agent",
                agent.name, self.plan.max_failures
            ));
        }
        Ending::Failed
    }

    /// One attempt per rung; a failed or rejected one moves up with its
    /// feedback in the next brief; an accepted one ends the ladder.
    async fn ladder(&mut self, rungs: &[Rung]) -> Ending {
        let mut note: Option<String> = None;
        for (i, rung) in rungs.iter().enumerate() {
            let n = i as u32 + 1;
            if let Some(reason) = self.unavailable(&rung.agent).await {
                self.skip(&rung.agent.name, Some(n), reason);
                continue;
            }
            let slot = match self.claim(&rung.agent, true).await {
                Ok(slot) => slot,
                Err(reason) => {
                    self.skip(&rung.agent.name, Some(n), reason);
                    continue;
                }
            };
            let attempt =
                self.attempt(&rung.agent, rung.model.clone(), Some(n), note.as_deref(), slot).await;
            if attempt.result == "accepted" {
                return Ending::Accepted;
            }
            note = Some(failure_note(&attempt));
        }
        Ending::Failed
    }

    /// One of `agent`'s places under its `max_concurrent`, held until the
    /// attempt's session is registered; with `enforce` false (a pinned
    /// agent) none is needed.
    async fn claim(&self, agent: &AgentSpec, enforce: bool) -> Result<avail::Slot, String> {
        if !enforce {
            return Ok(avail::Slot::uncapped());
        }
        // A holder keeps the lock for one session start at most.
        let patience = self.plan.start_timeout.saturating_mul(2);
        avail::claim(&self.state, agent, patience).await.map_err(|err| err.to_string())
    }

    /// The worker's brief: the task, what will be checked, and why the last
    /// attempt was not accepted.
    fn brief(&self, note: Option<&str>) -> String {
        let mut brief = self.plan.task.trim().to_string();
        if !self.plan.checks.is_empty() {
            let list: Vec<String> = self.plan.checks.iter().map(|c| c.to_string()).collect();
            brief.push_str(&format!(
                "\n\nWhen you are done, reins checks: {}. The task is done only if they pass.",
                list.join("; ")
            ));
            let names: Vec<&str> = self.plan.check_env.iter().map(|(k, _)| k.as_str()).collect();
            if !names.is_empty()
                && self.plan.checks.iter().any(|c| matches!(c, done::Check::Cmd(_)))
            {
                brief.push_str(&format!(
                    " Commands run with {} set (the task as given).",
                    names.join(", ")
                ));
            }
        }
        if let Some(note) = note {
            brief
                .push_str(&format!("\n\nAn earlier attempt at this task was not accepted. {note}"));
        }
        brief
    }

    async fn attempt(
        &mut self,
        agent: &AgentSpec,
        model: Option<String>,
        rung: Option<u32>,
        note: Option<&str>,
        slot: avail::Slot,
    ) -> Attempt {
        let n = self.attempts.len() as u32 + self.plan.first_attempt.max(1);
        let session = session_id(&self.plan.id, n);
        // On a model endpoint with no model configured: the model its last
        // probe found answering, if that is one of its models.
        let model = model.or_else(|| {
            let on = agent.endpoint.as_ref().filter(|on| on.default_model)?;
            let probe = self.store.last_probe(&on.endpoint.probe_key()).ok()??;
            probe.model.filter(|m| probe.ok && on.endpoint.models.contains(m))
        });
        let mut a = Attempt {
            dispatch: self.plan.id.clone(),
            n,
            task_hash: self.task_hash.clone(),
            labels: self.plan.labels.clone(),
            agent: agent.name.clone(),
            model: model.clone().or_else(|| agent.model.clone()),
            rung,
            session: session.clone(),
            started_at: crate::time::now_rfc3339(),
            result: "running".into(),
            checks: json!([]),
            ..Attempt::default()
        };
        a.tier = Some(if agent.endpoint.is_some() { "local" } else { "cloud" }.into());
        a.routed_by = Some(self.plan.routed_by.clone());
        if let (Some(on), Some(model)) = (&agent.endpoint, a.model.as_deref()) {
            let warm = crate::endpoint::check::warm(&on.endpoint, model).await;
            a.warm_start = Some(warm.warm);
        }
        let row = match self.store.start_attempt(&a) {
            Ok(row) => Some(row),
            Err(err) => {
                self.say(&format!("warning: {err}"));
                None
            }
        };
        let t0 = Instant::now();
        self.current = Some((row, a.clone(), t0));
        self.emit(&Note::AttemptStarted {
            attempt: n,
            session: &session,
            agent: &agent.name,
            model: a.model.as_deref(),
            rung,
        });
        let shown_model = a.model.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
        let on = match (&agent.endpoint, a.warm_start) {
            (Some(on), Some(warm)) => {
                format!(" on endpoint {} ({})", on.name, if warm { "warm" } else { "cold" })
            }
            _ => String::new(),
        };
        self.say(&format!("attempt {n}: {}{shown_model}{on} as session {session}", agent.name));

        let brief = self.brief(note);
        let launch = Launch {
            id: &session,
            agent,
            model: a.model.as_deref(),
            brief: &brief,
            meta: json!({
                "dispatch": self.plan.id,
                "reins_agent": agent.name,
                "model": a.model,
                "attempt": n,
                "rung": rung,
                "role": "worker",
                "task_hash": self.task_hash,
                "endpoint": agent.endpoint.as_ref().map(|on| &on.name),
                "warm_start": a.warm_start,
            }),
            description: format!("dispatch {} attempt {n}", self.plan.id),
            size: crate::store::registry::Size { cols: 160, rows: 50 },
            start_timeout: self.plan.start_timeout,
            approve: self.plan.approve,
        };
        self.live.push(session.clone());
        let started = self.reins.start(&launch).await;
        // Registered (or failed): a count now sees it.
        drop(slot);
        // A failed turn, and whether the agent itself failed (it did not
        // start, crashed, reported a failure) rather than the task.
        let turn: Result<String, (String, bool)> = match started {
            Err(reason) => Err((format!("{} did not start: {reason}", agent.name), true)),
            Ok(started) => {
                let watch = match &self.plan.watch {
                    Some(options) => {
                        let log = self.dir.join(format!("{session}.watch.log"));
                        self.reins.watch(&session, options.clone(), &log)
                    }
                    None => None,
                };
                let timeout = self.plan.attempt_timeout;
                let end = tokio::select! {
                    end = self.wait_turn(&session, timeout, watch.as_ref()) => end,
                    blocked = blocked::watch(&self.reins, &started, self.plan.blocked_grace) => {
                        TurnEnd::Ended(format!(
                            "{blocked} (--approve {})",
                            self.plan.approve.as_str()
                        ))
                    }
                };
                let answer = self.reins.screen(&session).await;
                if let Some(watch) = watch {
                    watch.abort();
                    let _ = watch.await;
                }
                self.reins.stop(&session).await;
                self.live.retain(|s| s != &session);
                a.tokens = sessions::tokens_of(&started);
                match end {
                    TurnEnd::Complete(status) if status == "completed" => {
                        Ok(answer.unwrap_or_default())
                    }
                    TurnEnd::Complete(status) => {
                        Err((format!("its turn ended {status}"), status == "failed"))
                    }
                    TurnEnd::Ended(how) => Err((
                        format!("the session ended before the task was complete ({how})"),
                        true,
                    )),
                    TurnEnd::Timeout => Err((
                        format!(
                            "no task_complete within {}",
                            crate::time::human(timeout.as_secs_f64())
                        ),
                        false,
                    )),
                    TurnEnd::Error(err) => Err((format!("cannot wait for it: {err}"), true)),
                }
            }
        };
        self.live.retain(|s| s != &session);
        match turn {
            Err((reason, agent_fault)) => {
                a.result = "failed".into();
                a.reason = Some(reason);
                a.agent_fault = agent_fault;
            }
            Ok(answer) => {
                let prefix = self.dir.join(&session);
                let found = done::run_all(
                    &self.plan.checks,
                    &self.plan.check_env,
                    &self.plan.cwd,
                    self.plan.check_timeout,
                    &prefix,
                )
                .await;
                a.checks = json!(found);
                if let Some(bad) = found.iter().find(|f| !f.ok) {
                    a.result = "failed".into();
                    a.reason = Some(format!("done check {} failed: {}", bad.check, bad.detail));
                } else if let Some(verifier) =
                    self.plan.verifier.clone().filter(|_| !agent.self_certify)
                {
                    let (verdict, how) = self.verify(&verifier, &session, &answer).await;
                    a.verdict = Some(if verdict.accept { "accept" } else { "reject" }.into());
                    a.feedback = Some(verdict.feedback.clone());
                    a.verifier = Some(format!("{session}-verify"));
                    if verdict.accept {
                        a.result = "accepted".into();
                    } else {
                        a.result = "rejected".into();
                        a.reason = Some(how);
                    }
                } else {
                    if self.plan.verifier.is_some() {
                        // A self-certifying rung: its checks passed, no verifier call.
                        a.feedback =
                            Some(format!("self-certified by {}: no verifier call", agent.name));
                    }
                    a.result = "accepted".into();
                }
                if a.result == "accepted" {
                    self.answer = Some(answer);
                }
            }
        }
        self.finish(a, row, t0)
    }

    /// Waits for the worker's task to complete. A watched worker whose
    /// turn was interrupted (a nudge) or whose agent died (a restart) gets
    /// more time, as long as its watch goes on: the watch's next turn is
    /// the one that counts.
    async fn wait_turn(
        &self,
        session: &str,
        timeout: Duration,
        watch: Option<&tokio::task::JoinHandle<crate::watch::Summary>>,
    ) -> TurnEnd {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let end = self.reins.wait_task(session, left).await;
            let settled = matches!(&end, TurnEnd::Complete(s) if s == "completed")
                || matches!(end, TurnEnd::Timeout);
            let watching = watch.is_some_and(|w| !w.is_finished());
            if settled || !watching || Instant::now() >= deadline {
                return end;
            }
            // Give the watch a moment to nudge or restart, then wait again.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn finish(&mut self, mut a: Attempt, row: Option<i64>, t0: Instant) -> Attempt {
        a.ended_at = Some(crate::time::now_rfc3339());
        a.duration_s = Some((t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
        if let Some(row) = row
            && let Err(err) = self.store.finish_attempt(row, &a)
        {
            self.say(&format!("warning: {err}"));
        }
        self.current = None;
        self.emit(&Note::Attempt(&a));
        let why = match (&a.reason, &a.feedback) {
            (Some(reason), Some(feedback)) => format!(": {reason}: {feedback}"),
            (Some(reason), None) => format!(": {reason}"),
            (None, Some(feedback)) if !feedback.is_empty() => format!(" ({feedback})"),
            _ => String::new(),
        };
        self.say(&format!(
            "attempt {} ({}, session {}) {}{why} [{:.1}s]",
            a.n,
            a.agent,
            a.session,
            a.result,
            a.duration_s.unwrap_or(0.0)
        ));
        self.attempts.push(a.clone());
        a
    }

    /// Asks the verifier; any trouble is a rejection saying what it was.
    async fn verify(
        &mut self,
        verifier: &AgentSpec,
        worker: &str,
        answer: &str,
    ) -> (verdict::Verdict, String) {
        let session = format!("{worker}-verify");
        let key = crate::ids::random_hex(4);
        let reject = |why: String| {
            (
                verdict::Verdict { accept: false, feedback: why.clone() },
                format!("no valid verdict: {why}"),
            )
        };
        let file = match verdict::fresh_file(&self.dir, &session) {
            Ok(file) => file,
            Err(err) => return reject(format!("cannot make a place for the verdict: {err}")),
        };
        let answer: Vec<&str> = answer.lines().collect();
        let tail = answer[answer.len().saturating_sub(60)..].join("\n");
        let brief = format!(
            "You review another agent's work. Change nothing; only judge it.\n\n\
             The task it was given:\n{task}\n\n\
             What changed in the working tree{since}:\n{diff}\n\n\
             The end of its screen when it finished:\n{tail}\n\n\
             Decide whether the task is done well. Answer with one JSON object \
             {{\"accept\": <true or false>, \"feedback\": \"<what must change, or why it is fine>\"}} \
             on a line of its own, and also write that object to {file}.\n\
             End of brief (verdict key {key}).",
            task = self.plan.task.trim(),
            since = self.start_sha.as_deref().map(|s| format!(" since {s}")).unwrap_or_default(),
            diff = self.diff(),
            file = file.display(),
        );
        let launch = Launch {
            id: &session,
            agent: verifier,
            model: verifier.model.as_deref(),
            brief: &brief,
            meta: json!({
                "dispatch": self.plan.id,
                "reins_agent": verifier.name,
                "model": verifier.model,
                "role": "verifier",
                "verifies": worker,
            }),
            description: format!("dispatch {} verifier of {worker}", self.plan.id),
            size: crate::store::registry::Size { cols: 240, rows: 60 },
            start_timeout: self.plan.start_timeout,
            approve: self.plan.approve,
        };
        self.live.push(session.clone());
        let started = self.reins.start(&launch).await;
        let result = match started {
            Err(reason) => Err(format!("the verifier {} did not start: {reason}", verifier.name)),
            Ok(started) => {
                let end = blocked::wait_task(
                    &self.reins,
                    &session,
                    &started,
                    self.plan.verify_timeout,
                    self.plan.blocked_grace,
                )
                .await;
                let screen = self.reins.screen(&session).await.unwrap_or_default();
                self.reins.stop(&session).await;
                match end {
                    Ok(TurnEnd::Complete(s)) if s == "completed" => Ok(screen),
                    Ok(TurnEnd::Timeout) => Err(format!(
                        "the verifier gave no verdict within {}",
                        crate::time::human(self.plan.verify_timeout.as_secs_f64())
                    )),
                    Ok(other) => Err(format!("the verifier did not finish: {other:?}")),
                    Err(blocked) => Err(format!(
                        "the verifier was {blocked} (--approve {})",
                        self.plan.approve.as_str()
                    )),
                }
            }
        };
        self.live.retain(|s| s != &session);
        let screen = match result {
            Ok(screen) => screen,
            Err(why) => return reject(why),
        };
        let parsed = match verdict::from_file(&file) {
            Some(parsed) => parsed,
            None => {
                let after =
                    screen.rfind(&key).map_or(screen.as_str(), |at| &screen[at + key.len()..]);
                verdict::from_text(after)
            }
        };
        match parsed {
            Ok(verdict) => {
                let how = if verdict.accept { "accepted" } else { "the verifier rejected it" };
                (verdict, how.to_string())
            }
            Err(why) => reject(why),
        }
    }

    /// `git diff` against the start commit plus untracked files, capped.
    fn diff(&self) -> String {
        const CAP: usize = 16_000;
        let Some(sha) = &self.start_sha else {
            return "(not a git repository: no diff)".into();
        };
        let timeout = Duration::from_secs(10);
        let diff = crate::git::output(&self.plan.cwd, &["diff", sha], timeout)
            .ok()
            .filter(|o| o.success())
            .map(|o| o.stdout)
            .unwrap_or_default();
        let untracked = crate::git::output(
            &self.plan.cwd,
            &["ls-files", "--others", "--exclude-standard"],
            timeout,
        )
        .ok()
        .filter(|o| o.success())
        .map(|o| o.stdout)
        .unwrap_or_default();
        let mut text =
            if diff.trim().is_empty() { "(no changes to tracked files)".to_string() } else { diff };
        if !untracked.trim().is_empty() {
            text.push_str(&format!(
                "\nNew files: {}",
                untracked.split_whitespace().collect::<Vec<_>>().join(", ")
            ));
        }
        if text.len() > CAP {
            let mut cut = CAP;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("\n(diff cut here)");
        }
        text
    }

    /// Stops every session still running and closes the attempt under way.
    async fn clean_up(&mut self, ending: Ending) {
        for session in std::mem::take(&mut self.live) {
            self.reins.stop(&session).await;
        }
        if let Some((row, mut a, t0)) = self.current.take() {
            a.result = match ending {
                Ending::Timeout => "timeout",
                _ => "interrupted",
            }
            .into();
            a.reason = Some(match ending {
                Ending::Timeout => "the dispatch ran out of time (--timeout)".into(),
                _ => "the dispatcher was interrupted".into(),
            });
            self.finish(a, row, t0);
        }
    }
}

/// What the next brief says about an attempt that was not accepted.
fn failure_note(a: &Attempt) -> String {
    let who = format!("Attempt {} (agent {}, session {})", a.n, a.agent, a.session);
    match (a.result.as_str(), &a.feedback) {
        ("rejected", Some(feedback)) => {
            format!("{who} was rejected by the reviewer. The reviewer's feedback: {feedback}")
        }
        _ => format!(
            "{who} failed: {}.",
            a.reason.as_deref().unwrap_or("no reason recorded").trim_end_matches('.')
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_sessions_are_lettered() {
        assert_eq!(session_id("t", 1), "t");
        assert_eq!(session_id("t", 2), "t-b");
        assert_eq!(session_id("t", 3), "t-c");
        assert_eq!(session_id("t", 26), "t-z");
        assert_eq!(session_id("t", 27), "t-27");
    }

    #[test]
    fn the_note_carries_the_feedback() {
        let a = Attempt {
            n: 1,
            agent: "cheap".into(),
            session: "t".into(),
            result: "rejected".into(),
            feedback: Some("add a test".into()),
            ..Attempt::default()
        };
        assert!(failure_note(&a).ends_with("The reviewer's feedback: add a test"));
        let b = Attempt { result: "failed".into(), reason: Some("exit 3.".into()), ..a };
        assert!(failure_note(&b).ends_with("failed: exit 3."));
    }
}
