//! The session tools: one handler per tool, each a call into session
//! control (`crate::control`) with the same checks and results as the
//! command of the same job (`list_sessions` = `reins status --json`,
//! `send_message` = `reins send`, `wait` = `reins wait`, ...).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rmcp::handler::server::wrapper::Parameters;
use rmcp::service::RequestContext;
use rmcp::{Json, RoleServer, schemars, tool, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::control::events::{self, Cursor};
use crate::control::lookup::{self, SessionView};
use crate::control::session::{self as ops, Follow};
use crate::control::start::{self, Mode, Start, Worktree};
use crate::control::status::{self, Which};
use crate::control::wait::{Turn, Until, Wait};
use crate::ipc::{Decision, SendRequest};
use crate::mcp::progress::Long;
use crate::mcp::reply::{Object, Reply, ToolError, object, ok};
use crate::mcp::server::Fleet;
use crate::store::registry::SessionRecord;

/// The longest a call may be told to wait (a day).
const MAX_WAIT: f64 = 86_400.0;

/// Seconds, checked: positive, finite, at most a day.
pub(crate) fn seconds(value: Option<f64>, default: f64, what: &str) -> Result<Duration, ToolError> {
    let secs = value.unwrap_or(default);
    if !secs.is_finite() || !(0.0..=MAX_WAIT).contains(&secs) {
        return Err(ToolError::invalid(format!(
            "{what} must be between 0 and {MAX_WAIT} seconds, not {secs}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Which session, and where to look for it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SessionArgs {
    /// The session's id.
    pub(crate) id: String,
    /// Look for the session in the git repository at this directory first
    /// (default: the server's working directory, then any repository).
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArgs {
    /// Sessions of every repository, not only the server's.
    #[serde(default)]
    pub(crate) all: bool,
    /// Sessions of the git repository at this directory (default: the
    /// server's working directory's).
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Listing {
    /// The sessions that have not exited, oldest first, each as
    /// `session_status` describes it (id, state, turn, idle_s, agent,
    /// description, parent, pending approval, ...).
    pub(crate) sessions: Vec<Object>,
    /// Running sessions of other repositories left out (`all` shows them).
    pub(crate) hidden: usize,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartArgs {
    /// The agent: an adapter profile (`claude`, `codex`, `gemini`,
    /// `opencode`, `mock`, `generic`) or a program on PATH.
    pub(crate) agent: String,
    /// The session's id: letters, digits, `-`, `_` (default: a readable
    /// random one).
    #[serde(default)]
    pub(crate) id: Option<String>,
    /// The agent's working directory (default: the server's).
    #[serde(default)]
    pub(crate) cwd: Option<PathBuf>,
    /// Run in a new git worktree of the repository at `cwd`, on a new
    /// branch `reins/ID` (or `branch`).
    #[serde(default)]
    pub(crate) worktree: bool,
    /// With `worktree`: the branch to create or check out.
    #[serde(default)]
    pub(crate) branch: Option<String>,
    /// With `worktree`: the revision a new branch starts from (default HEAD).
    #[serde(default)]
    pub(crate) base: Option<String>,
    /// The first task, handed to the agent as it starts (its turn 1).
    #[serde(default)]
    pub(crate) context: Option<String>,
    /// What the session is for, shown by `list_sessions`.
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// More command-line arguments for the agent program.
    #[serde(default)]
    pub(crate) args: Vec<String>,
    /// Show the agent in a new tmux window instead of running it headless.
    #[serde(default)]
    pub(crate) tmux: bool,
    /// Its approval requests: `ask` (default: they wait for `approve` or
    /// `deny`), `auto` (allow each) or `never` (refuse each).
    #[serde(default)]
    pub(crate) approve: Option<String>,
    /// How to talk to the agent: `pty` (its terminal UI), or a structured
    /// transport its profile has (`codex-app-server`, `claude-stream-json`)
    /// (default: the profile's).
    #[serde(default)]
    pub(crate) transport: Option<String>,
    /// A JSON object kept with the session (its `meta`).
    #[serde(default)]
    pub(crate) meta: Option<Object>,
    /// Seconds the session may take to come up (default 30).
    #[serde(default)]
    pub(crate) timeout_s: Option<f64>,
}

/// How far `send_message` follows its message.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FollowArg {
    /// Answer once the message is in the session's inbox.
    None,
    /// Answer once it is delivered (its turn seen starting), or its fate
    /// (stranded, expired, the session ended) is known.
    Delivery,
    /// Answer once the turn it started is complete.
    Turn,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendArgs {
    /// The session.
    pub(crate) id: String,
    /// The message. A busy or blocked agent gets it when it is ready
    /// (messages are queued in order, kept across host restarts).
    pub(crate) text: String,
    /// How far to follow it (default `delivery`).
    #[serde(default)]
    pub(crate) follow: Option<FollowArg>,
    /// Deliver now even to a busy agent, ahead of the queue.
    #[serde(default)]
    pub(crate) force: bool,
    /// Type the text without pressing the submit key.
    #[serde(default)]
    pub(crate) no_submit: bool,
    /// Do not put the relay header (naming the sending session) in front.
    #[serde(default)]
    pub(crate) no_relay: bool,
    /// Seconds to follow it before answering `timed_out` (default 120; the
    /// message stays queued).
    #[serde(default)]
    pub(crate) timeout_s: Option<f64>,
    /// Look for the session in the repository at this directory first.
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct SendResult {
    /// It got as far as asked (delivered; with `follow: turn`, its turn
    /// completed).
    pub(crate) ok: bool,
    pub(crate) id: String,
    /// The message's id (`wait` takes it as `message_id`).
    pub(crate) message_id: String,
    /// queued, delivering, delivered, typed, stranded, expired, dropped,
    /// exited or timeout.
    pub(crate) status: String,
    /// The turn it started.
    pub(crate) turn: Option<u64>,
    /// With `follow: turn`: how the turn ended (`{"status": "completed"}`).
    pub(crate) task: Option<Value>,
    pub(crate) detail: Option<String>,
    /// The deadline passed before its fate was known (it stays queued).
    pub(crate) timed_out: bool,
    pub(crate) waited_s: f64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitArgs {
    /// The session.
    pub(crate) id: String,
    /// What to wait for (default `task_complete`): `task_complete` (the
    /// turn of the last message still queued, else the latest turn
    /// started; never an older one), a state (`ready`, `busy`, `blocked`,
    /// `unknown`, `starting`), `exit`, `turn:N` (turn N started),
    /// `idle:DURATION` (no output for that long, e.g. `idle:30s`),
    /// `rate_limited` or `rate_limit_lifted`.
    #[serde(default)]
    pub(crate) until: Option<String>,
    /// With `task_complete`: exactly turn N.
    #[serde(default)]
    pub(crate) turn: Option<u64>,
    /// With `task_complete`: the turn this message started (the
    /// `message_id` send_message returned).
    #[serde(default)]
    pub(crate) message_id: Option<String>,
    /// Seconds to wait before answering `status: "timeout"` (default 600,
    /// at most 86400). A timeout is an answer, not an error.
    #[serde(default)]
    pub(crate) timeout_s: Option<f64>,
    /// Look for the session in the repository at this directory first.
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct WaitResult {
    pub(crate) id: String,
    /// The condition as waited for (`task_complete (turn 2)`).
    pub(crate) until: String,
    /// `reached`, `timeout`, `exited`, `host_died`, or the message's fate
    /// (`stranded`, `expired`, `dropped`).
    pub(crate) status: String,
    pub(crate) reached: bool,
    /// The turn it is about.
    pub(crate) turn: Option<u64>,
    /// The session's state when the wait ended.
    pub(crate) state: Option<String>,
    /// The event that settled it, as written to the event log (for
    /// `task_complete`: its `status`, completed, failed or interrupted).
    pub(crate) event: Option<Value>,
    /// How the run ended, when it did.
    pub(crate) exit: Option<Value>,
    pub(crate) waited_s: f64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ScreenResult {
    pub(crate) id: String,
    /// The screen, row by row, as the user would see it (blank rows at
    /// the bottom left out).
    pub(crate) rows: Vec<String>,
    /// The screen's height.
    pub(crate) height: u16,
    pub(crate) cols: u16,
    pub(crate) cursor_row: usize,
    pub(crate) cursor_col: usize,
    /// The terminal's title, as the agent set it.
    pub(crate) title: String,
    /// Changes whenever the screen settles after new output.
    pub(crate) version: u64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsArgs {
    /// The session.
    pub(crate) id: String,
    /// The run to read (default: the latest; every `start_session` of an
    /// id is a new run, whose `seq` starts again at 1).
    #[serde(default)]
    pub(crate) run: Option<String>,
    /// The first sequence number wanted (default 1): pass the `next_seq`
    /// of the previous read to get only what is new.
    #[serde(default)]
    pub(crate) from_seq: Option<u64>,
    /// At most this many events (default 200, at most 5000).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    /// Only events of these types (`state`, `turn_started`,
    /// `task_complete`, `delivered`, `blocked`, `exited`, ...).
    #[serde(default)]
    pub(crate) types: Vec<String>,
    /// When nothing new is there yet, wait up to this many seconds for the
    /// next event (default 0: answer at once).
    #[serde(default)]
    pub(crate) wait_s: Option<f64>,
    /// Look for the session in the repository at this directory first.
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct EventsResult {
    pub(crate) id: String,
    /// The run read (absent: the session never started).
    pub(crate) run: Option<String>,
    /// The events, as written to the event log (envelope: `seq`, `ts`,
    /// `type`, `turn`; then the type's fields).
    pub(crate) events: Vec<Value>,
    /// Where the next read starts: pass it as `from_seq`.
    pub(crate) next_seq: u64,
    /// More events of the run are there beyond this page.
    pub(crate) more: bool,
    /// The run is still going (more events may come).
    pub(crate) live: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsArgs {
    /// The session.
    pub(crate) id: String,
    /// The last N lines (default 100, at most 10000).
    #[serde(default)]
    pub(crate) lines: Option<usize>,
    /// Look for the session in the repository at this directory first.
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct LogsResult {
    pub(crate) id: String,
    /// What the agent printed, rendered as the lines a user saw (what
    /// scrolled off, then the last screen); works after the session ended.
    pub(crate) lines: Vec<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApproveArgs {
    /// The session whose agent waits on an approval request.
    pub(crate) id: String,
    /// The request to answer (as `session_status`'s `approval.request`
    /// names it, e.g. `a1`); without it, the oldest pending one. Naming it
    /// keeps a late answer from landing on the next dialog.
    #[serde(default)]
    pub(crate) request: Option<String>,
    /// Look for the session in the repository at this directory first.
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Answered {
    pub(crate) id: String,
    /// `allow` or `deny`.
    pub(crate) decision: String,
    /// The request answered.
    pub(crate) request: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Done {
    pub(crate) ok: bool,
    pub(crate) id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StopArgs {
    /// The session.
    pub(crate) id: String,
    /// Seconds it may take to end (default 10).
    #[serde(default)]
    pub(crate) timeout_s: Option<f64>,
    /// Kill whatever does not end in time (or a host that does not answer).
    #[serde(default)]
    pub(crate) force: bool,
    /// Look for the session in the repository at this directory first.
    #[serde(default)]
    pub(crate) repo: Option<PathBuf>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct Stopped {
    pub(crate) id: String,
    /// `stopped`, `killed`, `already_exited` or `cleaned` (its host had
    /// died; what was left of it was cleaned up).
    pub(crate) outcome: String,
}

impl Fleet {
    /// The session `id` (its files as they are now).
    pub(crate) fn find(&self, id: &str, repo: Option<&PathBuf>) -> Result<SessionView, ToolError> {
        Ok(lookup::find(&self.state, id, repo.map(PathBuf::as_path))?)
    }
}

#[tool_router(router = session_tools, vis = "pub(crate)")]
impl Fleet {
    /// The sessions that are running (state, turn, idle time, agent,
    /// description, parent session, pending approval), oldest first: those
    /// of the server's repository, or of every one with `all`.
    #[tool(annotations(read_only_hint = true))]
    async fn list_sessions(
        &self,
        Parameters(a): Parameters<ListArgs>,
    ) -> Result<Json<Listing>, ToolError> {
        let which = Which::Running { all: a.all, repo: a.repo.as_deref() };
        let listing = status::list(&self.state, which)?;
        ok(Listing {
            sessions: listing.sessions.iter().map(object).collect(),
            hidden: listing.hidden,
        })
    }

    /// One session as its files say now, also after it ended: state (ready,
    /// busy, blocked with a kind, exited...), turn, idle time, its pending
    /// approval request, parent, worktree, how it ended.
    #[tool(annotations(read_only_hint = true))]
    async fn session_status(
        &self,
        Parameters(a): Parameters<SessionArgs>,
    ) -> Result<Json<Object>, ToolError> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        ok(object(&status::info(&view)))
    }

    /// Starts an agent session (headless unless `tmux`) and answers once it
    /// is up: its id, pid, session directory. A session started from inside
    /// another reins session records that session as its parent. Give it
    /// work with `context` or `send_message`.
    #[tool]
    async fn start_session(
        &self,
        Parameters(a): Parameters<StartArgs>,
    ) -> Result<Json<Object>, ToolError> {
        let mut spec = Start::new(&a.agent);
        spec.id = a.id;
        spec.cwd = a.cwd;
        spec.context = a.context;
        spec.description = a.description;
        spec.agent_args = a.args;
        spec.meta = a.meta.map(Value::Object);
        spec.timeout = seconds(a.timeout_s, 30.0, "timeout_s")?;
        if a.tmux {
            spec.mode = Mode::Tmux { window: None };
        }
        if a.worktree {
            spec.worktree = Some(Worktree { branch: a.branch, base: a.base, root: None });
        } else if a.branch.is_some() || a.base.is_some() {
            return Err(ToolError::invalid("`branch` and `base` go with `worktree: true`"));
        }
        if let Some(policy) = &a.approve {
            spec.approve = clap::ValueEnum::from_str(policy, true).map_err(|_| {
                ToolError::invalid(format!("approve: {policy:?} is not ask, auto or never"))
            })?;
        }
        if let Some(transport) = &a.transport {
            spec.transport = Some(clap::ValueEnum::from_str(transport, true).map_err(|_| {
                ToolError::invalid(format!("transport: no transport called {transport:?}"))
                    .hint("pty, codex-app-server or claude-stream-json")
            })?);
        }
        let started = start::prepare(spec)?.launch().await?;
        ok(object(&started))
    }

    /// Hands a session's agent a message with verified delivery: answers
    /// the message id and, once delivered, the turn it started (`follow:
    /// turn` also waits for that turn to complete). A busy agent gets it
    /// when ready; `stranded` means it was typed but never started a turn.
    /// Reports progress while it follows.
    #[tool]
    async fn send_message(
        &self,
        Parameters(a): Parameters<SendArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SendResult>, ToolError> {
        let long = Long::of_request(&ctx);
        self.send(a, &long).await
    }

    /// Waits until a session's turn is complete (`task_complete`, the
    /// default), or it reaches a state, exits, starts turn N or goes quiet;
    /// at most `timeout_s`, then answers `status: "timeout"`. Reports each
    /// state change as progress; cancelling the call leaves the session as
    /// it is.
    #[tool(annotations(read_only_hint = true))]
    async fn wait(
        &self,
        Parameters(a): Parameters<WaitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<WaitResult>, ToolError> {
        let long = Long::of_request(&ctx);
        self.wait_for(a, &long).await
    }

    /// A session's screen now, row by row (for structured transports, the
    /// transcript reins draws of the conversation).
    #[tool(annotations(read_only_hint = true))]
    async fn read_screen(
        &self,
        Parameters(a): Parameters<SessionArgs>,
    ) -> Result<Json<ScreenResult>, ToolError> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        let screen = ops::screen(&view, None).await?.ok_or_else(|| {
            ToolError::from(crate::error::CliError::failure(format!(
                "session {} ended while its screen was read",
                a.id
            )))
        })?;
        let mut rows = screen.rows;
        while rows.last().is_some_and(|r| r.trim().is_empty()) {
            rows.pop();
        }
        ok(ScreenResult {
            id: a.id,
            cols: screen.size.cols,
            height: screen.size.rows,
            rows,
            cursor_row: screen.cursor_row,
            cursor_col: screen.cursor_col,
            title: screen.title,
            version: screen.version,
        })
    }

    /// A session's events (state changes, turns, deliveries, approvals,
    /// exits) from a sequence number on: pass back `next_seq` to read only
    /// what is new, and `wait_s` to wait for it. Works after it ended.
    #[tool(annotations(read_only_hint = true))]
    async fn read_events(
        &self,
        Parameters(a): Parameters<EventsArgs>,
    ) -> Result<Json<EventsResult>, ToolError> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        let limit = a.limit.unwrap_or(200);
        if limit == 0 || limit > 5000 {
            return Err(ToolError::invalid(format!("limit must be 1 to 5000, not {limit}")));
        }
        let cursor =
            Cursor { run: a.run, from_seq: a.from_seq.unwrap_or(1), limit, types: a.types };
        let wait = seconds(a.wait_s, 0.0, "wait_s")?;
        let page = events::page(&view, &cursor, Some(wait)).await?;
        ok(EventsResult {
            id: page.id,
            run: page.run,
            events: page.events,
            next_seq: page.next_seq,
            more: page.more,
            live: page.live,
        })
    }

    /// The last lines a session's agent printed, rendered as a user saw
    /// them (what scrolled off the screen, then the last screen). Works
    /// after it ended.
    #[tool(annotations(read_only_hint = true))]
    async fn read_logs(
        &self,
        Parameters(a): Parameters<LogsArgs>,
    ) -> Result<Json<LogsResult>, ToolError> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        let n = a.lines.unwrap_or(100);
        if n == 0 || n > 10_000 {
            return Err(ToolError::invalid(format!("lines must be 1 to 10000, not {n}")));
        }
        let lines = crate::control::logs::lines(&view, Some(n))?;
        ok(LogsResult { id: a.id, lines })
    }

    /// Stops a session's running turn (the agent stays, ready for the next
    /// message).
    #[tool]
    async fn interrupt(
        &self,
        Parameters(a): Parameters<SessionArgs>,
    ) -> Result<Json<Done>, ToolError> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        ops::interrupt(&view).await?;
        ok(Done { ok: true, id: a.id })
    }

    /// Allows the approval request a session's agent waits on (a tool call,
    /// a command). An agent cannot answer its own session's requests.
    #[tool]
    async fn approve(
        &self,
        Parameters(a): Parameters<ApproveArgs>,
    ) -> Result<Json<Answered>, ToolError> {
        self.answer(a, Decision::Allow).await
    }

    /// Refuses the approval request a session's agent waits on. An agent
    /// cannot answer its own session's requests.
    #[tool]
    async fn deny(
        &self,
        Parameters(a): Parameters<ApproveArgs>,
    ) -> Result<Json<Answered>, ToolError> {
        self.answer(a, Decision::Deny).await
    }

    /// Stops a session and everything its agent started: the agent's polite
    /// exit, then signals, within `timeout_s`; with `force`, whatever does
    /// not end in time is killed.
    #[tool(annotations(destructive_hint = true))]
    async fn stop_session(
        &self,
        Parameters(a): Parameters<StopArgs>,
    ) -> Result<Json<Stopped>, ToolError> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        let timeout = seconds(a.timeout_s, 10.0, "timeout_s")?;
        let outcome = ops::stop(&view, timeout, a.force).await?;
        ok(Stopped { id: a.id, outcome: outcome.as_str().into() })
    }
}

impl Fleet {
    /// `send_message`, reporting to `long`.
    pub(crate) async fn send(&self, a: SendArgs, long: &Long) -> Reply<SendResult> {
        if a.text.trim().is_empty() {
            return Err(
                ToolError::invalid("the message is empty").hint("say what the agent should do")
            );
        }
        let view = self.find(&a.id, a.repo.as_ref())?;
        let follow = match a.follow.unwrap_or(FollowArg::Delivery) {
            FollowArg::None => Follow::No,
            FollowArg::Delivery => Follow::Delivery,
            FollowArg::Turn => Follow::Turn,
        };
        let timeout = seconds(a.timeout_s, 120.0, "timeout_s")?;
        // As `reins send` does: a message from inside a session says so.
        let sender = crate::compat::sender_id().filter(|_| !a.no_relay && !a.no_submit);
        let text = ops::with_relay_header(sender.as_deref(), &a.id, a.text, false);
        let request = SendRequest {
            text,
            submit: !a.no_submit,
            submit_only: false,
            force: a.force,
            raw: false,
            ttl_ms: None,
        };
        let started = Instant::now();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let id = a.id.clone();
        let sending = ops::send(&view, &request, follow, Some(timeout), move |status| {
            let _ = tx.send(format!("{id}: {status}"));
        });
        let Some(sent) = long.run(sending, rx).await else {
            return Err(cancelled());
        };
        let sent = sent?;
        ok(SendResult {
            ok: sent.ok,
            id: a.id,
            message_id: sent.message_id,
            status: sent.status,
            turn: sent.turn,
            task: sent.task,
            detail: sent.detail,
            timed_out: sent.timed_out,
            waited_s: round3(started.elapsed().as_secs_f64()),
        })
    }

    /// `wait`, reporting to `long`.
    pub(crate) async fn wait_for(&self, a: WaitArgs, long: &Long) -> Reply<WaitResult> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        let until: Until = match a.until.as_deref() {
            None => Until::TaskComplete,
            Some(text) => text.parse().map_err(ToolError::invalid)?,
        };
        let turn = match (a.turn, a.message_id) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid("give `turn` or `message_id`, not both"));
            }
            (Some(n), None) => Turn::Number(n),
            (None, Some(m)) => Turn::Message(m),
            (None, None) => Turn::Current,
        };
        let timeout = seconds(a.timeout_s, 600.0, "timeout_s")?;
        let started = Instant::now();
        let wait = Wait::new(&view, until, turn)?;
        let condition = wait.describe();
        long.report(format!(
            "{}: waiting for {condition}; {}",
            a.id,
            where_now(&view, wait.state())
        ))
        .await;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let paths = view.paths.clone();
        let id = a.id.clone();
        // Said once per change (the wait hears every event).
        let last = std::sync::Mutex::new(String::new());
        let waiting = wait.until(Some(timeout), move |state| {
            let record = SessionRecord::read(&paths.registry()).ok().flatten();
            let turn = record.map_or(0, |r| r.turn);
            let state = state.map_or("unknown".to_string(), |s| s.to_string());
            let line = format!("{id}: {state}, turn {turn}");
            let mut last = last.lock().expect("progress lock");
            if *last != line {
                let _ = tx.send(line.clone());
                *last = line;
            }
        });
        let Some(waited) = long.run(waiting, rx).await else {
            return Err(cancelled());
        };
        let waited = waited?;
        let now = SessionView::read(view.paths.clone());
        let state = status::info(&now).state;
        ok(WaitResult {
            id: a.id,
            reached: waited.reached(),
            until: waited.until,
            status: waited.status,
            turn: waited.turn,
            state: Some(state),
            event: waited.event,
            exit: waited.exit.and_then(|e| serde_json::to_value(e).ok()),
            waited_s: round3(started.elapsed().as_secs_f64()),
        })
    }

    async fn answer(&self, a: ApproveArgs, decision: Decision) -> Reply<Answered> {
        let view = self.find(&a.id, a.repo.as_ref())?;
        let reply = ops::approve(&view, decision, a.request).await?;
        ok(Answered { id: a.id, decision: decision.as_str().into(), request: reply.request })
    }
}

/// The session's state and turn now, in words.
fn where_now(view: &SessionView, state: Option<crate::state::State>) -> String {
    let turn = view.record.as_ref().map_or(0, |r| r.turn);
    let state = state.map_or("unknown".to_string(), |s| s.to_string());
    format!("{state}, turn {turn}")
}

/// The answer to a call the client cancelled (which it does not read).
pub(crate) fn cancelled() -> ToolError {
    ToolError { kind: "cancelled", message: "cancelled by the client".into(), hint: None }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
