//! `reins supervise`: the long-running supervisor a service manager keeps
//! up (`reins service install`), so a fleet runs unattended.
//!
//! It owns nothing the sessions do not already say. Each scan lists the
//! sessions of the state root and starts a watcher (the library of
//! [`crate::watch`], in this process) on every one that asked to be
//! watched — its launch record keeps the `reins watch` flags of `run
//! --watch` or `--supervised` — and that nobody watches now (the watch lock
//! is free: the terminal of a `run --watch` closed, the session was
//! `--supervised`, or an earlier supervisor died). Its watchers stay on
//! until their session ends, so a session that dies is restarted from its
//! launch record within its restart budget, also when it died while no
//! supervisor ran (its host killed, the machine rebooted), unless it ended
//! longer ago than `--revive-within`. A watcher that called for a person
//! leaves its session alone until the session moves again (a turn starts
//! or ends, or a new run begins). Sessions idle past `[fleet] retire_after`
//! are retired.
//!
//! One supervisor per state root: it holds `supervise.lock` for its whole
//! life, and keeps what it does in `supervise.json` (0600) for `reins
//! service status`. It scans every `--scan-every`, and at once when `run
//! --supervised` pokes it (SIGUSR1). SIGTERM or SIGINT end it with every session left
//! running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::control::lookup::{Liveness, SessionView};
use crate::error::{CliError, code};
use crate::host::LaunchRecord;
use crate::store::events::{EventKind, EventLine};
use crate::store::exit_record::ExitReason;
use crate::store::follow::{Follower, SessionFile};
use crate::store::lock::OwnerLock;
use crate::store::paths::{SessionPaths, StateRoot};
use crate::watch::{Log, Summary};

/// How to supervise.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// How often the sessions are looked over.
    pub(crate) scan_every: Duration,
    /// Retire sessions idle this long (`None`: `[fleet] retire_after`, read
    /// again at each pass, else never).
    pub(crate) retire_after: Option<Duration>,
    /// A session that ended (badly) longer ago than this is not revived.
    pub(crate) revive_within: Duration,
    /// How long a restarted session may take to come up.
    pub(crate) start_timeout: Duration,
}

/// What `supervise.json` says: the running supervisor and what it does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) pid: u32,
    pub(crate) version: String,
    pub(crate) started_at: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) scan_every_ms: u64,
    /// Retiring after this many seconds idle, as of the last pass.
    pub(crate) retire_after_s: Option<f64>,
    pub(crate) scans: u64,
    /// The sessions watched now.
    pub(crate) watching: Vec<Watching>,
    /// Watches that ended, the latest last (at most [`KEPT_ENDED`]).
    pub(crate) ended: Vec<Ended>,
    /// Sessions retired since the supervisor started.
    pub(crate) retired: u64,
    /// The last thing that went wrong, if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}

/// A session being watched.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Watching {
    pub(crate) id: String,
    pub(crate) scope: String,
    pub(crate) since: String,
}

/// A watch that ended, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ended {
    pub(crate) id: String,
    pub(crate) scope: String,
    /// `finished`, `escalated` or `error` (see `reins watch --help`).
    pub(crate) outcome: String,
    pub(crate) reason: String,
    pub(crate) restarts: u32,
    pub(crate) resumes: u32,
    pub(crate) at: String,
}

/// How many ended watches `supervise.json` keeps.
const KEPT_ENDED: usize = 50;

/// A watch that failed is tried again after this long (doubling to
/// [`RETRY_MAX`]), so a session that cannot be watched costs one line now
/// and then, not one per scan.
const RETRY_FIRST: Duration = Duration::from_secs(10);
const RETRY_MAX: Duration = Duration::from_secs(10 * 60);

pub(crate) fn lock_path(state: &StateRoot) -> PathBuf {
    state.root().join("supervise.lock")
}

pub(crate) fn report_path(state: &StateRoot) -> PathBuf {
    state.root().join("supervise.json")
}

/// The pid of the supervisor running for `state`, if one does (0 when the
/// kernel does not say whose the lock is).
pub(crate) fn running(state: &StateRoot) -> Option<u32> {
    let path = lock_path(state);
    if !crate::store::lock::host_alive(&path) {
        return None;
    }
    let file = std::fs::File::open(&path).ok()?;
    Some(crate::store::lock::flock_holder(&file).unwrap_or(0))
}

/// Asks the supervisor running for `state` to look for new sessions now;
/// `false` when none runs (or it cannot be reached).
pub(crate) fn poke(state: &StateRoot) -> bool {
    running(state)
        .is_some_and(|pid| pid != 0 && crate::procs::signal_pid(pid, rustix::process::Signal::USR1))
}

/// What the running supervisor last wrote, if one runs.
pub(crate) fn report(state: &StateRoot) -> Option<Report> {
    running(state)?;
    let text = std::fs::read_to_string(report_path(state)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Supervises the sessions of `state` until SIGTERM or SIGINT (exit 0).
pub(crate) async fn run(state: StateRoot, options: Options) -> Result<u8, CliError> {
    state.ensure()?;
    // Before the lock, which tells `run --supervised` whom to poke: a
    // SIGUSR1 with no handler yet would end the process.
    let signals = Signals::new()?;
    let _lock = match OwnerLock::try_take(&lock_path(&state)) {
        Ok(Ok(lock)) => lock,
        Ok(Err(pid)) => {
            return Err(CliError::failure(format!(
                "a supervisor already runs for {}{}",
                state.root().display(),
                pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
            ))
            .hint("one per state directory: `reins service status` shows it"));
        }
        Err(err) => {
            return Err(CliError::failure(format!(
                "cannot take {}: {err}",
                lock_path(&state).display()
            )));
        }
    };
    let mut supervisor = Supervisor::new(state, options);
    let result = supervisor.serve(signals).await;
    supervisor.shut_down();
    result
}

/// The signals a supervisor takes: SIGTERM and SIGINT end it; SIGUSR1
/// (from `run --supervised`) makes it scan now rather than at the next
/// scan.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    poke: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let take = |kind| {
            signal(kind).map_err(|err| CliError::failure(format!("cannot handle signals: {err}")))
        };
        Ok(Signals {
            term: take(SignalKind::terminate())?,
            int: take(SignalKind::interrupt())?,
            poke: take(SignalKind::user_defined1())?,
        })
    }
}

/// A session watched by this supervisor.
struct Running {
    paths: SessionPaths,
    since: String,
    task: JoinHandle<Summary>,
}

/// What the supervisor remembers of a session it does not watch now.
#[derive(Default)]
struct Known {
    /// `launch.json`'s modification time and the watch flags it held.
    launch: Option<(SystemTime, Option<Vec<String>>)>,
    /// Events read so far, and whether the last thing that happened was a
    /// watcher calling for a person (then it is left alone until the
    /// session moves again).
    events_read: u64,
    escalated: bool,
    /// A watch that failed is not tried again before this; `backoff` is
    /// how long the last wait was.
    retry_at: Option<Instant>,
    backoff: Duration,
}

struct Supervisor {
    state: StateRoot,
    options: Options,
    report: Report,
    running: HashMap<PathBuf, Running>,
    known: HashMap<PathBuf, Known>,
    retiring: Option<JoinHandle<Result<Vec<crate::control::gc::Idle>, CliError>>>,
    next_retire: Instant,
    last_written: String,
}

impl Supervisor {
    fn new(state: StateRoot, options: Options) -> Supervisor {
        let report = Report {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: crate::time::now_rfc3339(),
            state_dir: state.root().to_path_buf(),
            scan_every_ms: options.scan_every.as_millis() as u64,
            retire_after_s: None,
            scans: 0,
            watching: Vec::new(),
            ended: Vec::new(),
            retired: 0,
            last_error: None,
        };
        Supervisor {
            state,
            options,
            report,
            running: HashMap::new(),
            known: HashMap::new(),
            retiring: None,
            next_retire: Instant::now(),
            last_written: String::new(),
        }
    }

    fn say(&self, line: &str) {
        eprintln!("{} supervise: {line}", crate::compat::program());
    }

    fn error(&mut self, line: String) {
        self.say(&line);
        self.report.last_error = Some(line);
    }

    async fn serve(&mut self, mut signals: Signals) -> Result<u8, CliError> {
        self.say(&format!(
            "pid {} supervises {} (a scan every {})",
            std::process::id(),
            self.state.root().display(),
            crate::time::human(self.options.scan_every.as_secs_f64())
        ));
        loop {
            self.scan().await;
            self.retire().await;
            self.write_report();
            tokio::select! {
                _ = tokio::time::sleep(self.options.scan_every) => {}
                _ = signals.poke.recv() => {}
                _ = signals.term.recv() => break,
                _ = signals.int.recv() => break,
            }
        }
        self.say("stopping; the sessions go on running");
        Ok(code::OK)
    }

    /// Ends every watch (their sessions go on) and removes the report.
    fn shut_down(&mut self) {
        for (_, running) in self.running.drain() {
            running.task.abort();
        }
        if let Some(task) = self.retiring.take() {
            task.abort();
        }
        let _ = crate::store::fsutil::remove_if_exists(&report_path(&self.state));
    }

    /// One look over the sessions: reap ended watches, start new ones.
    async fn scan(&mut self) {
        self.report.scans += 1;
        self.reap().await;
        for paths in self.state.list_sessions(None) {
            if self.running.contains_key(&paths.dir) {
                continue;
            }
            if let Some(flags) = self.wants_watch(&paths) {
                self.start_watch(paths, &flags);
            }
        }
        self.report.watching = {
            let mut watching: Vec<Watching> = self
                .running
                .values()
                .map(|r| Watching {
                    id: r.paths.id.clone(),
                    scope: r.paths.scope.clone(),
                    since: r.since.clone(),
                })
                .collect();
            watching.sort_by(|a, b| (&a.scope, &a.id).cmp(&(&b.scope, &b.id)));
            watching
        };
    }

    /// Collects the watches that ended.
    async fn reap(&mut self) {
        let done: Vec<PathBuf> = self
            .running
            .iter()
            .filter(|(_, r)| r.task.is_finished())
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in done {
            let Some(running) = self.running.remove(&dir) else { continue };
            let summary = match running.task.await {
                Ok(summary) => summary,
                Err(err) => {
                    self.error(format!("{}: the watch failed: {err}", running.paths.id));
                    continue;
                }
            };
            self.say(&format!(
                "{}: the watch ended {}: {}",
                running.paths.id, summary.outcome, summary.reason
            ));
            let known = self.known.entry(dir).or_default();
            match summary.outcome {
                "escalated" => {
                    // Left alone until the session moves again.
                    known.events_read = events_len(&running.paths);
                    known.escalated = true;
                }
                "error" => {
                    known.backoff = (known.backoff * 2).clamp(RETRY_FIRST, RETRY_MAX);
                    known.retry_at = Some(Instant::now() + known.backoff);
                }
                _ => known.backoff = Duration::ZERO,
            }
            self.report.ended.push(Ended {
                id: summary.id,
                scope: running.paths.scope.clone(),
                outcome: summary.outcome.into(),
                reason: summary.reason,
                restarts: summary.restarts,
                resumes: summary.resumes,
                at: crate::time::now_rfc3339(),
            });
            let over = self.report.ended.len().saturating_sub(KEPT_ENDED);
            self.report.ended.drain(..over);
        }
    }

    /// The watch flags of a session that asked to be watched and should be
    /// watched now; `None` for every other session.
    fn wants_watch(&mut self, paths: &SessionPaths) -> Option<Vec<String>> {
        let known = self.known.entry(paths.dir.clone()).or_default();
        let flags = launch_watch(&paths.launch_record(), &mut known.launch)?;
        if known.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        // A person was called: wait until the session moves again.
        follow_escalation(paths, known);
        if known.escalated {
            return None;
        }
        let view = SessionView::read(paths.clone());
        let revive_s = self.options.revive_within.as_secs_f64();
        match view.liveness {
            Liveness::Live => Some(flags),
            // Its host died without a word (killed, or the machine went
            // down): the last it wrote is when it ended.
            Liveness::Dead => {
                let quiet_s = std::fs::metadata(paths.events())
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .map_or(0.0, |d| d.as_secs_f64());
                (quiet_s <= revive_s).then_some(flags)
            }
            Liveness::Exited => {
                let exit = view.exit_record()?;
                if crate::watch::GivenUp::read(paths).is_some_and(|g| g.run == exit.run) {
                    return None; // a watcher called for a person
                }
                let on_purpose = matches!(
                    exit.reason,
                    ExitReason::Success | ExitReason::Stopped | ExitReason::Retired
                );
                let ended_s = crate::time::seconds_since(&exit.exited_at).unwrap_or(f64::MAX);
                (!on_purpose && ended_s <= revive_s).then_some(flags)
            }
        }
    }

    fn start_watch(&mut self, paths: SessionPaths, flags: &[String]) {
        let mut options =
            match crate::watch::flags::options_from_flags(flags, self.options.start_timeout) {
                Ok(options) => options,
                Err(err) => {
                    let known = self.known.entry(paths.dir.clone()).or_default();
                    known.backoff = RETRY_MAX;
                    known.retry_at = Some(Instant::now() + RETRY_MAX);
                    self.error(format!("{}: its watch flags are refused: {err}", paths.id));
                    return;
                }
            };
        options.until_exit = true;
        options.on_exit = None;
        let lock = match OwnerLock::try_take(&paths.watch_lock()) {
            Ok(Ok(lock)) => lock,
            Ok(Err(_)) => return, // watched by someone else: theirs
            Err(err) => {
                self.error(format!("{}: cannot take its watch: {err}", paths.id));
                return;
            }
        };
        self.say(&format!("{}: watching it (scope {})", paths.id, paths.scope));
        if let Some(known) = self.known.get_mut(&paths.dir) {
            known.retry_at = None;
        }
        let task = tokio::spawn(crate::watch::supervise_holding(
            Some(lock),
            paths.clone(),
            options,
            Log::Supervisor,
            false,
        ));
        let since = crate::time::now_rfc3339();
        self.running.insert(paths.dir.clone(), Running { paths, since, task });
    }

    /// Retires idle sessions, on a task of its own (stopping one may take
    /// seconds), at most every minute.
    async fn retire(&mut self) {
        if self.retiring.as_ref().is_some_and(|task| task.is_finished())
            && let Some(task) = self.retiring.take()
        {
            match task.await {
                Ok(Ok(idle)) => {
                    for entry in idle {
                        match &entry.kept {
                            None => {
                                self.report.retired += 1;
                                self.say(&format!(
                                    "{}: retired after {} idle",
                                    entry.id,
                                    crate::time::human(entry.idle_s)
                                ));
                            }
                            Some(why) => {
                                self.say(&format!("{}: idle but kept: {why}", entry.id));
                            }
                        }
                    }
                }
                Ok(Err(err)) => self.error(format!("retiring idle sessions: {err}")),
                Err(err) => self.error(format!("retiring idle sessions: {err}")),
            }
        }
        if self.retiring.is_some() || Instant::now() < self.next_retire {
            return;
        }
        let idle = match self.options.retire_after {
            Some(idle) => Some(idle),
            None => match crate::config::retire_after() {
                Ok(idle) => idle,
                Err(err) => {
                    self.error(format!("config.toml: {err}"));
                    None
                }
            },
        };
        self.report.retire_after_s = idle.map(|d| d.as_secs_f64());
        let Some(idle) = idle else {
            self.next_retire = Instant::now() + Duration::from_secs(60);
            return;
        };
        // A quarter of the idle time, between a second and a minute.
        let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
        self.next_retire = Instant::now() + every;
        let state = self.state.clone();
        self.retiring = Some(tokio::spawn(async move {
            crate::control::gc::retire_idle(&state, idle, false).await
        }));
    }

    /// Writes `supervise.json` when what it says changed.
    fn write_report(&mut self) {
        let mut shown = self.report.clone();
        shown.scans = 0; // counting scans alone is no change worth a write
        let key = serde_json::to_string(&shown).unwrap_or_default();
        if key == self.last_written {
            return;
        }
        self.last_written = key;
        let Ok(bytes) = serde_json::to_vec_pretty(&self.report) else { return };
        if let Err(err) = crate::store::fsutil::write_atomic(&report_path(&self.state), &bytes) {
            self.say(&format!("cannot write {}: {err}", report_path(&self.state).display()));
        }
    }
}

/// The watch flags in the launch record at `path`, read again only when
/// the file changed (`cache`: its modification time and flags).
fn launch_watch(
    path: &Path,
    cache: &mut Option<(SystemTime, Option<Vec<String>>)>,
) -> Option<Vec<String>> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    if let Some((at, flags)) = cache.as_ref()
        && *at == modified
    {
        return flags.clone();
    }
    let flags = LaunchRecord::read(path).ok().flatten().and_then(|record| record.watch);
    *cache = Some((modified, flags.clone()));
    flags
}

fn events_len(paths: &SessionPaths) -> u64 {
    std::fs::metadata(paths.events()).map_or(0, |m| m.len())
}

/// Reads the session's events from where the last look stopped: the last
/// of an `escalate` (a person was called) and a sign that the session moved
/// on (`started`, `turn_started`, `task_complete`) decides whether it is
/// left alone.
fn follow_escalation(paths: &SessionPaths, known: &mut Known) {
    let mut events = Follower::reading(paths, SessionFile::Events, known.events_read, false);
    let Ok(lines) = events.read_lines() else { return };
    for line in lines.iter().filter_map(|raw| EventLine::parse(raw)) {
        match line.kind {
            EventKind::Escalate { .. } => known.escalated = true,
            EventKind::Started(_)
            | EventKind::TurnStarted { .. }
            | EventKind::TaskComplete { .. } => {
                known.escalated = false;
            }
            _ => {}
        }
    }
    known.events_read = events.consumed();
}
