//! The watch options as flags: `reins watch`, `run --watch` and `dispatch
//! --watch` take them, and a session's launch record keeps them (for
//! `reins supervise`), so one parser gives the options everywhere.

use std::time::Duration;

use crate::error::CliError;
use crate::watch::advisor::Advisor;
use crate::watch::{self, OnExit, Options};

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
    pub(crate) json: bool,
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

    /// --on-exit or --json given (they belong to a watch in this terminal).
    pub(crate) fn on_exit_or_json(&self) -> bool {
        self.on_exit.is_some() || self.json
    }

    /// The flags that give these options again (what a session's launch
    /// record keeps for `reins supervise`): everything but --on-exit,
    /// --until-exit and --json, which belong to the watching command.
    pub(crate) fn to_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        let mut add = |flag: &str, value: String| flags.extend([flag.to_string(), value]);
        if let Some(preset) = self.preset.and_then(|p| clap::ValueEnum::to_possible_value(&p)) {
            add("--preset", preset.get_name().to_string());
        }
        if let Some(d) = self.stall_after {
            add("--stall-after", format!("{}ms", d.as_millis()));
        }
        if let Some(n) = self.max_resumes {
            add("--max-resumes", n.to_string());
        }
        if let Some(n) = self.max_restarts {
            add("--max-restarts", n.to_string());
        }
        if let Some(text) = &self.nudge {
            add("--nudge", text.clone());
        }
        if let Some(url) = &self.advisor {
            add("--advisor", url.clone());
            add("--advisor-model", self.advisor_model.clone());
            add("--advisor-timeout", format!("{}ms", self.advisor_timeout.as_millis()));
            if let Some(text) = &self.advisor_instructions {
                add("--advisor-instructions", text.clone());
            }
        }
        flags
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
