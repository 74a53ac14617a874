//! Where chains stand, from their state files: what `reins chain status
//! --json` prints and the MCP `chain_status` tool answers.

use std::path::PathBuf;

use serde_json::Value;

use crate::chain::runner;
use crate::chain::state::{self, ChainState, ChainStatus};
use crate::error::CliError;
use crate::ids;
use crate::store::paths::StateRoot;

/// Chain `id`'s directory and state.
pub(crate) fn read(root: &StateRoot, id: &str) -> Result<(PathBuf, ChainState), CliError> {
    ids::validate(id)?;
    let dir = state::dir_of(root, id);
    match ChainState::read(&dir) {
        Ok(st) => Ok((dir, st)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Err(CliError::failure(format!("no chain {id:?}"))
                .hint("`reins chain status` lists the chains"))
        }
        Err(err) => Err(CliError::failure(format!(
            "cannot read {}: {err}",
            ChainState::path_in(&dir).display()
        ))),
    }
}

/// Whether the chain is running now (its runner is alive).
pub(crate) fn running(st: &ChainState) -> bool {
    st.status == ChainStatus::Running && st.runner_alive()
}

/// One chain in full: its summary, runner, state file and log.
pub(crate) fn status(root: &StateRoot, id: &str) -> Result<Value, CliError> {
    let (dir, st) = read(root, id)?;
    let mut summary = runner::summary(&st);
    summary["ok"] = Value::from(true);
    summary["runner_alive"] = Value::from(running(&st));
    summary["runner_pid"] = Value::from(st.runner_pid);
    summary["state"] = Value::from(ChainState::path_in(&dir).display().to_string());
    summary["log"] = Value::from(dir.join("events.jsonl").display().to_string());
    Ok(summary)
}

/// Every chain, oldest first.
pub(crate) fn all(root: &StateRoot) -> Vec<ChainState> {
    let mut all: Vec<ChainState> = std::fs::read_dir(root.root().join("chains"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| ChainState::read(&e.path()).ok())
        .collect();
    all.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    all
}

/// Every chain's summary, oldest first.
pub(crate) fn list(root: &StateRoot) -> Vec<Value> {
    all(root)
        .iter()
        .map(|st| {
            let mut v = runner::summary(st);
            v["runner_alive"] = Value::from(running(st));
            v["started_at"] = Value::from(st.started_at.clone());
            v
        })
        .collect()
}
