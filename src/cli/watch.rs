//! `reins watch`: keep an unattended session going (see `crate::watch`).

use std::path::PathBuf;
use std::time::Duration;

use crate::control::lookup;
use crate::error::{CliError, CliResult};
use crate::store::paths::{SessionPaths, StateRoot};
use crate::watch::advisor::Advisor;
use crate::watch::{self, Log, OnExit, Options};

/// Watch a session and keep it going: nudge it when it stalls, restart its
/// agent when it dies, and call for a person when that does not help.
///
/// Progress is what the agent really does: protocol messages, turns, and
/// screen changes other than spinners and timers. The watch returns when
/// the session's work is done: a turn ended and it sits ready with nothing
/// queued (never nudged then), or the session ended. With --until-exit it
/// stays on, for a session that will get more work, until the session ends.
/// A session that has had no message yet is waited on. One blocked on an
/// approval is reported (escalated), never typed into. A nudge interrupts
/// the stalled turn and sends --nudge as a new message. A restart starts the
/// agent again with the same id, options and first task, plus a note of
/// what happened (in this shell's environment). Each decision is written to
/// the session's events (`stall`, `resume`, `restart`, `escalate`).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins watch --id w1                        defaults: stall after 8m, 1 nudge, 1 restart
  reins send --id w1 'fix the build' && reins watch --id w1 && next-step
  reins watch --id w1 --until-exit           stays on across turns until w1 ends
  reins watch --id w1 --preset plan          3m, 2 nudges
  reins watch --id w1 --stall-after 90s --nudge 'Continue; run the tests when done.'
  reins watch --id w1 --advisor http://127.0.0.1:11434 --advisor-model llama3.2
  reins run codex --id w2 --context 'fix the build' --watch --preset impl

Presets: impl (8m, 1 nudge), plan (3m, 2 nudges), gate (15m, no nudges);
explicit flags win.

Without --advisor, the [advisor] of config.toml is asked, if it has one:
  [advisor]
  endpoint = \"local\"             # an [endpoints.NAME], or url = \"http://...\"
  models = [\"phi4-mini\", \"llama3.2\"]  # tried in order (default: the endpoint's)
  timeout = \"10s\"
It is pinged when the watch starts; one that is down is left alone for 30s
(doubling to 5m), so a dead advisor costs nothing per cycle. With
dispatch = true it also picks the first agent of a dispatch (see
`reins dispatch --help`).

Exit codes: 0 the session's work is done or it ended (or Ctrl-C stopped it),
1 no such session or the watch failed, 2 escalated (the session is left as
it is) or bad input, 130 interrupted by Ctrl-C with the session left running.")]
pub(crate) struct Args {
    /// The session to watch.
    #[arg(long)]
    id: String,
    /// Look the id up in this repository's sessions.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    watch: WatchArgs,
}

/// Defaults for a kind of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Preset {
    /// Implementation: stall after 8m, 1 nudge.
    Impl,
    /// Planning: stall after 3m, 2 nudges.
    Plan,
    /// A gate (review, test run): stall after 15m, no nudges.
    Gate,
}

impl Preset {
    fn stall_after_and_resumes(self) -> (Duration, u32) {
        match self {
            Preset::Impl => (Duration::from_secs(8 * 60), 1),
            Preset::Plan => (Duration::from_secs(3 * 60), 2),
            Preset::Gate => (Duration::from_secs(15 * 60), 0),
        }
    }
}

/// The watch options, shared by `reins watch` and `reins run --watch`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct WatchArgs {
    /// Defaults for a kind of work: impl, plan or gate.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// No progress for this long while working is a stall [default: 8m].
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    stall_after: Option<Duration>,
    /// Nudges of a stalled session before escalating [default: 1].
    #[arg(long, value_name = "N")]
    max_resumes: Option<u32>,
    /// Restarts of a dead agent before escalating [default: 1].
    #[arg(long, value_name = "N")]
    max_restarts: Option<u32>,
    /// What a nudge tells the agent.
    #[arg(long, value_name = "TEXT")]
    nudge: Option<String>,
    /// Ask this OpenAI-compatible endpoint (http://HOST:PORT, e.g. a local
    /// Ollama) before acting; a slow, unreachable or unclear advisor is
    /// ignored and the rules decide (default: [advisor] in config.toml).
    #[arg(long, value_name = "URL")]
    advisor: Option<String>,
    /// The advisor's model.
    #[arg(long, value_name = "MODEL", default_value = "default", requires = "advisor")]
    advisor_model: String,
    /// How long the advisor may take to answer.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::time::parse_duration, requires = "advisor")]
    advisor_timeout: Duration,
    /// Extra guidance for the advisor (what this worker is doing, what
    /// matters).
    #[arg(long, value_name = "TEXT", requires = "advisor")]
    advisor_instructions: Option<String>,
    /// On Ctrl-C: ask whether to stop the session too (default on a
    /// terminal), stop it, or leave it running (default otherwise).
    #[arg(long, value_name = "WHAT", value_enum)]
    on_exit: Option<OnExit>,
    /// Stay on after the work is done, until the session ends (a session
    /// that will get more work).
    #[arg(long)]
    until_exit: bool,
    /// Print the watch's summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl WatchArgs {
    /// Whether any watch option was given (they need `run --watch`).
    pub(crate) fn any(&self) -> bool {
        self.preset.is_some()
            || self.stall_after.is_some()
            || self.max_resumes.is_some()
            || self.max_restarts.is_some()
            || self.nudge.is_some()
            || self.advisor.is_some()
            || self.on_exit.is_some()
            || self.until_exit
    }

    /// The options, presets and defaults applied.
    pub(crate) fn options(&self, start_timeout: Duration) -> Result<Options, CliError> {
        let (preset_stall, preset_resumes) =
            self.preset.unwrap_or(Preset::Impl).stall_after_and_resumes();
        let stall_after = self.stall_after.unwrap_or(preset_stall);
        watch::check_stall_after(stall_after)?;
        let advisor = match &self.advisor {
            Some(url) => Some(
                Advisor::new(
                    url,
                    &self.advisor_model,
                    self.advisor_timeout,
                    self.advisor_instructions.clone(),
                )
                .map_err(|err| {
                    CliError::usage(format!("--advisor: {err}"))
                        .hint("e.g. --advisor http://127.0.0.1:11434 (a local Ollama)")
                })?,
            ),
            // Else the advisor of config.toml, if it has one.
            None => match crate::config::advisor()? {
                Some(config) => Some(
                    Advisor::new(&config.url, "default", config.timeout, config.instructions)
                        .map_err(|err| {
                            CliError::usage(format!("[advisor] in config.toml: {err}"))
                                .hint("e.g. url = \"http://127.0.0.1:11434\" (a local Ollama)")
                        })?
                        .with_models(config.models),
                ),
                None => None,
            },
        };
        let nudge = self.nudge.clone().unwrap_or_else(|| watch::DEFAULT_NUDGE.to_string());
        if nudge.trim().is_empty() {
            return Err(CliError::usage("--nudge is empty").hint("say what the agent should do"));
        }
        Ok(Options {
            stall_after,
            max_resumes: self.max_resumes.unwrap_or(preset_resumes),
            max_restarts: self.max_restarts.unwrap_or(1),
            nudge,
            advisor,
            on_exit: self.on_exit,
            until_exit: self.until_exit,
            start_timeout,
        })
    }
}

pub(crate) fn run(args: Args) -> CliResult {
    let options = args.watch.options(Duration::from_secs(30))?;
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    watch_here(view.paths, options, args.watch.json)
}

/// `run --watch`: watches the session just started.
pub(crate) fn after_run(
    paths: SessionPaths,
    args: &WatchArgs,
    start_timeout: Duration,
) -> CliResult {
    watch_here(paths, args.options(start_timeout)?, args.json)
}

/// Watches in this process, its words on stderr, its summary as JSON on
/// stdout when asked.
fn watch_here(paths: SessionPaths, options: Options, json: bool) -> CliResult {
    let summary =
        crate::control::runtime().block_on(watch::supervise(paths, options, Log::Stderr, true));
    if json {
        crate::cli::print_json(&summary)?;
    }
    Ok(summary.exit)
}

/// The watch options given as `reins watch` flags (a dispatch records its
/// workers' watch that way), presets and defaults applied.
pub(crate) fn options_from_flags(
    flags: &[String],
    start_timeout: Duration,
) -> Result<Options, CliError> {
    #[derive(clap::Parser)]
    #[command(name = "watch", no_binary_name = true)]
    struct Flags {
        #[command(flatten)]
        watch: WatchArgs,
    }
    let parsed = <Flags as clap::Parser>::try_parse_from(flags)
        .map_err(|err| CliError::usage(format!("watch flags {flags:?}: {}", err.kind())))?;
    parsed.watch.options(start_timeout)
}
