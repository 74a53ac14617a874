//! `reins stop`: end a session and everything it started.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::control::lookup::Liveness;
use crate::control::session;
use crate::error::{CliResult, code};
use crate::spinner::Spinner;
use crate::store::exit_record::ExitRecord;
use crate::store::paths::StateRoot;

/// Stop a session: the agent's polite exit first, then SIGTERM and SIGKILL
/// to its whole process tree, within --timeout.
///
/// Idempotent: stopping a session that already ended succeeds. A session
/// whose host died is cleaned up (its leftover processes killed). Prints one
/// JSON line. Exit 0 when the session is gone, 124 if it would not end in
/// time (with --force it always ends: the host and agent are killed).
#[derive(Debug, clap::Args)]
#[command(override_usage = "reins stop [OPTIONS] --id <ID>")]
#[command(
    after_help = "Examples:\n  reins stop --id demo\n  reins stop --id demo --timeout 2s --force\n\nExit codes: 0 the session is gone (or had already ended), 1 no such session or\nits host did not answer (without --force), 2 bad input, 124 it did not end\nwithin --timeout (without --force)."
)]
pub(crate) struct Args {
    /// The session to stop.
    #[arg(long, required_unless_present = "cli")]
    id: Option<String>,
    /// harnex's `--cli NAME`: the session running that agent.
    #[arg(long, value_name = "NAME", hide = true)]
    cli: Option<String>,
    /// How long to wait for the session to end.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::time::parse_duration)]
    timeout: Duration,
    /// If it has not ended in time (or its host does not answer), kill it.
    #[arg(long)]
    force: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
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
    let view =
        super::compat::find(&state, args.id.as_deref(), args.cli.as_deref(), args.repo.as_deref())?;
    let id = view.paths.id.clone();
    let _spinner =
        (view.liveness == Liveness::Live).then(|| Spinner::start(format!("stopping {id}")));
    let stopped = crate::cli::runtime().block_on(session::stop(&view, args.timeout, args.force))?;
    crate::cli::print_json(&Outcome {
        ok: true,
        id,
        status: stopped.as_str(),
        exit: view.exit_record(),
    })?;
    Ok(code::OK)
}
