//! `reins service`: hands `reins supervise` to the machine's service
//! manager — a systemd user unit on Linux, a launchd agent on macOS — so a
//! fleet is looked after with nobody logged in.
//!
//! The unit runs this binary's `supervise` with the environment that
//! decides where sessions live (state, runtime and config directories) and
//! the PATH agents are found on, as they are when it is installed: a
//! supervisor somewhere else would not find the sessions, and a restart
//! would not find the agent. Secrets are never written into it: an
//! optional environment file (`~/.config/reins/service.env`) supplies the
//! keys endpoints read. Stopping the service stops the supervisor only
//! (`KillMode=process`, launchd's `AbandonProcessGroup`): the sessions it
//! restarted are not its to end. When an advisor on this machine is
//! configured, the unit starts after the local model server's unit
//! (`[service] after`, else the first of the usual ones installed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::CliError;

/// The systemd user unit's name.
pub(crate) const SYSTEMD_UNIT: &str = "reins-supervise.service";
/// The launchd agent's label.
pub(crate) const LAUNCHD_LABEL: &str = "dev.reins.supervise";

/// Model servers' usual unit names, looked for when an advisor runs here
/// and `[service] after` does not say.
const MODEL_SERVER_UNITS: &[&str] = &[
    "ollama.service",
    "llama-swap.service",
    "llama-server.service",
    "vllm.service",
    "litellm.service",
    "localai.service",
];

/// The environment the unit carries over from the installing shell,
/// besides the state directory (written as `REINS_STATE_DIR`, resolved).
const CARRIED_ENV: &[&str] = &["XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "PATH"];

/// Which service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Manager {
    /// A systemd user unit (`systemctl --user`).
    Systemd,
    /// A launchd agent (macOS).
    Launchd,
}

impl Manager {
    /// This machine's.
    pub(crate) fn native() -> Manager {
        if cfg!(target_os = "macos") { Manager::Launchd } else { Manager::Systemd }
    }
}

/// The unit to install: where it goes, what it says, and what to know.
#[derive(Debug, Serialize)]
pub(crate) struct Unit {
    pub(crate) manager: Manager,
    pub(crate) path: PathBuf,
    /// Units it starts after (systemd).
    pub(crate) after: Vec<String>,
    /// Things worth knowing about it (an advisor with no model server unit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
    #[serde(skip)]
    pub(crate) text: String,
}

/// What goes into the unit.
struct Plan {
    binary: PathBuf,
    env: Vec<(String, String)>,
    after: Vec<String>,
    env_file: PathBuf,
    notes: Vec<String>,
}

/// The unit for `manager`, from this binary, this environment and
/// config.toml; `after` (--after) overrides `[service] after`.
pub(crate) fn unit(manager: Manager, after: &[String]) -> Result<Unit, CliError> {
    for name in after {
        check_unit_name(name).map_err(|err| {
            CliError::usage(format!("--after {name}: {err}"))
                .hint("a unit name, e.g. --after ollama.service")
        })?;
    }
    let plan = plan(after)?;
    let text = match manager {
        Manager::Systemd => systemd_text(&plan)?,
        Manager::Launchd => launchd_text(&plan)?,
    };
    Ok(Unit { manager, path: unit_path(manager)?, after: plan.after, notes: plan.notes, text })
}

/// Where `manager`'s unit for the supervisor goes.
pub(crate) fn unit_path(manager: Manager) -> Result<PathBuf, CliError> {
    Ok(match manager {
        Manager::Systemd => systemd_dir()?.join(SYSTEMD_UNIT),
        Manager::Launchd => {
            home()?.join("Library/LaunchAgents").join(format!("{LAUNCHD_LABEL}.plist"))
        }
    })
}

fn plan(after: &[String]) -> Result<Plan, CliError> {
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|err| CliError::failure(format!("cannot tell where this reins is: {err}")))?;
    let state = crate::store::paths::StateRoot::from_env()?;
    let state_dir = unit_safe(state.root().to_str(), "the state directory")?.to_string();
    let env = std::iter::once(("REINS_STATE_DIR".to_string(), state_dir))
        .chain(CARRIED_ENV.iter().filter_map(|key| {
            let value = std::env::var(key).ok().filter(|v| !v.is_empty())?;
            Some((key.to_string(), value))
        }))
        .collect();
    let mut notes = Vec::new();
    let after = if !after.is_empty() {
        after.to_vec()
    } else if let Some(after) = crate::config::service_after()? {
        after
    } else {
        match crate::config::advisor()? {
            Some(advisor) if is_local(&advisor.url) => match installed_model_server() {
                Some(unit) => vec![unit],
                None => {
                    notes.push(format!(
                        "the advisor at {} runs on this machine, but no model server unit was \
                         found ({}): set [service] after = [\"NAME.service\"] in config.toml to \
                         start the supervisor after it",
                        advisor.url,
                        MODEL_SERVER_UNITS.join(", ")
                    ));
                    Vec::new()
                }
            },
            _ => Vec::new(),
        }
    };
    let env_file = config_home()?.join("reins/service.env");
    Ok(Plan { binary, env, after, env_file, notes })
}

/// Whether an advisor's URL is on this machine.
fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// The first of the usual model server units installed for this user's
/// systemd.
fn installed_model_server() -> Option<String> {
    let mut dirs = Vec::new();
    if let Ok(dir) = systemd_dir() {
        dirs.push(dir);
    }
    dirs.extend(
        ["/etc/systemd/user", "/usr/local/lib/systemd/user", "/usr/lib/systemd/user"]
            .map(PathBuf::from),
    );
    MODEL_SERVER_UNITS
        .iter()
        .find(|unit| dirs.iter().any(|dir| dir.join(unit).exists()))
        .map(|unit| unit.to_string())
}

/// A unit name systemd accepts (`name.service`, `name@inst.target`, …).
pub(crate) fn check_unit_name(name: &str) -> Result<(), String> {
    const SUFFIXES: &[&str] =
        &[".service", ".target", ".socket", ".mount", ".path", ".timer", ".device", ".scope"];
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
    if name.is_empty() || name.len() > 255 || !ok_chars {
        return Err(format!("{name:?} is not a unit name"));
    }
    if !SUFFIXES.iter().any(|s| name.ends_with(s) && name.len() > s.len()) {
        return Err(format!("{name:?} has no unit type (e.g. ollama.service)"));
    }
    Ok(())
}

fn home() -> Result<PathBuf, CliError> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| CliError::failure("HOME is not set").hint("set HOME"))
}

fn config_home() -> Result<PathBuf, CliError> {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(home()?.join(".config")),
    }
}

/// Where this user's systemd units go.
fn systemd_dir() -> Result<PathBuf, CliError> {
    Ok(config_home()?.join("systemd/user"))
}

fn systemd_text(plan: &Plan) -> Result<String, CliError> {
    let mut text = String::from(
        "# Written by `reins service install`; `reins service uninstall` removes it.\n\
         [Unit]\n\
         Description=reins supervise: watches the sessions that asked, restarts what died, \
         retires idle sessions (`reins supervise --help`)\n",
    );
    if !plan.after.is_empty() {
        let units = plan.after.join(" ");
        text.push_str(&format!("After={units}\nWants={units}\n"));
    }
    text.push_str("\n[Service]\nType=simple\n");
    text.push_str(&format!("ExecStart={} supervise\n", systemd_word(&plan.binary)?));
    for (key, value) in &plan.env {
        text.push_str(&format!("Environment={}\n", systemd_assignment(key, value)?));
    }
    if !plan.env.iter().any(|(key, _)| key == "XDG_RUNTIME_DIR") {
        // The shell had none, so sessions keep their sockets in the state
        // directory: the supervisor must look there too.
        text.push_str("UnsetEnvironment=XDG_RUNTIME_DIR\n");
    }
    text.push_str(&format!(
        "# Keys for model endpoints (api_key_env), one NAME=VALUE a line, if you need them.\n\
         EnvironmentFile=-{}\n",
        systemd_path(&plan.env_file)?
    ));
    text.push_str(
        "# Stopping the supervisor leaves the sessions it restarted running.\n\
         KillMode=process\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         \n[Install]\n\
         WantedBy=default.target\n",
    );
    Ok(text)
}

/// A path or word for a unit file's command line: quoted, with systemd's
/// specifiers (`%`) and variables (`$`) escaped.
fn systemd_word(path: &Path) -> Result<String, CliError> {
    let text = unit_safe(path.to_str(), "the reins binary's path")?;
    Ok(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$")
    ))
}

/// A path in a setting that takes one (no quotes; specifiers escaped).
fn systemd_path(path: &Path) -> Result<String, CliError> {
    let text = unit_safe(path.to_str(), "the environment file's path")?;
    if text.contains(char::is_whitespace) {
        return Err(CliError::failure(format!("{text:?} has a space, which a unit cannot hold"))
            .hint("set XDG_CONFIG_HOME to a directory without spaces"));
    }
    Ok(text.replace('%', "%%"))
}

/// `"KEY=VALUE"` for `Environment=`.
fn systemd_assignment(key: &str, value: &str) -> Result<String, CliError> {
    let value = unit_safe(Some(value), key)?;
    Ok(format!("\"{key}={}\"", value.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%")))
}

fn unit_safe<'a>(text: Option<&'a str>, what: &str) -> Result<&'a str, CliError> {
    match text {
        Some(text) if !text.contains(['\n', '\r', '\0']) => Ok(text),
        _ => Err(CliError::failure(format!("{what} cannot be written into a unit file"))
            .hint("it must be UTF-8 with no line breaks")),
    }
}

fn launchd_text(plan: &Plan) -> Result<String, CliError> {
    let binary = unit_safe(plan.binary.to_str(), "the reins binary's path")?;
    let logs = home()?.join("Library/Logs/reins-supervise.log");
    let logs = unit_safe(logs.to_str(), "the log path")?;
    let mut env = String::new();
    for (key, value) in &plan.env {
        env.push_str(&format!(
            "\t\t<key>{}</key>\n\t\t<string>{}</string>\n",
            xml(key),
            xml(value)
        ));
    }
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by `reins service install`; `reins service uninstall` removes it. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>{LAUNCHD_LABEL}</string>
	<key>ProgramArguments</key>
	<array>
		<string>{binary}</string>
		<string>supervise</string>
	</array>
	<key>EnvironmentVariables</key>
	<dict>
{env}	</dict>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<key>AbandonProcessGroup</key>
	<true/>
	<key>ProcessType</key>
	<string>Background</string>
	<key>StandardErrorPath</key>
	<string>{logs}</string>
</dict>
</plist>
"#,
        binary = xml(binary),
        logs = xml(logs),
    ))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// One call to the service manager: what ran and how it went.
#[derive(Debug, Serialize)]
pub(crate) struct Step {
    pub(crate) command: String,
    pub(crate) ok: bool,
    /// What it said when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// How long one call to the service manager may take.
const MANAGER_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `program args` with a deadline; its output is kept for the report.
pub(crate) async fn call(program: &str, args: &[&str]) -> (Step, String) {
    let command =
        std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let mut child = tokio::process::Command::new(program);
    child.args(args).stdin(std::process::Stdio::null()).kill_on_drop(true);
    let (ok, out, error) = match tokio::time::timeout(MANAGER_TIMEOUT, child.output()).await {
        Err(_) => (false, String::new(), Some(format!("no answer within {MANAGER_TIMEOUT:?}"))),
        Ok(Err(err)) => (false, String::new(), Some(format!("cannot run {program}: {err}"))),
        Ok(Ok(output)) => {
            let out = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let err = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if output.status.success() {
                (true, out, None)
            } else {
                let said = if err.is_empty() { out.clone() } else { err };
                (false, out, Some(format!("{} ({})", said, output.status)))
            }
        }
    };
    (Step { command, ok, error }, out)
}

/// One call to the service manager.
pub(crate) struct Call {
    argv: Vec<String>,
    /// Its failure is expected and is none: launchd's `bootout` of an
    /// agent it has not loaded, before loading it again.
    may_fail: bool,
}

impl Call {
    fn new(argv: &[&str]) -> Call {
        Call { argv: argv.iter().map(|a| a.to_string()).collect(), may_fail: false }
    }
}

/// launchd's domain of this user's agents.
fn launchd_domain() -> String {
    format!("gui/{}", rustix::process::getuid().as_raw())
}

/// The calls that load the unit (and start it now).
pub(crate) fn load_calls(unit: &Unit) -> Vec<Call> {
    match unit.manager {
        Manager::Systemd => vec![
            Call::new(&["systemctl", "--user", "daemon-reload"]),
            Call::new(&["systemctl", "--user", "enable", SYSTEMD_UNIT]),
            // A restart starts it, or brings an updated unit in.
            Call::new(&["systemctl", "--user", "restart", SYSTEMD_UNIT]),
        ],
        Manager::Launchd => {
            let domain = launchd_domain();
            let unloaded = format!("{domain}/{LAUNCHD_LABEL}");
            vec![
                Call { may_fail: true, ..Call::new(&["launchctl", "bootout", &unloaded]) },
                Call::new(&["launchctl", "bootstrap", &domain, &unit.path.to_string_lossy()]),
            ]
        }
    }
}

/// The calls that stop the service and forget it.
pub(crate) fn unload_calls(manager: Manager) -> Vec<Call> {
    match manager {
        Manager::Systemd => {
            vec![Call::new(&["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT])]
        }
        Manager::Launchd => {
            let target = format!("{}/{LAUNCHD_LABEL}", launchd_domain());
            vec![Call::new(&["launchctl", "bootout", &target])]
        }
    }
}

/// The calls once the unit file is gone: systemd reads its units again.
pub(crate) fn removed_calls(manager: Manager) -> Vec<Call> {
    match manager {
        Manager::Systemd => vec![Call::new(&["systemctl", "--user", "daemon-reload"])],
        Manager::Launchd => Vec::new(),
    }
}

/// Makes the calls in order, each with its deadline.
pub(crate) async fn make_calls(calls: Vec<Call>) -> Vec<Step> {
    let mut done = Vec::new();
    for call in calls {
        let args: Vec<&str> = call.argv[1..].iter().map(String::as_str).collect();
        let (mut step, _) = self::call(&call.argv[0], &args).await;
        if call.may_fail {
            step.ok = true;
            step.error = None;
        }
        done.push(step);
    }
    done
}

/// What the service manager says of the unit: enabled and active, or why
/// it cannot tell.
#[derive(Debug, Serialize)]
pub(crate) struct ManagerState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enabled: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) active: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

pub(crate) async fn manager_state(manager: Manager) -> ManagerState {
    match manager {
        Manager::Systemd => {
            // is-enabled and is-active answer on stdout, exiting non-zero
            // for "disabled"/"inactive": the words are the answer.
            let (enabled, enabled_out) =
                call("systemctl", &["--user", "is-enabled", SYSTEMD_UNIT]).await;
            let (active, active_out) =
                call("systemctl", &["--user", "is-active", SYSTEMD_UNIT]).await;
            let word = |out: String| Some(out).filter(|o| !o.is_empty() && !o.contains(' '));
            let (enabled_word, active_word) = (word(enabled_out), word(active_out));
            let error = match (&enabled_word, &active_word) {
                (None, _) => enabled.error,
                (_, None) => active.error,
                _ => None,
            };
            ManagerState { enabled: enabled_word, active: active_word, error }
        }
        Manager::Launchd => {
            let target = format!("{}/{LAUNCHD_LABEL}", launchd_domain());
            let (step, _) = call("launchctl", &["print", &target]).await;
            ManagerState {
                enabled: None,
                active: Some(if step.ok { "loaded" } else { "not loaded" }.into()),
                error: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_need_a_type_and_plain_characters() {
        assert!(check_unit_name("ollama.service").is_ok());
        assert!(check_unit_name("llama@7b.service").is_ok());
        assert!(check_unit_name("network-online.target").is_ok());
        assert!(check_unit_name("ollama").is_err());
        assert!(check_unit_name(".service").is_err());
        assert!(check_unit_name("a b.service").is_err());
        assert!(check_unit_name("x;rm.service").is_err());
    }

    #[test]
    fn an_advisor_is_local_on_loopback_only() {
        assert!(is_local("http://127.0.0.1:11434/v1"));
        assert!(is_local("http://localhost:11434"));
        assert!(is_local("http://[::1]:8080/v1"));
        assert!(!is_local("https://advisor.example.com/v1"));
        assert!(!is_local("http://10.0.0.5:11434"));
    }

    #[test]
    fn unit_words_escape_what_systemd_would_expand() {
        let word = systemd_word(Path::new("/opt/my tools/100%/$bin/reins")).unwrap();
        assert_eq!(word, "\"/opt/my tools/100%%/$$bin/reins\"");
        assert_eq!(systemd_assignment("PATH", "/a\"b%c").unwrap(), "\"PATH=/a\\\"b%%c\"");
        assert!(systemd_assignment("PATH", "a\nb").is_err());
        assert_eq!(xml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
