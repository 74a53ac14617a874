//! Starting a session: everything `reins run` checks and does, for every
//! caller (the command line, `buddy`, `dispatch`, chains, a watcher
//! restarting a session, front ends).
//!
//! [`prepare`] validates the options, claims the id (finishing off a
//! previous run whose host died), creates the worktree and writes
//! `launch.json`; then [`Prepared::launch`] starts a headless or tmux host
//! and waits until it is up, or the caller runs the host itself in its own
//! terminal ([`Prepared::into_foreground`]). [`relaunch`] starts a session
//! again from its launch record.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::adapter::{self, ContextMode, Profile, Transport};
use crate::error::CliError;
use crate::host::{ApprovalPolicy, LaunchRecord, LaunchSpec, RateLimitPolicy};
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

/// What to start: the options of `reins run`.
#[derive(Debug, Clone)]
pub(crate) struct Start {
    /// A profile name or a program on PATH.
    pub(crate) agent: String,
    /// Drive the program with this profile instead of guessing.
    pub(crate) adapter: Option<String>,
    /// Arguments for the agent.
    pub(crate) agent_args: Vec<String>,
    /// The session id; a readable random one if absent.
    pub(crate) id: Option<String>,
    pub(crate) mode: Mode,
    /// The agent's working directory (default: the current directory).
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) description: Option<String>,
    /// The first task.
    pub(crate) context: Option<String>,
    /// A JSON object kept with the session.
    pub(crate) meta: Option<Value>,
    /// Stop once the first task is done and nothing waits in the inbox.
    pub(crate) auto_stop: bool,
    pub(crate) inbox_ttl: Duration,
    pub(crate) approve: ApprovalPolicy,
    /// How to talk to the agent (default: the profile's).
    pub(crate) transport: Option<Transport>,
    /// Codex's sandbox (app-server transport only).
    pub(crate) sandbox: Option<String>,
    pub(crate) record: Record,
    pub(crate) on_rate_limit: RateLimitPolicy,
    pub(crate) max_runtime: Option<Duration>,
    /// How long a headless or tmux session may take to come up.
    pub(crate) timeout: Duration,
    /// Files whose changes are announced to the agent.
    pub(crate) watch_files: Vec<PathBuf>,
    pub(crate) max_log: LogLimit,
    /// Screen size of a headless session.
    pub(crate) size: Size,
    /// Run in a new git worktree.
    pub(crate) worktree: Option<Worktree>,
    /// The worker this session looks after (a buddy).
    pub(crate) buddy_of: Option<String>,
    /// Environment for the agent over the caller's (a model endpoint's);
    /// `{api_key}` in a value is filled from `api_key_env` at launch.
    pub(crate) env: Vec<(String, String)>,
    /// The variable holding the endpoint's key, if it has one.
    pub(crate) api_key_env: Option<String>,
    /// Watch flags the session asks to be watched with (kept in its launch
    /// record for `reins supervise`).
    pub(crate) watch: Option<Vec<String>>,
}

impl Start {
    /// `reins run AGENT` with every default.
    pub(crate) fn new(agent: impl Into<String>) -> Start {
        Start {
            agent: agent.into(),
            adapter: None,
            agent_args: Vec::new(),
            id: None,
            mode: Mode::Detached,
            cwd: None,
            description: None,
            context: None,
            meta: None,
            auto_stop: false,
            inbox_ttl: Duration::from_secs(30 * 60),
            approve: ApprovalPolicy::Ask,
            transport: None,
            sandbox: None,
            record: Record::Default,
            on_rate_limit: RateLimitPolicy::Wait,
            max_runtime: None,
            timeout: Duration::from_secs(10),
            watch_files: Vec::new(),
            max_log: LogLimit::default(),
            size: Size { cols: 120, rows: 40 },
            worktree: None,
            buddy_of: None,
            env: Vec::new(),
            api_key_env: None,
            watch: None,
        }
    }
}

/// Where the session shows its agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// In the caller's terminal (the caller runs the host).
    Foreground,
    /// Headless.
    Detached,
    /// In a tmux window named `window` (default: the id).
    Tmux { window: Option<String> },
}

/// Where the session's dispatch record line goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// `$REINS_STATE_DIR/dispatch.jsonl`.
    Default,
    To(PathBuf),
    None,
}

/// `run --worktree [BRANCH] [--base REV] [--worktree-root DIR]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Worktree {
    pub(crate) branch: Option<String>,
    pub(crate) base: Option<String>,
    pub(crate) root: Option<PathBuf>,
}

/// A session that is up: what `run --detach` and `run --tmux` print.
#[derive(Debug, Serialize)]
pub(crate) struct Started {
    pub(crate) ok: bool,
    pub(crate) id: String,
    pub(crate) run: String,
    pub(crate) agent: String,
    pub(crate) adapter: String,
    pub(crate) mode: &'static str,
    /// The agent's pid.
    pub(crate) pid: u32,
    pub(crate) host_pid: u32,
    pub(crate) socket: PathBuf,
    pub(crate) session_dir: PathBuf,
    pub(crate) events: PathBuf,
    pub(crate) transcript: PathBuf,
    pub(crate) scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tmux: Option<TmuxTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) watch_files: Vec<WatchedFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) buddy_of: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worktree: Option<crate::worktree::WorktreeRecord>,
    /// The session this one was started from inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<crate::trust::Parent>,
}

/// A session ready to start: validated, its id claimed, its launch
/// recorded.
#[derive(Debug)]
pub(crate) struct Prepared {
    spec: LaunchSpec,
    paths: SessionPaths,
    claim: ClaimLock,
    window: Option<String>,
    timeout: Duration,
    /// The profile's name.
    pub(crate) profile: String,
}

impl Prepared {
    pub(crate) fn id(&self) -> &str {
        &self.spec.id
    }

    pub(crate) fn mode(&self) -> RunMode {
        self.spec.mode
    }

    pub(crate) fn paths(&self) -> &SessionPaths {
        &self.paths
    }

    /// Starts the headless or tmux host and waits until it is up.
    pub(crate) async fn launch(self) -> Result<Started, CliError> {
        let started =
            start_session(self.spec, &self.paths, self.window.as_deref(), self.timeout).await?;
        drop(self.claim);
        Ok(started)
    }

    /// For a caller that runs the host in its own terminal: the launch spec
    /// and the claim on the id (released once the host holds it).
    pub(crate) fn into_foreground(self) -> (LaunchSpec, ClaimLock) {
        (self.spec, self.claim)
    }
}

/// Checks `start`, claims the id and records the launch (see the module
/// docs); nothing runs yet.
pub(crate) fn prepare(start: Start) -> Result<Prepared, CliError> {
    if let Some(id) = &start.id {
        ids::validate(id)?;
    }
    let cwd = resolve_cwd(start.cwd.as_deref())?;
    let watch_files = resolve_watch_files(&cwd, &start.watch_files)?;
    let worktree = match &start.worktree {
        Some(w) => Some(crate::worktree::plan(
            &cwd,
            w.branch.as_deref().filter(|b| !b.is_empty()),
            w.base.as_deref(),
            w.root.as_deref(),
        )?),
        None => None,
    };
    let (profile, command) =
        resolve_agent(&start.agent, start.adapter.as_deref(), &start.agent_args)?;
    let transport = start.transport.unwrap_or(profile.transport);
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
            argv.extend(start.agent_args.iter().cloned());
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
            if start.approve == ApprovalPolicy::Auto {
                argv.extend(spec.auto_approve_args.iter().cloned());
            }
            argv.extend(start.agent_args.iter().cloned());
            argv
        }
        Transport::Acp => {
            let spec = profile.acp.as_ref().ok_or_else(|| {
                CliError::usage(format!("the {} profile has no acp transport", profile.name))
                    .hint("use --pty, or an agent that speaks ACP (gemini, opencode, qwen)")
            })?;
            let (prog, rest) = spec.command.split_first().expect("validated: a command");
            let mut argv = with_program(prog, rest)?;
            argv.extend(start.agent_args.iter().cloned());
            argv
        }
    };
    if start.sandbox.is_some() && transport != Transport::CodexAppServer {
        return Err(CliError::usage("--sandbox applies to the codex-app-server transport only"));
    }
    if start.context.is_some() && profile.launch.context == ContextMode::Unsupported {
        return Err(CliError::usage(format!("the {} adapter cannot take --context", profile.name)));
    }
    let mode = match &start.mode {
        Mode::Foreground => RunMode::Foreground,
        Mode::Detached => RunMode::Detached,
        Mode::Tmux { .. } => RunMode::Tmux,
    };
    if mode == RunMode::Tmux {
        Tmux::check_installed()?;
    }
    let record = match &start.record {
        Record::None => None,
        Record::To(path) => Some(record_path(path)?),
        Record::Default => None,
    };
    let state = StateRoot::from_env()?;
    state.ensure()?;
    let scope = scope::scope_of(&cwd);
    let id = match &start.id {
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
    let notify = crate::config::notify()?;
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
        agent: start.agent.clone(),
        profile_toml: profile.text.clone(),
        command,
        cwd,
        env: crate::host::env_with(crate::host::fill_key(&start.env, start.api_key_env.as_deref())),
        mode,
        size: start.size,
        tmux: None,
        spawner_pane: std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty()),
        description: start.description.clone(),
        meta: start.meta.clone(),
        context_message: None,
        auto_stop: start.auto_stop,
        inbox_ttl_ms: start.inbox_ttl.as_millis().min(u128::from(u64::MAX)) as u64,
        approve: start.approve,
        transport,
        sandbox: start.sandbox.clone(),
        record: match start.record {
            Record::Default => Some(
                crate::compat::harnex_record(scope.repo_root.as_deref())
                    .unwrap_or_else(|| state.root().join("dispatch.jsonl")),
            ),
            _ => record,
        },
        max_runtime_ms: start.max_runtime.map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64),
        on_rate_limit: start.on_rate_limit,
        watch_files,
        buddy_of: start.buddy_of.clone(),
        worktree: worktree.map(|w| w.record),
        max_log: start.max_log,
        parent: crate::trust::Parent::of_caller(),
        agent_control,
        notify,
    };

    let window = match &start.mode {
        Mode::Tmux { window } => {
            Some(window.as_deref().filter(|n| !n.is_empty()).unwrap_or(&id).to_string())
        }
        _ => None,
    };
    let record = LaunchRecord {
        spec: LaunchSpec { env: Vec::new(), ..spec.clone() },
        context: start.context.clone(),
        window: window.clone(),
        extra_env: start.env.clone(),
        api_key_env: start.api_key_env.clone(),
        watch: start.watch.clone(),
    };
    record.write(&paths.launch_record()).map_err(|err| {
        CliError::failure(format!("cannot write {}: {err}", paths.launch_record().display()))
    })?;
    let spec = with_context(spec, &profile, start.context.as_deref());
    Ok(Prepared { spec, paths, claim, window, timeout: start.timeout, profile: profile.name })
}

/// Hands the first task to the agent as the profile says: as its first
/// message, or as its last argument.
fn with_context(mut spec: LaunchSpec, profile: &Profile, context: Option<&str>) -> LaunchSpec {
    if let Some(context) = context {
        let task = format!("[reins session id={}] {context}", spec.id);
        // ACP has no task on the command line: its first prompt is one.
        match profile.launch.context {
            ContextMode::Message => spec.context_message = Some(task),
            _ if spec.transport == Transport::Acp => spec.context_message = Some(task),
            _ => spec.command.push(task),
        }
    }
    spec
}

/// Starts a detached or tmux session (the caller holds the id's claim)
/// and waits until it is up.
async fn start_session(
    spec: LaunchSpec,
    paths: &SessionPaths,
    window: Option<&str>,
    timeout: Duration,
) -> Result<Started, CliError> {
    match (spec.mode, window) {
        (RunMode::Tmux, Some(window)) => start_in_tmux(spec, paths, window, timeout).await,
        _ => start_detached(&spec, paths, timeout).await,
    }
}

/// Starts a session again from its launch record, as `reins watch` does
/// after the agent died: same id, cwd, agent, profile and options, a new
/// run, this process's environment, and `note` added to the first task.
/// A session that ran in the foreground comes back detached.
pub(crate) async fn relaunch(
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
    // The environment of this restart, with what the first launch set
    // beyond the caller's (a model endpoint's, its key read again now).
    spec.env = crate::host::env_with(crate::host::fill_key(
        &record.extra_env,
        record.api_key_env.as_deref(),
    ));
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
    let started = start_session(spec, &paths, record.window.as_deref(), timeout).await?;
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
    let path = if prog == "{reins}" { reins_binary()? } else { find_program(prog)? };
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

/// The `reins` binary: this process when it is `reins`; for a program
/// using reins as a library, `$REINS_BIN`, else `reins` on PATH.
pub(crate) fn reins_binary() -> Result<PathBuf, CliError> {
    let exe = std::env::current_exe()
        .map_err(|err| CliError::failure(format!("cannot find the reins binary: {err}")))?;
    if exe.file_name().is_some_and(|n| n == "reins") {
        return Ok(exe);
    }
    if let Some(bin) = std::env::var_os("REINS_BIN").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("reins")).find(|p| p.is_file()).ok_or_else(
        || {
            CliError::failure("cannot find the reins binary")
                .hint("install reins (cargo install --path .), or set REINS_BIN to its path")
        },
    )
}

/// The session host's program: `reins-host` beside the reins binary (only
/// the host's code, so less of it stays resident per session), else that
/// binary's `__host`.
fn host_program() -> Result<(PathBuf, Option<&'static str>), CliError> {
    let exe = reins_binary()?;
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
async fn start_in_tmux(
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
    let result = async {
        let mut follower = Follower::new(paths, SessionFile::Events, offset);
        let delivered = write_fifo(&fifo, spec.to_json(), timeout).await;
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
    }
    .await;
    if result.is_err() && !lock::host_alive(&paths.host_lock()) {
        // Nothing came up in the window: do not leave an empty pane behind.
        let _ = tmux.kill_pane(&target.pane);
    }
    result
}

/// Writes the spec into the FIFO once the host opens it. Returns false if
/// the host did not open it in time. (Opening a FIFO blocks until its
/// reader comes: a thread of its own does it, abandoned at the deadline.)
async fn write_fifo(fifo: &Path, data: Vec<u8>, timeout: Duration) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = fifo.to_path_buf();
    std::thread::spawn(move || {
        let result = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&data));
        let _ = tx.send(result.is_ok());
    });
    tokio::time::timeout(timeout, rx).await.is_ok_and(|r| r.unwrap_or(false))
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
