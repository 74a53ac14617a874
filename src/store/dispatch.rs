//! The end of a run, told twice: as the last events of its log (`git` end,
//! `summary`, `exited`, in that order) and as one line of the dispatch
//! record (`$REINS_STATE_DIR/dispatch.jsonl` unless `run --record` says
//! otherwise; never inside the user's repository unless pointed there).
//!
//! Every way a run can end goes through [`close_run`]: the host when its
//! agent exits, the host when the agent never came up, and `gc`/`stop`
//! cleaning up after a host that died. Everything is computed from the
//! run's own events, so nothing is counted twice or made up: a figure the
//! agent never showed is null.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::git;
use crate::store::events::{self, EventKind, EventLine, EventWriter, GitPhase, Summary};
use crate::store::exit_record::ExitRecord;
use crate::store::fsutil;

/// What the record says about a run besides its events.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) id: String,
    pub(crate) run: String,
    pub(crate) agent: String,
    pub(crate) adapter: String,
    pub(crate) transport: String,
    pub(crate) cwd: PathBuf,
    pub(crate) repo_root: Option<PathBuf>,
    pub(crate) description: Option<String>,
    /// `run --meta`, passed through.
    pub(crate) meta: Option<Value>,
    /// Where the dispatch line goes; `None`: nowhere (`run --no-record`).
    pub(crate) record: Option<PathBuf>,
}

/// Writes the closing events of a run (`git` end, `summary`, `exited`) and
/// its dispatch record line. A record that cannot be written is logged and
/// shows as `"path": null` in the summary; it never keeps `exited` from
/// being written.
pub(crate) fn close_run(
    writer: &mut EventWriter,
    events_path: &Path,
    info: &RunInfo,
    exit: &ExitRecord,
) -> io::Result<()> {
    let history = events::read_all(events_path)?;
    let this: Vec<&EventLine> = history.iter().filter(|e| e.header.run == info.run).collect();
    let start = git_start(&this);
    let end = start.as_ref().and_then(|s| git::end(&info.cwd, s));
    if let Some(end) = &end {
        writer.emit(
            None,
            &EventKind::Git {
                phase: GitPhase::End,
                sha: end.sha.clone(),
                branch: end.branch.clone(),
                dirty: end.dirty,
                commits: Some(end.commits),
                counts_uncommitted: Some(end.counts_uncommitted),
                files_changed: Some(end.files_changed),
                loc_added: Some(end.loc_added),
                loc_removed: Some(end.loc_removed),
            },
        )?;
    }
    let mut summary = summarize(&this, exit);
    let line = record_line(info, &summary, start.as_ref(), end.as_ref(), exit);
    if let Some(path) = &info.record {
        match append(path, &line) {
            Ok(()) => summary.path = Some(path.display().to_string()),
            Err(err) => tracing::warn!("cannot append to {}: {err}", path.display()),
        }
    }
    writer.emit(None, &EventKind::Summary(Box::new(summary)))?;
    writer.emit(
        None,
        &EventKind::Exited {
            code: exit.code,
            signal: exit.signal,
            reason: exit.reason,
            detail: exit.detail.clone(),
        },
    )?;
    Ok(())
}

fn git_start(events: &[&EventLine]) -> Option<git::Start> {
    events.iter().find_map(|e| match &e.kind {
        EventKind::Git { phase: GitPhase::Start, sha, branch, dirty, .. } => {
            Some(git::Start { sha: sha.clone(), branch: branch.clone(), dirty: *dirty })
        }
        _ => None,
    })
}

/// The run in numbers, from its events.
fn summarize(events: &[&EventLine], exit: &ExitRecord) -> Summary {
    let mut s = Summary { exit: Some(exit.reason), turns: exit.turns, ..Summary::default() };
    let add = |total: &mut Option<u64>, n: &Option<u64>| {
        if let Some(n) = n {
            *total = Some(total.unwrap_or(0) + n);
        }
    };
    for event in events {
        match &event.kind {
            EventKind::Usage {
                input_tokens,
                output_tokens,
                cached_tokens,
                reasoning_tokens,
                total_tokens,
                ..
            } => {
                add(&mut s.input_tokens, input_tokens);
                add(&mut s.output_tokens, output_tokens);
                add(&mut s.cached_tokens, cached_tokens);
                add(&mut s.reasoning_tokens, reasoning_tokens);
                add(&mut s.total_tokens, total_tokens);
            }
            EventKind::Stall { .. } => s.stalls += 1,
            EventKind::Resume { .. } => s.resumes += 1,
            EventKind::Restart { .. } => s.restarts += 1,
            EventKind::Disconnected { will_retry: false, .. } => s.disconnections += 1,
            _ => {}
        }
    }
    let secs = |ts: &str| crate::time::parse_rfc3339(ts);
    if let (Some(a), Some(b)) = (secs(&exit.started_at), secs(&exit.exited_at)) {
        s.duration_s = (b.duration_since(a).as_secs_f64() * 1000.0).round() / 1000.0;
    }
    s
}

/// One line of the dispatch record: `meta` (who ran what where, with the
/// `--meta` keys passed through), `predicted` (`--meta`'s `predicted`), and
/// `actual` (what happened). The shape follows harnex's DISPATCH record.
fn record_line(
    info: &RunInfo,
    summary: &Summary,
    start: Option<&git::Start>,
    end: Option<&git::End>,
    exit: &ExitRecord,
) -> Value {
    let user = info.meta.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
    let mut meta: Map<String, Value> = user.clone();
    meta.remove("predicted");
    let ours = json!({
        "id": info.id,
        "run": info.run,
        "description": info.description,
        "started_at": exit.started_at,
        "ended_at": exit.exited_at,
        "harness": "reins",
        "harness_version": env!("CARGO_PKG_VERSION"),
        "agent": info.agent,
        "adapter": info.adapter,
        "transport": info.transport,
        "host": hostname(),
        "platform": std::env::consts::OS,
        "cwd": info.cwd,
        "repo": info.repo_root,
        "branch": start.map(|s| &s.branch),
        "start_sha": start.map(|s| &s.sha),
        "end_sha": end.map(|e| &e.sha),
    });
    for (key, value) in ours.as_object().expect("an object") {
        meta.insert(key.clone(), value.clone());
    }
    let pick = |key: &str| user.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "schema_version": events::SCHEMA_VERSION,
        "meta": meta,
        "predicted": user.get("predicted").cloned().unwrap_or_else(|| json!({})),
        "actual": {
            "model": pick("model"),
            "effort": pick("effort"),
            "duration_s": summary.duration_s,
            "turns": summary.turns,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "cached_tokens": summary.cached_tokens,
            "reasoning_tokens": summary.reasoning_tokens,
            "total_tokens": summary.total_tokens,
            "loc_added": end.map(|e| e.loc_added),
            "loc_removed": end.map(|e| e.loc_removed),
            "files_changed": end.map(|e| e.files_changed),
            "commits": end.map(|e| e.commits),
            "counts_uncommitted": end.map(|e| e.counts_uncommitted),
            "exit": exit.reason,
            "exit_code": exit.code,
            "exit_signal": exit.signal,
            "stalls": summary.stalls,
            "resumes": summary.resumes,
            "restarts": summary.restarts,
            "disconnections": summary.disconnections,
        },
    })
}

fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(name.trim().to_string()).filter(|n| !n.is_empty())
}

/// Appends one JSON line (one `write`, so concurrent sessions' lines never
/// interleave); creates the file 0600.
fn append(path: &Path, line: &Value) -> io::Result<()> {
    let mut text = line.to_string();
    text.push('\n');
    let mut file = fsutil::open_jsonl(path)?;
    file.write_all(text.as_bytes())
}

/// One parsed line of a dispatch record, as `reins report` reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct RecordLine {
    #[serde(default)]
    pub(crate) meta: Map<String, Value>,
    #[serde(default)]
    pub(crate) actual: Map<String, Value>,
}

/// Reads a dispatch record; lines that are not records are skipped and
/// counted.
pub(crate) fn read_record(path: &Path) -> io::Result<(Vec<RecordLine>, usize)> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = Vec::new();
    let mut skipped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<RecordLine>(line) {
            Ok(record) => lines.push(record),
            Err(_) => skipped += 1,
        }
    }
    Ok((lines, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::exit_record::ExitReason;

    fn line(raw: &str) -> EventLine {
        EventLine::parse(raw).unwrap()
    }

    fn exit() -> ExitRecord {
        ExitRecord {
            schema_version: 1,
            id: "w".into(),
            run: "r".into(),
            code: Some(0),
            signal: None,
            reason: ExitReason::Success,
            detail: None,
            turns: 2,
            started_at: "2026-11-23T10:00:00.000Z".into(),
            exited_at: "2026-11-23T10:01:30.500Z".into(),
        }
    }

    #[test]
    fn usage_is_summed_and_unknown_stays_null() {
        let events = [
            line(
                r#"{"run":"r","seq":1,"type":"usage","input_tokens":100,"total_tokens":110,"source":"p"}"#,
            ),
            line(
                r#"{"run":"r","seq":2,"type":"usage","input_tokens":50,"total_tokens":55,"source":"p"}"#,
            ),
            line(r#"{"run":"r","seq":3,"type":"stall","idle_s":1,"state":"busy","reason":"x"}"#),
            line(
                r#"{"run":"r","seq":4,"type":"resume","n":1,"max":1,"by":"rules","interrupted":true}"#,
            ),
            line(
                r#"{"run":"r","seq":5,"type":"disconnected","source":"s","message":"m","will_retry":true}"#,
            ),
            line(
                r#"{"run":"r","seq":6,"type":"disconnected","source":"s","message":"m","will_retry":false}"#,
            ),
        ];
        let refs: Vec<&EventLine> = events.iter().collect();
        let s = summarize(&refs, &exit());
        assert_eq!((s.input_tokens, s.total_tokens), (Some(150), Some(165)));
        assert_eq!(s.output_tokens, None, "never shown: null, not 0");
        assert_eq!((s.stalls, s.resumes, s.disconnections), (1, 1, 1));
        assert_eq!(s.duration_s, 90.5);
        assert_eq!(s.turns, 2);
    }

    #[test]
    fn the_record_passes_meta_through_without_letting_it_override() {
        let info = RunInfo {
            id: "w".into(),
            run: "r".into(),
            agent: "mock".into(),
            adapter: "mock".into(),
            transport: "pty".into(),
            cwd: "/w".into(),
            repo_root: None,
            description: None,
            meta: Some(
                json!({"ticket": "T-1", "agent": "spoofed", "model": "opus", "predicted": {"duration_s": 60}}),
            ),
            record: None,
        };
        let summary = summarize(&[], &exit());
        let line = record_line(&info, &summary, None, None, &exit());
        assert_eq!(line["meta"]["ticket"], "T-1");
        assert_eq!(line["meta"]["agent"], "mock", "reins' own keys win");
        assert_eq!(line["meta"]["harness"], "reins");
        assert!(line["meta"].get("predicted").is_none());
        assert_eq!(line["predicted"]["duration_s"], 60);
        assert_eq!(line["actual"]["model"], "opus");
        assert_eq!(line["actual"]["exit"], "success");
        assert_eq!(line["actual"]["commits"], Value::Null, "no repository: null");
    }
}
