//! `reins stop`: end a session and everything it started.

use std::path::PathBuf;
use std::time::Duration;

use rustix::process::Signal;
use serde::Serialize;

use crate::control::cleanup;
use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::{CliError, CliResult, code};
use crate::ipc::{Client, StopReply, StopRequest};
use crate::procs;
use crate::spinner::Spinner;
use crate::store::exit_record::{ExitReason, ExitRecord};
use crate::store::follow;
use crate::store::paths::StateRoot;

/// Stop a session: the agent's polite exit first, then SIGTERM and SIGKILL
/// to its whole process tree, within --timeout.
///
/// Idempotent: stopping a session that already ended succeeds. A session
/// whose host died is cleaned up (its leftover processes killed). Prints one
/// JSON line. Exit 0 when the session is gone, 124 if it would not end in
/// time (with --force it always ends: the host and agent are killed).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins stop --id demo\n  reins stop --id demo --timeout 2s --force\n\nExit codes: 0 the session is gone (or had already ended), 1 no such session or\nits host did not answer (without --force), 2 bad input, 124 it did not end\nwithin --timeout (without --force)."
)]
pub(crate) struct Args {
    /// The session to stop.
    #[arg(long)]
    id: String,
    /// How long to wait for the session to end.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::time::parse_duration)]
    timeout: Duration,
    /// If it has not ended in time (or its host does not answer), kill it.
    #[arg(long)]
    force: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Outcome {
    ok: bool,
    id: String,
    /// `stopped`, `killed`, `already_exited` or `cleaned` (the host had died).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitRecord>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let status = match view.liveness {
        Liveness::Exited => "already_exited",
        Liveness::Dead => {
            cleanup::clean_dead(&view, ExitReason::Stopped)?;
            "cleaned"
        }
        Liveness::Live => {
            let _spinner = Spinner::start(format!("stopping {}", args.id));
            crate::cli::runtime().block_on(stop_live(&view, &args))?
        }
    };
    crate::cli::print_json(&Outcome { ok: true, id: args.id, status, exit: view.exit_record() })?;
    Ok(code::OK)
}

async fn stop_live(view: &SessionView, args: &Args) -> Result<&'static str, CliError> {
    let record = lookup::require_live(view)?;
    // Watch for the end before asking, so it cannot slip past us.
    let mut gone = follow::host_gone(&view.paths.host_lock());
    let deadline = tokio::time::Instant::now() + args.timeout;
    let client = Client::new(&record.socket, args.timeout.min(Duration::from_secs(3)));
    let request = StopRequest { timeout_ms: Some(args.timeout.as_millis() as u64), retire: false };
    if let Err(err) = client.post::<_, StopReply>("/v1/stop", &request).await {
        if !args.force {
            return Err(CliError::failure(format!(
                "cannot ask session {} to stop: {err}",
                args.id
            ))
            .hint("`reins stop --force` kills it without asking"));
        }
    } else {
        tokio::select! {
            _ = &mut gone => return Ok("stopped"),
            _ = tokio::time::sleep_until(deadline) => {}
        }
        if !args.force {
            return Err(CliError::timeout(format!(
                "session {} did not stop within {:.1}s",
                args.id,
                args.timeout.as_secs_f64()
            ))
            .hint("`reins stop --force` kills it"));
        }
    }
    // --force: kill the agent's tree and the host, then clean up after it.
    if procs::is_running(record.agent_pid, record.agent_start_ticks) {
        procs::signal_tree(record.agent_pid, Signal::KILL);
    }
    procs::signal_pid(record.host_pid, Signal::KILL);
    if tokio::time::timeout(Duration::from_secs(5), gone).await.is_err() {
        return Err(CliError::failure(format!(
            "session {}: its host (pid {}) survived SIGKILL",
            args.id, record.host_pid
        )));
    }
    // The host may have written its own end before dying.
    let after = SessionView::read(view.paths.clone());
    if after.liveness == Liveness::Dead {
        cleanup::clean_dead(&after, ExitReason::Stopped)?;
    }
    Ok("killed")
}
