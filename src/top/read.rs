//! What the dashboard reads from the state directory: sessions (through
//! session control, as `status` does), the selected session's last events,
//! the dispatches in the outcome store, and the chains' state files. Each
//! read is of one thing that changed, never of everything on a timer.
//!
//! And what it asks other machines, through the reins there over the
//! shared ssh connection (blocking: the callers run these on tasks of
//! their own): their sessions, a session's screen and events, and the
//! commands the keys stand for.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::chain::state::ChainState;
use crate::control::lookup::{Liveness, SessionView};
use crate::control::status::{self, Which};
use crate::remote::Ssh;
use crate::store::events::{self, EventLine};
use crate::store::outcomes::Store;
use crate::store::paths::StateRoot;
use crate::top::model::{ChainRow, DispatchRow, Row};

/// Every session that has not exited, in every repository.
pub(crate) fn all_sessions(state: &StateRoot) -> Vec<Row> {
    status::list(state, Which::Running { all: true, repo: None })
        .map(|l| l.sessions.iter().map(Row::local).collect())
        .unwrap_or_default()
}

/// One session's row now; `None` when it has exited (it leaves the list).
pub(crate) fn one_session(state: &StateRoot, scope: &str, id: &str) -> Option<Row> {
    let view = SessionView::read(state.session(scope, id));
    (view.liveness != Liveness::Exited).then(|| Row::local(&status::info(&view)))
}

/// The session directory a changed path belongs to: `(scope, id)` of
/// `ROOT/sessions/SCOPE/ID/…`.
pub(crate) fn session_of_path(state: &StateRoot, path: &Path) -> Option<(String, String)> {
    let rest = path.strip_prefix(state.sessions_dir()).ok()?;
    let mut parts = rest.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let scope = parts.next()?;
    let id = parts.next()?;
    (!scope.starts_with('.') && !id.starts_with('.')).then_some((scope, id))
}

/// Whether a change to `path` can change a session's row (its registry,
/// events or exit record, or the session appearing or going).
pub(crate) fn matters_for_sessions(path: &Path) -> bool {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("session.json" | "events.jsonl" | "exit.json") => true,
        Some(name) => !name.contains('.'), // a scope or session directory
        None => false,
    }
}

/// The last `n` events of a session, one short line each
/// (`12:01:02 state ready → busy`).
pub(crate) fn last_events(state: &StateRoot, scope: &str, id: &str, n: usize) -> Vec<String> {
    let path = state.session(scope, id).events();
    let all = events::read_all(&path).unwrap_or_default();
    all.iter().rev().take(n).rev().map(event_line).collect()
}

/// The last `n` events of `events --snapshot` output (JSON lines, from
/// another machine), one short line each.
pub(crate) fn last_event_lines(text: &str, n: usize) -> Vec<String> {
    let all: Vec<EventLine> = text.lines().filter_map(EventLine::parse).collect();
    all.iter().rev().take(n).rev().map(event_line).collect()
}

/// A host's sessions (`reins status --all --json` there), or why it could
/// not say. `reconnect`: the last ask failed, so a shared connection its
/// dead master left behind is opened again first.
pub(crate) fn remote_sessions(ssh: &Ssh, reconnect: bool) -> Result<Vec<Row>, String> {
    if reconnect {
        ssh.reconnect().map_err(|err| err.message)?;
    }
    let answer = remote_command(ssh, &["status".into(), "--all".into(), "--json".into()])?;
    let name = ssh.target.name.as_str();
    match answer {
        Value::Array(rows) => Ok(rows.iter().map(|v| Row::from_json(Some(name), v)).collect()),
        other => Err(format!("its reins answered status with {other}")),
    }
}

/// `reins ARGS` there: its JSON answer, or the error it (or ssh) gave.
pub(crate) fn remote_command(ssh: &Ssh, args: &[OsString]) -> Result<Value, String> {
    let out = ssh.reins_output(args).map_err(|err| err.message)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        // One JSON value (the last line, should it print more).
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("null");
        return serde_json::from_str(last)
            .map_err(|_| format!("its reins printed something that is not JSON: {last}"));
    }
    Err(said(&out))
}

/// The reason a remote command gave on stderr (`reins: WHY`), else its
/// exit status.
fn said(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("reins: "))
        .map(str::to_string)
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()).map(str::to_string))
        .unwrap_or_else(|| format!("its reins failed ({})", out.status))
}

/// A remote session's screen (`reins pane`) and last `n` events (`reins
/// events --snapshot --run last`); an error in place of the screen when
/// they cannot be had.
pub(crate) fn remote_detail(ssh: &Ssh, id: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let ask = |args: &[&str]| -> Result<String, String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let out = ssh.reins_output(&args).map_err(|err| err.message)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(said(&out))
        }
    };
    let screen = match ask(&["pane", "--id", id]) {
        Ok(text) => text.lines().map(str::to_string).collect(),
        Err(why) => vec![format!("(cannot show its screen: {why})")],
    };
    let events = match ask(&["events", "--id", id, "--snapshot", "--run", "last"]) {
        Ok(text) => last_event_lines(&text, n),
        Err(_) => Vec::new(),
    };
    (screen, events)
}

/// Starts `reins watch --id ID --until-exit --on-exit leave` there in the
/// background, its output appended to `log` there; its pid and log.
pub(crate) fn remote_watcher(ssh: &Ssh, id: &str, log: &Path) -> Result<(String, String), String> {
    let quote =
        |w: &str| String::from_utf8_lossy(&crate::remote::ssh::quote(w.as_ref())).into_owned();
    let log_text = log.display().to_string();
    let body = format!(
        "S=; command -v setsid >/dev/null 2>&1 && S=setsid; cd / || exit 1; \
         nohup $S \"$R\" watch --id {} --until-exit --on-exit leave </dev/null >>{} 2>&1 & \
         echo $!",
        quote(id),
        quote(&log_text)
    );
    let line = crate::remote::ssh::with_reins(ssh.target.reins.as_deref(), &body);
    let out = ssh.shell_output(&line, None).map_err(|err| err.message)?;
    if !out.status.success() {
        return Err(said(&out));
    }
    Ok((String::from_utf8_lossy(&out.stdout).trim().to_string(), log_text))
}

fn event_line(e: &EventLine) -> String {
    let time = e.header.ts.get(11..19).unwrap_or(&e.header.ts).to_string();
    let value: Value = serde_json::from_str(&e.raw).unwrap_or(Value::Null);
    let kind = value["type"].as_str().unwrap_or("?").to_string();
    let turn = e.header.turn.map(|t| format!(" turn {t}")).unwrap_or_default();
    let detail = match kind.as_str() {
        "state" => format!(
            "{} → {}{}",
            value["from"].as_str().unwrap_or("?"),
            value["to"].as_str().unwrap_or("?"),
            value["kind"].as_str().map(|k| format!("{{{k}}}")).unwrap_or_default()
        ),
        "task_complete" => value["status"].as_str().unwrap_or("").to_string(),
        "queued" | "delivered" | "stranded" => {
            value["preview"].as_str().unwrap_or("").chars().take(40).collect()
        }
        "blocked" => format!(
            "{} {}",
            value["kind"].as_str().unwrap_or(""),
            value["request"].as_str().unwrap_or("")
        ),
        "approval" => value["decision"].as_str().unwrap_or("").to_string(),
        "exited" => value["reason"].as_str().unwrap_or("").to_string(),
        "escalate" | "stall" => value["reason"].as_str().unwrap_or("").to_string(),
        _ => String::new(),
    };
    format!("{time} {kind}{turn} {detail}").trim_end().to_string()
}

/// The dispatches in the outcome store, newest first (the last `limit`
/// attempts' dispatches).
pub(crate) fn dispatches(state: &StateRoot, limit: u32) -> Vec<DispatchRow> {
    let path = Store::path_in(state.root());
    let Some(store) = path.exists().then(|| Store::open(&path).ok()).flatten() else {
        return Vec::new();
    };
    let mut rows: Vec<DispatchRow> = Vec::new();
    for a in store.attempts(None, limit).unwrap_or_default() {
        let line = format!(
            "#{} {}{} {} → {}{}{}",
            a.n,
            a.agent,
            a.model.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(),
            a.rung.map(|r| format!("rung {r}")).unwrap_or_default(),
            a.result,
            a.verdict.as_deref().map(|v| format!(", verdict {v}")).unwrap_or_default(),
            a.feedback
                .as_deref()
                .or(a.reason.as_deref())
                .map(|f| format!(": {f}"))
                .unwrap_or_default(),
        );
        match rows.iter_mut().find(|r| r.id == a.dispatch) {
            Some(row) => {
                row.attempts.push(line);
                row.result = a.result.clone();
            }
            None => rows.push(DispatchRow {
                id: a.dispatch.clone(),
                attempts: vec![line],
                result: a.result.clone(),
            }),
        }
    }
    rows.reverse();
    rows
}

/// Every chain under the state root, newest first.
pub(crate) fn chains(state: &StateRoot) -> Vec<ChainRow> {
    let dir = state.root().join("chains");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    found.sort();
    let mut rows: Vec<(String, ChainRow)> = found
        .into_iter()
        .filter_map(|(id, path)| {
            let st = ChainState::read(&path).ok()?;
            let summary = crate::chain::runner::summary(&st);
            let steps = summary["steps"]
                .as_array()
                .map(|steps| {
                    steps
                        .iter()
                        .map(|s| {
                            let tasks: Vec<String> = s["tasks"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|t| {
                                    format!(
                                        "{} {}",
                                        t["task"].as_str().unwrap_or("?"),
                                        t["result"].as_str().unwrap_or("?")
                                    )
                                })
                                .collect();
                            format!(
                                "{}: {} (batches {}) [{}]",
                                s["step"].as_str().unwrap_or("?"),
                                s["result"].as_str().unwrap_or("?"),
                                s["batches"],
                                tasks.join(", ")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let gates = gate_decisions(&path);
            let row = ChainRow {
                id: id.clone(),
                status: summary["result"].as_str().unwrap_or("?").to_string(),
                steps,
                gates,
            };
            Some((st.started_at.clone(), row))
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0));
    rows.into_iter().map(|(_, row)| row).collect()
}

/// The last gate decisions of a chain, from its event log.
fn gate_decisions(dir: &Path) -> Vec<String> {
    let all = events::read_all(&dir.join("events.jsonl")).unwrap_or_default();
    let gates: Vec<String> = all
        .iter()
        .filter_map(|e| {
            let v: Value = serde_json::from_str(&e.raw).ok()?;
            (v["type"] == "gate").then(|| {
                format!(
                    "{} by {}: {}",
                    v["step"].as_str().unwrap_or("?"),
                    v["by"].as_str().unwrap_or("?"),
                    v["decisions"]
                )
            })
        })
        .collect();
    let start = gates.len().saturating_sub(5);
    gates[start..].to_vec()
}
