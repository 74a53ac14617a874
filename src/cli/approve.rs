//! `reins approve`: answer the approval dialog a session's agent shows.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::lookup;
use crate::error::{CliError, CliResult, code};
use crate::ipc::{ApproveReply, ApproveRequest, Client, ClientError, Decision};
use crate::store::paths::StateRoot;

/// Answer the approval dialog on a session's screen: allow (the default),
/// allow and stop asking for the like (--always), or refuse (--deny).
///
/// The keys are the agent's own (its adapter profile knows them) and are
/// pressed only while the session reads `blocked{approval}`: with no dialog
/// on screen nothing is typed and the command fails. Prints one JSON line.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins wait --id w1 --until blocked && reins approve --id w1\n  reins approve --id w1 --deny\n  reins approve --id w1 --always\n\nExit codes: 0 answered, 1 no approval dialog on screen (nothing was typed) or\nno such running session, 2 bad input."
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
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let decision = match (args.deny, args.always) {
        (true, _) => Decision::Deny,
        (_, true) => Decision::Always,
        _ => Decision::Allow,
    };
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let record = lookup::require_live(&view)?;
    let client = Client::new(&record.socket, Duration::from_secs(5));
    let reply: ApproveReply = crate::cli::runtime()
        .block_on(client.post("/v1/approve", &ApproveRequest { decision }))
        .map_err(|err| match err {
            ClientError::Status { status: 409, message } => {
                CliError::failure(format!("cannot approve in session {}: {message}", args.id))
                    .hint(format!("`reins pane --id {}` shows what is on screen", args.id))
            }
            other => CliError::failure(format!("cannot approve in session {}: {other}", args.id)),
        })?;
    crate::cli::print_json(
        &serde_json::json!({ "ok": reply.ok, "id": args.id, "decision": reply.decision }),
    )?;
    Ok(code::OK)
}
