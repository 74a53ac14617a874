//! Notifications that come to you: `[notify]` in config.toml says which
//! events of which sessions are worth a word (an approval or a dialog
//! waiting, a finished task, an escalation, a usage limit, an agent that
//! ended badly) and where it goes: a command of yours (the event as JSON on
//! its standard input and in `REINS_EVENT_*` variables), a desktop
//! notification (`notify-send`, where there is one), and/or the event
//! posted as JSON to a URL (an ntfy topic, a webhook; sent by `curl`).
//!
//! ```toml
//! [notify]
//! on = ["blocked", "escalate", "rate_limit", "exited"]   # the default
//! sessions = ["impl-*"]          # only these ids (`*` matches anything)
//! command = "~/bin/page-me"      # run with `sh -c`
//! desktop = true                 # notify-send
//! url = "https://ntfy.sh/my-reins-topic"
//! ```
//!
//! The session's host sends them as it writes the events (so does
//! `reins notify test`). Sending never blocks a host: every channel runs as
//! a child of its own, on a thread that waits for it (at most 30 s).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::store::events::EventKind;

/// How long a notification's program may run.
const PATIENCE: Duration = Duration::from_secs(30);

/// The kinds of event a notification can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum On {
    /// The agent waits on a person: an approval request, a trust or login
    /// dialog.
    Blocked,
    /// A turn ended.
    TaskComplete,
    /// A watcher gave up on the session.
    Escalate,
    /// A usage limit was hit.
    RateLimit,
    /// The agent ended badly (not `success`, `stopped` or `retired`).
    Exited,
}

impl On {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            On::Blocked => "blocked",
            On::TaskComplete => "task_complete",
            On::Escalate => "escalate",
            On::RateLimit => "rate_limit",
            On::Exited => "exited",
        }
    }

    /// Which kind `event` is, if it is worth a notification at all.
    pub(crate) fn of(event: &EventKind) -> Option<On> {
        use crate::state::{BlockedKind, State};
        use crate::store::exit_record::ExitReason;
        Some(match event {
            EventKind::Blocked { .. } => On::Blocked,
            // Approvals have their own `blocked` event; limits, `rate_limit`.
            EventKind::State { to: State::Blocked, kind: Some(kind), .. }
                if !matches!(kind, BlockedKind::Approval | BlockedKind::RateLimit) =>
            {
                On::Blocked
            }
            EventKind::TaskComplete { .. } => On::TaskComplete,
            EventKind::Escalate { .. } => On::Escalate,
            EventKind::RateLimited { .. } => On::RateLimit,
            EventKind::Exited { reason, .. }
                if !matches!(
                    reason,
                    ExitReason::Success | ExitReason::Stopped | ExitReason::Retired
                ) =>
            {
                On::Exited
            }
            _ => return None,
        })
    }
}

/// `[notify]` of config.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Notify {
    #[serde(default = "default_on")]
    pub(crate) on: Vec<On>,
    /// Session ids (with `*` wildcards) to notify about; empty: all.
    #[serde(default)]
    pub(crate) sessions: Vec<String>,
    #[serde(default)]
    pub(crate) command: Option<String>,
    #[serde(default)]
    pub(crate) desktop: bool,
    #[serde(default)]
    pub(crate) url: Option<String>,
}

fn default_on() -> Vec<On> {
    vec![On::Blocked, On::Escalate, On::RateLimit, On::Exited]
}

/// What sending one notification did, channel by channel.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sent {
    pub(crate) channel: &'static str,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

impl Notify {
    /// Whether an event of session `id` is one to notify about.
    pub(crate) fn wants(&self, id: &str, event: &EventKind) -> Option<On> {
        let on = On::of(event)?;
        let session_ok = self.sessions.is_empty()
            || self.sessions.iter().any(|pattern| crate::ids::glob(pattern, id));
        (self.on.contains(&on) && session_ok).then_some(on)
    }

    /// Sends the notification for the event `line` (its JSON) of session
    /// `id` on every channel, in the background: never waits.
    pub(crate) fn send(&self, id: &str, on: On, line: &str) {
        for job in self.jobs(id, on, line) {
            std::thread::spawn(move || {
                let sent = job.run();
                if !sent.ok {
                    tracing::warn!("notification by {} failed: {}", sent.channel, sent.detail);
                }
            });
        }
    }

    /// Sends it from a process about to end (a host writing `exited`):
    /// the programs are started and left to run on their own.
    pub(crate) fn send_and_leave(&self, id: &str, on: On, line: &str) {
        for job in self.jobs(id, on, line) {
            if let Err(sent) = job.start() {
                tracing::warn!("notification by {} failed: {}", sent.channel, sent.detail);
            }
        }
    }

    /// Sends it on every channel and waits, saying how each went (`reins
    /// notify test`).
    pub(crate) fn send_and_wait(&self, id: &str, on: On, line: &str) -> Vec<Sent> {
        let jobs = self.jobs(id, on, line);
        let handles: Vec<_> =
            jobs.into_iter().map(|j| std::thread::spawn(move || j.run())).collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    }

    fn jobs(&self, id: &str, on: On, line: &str) -> Vec<Job> {
        let summary = summary(id, on, line);
        let envs = vec![
            ("REINS_EVENT_ID".to_string(), id.to_string()),
            ("REINS_EVENT_ON".to_string(), on.as_str().to_string()),
            ("REINS_EVENT_SUMMARY".to_string(), summary.clone()),
            ("REINS_EVENT_JSON".to_string(), line.to_string()),
        ];
        let mut jobs = Vec::new();
        if let Some(command) = &self.command {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", command]).envs(envs.clone());
            jobs.push(Job { channel: "command", cmd, stdin: Some(format!("{line}\n")) });
        }
        if self.desktop {
            let mut cmd = Command::new("notify-send");
            cmd.args([format!("reins: {id}"), summary]);
            jobs.push(Job { channel: "desktop", cmd, stdin: None });
        }
        if let Some(url) = &self.url {
            let mut cmd = Command::new("curl");
            cmd.args(["-fsS", "-m", "10", "-H", "Content-Type: application/json"]).args([
                "--data-binary",
                "@-",
                url,
            ]);
            jobs.push(Job { channel: "url", cmd, stdin: Some(line.to_string()) });
        }
        jobs
    }
}

/// One channel's program, ready to run.
struct Job {
    channel: &'static str,
    cmd: Command,
    stdin: Option<String>,
}

impl Job {
    /// Starts the program (in a process group of its own) and hands it its
    /// input.
    fn start(mut self) -> Result<(std::process::Child, &'static str), Sent> {
        use std::os::unix::process::CommandExt;
        let spawned = self
            .cmd
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) => {
                let program = self.cmd.get_program().to_string_lossy().into_owned();
                let detail = format!("cannot run {program}: {err}");
                return Err(Sent { channel: self.channel, ok: false, detail });
            }
        };
        if let (Some(text), Some(mut stdin)) = (self.stdin.take(), child.stdin.take()) {
            let _ = stdin.write_all(text.as_bytes());
        }
        Ok((child, self.channel))
    }

    fn run(self) -> Sent {
        let (mut child, channel) = match self.start() {
            Ok(started) => started,
            Err(sent) => return sent,
        };
        let sent = |ok, detail: String| Sent { channel, ok, detail };
        let deadline = std::time::Instant::now() + PATIENCE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let mut err = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            use std::io::Read;
            let _ = (&mut stderr).take(4096).read_to_string(&mut err);
        }
        match status {
            Some(s) if s.success() => sent(true, "sent".into()),
            Some(s) => sent(false, format!("{s}: {}", err.trim())),
            None => sent(false, format!("still running after {}s; killed", PATIENCE.as_secs())),
        }
    }
}

/// One line a person reads: `w1: waits for approval (a1): Allow …`.
fn summary(id: &str, on: On, line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let text = |key: &str| v[key].as_str().unwrap_or("").to_string();
    let what = match on {
        On::Blocked => match v["type"].as_str() {
            Some("blocked") => format!("waits for approval ({})", text("request")),
            _ => format!("waits on a {}", text("kind")),
        },
        On::TaskComplete => format!("turn {} {}", v["turn"], text("status")),
        On::Escalate => format!("needs a person: {}", text("reason")),
        On::RateLimit => format!(
            "hit a usage limit{}",
            match v["until"].as_str() {
                Some(until) => format!(" until {until}"),
                None => String::new(),
            }
        ),
        On::Exited => format!("ended: {}", text("reason")),
    };
    format!("{id}: {what}")
}
