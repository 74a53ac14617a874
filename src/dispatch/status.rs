//! Where a dispatch stands, from its own log
//! (`$REINS_STATE_DIR/dispatches/ID/events.jsonl`): whichever process runs
//! it (`reins dispatch`, a chain, `reins mcp`), and after it ended.

use serde::Serialize;
use serde_json::Value;

use crate::control::lookup::{Liveness, SessionView};
use crate::dispatch::dir_of;
use crate::error::CliError;
use crate::ids;
use crate::store::events;
use crate::store::paths::StateRoot;

/// One dispatch, as its log tells it.
#[derive(Debug, Serialize)]
pub(crate) struct Status {
    pub(crate) id: String,
    /// `running` (its attempt's session or verifier is live), `ended`, or
    /// `stopped`
    /// (no end was recorded and no session of it runs: the process that
    /// ran it is gone, or it is between attempts).
    pub(crate) state: &'static str,
    /// How it ended: accepted, failed, timeout or interrupted.
    pub(crate) result: Option<String>,
    /// The accepted attempt's session.
    pub(crate) session: Option<String>,
    /// The attempt under way: its number, session, agent and model.
    pub(crate) current: Option<Value>,
    /// Every finished attempt (agent, model, session, result, reason,
    /// checks, verdict, tokens, duration), oldest first.
    pub(crate) attempts: Vec<Value>,
    /// The route and checks it was started with.
    pub(crate) started: Option<Value>,
    pub(crate) duration_s: Option<f64>,
    /// The log this was read from.
    pub(crate) log: std::path::PathBuf,
}

/// Reads dispatch `id`'s log.
pub(crate) fn status(state: &StateRoot, id: &str) -> Result<Status, CliError> {
    ids::validate(id)?;
    let log = dir_of(state, id).join("events.jsonl");
    if !log.exists() {
        return Err(CliError::failure(format!("no dispatch {id:?}"))
            .hint("`reins dispatch --history --json` lists the dispatches recorded"));
    }
    let mut status = Status {
        id: id.to_string(),
        state: "stopped",
        result: None,
        session: None,
        current: None,
        attempts: Vec::new(),
        started: None,
        duration_s: None,
        log: log.clone(),
    };
    for line in events::read_all(&log)? {
        let Ok(event) = serde_json::from_str::<Value>(&line.raw) else { continue };
        match line.header.kind.as_str() {
            "dispatch_started" => status.started = Some(event),
            "attempt_started" => status.current = Some(event),
            "attempt" => {
                status.current = None;
                status.attempts.push(event);
            }
            "dispatch_ended" => {
                status.state = "ended";
                status.result = event["result"].as_str().map(String::from);
                status.session = event["session"].as_str().map(String::from);
                status.duration_s = event["duration_s"].as_f64();
                status.current = None;
            }
            _ => {}
        }
    }
    if status.state != "ended" {
        // The attempt's worker, or its verifier once the worker's turn ended.
        let session = status.current.as_ref().and_then(|c| c["session"].as_str());
        let live = session.is_some_and(|s| {
            [s.to_string(), format!("{s}-verify")].iter().any(|s| {
                crate::control::lookup::find(state, s, None)
                    .is_ok_and(|v: SessionView| v.liveness == Liveness::Live)
            })
        });
        if live {
            status.state = "running";
        }
    }
    Ok(status)
}
