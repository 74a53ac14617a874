//! Cleaning up after a host that died without doing it itself (killed with
//! SIGKILL, out of memory, machine crash): end what is left of its agent's
//! run (the agent, if it outlived the host, and whatever it left running),
//! close its event log with `exited`, write `exit.json`, and remove its
//! registry entry and socket. Shared by `gc` and `stop`.

use std::time::Duration;

use rustix::process::Signal;
use serde::Serialize;

use crate::control::lookup::SessionView;
use crate::store::dispatch::{self, RunInfo};
use crate::store::events::{self, EventKind, EventWriter};
use crate::store::exit_record::{ExitReason, ExitRecord};
use crate::store::fsutil;
use crate::store::lock::HostLock;
use crate::{procs, time};

/// What cleaning one dead session did.
#[derive(Debug, Serialize)]
pub(crate) struct Cleaned {
    pub(crate) id: String,
    pub(crate) scope: String,
    /// Processes of the lost run that were still running and were killed
    /// (the agent, and what it left running in the background).
    pub(crate) killed: Vec<u32>,
    /// Whether an `exited` event had to be written for the lost run.
    pub(crate) closed_run: bool,
}

/// Cleans up a dead session. Returns `None` if its host turned out to be
/// alive after all (it holds the lock), in which case nothing is touched.
pub(crate) fn clean_dead(
    view: &SessionView,
    reason: ExitReason,
) -> std::io::Result<Option<Cleaned>> {
    // Holding the host lock while cleaning keeps a new host for this id
    // from starting half way through.
    let Some(_lock) = HostLock::acquire(&view.paths.host_lock(), Duration::ZERO)? else {
        return Ok(None);
    };
    let mut killed = Vec::new();
    let mut closed_run = false;
    if let Some(record) = &view.record {
        // The agent normally died with its host; what it left running in
        // the background did not, and is found even when the agent is gone.
        killed = procs::leftovers(&record.run, record.agent_pid, record.agent_start_ticks);
        if procs::is_running(record.agent_pid, record.agent_start_ticks) {
            procs::signal_tree(record.agent_pid, Signal::KILL);
        }
        procs::signal_all(&killed, Signal::KILL);
        killed.sort_unstable();
        let all = events::read_all(&view.paths.events())?;
        let this_run: Vec<_> = all.iter().filter(|e| e.header.run == record.run).collect();
        let has_exited = this_run.iter().any(|e| matches!(e.kind, EventKind::Exited { .. }));
        if !has_exited {
            let last_seq = this_run.iter().map(|e| e.header.seq).max().unwrap_or(0);
            let detail = format!(
                "the session host (pid {}) died without recording the end{}",
                record.host_pid,
                if killed.is_empty() {
                    String::new()
                } else {
                    format!("; {} process(es) it left running were killed", killed.len())
                }
            );
            let exit = ExitRecord {
                schema_version: events::SCHEMA_VERSION,
                id: record.id.clone(),
                run: record.run.clone(),
                code: None,
                signal: None,
                reason,
                detail: Some(detail.clone()),
                turns: record.turn,
                started_at: record.started_at.clone(),
                exited_at: time::now_rfc3339(),
            };
            exit.write(&view.paths.exit_record())?;
            let mut writer =
                EventWriter::continue_run(&view.paths.events(), &record.run, &record.id, last_seq)?;
            let info = RunInfo {
                id: record.id.clone(),
                run: record.run.clone(),
                agent: record.agent.clone(),
                adapter: record.adapter.clone(),
                transport: record.transport.clone(),
                cwd: record.cwd.clone(),
                repo_root: record.repo_root.clone(),
                description: record.description.clone(),
                meta: record.meta.clone(),
                record: record.record.clone(),
            };
            dispatch::close_run(&mut writer, &view.paths.events(), &info, &exit)?;
            closed_run = true;
        }
        fsutil::remove_if_exists(&record.socket)?;
    }
    fsutil::remove_if_exists(&view.paths.socket)?;
    fsutil::remove_if_exists(&view.paths.registry())?;
    Ok(Some(Cleaned {
        id: view.paths.id.clone(),
        scope: view.paths.scope.clone(),
        killed,
        closed_run,
    }))
}
