//! `[auth]` of a profile: where the agent's credentials can be, so that
//! `reins agents` and `dispatch` can tell an agent that cannot start a turn
//! without starting one. Only whether something is there is looked at —
//! never its value, which no output shows.
//!
//! ```toml
//! [auth]
//! env = ["ANTHROPIC_API_KEY"]              # any of these set (non-empty)
//! files = ["~/.claude/.credentials.json"]  # or any of these files exists
//! env_named_in = ["${CODEX_HOME:-~/.codex}/config.toml"]  # or an `env_key = "X"` there, X set
//! login = "run `claude` once and log in"   # what to do when none is found
//! ```

use std::path::PathBuf;
use std::sync::LazyLock;

use regex::Regex;

/// `env_key = "NAME"` in a TOML config file.
static ENV_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^\s*env_key\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)""#).expect("a valid regex")
});

/// `${VAR:-default}` or `$VAR` in a path.
static VAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
        .expect("a valid regex")
});
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthSpec {
    #[serde(default)]
    pub(crate) env: Vec<String>,
    #[serde(default)]
    pub(crate) files: Vec<String>,
    #[serde(default)]
    pub(crate) env_named_in: Vec<String>,
    pub(crate) login: Option<String>,
}

impl AuthSpec {
    /// Where a credential was found (`env ANTHROPIC_API_KEY`, `file
    /// /home/u/.codex/auth.json`), or `Err` with what was looked for.
    pub(crate) fn find(&self) -> Result<String, String> {
        self.find_in(&|name| std::env::var(name).ok())
    }

    /// [`AuthSpec::find`] with the environment given.
    pub(crate) fn find_in(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
        let expand = |path: &str| expand(path, env);
        if let Some(name) = self.env.iter().find(|n| set(n)) {
            return Ok(format!("env {name}"));
        }
        for file in &self.files {
            let path = expand(file);
            if path.is_file() {
                return Ok(format!("file {}", path.display()));
            }
        }
        for file in &self.env_named_in {
            let path = expand(file);
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            if let Some(name) =
                ENV_KEY.captures_iter(&text).map(|c| c[1].to_string()).find(|n| set(n))
            {
                return Ok(format!("env {name} (named in {})", path.display()));
            }
        }
        let mut looked = Vec::new();
        if !self.env.is_empty() {
            looked.push(format!("env {}", self.env.join(", ")));
        }
        looked.extend(self.files.iter().map(|f| format!("file {}", expand(f).display())));
        looked.extend(
            self.env_named_in.iter().map(|f| format!("env_key in {}", expand(f).display())),
        );
        let mut why = format!("no credentials found (looked for {})", looked.join("; "));
        if let Some(login) = &self.login {
            why.push_str(&format!(": {login}"));
        }
        Err(why)
    }
}

/// `~/x`, `$VAR/x` and `${VAR:-default}/x`, from `env`.
fn expand(path: &str, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let out = VAR.replace_all(path, |c: &regex::Captures| {
        let name = c.get(1).or(c.get(3)).map_or("", |m| m.as_str());
        var(name).unwrap_or_else(|| c.get(2).map_or(String::new(), |d| d.as_str().to_string()))
    });
    match out.strip_prefix("~/") {
        Some(rest) => {
            var("HOME").map_or_else(|| PathBuf::from(out.as_ref()), |h| PathBuf::from(h).join(rest))
        }
        None => PathBuf::from(out.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_by_env_file_or_a_named_env_key_and_never_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().display().to_string();
        let vars = [("T_HOME", home.as_str()), ("T_KEY", "sk-secret-value"), ("T_EMPTY", "")];
        let env = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
        let spec = |env: &[&str], files: &[&str], named: &[&str]| AuthSpec {
            env: env.iter().map(|s| s.to_string()).collect(),
            files: files.iter().map(|s| s.to_string()).collect(),
            env_named_in: named.iter().map(|s| s.to_string()).collect(),
            login: Some("log in first".into()),
        };
        assert_eq!(spec(&["T_EMPTY", "T_KEY"], &[], &[]).find_in(&env).unwrap(), "env T_KEY");
        let missing = spec(&["T_NONE"], &["$T_HOME/creds.json"], &[]).find_in(&env).unwrap_err();
        assert!(missing.contains(&format!("file {home}/creds.json")), "{missing}");
        assert!(missing.ends_with(": log in first"), "{missing}");
        std::fs::write(dir.path().join("creds.json"), "{}").unwrap();
        let found = spec(&[], &["${T_HOME}/creds.json"], &[]).find_in(&env).unwrap();
        assert_eq!(found, format!("file {home}/creds.json"));
        assert!(spec(&[], &["${T_NONE:-/nowhere}/creds.json"], &[]).find_in(&env).is_err());
        let tilde = spec(&[], &["~/creds.json"], &[]);
        let with_home = |name: &str| (name == "HOME").then(|| home.clone());
        assert!(tilde.find_in(&with_home).is_ok());
        std::fs::write(dir.path().join("config.toml"), "[p]\nenv_key = \"T_KEY\"\n").unwrap();
        let found = spec(&[], &[], &["${T_HOME}/config.toml"]).find_in(&env).unwrap();
        assert!(found.starts_with("env T_KEY (named in "), "{found}");
        assert!(!found.contains("sk-secret"));
    }
}
