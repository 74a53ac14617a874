//! `reins chain run|status|resume`: the command line of the chain runner
//! (`crate::chain`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::chain::file;
use crate::chain::report as chains;
use crate::chain::runner::{self, Options};
use crate::chain::state::{self, ChainState, ChainStatus, StepState, StepStatus, TaskState};
use crate::config::Agents;
use crate::error::{CliError, CliResult, code};
use crate::ids;
use crate::store::paths::StateRoot;

/// Run steps of work (plan → implement → review …) as dispatches, in
/// parallel batches with gates; see where a chain stands; resume one.
///
/// Each task of a step is a `reins dispatch` (done checks, verifier,
/// ladders, failover, the outcome store); a step's tasks run in parallel
/// batches, and a gate decides about failed tasks at the end of a batch.
///
/// State lives in $REINS_STATE_DIR/chains/ID/ (state.json, events.jsonl);
/// `reins chain status` shows it and `reins chain resume` goes on after
/// the runner was stopped or killed.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins chain run feature.toml
  reins chain run feature.toml --id feat-1 --gate-agent claude --json
  reins chain status feat-1
  reins chain resume feat-1

Exit codes: 0 every required step accepted, 1 a required step failed (or no
such chain), 2 usage error (a bad chain file), 124 the chain's timeout passed,
130 interrupted.")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Validate a chain file and run it to its end.
    ///
    /// Everything is checked before anything starts: the format, the
    /// agents, brief files, placeholders, done checks, and that `needs`
    /// has no cycle. Steps run one at a time, in order of `needs`; the
    /// tasks of a step run up to max_parallel at once. Every session it
    /// started is stopped when it ends, also on Ctrl-C or SIGTERM.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Show a chain (or, without ID, every chain).
    #[command(
        after_help = "Examples:\n  reins chain status\n  reins chain status feat-1 --json\n\nExit codes: 0 shown, 1 no such chain, 2 bad input."
    )]
    Status {
        /// The chain.
        id: Option<String>,
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Go on with a chain whose runner was stopped or died: stop the
    /// sessions it left, run again the tasks that were under way (in fresh
    /// sessions), skip what was accepted.
    #[command(
        after_help = "Examples:\n  reins chain resume feat-1\n  reins chain resume feat-1 --gate-agent claude --json\n\nExit codes: as `reins chain run`; 1 also when the chain is still running, 2\nwhen it already ended."
    )]
    Resume {
        /// The chain.
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

const RUN_HELP: &str = concat!(
    "Chain file (FILE.toml):\n",
    "  [chain]\n",
    "  name = \"feature\"           # the chain's id unless --id (default: the file name)\n",
    "  task = \"add --json to ls\"  # {{task}} of a step without tasks\n",
    "  max_parallel = 2           # tasks of a batch at once (default 2)\n",
    "  max_tries = 2              # runs of a task before the gate skips it (default 2)\n",
    "  timeout = \"2h\"             # the whole chain (exit 124)\n",
    "\n",
    "  [[step]]\n",
    "  name = \"implement\"\n",
    "  agent = \"codex\"            # or prefer = [\"a\", \"b\"] or ladder = [\"cheap:mini\", \"claude:opus\"]\n",
    "  brief = \"Do {{task}}. Plan: {{prev.plan.output}}\"  # or brief_file = \"x.md\"\n",
    "  done = [\"cmd:make test\"]   # as `reins dispatch --done`; {{task}} works here too\n",
    "  verifier = \"claude\"        # reviews each attempt (JSON verdict)\n",
    "  timeout = \"30m\"            # one attempt (default 30m)\n",
    "  blocked_grace = \"1m\"       # its sessions blocked this long fail (default --blocked-grace)\n",
    "  needs = [\"plan\"]           # default: the step above; a cycle is refused\n",
    "  tasks = [\"parser\", \"cli\"]  # a batch: one task per item\n",
    "  required = true            # default true: if it fails, the chain stops\n",
    "\n",
    "Placeholders: {{task}}, {{step}}, {{feedback}} (the gate's note on a retry;\n",
    "added at the end when the brief has none), {{prev.STEP.output}} (the end of\n",
    "the accepted screen of STEP, a step it needs). In a cmd: check, {{task}}\n",
    "reaches the shell as $REINS_TASK, quoted: the task is never shell syntax.\n",
    "\n",
    "Gate (after a batch with failures): retry (the brief gets the failure and a\n",
    "narrower scope), skip, or rebatch (again, fewer at once). Rules: skip at\n",
    "max_tries, rebatch a timeout or a failed start while others ran, else retry.\n",
    "--gate-agent A asks A for {\"decisions\": [{\"task\", \"action\", \"brief_note\"}]}\n",
    "and uses the rules when its answer is invalid, missing or late. Its brief\n",
    "carries each failed task's evidence (the failed checks' output files and\n",
    "their last lines, the verdict), the batch's accepted outputs and the\n",
    "pending tasks; its answer may add \"analysis\" and \"context\": [{\"task\",\n",
    "\"note\"}], recorded in the gate event and added to those pending tasks' briefs.\n",
    "\n",
    "Examples:\n",
    "  reins chain run feature.toml\n",
    "  reins chain run feature.toml --id feat-1 --gate-agent claude --json\n",
    "\n",
    "Exit codes: 0 every required step accepted (a skipped task of an optional\n",
    "step is reported, not fatal), 1 a required step failed, 2 usage error (a bad\n",
    "chain file, an id in use), 124 the chain's timeout passed, 130 interrupted."
);

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The chain file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The chain's id (default: its name, or NAME-2, NAME-3, … if taken).
    #[arg(long)]
    id: Option<String>,
    /// Check the file and print the plan; start nothing.
    #[arg(long)]
    check: bool,
    /// Working directory of the agents and checks (default: here).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Ask this agent what to do with failed tasks (JSON decisions;
    /// anything invalid, missing or late: the rules decide).
    #[arg(long, value_name = "AGENT")]
    gate_agent: Option<String>,
    /// How long the gate agent may take.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::time::parse_duration)]
    gate_timeout: Duration,
    /// How the workers' approval requests are answered: ask (a person,
    /// within --blocked-grace), auto (allow each) or never (refuse each).
    /// A worker blocked past the grace fails over.
    #[arg(long, value_name = "POLICY", value_enum, default_value = "ask")]
    approve: crate::host::ApprovalPolicy,
    /// A worker, verifier or gate session blocked this long (an approval
    /// nobody answered, a trust or sign-in screen) fails instead of
    /// waiting out its timeout; a step's `blocked_grace` wins for its
    /// sessions.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::time::parse_duration)]
    blocked_grace: Duration,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    let root = StateRoot::from_env()?;
    match args.command {
        Sub::Run(args) => run_chain(&root, args),
        Sub::Status { id, json } => status(&root, id.as_deref(), json),
        Sub::Resume { id, common } => resume(&root, &id, common),
    }
}

fn run_chain(root: &StateRoot, args: RunArgs) -> CliResult {
    let agents = Agents::load()?;
    let def = file::load(&args.file, &agents)?;
    let gate_agent =
        args.common.gate_agent.as_deref().map(|a| agents.get(a).cloned()).transpose()?;
    let cwd = match &args.cwd {
        Some(dir) if !dir.is_dir() => {
            return Err(CliError::usage(format!("--cwd {}: not a directory", dir.display())));
        }
        Some(dir) => std::fs::canonicalize(dir)?,
        None => std::env::current_dir()?,
    };
    if args.check {
        let usable = check_agents(&def, &agents, gate_agent.as_ref())?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}: ok, {} step(s)", args.file.display(), def.steps.len())?;
        for s in &def.steps {
            let tasks = s.tasks.as_ref().map_or(1, Vec::len);
            let needs = if s.needs.is_empty() { "-".into() } else { s.needs.join(",") };
            let agents = usable.get(&s.name).map_or(String::new(), |a| a.join(","));
            writeln!(out, "  {:<16} needs {needs:<20} tasks {tasks:<3} agents {agents}", s.name)?;
        }
        return Ok(code::OK);
    }
    root.ensure()?;
    let chains = root.root().join("chains");
    crate::store::fsutil::create_private_dir_all(&chains)?;
    // Creating the directory claims the id: two runs given one --id at
    // once cannot both have it.
    let id = match &args.id {
        Some(id) => {
            check_id(id)?;
            if !create_chain_dir(root, id)? {
                return Err(CliError::usage(format!("a chain with id {id:?} exists already"))
                    .hint(format!(
                        "`reins chain resume {id}` goes on with it; or give another --id"
                    )));
            }
            id.clone()
        }
        None => {
            let mut n = 1;
            loop {
                let id = if n == 1 { def.name.clone() } else { format!("{}-{n}", def.name) };
                if create_chain_dir(root, &id)? {
                    break id;
                }
                n += 1;
            }
        }
    };
    let dir = state::dir_of(root, &id);
    let _runner = lock_runner(&id, &dir)?;
    let st = new_state(&id, def, cwd, args.common.gate_agent.clone());
    st.save(&dir)?;
    let opts = Options {
        gate_agent,
        gate_timeout: args.common.gate_timeout,
        quiet: false,
        approve: args.common.approve,
        blocked_grace: args.common.blocked_grace,
    };
    let st = runner::execute(root.clone(), dir.clone(), st, agents, opts, false)?;
    report(&st, &dir, args.common.json)
}

/// Checks that the agents each step can use can run here: every agent the
/// file names (a step's `agent`, `ladder`, `prefer`, `verifier`, the gate
/// agent) must; of a step left to the pool, at least one must. Returns each
/// step's usable agents.
fn check_agents(
    def: &file::Def,
    agents: &Agents,
    gate: Option<&crate::config::AgentSpec>,
) -> Result<std::collections::HashMap<String, Vec<String>>, CliError> {
    use crate::adapter::probe::Status;
    use crate::dispatch::avail;
    let timeout = std::time::Duration::from_secs(10);
    let mut checked: std::collections::HashMap<String, Result<(), String>> = Default::default();
    let mut check = |agent: &crate::config::AgentSpec| -> Result<(), String> {
        checked
            .entry(agent.name.clone())
            .or_insert_with(|| {
                let c = avail::program_check(agent, timeout);
                if c.status == Status::Ok { Ok(()) } else { Err(c.detail) }
            })
            .clone()
    };
    let mut usable = std::collections::HashMap::new();
    for step in &def.steps {
        let named: Vec<&String> = step
            .agent
            .iter()
            .chain(&step.ladder)
            .chain(&step.prefer)
            .chain(step.verifier.iter())
            .collect();
        let mut ok = Vec::new();
        for name in named {
            // A ladder rung is `AGENT[:MODEL]`.
            let name = name.split_once(':').map_or(name.as_str(), |(a, _)| a);
            let agent = agents.get(name)?;
            check(agent).map_err(|why| {
                CliError::failure(format!(
                    "step {}: agent {name} cannot run here: {why}",
                    step.name
                ))
                .hint("install it, or name another agent in the file (`reins agents` lists them)")
            })?;
            ok.push(name.to_string());
        }
        if step.agent.is_none() && step.ladder.is_empty() && step.prefer.is_empty() {
            let pool: Vec<&crate::config::AgentSpec> = agents.pool();
            ok.extend(pool.into_iter().filter(|a| check(a).is_ok()).map(|a| a.name.clone()));
            if ok.is_empty() {
                return Err(CliError::failure(format!(
                    "step {}: none of the agents it can be routed to can run here",
                    step.name
                ))
                .hint("`reins agents` shows which agents are usable; name one in the step"));
            }
        }
        ok.dedup();
        usable.insert(step.name.clone(), ok);
    }
    if let Some(gate) = gate {
        check(gate).map_err(|why| {
            CliError::failure(format!("gate agent {}: cannot run here: {why}", gate.name))
        })?;
    }
    Ok(usable)
}

/// Creates chain `id`'s directory (0700); false if it exists already.
fn create_chain_dir(root: &StateRoot, id: &str) -> Result<bool, CliError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(state::dir_of(root, id)) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Makes this process the one runner of the chain in `dir` (for as long
/// as the lock lives), or refuses naming the runner that has it.
fn lock_runner(id: &str, dir: &Path) -> Result<state::RunnerLock, CliError> {
    match state::RunnerLock::try_acquire(dir) {
        Ok(lock) => Ok(lock),
        Err(state::RunnerLockError::Held { pid }) => {
            let who = match pid {
                Some(pid) => format!("runner pid {pid}"),
                None => "another runner".to_string(),
            };
            Err(CliError::failure(format!("chain {id} is already running ({who})")).hint(format!(
                "`reins chain status {id}` shows it; stop that runner (Ctrl-C or kill) to resume"
            )))
        }
        Err(err) => Err(CliError::failure(err.to_string())),
    }
}

fn check_id(id: &str) -> Result<(), CliError> {
    ids::validate(id)?;
    if id.len() > 24 {
        return Err(CliError::usage(format!("chain id {id:?} is longer than 24 characters"))
            .hint("a chain id starts the names of its sessions; keep it short"));
    }
    Ok(())
}

fn new_state(id: &str, def: file::Def, cwd: PathBuf, gate_agent: Option<String>) -> ChainState {
    let steps = def
        .steps
        .iter()
        .map(|s| {
            let tasks = match &s.tasks {
                None => vec![task(id, &s.name, None)],
                Some(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| task(id, &format!("{}-{}", s.name, i + 1), Some(item.clone())))
                    .collect(),
            };
            StepState {
                name: s.name.clone(),
                status: StepStatus::Pending,
                required: s.required,
                started_at: None,
                ended_at: None,
                duration_s: 0.0,
                batches: 0,
                gates: 0,
                tasks,
            }
        })
        .collect();
    ChainState {
        schema_version: state::SCHEMA_VERSION,
        id: id.to_string(),
        status: ChainStatus::Running,
        cwd,
        gate_agent,
        runner_pid: std::process::id(),
        runner_start_ticks: crate::procs::stat(std::process::id()).map(|s| s.start_ticks),
        started_at: crate::time::now_rfc3339(),
        ended_at: None,
        duration_s: 0.0,
        resumes: 0,
        gate_sessions: Vec::new(),
        steps,
        chain: def,
    }
}

fn task(chain: &str, key: &str, item: Option<String>) -> TaskState {
    TaskState {
        key: key.to_string(),
        item,
        dispatch: format!("{chain}-{key}"),
        status: state::TaskStatus::Pending,
        runs: 0,
        attempts: 0,
        sessions: Vec::new(),
        session: None,
        output: None,
        reason: None,
        failure: None,
        note: None,
        evidence: Vec::new(),
        context: Vec::new(),
        duration_s: 0.0,
        tokens: None,
    }
}

fn resume(root: &StateRoot, id: &str, common: Common) -> CliResult {
    let (dir, _) = chains::read(root, id)?;
    let _runner = lock_runner(id, &dir)?;
    // Read again under the lock: a runner that just let go saved last.
    let (dir, mut st) = chains::read(root, id)?;
    // A runner of a reins that took no lock.
    if st.status == ChainStatus::Running && st.runner_alive() {
        return Err(CliError::failure(format!(
            "chain {id} is already running (runner pid {})",
            st.runner_pid
        ))
        .hint("stop it first (Ctrl-C or kill), then resume"));
    }
    if matches!(st.status, ChainStatus::Accepted | ChainStatus::Partial | ChainStatus::Failed) {
        return Err(CliError::usage(format!(
            "chain {id} already ended ({}); nothing to resume",
            st.status.as_str()
        ))
        .hint("`reins chain status ID` shows how; run the file again with a new --id"));
    }
    let agents = Agents::load()?;
    let gate = common.gate_agent.clone().or(st.gate_agent.clone());
    let gate_agent = gate.as_deref().map(|a| agents.get(a).cloned()).transpose()?;
    st.gate_agent = gate;
    let opts = Options {
        gate_agent,
        gate_timeout: common.gate_timeout,
        quiet: false,
        approve: common.approve,
        blocked_grace: common.blocked_grace,
    };
    let st = runner::execute(root.clone(), dir.clone(), st, agents, opts, true)?;
    report(&st, &dir, common.json)
}

fn report(st: &ChainState, dir: &Path, json: bool) -> CliResult {
    if json {
        let mut summary = runner::summary(st);
        summary["state"] = Value::from(ChainState::path_in(dir).display().to_string());
        summary["log"] = Value::from(dir.join("events.jsonl").display().to_string());
        crate::cli::print_json(&summary)?;
    } else {
        table(st)?;
    }
    Ok(st.status.exit_code())
}

fn table(st: &ChainState) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let word = |v: Value| v.as_str().map(String::from).unwrap_or_default();
    writeln!(
        out,
        "chain {}: {} after {:.1}s, {} attempt(s){}",
        st.id,
        st.status.as_str(),
        st.duration_s,
        st.attempts(),
        st.tokens().map(|t| format!(", {t} tokens")).unwrap_or_default()
    )?;
    writeln!(
        out,
        "{:<20} {:<12} {:>4} {:>8} {:>8}  WHY",
        "STEP/TASK", "RESULT", "RUNS", "ATTEMPTS", "SECS"
    )?;
    for s in &st.steps {
        let result = word(serde_json::to_value(s.status).unwrap_or_default());
        let req = if s.required { "" } else { " (optional)" };
        writeln!(
            out,
            "{:<20} {:<12} {:>4} {:>8} {:>8.1}{req}",
            s.name, result, "", "", s.duration_s
        )?;
        // A step of one task shows it only once it ran.
        let single = s.tasks.len() == 1 && s.tasks[0].item.is_none();
        for t in s.tasks.iter().filter(|t| !single || t.runs > 0) {
            let result = word(serde_json::to_value(t.status).unwrap_or_default());
            writeln!(
                out,
                "  {:<18} {:<12} {:>4} {:>8} {:>8.1}  {}",
                t.key,
                result,
                t.runs,
                t.attempts,
                t.duration_s,
                t.reason.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

fn status(root: &StateRoot, id: Option<&str>, json: bool) -> CliResult {
    if let Some(id) = id {
        if json {
            crate::cli::print_json(&chains::status(root, id)?)?;
            return Ok(code::OK);
        }
        let (_, st) = chains::read(root, id)?;
        table(&st)?;
        if st.status == ChainStatus::Running && !chains::running(&st) {
            writeln!(
                std::io::stdout(),
                "its runner (pid {}) is gone: `reins chain resume {}` goes on",
                st.runner_pid,
                st.id
            )?;
        }
        return Ok(code::OK);
    }
    if json {
        let list = chains::list(root);
        crate::cli::print_json(&serde_json::json!({ "ok": true, "chains": list }))?;
        return Ok(code::OK);
    }
    let all = chains::all(root);
    let mut out = std::io::stdout().lock();
    if all.is_empty() {
        writeln!(out, "no chains yet")?;
        return Ok(code::OK);
    }
    writeln!(out, "{:<24} {:<12} {:>6} {:>8}  STARTED", "ID", "RESULT", "STEPS", "SECS")?;
    for st in &all {
        let done = st
            .steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Accepted | StepStatus::Partial))
            .count();
        let mut result = st.status.as_str().to_string();
        if st.status == ChainStatus::Running && !st.runner_alive() {
            result = "stopped".into();
        }
        writeln!(
            out,
            "{:<24} {:<12} {:>6} {:>8.1}  {}",
            st.id,
            result,
            format!("{done}/{}", st.steps.len()),
            st.duration_s,
            st.started_at
        )?;
    }
    Ok(code::OK)
}
