//! `reins approve`: answer the approval dialog a session's agent shows.

use std::path::PathBuf;

use crate::control::lookup;
use crate::control::session;
use crate::error::{CliResult, code};
use crate::ipc::Decision;
use crate::store::paths::StateRoot;

/// Answer the approval request a session's agent waits on: allow (the
/// default), allow and stop asking for the like (--always), or refuse
/// (--deny).
///
/// Each request has a name (`a1`, `a2`, ...) in its `blocked` event and in
/// `status --json` (`approval.request`). With --request NAME only that
/// request is answered: if it is no longer pending (answered, withdrawn,
/// or the agent moved on to another dialog) nothing is typed and the
/// command fails, so a late answer never lands on the next dialog. Without
/// it, the oldest pending request is answered.
///
/// For a screen agent the keys are its own (its adapter profile knows them)
/// and are pressed only while the session reads `blocked{approval}`. An
/// agent cannot answer its own session's requests, however it asks.
/// Prints one JSON line naming the request answered.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins wait --id w1 --until blocked && reins approve --id w1\n  reins approve --id w1 --request a3 --deny\n  reins approve --id w1 --always\n\nExit codes: 0 answered, 1 no such request pending (nothing was typed), refused\n(the session's own agent asked), or no such running session, 2 bad input."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// Refuse the request.
    #[arg(long, conflicts_with = "always")]
    deny: bool,
    /// Allow, and let the agent stop asking for requests like it.
    #[arg(long)]
    always: bool,
    /// Answer only this request (its name from the `blocked` event or
    /// `status --json`); fail if it is no longer pending.
    #[arg(long, value_name = "NAME")]
    request: Option<String>,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let decision = match (args.deny, args.always) {
        (true, _) => Decision::Deny,
        (_, true) => Decision::Always,
        _ => Decision::Allow,
    };
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let reply =
        crate::cli::runtime().block_on(session::approve(&view, decision, args.request.clone()))?;
    crate::cli::print_json(&serde_json::json!({
        "ok": reply.ok,
        "id": args.id,
        "decision": reply.decision,
        "request": reply.request,
    }))?;
    Ok(code::OK)
}
