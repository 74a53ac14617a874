//! The library's face: drive reins sessions from a Rust program with the
//! same code the `reins` command runs (validation, launch, verified
//! delivery, waits that follow the event log).
//!
//! ```no_run
//! # async fn demo() -> Result<(), reins::Error> {
//! let reins = reins::Reins::from_env()?;
//! let session = reins.start(reins::StartOptions::new("mock").id("demo")).await?;
//! let sent = session.send("write a haiku", reins::Follow::Delivery).await?;
//! let done = session.wait(reins::Until::TaskComplete, Some(std::time::Duration::from_secs(60))).await?;
//! assert!(done.reached());
//! println!("{}", session.answer(None)?); // what it answered in that turn
//! session.stop(std::time::Duration::from_secs(10), true).await?;
//! # let _ = sent;
//! # Ok(()) }
//! ```
//!
//! Sessions outlive the program that started them (each has its own host
//! process), exactly as with the command line; a session started here is
//! seen by `reins status`, and the other way round.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::control::lookup::{self, SessionView};
use crate::control::session::{self as ops, StopOutcome};
use crate::control::start::{self, Mode, Record, Start};
use crate::control::status::{self, Which};
use crate::control::wait::{self as waiting, Turn, Wait};
use crate::error::{CliError, code};
use crate::ipc::{Decision, SendRequest};
use crate::store::paths::StateRoot;

/// Why a call failed: what kind of failure, what failed, what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

/// The kinds of [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was wrong (a bad id, an option that does not apply):
    /// change it before trying again.
    InvalidInput,
    /// It could not be done (no such session, it ended, its host did not
    /// answer, the agent could not start).
    Failed,
    /// A deadline passed first.
    Timeout,
    /// A bug in reins.
    Internal,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What to do about it, when reins knows.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl From<CliError> for Error {
    fn from(err: CliError) -> Error {
        let kind = match err.code {
            code::USAGE => ErrorKind::InvalidInput,
            code::TIMEOUT => ErrorKind::Timeout,
            code::INTERNAL => ErrorKind::Internal,
            _ => ErrorKind::Failed,
        };
        Error { kind, message: err.message, hint: err.hint }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::from(CliError::from(err))
    }
}

/// The sessions of one state directory.
#[derive(Debug, Clone)]
pub struct Reins {
    state: StateRoot,
}

impl Reins {
    /// The state directory the environment names, as `reins` finds it
    /// (`$REINS_STATE_DIR`, `$XDG_STATE_HOME/reins`, `~/.local/state/reins`).
    pub fn from_env() -> Result<Reins, Error> {
        Ok(Reins { state: StateRoot::from_env()? })
    }

    /// Starts a session and returns once it is up (headless, or in tmux).
    pub async fn start(&self, options: StartOptions) -> Result<Session, Error> {
        let started = start::prepare(options.start)?.launch().await?;
        let view = SessionView::read(self.state.session(&started.scope, &started.id));
        Ok(Session { view })
    }

    /// The session called `id` (looked for in the current directory's
    /// repository first, then in any).
    pub fn session(&self, id: &str) -> Result<Session, Error> {
        Ok(Session { view: lookup::find(&self.state, id, None)? })
    }

    /// The sessions that have not exited, of the current directory's
    /// repository (or, with `all`, of every one), each as `reins status
    /// --json` shows it.
    pub fn sessions(&self, all: bool) -> Result<Vec<serde_json::Value>, Error> {
        let listing = status::list(&self.state, Which::Running { all, repo: None })?;
        Ok(listing.sessions.iter().map(|s| serde_json::to_value(s).unwrap_or_default()).collect())
    }
}

/// What to start (`reins run`'s options; the agent runs headless unless
/// [`StartOptions::tmux`] says otherwise).
#[derive(Debug, Clone)]
pub struct StartOptions {
    start: Start,
}

impl StartOptions {
    /// An agent profile (`mock`, `claude`, `codex`, ...) or a program.
    pub fn new(agent: &str) -> StartOptions {
        StartOptions { start: Start::new(agent) }
    }

    pub fn id(mut self, id: &str) -> StartOptions {
        self.start.id = Some(id.to_string());
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> StartOptions {
        self.start.cwd = Some(dir.into());
        self
    }

    /// The first task.
    pub fn context(mut self, task: &str) -> StartOptions {
        self.start.context = Some(task.to_string());
        self
    }

    pub fn description(mut self, text: &str) -> StartOptions {
        self.start.description = Some(text.to_string());
        self
    }

    /// Arguments for the agent.
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> StartOptions {
        self.start.agent_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// In a tmux window (named after the id unless `window` is given).
    pub fn tmux(mut self, window: Option<&str>) -> StartOptions {
        self.start.mode = Mode::Tmux { window: window.map(str::to_string) };
        self
    }

    /// Write no dispatch record line for this session.
    pub fn no_record(mut self) -> StartOptions {
        self.start.record = Record::None;
        self
    }

    /// How long the session may take to come up (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> StartOptions {
        self.start.timeout = timeout;
        self
    }
}

/// How far [`Session::send`] follows a message.
pub use crate::control::session::Follow;
/// What [`Session::wait`] waits for.
pub use crate::control::wait::Until;

/// What became of a message.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    /// queued, delivering, delivered, typed, stranded, expired, dropped,
    /// exited or timeout.
    pub status: String,
    /// The turn it started.
    pub turn: Option<u64>,
    pub detail: Option<String>,
}

/// How a wait ended.
#[derive(Debug, Clone)]
pub struct Waited {
    /// `reached`, `exited`, `host_died`, `timeout`, or a message's fate.
    pub status: String,
    pub turn: Option<u64>,
    /// The event that settled it, as written to the event log.
    pub event: Option<serde_json::Value>,
}

impl Waited {
    pub fn reached(&self) -> bool {
        self.status == "reached"
    }
}

/// One session.
#[derive(Debug)]
pub struct Session {
    view: SessionView,
}

impl Session {
    pub fn id(&self) -> &str {
        &self.view.paths.id
    }

    /// Its directory (`events.jsonl`, `transcript.log`, ...).
    pub fn dir(&self) -> &Path {
        &self.view.paths.dir
    }

    /// As `reins status --id ID --json` shows it, read now.
    pub fn status(&self) -> serde_json::Value {
        let view = SessionView::read(self.view.paths.clone());
        serde_json::to_value(status::info(&view)).unwrap_or_default()
    }

    /// Hands the agent a message (queued if it is busy), following it as
    /// `follow` says (for at most two minutes, or until its turn ends).
    pub async fn send(&self, text: &str, follow: Follow) -> Result<Sent, Error> {
        let request = SendRequest {
            text: text.to_string(),
            submit: true,
            submit_only: false,
            force: false,
            raw: false,
            ttl_ms: None,
        };
        let timeout = (follow != Follow::Turn).then_some(Duration::from_secs(120));
        let sent = ops::send(&self.fresh(), &request, follow, timeout, |_| {}).await?;
        Ok(Sent {
            message_id: sent.message_id,
            status: sent.status,
            turn: sent.turn,
            detail: sent.detail,
        })
    }

    /// Waits until `until` holds (for `TaskComplete`: the latest turn, or
    /// the turn of the message still queued), for at most `timeout`.
    pub async fn wait(&self, until: Until, timeout: Option<Duration>) -> Result<Waited, Error> {
        self.wait_turn(until, Turn::Current, timeout).await
    }

    /// Waits until the turn that `message_id` started is complete.
    pub async fn wait_message(
        &self,
        message_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Waited, Error> {
        self.wait_turn(Until::TaskComplete, Turn::Message(message_id.to_string()), timeout).await
    }

    async fn wait_turn(
        &self,
        until: Until,
        turn: Turn,
        timeout: Option<Duration>,
    ) -> Result<Waited, Error> {
        let view = self.fresh();
        let waited: waiting::Waited = Wait::new(&view, until, turn)?.until(timeout, |_| {}).await?;
        Ok(Waited { status: waited.status, turn: waited.turn, event: waited.event })
    }

    /// What the agent answered in turn `turn` (None: the last completed
    /// turn), as `reins answer` prints it.
    pub fn answer(&self, turn: Option<u64>) -> Result<String, Error> {
        let which = turn.map_or(crate::control::answer::Which::Last, |n| {
            crate::control::answer::Which::Turn(n)
        });
        Ok(crate::control::answer::find(&self.fresh(), &which)?.answer)
    }

    /// The agent's screen, row by row.
    pub async fn screen(&self) -> Result<Vec<String>, Error> {
        let screen = ops::screen(&self.fresh(), None).await?;
        Ok(screen.map(|s| s.rows).unwrap_or_default())
    }

    /// Stops the running turn; the agent stays.
    pub async fn interrupt(&self) -> Result<(), Error> {
        Ok(ops::interrupt(&self.fresh()).await?)
    }

    /// Answers the agent's pending approval request (`request`: only that
    /// one); returns the name of the request answered.
    pub async fn approve(&self, allow: bool, request: Option<&str>) -> Result<String, Error> {
        let decision = if allow { Decision::Allow } else { Decision::Deny };
        let reply = ops::approve(&self.fresh(), decision, request.map(str::to_string)).await?;
        Ok(reply.request.unwrap_or_default())
    }

    /// Stops the session and everything it started: the agent's polite
    /// exit, then signals, within `timeout`; with `force`, whatever does not
    /// end in time is killed. Returns how it went (`stopped`, `killed`,
    /// `already_exited`, `cleaned`).
    pub async fn stop(&self, timeout: Duration, force: bool) -> Result<&'static str, Error> {
        let outcome: StopOutcome = ops::stop(&self.fresh(), timeout, force).await?;
        Ok(outcome.as_str())
    }

    /// The session as its files say now (it may have ended, or started again).
    fn fresh(&self) -> SessionView {
        SessionView::read(self.view.paths.clone())
    }
}
