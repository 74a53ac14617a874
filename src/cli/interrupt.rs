//! `reins interrupt`: stop the running turn, keep the agent.

use std::path::PathBuf;

use crate::control::lookup;
use crate::control::session;
use crate::error::{CliResult, code};
use crate::store::paths::StateRoot;

/// Interrupt the turn a session's agent is working on, and keep the agent
/// running: `turn/interrupt` for protocol agents, the profile's keys (Esc
/// for most terminal UIs, Ctrl-C for shells) otherwise. The turn ends with
/// `task_complete` and status `interrupted` where the agent says so.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins interrupt --id w1 && reins wait --id w1 --until ready\n  reins interrupt --id w1 && reins send --id w1 'Stop that; fix only the parser.'\n\nExit codes: 0 interrupted, 1 no turn is running or no such running session,\n2 bad input."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    crate::cli::runtime().block_on(session::interrupt(&view))?;
    crate::cli::print_json(&serde_json::json!({ "ok": true, "id": args.id }))?;
    Ok(code::OK)
}
