//! `wait --host`: a wait on remote sessions that outlives its connection.
//!
//! The remote `reins wait` first says how to resume it (`--announce`): for
//! one session its run and the turn it decided on when the user named
//! none; for several (`--id` again, or a pattern), the same for each
//! session, the pattern resolved to the sessions it named then. When the
//! connection drops, the client reconnects and starts the wait again with
//! those arguments, less the sessions whose outcome it has already
//! printed: the remote reads each session's durable event log from the
//! start of that run, so nothing that happened meanwhile is missed, and
//! it can only settle on that run and that turn, never on a later turn,
//! a session started later, nor an event it had already passed over.
//!
//! The exit code 3 is ssh's failure here as everywhere under `--host`,
//! but `--until exit` passes a session's own exit status through, which
//! may be 3 too. So the JSON lines always say which: every session gets
//! one, `"status": "reached"` with its `exit` when the code is the
//! session's, `"status": "unreachable"` when the machine could not be
//! reached again (printed even without `--json`, as every wait line is).

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ssh::{SSH_FAILED, Ssh, Tty};
use crate::control::wait::Turn;
use crate::error::{CliError, code};

/// How long a wait without `--timeout` keeps trying to reconnect.
const RECONNECT_FOR: Duration = Duration::from_secs(600);

/// Where the wait on one of several sessions resumes: its run and, when
/// the wait decided it, its turn (the `--announce` of a wait on several
/// sessions prints one per session, `wait --host` passes it back).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ResumeAt {
    pub(crate) id: String,
    pub(crate) run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) turn: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message: Option<String>,
}

impl ResumeAt {
    /// From a wait's [`crate::control::wait::Wait::resume_args`].
    pub(crate) fn of(id: &str, args: &[String]) -> ResumeAt {
        let mut at = ResumeAt { id: id.to_string(), run: String::new(), turn: None, message: None };
        for pair in args.chunks(2) {
            match pair {
                [flag, run] if flag == "--resume-run" => at.run = run.clone(),
                [flag, n] if flag == "--turn" => at.turn = n.parse().ok(),
                [flag, m] if flag == "--message" => at.message = Some(m.clone()),
                _ => {}
            }
        }
        at
    }

    /// `--resume-at`'s value.
    pub(crate) fn parse(s: &str) -> Result<ResumeAt, String> {
        serde_json::from_str(s).map_err(|err| format!("not a resume point: {err}"))
    }

    pub(crate) fn turn(&self) -> Turn {
        match (&self.message, self.turn) {
            (Some(m), _) => Turn::Message(m.clone()),
            (None, Some(n)) => Turn::Number(n),
            (None, None) => Turn::Current,
        }
    }
}

/// What the client has learnt of the wait so far: how to resume it, and
/// which outcomes it has printed.
#[derive(Debug, Default)]
struct Progress {
    /// One session: the arguments that resume its wait.
    one: Option<Vec<String>>,
    /// Several sessions: where each one's wait resumes.
    each: Option<Vec<ResumeAt>>,
    /// The outcome lines printed so far: (id, status, line).
    settled: Vec<(String, String, Value)>,
    /// The wait was started again after a dropped connection.
    resumed: bool,
}

impl Progress {
    /// Takes a line of the remote wait: `true` if it is for the client
    /// only (a resume line), else it is recorded as an outcome.
    fn take(&mut self, text: &str) -> bool {
        let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else { return false };
        if obj.len() == 1 {
            if let Some(args) = obj.get("resume").and_then(string_list) {
                // The first wait decided; a resumed one only repeats it.
                self.one.get_or_insert(args);
                return true;
            }
            if let Some(each) = obj.get("resume_each") {
                if self.each.is_none() {
                    self.each = serde_json::from_value(each.clone()).ok();
                }
                return true;
            }
        }
        if let (Some(id), Some(status)) =
            (obj.get("id").and_then(Value::as_str), obj.get("status").and_then(Value::as_str))
        {
            self.settled.push((id.to_string(), status.to_string(), Value::Object(obj.clone())));
        }
        false
    }

    fn is_settled(&self, id: &str) -> bool {
        self.settled.iter().any(|(s, _, _)| s == id)
    }

    /// The sessions of a wait on several whose outcome is not printed yet.
    fn pending(&self) -> Vec<&ResumeAt> {
        self.each.iter().flatten().filter(|at| !self.is_settled(&at.id)).collect()
    }

    /// Whether every outcome the wait owes has been printed (the remote
    /// may have been cut off between its last line and its exit).
    fn done(&self, any: bool) -> bool {
        match &self.each {
            Some(each) => {
                self.pending().is_empty()
                    || (any && self.settled.iter().any(|(_, s, _)| s == "reached"))
                    || each.is_empty()
            }
            None => self.one.is_some() && !self.settled.is_empty(),
        }
    }

    /// The remote command line: the user's, pinned to what was announced.
    fn command(&self, args: &[OsString]) -> Vec<OsString> {
        let mut line: Vec<OsString>;
        if self.each.is_some() {
            line = without_ids(args);
            line.push("--announce".into());
            for at in self.pending() {
                line.push("--id".into());
                line.push(at.id.clone().into());
                line.push("--resume-at".into());
                line.push(serde_json::to_string(at).expect("a resume point is JSON").into());
            }
        } else {
            line = args.to_vec();
            line.push("--announce".into());
            if let Some(resume) = &self.one {
                line.extend(resume.iter().map(OsString::from));
            }
        }
        line
    }

    /// The wait's exit code: the remote's own unless it was resumed, then
    /// what one wait over every session would have ended with.
    fn exit_code(&self, remote: u8, any: bool) -> u8 {
        if !self.resumed || !matches!(remote, code::OK | code::FAILURE | code::TIMEOUT) {
            return remote;
        }
        if self.each.is_none() {
            return self.settled.last().map_or(remote, |(_, _, line)| one_code(line));
        }
        let total = self.each.as_ref().map_or(0, Vec::len);
        let reached = self.settled.iter().filter(|(_, s, _)| s == "reached").count();
        let timed_out = self.settled.iter().any(|(_, s, _)| s == "timeout");
        if reached == total || (any && reached > 0) {
            code::OK
        } else if timed_out {
            code::TIMEOUT
        } else {
            code::FAILURE
        }
    }
}

/// The exit code of a one-session wait whose outcome line is `line`
/// (as `reins wait` decides it).
fn one_code(line: &Value) -> u8 {
    match line["status"].as_str() {
        // As `ExitRecord::shell_status`: the code, or 128 + the signal.
        Some("reached") if line["until"] == "exit" => {
            match (line["exit"]["code"].as_i64(), line["exit"]["signal"].as_i64()) {
                (Some(code), _) => (code & 0xff) as u8,
                (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
                (None, None) => code::FAILURE,
            }
        }
        Some("reached") => code::OK,
        Some("timeout") => code::TIMEOUT,
        _ => code::FAILURE,
    }
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value.as_array()?.iter().map(|a| a.as_str().map(str::to_string)).collect()
}

/// Runs `reins wait ARGS` there, resuming it across dropped connections;
/// returns the wait's exit code.
pub(crate) fn wait(
    ssh: &Ssh,
    args: Vec<OsString>,
    timeout: Option<Duration>,
) -> Result<u8, CliError> {
    let started = Instant::now();
    let args = without_timeout(args);
    let any = args.iter().any(|a| a == "--any");
    let mut progress = Progress::default();
    let mut lost_at: Option<Instant> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        if let Some(at) = lost_at {
            if progress.done(any) {
                return Ok(progress.exit_code(code::OK, any));
            }
            // Keep trying while the wait itself has time (or for a while).
            let budget = left.unwrap_or_else(|| RECONNECT_FOR.saturating_sub(at.elapsed()));
            if let Err(err) = ssh.reconnect() {
                if budget.is_zero() {
                    return give_up(ssh, &progress, &args, err, started);
                }
                std::thread::sleep(backoff.min(budget));
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        } else if let Err(err) = ssh.connect() {
            return give_up(ssh, &progress, &args, err, started);
        }
        let mut line = progress.command(&args);
        if let Some(left) = left {
            line.push("--timeout".into());
            line.push(format!("{}ms", left.as_millis()).into());
        }
        let mut cmd = ssh.reins_command(&line, Tty::None);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child =
            cmd.spawn().map_err(|err| CliError::failure(format!("cannot run ssh: {err}")))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut out = std::io::stdout().lock();
        for text in BufReader::new(stdout).lines() {
            let Ok(text) = text else { break };
            if progress.take(&text) {
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
                        "{}: lost the connection to host {} while waiting; reconnecting",
                        crate::compat::program(),
                        crate::ids::quoted(&ssh.target.name)
                    );
                }
                lost_at.get_or_insert_with(Instant::now);
                progress.resumed = true;
                backoff = Duration::from_millis(100);
            }
            Some(remote) => {
                let remote = u8::try_from(remote).unwrap_or(code::FAILURE);
                return Ok(progress.exit_code(remote, any));
            }
            None => {
                return Err(CliError::failure("ssh was killed by a signal while waiting"));
            }
        }
    }
}

/// The host could not be reached (again): a line for every session whose
/// outcome is not printed, saying so, then the error on stderr; exit 3.
fn give_up(
    ssh: &Ssh,
    progress: &Progress,
    args: &[OsString],
    err: CliError,
    started: Instant,
) -> Result<u8, CliError> {
    let ids: Vec<String> = match &progress.each {
        Some(_) => progress.pending().iter().map(|at| at.id.clone()).collect(),
        None => ids_of(args).into_iter().filter(|id| !progress.is_settled(id)).collect(),
    };
    let waited_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    // The same stdout the remote's lines were relayed to, a line each.
    let mut out = std::io::stdout().lock();
    for id in ids {
        let line = json!({
            "ok": false,
            "id": id,
            "status": "unreachable",
            "kind": "unreachable",
            "host_name": ssh.target.name,
            "error": err.message,
            "hint": err.hint,
            "exit_code": err.code,
            "waited_s": waited_s,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    eprintln!("{}: {}", crate::compat::program(), err.message);
    if let Some(hint) = &err.hint {
        eprintln!("hint: {hint}");
    }
    Ok(err.code)
}

/// The values of `--id` in `args` (as given: an id or a pattern).
fn ids_of(args: &[OsString]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--id" {
            out.extend(args.next().map(|a| a.to_string_lossy().into_owned()));
        } else if let Some(id) = arg.strip_prefix("--id=") {
            out.push(id.to_string());
        }
    }
    out
}

/// `args` without `--id X` (a resumed wait names its sessions itself).
fn without_ids(args: &[OsString]) -> Vec<OsString> {
    without(args, "--id")
}

/// `args` without `--timeout D` (the client passes what is left of it).
fn without_timeout(args: Vec<OsString>) -> Vec<OsString> {
    without(&args, "--timeout")
}

/// `args` without `FLAG VALUE` and `FLAG=VALUE`.
fn without(args: &[OsString], flag: &str) -> Vec<OsString> {
    let joined = format!("{flag}=");
    let mut out = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == flag {
            args.next();
        } else if !arg.to_str().is_some_and(|a| a.starts_with(&joined)) {
            out.push(arg.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<OsString> {
        args.iter().map(Into::into).collect()
    }

    #[test]
    fn only_a_resume_line_is_taken_for_one() {
        let mut p = Progress::default();
        assert!(p.take(r#"{"resume":["--resume-run","r1","--turn","2"]}"#));
        assert_eq!(p.one.as_deref().unwrap(), ["--resume-run", "r1", "--turn", "2"]);
        assert!(!p.take(r#"{"ok":true,"resume":["x"]}"#));
        assert!(!p.take("not json"));
        // A resumed wait repeats it; the first one stays.
        assert!(p.take(r#"{"resume":["--resume-run","r9"]}"#));
        assert_eq!(p.one.as_deref().unwrap()[1], "r1");
    }

    #[test]
    fn the_timeout_is_taken_out_whichever_way_it_is_written() {
        let args = words(&["wait", "--id", "w", "--timeout", "5s", "--timeout=6s", "--json"]);
        assert_eq!(without_timeout(args), ["wait", "--id", "w", "--json"]);
    }

    #[test]
    fn a_resumed_wait_on_several_names_only_the_sessions_not_yet_settled() {
        let mut p = Progress::default();
        let each = r#"{"resume_each":[{"id":"w1","run":"r1","turn":1},{"id":"w2","run":"r2"}]}"#;
        assert!(p.take(each));
        assert!(!p.take(r#"{"ok":true,"id":"w1","status":"reached","until":"x"}"#));
        let args = words(&["wait", "--id", "w*", "--until", "task_complete", "--id=w9"]);
        let line = p.command(&args);
        assert_eq!(
            line,
            words(&[
                "wait",
                "--until",
                "task_complete",
                "--announce",
                "--id",
                "w2",
                "--resume-at",
                r#"{"id":"w2","run":"r2"}"#
            ])
        );
        // The resumed remote only saw w2: the exit code counts both.
        p.resumed = true;
        assert!(!p.take(r#"{"ok":true,"id":"w2","status":"reached"}"#));
        assert_eq!(p.exit_code(code::OK, false), code::OK);
        assert!(p.done(false));
    }

    #[test]
    fn a_resumed_wait_on_several_fails_if_one_of_them_failed_before_the_drop() {
        let mut p = Progress::default();
        p.take(r#"{"resume_each":[{"id":"a","run":"r"},{"id":"b","run":"r"}]}"#);
        p.take(r#"{"id":"a","status":"exited"}"#);
        p.resumed = true;
        p.take(r#"{"id":"b","status":"reached"}"#);
        assert_eq!(p.exit_code(code::OK, false), code::FAILURE);
        assert_eq!(p.exit_code(code::OK, true), code::OK, "--any: one reached");
    }

    #[test]
    fn a_one_session_exit_code_comes_from_its_line_after_a_resume() {
        let line = json!({"status": "reached", "until": "exit", "exit": {"code": 3}});
        assert_eq!(one_code(&line), 3, "{line}");
        let line = json!({"status": "reached", "until": "exit", "exit": {"signal": 9}});
        assert_eq!(one_code(&line), 137, "{line}");
        assert_eq!(one_code(&json!({"status": "timeout"})), code::TIMEOUT);
        assert_eq!(one_code(&json!({"status": "reached", "until": "ready"})), code::OK);
    }

    #[test]
    fn the_ids_given_are_found_whichever_way_they_are_written() {
        assert_eq!(ids_of(&words(&["wait", "--id", "a", "--id=b*", "--json"])), ["a", "b*"]);
    }
}
