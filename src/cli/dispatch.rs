//! `reins dispatch`: the command line of the dispatcher (`crate::dispatch`),
//! and `--history`, what the outcome store says.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::dispatch::request::Request;
use crate::dispatch::{self, done};
use crate::error::{CliError, CliResult, code};
use crate::ids;
use crate::store::outcomes::Store;
use crate::store::paths::StateRoot;

/// Hand a task to an available agent, check the result by evidence, and
/// retry or fail over until it is accepted.
///
/// The agent: `--agent A` (only A), else the first available of `--prefer
/// A,B`, else the configured agents ($XDG_CONFIG_HOME/reins/config.toml,
/// `reins agents` lists them) in round-robin order, with those that the
/// config's `[[route]]` rules pick for the task's text and labels first
/// (a rule with a `ladder` climbs that ladder with its `verifier`; with no
/// rule matching, `[dispatch] default_ladder` is climbed if set; with
/// `[advisor] dispatch = true` the advisor picks the first from the
/// store's success rate and median duration per label),
/// skipping agents whose program does not work, that cool down after
/// failures, whose last probe failed, or that are at their
/// max_concurrent. Each attempt is a detached session (ID, ID-b, ID-c, …)
/// whose first message is the task; after --max-failures failed attempts on
/// one agent the next one takes over (and the first cools down), each
/// brief saying why the last attempt failed.
///
/// `--ladder A:MODEL,B:MODEL` climbs instead: one attempt per rung, the
/// next rung gets the verifier's feedback, an accepted attempt stops it.
///
/// An attempt is accepted when its turn completed, every `--done` check
/// passes, and the `--verifier` (if any) answers `{"accept": true, ...}`.
/// The verifier is a second session that gets the task, the diff since the
/// dispatch started and the worker's screen; an invalid, missing or late
/// verdict is a rejection.
///
/// Every attempt is an `attempt` event in the dispatch's log
/// ($REINS_STATE_DIR/dispatches/ID/events.jsonl), a line on stderr, and a
/// row in the outcome store ($REINS_STATE_DIR/reins.db; `--history` reads
/// it). Sessions it started are stopped when it ends, also on Ctrl-C.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Done checks (repeat --done; all must pass):
  file:PATH        PATH exists (relative to the working directory)
  cmd:COMMAND      `sh -c COMMAND` exits 0 (output kept with the attempt)
  clean            git status shows no change
  quiet:DURATION   the last commit is at least DURATION old

Examples:
  reins dispatch --message 'fix the failing test' --done 'cmd:cargo test' --json
  reins dispatch --prefer codex,claude --task task.md --id fix-42 --label bug
  reins dispatch --ladder cheap:gpt-5-mini,claude:opus --verifier claude --task t.md
  reins dispatch --history --json
  reins dispatch --status --id fix-42 --json
  reins dispatch --host gpu --message 'fix it' --json   the whole dispatch runs there

Exit codes: 0 accepted, 1 every attempt failed, 2 usage error, 124 --timeout
passed, 130 interrupted.")]
pub(crate) struct Args {
    /// Only this agent (no failover, no ladder).
    #[arg(long, value_name = "AGENT", conflicts_with_all = ["prefer", "ladder"])]
    agent: Option<String>,
    /// These agents, the first available one first.
    #[arg(long, value_name = "A,B", value_delimiter = ',', conflicts_with = "ladder")]
    prefer: Vec<String>,
    /// Rungs AGENT[:MODEL], cheapest first: one attempt each, up on failure.
    #[arg(long, value_name = "A:MODEL,B:MODEL", value_delimiter = ',')]
    ladder: Vec<String>,
    /// Read the task from FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "message")]
    task: Option<PathBuf>,
    /// The task.
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    /// Dispatch id, and the first attempt's session id (default: random).
    #[arg(long)]
    id: Option<String>,
    /// A label kept with every attempt in the store (repeatable).
    #[arg(long, value_name = "LABEL")]
    label: Vec<String>,
    /// A done check (repeatable; see below).
    #[arg(long, value_name = "CHECK", value_parser = parse_check)]
    done: Vec<done::Check>,
    /// An agent that reviews each attempt and answers a JSON verdict.
    #[arg(long, value_name = "AGENT")]
    verifier: Option<String>,
    /// Failed attempts on one agent before the next agent takes over.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=25))]
    max_failures: u32,
    /// Give up after this long overall (exit 124).
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    timeout: Option<Duration>,
    /// How long one attempt may work before it counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::time::parse_duration)]
    attempt_timeout: Duration,
    /// How the workers' approval requests are answered: ask (leave them to
    /// a person, within --blocked-grace), auto (allow each) or never
    /// (refuse each).
    #[arg(long, value_name = "POLICY", value_enum, default_value = "ask")]
    approve: crate::host::ApprovalPolicy,
    /// An attempt blocked this long (an approval nobody answered, a trust
    /// or sign-in screen) fails over instead of waiting out its timeout;
    /// a verifier blocked this long gives no verdict (a rejection).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::time::parse_duration)]
    blocked_grace: Duration,
    /// How long the verifier may take.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::time::parse_duration)]
    verify_timeout: Duration,
    /// How long a cmd: check may run.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::time::parse_duration)]
    check_timeout: Duration,
    /// Working directory of the agents and the checks (default: here).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// Watch every worker session (`reins watch`): nudge it when it
    /// stalls, restart it when its agent dies.
    #[arg(long)]
    watch: bool,
    /// Watch preset: impl, plan or gate (see `reins watch --help`).
    #[arg(long, value_enum, requires = "watch")]
    preset: Option<crate::cli::watch::Preset>,
    /// Watch: no progress for this long is a stall.
    #[arg(long, value_name = "DURATION", requires = "watch", value_parser = crate::time::parse_duration)]
    stall_after: Option<Duration>,
    /// Watch: nudges before escalating.
    #[arg(long, value_name = "N", requires = "watch")]
    max_resumes: Option<u32>,
    /// Watch: restarts of a dead agent before escalating.
    #[arg(long, value_name = "N", requires = "watch")]
    max_restarts: Option<u32>,
    /// Watch: what a nudge tells the agent.
    #[arg(long, value_name = "TEXT", requires = "watch")]
    nudge: Option<String>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Print the attempts in the outcome store (with --id: that dispatch's).
    #[arg(long, conflicts_with_all = ["agent", "prefer", "ladder", "task", "message", "done", "verifier"])]
    history: bool,
    /// Show where dispatch --id stands, from its log: running, ended or
    /// stopped, the attempt under way and those finished.
    #[arg(long, requires = "id", conflicts_with_all = ["history", "agent", "prefer", "ladder", "task", "message", "done", "verifier"])]
    status: bool,
    /// With --history: at most this many attempts, the latest.
    #[arg(long, value_name = "N", default_value_t = 50, requires = "history")]
    limit: u32,
    // --host: the whole dispatch runs on another machine (its agents,
    // checks and outcome store are that machine's); `[agents.X] host`
    // instead sends one agent's sessions there.
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

fn parse_check(s: &str) -> Result<done::Check, String> {
    s.parse()
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    if args.history {
        return history(&args, &state);
    }
    if args.status {
        return status(&args, &state);
    }
    let watch = args
        .watch
        .then(|| {
            let mut flags = Vec::new();
            if let Some(preset) = args.preset.and_then(|p| clap::ValueEnum::to_possible_value(&p)) {
                flags.extend(["--preset".to_string(), preset.get_name().to_string()]);
            }
            if let Some(d) = args.stall_after {
                flags.extend(["--stall-after".to_string(), format!("{}ms", d.as_millis())]);
            }
            if let Some(n) = args.max_resumes {
                flags.extend(["--max-resumes".to_string(), n.to_string()]);
            }
            if let Some(n) = args.max_restarts {
                flags.extend(["--max-restarts".to_string(), n.to_string()]);
            }
            if let Some(text) = &args.nudge {
                flags.extend(["--nudge".to_string(), text.clone()]);
            }
            crate::cli::watch::options_from_flags(&flags, Duration::from_secs(30))
        })
        .transpose()?;
    let request = Request {
        agent: args.agent.clone(),
        prefer: args.prefer.clone(),
        ladder: args.ladder.clone(),
        id: args.id.clone(),
        labels: args.label.clone(),
        checks: args.done.clone(),
        verifier: args.verifier.clone(),
        max_failures: args.max_failures,
        timeout: args.timeout,
        attempt_timeout: args.attempt_timeout,
        verify_timeout: args.verify_timeout,
        check_timeout: args.check_timeout,
        cwd: args.cwd.clone(),
        watch,
        approve: args.approve,
        blocked_grace: args.blocked_grace,
        ..Request::new(read_task(&args)?)
    };
    let plan = request.plan(&state)?;
    let store = Store::open_in(&state)?;
    let summary = dispatch::run(plan, state, store)?;
    if args.json {
        crate::cli::print_json(&summary)?;
    } else {
        let mut out = std::io::stdout().lock();
        match (&summary.session, &summary.agent) {
            (Some(session), Some(agent)) => writeln!(
                out,
                "accepted: session {session} (agent {agent}) after {} attempt(s)",
                summary.attempts.len()
            )?,
            _ => {
                let result = serde_json::to_value(summary.result)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                if summary.attempts.is_empty() && !summary.skipped.is_empty() {
                    writeln!(out, "{result}: no agent could take the task:")?;
                    for s in &summary.skipped {
                        writeln!(out, "  {}: {}", s.agent, s.reason)?;
                    }
                    writeln!(
                        out,
                        "hint: `--agent NAME` runs one of them anyway; a cooldown ends by itself \
                         (`reins agents` shows each agent's state)"
                    )?;
                } else {
                    writeln!(
                        out,
                        "{result}: no attempt accepted after {} attempt(s); `reins dispatch \
                         --history --id {}`",
                        summary.attempts.len(),
                        summary.id
                    )?;
                }
            }
        }
    }
    Ok(summary.result.exit_code())
}

fn read_task(args: &Args) -> Result<String, CliError> {
    let text = match (&args.task, &args.message) {
        (Some(path), _) => std::fs::read_to_string(path).map_err(|err| {
            CliError::usage(format!("--task {}: {err}", path.display()))
                .hint("give a readable text file, or the task itself with --message TEXT")
        })?,
        (None, Some(text)) => text.clone(),
        (None, None) => {
            return Err(CliError::usage("what is the task? give --task FILE or --message TEXT")
                .hint(
                    "e.g. reins dispatch --message 'fix the failing test' --done 'cmd:make test'",
                ));
        }
    };
    if text.trim().is_empty() {
        return Err(CliError::usage("the task is empty").hint("say what the agent should do"));
    }
    Ok(text)
}

fn status(args: &Args, state: &StateRoot) -> CliResult {
    let id = args.id.as_deref().expect("clap requires --id with --status");
    let status = dispatch::status::status(state, id)?;
    if args.json {
        crate::cli::print_json(&status)?;
        return Ok(code::OK);
    }
    let mut out = std::io::stdout().lock();
    let how = match (&status.result, &status.session) {
        (Some(result), Some(session)) => format!("{result} (session {session})"),
        (Some(result), None) => result.clone(),
        (None, _) => status.state.to_string(),
    };
    writeln!(out, "dispatch {}: {how}, {} attempt(s) finished", status.id, status.attempts.len())?;
    if let Some(current) = &status.current {
        writeln!(
            out,
            "attempt {} under way: session {} (agent {})",
            current["attempt"],
            current["session"].as_str().unwrap_or("?"),
            current["agent"].as_str().unwrap_or("?")
        )?;
    }
    Ok(code::OK)
}

fn history(args: &Args, state: &StateRoot) -> CliResult {
    if let Some(id) = &args.id {
        ids::validate(id)?;
    }
    let store = Store::open_in(state)?;
    let attempts = store
        .attempts(args.id.as_deref(), args.limit)
        .map_err(|err| CliError::failure(err.to_string()))?;
    if args.json {
        let schema = store.schema_version().map_err(|err| CliError::failure(err.to_string()))?;
        crate::cli::print_json(&serde_json::json!({
            "ok": true,
            "store": Store::path_in(state.root()),
            "store_schema": schema,
            "attempts": attempts,
        }))?;
        return Ok(code::OK);
    }
    let mut out = std::io::stdout().lock();
    if attempts.is_empty() {
        writeln!(out, "no attempts recorded yet")?;
        return Ok(code::OK);
    }
    writeln!(
        out,
        "{:<20} {:>2}  {:<12} {:<14} {:<9} {:>7}  WHY",
        "SESSION", "N", "AGENT", "MODEL", "RESULT", "SECS"
    )?;
    for a in &attempts {
        let why = a.reason.clone().or_else(|| a.feedback.clone()).unwrap_or_default();
        writeln!(
            out,
            "{:<20} {:>2}  {:<12} {:<14} {:<9} {:>7.1}  {}",
            a.session,
            a.n,
            a.agent,
            a.model.as_deref().unwrap_or("-"),
            a.result,
            a.duration_s.unwrap_or(0.0),
            why
        )?;
    }
    Ok(code::OK)
}
