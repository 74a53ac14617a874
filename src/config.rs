//! `$XDG_CONFIG_HOME/reins/config.toml`: the agents `dispatch` and
//! `agents` know about.
//!
//! ```toml
//! [agents.cheap]
//! agent = "codex"            # the adapter profile it runs (default: NAME)
//! model = "gpt-5-mini"       # passed with the profile's model flag
//! args = ["--search"]        # more arguments for the agent
//! max_concurrent = 2         # live sessions at most (default: no cap)
//! cooldown = "10m"           # rest after it failed a task over (default 10m)
//! model_args = ["-m", "{model}"]  # how to pass the model (default: per profile)
//! host = "gpu"               # its sessions run there (a [hosts.NAME]; default: here)
//! endpoint = "local"         # run on a model endpoint (see below)
//! ```
//!
//! ```toml
//! [endpoints.local]          # an OpenAI-compatible model server
//! url = "http://127.0.0.1:11434/v1"
//! models = ["qwen2.5-coder:7b", "phi4-mini"]  # fallback order
//! timeout = "30s"            # one tiny request (default 30s)
//! api_key_env = "LOCAL_KEY"  # the variable with its key, if it needs one
//! ```
//!
//! Every adapter profile that launches a program is also an agent of its
//! own name (a *built-in*), unless the file configures that name. The file
//! is optional; a broken one is an error with its path and line, never
//! ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::adapter;
use crate::dispatch::routing::{RouteTable, Routed, Rule};
use crate::endpoint::Endpoint;
use crate::error::CliError;

/// How long an agent rests after a dispatch failed a task over from it.
pub(crate) const DEFAULT_COOLDOWN: Duration = Duration::from_secs(600);

/// One `[agents.NAME]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentTable {
    agent: Option<String>,
    model: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    max_concurrent: Option<u32>,
    cooldown: Option<String>,
    model_args: Option<Vec<String>>,
    /// Runs on another machine (`[hosts.NAME]` or an ssh destination).
    host: Option<String>,
    endpoint: Option<String>,
    #[serde(default)]
    self_certify: bool,
}

/// `[dispatch]`: what a dispatch does when the caller does not say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DispatchTable {
    /// Rungs `AGENT[:MODEL]` for a task no `[[route]]` rule routes.
    #[serde(default)]
    pub(crate) default_ladder: Vec<String>,
    /// The verifier when the caller names none.
    pub(crate) verifier: Option<String>,
}

/// One `[endpoints.NAME]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointTable {
    url: String,
    models: Vec<String>,
    timeout: Option<String>,
    api_key_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    agents: toml::Table,
    /// `[endpoints.NAME]`: model servers (see `endpoint`).
    #[serde(default)]
    endpoints: toml::Table,
    fleet: Option<Fleet>,
    /// `[policy]`: what agents may do to sessions.
    policy: Option<Policy>,
    /// `[notify]`: which events come to you, and how.
    notify: Option<crate::notify::Notify>,
    /// `[[route]]`: routing rules (see `dispatch::routing`).
    #[serde(default)]
    route: Vec<RouteTable>,
    /// `[hosts.NAME]`: other machines reached over ssh (`--host NAME`).
    #[serde(default)]
    hosts: std::collections::BTreeMap<String, HostTable>,
    /// `[dispatch]`: the default routing chain and verifier.
    dispatch: Option<DispatchTable>,
    /// `[advisor]`: the model the watcher asks for a second opinion.
    advisor: Option<AdvisorTable>,
    /// `[service]`: how `reins service install` sets up `reins supervise`.
    service: Option<ServiceTable>,
}

/// `[service]`: the unit `reins service install` writes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceTable {
    /// Units the supervisor starts after (and wants): a local model server.
    after: Option<Vec<String>>,
}

/// One `[hosts.NAME]` table: how to reach a machine and its `reins`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostTable {
    /// The ssh destination (`user@host`, a `Host` of ~/.ssh/config);
    /// default: the table's name.
    pub(crate) destination: Option<String>,
    /// More arguments for ssh, before the destination (`["-p", "2222"]`).
    #[serde(default)]
    pub(crate) ssh_options: Vec<String>,
    /// The `reins` program there (default: `reins` on its PATH, then
    /// `~/.local/bin/reins`).
    pub(crate) reins: Option<String>,
}

/// The `[hosts.NAME]` tables of the config file, by name.
pub(crate) fn hosts() -> Result<std::collections::BTreeMap<String, HostTable>, CliError> {
    let hint = "a host is [hosts.NAME] with destination = \"user@machine\", ssh_options = \
                [\"-p\", \"2222\"] and reins = \"/path/to/reins\" (all optional)";
    Ok(read_file(hint)?.map(|(_, _, f)| f.hosts).unwrap_or_default())
}

/// `[advisor]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvisorTable {
    /// An `[endpoints.NAME]` (its URL, and its models unless `models`).
    endpoint: Option<String>,
    /// Or a URL of its own.
    url: Option<String>,
    /// The models to ask, first choice first.
    models: Option<Vec<String>>,
    timeout: Option<String>,
    instructions: Option<String>,
    /// Also ask it which agent takes a dispatch.
    #[serde(default)]
    dispatch: bool,
}

/// `[advisor]`, resolved: where it is and which models to ask.
#[derive(Debug, Clone)]
pub(crate) struct AdvisorConfig {
    pub(crate) url: String,
    pub(crate) models: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) instructions: Option<String>,
    /// Also asked which agent takes a dispatch.
    pub(crate) dispatch: bool,
}

/// `[fleet]`: how sessions are looked after.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fleet {
    /// `reins gc` retires sessions idle this long (default: never).
    retire_after: Option<String>,
}

/// `[policy]`: what agents may do to sessions (DESIGN §10).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    /// Which sessions an agent may change: `any` (default; never its own
    /// approvals) or `started` (only those it started, and its own).
    agents: Option<crate::trust::AgentControl>,
}

/// The config file, parsed (none: there is no file).
fn read_file(hint: &str) -> Result<Option<(PathBuf, String, File)>, CliError> {
    let Some(path) = config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(CliError::failure(format!("cannot read {}: {err}", path.display())));
        }
    };
    let file: File = toml::from_str(&text).map_err(|err| {
        let at = match err.span() {
            Some(span) => format!("{}:{}", path.display(), line_of(&text, span.start)),
            None => path.display().to_string(),
        };
        CliError::usage(format!("{at}: {}", err.message().trim())).hint(hint.to_string())
    })?;
    Ok(Some((path, text, file)))
}

/// `[policy] agents` of the config file (default: `any`).
pub(crate) fn agent_control() -> Result<crate::trust::AgentControl, CliError> {
    let hint = "[policy] agents takes \"any\" or \"started\"";
    Ok(read_file(hint)?.and_then(|(_, _, f)| f.policy?.agents).unwrap_or_default())
}

/// `[notify]` of the config file, if set.
pub(crate) fn notify() -> Result<Option<crate::notify::Notify>, CliError> {
    let hint = "see `reins notify --help` for the [notify] table";
    Ok(read_file(hint)?.and_then(|(_, _, f)| f.notify))
}

/// The `[endpoints.NAME]` of the config file (none without a file).
pub(crate) fn endpoints() -> Result<Vec<Endpoint>, CliError> {
    let hint = "see `reins doctor --help` for the [endpoints.NAME] table";
    let Some((path, text, _)) = read_file(hint)? else { return Ok(Vec::new()) };
    parse_endpoints(&text, &path)
}

/// `[advisor]` of the config file, if set.
pub(crate) fn advisor() -> Result<Option<AdvisorConfig>, CliError> {
    let hint = "[advisor] takes endpoint = \"NAME\" (an [endpoints.NAME]) or url = \"http://...\", \
                models = [...] and timeout = \"10s\"";
    let Some((path, text, file)) = read_file(hint)? else { return Ok(None) };
    let Some(table) = file.advisor else { return Ok(None) };
    let at = text.find("[advisor]").map_or_else(
        || path.display().to_string(),
        |at| format!("{}:{}", path.display(), line_of(&text, at)),
    );
    let bad = |what: String| CliError::usage(format!("{at}: [advisor]: {what}")).hint(hint);
    let (url, endpoint_models) = match (&table.endpoint, &table.url) {
        (Some(name), None) => {
            let endpoints = parse_endpoints(&text, &path)?;
            let endpoint = endpoints
                .iter()
                .find(|e| &e.name == name)
                .ok_or_else(|| bad(format!("no [endpoints.{name}] in the file")))?;
            (endpoint.base.shown(), endpoint.models.clone())
        }
        (None, Some(url)) => (url.clone(), Vec::new()),
        _ => return Err(bad("give endpoint or url (one of them)".into())),
    };
    let models = table.models.unwrap_or(endpoint_models);
    let models = if models.is_empty() { vec!["default".to_string()] } else { models };
    let timeout = match &table.timeout {
        Some(t) => crate::time::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| bad(format!("timeout: {t:?} is not a duration above zero")))?,
        None => Duration::from_secs(10),
    };
    Ok(Some(AdvisorConfig {
        url,
        models,
        timeout,
        instructions: table.instructions,
        dispatch: table.dispatch,
    }))
}

/// `[fleet] retire_after` of the config file, if set.
pub(crate) fn retire_after() -> Result<Option<Duration>, CliError> {
    let hint = "[fleet] retire_after takes a duration, e.g. retire_after = \"24h\"";
    let Some((path, text, file)) = read_file(hint)? else { return Ok(None) };
    let bad = |line: Option<usize>, what: String| {
        let at =
            line.map_or_else(|| path.display().to_string(), |l| format!("{}:{l}", path.display()));
        CliError::usage(format!("{at}: {what}")).hint(hint)
    };
    match file.fleet.and_then(|f| f.retire_after) {
        None => Ok(None),
        Some(d) => crate::time::parse_duration(&d).map(Some).map_err(|err| {
            let line = text.find("retire_after").map(|at| line_of(&text, at));
            bad(line, format!("[fleet] retire_after: {err}"))
        }),
    }
}

/// `[service] after` of the config file: the units `reins supervise`'s
/// service starts after, if set.
pub(crate) fn service_after() -> Result<Option<Vec<String>>, CliError> {
    let hint = "[service] after takes unit names, e.g. after = [\"ollama.service\"]";
    let Some((path, text, file)) = read_file(hint)? else { return Ok(None) };
    let Some(after) = file.service.and_then(|s| s.after) else { return Ok(None) };
    for unit in &after {
        if let Err(err) = crate::service::check_unit_name(unit) {
            let line = text.find("after").map_or(0, |at| line_of(&text, at));
            return Err(CliError::usage(format!(
                "{}:{line}: [service] after: {err}",
                path.display()
            ))
            .hint(hint));
        }
    }
    Ok(Some(after))
}

/// Where an agent's definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    Config,
    Builtin,
}

/// An agent that can be dispatched to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentSpec {
    pub(crate) name: String,
    /// The adapter profile (or program) `reins run` starts.
    pub(crate) base: String,
    pub(crate) model: Option<String>,
    pub(crate) args: Vec<String>,
    /// How the model is passed; `{model}` is replaced.
    pub(crate) model_args: Vec<String>,
    pub(crate) max_concurrent: Option<u32>,
    #[serde(serialize_with = "secs")]
    pub(crate) cooldown: Duration,
    pub(crate) source: Source,
    /// The machine its sessions run on (`None`: this one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// Its answers are accepted on the done checks alone, without a
    /// verifier (a strong last tier certifies itself).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) self_certify: bool,
    /// `model_args` was written in the file (an endpoint's does not replace it).
    #[serde(skip)]
    pub(crate) model_args_set: bool,
    /// The model endpoint it runs on (`endpoint = "NAME"`): a local tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<Box<OnEndpoint>>,
}

/// How an agent runs on a model endpoint: its profile's `[endpoint]` with
/// the endpoint's URL filled in (`{model}` is filled in at launch, the key
/// is read at launch and never kept).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OnEndpoint {
    /// The endpoint's name.
    pub(crate) name: String,
    pub(crate) url: String,
    #[serde(skip)]
    pub(crate) endpoint: Endpoint,
    /// No model was configured: the endpoint's first, or the one its last
    /// probe found answering.
    #[serde(skip)]
    pub(crate) default_model: bool,
    #[serde(skip)]
    args: Vec<String>,
    #[serde(skip)]
    env: Vec<(String, String)>,
}

impl OnEndpoint {
    fn new(endpoint: &Endpoint, launch: &crate::adapter::EndpointLaunch) -> OnEndpoint {
        let key_env = endpoint.api_key_env.clone().unwrap_or_default();
        let fill = |text: &str| {
            text.replace("{base_url}", &endpoint.base.shown())
                .replace("{endpoint}", &endpoint.name)
                .replace("{api_key_env}", &key_env)
        };
        let mut args: Vec<String> = launch.args.iter().map(|a| fill(a)).collect();
        if endpoint.api_key_env.is_some() {
            args.extend(launch.key_args.iter().map(|a| fill(a)));
        }
        let env = launch.env.iter().map(|(k, v)| (k.clone(), fill(v))).collect();
        OnEndpoint {
            name: endpoint.name.clone(),
            url: endpoint.base.shown(),
            endpoint: endpoint.clone(),
            default_model: false,
            args,
            env,
        }
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl AgentSpec {
    /// The arguments after `--` of `reins run BASE`: the model flag (for
    /// `model`, else the configured model) and the configured args.
    pub(crate) fn agent_args(&self, model: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        let model = model.or(self.model.as_deref());
        if let Some(on) = &self.endpoint {
            let model = model.unwrap_or_default();
            out.extend(on.args.iter().map(|a| a.replace("{model}", model)));
        }
        if let Some(model) = model {
            out.extend(self.model_args.iter().map(|a| a.replace("{model}", model)));
        }
        out.extend(self.args.iter().cloned());
        out
    }

    /// Environment the agent needs beyond the caller's: its endpoint's,
    /// with the model filled in. `{api_key}` is left for the launch to fill
    /// from [`AgentSpec::api_key_env`] (a restart fills it again, and the
    /// launch record never holds the key).
    pub(crate) fn launch_env(&self, model: Option<&str>) -> Vec<(String, String)> {
        let Some(on) = &self.endpoint else {
            let Some(model) = model.or(self.model.as_deref()).filter(|_| !self.model_args_set)
            else {
                return Vec::new();
            };
            // The model as a JSON string's contents (the templates are JSON).
            let quoted = serde_json::to_string(model).unwrap_or_default();
            let model = quoted.get(1..quoted.len() - 1).unwrap_or_default();
            return default_model_env(&self.base)
                .iter()
                .map(|(k, v)| (k.to_string(), v.replace("{model}", model)))
                .collect();
        };
        let model = model.or(self.model.as_deref()).unwrap_or_default();
        on.env.iter().map(|(k, v)| (k.clone(), v.replace("{model}", model))).collect()
    }

    /// The variable that holds its endpoint's key, if the endpoint has one.
    pub(crate) fn api_key_env(&self) -> Option<String> {
        self.endpoint.as_ref()?.endpoint.api_key_env.clone()
    }

    /// `reins run`'s AGENT and the arguments after `--`. A generic agent
    /// runs its program (the first of `args`) directly.
    pub(crate) fn run_argv(&self, model: Option<&str>) -> (String, Vec<String>) {
        if self.base == "generic"
            && let Some((program, rest)) = self.args.split_first()
        {
            let mut out: Vec<String> = rest.to_vec();
            if let Some(model) = model.or(self.model.as_deref()) {
                out.extend(self.model_args.iter().map(|a| a.replace("{model}", model)));
            }
            return (program.clone(), out);
        }
        (self.base.clone(), self.agent_args(model))
    }
}

/// The model flag of a profile when the config names none.
fn default_model_args(base: &str) -> Vec<String> {
    let flag: &[&str] = match base {
        "codex" => &["-c", "model=\"{model}\""],
        "claude" | "gemini" | "mock" => &["--model", "{model}"],
        // `opencode acp` (its default transport) takes no -m: see
        // `default_model_env`.
        "opencode" => &[],
        _ => &["--model", "{model}"],
    };
    flag.iter().map(|s| s.to_string()).collect()
}

/// How the model reaches an agent whose command line cannot take it (when
/// `model_args` is not set): OpenCode's ACP server, `opencode acp`, prints
/// its usage and exits 1 given `-m`, so its model goes in the inline
/// config, which its terminal UI reads too (merged over the user's).
fn default_model_env(base: &str) -> &'static [(&'static str, &'static str)] {
    match base {
        "opencode" => &[("OPENCODE_CONFIG_CONTENT", r#"{"model": "{model}"}"#)],
        _ => &[],
    }
}

/// The configured and built-in agents, configured ones first in file order.
#[derive(Debug, Clone)]
pub(crate) struct Agents {
    pub(crate) list: Vec<AgentSpec>,
    /// The config file, when there is one.
    pub(crate) path: Option<PathBuf>,
    /// Its `[[route]]` rules, in file order.
    pub(crate) rules: Vec<Rule>,
    /// Its `[endpoints.NAME]`, in file order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// Its `[dispatch]` (checked: every agent it names is known).
    pub(crate) dispatch: DispatchTable,
}

impl Agents {
    /// Reads the config file (if any) and adds the built-ins.
    pub(crate) fn load() -> Result<Agents, CliError> {
        let path = config_path();
        let text = match path.as_deref().map(std::fs::read_to_string) {
            Some(Ok(text)) => Some(text),
            Some(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => None,
            Some(Err(err)) => {
                let shown = path.as_deref().map(Path::display).map(|p| p.to_string());
                return Err(CliError::failure(format!(
                    "cannot read {}: {err}",
                    shown.unwrap_or_default()
                )));
            }
            None => None,
        };
        let profiles: Vec<String> = adapter::list()?
            .into_iter()
            .filter(|p| !p.launch.command.is_empty())
            .map(|p| p.name)
            .collect();
        let (mut list, routes) = match (&text, &path) {
            (Some(text), Some(path)) => parse(text, path, &profiles)?,
            _ => (Vec::new(), Vec::new()),
        };
        for name in &profiles {
            if !list.iter().any(|a| &a.name == name) {
                list.push(AgentSpec {
                    name: name.clone(),
                    base: name.clone(),
                    model: None,
                    args: Vec::new(),
                    model_args: default_model_args(name),
                    max_concurrent: None,
                    cooldown: DEFAULT_COOLDOWN,
                    source: Source::Builtin,
                    host: None,
                    self_certify: false,
                    model_args_set: false,
                    endpoint: None,
                });
            }
        }
        let known: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
        let mut rules = Vec::new();
        if let (Some(text), Some(path)) = (&text, &path) {
            // The n-th `[[route]]` header is the n-th table.
            let mut lines = text
                .match_indices("[[route]]")
                .map(|(at, _)| line_of(text, at))
                .chain(std::iter::repeat(0));
            for table in routes {
                let line = lines.next().unwrap_or(0);
                rules.push(Rule::new(table, line, &known).map_err(|what| {
                    CliError::usage(format!("{}:{line}: {what}", path.display())).hint(
                        "a rule is [[route]] with when = [\"REGEX\" or \"label:NAME\", ...] and \
                         prefer = [\"AGENT\", ...]; `reins agents --help` shows one",
                    )
                })?);
            }
        }
        let endpoints = match (&text, &path) {
            (Some(text), Some(path)) => parse_endpoints(text, path)?,
            _ => Vec::new(),
        };
        if let (Some(text), Some(path)) = (&text, &path) {
            bind_endpoints(&mut list, &endpoints, text, path)?;
        }
        let dispatch = match (&text, &path) {
            (Some(text), Some(path)) => dispatch_table(text, path, &list)?,
            _ => DispatchTable::default(),
        };
        Ok(Agents { list, path: text.and(path), rules, endpoints, dispatch })
    }

    /// `pool` reordered for a task by the routing rules, the rules' choices
    /// first, with which rules matched; `None` when no rule matches (or
    /// there are none).
    pub(crate) fn routed(
        &self,
        pool: &[AgentSpec],
        task: &str,
        labels: &[String],
    ) -> Option<(Vec<AgentSpec>, String)> {
        let names: Vec<String> = pool.iter().map(|a| a.name.clone()).collect();
        let Routed { order, why } =
            crate::dispatch::routing::route(&self.rules, &names, task, labels)?;
        // Every name in `order` is known: rules were checked against the list.
        let agents = order.iter().filter_map(|n| self.list.iter().find(|a| &a.name == n)).cloned();
        Some((agents.collect(), why))
    }

    /// The agent called `name`, or a usage error naming the known ones.
    pub(crate) fn get(&self, name: &str) -> Result<&AgentSpec, CliError> {
        self.list.iter().find(|a| a.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.list.iter().map(|a| a.name.as_str()).collect();
            CliError::usage(format!("no agent named {}", crate::ids::quoted(name))).hint(format!(
                "known agents: {} (`reins agents` lists them; add one as [agents.{name}] in {})",
                known.join(", "),
                config_path().map_or_else(|| "config.toml".into(), |p| p.display().to_string())
            ))
        })
    }

    /// The agents a dispatch without `--agent`/`--prefer` chooses from:
    /// the configured ones, or, with none configured, every built-in but
    /// the mock agent.
    pub(crate) fn pool(&self) -> Vec<&AgentSpec> {
        let configured: Vec<&AgentSpec> =
            self.list.iter().filter(|a| a.source == Source::Config).collect();
        if !configured.is_empty() {
            return configured;
        }
        self.list.iter().filter(|a| a.name != "mock").collect()
    }
}

/// `$XDG_CONFIG_HOME/reins/config.toml`, else `~/.config/reins/config.toml`.
pub(crate) fn config_path() -> Option<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("reins/config.toml"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".config/reins/config.toml"))
}

/// Line (from 1) of byte offset `at` in `text`.
/// A usage error at `line` of the config file at `path`, with `hint`.
fn error_at(path: &Path, hint: &str, line: Option<usize>, what: String) -> CliError {
    let at = match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    };
    CliError::usage(format!("{at}: {what}")).hint(hint)
}

/// The file's tables, or `bad` at the line TOML stopped at.
fn parse_file(
    text: &str,
    bad: &impl Fn(Option<usize>, String) -> CliError,
) -> Result<File, CliError> {
    toml::from_str(text).map_err(|err| {
        let line = err.span().map(|s| line_of(text, s.start));
        bad(line, err.message().trim().to_string())
    })
}

/// The `[KIND.NAME]` tables in the order the file has them, each with the
/// line its header is on (for errors), then any whose header was not found.
fn in_file_order(
    text: &str,
    kind: &str,
    tables: toml::Table,
) -> Vec<(Option<usize>, String, toml::Value)> {
    let position = |name: &str| {
        let header = format!("[{kind}.{name}]");
        let quoted = format!("[{kind}.\"{name}\"]");
        text.find(&header).or_else(|| text.find(&quoted))
    };
    let mut named: Vec<(Option<usize>, String, toml::Value)> =
        tables.into_iter().map(|(name, value)| (position(&name), name, value)).collect();
    named.sort_by(|(a, x, _), (b, y, _)| {
        (a.unwrap_or(usize::MAX), x).cmp(&(b.unwrap_or(usize::MAX), y))
    });
    named
        .into_iter()
        .map(|(at, name, value)| (at.map(|at| line_of(text, at)), name, value))
        .collect()
}

fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The agents of the file, and its routing tables (checked once every
/// agent is known).
pub(crate) fn parse(
    text: &str,
    path: &Path,
    profiles: &[String],
) -> Result<(Vec<AgentSpec>, Vec<RouteTable>), CliError> {
    let hint = "see `reins agents --help` for the format of [agents.NAME] tables";
    let bad = |line, what| error_at(path, hint, line, what);
    let file = parse_file(text, &bad)?;
    let mut out = Vec::new();
    for (line, name, value) in in_file_order(text, "agents", file.agents) {
        if crate::ids::validate(&name).is_err() {
            return Err(bad(line, format!("agent name {name:?}: use letters, digits, . _ -")));
        }
        let table: AgentTable = value.try_into().map_err(|err: toml::de::Error| {
            bad(line, format!("[agents.{name}]: {}", err.message().trim()))
        })?;
        let base = table.agent.clone().unwrap_or_else(|| name.clone());
        if !profiles.contains(&base) && base != "generic" {
            return Err(bad(
                line,
                format!("[agents.{name}]: agent = {base:?} is not an adapter profile"),
            )
            .hint(format!("use one of: {}", profiles.join(", "))));
        }
        if base == "generic" && table.args.is_empty() {
            return Err(bad(
                line,
                format!("[agents.{name}]: a generic agent needs its program as the first of args"),
            ));
        }
        let cooldown = match &table.cooldown {
            Some(text) => crate::time::parse_duration(text)
                .map_err(|err| bad(line, format!("[agents.{name}]: cooldown: {err}")))?,
            None => DEFAULT_COOLDOWN,
        };
        if table.max_concurrent == Some(0) {
            return Err(bad(line, format!("[agents.{name}]: max_concurrent must be at least 1")));
        }
        out.push(AgentSpec {
            model_args: table.model_args.clone().unwrap_or_else(|| default_model_args(&base)),
            name,
            base,
            model: table.model,
            args: table.args,
            max_concurrent: table.max_concurrent,
            cooldown,
            source: Source::Config,
            host: table.host,
            self_certify: table.self_certify,
            model_args_set: table.model_args.is_some(),
            // Bound once the endpoints are read (`bind_endpoints`); the
            // name is kept here until then.
            endpoint: table.endpoint.map(|name| {
                Box::new(OnEndpoint {
                    name,
                    url: String::new(),
                    endpoint: Endpoint::placeholder(),
                    default_model: false,
                    args: Vec::new(),
                    env: Vec::new(),
                })
            }),
        });
    }
    Ok((out, file.route))
}

/// `[dispatch]` of the file, its agents checked.
fn dispatch_table(text: &str, path: &Path, list: &[AgentSpec]) -> Result<DispatchTable, CliError> {
    let file: File =
        toml::from_str(text).map_err(|err| CliError::usage(err.message().trim().to_string()))?;
    let table = file.dispatch.unwrap_or_default();
    let at = text.find("[dispatch]").map_or_else(
        || path.display().to_string(),
        |at| format!("{}:{}", path.display(), line_of(text, at)),
    );
    let known: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
    let bad = |what: String| {
        CliError::usage(format!("{at}: [dispatch]: {what}"))
            .hint(format!("known agents: {}", known.join(", ")))
    };
    for rung in &table.default_ladder {
        let name = crate::dispatch::split_rung(rung).map_err(&bad)?.0;
        if !known.contains(&name) {
            return Err(bad(format!("default_ladder names {name:?}, which is no agent")));
        }
    }
    if let Some(v) = table.verifier.as_deref().filter(|v| !known.contains(v)) {
        return Err(bad(format!("verifier {v:?} is no agent")));
    }
    Ok(table)
}

/// Points each agent with `endpoint = "NAME"` at that endpoint through its
/// profile's `[endpoint]`; its model defaults to the endpoint's first.
fn bind_endpoints(
    list: &mut [AgentSpec],
    endpoints: &[Endpoint],
    text: &str,
    path: &Path,
) -> Result<(), CliError> {
    for agent in list.iter_mut() {
        let Some(wanted) = agent.endpoint.as_ref().map(|on| on.name.clone()) else { continue };
        let header = format!("[agents.{}]", agent.name);
        let at = text.find(&header).map_or_else(
            || path.display().to_string(),
            |at| format!("{}:{}", path.display(), line_of(text, at)),
        );
        let Some(endpoint) = endpoints.iter().find(|e| e.name == wanted) else {
            let known: Vec<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
            return Err(CliError::usage(format!(
                "{at}: [agents.{}]: no [endpoints.{wanted}] in the file",
                agent.name
            ))
            .hint(if known.is_empty() {
                "add an [endpoints.NAME] table (see `reins doctor --help`)".to_string()
            } else {
                format!("endpoints in the file: {}", known.join(", "))
            }));
        };
        let launch = crate::adapter::find(&agent.base).ok().flatten().and_then(|p| p.endpoint);
        let Some(launch) = launch else {
            let able: Vec<String> = adapter::list()?
                .into_iter()
                .filter(|p| p.endpoint.is_some())
                .map(|p| p.name)
                .collect();
            return Err(CliError::usage(format!(
                "{at}: [agents.{}]: agent {:?} cannot run on a model endpoint",
                agent.name, agent.base
            ))
            .hint(format!("agents that can: {}", able.join(", "))));
        };
        if let Some(model_args) = &launch.model_args
            && !agent.model_args_set
        {
            agent.model_args = model_args.clone();
        }
        let mut on = OnEndpoint::new(endpoint, &launch);
        if agent.model.is_none() {
            agent.model = endpoint.models.first().cloned();
            on.default_model = true;
        }
        agent.endpoint = Some(Box::new(on));
    }
    Ok(())
}

/// The `[endpoints.NAME]` tables of the file, in file order.
pub(crate) fn parse_endpoints(text: &str, path: &Path) -> Result<Vec<Endpoint>, CliError> {
    let hint = "an endpoint is [endpoints.NAME] with url = \"http://HOST:PORT/v1\" and \
                models = [\"MODEL\", ...]; `reins doctor --help` shows one";
    let bad = |line, what| error_at(path, hint, line, what);
    let file = parse_file(text, &bad)?;
    let mut out = Vec::new();
    for (line, name, value) in in_file_order(text, "endpoints", file.endpoints) {
        if crate::ids::validate(&name).is_err() {
            return Err(bad(line, format!("endpoint name {name:?}: use letters, digits, . _ -")));
        }
        let table: EndpointTable = value.try_into().map_err(|err: toml::de::Error| {
            bad(line, format!("[endpoints.{name}]: {}", err.message().trim()))
        })?;
        let base = crate::endpoint::client::BaseUrl::parse(&table.url)
            .map_err(|err| bad(line, format!("[endpoints.{name}]: url: {err}")))?;
        if table.models.is_empty() || table.models.iter().any(|m| m.trim().is_empty()) {
            return Err(bad(line, format!("[endpoints.{name}]: models needs at least one name")));
        }
        let timeout = match &table.timeout {
            Some(text) => crate::time::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    bad(
                        line,
                        format!(
                            "[endpoints.{name}]: timeout: {text:?} is not a duration above zero"
                        ),
                    )
                })?,
            None => crate::endpoint::DEFAULT_TIMEOUT,
        };
        out.push(Endpoint {
            name,
            url: table.url,
            base,
            models: table.models,
            timeout,
            api_key_env: table.api_key_env,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Vec<String> {
        ["mock", "codex", "claude"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tables_in_file_order_with_defaults() {
        let text = r#"
[agents.zeta]
agent = "mock"
model = "m1"
args = ["--work", "0.1"]

[agents.alpha]
agent = "codex"
max_concurrent = 2
cooldown = "30s"
"#;
        let list = parse(text, Path::new("c.toml"), &profiles()).unwrap().0;
        assert_eq!(list[0].name, "zeta");
        assert_eq!(list[0].agent_args(None), ["--model", "m1", "--work", "0.1"]);
        assert_eq!(list[0].agent_args(Some("m2")), ["--model", "m2", "--work", "0.1"]);
        assert_eq!(list[1].name, "alpha");
        assert_eq!(list[1].cooldown, Duration::from_secs(30));
        assert_eq!(list[1].max_concurrent, Some(2));
        assert!(list[1].agent_args(None).is_empty());
    }

    #[test]
    fn an_opencode_model_goes_in_its_inline_config_never_as_a_flag_acp_refuses() {
        let text = "[agents.oc]\nagent = \"opencode\"\nmodel = \"mock/m\\\"x\"\n\n\
                    [agents.pty]\nagent = \"opencode\"\nmodel = \"a/b\"\n\
                    model_args = [\"-m\", \"{model}\"]\n";
        let profiles = vec!["opencode".to_string()];
        let list = parse(text, Path::new("c.toml"), &profiles).unwrap().0;
        assert!(list[0].agent_args(None).is_empty());
        let env = list[0].launch_env(None);
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].0, "OPENCODE_CONFIG_CONTENT");
        let config: serde_json::Value = serde_json::from_str(&env[0].1).unwrap();
        assert_eq!(config["model"], "mock/m\"x");
        assert_eq!(list[0].launch_env(Some("p/q"))[0].1, r#"{"model": "p/q"}"#);
        // Model flags written in the file are the user's word: no env then.
        assert_eq!(list[1].agent_args(None), ["-m", "a/b"]);
        assert!(list[1].launch_env(None).is_empty());
    }

    #[test]
    fn endpoints_in_file_order_with_errors_at_their_line() {
        let text = "[endpoints.b]\nurl = \"http://127.0.0.1:9\"\nmodels = [\"m1\", \"m2\"]\n\n\
                    [endpoints.a]\nurl = \"http://h:1/v1\"\nmodels = [\"x\"]\ntimeout = \"5s\"\n";
        let list = parse_endpoints(text, Path::new("c.toml")).unwrap();
        assert_eq!(list[0].name, "b");
        assert_eq!(list[0].models, ["m1", "m2"]);
        assert_eq!(list[0].base.prefix, "/v1");
        assert_eq!(list[1].timeout, Duration::from_secs(5));
        let err = parse_endpoints(
            "[endpoints.x]\nurl = \"https://h\"\nmodels = [\"m\"]\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.message.starts_with("c.toml:1: [endpoints.x]: url: only http://"), "{err}");
        let err = parse_endpoints(
            "\n[endpoints.x]\nurl = \"http://h\"\nmodels = []\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.message.starts_with("c.toml:2:"), "{err}");
        let err = parse_endpoints(
            "[endpoints.x]\nurl = \"http://h\"\nmodel = \"m\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(err.message.contains("unknown field `model`"), "{err}");
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "[agents.a]\nagent = \"mock\"\n\n[agents.b]\nagnet = \"mock\"\n";
        let err = parse(text, Path::new("c.toml"), &profiles()).unwrap_err();
        assert!(err.message.starts_with("c.toml:4: [agents.b]: unknown field `agnet`"), "{err}");
        let err =
            parse("[agents.a]\nagent = \"nope\"\n", Path::new("c.toml"), &profiles()).unwrap_err();
        assert!(err.message.contains("c.toml:1:") && err.message.contains("\"nope\""), "{err}");
        let err = parse("[agents.a\n", Path::new("c.toml"), &profiles()).unwrap_err();
        assert!(err.message.starts_with("c.toml:1:"), "{err}");
        assert_eq!(err.code, crate::error::code::USAGE);
    }
}
