//! Done checks: a task is done by evidence, never because the agent said
//! so. Each `--done` flag is one check; all must pass.
//!
//! - `file:PATH`   PATH exists (relative to the working directory)
//! - `cmd:COMMAND` `sh -c COMMAND` exits 0 within the check timeout; its
//!   output is kept next to the attempt
//! - `clean`       `git status --porcelain` prints nothing
//! - `quiet:DUR`   the last commit is older than DUR

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// One check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    File(PathBuf),
    Cmd(String),
    Clean,
    Quiet(Duration),
}

/// The forms a `--done` check takes, for errors.
pub(crate) const FORMS: &str = "file:PATH, cmd:COMMAND, clean or quiet:DURATION";

impl FromStr for Check {
    type Err = String;

    fn from_str(s: &str) -> Result<Check, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((kind, arg)) => (kind.trim(), Some(arg)),
            None => (s.trim(), None),
        };
        match (kind, arg) {
            ("file", Some(path)) if !path.trim().is_empty() => {
                Ok(Check::File(PathBuf::from(path.trim())))
            }
            ("cmd", Some(cmd)) if !cmd.trim().is_empty() => Ok(Check::Cmd(cmd.trim().to_string())),
            ("clean", None) => Ok(Check::Clean),
            ("quiet", Some(d)) => crate::time::parse_duration(d).map(Check::Quiet),
            _ => Err(format!("{s:?} is not a done check; use {FORMS}")),
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::File(p) => write!(f, "file:{}", p.display()),
            Check::Cmd(c) => write!(f, "cmd:{c}"),
            Check::Clean => f.write_str("clean"),
            Check::Quiet(d) => write!(f, "quiet:{}s", d.as_secs_f64()),
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Found {
    pub(crate) check: String,
    pub(crate) ok: bool,
    pub(crate) detail: String,
    /// Where a command's output went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output: Option<PathBuf>,
}

/// Runs every check in `cwd`, commands with `env` added to their
/// environment; command output goes to `out_dir/NAME-check-N.log`.
pub(crate) async fn run_all(
    checks: &[Check],
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    out_prefix: &Path,
) -> Vec<Found> {
    let mut found = Vec::new();
    for (i, check) in checks.iter().enumerate() {
        let mut result = match check {
            Check::File(path) => {
                let full = cwd.join(path);
                let ok = full.exists();
                Found {
                    check: String::new(),
                    ok,
                    detail: if ok {
                        "exists".into()
                    } else {
                        format!("{} is missing", path.display())
                    },
                    output: None,
                }
            }
            Check::Cmd(cmd) => {
                let log = PathBuf::from(format!("{}-check-{}.log", out_prefix.display(), i + 1));
                run_cmd(cmd, env, cwd, timeout, &log).await
            }
            Check::Clean => match crate::git::output(cwd, &["status", "--porcelain"], timeout) {
                Ok(out) if out.success() && out.stdout.trim().is_empty() => {
                    Found { check: String::new(), ok: true, detail: "clean".into(), output: None }
                }
                Ok(out) if out.success() => Found {
                    check: String::new(),
                    ok: false,
                    detail: format!(
                        "{} uncommitted change(s): {}",
                        out.stdout.lines().count(),
                        out.stdout.lines().take(3).map(str::trim).collect::<Vec<_>>().join(", ")
                    ),
                    output: None,
                },
                Ok(out) => Found {
                    check: String::new(),
                    ok: false,
                    detail: format!("git status failed: {}", out.reason()),
                    output: None,
                },
                Err(err) => Found {
                    check: String::new(),
                    ok: false,
                    detail: format!("git status failed: {err}"),
                    output: None,
                },
            },
            Check::Quiet(quiet) => {
                let last = crate::git::output(cwd, &["log", "-1", "--format=%ct"], timeout)
                    .ok()
                    .filter(|o| o.success())
                    .and_then(|o| o.stdout.trim().parse::<u64>().ok());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                match last {
                    Some(at) => {
                        let age = now.saturating_sub(at);
                        let ok = age >= quiet.as_secs();
                        Found {
                            check: String::new(),
                            ok,
                            detail: format!("last commit {age}s ago"),
                            output: None,
                        }
                    }
                    None => Found {
                        check: String::new(),
                        ok: false,
                        detail: "no commit to look at (not a git repository?)".into(),
                        output: None,
                    },
                }
            }
        };
        result.check = check.to_string();
        found.push(result);
    }
    found
}

async fn run_cmd(
    cmd: &str,
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    log: &Path,
) -> Found {
    let fail = |detail: String| Found { check: String::new(), ok: false, detail, output: None };
    let file = match crate::store::fsutil::create_private(log) {
        Ok(file) => file,
        Err(err) => return fail(format!("cannot create {}: {err}", log.display())),
    };
    let stderr = match file.try_clone() {
        Ok(f) => f,
        Err(err) => return fail(format!("cannot use {}: {err}", log.display())),
    };
    let mut child = match tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(err) => return fail(format!("cannot run sh: {err}")),
    };
    let pid = child.id();
    let status = tokio::time::timeout(timeout, child.wait()).await;
    let tail = || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let last: Vec<&str> = text.lines().rev().take(3).collect();
        last.into_iter().rev().collect::<Vec<_>>().join(" | ")
    };
    let (ok, detail) = match status {
        Ok(Ok(status)) if status.success() => (true, "exit 0".to_string()),
        Ok(Ok(status)) => (
            false,
            match status.code() {
                Some(code) => format!("exit {code}: {}", tail()),
                None => format!("killed by a signal: {}", tail()),
            },
        ),
        Ok(Err(err)) => (false, format!("cannot wait for it: {err}")),
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.wait().await;
            (false, format!("still running after {}s; killed", timeout.as_secs_f64()))
        }
    };
    Found { check: String::new(), ok, detail, output: Some(log.to_path_buf()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_print_back() {
        for s in ["file:out/x.txt", "cmd:make test", "clean", "quiet:60s"] {
            let check: Check = s.parse().unwrap();
            assert_eq!(check.to_string(), s);
        }
        assert_eq!("cmd: a:b ".parse::<Check>().unwrap(), Check::Cmd("a:b".into()));
        for bad in ["", "file:", "cmd:", "clean:x", "quiet:soon", "tests"] {
            assert!(bad.parse::<Check>().is_err(), "{bad:?}");
        }
    }
}
