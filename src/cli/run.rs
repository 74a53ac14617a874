//! `reins run`: validate everything, claim the id, start a host, and (for
//! detached and tmux sessions) wait until it is up before answering.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::adapter::{self, ContextMode, Profile, Transport};
use crate::error::{CliError, CliResult, code};
use crate::host::{self, ApprovalPolicy, LaunchRecord, LaunchSpec, RateLimitPolicy, Terminal};
use crate::ids;
use crate::store::events::{EventKind, EventLine, TmuxTarget};
use crate::store::exit_record::ExitReason;
use crate::store::follow::{Follower, SessionFile};
use crate::store::lock::{self, ClaimLock};
use crate::store::paths::{SessionPaths, StateRoot};
use crate::store::registry::{RunMode, Size, WatchedFile};
use crate::store::transcript::LogLimit;
use crate::store::{fsutil, scope};
use crate::tmux::{NewWindow, Tmux};

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
  reins run claude --tmux --watch-file review/notes.md   hear about new review notes
  reins run claude --worktree --detach         in a new worktree on branch reins/ID

Exit codes: 0 the session is up (--detach, --tmux); in this terminal, the
agent's own exit status. 1 it could not start (or the id is taken), 2 bad
input, 124 it did not come up within --timeout. With --watch, those of
`reins watch`.")]
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
    #[arg(long, conflicts_with = "transport")]
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
    #[arg(long, value_name = "PATH", conflicts_with = "no_record")]
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
    #[command(flatten)]
    watch_options: crate::cli::watch::WatchArgs,
    #[command(flatten)]
    worktree: crate::cli::worktree::RunArgs,
    /// Arguments for the agent.
    #[arg(last = true, value_name = "AGENT ARGS")]
    agent_args: Vec<String>,
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

/// What `run --detach` and `run --tmux` print.
#[derive(Debug, Serialize)]
pub(crate) struct Started {
    ok: bool,
    pub(crate) id: String,
    pub(crate) run: String,
    agent: String,
    adapter: String,
    mode: &'static str,
    /// The agent's pid.
    pid: u32,
    host_pid: u32,
    socket: PathBuf,
    session_dir: PathBuf,
    events: PathBuf,
    transcript: PathBuf,
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tmux: Option<TmuxTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    watch_files: Vec<WatchedFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    buddy_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worktree: Option<crate::worktree::WorktreeRecord>,
    /// The session this one was started from inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<crate::trust::Parent>,
}

/// What other commands that start sessions (`buddy`) add to `run`'s flags.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// The session is a buddy of this worker (recorded in its registry).
    pub(crate) buddy_of: Option<String>,
}

/// How a started session went: a foreground session has ended with an exit
/// code; a detached or tmux session is up.
#[derive(Debug)]
pub(crate) enum Outcome {
    Ended(u8),
    Started(Box<Started>),
}

impl Args {
    /// `run`'s flags from a list (`["mock", "--id", "x", "--detach"]`):
    /// how other commands start a session with exactly run's defaults and
    /// checks.
    pub(crate) fn from_flags(flags: &[String]) -> Result<Args, CliError> {
        use clap::{Args as _, FromArgMatches as _};
        let command = Args::augment_args(clap::Command::new("run").no_binary_name(true));
        command
            .try_get_matches_from(flags)
            .and_then(|matches| Args::from_arg_matches(&matches))
            .map_err(|err| CliError::usage(err.to_string().trim_end().to_string()))
    }
}

pub(crate) fn run(args: Args) -> CliResult {
    let watch = args.watch.then(|| args.watch_options.clone());
    let timeout = args.timeout;
    match start(args, Extra::default())? {
        Outcome::Ended(code) => Ok(code),
        Outcome::Started(started) => {
            crate::cli::print_json(&started)?;
            match watch {
                Some(options) => {
                    let paths = StateRoot::from_env()?.session(&started.scope, &started.id);
                    crate::cli::watch::after_run(paths, &options, timeout)
                }
                None => Ok(code::OK),
            }
        }
    }
}

/// Starts a session as `run` does, with `extra` on top of its flags.
pub(crate) fn start(mut args: Args, extra: Extra) -> Result<Outcome, CliError> {
    args.worktree.take_agent(&mut args.agent);
    // `reins run --tmux mock`: clap gave the agent to --tmux as its NAME.
    if args.agent.is_none()
        && let Some(name) = args.tmux.take().filter(|n| !n.is_empty())
    {
        args.agent = Some(name);
        args.tmux = Some(String::new());
    }
    let agent = args.agent.clone().ok_or_else(|| {
        CliError::usage("which agent? e.g. `reins run mock --detach`")
            .hint("AGENT is a profile (`reins adapters list`) or any program on PATH")
    })?;
    if let Some(id) = &args.id {
        ids::validate(id)?;
    }
    let meta = parse_meta(args.meta.as_deref())?;
    let cwd = resolve_cwd(args.cwd.as_deref())?;
    let watch_files = resolve_watch_files(&cwd, &args.watch_file)?;
    let worktree = args.worktree.plan(&cwd)?;
    let (profile, command) = resolve_agent(&agent, args.adapter.as_deref(), &args.agent_args)?;
    let transport = match (args.pty, args.transport) {
        (true, _) => Transport::Pty,
        (false, Some(t)) => t,
        (false, None) => profile.transport,
    };
    let command = match transport {
        Transport::Pty => {
            let (prog, rest) = command.split_first().expect("resolve_agent names a program");
            with_program(prog, rest)?
        }
        Transport::CodexAppServer => {
            let spec = profile.app_server.as_ref().ok_or_else(|| {
                CliError::usage(format!(
                    "the {} profile has no codex-app-server transport",
                    profile.name
                ))
                .hint("use --pty, or an agent that has one (codex)")
            })?;
            let (prog, rest) = spec.command.split_first().expect("validated: a command");
            let mut argv = with_program(prog, rest)?;
            argv.extend(args.agent_args.iter().cloned());
            argv
        }
        Transport::ClaudeStreamJson => {
            let spec = profile.stream_json.as_ref().ok_or_else(|| {
                CliError::usage(format!(
                    "the {} profile has no claude-stream-json transport",
                    profile.name
                ))
                .hint("use --pty, or an agent that has one (claude)")
            })?;
            let (prog, rest) = spec.command.split_first().expect("validated: a command");
            let mut argv = with_program(prog, rest)?;
            if args.approve == ApprovalPolicy::Auto {
                argv.extend(spec.auto_approve_args.iter().cloned());
            }
            argv.extend(args.agent_args.iter().cloned());
            argv
        }
    };
    if args.sandbox.is_some() && transport != Transport::CodexAppServer {
        return Err(CliError::usage("--sandbox applies to the codex-app-server transport only"));
    }
    if args.context.is_some() && profile.launch.context == ContextMode::Unsupported {
        return Err(CliError::usage(format!("the {} adapter cannot take --context", profile.name)));
    }
    if !args.watch && args.watch_options.any() {
        return Err(CliError::usage("watch options need --watch")
            .hint("e.g. `reins run AGENT --watch --preset plan`, or `reins watch --id ID ...`"));
    }
    if args.watch {
        args.watch_options.options(args.timeout)?; // refuse bad options before starting anything
    }
    let mode = match (args.detach, &args.tmux) {
        (true, _) => RunMode::Detached,
        (false, Some(_)) => RunMode::Tmux,
        (false, None) if args.watch => RunMode::Detached,
        (false, None) => RunMode::Foreground,
    };
    if mode == RunMode::Tmux {
        Tmux::check_installed()?;
    }
    let state = StateRoot::from_env()?;
    state.ensure()?;
    let scope = scope::scope_of(&cwd);
    let id = match &args.id {
        Some(id) => id.clone(),
        None => ids::random(|id| {
            let paths = state.session(&scope.name, id);
            lock::host_alive(&paths.host_lock()) || paths.worktree_record().exists()
        }),
    };
    let paths = state.session(&scope.name, &id);
    paths.check_socket_len()?;
    paths.ensure_dirs().map_err(|err| {
        CliError::failure(format!("cannot create {}: {err}", paths.dir.display()))
    })?;
    let agent_control = crate::config::agent_control()?;
    let claim = claim_id(&paths)?;
    let worktree = match worktree {
        Some(plan) => Some(plan.create(&id, &scope.name, &paths.worktree_record())?),
        None => None,
    };
    let cwd = worktree.as_ref().map_or(cwd, |w| w.cwd.clone());

    let spec = LaunchSpec {
        reins_version: Some(env!("CARGO_PKG_VERSION").into()),
        state_root: state.root().to_path_buf(),
        runtime_dir: state.runtime().to_path_buf(),
        scope: scope.name.clone(),
        repo_root: scope.repo_root.clone(),
        id: id.clone(),
        run: ids::random_hex(8),
        agent,
        profile_toml: profile.text.clone(),
        command,
        cwd,
        env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        mode,
        size: args.size,
        tmux: None,
        spawner_pane: std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty()),
        description: args.description.clone(),
        meta,
        context_message: None,
        auto_stop: args.auto_stop,
        inbox_ttl_ms: args.inbox_ttl.as_millis().min(u128::from(u64::MAX)) as u64,
        approve: args.approve,
        transport,
        sandbox: args.sandbox.clone(),
        record: match (&args.record, args.no_record) {
            (_, true) => None,
            (Some(path), false) => Some(record_path(path)?),
            (None, false) => Some(state.root().join("dispatch.jsonl")),
        },
        max_runtime_ms: args.max_runtime.map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
        on_rate_limit: args.on_rate_limit,
        watch_files,
        buddy_of: extra.buddy_of,
        worktree: worktree.map(|w| w.record),
        max_log: args.max_log,
        parent: crate::trust::Parent::of_caller(),
        agent_control,
    };

    let window = (mode == RunMode::Tmux)
        .then(|| args.tmux.as_deref().filter(|n| !n.is_empty()).unwrap_or(&id).to_string());
    let record = LaunchRecord {
        spec: LaunchSpec { env: Vec::new(), ..spec.clone() },
        context: args.context.clone(),
        window: window.clone(),
    };
    record.write(&paths.launch_record()).map_err(|err| {
        CliError::failure(format!("cannot write {}: {err}", paths.launch_record().display()))
    })?;
    let spec = with_context(spec, &profile, args.context.as_deref());

    match mode {
        RunMode::Foreground => {
            eprintln!(
                "reins: session {id} ({}); stop it with `reins stop --id {id}`",
                profile.name
            );
            host::run(spec, Terminal::Relay, Some(claim)).map(Outcome::Ended)
        }
        RunMode::Detached | RunMode::Tmux => {
            let started = start_session(spec, &paths, window.as_deref(), args.timeout)?;
            drop(claim);
            Ok(Outcome::Started(Box::new(started)))
        }
    }
}

/// Hands the first task to the agent as the profile says: as its first
/// message, or as its last argument.
fn with_context(mut spec: LaunchSpec, profile: &Profile, context: Option<&str>) -> LaunchSpec {
    if let Some(context) = context {
        let task = format!("[reins session id={}] {context}", spec.id);
        match profile.launch.context {
            ContextMode::Message => spec.context_message = Some(task),
            _ => spec.command.push(task),
        }
    }
    spec
}

/// Starts a detached or tmux session (the caller holds the id's claim)
/// and waits until it is up.
fn start_session(
    spec: LaunchSpec,
    paths: &SessionPaths,
    window: Option<&str>,
    timeout: Duration,
) -> Result<Started, CliError> {
    match (spec.mode, window) {
        (RunMode::Tmux, Some(window)) => start_in_tmux(spec, paths, window, timeout),
        _ => crate::cli::runtime().block_on(start_detached(&spec, paths, timeout)),
    }
}

/// Starts a session again from its launch record, as `reins watch` does
/// after the agent died: same id, cwd, agent, profile and options, a new
/// run, this process's environment, and `note` added to the first task.
/// A session that ran in the foreground comes back detached.
pub(crate) fn relaunch(
    record: &LaunchRecord,
    note: &str,
    timeout: Duration,
) -> Result<Started, CliError> {
    let mut spec = record.spec.clone();
    // This reins starts it now, whichever wrote the record.
    spec.reins_version = Some(env!("CARGO_PKG_VERSION").into());
    crate::worktree::check_restart(&spec.id, spec.worktree.as_ref())?;
    let state = spec.state();
    let paths = state.session(&spec.scope, &spec.id);
    let claim = claim_id(&paths)?;
    let profile =
        crate::adapter::Profile::parse(&spec.profile_toml, crate::adapter::ProfileSource::Builtin)
            .map_err(|err| CliError::failure(format!("the recorded profile is invalid: {err}")))?;
    spec.run = ids::random_hex(8);
    spec.env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    spec.tmux = None;
    if spec.mode == RunMode::Foreground {
        spec.mode = RunMode::Detached;
    }
    let context = match &record.context {
        Some(context) => format!("{context}\n\n{note}"),
        None => note.to_string(),
    };
    let spec = if profile.launch.context == ContextMode::Unsupported {
        spec
    } else {
        with_context(spec, &profile, Some(&context))
    };
    let started = start_session(spec, &paths, record.window.as_deref(), timeout)?;
    drop(claim);
    Ok(started)
}

/// `--record PATH`, absolute, in a directory that exists.
fn record_path(path: &Path) -> Result<PathBuf, CliError> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|err| CliError::failure(format!("cannot read the current directory: {err}")))?
            .join(path)
    };
    if path.is_dir() {
        return Err(CliError::usage(format!("--record {}: is a directory", path.display()))
            .hint("name a file, e.g. --record runs/dispatch.jsonl"));
    }
    match path.parent() {
        Some(dir) if dir.is_dir() => Ok(path),
        _ => Err(CliError::usage(format!(
            "--record {}: its directory does not exist",
            path.display()
        ))
        .hint("create the directory first")),
    }
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

fn resolve_cwd(cwd: Option<&Path>) -> Result<PathBuf, CliError> {
    let dir = match cwd {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir().map_err(|err| {
            CliError::failure(format!("cannot read the current directory: {err}"))
        })?,
    };
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(CliError::usage(format!("--cwd {}: not a directory", dir.display())));
        }
        Err(err) => {
            return Err(CliError::usage(format!("--cwd {}: {err}", dir.display()))
                .hint("give an existing directory"));
        }
    }
    std::fs::canonicalize(&dir)
        .map_err(|err| CliError::failure(format!("cannot resolve {}: {err}", dir.display())))
}

/// Resolves `--watch-file` paths against the agent's working directory,
/// creating missing parent directories (the agent or a colleague may be
/// about to write the first report there). The file itself need not exist.
fn resolve_watch_files(cwd: &Path, given: &[PathBuf]) -> Result<Vec<WatchedFile>, CliError> {
    let mut files: Vec<WatchedFile> = Vec::new();
    for path in given {
        let shown = path.display().to_string();
        let bad = |what: &str| {
            CliError::usage(format!("--watch-file {shown}: {what}"))
                .hint("give the path of a file, e.g. --watch-file review/notes.md")
        };
        let full = cwd.join(path);
        let (Some(dir), Some(name)) = (full.parent(), full.file_name()) else {
            return Err(bad("not a file name"));
        };
        if name == ".." {
            return Err(bad("not a file name"));
        }
        std::fs::create_dir_all(dir).map_err(|err| {
            CliError::failure(format!(
                "--watch-file {shown}: cannot create {}: {err}",
                dir.display()
            ))
            .hint("create the directory yourself, or watch a file somewhere you can write")
        })?;
        let dir = std::fs::canonicalize(dir).map_err(|err| {
            CliError::failure(format!(
                "--watch-file {shown}: cannot resolve {}: {err}",
                dir.display()
            ))
        })?;
        let full = dir.join(name);
        if full.is_dir() {
            return Err(bad("is a directory; reins watches files"));
        }
        if !files.iter().any(|f| f.path == full) {
            files.push(WatchedFile { path: full, as_given: shown });
        }
    }
    Ok(files)
}

/// Picks the profile and the agent's terminal-UI command line (not yet
/// resolved on PATH: a protocol transport may run something else).
fn resolve_agent(
    agent: &str,
    adapter_name: Option<&str>,
    agent_args: &[String],
) -> Result<(Profile, Vec<String>), CliError> {
    let named = |name: &str| -> Result<Profile, CliError> {
        adapter::find(name)?.ok_or_else(|| {
            CliError::usage(format!("no adapter profile named {}", ids::quoted(name)))
                .hint("`reins adapters list` shows the profiles")
        })
    };
    let (profile, mut argv) = match adapter_name {
        Some(name) => (named(name)?, vec![agent.to_string()]),
        None => match adapter::find(agent)? {
            Some(profile) if profile.launch.command.is_empty() => {
                // `reins run generic -- prog args`
                let Some((prog, rest)) = agent_args.split_first() else {
                    return Err(CliError::usage(format!(
                        "the {agent} profile needs a program: `reins run {agent} -- PROGRAM`"
                    ))
                    .hint("or simply `reins run PROGRAM`"));
                };
                let mut argv = vec![prog.clone()];
                argv.extend(rest.iter().cloned());
                return Ok((profile, argv));
            }
            Some(profile) => {
                let argv = profile.launch.command.clone();
                (profile, argv)
            }
            None => (named("generic")?, vec![agent.to_string()]),
        },
    };
    if argv.is_empty() {
        argv.push(agent.to_string());
    }
    argv.extend(agent_args.iter().cloned());
    Ok((profile, argv))
}

/// Resolves the program to an absolute, executable path.
fn with_program(prog: &str, rest: &[String]) -> Result<Vec<String>, CliError> {
    let path = if prog == "{reins}" {
        std::env::current_exe()
            .map_err(|err| CliError::failure(format!("cannot find the reins binary: {err}")))?
    } else {
        find_program(prog)?
    };
    let program = path.display().to_string();
    let mut argv: Vec<String> = rest.iter().map(|a| a.replace("{reins}", &program)).collect();
    argv.insert(0, program);
    Ok(argv)
}

fn find_program(prog: &str) -> Result<PathBuf, CliError> {
    let not_found = || {
        let known: Vec<String> =
            adapter::list().map(|l| l.into_iter().map(|p| p.name).collect()).unwrap_or_default();
        CliError::failure(format!("agent program {} not found in PATH", ids::quoted(prog)))
            .hint(format!("install it or give its path; known agents: {}", known.join(", ")))
    };
    let candidate = if prog.contains('/') {
        let path = PathBuf::from(prog);
        if !path.exists() {
            return Err(CliError::failure(format!("agent program {prog} does not exist")));
        }
        path
    } else {
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path_var)
            .map(|dir| dir.join(prog))
            .find(|p| p.is_file())
            .ok_or_else(not_found)?
    };
    let meta = std::fs::metadata(&candidate)
        .map_err(|err| CliError::failure(format!("cannot use {}: {err}", candidate.display())))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(CliError::failure(format!(
            "agent program {} is not an executable file",
            candidate.display()
        ))
        .hint(format!("chmod +x {}", candidate.display())));
    }
    std::fs::canonicalize(&candidate)
        .map_err(|err| CliError::failure(format!("cannot resolve {}: {err}", candidate.display())))
}

/// Takes the id for this run: refuses a live session's id, and serializes
/// racing `run`s for the same id so exactly one of them wins.
fn claim_id(paths: &SessionPaths) -> Result<ClaimLock, CliError> {
    let busy = || {
        CliError::failure(format!("session {} is already running", paths.id))
            .hint(format!("use another --id, or stop it first: reins stop --id {}", paths.id))
    };
    let claim = ClaimLock::try_claim(&paths.claim_lock())
        .map_err(|err| CliError::failure(format!("cannot lock {}: {err}", paths.dir.display())))?
        .ok_or_else(|| {
            CliError::failure(format!(
                "session {} is being started by another `reins run`",
                paths.id
            ))
            .hint("use another --id")
        })?;
    if lock::host_alive(&paths.host_lock()) {
        return Err(busy());
    }
    finish_dead_run(paths)?;
    Ok(claim)
}

/// A previous run of this id whose host died (its registry is still there)
/// is finished off before a new one starts: its run is closed in the event
/// log and whatever it left running is killed, so no agent of it runs on
/// beside the new one, tracked by nothing.
fn finish_dead_run(paths: &SessionPaths) -> Result<(), CliError> {
    let view = crate::control::lookup::SessionView::read(paths.clone());
    if view.liveness != crate::control::lookup::Liveness::Dead {
        return Ok(());
    }
    let cleaned =
        crate::control::cleanup::clean_dead(&view, ExitReason::Failure).map_err(|err| {
            CliError::failure(format!("cannot clean up the previous run of {}: {err}", paths.id))
                .hint(format!(
                    "reins gc, then run again; {} has the details",
                    paths.host_log().display()
                ))
        })?;
    if let Some(cleaned) = cleaned.filter(|c| !c.killed.is_empty()) {
        eprintln!(
            "reins: the previous run of {} lost its host; killed what it left running (pids {:?})",
            paths.id, cleaned.killed
        );
    }
    Ok(())
}

/// The session host's program: `reins-host` beside this binary (only the
/// host's code, so less of it stays resident per session), else this
/// binary's `__host`.
fn host_program() -> std::io::Result<(PathBuf, Option<&'static str>)> {
    let exe = std::env::current_exe()?;
    let host = exe.with_file_name("reins-host");
    Ok(if host.is_file() { (host, None) } else { (exe, Some("__host")) })
}

/// Starts a headless host and waits for its `started` event.
async fn start_detached(
    spec: &LaunchSpec,
    paths: &SessionPaths,
    timeout: Duration,
) -> Result<Started, CliError> {
    let offset = std::fs::metadata(paths.events()).map_or(0, |m| m.len());
    let mut follower = Follower::new(paths, SessionFile::Events, offset);
    let log = fsutil::open_append(&paths.host_log())?;
    let (exe, sub) = host_program()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(sub)
        .current_dir(&spec.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    // SAFETY: setsid(2) is async-signal-safe. The host gets its own session
    // so the caller's terminal (hangups, Ctrl-C) cannot reach it.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|err| CliError::failure(format!("cannot start the session host: {err}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &spec.to_json()).await?;
    drop(stdin);

    let deadline = tokio::time::Instant::now() + timeout;
    let mut host_exited = false;
    loop {
        if let Some(started) = scan_for_start(&mut follower, spec, paths)? {
            return Ok(started);
        }
        if host_exited {
            return Err(host_died(paths));
        }
        tokio::select! {
            _ = follower.changed() => {}
            _ = child.wait(), if !host_exited => host_exited = true,
            _ = tokio::time::sleep_until(deadline) => return Err(host_timeout(spec, paths, timeout)),
        }
    }
}

/// Opens a tmux window running the host, hands it the spec through a FIFO,
/// and waits for its `started` event.
fn start_in_tmux(
    mut spec: LaunchSpec,
    paths: &SessionPaths,
    window: &str,
    timeout: Duration,
) -> Result<Started, CliError> {
    let fifo = paths.launch_fifo();
    fsutil::remove_if_exists(&fifo)?;
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600))
        .map_err(|err| CliError::failure(format!("cannot create {}: {err}", fifo.display())))?;
    let (exe, sub) = host_program()?;
    let mut command = vec![exe.display().to_string()];
    command.extend(sub.map(String::from));
    command.extend(["--relay".into(), "--spec-fifo".into(), fifo.display().to_string()]);
    let tmux = Tmux::for_caller();
    let target = match tmux.new_window(&NewWindow {
        window_name: window,
        cwd: &spec.cwd,
        command: &command,
    }) {
        Ok(target) => target,
        Err(err) => {
            let _ = fsutil::remove_if_exists(&fifo);
            return Err(err.into());
        }
    };
    spec.tmux = Some(target.clone());
    let offset = std::fs::metadata(paths.events()).map_or(0, |m| m.len());
    let runtime = crate::cli::runtime();
    let result = runtime.block_on(async {
        let mut follower = Follower::new(paths, SessionFile::Events, offset);
        let delivered = write_fifo(&fifo, spec.to_json(), timeout);
        let _ = fsutil::remove_if_exists(&fifo);
        if !delivered {
            return Err(host_timeout(&spec, paths, timeout));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(started) = scan_for_start(&mut follower, &spec, paths)? {
                return Ok(started);
            }
            tokio::select! {
                _ = follower.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(host_timeout(&spec, paths, timeout));
                }
            }
        }
    });
    if result.is_err() && !lock::host_alive(&paths.host_lock()) {
        // Nothing came up in the window: do not leave an empty pane behind.
        let _ = tmux.kill_pane(&target.pane);
    }
    result
}

/// Writes the spec into the FIFO once the host opens it. Returns false if
/// the host did not open it in time.
fn write_fifo(fifo: &Path, data: Vec<u8>, timeout: Duration) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.to_path_buf();
    std::thread::spawn(move || {
        let result = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&data));
        let _ = tx.send(result.is_ok());
    });
    rx.recv_timeout(timeout).unwrap_or(false)
}

/// Looks through newly appended events for this run's `started` (success)
/// or `exited` (the host could not start the agent).
fn scan_for_start(
    follower: &mut Follower,
    spec: &LaunchSpec,
    paths: &SessionPaths,
) -> Result<Option<Started>, CliError> {
    for line in follower.read_lines()? {
        let Some(event) = EventLine::parse(&line) else {
            continue;
        };
        if event.header.run != spec.run {
            continue;
        }
        match event.kind {
            EventKind::Started(started) => {
                return Ok(Some(Started {
                    ok: true,
                    id: spec.id.clone(),
                    run: spec.run.clone(),
                    agent: spec.agent.clone(),
                    adapter: started.adapter,
                    mode: spec.mode.as_str(),
                    pid: started.pid,
                    host_pid: started.host_pid,
                    socket: paths.socket.clone(),
                    session_dir: paths.dir.clone(),
                    events: paths.events(),
                    transcript: paths.transcript(),
                    scope: spec.scope.clone(),
                    tmux: started.tmux,
                    description: spec.description.clone(),
                    watch_files: spec.watch_files.clone(),
                    buddy_of: spec.buddy_of.clone(),
                    worktree: spec.worktree.clone(),
                    parent: spec.parent.clone(),
                }));
            }
            EventKind::Exited { detail, .. } => {
                return Err(CliError::failure(format!(
                    "session {} did not start: {}",
                    spec.id,
                    detail.unwrap_or_else(|| "the agent exited at once".into())
                ))
                .hint(format!("the host's log is {}", paths.host_log().display())));
            }
            _ => {}
        }
    }
    Ok(None)
}

fn host_died(paths: &SessionPaths) -> CliError {
    CliError::failure(format!("the session host for {} exited before it came up", paths.id))
        .hint(format!("see {}", paths.host_log().display()))
}

fn host_timeout(spec: &LaunchSpec, paths: &SessionPaths, timeout: Duration) -> CliError {
    CliError::timeout(format!(
        "session {} did not come up within {:.1}s",
        spec.id,
        timeout.as_secs_f64()
    ))
    .hint(format!(
        "it may still be starting: `reins status --id {}`; the host's log is {}",
        spec.id,
        paths.host_log().display()
    ))
}
