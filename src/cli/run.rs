//! `reins run`: validate everything, claim the id, start a host, and (for
//! detached and tmux sessions) wait until it is up before answering.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::adapter::Transport;
use crate::control::{
    self,
    start::{Mode, Record, Start, Started, Worktree},
};
use crate::error::{CliError, CliResult, code};
use crate::host::{self, ApprovalPolicy, RateLimitPolicy, Terminal};
use crate::store::paths::StateRoot;
use crate::store::registry::{RunMode, Size};
use crate::store::transcript::LogLimit;

/// Start an agent in a session: in this terminal, headless, or in tmux.
///
/// AGENT is an adapter profile (`mock`, `generic`, and any profile in
/// ~/.config/reins/adapters) or any program on PATH, which then runs with
/// the `generic` profile. Arguments after `--` go to the agent.
///
/// Modes: by default the agent runs in this terminal and `run` exits with
/// its exit code. `--detach` runs it headless and prints one JSON line once
/// the session is up. `--tmux [NAME]` opens a window named NAME (default:
/// the id) in your tmux session, or in a `reins` tmux session when you are
/// not inside tmux, and prints one JSON line.
///
/// The agent gets REINS_ID, REINS_SESSION_DIR and, when you ran this from a
/// tmux pane, REINS_SPAWNER_PANE (your pane, so it can report back).
///
/// `--watch-file PATH` tells the agent when a file changes: once the file
/// has been quiet for a second after being created, written or renamed
/// into place, the message `file-change-hook: read PATH` is queued for the
/// agent like `reins send --no-wait` (delivered when it is ready, in order).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins run mock --id demo --detach            headless mock agent
  reins run mock --tmux                        in a tmux window named after the id
  reins run bash --id sh1 --detach             any program, generic profile
  reins run mock --detach -- --work 2          arguments after -- go to the agent
  reins run mock --context 'fix the tests' --meta '{\"ticket\":\"T-1\"}' --detach
  reins run codex --context 'fix the build' --watch --preset impl   start it and watch it
  reins run codex --id w3 --context 'fix the build' --supervised   `reins supervise` watches it
  reins run claude --tmux --watch-file review/notes.md   hear about new review notes
  reins run claude --worktree --detach         in a new worktree on branch reins/ID

Exit codes: 0 the session is up (--detach, --tmux); in this terminal, the
agent's own exit status. 1 it could not start (or the id is taken), 2 bad
input, 124 it did not come up within --timeout. With --watch, those of
`reins watch`.

A session started with --watch or --supervised keeps its watch options in
its launch record: whenever nobody else watches it (the terminal of
`run --watch` closed, or it was --supervised), a running `reins supervise`
does, until the session ends.")]
pub(crate) struct Args {
    /// Profile name or program to run.
    #[arg(value_name = "AGENT")]
    agent: Option<String>,
    /// Session id (letters, digits, . _ -); a readable random one if absent.
    #[arg(long)]
    id: Option<String>,
    /// Run headless and print the session as JSON once it is up.
    #[arg(long, conflicts_with = "tmux")]
    detach: bool,
    /// Run in a new tmux window (named NAME, default the id).
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    tmux: Option<String>,
    /// Working directory of the agent (default: the current directory).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// A note shown by `status`.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// The first task, handed to the agent as `[reins session id=ID] TEXT`:
    /// as its first message, or as its last argument (the profile says).
    #[arg(long, value_name = "TEXT")]
    context: Option<String>,
    /// A JSON object kept with the session and echoed in its `started` event.
    #[arg(long, value_name = "JSON")]
    meta: Option<String>,
    /// Stop the session once its first task (the --context) is done and
    /// no message waits in its inbox.
    #[arg(long, requires = "context")]
    auto_stop: bool,
    /// How long messages sent to the session may wait in its inbox before
    /// they expire (`send --ttl` overrides it per message).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::time::parse_duration)]
    inbox_ttl: Duration,
    /// When the agent asks for approval: leave it to `reins approve` (ask),
    /// allow everything (auto), or refuse everything (never).
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = ApprovalPolicy::Ask)]
    approve: ApprovalPolicy,
    /// Drive the agent through its terminal UI, even if it has a
    /// structured transport (for codex: its TUI instead of app-server).
    #[arg(long, alias = "legacy-pty", conflicts_with = "transport")]
    pty: bool,
    /// How to talk to the agent: `pty` (its terminal UI),
    /// `codex-app-server` or `claude-stream-json` (alias `stream-json`).
    /// Default: the profile's (codex: app-server, others: pty).
    #[arg(long, value_name = "TRANSPORT", value_enum)]
    transport: Option<Transport>,
    /// Codex's sandbox for the app-server transport: read-only,
    /// workspace-write or danger-full-access (default: codex's config).
    #[arg(long, value_name = "MODE", value_parser = ["read-only", "workspace-write", "danger-full-access"])]
    sandbox: Option<String>,
    /// Drive the program with this adapter profile instead of guessing.
    #[arg(long, value_name = "PROFILE")]
    adapter: Option<String>,
    /// Append the session's dispatch record line (who ran what, how it
    /// ended, tokens, git changes) to this file instead of
    /// $REINS_STATE_DIR/dispatch.jsonl.
    #[arg(long, value_name = "PATH", alias = "summary-out", conflicts_with = "no_record")]
    record: Option<PathBuf>,
    /// Write no dispatch record line for this session.
    #[arg(long)]
    no_record: bool,
    /// When the agent hits a usage limit: `wait` for its reset (messages
    /// wait in the inbox; nothing is sent), or `resume`: send a message
    /// telling it to continue once the limit has reset (plus jitter).
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = RateLimitPolicy::Wait)]
    on_rate_limit: RateLimitPolicy,
    /// Stop the session after this long, whatever it is doing (its exit
    /// reason is then `timeout`).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    max_runtime: Option<Duration>,
    /// How long to wait for a detached or tmux session to come up.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::time::parse_duration)]
    timeout: Duration,
    /// Tell the agent `file-change-hook: read PATH` whenever PATH changes
    /// (relative to --cwd; repeatable). A missing parent directory is created.
    #[arg(long, value_name = "PATH")]
    watch_file: Vec<PathBuf>,
    /// Rotate the transcript when it reaches SIZE (e.g. 64M, 512K, 1G):
    /// `transcript.log` moves to `transcript.log.1`, replacing the one
    /// before, so the session keeps at most about twice SIZE. `none`: no
    /// limit.
    #[arg(long, value_name = "SIZE", default_value = crate::store::transcript::DEFAULT_MAX_LOG)]
    max_log: LogLimit,
    /// Screen size of a headless session, COLSxROWS.
    #[arg(long, value_name = "COLSxROWS", default_value = "120x40", value_parser = parse_size)]
    size: Size,
    /// Watch the session from this terminal once it is up (it runs
    /// detached unless --tmux): nudge it when it stalls, restart it when
    /// its agent dies, exit 2 when a person is needed (`reins watch --help`).
    #[arg(long)]
    watch: bool,
    /// Leave the watch to `reins supervise` (the service; see `reins
    /// service --help`): the session asks to be watched with the watch
    /// options given here, and `run` returns once it is up.
    #[arg(long, conflicts_with = "watch")]
    supervised: bool,
    #[command(flatten)]
    watch_options: crate::cli::watch::WatchArgs,
    #[command(flatten)]
    worktree: crate::cli::worktree::RunArgs,
    /// harnex's `--port` (its TCP API): refused with a hint (`--host` is
    /// an ssh host here).
    #[arg(long, value_name = "PORT", hide = true)]
    port: Option<String>,
    /// Arguments for the agent.
    #[arg(last = true, value_name = "AGENT ARGS")]
    agent_args: Vec<String>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

fn parse_size(s: &str) -> Result<Size, String> {
    let (cols, rows) = s.split_once('x').ok_or("use COLSxROWS, e.g. 120x40")?;
    let cols: u16 = cols.parse().map_err(|_| "COLS must be a number")?;
    let rows: u16 = rows.parse().map_err(|_| "ROWS must be a number")?;
    let size = Size { rows, cols };
    if size.clamped() != size {
        let (min, max) = (Size::MIN, Size::MAX);
        return Err(format!(
            "size must be between {}x{} and {}x{}",
            min.cols, min.rows, max.cols, max.rows
        ));
    }
    Ok(size)
}

impl Args {
    /// The session to start, from the flags (the agent, mode and options).
    fn start(mut self) -> Result<(Start, bool), CliError> {
        if self.port.is_some() {
            return Err(crate::cli::compat::unsupported(
                "--port",
                "reins sessions listen on a private Unix socket, not on TCP",
                "drop it: every command finds the session by its --id",
            ));
        }
        self.worktree.take_agent(&mut self.agent);
        // `reins run --tmux mock`: clap gave the agent to --tmux as its NAME.
        if self.agent.is_none()
            && let Some(name) = self.tmux.take().filter(|n| !n.is_empty())
        {
            self.agent = Some(name);
            self.tmux = Some(String::new());
        }
        let agent = self.agent.clone().ok_or_else(|| {
            CliError::usage("which agent? e.g. `reins run mock --detach`")
                .hint("AGENT is a profile (`reins adapters list`) or any program on PATH")
        })?;
        let watched = self.watch || self.supervised;
        if !watched && self.watch_options.any() {
            return Err(CliError::usage("watch options need --watch").hint(
                "e.g. `reins run AGENT --watch --preset plan`, or `reins watch --id ID ...`",
            ));
        }
        if self.supervised && self.watch_options.on_exit_or_json() {
            return Err(CliError::usage("--on-exit and --json are for --watch").hint(
                "a --supervised session is watched by `reins supervise`, not by this `run`",
            ));
        }
        if self.supervised && !self.detach && self.tmux.is_none() {
            self.detach = true; // nobody is left in this terminal to run it
        }
        if watched {
            self.watch_options.options(self.timeout)?; // refuse bad options before starting
        }
        let mode = match (self.detach, self.tmux) {
            (true, _) => Mode::Detached,
            (false, Some(window)) => Mode::Tmux { window: Some(window).filter(|w| !w.is_empty()) },
            (false, None) if self.watch => Mode::Detached,
            (false, None) => Mode::Foreground,
        };
        if mode == Mode::Foreground && !crate::term::is_tty(rustix::stdio::stdin()) {
            return Err(CliError::usage(
                "the agent would run in this terminal, but standard input is not a terminal",
            )
            .hint(format!(
                "run it headless with `reins run {agent} --detach` (or in tmux with --tmux), then \
                 talk to it with `reins send`"
            )));
        }
        let start = Start {
            agent,
            adapter: self.adapter,
            agent_args: self.agent_args,
            id: self.id,
            mode,
            cwd: self.cwd,
            description: self.description,
            context: self.context,
            meta: parse_meta(self.meta.as_deref())?,
            auto_stop: self.auto_stop,
            inbox_ttl: self.inbox_ttl,
            approve: self.approve,
            transport: if self.pty { Some(Transport::Pty) } else { self.transport },
            sandbox: self.sandbox,
            record: match (self.record, self.no_record) {
                (_, true) => Record::None,
                (Some(path), false) => Record::To(path),
                (None, false) => Record::Default,
            },
            on_rate_limit: self.on_rate_limit,
            max_runtime: self.max_runtime,
            timeout: self.timeout,
            watch_files: self.watch_file,
            max_log: self.max_log,
            size: self.size,
            worktree: self.worktree.worktree.map(|branch| Worktree {
                branch: Some(branch).filter(|b| !b.is_empty()),
                base: self.worktree.base,
                root: self.worktree.worktree_root,
            }),
            buddy_of: None,
            env: Vec::new(),
            api_key_env: None,
            watch: watched.then(|| self.watch_options.to_flags()),
        };
        Ok((start, self.watch))
    }
}

impl Args {
    /// Whether it runs in this terminal (neither `--detach` nor `--tmux`).
    pub(crate) fn in_terminal(&self) -> bool {
        !self.detach && self.tmux.is_none()
    }
}

pub(crate) fn run(args: Args) -> CliResult {
    let watch = args.watch.then(|| args.watch_options.clone());
    let supervised = args.supervised;
    let timeout = args.timeout;
    let (start, _) = args.start()?;
    let Some(options) = watch else {
        return match launch(start)? {
            Outcome::Ended(code) => Ok(code),
            Outcome::Started(started) => {
                crate::cli::print_json(&started)?;
                if supervised {
                    warn_unsupervised(&started.id)?;
                }
                Ok(code::OK)
            }
        };
    };
    // The watch is taken before the session starts, so a running `reins
    // supervise` never gets to it first.
    let prepared = control::start::prepare(start)?;
    let paths = prepared.paths().clone();
    let lock = crate::watch::take_watch(&paths).map_err(CliError::failure)?;
    let started = crate::cli::runtime().block_on(prepared.launch())?;
    crate::cli::print_json(&started)?;
    crate::cli::watch::after_run(paths, &options, timeout, lock)
}

/// Tells the supervisor of a --supervised session; with none to watch it,
/// says so (not an error: one may start later, and then it is watched).
fn warn_unsupervised(id: &str) -> Result<(), CliError> {
    let state = StateRoot::from_env()?;
    if !crate::supervise::poke(&state) {
        eprintln!(
            "reins: no `reins supervise` runs for this state directory, so {id} is not watched \
             until one does: `reins service install` (or `reins watch --id {id}`)"
        );
    }
    Ok(())
}

/// How a started session went: a foreground session has ended with an exit
/// code; a detached or tmux session is up.
#[derive(Debug)]
pub(crate) enum Outcome {
    Ended(u8),
    Started(Box<Started>),
}

/// Starts a session for a command of this terminal: in the foreground the
/// host runs here until the agent exits; otherwise the session comes up
/// headless or in tmux.
pub(crate) fn launch(start: Start) -> Result<Outcome, CliError> {
    let prepared = control::start::prepare(start)?;
    if prepared.mode() == RunMode::Foreground {
        let id = prepared.id().to_string();
        eprintln!(
            "reins: session {id} ({}); stop it with `reins stop --id {id}`",
            prepared.profile
        );
        let (spec, claim) = prepared.into_foreground();
        return host::run(spec, Terminal::Relay, Some(claim)).map(Outcome::Ended);
    }
    let started = crate::cli::runtime().block_on(prepared.launch())?;
    Ok(Outcome::Started(Box::new(started)))
}

fn parse_meta(meta: Option<&str>) -> Result<Option<Value>, CliError> {
    let Some(text) = meta else { return Ok(None) };
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(CliError::usage("--meta must be a JSON object")
            .hint(r#"e.g. --meta '{"ticket":"T-12","model":"opus"}'"#)),
        Err(err) => Err(CliError::usage(format!("--meta is not valid JSON: {err}"))
            .hint(r#"e.g. --meta '{"ticket":"T-12"}' (quote it for the shell)"#)),
    }
}
