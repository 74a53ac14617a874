//! `reins doctor`: what this machine can run.
//!
//! Checks reins' own needs (a writable state directory, pseudo-terminals),
//! tmux, the model endpoints of config.toml (`[endpoints.NAME]`: does it
//! answer, which of its models it serves), and every agent profile's program: found on PATH, answers
//! `--version`, and for agents with an app-server or an ACP command,
//! completes the same `initialize` a session starts with. Checks run in parallel, each
//! bounded by `--timeout`, so a hung agent cannot hang doctor.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::adapter::probe::{Check, Status, agent_and_its_protocols, tmux};
use crate::adapter::{self, Profile};
use crate::error::{CliError, CliResult, code};
use crate::store::paths::StateRoot;
use crate::style::{Paint, Stream};

/// Check what reins can run here: its state directory, pseudo-terminals,
/// tmux, and each agent CLI (found, its version, whether it starts).
///
/// With no NAME, everything is checked and the exit code says whether
/// reins itself works (missing agents are reported, not failures). With
/// names, the exit code is 0 only if reins and every named thing are
/// usable, so a script can ask `reins doctor codex tmux || exit`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins doctor                  everything, as a table
  reins doctor codex claude     exit 1 unless both are usable
  reins doctor --json tmux      one JSON document
  reins doctor endpoints        exit 1 unless every [endpoints.NAME] is usable

Model endpoints come from config.toml:
  [endpoints.local]
  url = \"http://127.0.0.1:11434/v1\"   # OpenAI-compatible (Ollama, vLLM, LiteLLM)
  models = [\"qwen2.5-coder:7b\", \"phi4-mini\"]  # first choice first
  timeout = \"30s\"                     # one tiny request (default 30s)
  api_key_env = \"LOCAL_KEY\"           # the variable holding its key, if any
An endpoint is usable when its model list answers within --timeout and
has at least one of the models; `reins agents --probe` finds the first
model that completes a request.

Agents with an app-server (codex) or an ACP command (gemini, opencode,
qwen) are started and must answer `initialize`; the others must answer
`--version`. An ACP handshake that fails breaks an agent whose transport
is ACP, and is only reported for one that uses it on request. A version
outside the profile's tested_versions is reported, not refused.

Exit codes: 0 reins works and every NAME is usable, 1 something required is
not (see the table), 2 bad input.")]
pub(crate) struct Args {
    /// What must be usable: `tmux`, an adapter profile name, `endpoints`
    /// (every configured endpoint), `endpoint:NAME` or `advisor` (the
    /// [advisor] of config.toml answers).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// How long each program gets to answer (seconds, or 500ms, 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "10", value_parser = crate::time::parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    reins: &'static str,
    checks: Vec<Check>,
}

/// Runs the checks and prints the report; exit 1 if a required one failed.
pub(crate) fn run(args: Args) -> CliResult<u8> {
    if args.timeout.is_zero() {
        return Err(
            CliError::usage("--timeout must be more than zero").hint("for example --timeout 10")
        );
    }
    let timeout = args.timeout;
    let profiles: Vec<Profile> =
        adapter::list()?.into_iter().filter(|p| !p.launch.command.is_empty()).collect();
    let wants_endpoints = args.names.iter().any(|n| n == "endpoints" || n.starts_with("endpoint:"));
    // A broken config file breaks only what comes from it.
    let (endpoints, config_error) = match crate::config::endpoints() {
        Ok(list) => (list, None),
        Err(err) if wants_endpoints => return Err(err),
        Err(err) => (Vec::new(), Some(err)),
    };
    if args.names.iter().any(|n| n == "endpoints") && endpoints.is_empty() {
        return Err(CliError::usage("no [endpoints.NAME] in config.toml to check").hint(format!(
            "add one to {} (see `reins doctor --help`)",
            crate::config::config_path()
                .map_or_else(|| "config.toml".into(), |p| p.display().to_string())
        )));
    }
    for name in &args.names {
        let endpoint = name.strip_prefix("endpoint:");
        let known_endpoint = endpoint.is_some_and(|e| endpoints.iter().any(|ep| ep.name == e));
        if name != "tmux"
            && name != "advisor"
            && name != "endpoints"
            && !known_endpoint
            && !profiles.iter().any(|p| &p.name == name)
        {
            let mut known = vec!["tmux".to_string()];
            known.extend(profiles.iter().map(|p| p.name.clone()));
            if !endpoints.is_empty() {
                known.push("endpoints".into());
                known.extend(endpoints.iter().map(|e| format!("endpoint:{}", e.name)));
            }
            return Err(CliError::usage(format!("nothing called {name:?} to check"))
                .hint(format!("name one of: {}", known.join(", "))));
        }
    }

    let mut checks = vec![state_dir(), pseudo_terminals()];
    let probes = std::thread::scope(|scope| {
        let tmux = scope.spawn(|| tmux(timeout));
        let agents: Vec<_> = profiles
            .iter()
            .map(|p| scope.spawn(move || agent_and_its_protocols(p, timeout)))
            .collect();
        let mut out = vec![tmux.join().expect("tmux check")];
        out.extend(agents.into_iter().map(|h| h.join().expect("agent check")));
        out
    });
    checks.extend(probes);
    if let Some(err) = config_error {
        checks
            .push(Check::new("config", Status::Broken, err.message.clone()).hint(err.hint.clone()));
    }
    checks.extend(endpoint_checks(&endpoints, timeout));
    match crate::config::advisor() {
        Ok(Some(advisor)) => checks.push(advisor_check(&advisor)),
        Ok(None) => {}
        Err(err) if args.names.iter().any(|n| n == "advisor") => return Err(err),
        Err(err) => checks.push(
            Check::new("advisor", Status::Broken, err.message.clone()).hint(err.hint.clone()),
        ),
    }
    let all_endpoints = args.names.iter().any(|n| n == "endpoints");
    for check in &mut checks {
        check.required = matches!(check.name.as_str(), "state-dir" | "pty")
            || args.names.contains(&check.name)
            || (all_endpoints && check.endpoint.is_some());
    }
    let ok = checks.iter().all(|c| !c.required || c.status == Status::Ok);
    let report = Report { ok, reins: env!("CARGO_PKG_VERSION"), checks };

    let mut out = std::io::stdout().lock();
    // harnex's doctor prints only JSON: as harnex, so does this one.
    if args.json || crate::compat::is_harnex() {
        serde_json::to_writer(&mut out, &report).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &report)?;
    }
    Ok(if ok { code::OK } else { code::FAILURE })
}

fn print_table(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let paint = Paint::new(Stream::Stdout);
    writeln!(out, "reins {}", report.reins)?;
    let width = report.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &report.checks {
        let status = match c.status {
            Status::Ok => paint.green("ok     "),
            Status::Missing => paint.yellow("missing"),
            Status::Broken => paint.red("BROKEN "),
        };
        let mark = if c.required && c.status != Status::Ok { "  (required)" } else { "" };
        writeln!(out, "{:width$}  {status}  {}{mark}", c.name, c.detail)?;
        if let Some(hint) = &c.hint
            && c.status != Status::Ok
        {
            writeln!(out, "{:width$}           hint: {hint}", "")?;
        }
    }
    if !report.ok {
        writeln!(out, "not everything required is usable (see above)")?;
    }
    Ok(())
}

/// `[advisor]`: does it answer a ping (its model list, 2 s at most).
fn advisor_check(config: &crate::config::AdvisorConfig) -> Check {
    let advisor = crate::watch::advisor::Advisor::new(
        &config.url,
        "default",
        config.timeout,
        config.instructions.clone(),
    );
    let advisor = match advisor {
        Ok(advisor) => advisor.with_models(config.models.clone()),
        Err(err) => {
            return Check::new("advisor", Status::Broken, format!("[advisor]: {err}"))
                .hint(Some("e.g. url = \"http://127.0.0.1:11434\" (a local Ollama)".into()));
        }
    };
    let pinged = crate::cli::runtime().block_on(advisor.ping());
    let models = config.models.join(", ");
    match pinged {
        Ok(()) => Check::new("advisor", Status::Ok, format!("{} answers (models: {models})", advisor.shown())),
        Err(why) => Check::new("advisor", Status::Broken, format!("{}: {why}", advisor.shown())).hint(Some(
            "start the model server or fix [advisor] in config.toml; the watcher's rules decide meanwhile".into(),
        )),
    }
}

/// Every endpoint's model list, asked at once, each within `timeout`.
fn endpoint_checks(endpoints: &[crate::endpoint::Endpoint], timeout: Duration) -> Vec<Check> {
    if endpoints.is_empty() {
        return Vec::new();
    }
    crate::cli::runtime().block_on(async {
        let asks: Vec<_> = endpoints
            .iter()
            .cloned()
            .map(|ep| {
                tokio::spawn(async move { crate::endpoint::check::reach(&ep, timeout).await })
            })
            .collect();
        let mut out = Vec::new();
        for (ask, ep) in asks.into_iter().zip(endpoints) {
            out.push(match ask.await {
                Ok(reach) => reach.as_check(),
                Err(err) => Check::new(
                    &format!("endpoint:{}", ep.name),
                    Status::Broken,
                    format!("internal error: {err}"),
                ),
            });
        }
        out
    })
}

/// The state root exists (or can be made), is private and writable.
fn state_dir() -> Check {
    let root = match StateRoot::from_env() {
        Ok(root) => root,
        Err(err) => return Check::new("state-dir", Status::Broken, err.to_string()),
    };
    let path = root.root().display().to_string();
    let mut check = match root.ensure() {
        Ok(()) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.root()).map(|m| m.permissions().mode() & 0o777);
            match mode {
                Ok(mode) if mode & 0o077 != 0 => Check::new(
                    "state-dir",
                    Status::Ok,
                    format!("{path} (mode {mode:o}: others can read it)"),
                )
                .hint(Some(format!("chmod 700 {path}"))),
                _ => Check::new("state-dir", Status::Ok, format!("{path} (private, writable)")),
            }
        }
        Err(err) => Check::new("state-dir", Status::Broken, err.to_string()),
    };
    check.path = Some(path);
    check
}

/// A pseudo-terminal can be opened (every PTY session needs one).
fn pseudo_terminals() -> Check {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let opened = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).and_then(|master| {
        grantpt(&master)?;
        unlockpt(&master)?;
        ptsname(&master, Vec::new())
    });
    match opened {
        Ok(_) => Check::new("pty", Status::Ok, "pseudo-terminals can be opened"),
        Err(err) => {
            Check::new("pty", Status::Broken, format!("cannot open a pseudo-terminal: {err}")).hint(
                Some(
                    "mount devpts at /dev/pts (in containers: --privileged or a /dev/pts mount)"
                        .into(),
                ),
            )
        }
    }
}
