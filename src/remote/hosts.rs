//! What `reins hosts` learns of a host in one round trip: whether ssh
//! reaches it, which `reins` answers there, and the agents it has; and
//! `reins hosts install`, which copies this `reins` there.

use std::ffi::OsStr;
use std::path::Path;

use serde::Serialize;

use super::ssh::{self, Ssh, Target};
use crate::error::{CliError, code};

/// One host as `reins hosts` reports it.
#[derive(Debug, Serialize)]
pub(crate) struct HostReport {
    /// The name `--host` takes.
    pub(crate) host_name: String,
    pub(crate) destination: String,
    /// ssh reached it.
    pub(crate) reachable: bool,
    /// `reins --version` there (`null`: none there, or not reached).
    pub(crate) version: Option<String>,
    /// The agents available there (as its `reins agents` says).
    pub(crate) agents: Vec<String>,
    /// Everything works: reached, the same version, agents listed.
    pub(crate) ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

impl HostReport {
    fn failed(target: &Target, err: CliError, reachable: bool) -> HostReport {
        HostReport {
            host_name: target.name.clone(),
            destination: target.destination.clone(),
            reachable,
            version: None,
            agents: Vec::new(),
            ok: false,
            error: Some(err.message),
            hint: err.hint,
        }
    }
}

/// Where the remote `reins` is, and which version it is.
enum Installed {
    Missing,
    Version(String),
}

/// The remote `reins --version` (one round trip; connects first).
fn installed(ssh: &Ssh) -> Result<Installed, CliError> {
    let line = ssh::with_reins(ssh.target.reins.as_deref(), "\"$R\" --version");
    let out = ssh.shell_output(&line, None)?;
    if out.status.code() == Some(127) {
        return Ok(Installed::Missing);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().next().and_then(|l| l.strip_prefix("reins ")) {
        Some(v) if out.status.success() => Ok(Installed::Version(v.trim().to_string())),
        _ => Err(CliError::failure(format!(
            "the reins on host {} did not say its version: {}",
            crate::ids::quoted(&ssh.target.name),
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

fn missing(target: &Target) -> CliError {
    CliError::failure(format!(
        "reins is not installed on host {}",
        crate::ids::quoted(&target.name)
    ))
    .hint(format!(
        "`reins hosts install {}` copies this reins there (to ~/.local/bin/reins)",
        target.name
    ))
}

fn mismatch(target: &Target, there: &str) -> CliError {
    CliError::failure(format!(
        "host {} has reins {there}, this is reins {}: a client and its host must be the same \
         version",
        crate::ids::quoted(&target.name),
        super::VERSION
    ))
    .hint(format!(
        "`reins hosts install {} --force` replaces it with this one, or install {} there \
         yourself",
        target.name,
        super::VERSION
    ))
}

/// Reaches `ssh`'s host and reports on it (never an error: a host that
/// fails says so in its report).
pub(crate) fn probe(ssh: &Ssh) -> HostReport {
    let target = &ssh.target;
    if let Err(err) = ssh.connect() {
        return HostReport::failed(target, err, false);
    }
    // Version and agents in one round trip; `agents` refuses a client of
    // another version, and then the version line alone says why.
    let line = ssh::with_reins(
        target.reins.as_deref(),
        "\"$R\" --version || exit 1; \"$R\" agents --json --timeout 5s",
    );
    let out = match ssh.shell_output(&line, None) {
        Ok(out) => out,
        Err(err) => return HostReport::failed(target, err, false),
    };
    if out.status.code() == Some(127) {
        return HostReport::failed(target, missing(target), true);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.splitn(2, '\n');
    let version = lines.next().and_then(|l| l.strip_prefix("reins ")).map(|v| v.trim().to_string());
    let Some(version) = version else {
        let err = CliError::failure(format!(
            "the reins on host {} did not say its version: {}",
            crate::ids::quoted(&target.name),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return HostReport::failed(target, err, true);
    };
    let mut report = HostReport {
        host_name: target.name.clone(),
        destination: target.destination.clone(),
        reachable: true,
        version: Some(version.clone()),
        agents: Vec::new(),
        ok: false,
        error: None,
        hint: None,
    };
    if version != super::VERSION {
        let err = mismatch(target, &version);
        report.error = Some(err.message);
        report.hint = err.hint;
        return report;
    }
    let agents: serde_json::Value =
        serde_json::from_str(lines.next().unwrap_or_default().trim()).unwrap_or_default();
    report.agents = agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["availability"]["available"] == true)
        .filter_map(|a| a["name"].as_str().map(str::to_string))
        .collect();
    if out.status.success() {
        report.ok = true;
    } else {
        report.error = Some(format!(
            "`reins agents` failed there: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    report
}

/// What `reins hosts install` did.
#[derive(Debug, Serialize)]
pub(crate) struct Installation {
    pub(crate) host_name: String,
    /// `installed`, `replaced` or `already_installed`.
    pub(crate) status: &'static str,
    /// Where it is there.
    pub(crate) path: String,
    pub(crate) version: String,
}

/// Copies this `reins` to the host over the shared connection, unless
/// the same version is there; one of another version is replaced only
/// with `force`.
pub(crate) fn install(ssh: &Ssh, force: bool) -> Result<Installation, CliError> {
    let target = &ssh.target;
    let replacing = match installed(ssh)? {
        Installed::Version(v) if v == super::VERSION => {
            return Ok(Installation {
                host_name: target.name.clone(),
                status: "already_installed",
                path: target.reins.clone().unwrap_or_else(|| "reins".into()),
                version: v,
            });
        }
        Installed::Version(v) if !force => return Err(mismatch(target, &v)),
        Installed::Version(_) => true,
        Installed::Missing => false,
    };
    let local = std::env::current_exe()
        .map_err(|err| CliError::failure(format!("cannot find this reins binary: {err}")))?;
    // Where it goes: the configured path, else ~/.local/bin/reins (on the
    // PATH every remote command line has). Written beside and renamed, so
    // a command running there never sees half a binary.
    let dest = match target.reins.as_deref() {
        Some(path) if path.starts_with('/') || path.starts_with("~/") => path.to_string(),
        _ if replacing => String::new(),
        _ => "~/.local/bin/reins".to_string(),
    };
    let dest_word = if dest.is_empty() {
        // Replacing the one on its PATH, wherever it is.
        "\"$(command -v \"$R\")\"".to_string()
    } else if let Some(rest) = dest.strip_prefix("~/") {
        format!("\"$HOME\"/{}", String::from_utf8_lossy(&ssh::quote(OsStr::new(rest))))
    } else {
        String::from_utf8_lossy(&ssh::quote(OsStr::new(&dest))).into_owned()
    };
    let body = format!(
        "d={dest_word}; mkdir -p \"$(dirname \"$d\")\" && t=\"$d.tmp.$$\" && cat > \"$t\" && \
         chmod 755 \"$t\" && mv -f \"$t\" \"$d\" && printf '%s\\n' \"$d\""
    );
    let line = if dest.is_empty() {
        ssh::with_reins(target.reins.as_deref(), &body)
    } else {
        format!("R=; {body}")
    };
    let out = ssh.shell_output(&line, Some(Path::new(&local)))?;
    if !out.status.success() {
        return Err(CliError::failure(format!(
            "cannot copy reins to host {}: {}",
            crate::ids::quoted(&target.name),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .hint("check that the remote home is writable and has room"));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match installed(ssh)? {
        Installed::Version(v) if v == super::VERSION => Ok(Installation {
            host_name: target.name.clone(),
            status: if replacing { "replaced" } else { "installed" },
            path,
            version: v,
        }),
        _ => Err(CliError::with_code(
            format!(
                "copied reins to {path} on host {}, but it does not run there",
                crate::ids::quoted(&target.name)
            ),
            code::FAILURE,
        )
        .hint("the host may be another OS or architecture: build reins there (cargo install)")),
    }
}
