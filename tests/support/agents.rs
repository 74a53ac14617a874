//! Isolated homes for live runs of the real agent CLIs (Codex, Claude Code,
//! Gemini CLI) against the mock model on 127.0.0.1.
//!
//! Each run gets its own `$HOME` seeded from `tests/fixtures/agent-homes/<agent>/`
//! (onboarding done, folder trusted, API key approved, model endpoint = the
//! mock), a work dir, a private `$TMPDIR`, and the environment variables that
//! keep the CLI offline and quiet. The CLIs themselves come from
//! `scripts/install-agents`; live tests only run inside `scripts/netns-run`
//! (loopback only). See `docs/real-agents.md`.

#![allow(dead_code, reason = "each live-agent test uses a different subset of the helpers")]

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// A real agent CLI the live tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agent {
    Codex,
    Claude,
    Gemini,
    /// OpenCode, the fourth agent (`scripts/install-agents --extra`); not in
    /// [`Agent::ALL`], which names what every live run needs installed.
    OpenCode,
}

/// The `ANTHROPIC_API_KEY` every seeded Claude home uses; its last 20
/// characters are pre-approved in the seeded `.claude.json`, otherwise the
/// TUI asks "Do you want to use this API key?".
pub const CLAUDE_API_KEY: &str = "sk-ant-mock-0123456789abcdefghij";

impl Agent {
    pub const ALL: [Agent; 3] = [Agent::Codex, Agent::Claude, Agent::Gemini];

    /// The executable name, also the fixture directory name.
    pub fn name(self) -> &'static str {
        match self {
            Agent::Codex => "codex",
            Agent::Claude => "claude",
            Agent::Gemini => "gemini",
            Agent::OpenCode => "opencode",
        }
    }

    /// The command line that starts the interactive TUI. Codex needs
    /// `--no-daemon`: without it the TUI starts a detached app-server daemon
    /// that outlives it.
    pub fn tui_argv(self) -> Vec<&'static str> {
        match self {
            Agent::Codex => vec!["codex", "--no-daemon"],
            Agent::Claude => vec!["claude"],
            Agent::Gemini => vec!["gemini"],
            Agent::OpenCode => vec!["opencode"],
        }
    }
}

/// A seeded, isolated home for one agent run.
#[derive(Debug, Clone)]
pub struct AgentHome {
    /// `$HOME` of the run.
    pub home: PathBuf,
    /// `$HOME/work`: the agent's working directory.
    pub work: PathBuf,
    /// Every environment variable the CLI needs; set these on a scrubbed
    /// environment (`PATH` already includes the installed agents, if any).
    pub env: Vec<(String, String)>,
}

impl AgentHome {
    /// Seeds config files under `root` for `agent`, pointing it at the mock
    /// model at `base_url` (`http://127.0.0.1:PORT`, no trailing slash).
    ///
    /// Layout: `root/home` (`$HOME`), `root/home/work` (cwd), `root/tmp`
    /// (`$TMPDIR`). Paths written into the seeds are canonical, since the
    /// CLIs compare the resolved cwd against their trusted-folder entries.
    pub fn seed(agent: Agent, root: &Path, base_url: &str) -> io::Result<AgentHome> {
        let mut home = AgentHome::seed_from(&fixtures_dir().join(agent.name()), root, base_url)?;
        let base_url = base_url.trim_end_matches('/');
        let codex_home = home.home.join(".codex").to_string_lossy().into_owned();
        let env = &mut home.env;
        let vars: &[(&str, &str)] = match agent {
            // CODEX_HOME must not lie under $TMPDIR (see the config seed).
            Agent::Codex => &[("MOCK_API_KEY", "mock-key")],
            Agent::Claude => &[
                ("ANTHROPIC_API_KEY", CLAUDE_API_KEY),
                // Without these: ~10 lookups of api.anthropic.com per turn,
                // and a plugin-marketplace fetch on the first TUI start.
                ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                ("CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL", "1"),
                ("DISABLE_TELEMETRY", "1"),
                ("DISABLE_AUTOUPDATER", "1"),
                ("DISABLE_ERROR_REPORTING", "1"),
                // Mock errors surface at once instead of after backoff.
                ("CLAUDE_CODE_MAX_RETRIES", "0"),
                // Lets `--dangerously-skip-permissions` run as root.
                ("IS_SANDBOX", "1"),
            ],
            Agent::Gemini => &[
                // The auth type itself comes from settings.json: with the
                // base URL set and no selectedType, 0.61 picks "gateway" and
                // then rejects it.
                ("GEMINI_API_KEY", "mock-key"),
                ("COLORTERM", "truecolor"),
                // One node process instead of a parent relaunching a child
                // with a bigger heap.
                ("GEMINI_CLI_NO_RELAUNCH", "true"),
            ],
            Agent::OpenCode => &[
                // No fetch of the models.dev catalogue (a DNS lookup of
                // models.opencode.ai, an error in its log, a slower first
                // turn); the seed also says `"autoupdate": false`.
                ("OPENCODE_DISABLE_MODELS_FETCH", "1"),
                ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
            ],
        };
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        match agent {
            Agent::Codex => env.push(("CODEX_HOME".into(), codex_home)),
            Agent::Claude => env.push(("ANTHROPIC_BASE_URL".into(), base_url.into())),
            Agent::Gemini => env.push(("GOOGLE_GEMINI_BASE_URL".into(), base_url.into())),
            // Its provider's base URL is in the seed (`{{BASE_URL}}/v1`).
            Agent::OpenCode => {}
        }
        Ok(home)
    }

    /// The layout and environment every seeded home shares, with the seed
    /// tree `seeds` copied into `$HOME` (`{{BASE_URL}}` and `{{WORK}}`
    /// filled in). The agent's own variables are the caller's to add.
    pub fn seed_from(seeds: &Path, root: &Path, base_url: &str) -> io::Result<AgentHome> {
        let base_url = base_url.trim_end_matches('/');
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        let home = root.join("home");
        let work = home.join("work");
        let tmp = root.join("tmp");
        for dir in [&home, &work, &tmp] {
            fs::create_dir_all(dir)?;
        }

        let work_str = work.to_str().ok_or_else(|| not_utf8(&work))?;
        let fill = |text: &str| {
            text.replace("{{BASE_URL}}", &escape(base_url)).replace("{{WORK}}", &escape(work_str))
        };
        copy_seeds(seeds, &home, &fill)?;

        let path = |p: &Path| p.to_string_lossy().into_owned();
        let env: Vec<(String, String)> = vec![
            ("HOME".into(), path(&home)),
            ("TMPDIR".into(), path(&tmp)),
            ("XDG_CONFIG_HOME".into(), path(&home.join(".config"))),
            ("XDG_CACHE_HOME".into(), path(&home.join(".cache"))),
            ("XDG_DATA_HOME".into(), path(&home.join(".local/share"))),
            ("XDG_STATE_HOME".into(), path(&home.join(".local/state"))),
            ("PATH".into(), search_path()),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        Ok(AgentHome { home, work, env })
    }
}

/// `tests/fixtures/agent-homes`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agent-homes")
}

/// Where `scripts/install-agents` installs (`REINS_AGENTS_DIR` overrides).
fn agents_dir() -> PathBuf {
    match std::env::var_os("REINS_AGENTS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/agents"),
    }
}

/// `.cache/agents/node_modules/.bin` under the repo, once
/// `scripts/install-agents` has completed there (it writes its stamp file
/// last), holding `codex`, `claude` and `gemini`.
pub fn agents_bin_dir() -> Option<PathBuf> {
    let dir = agents_dir();
    let bin = dir.join("node_modules/.bin");
    let complete = dir.join("installed.txt").is_file()
        && Agent::ALL.iter().all(|a| bin.join(a.name()).exists());
    complete.then_some(bin)
}

/// True when this process sits in a network namespace whose only interface
/// is `lo`, as under `scripts/netns-run`: both `/sys/class/net` (which needs
/// the fresh sysfs mount netns-run makes) and `/proc/net/dev` must agree, so
/// a stale view errs on the side of "not isolated".
pub fn in_isolated_netns() -> bool {
    let sys: Option<Vec<String>> = fs::read_dir("/sys/class/net").ok().map(|entries| {
        entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    });
    let proc: Option<Vec<String>> = fs::read_to_string("/proc/net/dev").ok().map(|text| {
        text.lines().skip(2).filter_map(|l| l.split(':').next()).map(|n| n.trim().into()).collect()
    });
    let only_lo = |names: Option<Vec<String>>| names.is_some_and(|n| n == ["lo"]);
    only_lo(sys) && only_lo(proc)
}

/// The installed agents first, then the caller's `PATH` (node, coreutils).
fn search_path() -> String {
    let inherited =
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_string());
    match agents_bin_dir() {
        Some(bin) => format!("{}:{inherited}", bin.display()),
        None => inherited,
    }
}

/// Copies the seed tree `from` into `to`, filling placeholders in each file.
fn copy_seeds(from: &Path, to: &Path, fill: &dyn Fn(&str) -> String) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_seeds(&entry.path(), &dest, fill)?;
        } else {
            fs::write(&dest, fill(&fs::read_to_string(entry.path())?))?;
        }
    }
    Ok(())
}

/// Escapes a value for a double-quoted JSON or TOML string (the seeds only
/// put placeholders inside such strings).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn not_utf8(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("path is not UTF-8: {}", path.display()))
}

/// A seed with a leftover placeholder, a syntax error, or a trust entry that
/// does not name the real work dir would only show up as a dialog on a live
/// run; this catches it without the CLIs installed.
#[test]
fn seeded_homes_parse_and_trust_the_work_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let base = "http://127.0.0.1:4321";
    for agent in Agent::ALL {
        let h = AgentHome::seed(agent, &tmp.path().join(agent.name()), base).unwrap();
        assert!(h.work.is_dir() && h.work.starts_with(&h.home));
        let var = |k: &str| h.env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(var("HOME"), h.home.to_str());
        let work = h.work.to_str().unwrap();
        match agent {
            Agent::Codex => {
                let codex_home = PathBuf::from(var("CODEX_HOME").unwrap());
                assert!(!codex_home.starts_with(var("TMPDIR").unwrap()));
                let text = fs::read_to_string(codex_home.join("config.toml")).unwrap();
                let config: toml::Table = toml::from_str(&text).unwrap();
                assert_eq!(
                    config["model_providers"]["mock"]["base_url"].as_str(),
                    Some("http://127.0.0.1:4321/v1")
                );
                assert_eq!(config["projects"][work]["trust_level"].as_str(), Some("trusted"));
            }
            Agent::Claude => {
                assert_eq!(var("ANTHROPIC_BASE_URL"), Some(base));
                let text = fs::read_to_string(h.home.join(".claude.json")).unwrap();
                let config: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(config["projects"][work]["hasTrustDialogAccepted"], true);
                let suffix = &CLAUDE_API_KEY[CLAUDE_API_KEY.len() - 20..];
                assert_eq!(config["customApiKeyResponses"]["approved"][0], suffix);
            }
            Agent::Gemini => {
                assert_eq!(var("GOOGLE_GEMINI_BASE_URL"), Some(base));
                let text = fs::read_to_string(h.home.join(".gemini/settings.json")).unwrap();
                let config: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(config["security"]["auth"]["selectedType"], "gemini-api-key");
            }
            Agent::OpenCode => unreachable!("not in Agent::ALL"),
        }
        for file in walk(&h.home) {
            let text = fs::read_to_string(&file).unwrap();
            assert!(!text.contains("{{"), "placeholder left in {}", file.display());
        }
    }
}

#[cfg(test)]
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}
