//! The sessions a dispatcher starts, driven in process through session
//! control ([`crate::control`]): the same checks, launch and files as
//! `reins run`, `wait`, `pane` and `stop`, without starting a process for
//! each step; a worker's watcher runs on a task beside the attempt.
//!
//! An agent with a `host` runs on that machine: its session is started,
//! waited on, read and stopped by the `reins` there over the shared ssh
//! connection (`crate::remote`); the dispatch, its checks and the outcome
//! store stay on this machine. Its watcher is the `reins watch` there too,
//! whose summary comes back as a local watcher's would.

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

    /// What the session sits blocked on (not a usage limit or a draft,
    /// which have their own handling) and since when, as the session's
    /// machine wrote it; `None` when it is not blocked.
    pub(crate) async fn blocked_since(&self, started: &Started) -> Option<(String, String)> {
        let skip = |kind: &str| kind == "rate_limit" || kind == "draft";
        if let Some((id, ssh)) = &started.remote {
            let args = words(&["status", "--id", id, "--json"]);
            let rows = blocking(ssh.clone(), move |ssh| remote_json(ssh, &args)).await.ok()?;
            let row = rows.get(0)?;
            if row["run"] != started.run.as_str() || row["state"] != "blocked" {
                return None;
            }
            let kind = row["kind"].as_str().unwrap_or("dialog").to_string();
            let since = row["state_since"].as_str()?.to_string();
            return (!skip(&kind)).then_some((kind, since));
        }
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
        let kind = kind.unwrap_or(crate::state::BlockedKind::Dialog).as_str();
        (!skip(kind)).then(|| (kind.to_string(), last.header.ts.clone()))
    }

    /// Whether the session runs on another machine.
    pub(crate) fn is_remote(started: &Started) -> bool {
        started.remote.is_some()
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
    /// would), its words to `log`; aborting the task ends the watch. A
    /// remote session is watched by `reins watch` there (see
    /// [`remote_watch`]).
    pub(crate) fn watch(
        &self,
        id: &str,
        options: crate::watch::Options,
        log: &Path,
    ) -> Option<tokio::task::JoinHandle<crate::watch::Summary>> {
        let file = crate::store::fsutil::open_append(log).ok()?;
        if let Some(ssh) = self.host_of(id) {
            let args = watch_argv(id, &options);
            return Some(tokio::spawn(remote_watch(ssh, id.to_string(), args, file)));
        }
        let paths = self.find(id).ok()?.paths;
        let log = crate::watch::Log::File(file);
        Some(tokio::spawn(crate::watch::supervise(paths, options, log, false)))
    }
}

/// `reins watch` of session `id` with `options`, as the remote runs it.
/// The advisor is the remote machine's own (its config.toml's
/// `[advisor]`): an advisor here is usually on this machine's loopback.
fn watch_argv(id: &str, options: &crate::watch::Options) -> Vec<OsString> {
    let mut args = words(&["watch", "--id", id, "--json", "--on-exit", "leave"]);
    args.extend(words(&["--stall-after", &format!("{}ms", options.stall_after.as_millis())]));
    args.extend(words(&["--max-resumes", &options.max_resumes.to_string()]));
    args.extend(words(&["--max-restarts", &options.max_restarts.to_string()]));
    args.extend(words(&["--nudge", &options.nudge]));
    if options.until_exit {
        args.push("--until-exit".into());
    }
    args
}

/// Watches a remote session: `reins watch --json` there over the shared
/// connection, its words to `log`, its summary read back as a local
/// watcher's. Aborting the task kills the ssh client (the watcher there
/// ends when the dispatch stops its session).
///
/// A dropped connection is not an escalation: the summary says the watch
/// was lost (`error`, exit 3) and why. It is not restarted: the watcher
/// there may still be running, and a second one would nudge twice.
async fn remote_watch(
    ssh: Ssh,
    id: String,
    args: Vec<OsString>,
    log: std::fs::File,
) -> crate::watch::Summary {
    let t0 = std::time::Instant::now();
    let summary = |outcome: &'static str, reason: String, exit: u8| crate::watch::Summary {
        ok: outcome == "finished",
        id: id.clone(),
        outcome,
        reason,
        checks: 0,
        resumes: 0,
        restarts: 0,
        runs: Vec::new(),
        elapsed_s: (t0.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        exit,
    };
    let say = |line: &str| {
        let mut file = &log;
        let _ = std::io::Write::write_all(
            &mut file,
            format!("{} watch: {line}\n", crate::compat::program()).as_bytes(),
        );
    };
    let host = crate::ids::quoted(&ssh.target.name);
    let lost = |said: &str| {
        format!(
            "lost the connection to host {host} while watching {id} (the watch there may \
             still be running; its outcome is unknown): {said}"
        )
    };
    if let Err(err) = blocking(ssh.clone(), |ssh| ssh.connect().map_err(|e| e.message)).await {
        let reason = lost(&err);
        say(&reason);
        return summary("error", reason, crate::error::code::UNREACHABLE);
    }
    let mut cmd = tokio::process::Command::from(ssh.reins_command(&args, crate::remote::Tty::None));
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).kill_on_drop(true);
    match log.try_clone() {
        Ok(words) => cmd.stderr(words),
        Err(_) => cmd.stderr(std::process::Stdio::null()),
    };
    // Not `output()`: it would pipe stderr, which goes to the log.
    let out = match cmd.spawn() {
        Ok(child) => child.wait_with_output().await,
        Err(err) => Err(err),
    };
    let out = match out {
        Ok(out) => out,
        Err(err) => return summary("error", format!("cannot run ssh: {err}"), 1),
    };
    let code = out.status.code();
    if code == Some(crate::remote::ssh::SSH_FAILED)
        && !blocking(ssh, |ssh| Ok(ssh.connected())).await.unwrap_or(false)
    {
        let reason = lost("ssh exited 255");
        say(&reason);
        return summary("error", reason, crate::error::code::UNREACHABLE);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let Ok(json) = serde_json::from_str::<Value>(line) else {
        return summary(
            "error",
            format!("the watch on host {host} printed no summary (exit code {code:?})"),
            1,
        );
    };
    let outcome = match json["outcome"].as_str() {
        Some("finished") => "finished",
        Some("escalated") => "escalated",
        Some("interrupted") => "interrupted",
        _ => "error",
    };
    let count = |key: &str| json[key].as_u64().unwrap_or(0);
    crate::watch::Summary {
        ok: json["ok"] == true,
        id: json["id"].as_str().map_or(id.clone(), str::to_string),
        outcome,
        reason: json["reason"]
            .as_str()
            .or_else(|| json["error"].as_str())
            .unwrap_or_default()
            .to_string(),
        checks: count("checks"),
        resumes: u32::try_from(count("resumes")).unwrap_or(u32::MAX),
        restarts: u32::try_from(count("restarts")).unwrap_or(u32::MAX),
        runs: json["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        elapsed_s: json["elapsed_s"].as_f64().unwrap_or_default(),
        exit: code.and_then(|c| u8::try_from(c).ok()).unwrap_or(crate::error::code::FAILURE),
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
