//! `wait --host`: a wait on a remote session that outlives its connection.
//!
//! The remote `reins wait` first says how to resume it (`--announce`: its
//! run, and the turn it decided on when the user named none). When the
//! connection drops, the client reconnects and starts the wait again with
//! those arguments: the remote reads the session's durable event log from
//! the start of that run, so nothing that happened meanwhile is missed,
//! and it can only settle on that run and that turn, never on a later
//! turn nor on an event it had already passed over.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::ssh::{SSH_FAILED, Ssh, Tty};
use crate::error::{CliError, code};

/// How long a wait without `--timeout` keeps trying to reconnect.
const RECONNECT_FOR: Duration = Duration::from_secs(600);

/// Runs `reins wait ARGS` there, resuming it across dropped connections;
/// returns the remote wait's own exit code.
pub(crate) fn wait(
    ssh: &Ssh,
    args: Vec<OsString>,
    timeout: Option<Duration>,
) -> Result<u8, CliError> {
    let started = Instant::now();
    let args = without_timeout(args);
    let mut resume: Option<Vec<String>> = None;
    let mut lost_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        if let Some(at) = lost_at {
            // Keep trying while the wait itself has time (or for a while).
            let budget = left.unwrap_or_else(|| RECONNECT_FOR.saturating_sub(at.elapsed()));
            if let Err(err) = ssh.reconnect() {
                if budget.is_zero() {
                    return Err(err);
                }
                std::thread::sleep(backoff.min(budget));
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        }
        let mut line = args.clone();
        line.push("--announce".into());
        if let Some(resume) = &resume {
            line.extend(resume.iter().map(OsString::from));
        }
        if let Some(left) = left {
            line.push("--timeout".into());
            line.push(format!("{}ms", left.as_millis()).into());
        }
        if lost_at.is_none() {
            ssh.connect()?;
        }
        let mut cmd = ssh.reins_command(&line, Tty::None);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child =
            cmd.spawn().map_err(|err| CliError::failure(format!("cannot run ssh: {err}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut out = std::io::stdout().lock();
        for text in BufReader::new(stdout).lines() {
            let Ok(text) = text else { break };
            if let Some(args) = resume_line(&text) {
                // The first wait decided; a resumed one only repeats it.
                resume.get_or_insert(args);
                continue;
            }
            writeln!(out, "{text}")?;
            out.flush()?;
        }
        drop(out);
        let status = child.wait()?;
        match status.code() {
            Some(SSH_FAILED) if !ssh.connected() => {
                if lost_at.is_none() {
                    eprintln!(
                        "reins: lost the connection to host {} while waiting; reconnecting",
                        crate::ids::quoted(&ssh.target.name)
                    );
                }
                lost_at.get_or_insert_with(Instant::now);
                backoff = Duration::from_millis(100);
            }
            Some(code) => return Ok(u8::try_from(code).unwrap_or(code::FAILURE)),
            None => {
                return Err(CliError::failure("ssh was killed by a signal while waiting"));
            }
        }
    }
}

/// The arguments of a `{"resume": [...]}` line.
fn resume_line(text: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let args = value.as_object().filter(|o| o.len() == 1)?.get("resume")?.as_array()?;
    args.iter().map(|a| a.as_str().map(str::to_string)).collect()
}

/// `args` without `--timeout D` (the client passes what is left of it).
fn without_timeout(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--timeout" {
            args.next();
        } else if !arg.to_str().is_some_and(|a| a.starts_with("--timeout=")) {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_resume_line_is_taken_for_one() {
        assert_eq!(
            resume_line(r#"{"resume":["--resume-run","r1","--turn","2"]}"#).unwrap(),
            ["--resume-run", "r1", "--turn", "2"]
        );
        assert!(resume_line(r#"{"ok":true,"resume":["x"]}"#).is_none());
        assert!(resume_line("not json").is_none());
    }

    #[test]
    fn the_timeout_is_taken_out_whichever_way_it_is_written() {
        let args: Vec<OsString> =
            ["wait", "--id", "w", "--timeout", "5s", "--timeout=6s", "--json"]
                .iter()
                .map(Into::into)
                .collect();
        assert_eq!(without_timeout(args), ["wait", "--id", "w", "--json"]);
    }
}
