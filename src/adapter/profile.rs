//! Adapter profiles: the TOML files in `adapters/`, embedded at build time
//! and overridable from `$XDG_CONFIG_HOME/reins/adapters/<name>.toml`.
//!
//! A profile says how to launch the agent, how to read its screen (rules),
//! and how to stop it politely. Profiles are parsed strictly (unknown keys
//! are errors) so a typo in a rule cannot silently disable it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::adapter::auth::AuthSpec;
use crate::adapter::rules::{Outcome, OutcomeFile, Rule, RuleFile, UsageFile, UsageRule};
use crate::error::CliError;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_adapters.rs"));
}

/// Where a profile came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProfileSource {
    Builtin,
    User(PathBuf),
}

/// A loaded, validated profile.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub(crate) name: String,
    pub(crate) summary: String,
    pub(crate) tested_versions: Vec<String>,
    /// How to install the agent program (`reins doctor` shows it when the
    /// program is missing).
    pub(crate) install: Option<String>,
    /// The transport `reins run` uses unless told otherwise.
    pub(crate) transport: Transport,
    pub(crate) launch: Launch,
    /// The codex app-server transport, if the agent has one.
    pub(crate) app_server: Option<AppServerSpec>,
    /// The claude stream-json transport, if the agent has one.
    pub(crate) stream_json: Option<StreamJsonSpec>,
    /// The Agent Client Protocol transport, if the agent speaks it.
    pub(crate) acp: Option<AcpSpec>,
    pub(crate) screen: ScreenSettings,
    /// When the agent really takes input.
    pub(crate) input: InputSpec,
    pub(crate) stop: StopSpec,
    pub(crate) submit: SubmitSpec,
    pub(crate) turn: TurnSpec,
    /// What on screen is not progress (spinners, timers).
    pub(crate) progress: ProgressSpec,
    /// How to read when a usage limit resets.
    pub(crate) rate_limit: RateLimitSpec,
    /// Where its credentials can be (none: not checked).
    pub(crate) auth: Option<AuthSpec>,
    /// How it is pointed at a model endpoint (none: it cannot be).
    pub(crate) endpoint: Option<EndpointLaunch>,
    pub(crate) approve: ApproveSpec,
    pub(crate) rules: Vec<Rule>,
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) usage: Vec<UsageRule>,
    /// `[answer]`: how a turn's answer is found on the screen.
    pub(crate) answer: Option<crate::adapter::answer::AnswerSpec>,
    pub(crate) source: ProfileSource,
    /// The TOML text, for `adapters show`.
    pub(crate) text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    summary: String,
    #[serde(default)]
    tested_versions: Vec<String>,
    #[serde(default)]
    install: Option<String>,
    #[serde(default)]
    transport: Transport,
    launch: Launch,
    #[serde(default)]
    app_server: Option<AppServerSpec>,
    #[serde(default)]
    stream_json: Option<StreamJsonSpec>,
    #[serde(default)]
    acp: Option<AcpSpec>,
    #[serde(default)]
    screen: ScreenSettings,
    #[serde(default)]
    input: InputSpec,
    #[serde(default)]
    stop: StopSpec,
    #[serde(default)]
    submit: SubmitSpec,
    #[serde(default)]
    turn: TurnSpec,
    #[serde(default)]
    progress: ProgressFile,
    #[serde(default)]
    rate_limit: RateLimitFile,
    #[serde(default)]
    auth: Option<AuthSpec>,
    #[serde(default)]
    endpoint: Option<EndpointLaunch>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
    #[serde(default)]
    approve: ApproveSpec,
    #[serde(default, rename = "outcome")]
    outcomes: Vec<OutcomeFile>,
    #[serde(default, rename = "usage")]
    usage: Vec<UsageFile>,
    #[serde(default)]
    answer: Option<crate::adapter::answer::AnswerFile>,
}

/// How reins talks to an agent.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Transport {
    /// Its terminal UI in a PTY, read with the profile's screen rules.
    #[default]
    Pty,
    /// `codex app-server`: JSON-RPC on stdio.
    CodexAppServer,
    /// `claude -p --input-format stream-json --output-format stream-json`.
    #[value(alias = "stream-json")]
    ClaudeStreamJson,
    /// The Agent Client Protocol: JSON-RPC on stdio (`gemini --acp`,
    /// `opencode acp`, `qwen --acp`).
    Acp,
}

impl Transport {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Pty => "pty",
            Transport::CodexAppServer => "codex-app-server",
            Transport::ClaudeStreamJson => "claude-stream-json",
            Transport::Acp => "acp",
        }
    }
}

/// Settings of the codex app-server transport.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppServerSpec {
    /// Program and arguments (`codex app-server`).
    pub(crate) command: Vec<String>,
    /// How long any request may wait for its answer.
    #[serde(default = "AppServerSpec::default_timeout")]
    pub(crate) request_timeout_ms: u64,
    /// `approvalPolicy` for `thread/start`: when codex asks (`untrusted`,
    /// `on-request`, `never`); how reins answers is `run --approve`.
    #[serde(default)]
    pub(crate) approval_policy: Option<String>,
}

/// Settings of the claude stream-json transport.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamJsonSpec {
    /// Program and arguments.
    pub(crate) command: Vec<String>,
    /// Added to the command under `run --approve auto`.
    #[serde(default)]
    pub(crate) auto_approve_args: Vec<String>,
}

impl AppServerSpec {
    fn default_timeout() -> u64 {
        30_000
    }
}

/// Settings of the Agent Client Protocol transport (`[acp]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcpSpec {
    /// Program and arguments (`gemini --acp`).
    pub(crate) command: Vec<String>,
    /// How long `initialize`, `authenticate` and `session/new` may wait
    /// for their answers (a turn takes as long as it takes).
    #[serde(default = "AcpSpec::default_timeout")]
    pub(crate) request_timeout_ms: u64,
    /// The agent's sign-in methods reins may use when `session/new` says
    /// authentication is required, in order of preference, each with where
    /// its credential is.
    #[serde(default)]
    pub(crate) auth: Vec<AcpAuthMethod>,
}

impl AcpSpec {
    /// A cold start of OpenCode or Qwen Code took 4 s to answer
    /// `initialize` on the 2-core test machine; a loaded one, several times
    /// that.
    fn default_timeout() -> u64 {
        60_000
    }

    /// The `auth` methods whose credential is present in `env` (a name's
    /// value, if set), in the profile's order.
    pub(crate) fn credentials(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        self.auth
            .iter()
            .filter(|m| {
                let spec = AuthSpec {
                    env: m.env.clone(),
                    files: m.files.clone(),
                    env_named_in: Vec::new(),
                    login: None,
                };
                spec.find_in(env).is_ok()
            })
            .map(|m| m.method.clone())
            .collect()
    }
}

/// One sign-in method of an ACP agent (its `authMethods` id) and where
/// its credential can be: any of `env` set (non-empty), or any of `files`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcpAuthMethod {
    pub(crate) method: String,
    #[serde(default)]
    pub(crate) env: Vec<String>,
    #[serde(default)]
    pub(crate) files: Vec<String>,
}

/// How the agent is started.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Launch {
    /// Program and arguments. `{reins}` is replaced by the path of the
    /// running reins binary. Empty for `generic`: the user names the program.
    #[serde(default)]
    pub(crate) command: Vec<String>,
    /// How `--context` reaches the agent.
    #[serde(default)]
    pub(crate) context: ContextMode,
    /// Extra environment for the agent.
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
}

/// `[endpoint]`: how an agent configured with `endpoint = "NAME"` is
/// pointed at that OpenAI-compatible model server. In every string
/// `{base_url}`, `{model}`, `{endpoint}` (its name), `{api_key_env}` and,
/// in `env` only, `{api_key}` (the key's value, else `none`) are replaced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndpointLaunch {
    /// Arguments for the agent.
    #[serde(default)]
    pub(crate) args: Vec<String>,
    /// Arguments added when the endpoint names an `api_key_env`.
    #[serde(default)]
    pub(crate) key_args: Vec<String>,
    /// Environment for the agent.
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// How the model is passed on an endpoint (default: the profile's way).
    #[serde(default)]
    pub(crate) model_args: Option<Vec<String>>,
}

/// How `run --context TEXT` is handed to the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ContextMode {
    /// As the last command-line argument (`claude "task"`).
    #[default]
    Argv,
    /// As the first message, delivered (and verified) like `reins send`
    /// once the agent is ready: the first turn.
    Message,
    /// The agent has no way to take an initial task.
    Unsupported,
}

/// Timing of screen reading.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ScreenSettings {
    /// Quiet time after output before the screen is classified.
    pub(crate) settle_ms: u64,
    /// A synchronized-output block open longer than this counts as closed.
    pub(crate) sync_timeout_ms: u64,
    /// With no rule matched for this long after launch, `starting` becomes
    /// `unknown`.
    pub(crate) boot_timeout_ms: u64,
    /// Rows of scrollback the host's emulator keeps. None by default: the
    /// host reads only the visible screen (rules, `pane`), the transcript
    /// keeps the history, and each row of 120 columns costs 3.8 KiB per
    /// session (1000 rows took a host from 7.4 to 11.1 MiB).
    pub(crate) scrollback: usize,
}

impl Default for ScreenSettings {
    fn default() -> Self {
        ScreenSettings {
            settle_ms: 16,
            sync_timeout_ms: 150,
            boot_timeout_ms: 10_000,
            scrollback: 0,
        }
    }
}

/// `[input]`: when an agent that shows its prompt really takes input
/// (DESIGN §3). A composer on screen is not proof: Gemini CLI 0.61 draws
/// its composer about 40 ms before it attaches its input handler (which
/// switches bracketed paste on as it does), and drops a paste that arrives
/// in between whole; Claude Code 2.1.197 ignores an Enter in the first
/// ~0.2 s after its first frame on a busy machine. Delivery waits for this
/// evidence, bounded by `wait_max_ms`; `adapters explain --id` says what
/// decided it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct InputSpec {
    /// Terminal modes that must be on before text is typed: the agent
    /// switches them on when it starts reading input.
    pub(crate) modes: Vec<TermMode>,
    /// After the agent starts, how long the screen must have read ready
    /// (without a break) before the first message is typed.
    pub(crate) ready_after_start_ms: u64,
    /// The longest a message waits for this evidence; then it is typed
    /// anyway (delivery still verifies that a turn started).
    pub(crate) wait_max_ms: u64,
}

impl Default for InputSpec {
    fn default() -> Self {
        InputSpec { modes: Vec::new(), ready_after_start_ms: 0, wait_max_ms: 5000 }
    }
}

/// A terminal mode an agent switches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TermMode {
    /// Bracketed paste (DECSET 2004).
    BracketedPaste,
}

impl TermMode {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            TermMode::BracketedPaste => "bracketed paste (mode 2004)",
        }
    }
}

/// The polite stop sequence and the grace periods of the escalation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StopSpec {
    /// What to send first (keys, text, pauses, a signal).
    pub(crate) sequence: Vec<Step>,
    /// What interrupts a running turn without ending the agent
    /// (`reins interrupt`).
    pub(crate) interrupt: Vec<Step>,
    /// How long to wait after the sequence before SIGTERM.
    pub(crate) grace_ms: u64,
    /// How long to wait after SIGTERM before SIGKILL.
    pub(crate) term_grace_ms: u64,
}

impl Default for StopSpec {
    fn default() -> Self {
        StopSpec {
            sequence: Vec::new(),
            interrupt: vec![Step::Key(Key::Esc)],
            grace_ms: 3000,
            term_grace_ms: 2000,
        }
    }
}

/// How a message is typed into the agent and submitted (DESIGN §3:
/// delivery is verified).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SubmitSpec {
    /// `paste`: bracketed paste when the agent enabled it (mode 2004),
    /// typed otherwise; `type`: always typed.
    pub(crate) mode: SubmitMode,
    /// The key that submits.
    pub(crate) key: Key,
    /// Pause between the text and the key, so the agent takes the key as a
    /// key and not as part of a paste burst.
    pub(crate) pause_ms: u64,
    /// Extra pause per KiB of text.
    pub(crate) pause_per_kib_ms: u64,
    /// Upper bound of the pause.
    pub(crate) max_pause_ms: u64,
    /// How long after the key the turn must show it started.
    pub(crate) verify_ms: u64,
    /// When the screen has settled after the key and still shows the text
    /// in the composer (`ready{draft}`) this long after it, the key was not
    /// taken (an agent still starting, an Enter read as part of the paste):
    /// it is pressed again without waiting out `verify_ms`.
    pub(crate) recheck_ms: u64,
    /// How often the key is pressed again before the message is stranded.
    pub(crate) retries: u32,
    /// What counts as proof that the turn started.
    pub(crate) evidence: Vec<Evidence>,
    /// Keys that empty a composer holding a draft (`ready{draft}`), pressed
    /// (and the screen read again) until it reads plain ready, at most
    /// `clear_max` times, before a message is typed. Empty: a message is
    /// not typed after a draft; `send` refuses it while one is there.
    pub(crate) clear_draft: Vec<Step>,
    /// How often `clear_draft` is pressed before delivery gives up.
    pub(crate) clear_max: u32,
}

impl Default for SubmitSpec {
    fn default() -> Self {
        SubmitSpec {
            mode: SubmitMode::Paste,
            key: Key::Enter,
            pause_ms: 60,
            pause_per_kib_ms: 20,
            max_pause_ms: 2000,
            verify_ms: 1500,
            recheck_ms: 800,
            retries: 2,
            evidence: vec![Evidence::Busy, Evidence::ComposerCleared],
            clear_draft: Vec::new(),
            clear_max: 20,
        }
    }
}

/// How text reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SubmitMode {
    Paste,
    Type,
}

/// Proof that a submitted message started a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Evidence {
    /// The screen reads busy or blocked after the key.
    Busy,
    /// The screen did not read ready before the key (the composer held the
    /// message) and reads ready after it, with output in between: the
    /// composer was emptied by the submission. An Enter taken as a newline,
    /// or ignored, leaves the text in the composer and proves nothing.
    ComposerCleared,
}

/// When a screen-read turn counts as finished.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TurnSpec {
    /// Ready this long after busy was seen: done.
    pub(crate) done_after_busy_ms: u64,
    /// Ready this long when busy was never seen (a very fast turn, or an
    /// agent without a busy marker): done. Longer, because some agents
    /// redraw their idle prompt before their busy line.
    pub(crate) done_without_busy_ms: u64,
}

impl Default for TurnSpec {
    fn default() -> Self {
        TurnSpec { done_after_busy_ms: 100, done_without_busy_ms: 1000 }
    }
}

/// `[progress]`: screen lines that change without the agent getting
/// anywhere (a spinner, an elapsed-time counter), so a watcher does not
/// take them for progress.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ProgressFile {
    /// Regular expressions; a screen line any of them matches is left out
    /// when reins decides whether the screen changed.
    ignore: Vec<String>,
}

/// The compiled `[progress]` section.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProgressSpec {
    pub(crate) ignore: Vec<regex::Regex>,
}

impl ProgressFile {
    fn compile(self) -> Result<ProgressSpec, String> {
        let ignore = self
            .ignore
            .iter()
            .map(|re| {
                regex::RegexBuilder::new(re)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|err| format!("progress.ignore {re:?}: {err}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ProgressSpec { ignore })
    }
}

/// `[rate_limit]`: where a `blocked{rate_limit}` screen says the limit
/// resets. `resets_at` captures a local time of day (`hour`, optional
/// `minute`, `second`, `ampm`), `resets_in` a wait (`secs`, or `minutes`,
/// `hours`); the first that matches a line (from the bottom) wins.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RateLimitFile {
    resets_at: Vec<String>,
    resets_in: Vec<String>,
}

/// The compiled `[rate_limit]` section.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateLimitSpec {
    pub(crate) resets_at: Vec<regex::Regex>,
    pub(crate) resets_in: Vec<regex::Regex>,
}

impl RateLimitFile {
    fn compile(self) -> Result<RateLimitSpec, String> {
        let compile = |list: Vec<String>, what: &str, need: &[&str]| {
            list.iter()
                .map(|re| {
                    let compiled = regex::Regex::new(re)
                        .map_err(|err| format!("rate_limit.{what} {re:?}: {err}"))?;
                    let names: Vec<&str> = compiled.capture_names().flatten().collect();
                    if !need.iter().any(|n| names.contains(n)) {
                        return Err(format!(
                            "rate_limit.{what} {re:?} captures none of {}",
                            need.join(", ")
                        ));
                    }
                    Ok(compiled)
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(RateLimitSpec {
            resets_at: compile(self.resets_at, "resets_at", &["hour"])?,
            resets_in: compile(self.resets_in, "resets_in", &["secs", "minutes", "hours"])?,
        })
    }
}

/// The keys that answer an approval dialog (`reins approve`, `--approve`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ApproveSpec {
    /// Allow this once.
    pub(crate) allow: Vec<Step>,
    /// Allow, and do not ask again for the like (`--always`).
    pub(crate) always: Vec<Step>,
    /// Refuse (`--deny`).
    pub(crate) deny: Vec<Step>,
}

/// One step of an input sequence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    /// Literal text, typed as is.
    Text(String),
    /// A named key.
    Key(Key),
    /// Wait this many milliseconds.
    PauseMs(u64),
    /// Send a signal (`HUP`, `INT`, `TERM`) to the agent's process group.
    Signal(String),
}

/// Keys a sequence can press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Key {
    Enter,
    Esc,
    Tab,
    CtrlC,
    CtrlD,
    /// Deletes the line before the cursor in most composers.
    CtrlU,
}

impl Step {
    /// The bytes of a key or text step (pauses and signals have none).
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Step::Text(text) => text.as_bytes(),
            Step::Key(key) => key.bytes(),
            Step::PauseMs(_) | Step::Signal(_) => b"",
        }
    }
}

impl Key {
    pub(crate) fn bytes(self) -> &'static [u8] {
        match self {
            Key::Enter => b"\r",
            Key::Esc => b"\x1b",
            Key::Tab => b"\t",
            Key::CtrlC => b"\x03",
            Key::CtrlD => b"\x04",
            Key::CtrlU => b"\x15",
        }
    }
}

impl Profile {
    /// Parses and validates a profile.
    pub(crate) fn parse(text: &str, source: ProfileSource) -> Result<Profile, String> {
        let file: ProfileFile = toml::from_str(text).map_err(|err| err.to_string())?;
        if file.app_server.as_ref().is_some_and(|a| a.command.is_empty()) {
            return Err("app_server.command is empty".into());
        }
        if file.stream_json.as_ref().is_some_and(|a| a.command.is_empty()) {
            return Err("stream_json.command is empty".into());
        }
        if file.transport == Transport::ClaudeStreamJson && file.stream_json.is_none() {
            return Err("transport \"claude-stream-json\" needs a [stream_json] section".into());
        }
        if file.transport == Transport::CodexAppServer && file.app_server.is_none() {
            return Err("transport \"codex-app-server\" needs an [app_server] section".into());
        }
        if file.acp.as_ref().is_some_and(|a| a.command.is_empty()) {
            return Err("acp.command is empty".into());
        }
        if file.transport == Transport::Acp && file.acp.is_none() {
            return Err("transport \"acp\" needs an [acp] section".into());
        }
        for step in &file.stop.sequence {
            if let Step::Signal(name) = step {
                crate::procs::signal_by_name(name).ok_or_else(|| {
                    format!("stop.sequence: unknown signal {name:?} (use HUP, INT, TERM, QUIT)")
                })?;
            }
        }
        if file.submit.clear_draft.iter().any(|s| matches!(s, Step::Signal(_) | Step::PauseMs(_))) {
            return Err("submit.clear_draft: keys and text only (the screen is read between \
                        presses)"
                .into());
        }
        if file.submit.recheck_ms == 0 {
            return Err("submit.recheck_ms: must be more than 0".into());
        }
        if file.submit.evidence.is_empty() {
            return Err("submit.evidence: name at least one proof (busy, composer_cleared)".into());
        }
        let rules = file.rules.into_iter().map(Rule::compile).collect::<Result<Vec<_>, _>>()?;
        let outcomes =
            file.outcomes.into_iter().map(Outcome::compile).collect::<Result<Vec<_>, _>>()?;
        let usage =
            file.usage.into_iter().map(UsageRule::compile).collect::<Result<Vec<_>, _>>()?;
        let drafts = rules.iter().any(|r| r.observed.is_draft());
        if !file.submit.clear_draft.is_empty() && !drafts {
            return Err("submit.clear_draft needs a ready rule of kind \"draft\" (it is how \
                        reins sees that the composer is clear)"
                .into());
        }
        let asks =
            rules.iter().any(|r| r.observed.kind == Some(crate::state::BlockedKind::Approval));
        if asks && (file.approve.allow.is_empty() || file.approve.deny.is_empty()) {
            return Err(
                "a profile with an approval rule needs [approve] allow and deny keys".into()
            );
        }
        Ok(Profile {
            name: file.name,
            summary: file.summary,
            tested_versions: file.tested_versions,
            install: file.install,
            transport: file.transport,
            launch: file.launch,
            app_server: file.app_server,
            stream_json: file.stream_json,
            acp: file.acp,
            screen: file.screen,
            input: file.input,
            stop: file.stop,
            submit: file.submit,
            turn: file.turn,
            progress: file.progress.compile()?,
            rate_limit: file.rate_limit.compile()?,
            auth: file.auth,
            endpoint: file.endpoint,
            approve: file.approve,
            rules,
            outcomes,
            usage,
            answer: file.answer.map(|a| a.compile()).transpose()?,
            source,
            text: text.to_string(),
        })
    }
}

fn user_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("reins").join("adapters"))
}

fn load_builtin(stem: &str, text: &str) -> Profile {
    Profile::parse(text, ProfileSource::Builtin)
        .unwrap_or_else(|err| panic!("built-in adapter {stem}.toml is invalid: {err}"))
}

fn load_user(path: PathBuf) -> Result<Profile, CliError> {
    let text = std::fs::read_to_string(&path).map_err(|err| {
        CliError::failure(format!("cannot read adapter profile {}: {err}", path.display()))
    })?;
    Profile::parse(&text, ProfileSource::User(path.clone())).map_err(|err| {
        CliError::failure(format!("adapter profile {} is invalid: {err}", path.display()))
            .hint("fix the file or remove it to use the built-in profile")
    })
}

/// The profile called `name`: the user's override if there is one, else the
/// built-in one; `None` if neither exists.
pub(crate) fn find(name: &str) -> Result<Option<Profile>, CliError> {
    let plain_name =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain_name
        && let Some(path) = user_dir().map(|d| d.join(format!("{name}.toml")))
        && path.is_file()
    {
        return load_user(path).map(Some);
    }
    Ok(builtin::BUILTIN
        .iter()
        .find(|(stem, _)| *stem == name)
        .map(|(stem, text)| load_builtin(stem, text)))
}

/// Every available profile, user overrides replacing built-ins by name.
pub(crate) fn list() -> Result<Vec<Profile>, CliError> {
    let mut by_name: BTreeMap<String, Profile> = builtin::BUILTIN
        .iter()
        .map(|(stem, text)| (stem.to_string(), load_builtin(stem, text)))
        .collect();
    if let Some(dir) = user_dir()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                by_name.insert(stem, load_user(path)?);
            }
        }
    }
    Ok(by_name.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_profile_loads_and_is_named_after_its_file() {
        assert!(builtin::BUILTIN.len() >= 2);
        for (stem, text) in builtin::BUILTIN {
            let p = load_builtin(stem, text);
            assert_eq!(&p.name, stem, "name in {stem}.toml must match the file name");
            assert!(!p.summary.is_empty());
        }
    }

    #[test]
    fn typos_in_profiles_are_errors() {
        let bad =
            "name = \"x\"\nsummary = \"s\"\n[launch]\ncommand = [\"x\"]\n[screen]\nsettle = 5\n";
        let err = Profile::parse(bad, ProfileSource::Builtin).unwrap_err();
        assert!(err.contains("settle"), "{err}");
    }
}
