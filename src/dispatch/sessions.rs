//! The sessions a dispatcher starts, driven through the real `reins`
//! binary (`run --detach`, `wait`, `pane`, `stop`, `watch`): the same code
//! paths, checks and files as a person typing the commands, no second copy
//! of the launch logic.
//!
//! Every child is killed when its future is dropped (the dispatcher was
//! interrupted or ran out of time); `stop` runs in its own process group
//! so a second Ctrl-C at the terminal cannot cut a clean-up short.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::config::AgentSpec;
use crate::store::events::{self, EventKind};

/// How the binary is run.
#[derive(Debug, Clone)]
pub(crate) struct Reins {
    exe: PathBuf,
    /// Where the agents work (and where `reins` looks sessions up).
    pub(crate) cwd: PathBuf,
}

/// What a started session's `run --detach` said.
#[derive(Debug, Clone)]
pub(crate) struct Started {
    pub(crate) events: PathBuf,
    pub(crate) run: String,
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

/// What a session is started with.
pub(crate) struct Launch<'a> {
    pub(crate) id: &'a str,
    pub(crate) agent: &'a AgentSpec,
    pub(crate) model: Option<&'a str>,
    pub(crate) brief: &'a str,
    pub(crate) meta: Value,
    pub(crate) description: String,
    /// `COLSxROWS`; verifiers get a wide screen so a verdict is not wrapped.
    pub(crate) size: &'a str,
    pub(crate) start_timeout: Duration,
}

impl Reins {
    pub(crate) fn new(cwd: &Path) -> std::io::Result<Reins> {
        Ok(Reins { exe: std::env::current_exe()?, cwd: cwd.to_path_buf() })
    }

    fn command(&self, args: &[String]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `reins ARGS`: exit code, stdout, stderr.
    async fn output(&self, args: &[String]) -> (i32, String, String) {
        match self.command(args).output().await {
            Ok(out) => (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ),
            Err(err) => (-1, String::new(), format!("cannot run {}: {err}", self.exe.display())),
        }
    }

    /// `reins run AGENT --detach` with the brief as the first task.
    pub(crate) async fn start(&self, launch: &Launch<'_>) -> Result<Started, String> {
        let (program, rest) = launch.agent.run_argv(launch.model);
        let mut args: Vec<String> = vec![
            "run".into(),
            program,
            "--id".into(),
            launch.id.into(),
            "--detach".into(),
            "--cwd".into(),
            self.cwd.display().to_string(),
            "--size".into(),
            launch.size.into(),
            "--timeout".into(),
            format!("{}ms", launch.start_timeout.as_millis()),
            format!("--description={}", launch.description),
            format!("--meta={}", launch.meta),
            format!("--context={}", launch.brief),
        ];
        if !rest.is_empty() {
            args.push("--".into());
            args.extend(rest);
        }
        let (code, stdout, stderr) = self.output(&args).await;
        if code != 0 {
            return Err(one_line(&stderr));
        }
        let started: Value = serde_json::from_str(stdout.trim())
            .map_err(|err| format!("`reins run` printed no session ({err})"))?;
        Ok(Started {
            events: PathBuf::from(started["events"].as_str().unwrap_or_default()),
            run: started["run"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// `reins wait --until task_complete`, for at most `timeout`.
    pub(crate) async fn wait_task(&self, id: &str, timeout: Duration) -> TurnEnd {
        let args: Vec<String> = vec![
            "wait".into(),
            "--id".into(),
            id.into(),
            "--until".into(),
            "task_complete".into(),
            "--timeout".into(),
            format!("{}ms", timeout.as_millis().max(1)),
        ];
        let (code, stdout, stderr) = self.output(&args).await;
        let out: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
        match (code, out["status"].as_str()) {
            (0, _) => TurnEnd::Complete(
                out["event"]["status"].as_str().unwrap_or("completed").to_string(),
            ),
            (124, _) => TurnEnd::Timeout,
            (_, Some(status)) => {
                let exit = &out["exit"];
                let how = match (exit["code"].as_i64(), exit["reason"].as_str()) {
                    (Some(code), Some(reason)) => format!("{status}: {reason}, exit code {code}"),
                    (None, Some(reason)) => format!("{status}: {reason}"),
                    _ => status.to_string(),
                };
                TurnEnd::Ended(how)
            }
            _ => TurnEnd::Error(one_line(&stderr)),
        }
    }

    /// The session's screen as text (`reins pane --json`); `None` when it
    /// cannot be read (the session is gone).
    pub(crate) async fn screen(&self, id: &str) -> Option<String> {
        let args: Vec<String> = vec!["pane".into(), "--id".into(), id.into(), "--json".into()];
        let (code, stdout, _) = self.output(&args).await;
        if code != 0 {
            return None;
        }
        let pane: Value = serde_json::from_str(stdout.trim()).ok()?;
        let lines = pane["lines"].as_array()?;
        let lines: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
        Some(lines.join("\n").trim_end().to_string())
    }

    /// `reins stop --id ID`, in its own process group; errors are ignored
    /// (the session may have ended by itself).
    pub(crate) async fn stop(&self, id: &str) {
        let args: Vec<String> = vec!["stop".into(), "--id".into(), id.into(), "--force".into()];
        let mut cmd = self.command(&args);
        cmd.process_group(0).kill_on_drop(false);
        let _ = cmd.output().await;
    }

    /// `reins watch --id ID --on-exit leave FLAGS`, its output to `log`.
    pub(crate) fn watch(
        &self,
        id: &str,
        flags: &[String],
        log: &Path,
    ) -> Option<tokio::process::Child> {
        let mut args: Vec<String> =
            vec!["watch".into(), "--id".into(), id.into(), "--on-exit".into(), "leave".into()];
        args.extend(flags.iter().cloned());
        let file = crate::store::fsutil::open_append(log).ok()?;
        let mut cmd = self.command(&args);
        cmd.stdout(Stdio::from(file.try_clone().ok()?)).stderr(Stdio::from(file));
        cmd.spawn().ok()
    }
}

/// Tokens the run reported, from its `summary` event (null when it never
/// showed any).
pub(crate) fn tokens_of(started: &Started) -> Option<u64> {
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

/// The last non-empty line of a command's words, for a one-line reason.
pub(crate) fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines
        .iter()
        .find(|l| l.starts_with("reins:"))
        .or(lines.last())
        .copied()
        .unwrap_or("no output");
    line.trim_start_matches("reins: ").to_string()
}
