//! `reins watch`: keeps an unattended session going.
//!
//! The watcher is a client. It follows the session's event log (no
//! polling) and, between events, sleeps exactly until the session would
//! count as stalled; each time it looks, it gathers [`Evidence`] (the host's
//! status, or how the run ended), lets the rules in [`decide`] — and, if
//! asked, an [`advisor`] — pick a [`Decision`], and carries it out:
//! nudging a stalled turn, restarting a dead agent from its launch record,
//! cleaning up after a dead host, or escalating to a person. Every decision
//! it acts on is written into the session's event log through its host
//! (`stall`, `resume`, `restart`, `escalate`).
//!
//! Budgets: `max_resumes` nudges and `max_restarts` restarts; both reset
//! when a turn completes after the watcher stepped in (real progress).

pub(crate) mod advisor;
pub(crate) mod decide;
pub(crate) mod flags;

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::adapter::TurnStatus;
use crate::control::cleanup;
use crate::control::lookup::{Liveness, SessionView};
use crate::error::{CliError, code};
use crate::host::LaunchRecord;
use crate::ipc::{Client, SendReply, SendRequest, StatusReply, StopRequest};
use crate::state::State;
use crate::store::events::EventKind;
use crate::store::exit_record::ExitReason;
use crate::store::lock::OwnerLock;
use crate::store::paths::SessionPaths;
use crate::store::stream::EventStream;
use advisor::Advisor;
use decide::{Budget, Decision, Ended, Evidence, Live, decide};

/// The nudge sent to a stalled agent unless `--nudge` says otherwise.
pub(crate) const DEFAULT_NUDGE: &str = "You seem to have stalled: nothing has happened for a \
while. Continue with your task. If you are stuck or need something, say what it is.";

/// What the watcher does when you press Ctrl-C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnExit {
    /// Ask whether to stop the session too (the default on a terminal).
    Ask,
    /// Stop the session too.
    Stop,
    /// Leave it running (the default without a terminal).
    Leave,
}

/// How to watch.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) stall_after: Duration,
    pub(crate) max_resumes: u32,
    pub(crate) max_restarts: u32,
    pub(crate) nudge: String,
    pub(crate) advisor: Option<Advisor>,
    pub(crate) on_exit: Option<OnExit>,
    /// Keep watching after the session's work is done, until it ends (a
    /// session that will get more work).
    pub(crate) until_exit: bool,
    /// How long a restarted session may take to come up.
    pub(crate) start_timeout: Duration,
}

/// Where the watcher's words go: the terminal of `reins watch`, a file
/// beside a dispatch's attempt, or the log of `reins supervise` (each line
/// names its session, since one supervisor watches many).
pub(crate) enum Log {
    Stderr,
    File(std::fs::File),
    Supervisor,
}

impl Log {
    fn say(&self, id: &str, line: &str) {
        match self {
            Log::Stderr => eprintln!("{} watch: {line}", crate::compat::program()),
            Log::Supervisor => eprintln!("{} supervise: {id}: {line}", crate::compat::program()),
            Log::File(file) => {
                let mut file = file;
                let _ = writeln!(file, "{} watch: {line}", crate::compat::program());
            }
        }
    }
}

/// How a watch ended: what `reins watch` prints.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) ok: bool,
    pub(crate) id: String,
    /// `finished`, `escalated`, `interrupted` or `error`.
    pub(crate) outcome: &'static str,
    pub(crate) reason: String,
    pub(crate) checks: u64,
    pub(crate) resumes: u32,
    pub(crate) restarts: u32,
    /// Runs watched, first to last (a restart adds one).
    pub(crate) runs: Vec<String>,
    pub(crate) elapsed_s: f64,
    /// The exit code `reins watch` ends with: 0 finished, 1 the watch
    /// failed, 2 escalated, 130 Ctrl-C with the session left running.
    #[serde(skip)]
    pub(crate) exit: u8,
}

/// Watches the session at `paths` until its work is done or it ended (0;
/// with `until_exit`, only once it ended), it needs a person (2), or the
/// watch itself fails (1; also when another watcher has the session).
/// `ctrl_c` makes Ctrl-C end the watch as `--on-exit` says (a watcher
/// inside another command leaves that to it).
pub(crate) async fn supervise(
    paths: SessionPaths,
    options: Options,
    log: Log,
    ctrl_c: bool,
) -> Summary {
    supervise_holding(None, paths, options, log, ctrl_c).await
}

/// [`supervise`] with the session's watch already taken (by a caller that
/// must not lose the session to another watcher between starting it and
/// watching it).
pub(crate) async fn supervise_holding(
    lock: Option<OwnerLock>,
    paths: SessionPaths,
    options: Options,
    log: Log,
    ctrl_c: bool,
) -> Summary {
    let mut watcher = Watcher::new(paths, options, log);
    let _lock = match lock.map(Ok).unwrap_or_else(|| take_watch(&watcher.paths)) {
        Ok(lock) => lock,
        Err(why) => {
            watcher.say(&why);
            return watcher.summary("error", why);
        }
    };
    watcher.say(&format!(
        "id={} stall-after={} max-resumes={} max-restarts={}{}{}",
        watcher.paths.id,
        crate::time::human(watcher.options.stall_after.as_secs_f64()),
        watcher.options.max_resumes,
        watcher.options.max_restarts,
        if watcher.options.advisor.is_some() { " advisor=on" } else { "" },
        if watcher.options.until_exit { " until-exit" } else { "" }
    ));
    // Pinged once at the start: a down advisor rests, so no cycle waits on it.
    if let Some(advisor) = &watcher.options.advisor {
        match advisor.ping().await {
            Ok(()) => watcher.say(&format!("the advisor at {} answers", advisor.shown())),
            Err(why) => watcher.say(&format!(
                "the advisor at {} is down ({why}); the rules decide until it answers",
                advisor.shown()
            )),
        }
    }
    let (outcome, reason) = watcher.run(ctrl_c).await;
    let summary = watcher.summary(outcome, reason);
    watcher.say(&format!(
        "{outcome}: {} (checks={}, resumes={}, restarts={}, {})",
        summary.reason,
        summary.checks,
        summary.resumes,
        summary.restarts,
        crate::time::human(summary.elapsed_s)
    ));
    summary
}

/// A run that ended and that a watcher gave up on (`given_up.json` of the
/// session): `reins supervise` does not revive it.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct GivenUp {
    pub(crate) run: String,
    pub(crate) reason: String,
    pub(crate) at: String,
}

impl GivenUp {
    fn write(&self, paths: &SessionPaths) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::store::fsutil::write_atomic(&paths.given_up(), &bytes)
    }

    /// The record of the session at `paths`, if a watcher gave up on one
    /// of its runs.
    pub(crate) fn read(paths: &SessionPaths) -> Option<GivenUp> {
        serde_json::from_slice(&std::fs::read(paths.given_up()).ok()?).ok()
    }
}

/// Takes the watch of the session at `paths`, or says who has it.
pub(crate) fn take_watch(paths: &SessionPaths) -> Result<OwnerLock, String> {
    match OwnerLock::try_take(&paths.watch_lock()) {
        Ok(Ok(lock)) => Ok(lock),
        Ok(Err(pid)) => Err(format!(
            "session {} is already watched{}; one watcher at a time",
            paths.id,
            pid.map(|pid| format!(" (by pid {pid})")).unwrap_or_default()
        )),
        Err(err) => Err(format!("cannot take the watch of session {}: {err}", paths.id)),
    }
}

impl Watcher {
    fn summary(&self, outcome: &'static str, reason: String) -> Summary {
        let exit = match outcome {
            "finished" => code::OK,
            "escalated" => code::USAGE,
            "interrupted" => 130,
            _ => code::FAILURE,
        };
        Summary {
            ok: exit == code::OK,
            id: self.paths.id.clone(),
            outcome,
            reason,
            checks: self.checks,
            resumes: self.total_resumes,
            restarts: self.total_restarts,
            runs: self.runs.clone(),
            elapsed_s: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            exit,
        }
    }
}

struct Watcher {
    paths: SessionPaths,
    options: Options,
    log: Log,
    budget: Budget,
    started: Instant,
    checks: u64,
    total_resumes: u32,
    total_restarts: u32,
    runs: Vec<String>,
    /// When the watcher last stepped in: the agent gets a full stall window
    /// after it, and a turn completing after it resets the budget.
    stepped_in: Option<Instant>,
    /// The last `continue` reason printed, so each is printed once.
    last_note: String,
    status_failures: u32,
}

impl Watcher {
    fn new(paths: SessionPaths, options: Options, log: Log) -> Watcher {
        let budget = Budget {
            resumes: 0,
            max_resumes: options.max_resumes,
            restarts: 0,
            max_restarts: options.max_restarts,
        };
        Watcher {
            paths,
            options,
            log,
            budget,
            started: Instant::now(),
            checks: 0,
            total_resumes: 0,
            total_restarts: 0,
            runs: Vec::new(),
            stepped_in: None,
            last_note: String::new(),
            status_failures: 0,
        }
    }

    fn say(&self, line: &str) {
        self.log.say(&self.paths.id, line);
    }

    /// The watch loop; returns the outcome and why.
    async fn run(&mut self, ctrl_c: bool) -> (&'static str, String) {
        let mut interrupt = if ctrl_c {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
                Ok(signal) => Some(signal),
                Err(err) => return ("error", format!("cannot handle Ctrl-C: {err}")),
            }
        } else {
            None
        };
        let mut stream = EventStream::from_end(&self.paths);
        loop {
            self.checks += 1;
            let evidence = match self.gather().await {
                Ok(evidence) => evidence,
                Err(err) => return ("error", err),
            };
            let mut decision = decide(&evidence, &self.budget, self.options.stall_after);
            let mut by = "rules";
            if let Some(advice) = self.consult(&evidence, &decision).await {
                decision = advice;
                by = "advisor";
            }
            let recheck = match decision {
                Decision::Continue { recheck, ref why } => {
                    if *why != self.last_note && !why.starts_with("working") {
                        self.say(why);
                    }
                    self.last_note = why.clone();
                    recheck
                }
                Decision::Nudge { ref why } => {
                    if let Err(err) = self.nudge(&evidence, why, by).await {
                        return ("error", err);
                    }
                    Some(self.options.stall_after)
                }
                Decision::Restart { ref why } => {
                    let offset = std::fs::metadata(self.paths.events()).map_or(0, |m| m.len());
                    if let Err(err) = self.restart(&evidence, why, by).await {
                        return ("error", err);
                    }
                    stream = EventStream::open(&self.paths, offset);
                    Some(self.options.stall_after)
                }
                Decision::BreakLock { ref why } => {
                    self.say(why);
                    let view = SessionView::read(self.paths.clone());
                    if let Err(err) = cleanup::clean_dead(&view, ExitReason::Failure) {
                        return ("error", format!("cannot clean up after the dead host: {err}"));
                    }
                    continue;
                }
                Decision::Escalate { ref why } => {
                    self.escalate(&evidence, why, by).await;
                    return ("escalated", why.clone());
                }
                Decision::Finished { ref why } => return ("finished", why.clone()),
                Decision::Done { ref why } if !self.options.until_exit => {
                    return ("finished", format!("done: {why}"));
                }
                Decision::Done { ref why } => {
                    let note = format!("done: {why}; watching until the session ends");
                    if note != self.last_note {
                        self.say(&note);
                    }
                    self.last_note = note;
                    None
                }
            };
            // Wait for something to happen, or until it is time to look again.
            let sleep = async {
                match recheck {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = stream.next() => match event {
                    Ok(Some(event)) => self.on_event(&event.kind),
                    Ok(None) => {} // the host is gone: the next look sees how it ended
                    Err(err) => return ("error", format!("cannot read the events: {err}")),
                },
                _ = sleep => {}
                _ = async {
                    match interrupt.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                } => return self.interrupted().await,
            }
        }
    }

    /// A completed turn after the watcher stepped in is real progress: the
    /// budgets start over.
    fn on_event(&mut self, kind: &EventKind) {
        if let EventKind::TaskComplete { status: TurnStatus::Completed, .. } = kind
            && self.stepped_in.is_some()
            && (self.budget.resumes > 0 || self.budget.restarts > 0)
        {
            self.say("a turn completed: the budget of nudges and restarts starts over");
            self.budget.resumes = 0;
            self.budget.restarts = 0;
        }
    }

    /// What the session shows now.
    async fn gather(&mut self) -> Result<Evidence, String> {
        let view = SessionView::read(self.paths.clone());
        match view.liveness {
            Liveness::Live => {
                let record = view.record.as_ref();
                if let Some(run) = record.map(|r| r.run.clone())
                    && self.runs.last() != Some(&run)
                {
                    self.runs.push(run);
                }
                let status: StatusReply = match self.client().get("/v1/status").await {
                    Ok(status) => status,
                    Err(err) => {
                        self.status_failures += 1;
                        if self.status_failures >= 3 {
                            return Err(format!("the host does not answer: {err}"));
                        }
                        // It may have just ended: look again shortly.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return Box::pin(self.gather()).await;
                    }
                };
                self.status_failures = 0;
                let state_for_s = crate::time::seconds_since(&status.state_since).unwrap_or(0.0);
                let (mut idle_s, progress) = match &status.progress {
                    Some(p) => (p.idle_s, serde_json::to_value(p.source).ok()),
                    None => (state_for_s, None),
                };
                if let Some(at) = self.stepped_in {
                    idle_s = idle_s.min(at.elapsed().as_secs_f64());
                }
                let progress = progress.and_then(|v| v.as_str().map(String::from));
                let limit_resets_in_s = status.rate_limit.as_ref().and_then(|limit| {
                    let until: jiff::Timestamp = limit.until.as_deref()?.parse().ok()?;
                    Some(jiff::Timestamp::now().duration_until(until).as_secs_f64())
                });
                if let Some(limit) = status.rate_limit.as_ref().filter(|l| !l.resume) {
                    // Watched sessions are told to continue once the limit resets.
                    if self.client().post::<_, Value>("/v1/rate-limit", &json!({})).await.is_ok() {
                        self.say(&format!(
                            "rate-limited until {}: it will be told to continue after the reset",
                            limit.until.as_deref().unwrap_or("an unknown time")
                        ));
                    }
                }
                Ok(Evidence::Live(Live {
                    state: status.state,
                    state_for_s,
                    turn: status.turn,
                    turn_open: status.turn_open,
                    queued: status.queued,
                    idle_s,
                    progress: progress.unwrap_or_else(|| "unknown".into()),
                    stopping: status.stopping,
                    limit_resets_in_s,
                }))
            }
            Liveness::Dead => Ok(Evidence::Dead),
            Liveness::Exited => match view.exit_record() {
                Some(exit) => {
                    if self.runs.last() != Some(&exit.run) {
                        self.runs.push(exit.run.clone());
                    }
                    Ok(Evidence::Ended(Ended {
                        run: exit.run,
                        reason: exit.reason,
                        code: exit.code,
                        signal: exit.signal,
                        detail: exit.detail,
                    }))
                }
                None => Err(format!("session {} has never run", self.paths.id)),
            },
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.paths.socket, Duration::from_secs(5))
    }

    /// Asks the advisor, when there is one and the rules want to act.
    async fn consult(&self, evidence: &Evidence, proposal: &Decision) -> Option<Decision> {
        let advisor = self.options.advisor.as_ref()?;
        let allowed: &[&str] = match (evidence, proposal) {
            (
                _,
                Decision::Continue { .. }
                | Decision::Finished { .. }
                | Decision::Done { .. }
                | Decision::BreakLock { .. },
            ) => {
                return None;
            }
            (Evidence::Live(_), _) => &["continue", "nudge", "escalate"],
            (Evidence::Ended(_), _) => &["restart", "escalate"],
            (Evidence::Dead, _) => return None,
        };
        let situation = self.situation(evidence, proposal).await;
        match advisor.ask(&situation, allowed).await {
            Ok(advice) => {
                let why = format!(
                    "the advisor says: {}",
                    if advice.reason.is_empty() {
                        advice.decision.clone()
                    } else {
                        advice.reason.clone()
                    }
                );
                self.say(&format!("{why} ({} instead of {})", advice.decision, proposal.name()));
                let capped = |name: &str| format!("{why}; but {name} are spent");
                Some(match advice.decision.as_str() {
                    "continue" => {
                        Decision::Continue { recheck: Some(self.options.stall_after), why }
                    }
                    "nudge" if self.budget.resumes >= self.budget.max_resumes => {
                        Decision::Escalate { why: capped("the nudges") }
                    }
                    "nudge" => Decision::Nudge { why },
                    "restart" if self.budget.restarts >= self.budget.max_restarts => {
                        Decision::Escalate { why: capped("the restarts") }
                    }
                    "restart" => Decision::Restart { why },
                    _ => Decision::Escalate { why },
                })
            }
            Err(why) => {
                self.say(&format!("advice not taken ({why}); the rules decide"));
                None
            }
        }
    }

    /// What the advisor is shown.
    async fn situation(&self, evidence: &Evidence, proposal: &Decision) -> Value {
        let view = SessionView::read(self.paths.clone());
        let record = view.record.as_ref();
        let screen = match evidence {
            Evidence::Live(_) => self
                .client()
                .get::<crate::ipc::ScreenReply>("/v1/screen")
                .await
                .ok()
                .map(|s| s.rows.iter().rev().take(20).rev().cloned().collect::<Vec<_>>()),
            _ => None,
        };
        json!({
            "session": self.paths.id,
            "agent": record.map(|r| r.agent.clone()),
            "description": record.and_then(|r| r.description.clone()),
            "evidence": evidence,
            "budget": self.budget,
            "stall_after_s": self.options.stall_after.as_secs_f64(),
            "proposal": proposal,
            "screen_tail": screen,
        })
    }

    /// Interrupts the stalled turn (if one is open) and queues the nudge.
    async fn nudge(&mut self, evidence: &Evidence, why: &str, by: &str) -> Result<(), String> {
        let Evidence::Live(live) = evidence else {
            return Err("cannot nudge a session that is not running".into());
        };
        self.say(&format!("stalled: {why}"));
        self.note(&EventKind::Stall {
            idle_s: live.idle_s,
            state: live.state.state,
            reason: why.to_string(),
            progress: Some(live.progress.clone()),
        })
        .await;
        let client = self.client();
        let working = live.turn_open || matches!(live.state.state, State::Busy | State::Unknown);
        let interrupted =
            working && client.post::<_, Value>("/v1/interrupt", &json!({})).await.is_ok();
        let request = SendRequest {
            text: self.options.nudge.clone(),
            submit: true,
            submit_only: false,
            force: false,
            raw: false,
            ttl_ms: None,
        };
        let sent: SendReply = client
            .post("/v1/send", &request)
            .await
            .map_err(|err| format!("cannot send the nudge: {err}"))?;
        self.budget.resumes += 1;
        self.total_resumes += 1;
        self.stepped_in = Some(Instant::now());
        self.note(&EventKind::Resume {
            n: self.budget.resumes,
            max: self.budget.max_resumes,
            by: by.to_string(),
            interrupted,
            message_id: Some(sent.message_id.clone()),
        })
        .await;
        self.say(&format!(
            "nudge {} of {}: {}queued message {}",
            self.budget.resumes,
            self.budget.max_resumes,
            if interrupted { "interrupted the turn, " } else { "" },
            sent.message_id
        ));
        Ok(())
    }

    /// Starts the session again from its launch record.
    async fn restart(&mut self, evidence: &Evidence, why: &str, by: &str) -> Result<(), String> {
        let record = LaunchRecord::read(&self.paths.launch_record())
            .map_err(|err| format!("cannot read {}: {err}", self.paths.launch_record().display()))?
            .ok_or_else(|| {
                format!(
                    "cannot restart {}: it has no launch record (started by an older reins)",
                    self.paths.id
                )
            })?;
        let previous = match evidence {
            Evidence::Ended(ended) => Some(ended.run.clone()),
            _ => self.runs.last().cloned(),
        };
        let n = self.budget.restarts + 1;
        let note = format!(
            "[reins watch] The previous run of this session ended: {why}. This is restart {n} \
             of {}: pick up the task where it was left.",
            self.budget.max_restarts
        );
        self.say(&format!("restarting: {why}"));
        let timeout = self.options.start_timeout;
        let started = crate::control::start::relaunch(&record, &note, timeout)
            .await
            .map_err(|err| format!("the restart failed: {}", err.message))?;
        self.budget.restarts = n;
        self.total_restarts += 1;
        self.stepped_in = Some(Instant::now());
        self.runs.push(started.run.clone());
        self.note(&EventKind::Restart {
            n,
            max: self.budget.max_restarts,
            by: by.to_string(),
            reason: why.to_string(),
            previous_run: previous,
        })
        .await;
        self.say(&format!(
            "restarted as run {} (restart {n} of {})",
            started.run, self.budget.max_restarts
        ));
        Ok(())
    }

    /// Records the escalation (when a host is there to record it).
    async fn escalate(&self, evidence: &Evidence, why: &str, by: &str) {
        if let Evidence::Live(live) = evidence {
            self.note(&EventKind::Stall {
                idle_s: live.idle_s.max(live.state_for_s),
                state: live.state.state,
                reason: why.to_string(),
                progress: Some(live.progress.clone()),
            })
            .await;
            self.note(&EventKind::Escalate { reason: why.to_string(), by: by.to_string() }).await;
        } else if let Evidence::Ended(ended) = evidence {
            // No host to write it into the events (they end with `exited`):
            // kept beside them, where a later watcher looks.
            let given_up = GivenUp {
                run: ended.run.clone(),
                reason: why.to_string(),
                at: crate::time::now_rfc3339(),
            };
            if let Err(err) = given_up.write(&self.paths) {
                self.say(&format!("could not record the decision: {err}"));
            }
        }
        self.say(&format!("escalating: {why}"));
        let id = &self.paths.id;
        self.say(&match evidence {
            Evidence::Live(_) => {
                format!("the session is left as it is: `reins pane --id {id}` shows it")
            }
            _ => format!(
                "the session is not running: `reins logs --id {id}` shows what it did, \
                 `reins events --id {id}` how it ended"
            ),
        });
    }

    /// Writes a decision into the session's event log; a host that cannot
    /// take it does not stop the watch.
    async fn note(&self, kind: &EventKind) {
        if let Err(err) = self.client().post::<_, Value>("/v1/note", kind).await {
            self.say(&format!("could not record the decision: {err}"));
        }
    }

    /// Ctrl-C: stop the session too, or leave it, as `--on-exit` says (or
    /// as the person at the terminal answers).
    async fn interrupted(&self) -> (&'static str, String) {
        let id = &self.paths.id;
        let choice = match self.options.on_exit {
            Some(choice) => choice,
            None if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
                OnExit::Ask
            }
            None => OnExit::Leave,
        };
        let stop = match choice {
            OnExit::Stop => true,
            OnExit::Leave => false,
            OnExit::Ask => tokio::task::spawn_blocking(ask_stop(id.clone())).await.unwrap_or(false),
        };
        if !stop {
            self.say(&format!("session {id} is left running; `reins stop --id {id}` stops it"));
            return ("interrupted", format!("interrupted; session {id} left running"));
        }
        let lock = self.paths.host_lock();
        let gone = crate::store::follow::host_gone(&lock);
        let request = StopRequest { timeout_ms: Some(30_000), retire: false };
        let asked = self.client().post::<_, Value>("/v1/stop", &request).await;
        let ended = tokio::time::timeout(Duration::from_secs(35), gone).await;
        match (asked, ended) {
            (_, Ok(Ok(()))) => ("finished", format!("interrupted; session {id} stopped")),
            (Err(err), _) => {
                ("error", format!("interrupted, but session {id} could not be stopped: {err}"))
            }
            (Ok(_), _) => {
                ("error", format!("interrupted, but session {id} did not stop within 35s"))
            }
        }
    }
}

/// Asks on the terminal whether to stop the session (default no).
fn ask_stop(id: String) -> impl FnOnce() -> bool {
    move || {
        eprint!("\n{} watch: stop session {id} too? [y/N] ", crate::compat::program());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
    }
}

/// A usage error for `--stall-after` values that cannot work.
pub(crate) fn check_stall_after(stall_after: Duration) -> Result<(), CliError> {
    if stall_after < Duration::from_millis(100) {
        return Err(CliError::usage("--stall-after must be at least 100ms")
            .hint("e.g. --stall-after 8m (the impl preset)"));
    }
    Ok(())
}
