//! The orchestration tools: `dispatch` (one task to whichever agent should
//! get it, checked, failed over) and `dispatch_status`, `chain_run` and
//! `chain_status`, `list_agents`: thin calls into `crate::dispatch` and
//! `crate::chain`, as `reins dispatch`, `reins chain` and `reins agents`
//! make them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, schemars, tool, tool_router};
use serde::Deserialize;
use serde_json::Value;

use crate::dispatch::done::{self, Check};
use crate::dispatch::request::Request;
use crate::error::CliError;
use crate::mcp::progress::Long;
use crate::mcp::reply::{Object, Reply, ToolError, object, ok};
use crate::mcp::server::Fleet;
use crate::mcp::sessions::{cancelled, seconds};
use crate::store::follow::{Follower, SessionFile};
use crate::store::registry::SessionRecord;
use crate::store::scope;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DispatchArgs {
    /// The task: the first message of each attempt's agent.
    pub(crate) message: String,
    /// Dispatch id, and the first attempt's session id (later attempts are
    /// ID-b, ID-c, ...; default: random).
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// Only this agent (no failover, no ladder).
    #[serde(default)]
    pub(crate) agent: Option<String>,
    /// These agents, the first available one first, the next after
    /// `max_failures` failures.
    #[serde(default)]
    pub(crate) prefer: Vec<String>,
    /// Rungs `AGENT[:MODEL]`, cheapest first: one attempt each, up on
    /// failure, the next rung gets the verifier's feedback.
    #[serde(default)]
    pub(crate) ladder: Vec<String>,
    /// Done checks, all must pass: `file:PATH` (exists), `cmd:COMMAND`
    /// (`sh -c` exits 0), `clean` (no git change), `quiet:DURATION`.
    #[serde(default)]
    pub(crate) done: Vec<String>,
    /// An agent that reviews each attempt (the task, the diff, the worker's
    /// screen) and answers a JSON verdict.
    #[serde(default)]
    pub(crate) verifier: Option<String>,
    /// Labels kept with every attempt in the outcome store.
    #[serde(default)]
    pub(crate) labels: Vec<String>,
    /// Failed attempts on one agent before the next takes over (1-25,
    /// default 2).
    #[serde(default)]
    pub(crate) max_failures: Option<u32>,
    /// Give up after this many seconds overall (result `timeout`).
    #[serde(default)]
    pub(crate) timeout_s: Option<f64>,
    /// Seconds one attempt may work before it counts as failed (default 1800).
    #[serde(default)]
    pub(crate) attempt_timeout_s: Option<f64>,
    /// Seconds the verifier may take (default 600).
    #[serde(default)]
    pub(crate) verify_timeout_s: Option<f64>,
    /// Seconds a `cmd:` check may run (default 600).
    #[serde(default)]
    pub(crate) check_timeout_s: Option<f64>,
    /// Working directory of the agents and the checks (default: the
    /// server's).
    #[serde(default)]
    pub(crate) cwd: Option<PathBuf>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdArgs {
    /// The id.
    pub(crate) id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainRunArgs {
    /// The chain file (TOML; `reins chain --help` shows the format).
    pub(crate) file: PathBuf,
    /// The chain's id (default: its name, or NAME-2, NAME-3, ... if taken).
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// Working directory of the agents and checks (default: the server's).
    #[serde(default)]
    pub(crate) cwd: Option<PathBuf>,
    /// Ask this agent what to do with failed tasks.
    #[serde(default)]
    pub(crate) gate_agent: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChainStatusArgs {
    /// The chain (default: every chain, summed up).
    #[serde(default)]
    pub(crate) id: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentsArgs {
    /// Only these agents (default: every configured one and every profile).
    #[serde(default)]
    pub(crate) names: Vec<String>,
}

#[tool_router(router = orchestration_tools, vis = "pub(crate)")]
impl Fleet {
    /// Hands one task to whichever agent should get it (`agent`, else the
    /// first available of `prefer`, else the configured pool; or a
    /// `ladder`), checks the result by evidence (`done` checks, a
    /// `verifier`) and fails over until an attempt is accepted. Answers
    /// the summary (result accepted, failed, timeout or interrupted; every
    /// attempt) and the accepted worker's `answer` (its screen). Reports
    /// each attempt and the worker's state as progress; cancelling it stops
    /// every session it started.
    #[tool]
    async fn dispatch(
        &self,
        Parameters(a): Parameters<DispatchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<Object>, ToolError> {
        let long = Long::of_request(&ctx);
        self.dispatch_with(a, &long).await
    }

    /// Where a dispatch stands (one started by this server, by `reins
    /// dispatch` or by a chain): running, ended or stopped, its result,
    /// the attempt under way and every attempt finished.
    #[tool(annotations(read_only_hint = true))]
    async fn dispatch_status(
        &self,
        Parameters(a): Parameters<IdArgs>,
    ) -> Result<Json<Object>, ToolError> {
        let mut status = crate::dispatch::status::status(&self.state, &a.id)?;
        if status.state != "ended" && self.work.is_running(&a.id) {
            status.state = "running";
        }
        ok(object(&status))
    }

    /// Starts a chain file (steps of dispatches in parallel batches, with
    /// gates) in a runner of its own that outlives this server, and
    /// answers once it runs: its id and first status. `chain_status`
    /// follows it.
    #[tool]
    async fn chain_run(
        &self,
        Parameters(a): Parameters<ChainRunArgs>,
    ) -> Result<Json<Object>, ToolError> {
        self.run_chain(a).await
    }

    /// Where a chain stands (its steps and tasks, attempts, tokens,
    /// whether its runner is alive), or every chain without `id`.
    #[tool(annotations(read_only_hint = true))]
    async fn chain_status(
        &self,
        Parameters(a): Parameters<ChainStatusArgs>,
    ) -> Result<Json<Object>, ToolError> {
        match &a.id {
            Some(id) => ok(object(&crate::chain::report::status(&self.state, id)?)),
            None => {
                let chains = crate::chain::report::list(&self.state);
                ok(object(&serde_json::json!({ "chains": chains })))
            }
        }
    }

    /// The agents `dispatch` can use (configured ones and every adapter
    /// profile) and whether each can take a task now: its program works,
    /// its credentials are where its profile says (no value is read), it is
    /// not cooling down, its last probe did not fail, it is under its
    /// `max_concurrent`.
    #[tool(annotations(read_only_hint = true))]
    async fn list_agents(
        &self,
        Parameters(a): Parameters<AgentsArgs>,
    ) -> Result<Json<Object>, ToolError> {
        let state = self.state.clone();
        // Program checks run the agents' `--version`: off the runtime.
        let report = tokio::task::spawn_blocking(move || {
            crate::dispatch::roster::current(&a.names, Duration::from_secs(10), &state)
        })
        .await
        .map_err(|err| ToolError::from(CliError::failure(format!("internal error: {err}"))))??;
        ok(object(&report))
    }
}

impl Fleet {
    /// `dispatch`, reporting to `long`.
    pub(crate) async fn dispatch_with(&self, a: DispatchArgs, long: &Long) -> Reply<Object> {
        let checks =
            a.done.iter().map(|c| c.parse::<Check>()).collect::<Result<Vec<_>, _>>().map_err(
                |err| ToolError::invalid(err).hint(format!("done checks: {}", done::FORMS)),
            )?;
        let mut request = Request {
            agent: a.agent,
            prefer: a.prefer,
            ladder: a.ladder,
            id: a.id,
            labels: a.labels,
            checks,
            verifier: a.verifier,
            max_failures: a.max_failures.unwrap_or(2),
            cwd: a.cwd,
            ..Request::new(a.message)
        };
        request.timeout = a.timeout_s.map(|t| seconds(Some(t), 0.0, "timeout_s")).transpose()?;
        request.attempt_timeout = seconds(a.attempt_timeout_s, 1800.0, "attempt_timeout_s")?;
        request.verify_timeout = seconds(a.verify_timeout_s, 600.0, "verify_timeout_s")?;
        request.check_timeout = seconds(a.check_timeout_s, 600.0, "check_timeout_s")?;
        let plan = request.plan(&self.state)?;
        let sessions_scope = scope::scope_of(&plan.cwd).name;
        let mut running = self
            .work
            .dispatch(plan, self.state.clone())
            .map_err(|err| ToolError::from(CliError::failure(err.to_string())))?;
        long.report(format!("dispatch {}: started", running.id)).await;
        let (states_tx, mut states) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher: Option<tokio::task::JoinHandle<()>> = None;
        let mut cancelling = false;
        let result = loop {
            tokio::select! {
                Some(event) = running.events.recv() => {
                    if event["type"] == "attempt_started"
                        && let Some(session) = event["session"].as_str()
                    {
                        let paths = self.state.session(&sessions_scope, session);
                        if let Some(old) = watcher.replace(watch_states(paths, states_tx.clone())) {
                            old.abort();
                        }
                    }
                    if let Some(text) = describe(&event) {
                        long.report(format!("dispatch {}: {text}", running.id)).await;
                    }
                }
                Some(text) = states.recv() => {
                    long.report(format!("dispatch {}: {text}", running.id)).await;
                }
                done = &mut running.done => break done,
                _ = long.cancelled(), if !cancelling => {
                    // Stop it, then see it end: its sessions are stopped first.
                    cancelling = true;
                    running.cancel();
                    long.report(format!("dispatch {}: cancelling", running.id)).await;
                }
            }
        };
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        let summary = result.map_err(|_| {
            ToolError::from(CliError::failure(
                "internal error: the dispatch thread ended without a result",
            ))
        })??;
        if cancelling {
            return Err(cancelled());
        }
        let mut answer = object(&summary);
        answer.insert("answer".into(), summary.answer.clone().map_or(Value::Null, Value::from));
        ok(answer)
    }

    async fn run_chain(&self, a: ChainRunArgs) -> Reply<Object> {
        let agents = crate::config::Agents::load()?;
        // Everything is checked before anything starts, as `chain run` does.
        let def = crate::chain::file::load(&a.file, &agents)?;
        let root = self.state.clone();
        root.ensure()?;
        let chains = root.root().join("chains");
        crate::store::fsutil::create_private_dir_all(&chains)?;
        let id = match a.id {
            Some(id) => id,
            None => (1..)
                .map(|n| if n == 1 { def.name.clone() } else { format!("{}-{n}", def.name) })
                .find(|id| !chains.join(id).exists())
                .expect("some id is free"),
        };
        crate::ids::validate(&id)?;
        let file = std::fs::canonicalize(&a.file)?;
        let mut args = vec!["chain".to_string(), "run".into(), file.display().to_string()];
        args.extend(["--id".into(), id.clone(), "--json".into()]);
        if let Some(cwd) = &a.cwd {
            args.extend(["--cwd".into(), cwd.display().to_string()]);
        }
        if let Some(gate) = &a.gate_agent {
            args.extend(["--gate-agent".into(), gate.clone()]);
        }
        let log_path = chains.join(format!("{id}.runner.log"));
        let log = crate::store::fsutil::open_append(&log_path)?;
        let state_file = crate::chain::state::ChainState::path_in(&chains.join(&id));
        // Watch for its state before it can be written.
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |_| {
            let _ = seen_tx.send(());
        })
        .map_err(|err| CliError::failure(format!("cannot watch {}: {err}", chains.display())))?;
        notify::Watcher::watch(&mut watcher, &chains, notify::RecursiveMode::Recursive).map_err(
            |err| CliError::failure(format!("cannot watch {}: {err}", chains.display())),
        )?;
        let mut cmd = tokio::process::Command::new(crate::control::start::reins_binary()?);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        // SAFETY: setsid(2) is async-signal-safe. The runner gets its own
        // session: it outlives this server and the client's terminal.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|err| CliError::failure(format!("cannot start the chain runner: {err}")))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if state_file.exists() {
                break;
            }
            tokio::select! {
                _ = seen.recv() => {}
                exited = child.wait() => {
                    if state_file.exists() {
                        break;
                    }
                    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let reason = text.lines().filter(|l| l.starts_with("reins:")).collect::<Vec<_>>().join("; ");
                    let code = exited.ok().and_then(|s| s.code());
                    let err = ToolError::from(CliError::failure(format!(
                        "the chain runner exited ({}) before the chain started: {}",
                        code.map_or("killed".into(), |c| format!("exit {c}")),
                        reason.trim_start_matches("reins: ")
                    )));
                    return Err(if code == Some(2) { ToolError { kind: "invalid_input", ..err } } else { err });
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(CliError::timeout(format!("chain {id} did not start within 30s"))
                        .hint(format!("its runner's output is in {}", log_path.display()))
                        .into());
                }
            }
        }
        drop(watcher);
        // The runner goes on by itself; reap it when it ends, if still here.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let mut status = crate::chain::report::status(&self.state, &id)?;
        status["runner_log"] = Value::from(log_path.display().to_string());
        ok(object(&status))
    }
}

/// A line of progress for one event of a dispatch's log.
fn describe(event: &Value) -> Option<String> {
    let s = |key: &str| event[key].as_str().unwrap_or("?").to_string();
    Some(match event["type"].as_str()? {
        "attempt_started" => {
            format!("attempt {}: session {} (agent {})", event["attempt"], s("session"), s("agent"))
        }
        "attempt" => {
            let why = event["reason"].as_str().or(event["feedback"].as_str()).unwrap_or("");
            format!("attempt {} by {}: {} {why}", event["n"], s("agent"), s("result"))
                .trim_end()
                .to_string()
        }
        "skipped" => format!("skipped {}: {}", s("agent"), s("reason")),
        "cooldown" => format!("{} cools down: {}", s("agent"), s("reason")),
        "dispatch_ended" => format!("ended: {}", s("result")),
        _ => return None,
    })
}

/// Forwards the state changes of the session at `paths` (from now on) as
/// lines `ID: STATE, turn N`, until aborted.
fn watch_states(
    paths: crate::store::paths::SessionPaths,
    to: tokio::sync::mpsc::UnboundedSender<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Its directory may not exist yet: the watch needs it.
        if paths.ensure_dirs().is_err() {
            return;
        }
        let offset = std::fs::metadata(paths.events()).map_or(0, |m| m.len());
        let mut follower = Follower::new(&paths, SessionFile::Events, offset);
        loop {
            let Ok(lines) = follower.read_lines() else { return };
            for line in lines {
                let Some(event) = crate::store::events::EventLine::parse(&line) else { continue };
                if let crate::store::events::EventKind::State { to: state, .. } = event.kind {
                    // The event's own turn; the registry may not say it yet.
                    let turn = event.header.turn.unwrap_or_else(|| {
                        SessionRecord::read(&paths.registry()).ok().flatten().map_or(0, |r| r.turn)
                    });
                    let _ = to.send(format!("{}: {state}, turn {turn}", paths.id));
                }
            }
            follower.changed().await;
        }
    })
}
