//! The sessions a dispatcher starts, driven in process through session
//! control ([`crate::control`]): the same checks, launch and files as
//! `reins run`, `wait`, `pane` and `stop`, without starting a process for
//! each step; a worker's watcher runs on a task beside the attempt.
//!
//! An agent with a `host` runs on that machine: its session is started,
//! waited on, read and stopped by the `reins` there over the shared ssh
//! connection (`crate::remote`); the dispatch, its checks and the outcome
//! store stay on this machine.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::config::AgentSpec;
use crate::control::lookup::{self, SessionView};
use crate::control::session;
use crate::control::start::Start;
use crate::control::wait::{Turn, Until, Wait};
use crate::remote::{Ssh, Target};
use crate::store::events::{self, EventKind};
use crate::store::paths::StateRoot;
use crate::store::registry::Size;

/// Drives the sessions of a dispatch.
#[derive(Debug, Clone)]
pub(crate) struct Reins {
    /// Where the agents work (and where `reins` looks sessions up).
    pub(crate) cwd: PathBuf,
    /// The sessions started on other machines, by id.
    remote: Arc<Mutex<HashMap<String, Ssh>>>,
}

/// What a started session's `run --detach` said.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) events: PathBuf,
    pub(crate) run: String,
    /// The session's id and machine, when it is not this one.
    remote: Option<(String, Ssh)>,
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
        Ok(Reins { cwd: cwd.to_path_buf(), remote: Arc::default() })
    }

    /// The machine session `id` runs on, when it is another one.
    fn host_of(&self, id: &str) -> Option<Ssh> {
        self.remote.lock().expect("remote sessions").get(id).cloned()
    }

    /// The session `id` in the scope of the agents' working directory.
    fn find(&self, id: &str) -> Result<SessionView, String> {
        let state = StateRoot::from_env().map_err(|err| err.message)?;
        lookup::find(&state, id, Some(&self.cwd)).map_err(|err| err.message)
    }

    /// Starts the agent headless with the brief as its first task, as
    /// `reins run AGENT --detach --context BRIEF` does.
    pub(crate) async fn start(&self, launch: &Launch<'_>) -> Result<Started, String> {
        if let Some(host) = &launch.agent.host {
            let ssh = connect(host)?;
            let args = argv_of(launch);
            let started = blocking(ssh.clone(), move |ssh| remote_start(ssh, &args)).await?;
            self.remote.lock().expect("remote sessions").insert(launch.id.to_string(), ssh);
            return Ok(started);
        }
        let (program, rest) = launch.agent.run_argv(launch.model);
        let mut start = Start::new(program);
        start.agent_args = rest;
        start.env = launch.agent.launch_env(launch.model);
        start.api_key_env = launch.agent.api_key_env();
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
        Ok(Started { events: started.events, run: started.run, remote: None })
    }

    /// Waits for the session's first task to complete, for at most
    /// `timeout` (as `reins wait --until task_complete`).
    pub(crate) async fn wait_task(&self, id: &str, timeout: Duration) -> TurnEnd {
        if let Some(ssh) = self.host_of(id) {
            let args = words(&[
                "wait",
                "--id",
                id,
                "--until",
                "task_complete",
                "--timeout",
                &format!("{}ms", timeout.max(Duration::from_millis(1)).as_millis()),
            ]);
            return match blocking(ssh, move |ssh| remote_json(ssh, &args)).await {
                Ok(outcome) => turn_end(&outcome),
                Err(err) => TurnEnd::Error(err),
            };
        }
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
        if let Some(ssh) = self.host_of(id) {
            let args = words(&["pane", "--id", id]);
            let out = blocking(ssh, move |ssh| {
                ssh.reins_output(&args).map_err(|e| e.message).and_then(|out| {
                    out.status
                        .success()
                        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
                        .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
                })
            });
            return out.await.ok().map(|s| s.trim_end().to_string());
        }
        let view = self.find(id).ok()?;
        let screen = session::screen(&view, None).await.ok()??;
        Some(screen.rows.join("\n").trim_end().to_string())
    }

    /// Stops the session, killing what does not end in time; errors are
    /// ignored (the session may have ended by itself).
    pub(crate) async fn stop(&self, id: &str) {
        if let Some(ssh) = self.host_of(id) {
            let timeout = format!("{}s", STOP_TIMEOUT.as_secs());
            let args = words(&["stop", "--id", id, "--force", "--timeout", &timeout]);
            let _ = blocking(ssh, move |ssh| remote_json(ssh, &args)).await;
            return;
        }
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
        if self.host_of(id).is_some() {
            // A watcher of a remote session runs there (`reins watch
            // --host`); the dispatch does not watch it from here.
            return None;
        }
        let file = crate::store::fsutil::open_append(log).ok()?;
        let paths = self.find(id).ok()?.paths;
        let log = crate::watch::Log::File(file);
        Some(tokio::spawn(crate::watch::supervise(paths, options, log, false)))
    }
}

/// Tokens the run reported, from its `summary` event (null when it never
/// showed any).
pub(crate) fn tokens_of(started: &Started) -> Option<u64> {
    if let Some((id, ssh)) = &started.remote {
        return remote_tokens(ssh, id, &started.run);
    }
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

/// The ssh connection to `host`.
fn connect(host: &str) -> Result<Ssh, String> {
    let state = StateRoot::from_env().map_err(|e| e.message)?;
    Ssh::new(Target::resolve(host).map_err(|e| e.message)?, &state).map_err(|e| e.message)
}

/// Runs `f` with `ssh` on a blocking thread (ssh is a child process).
async fn blocking<T: Send + 'static>(
    ssh: Ssh,
    f: impl FnOnce(&Ssh) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || f(&ssh))
        .await
        .unwrap_or_else(|err| Err(format!("internal error: {err}")))
}

fn words(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `reins run` there, as [`Reins::start`] starts one here. The session
/// works in the remote home (this machine's directories are not there).
fn argv_of(launch: &Launch<'_>) -> Vec<OsString> {
    let (program, rest) = launch.agent.run_argv(launch.model);
    let mut args = words(&["run", &program, "--id", launch.id, "--detach"]);
    args.extend(words(&["--description", &launch.description, "--context", launch.brief]));
    args.extend(words(&["--size", &format!("{}x{}", launch.size.cols, launch.size.rows)]));
    args.extend(words(&["--timeout", &format!("{}ms", launch.start_timeout.as_millis())]));
    if launch.meta.is_object() {
        args.extend(words(&["--meta", &launch.meta.to_string()]));
    }
    args.push("--".into());
    args.extend(rest.iter().map(OsString::from));
    args
}

fn remote_start(ssh: &Ssh, args: &[OsString]) -> Result<Started, String> {
    let up = remote_json(ssh, args)?;
    if up["ok"] != true {
        return Err(up["error"].as_str().unwrap_or("the session did not start").to_string());
    }
    let id = up["id"].as_str().unwrap_or_default().to_string();
    Ok(Started {
        events: PathBuf::from(up["events"].as_str().unwrap_or_default()),
        run: up["run"].as_str().unwrap_or_default().to_string(),
        remote: Some((id, ssh.clone())),
    })
}

/// The one JSON line a remote command printed (its error line too).
fn remote_json(ssh: &Ssh, args: &[OsString]) -> Result<Value, String> {
    let out = ssh.reins_output(args).map_err(|e| e.message)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    serde_json::from_str(line).map_err(|_| {
        format!(
            "host {}: {}",
            ssh.target.name,
            String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("reins: ")
        )
    })
}

/// A remote `wait --until task_complete`'s JSON, as a [`TurnEnd`].
fn turn_end(outcome: &Value) -> TurnEnd {
    match outcome["status"].as_str() {
        Some("reached") => TurnEnd::Complete(
            outcome["event"]["status"].as_str().unwrap_or("completed").to_string(),
        ),
        Some("timeout") => TurnEnd::Timeout,
        Some(status) => {
            let exit = &outcome["exit"];
            TurnEnd::Ended(match (exit["reason"].as_str(), exit["code"].as_i64()) {
                (Some(reason), Some(code)) => format!("{status}: {reason}, exit code {code}"),
                (Some(reason), None) => format!("{status}: {reason}"),
                _ => status.to_string(),
            })
        }
        None => TurnEnd::Error(outcome["error"].as_str().unwrap_or("wait failed").to_string()),
    }
}

/// Tokens of run `run` of a remote session, from its `summary` events.
fn remote_tokens(ssh: &Ssh, id: &str, run: &str) -> Option<u64> {
    let out = ssh.reins_output(&words(&["events", "--id", id, "--snapshot"])).ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().rev().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find_map(|e| {
        if e["type"] != "summary" || e["run"] != run {
            return None;
        }
        e["total_tokens"].as_u64().or_else(|| {
            match (e["input_tokens"].as_u64(), e["output_tokens"].as_u64()) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            }
        })
    })
}
