//! `reins inbox`: a session's queued messages, and removing them.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::control::lookup::{self, Liveness, SessionView};
use crate::error::{CliError, CliResult, code};
use crate::ipc::{Client, DropReply, InboxReply, PendingMessage};
use crate::store::events::preview;
use crate::store::inbox::{self, InboxFile, MessageStatus};
use crate::store::lock::HostLock;
use crate::store::paths::StateRoot;

/// Show a session's queued messages (oldest first), or remove them.
///
/// Messages wait in the inbox while the agent is busy; they survive a host
/// restart and are delivered, in order, when it is ready. Works on ended
/// sessions too: what is queued there goes to the next run of the id.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins inbox --id w1\n  reins inbox --id w1 --drop 3f2a9c1b4d5e6f70\n  reins inbox --id w1 --clear --json\n\nExit codes: 0 shown or removed, 1 no such session or queued message, 2 bad input."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// Remove every queued message.
    #[arg(long, conflicts_with = "drop")]
    clear: bool,
    /// Remove one queued message.
    #[arg(long, value_name = "MESSAGE_ID")]
    drop: Option<String>,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let removing = args.clear || args.drop.is_some();
    if view.liveness == Liveness::Live {
        let record = lookup::require_live(&view)?;
        let client = Client::new(&record.socket, Duration::from_secs(5));
        let runtime = crate::cli::runtime();
        if removing {
            let path = match &args.drop {
                Some(id) => format!("/v1/inbox/{id}"),
                None => "/v1/inbox".into(),
            };
            let reply: DropReply = runtime.block_on(client.delete(&path)).map_err(|err| {
                CliError::failure(format!("cannot change the inbox of {}: {err}", args.id))
            })?;
            return print_dropped(&args, reply.dropped);
        }
        let reply: InboxReply = runtime.block_on(client.get("/v1/inbox")).map_err(|err| {
            CliError::failure(format!("cannot read the inbox of {}: {err}", args.id))
        })?;
        return print_messages(&args, reply.messages);
    }
    if removing {
        return drop_offline(&args, &view);
    }
    let messages = offline_pending(&view)?;
    print_messages(&args, messages)
}

/// Queued messages of a session whose host is not running.
fn offline_pending(view: &SessionView) -> Result<Vec<PendingMessage>, CliError> {
    Ok(inbox::replay(&view.paths.inbox())?
        .into_iter()
        .filter(|e| e.status == MessageStatus::Queued)
        .map(|e| PendingMessage {
            message_id: e.message.id,
            status: e.status,
            queued_at: e.message.ts,
            expires_at: e.message.expires_at,
            preview: preview(&e.message.text),
            force: e.message.force,
            submit: e.message.submit,
            submit_only: e.message.submit_only,
        })
        .collect())
}

/// Drops messages of a session whose host is not running, holding its lock
/// so a host cannot start meanwhile.
fn drop_offline(args: &Args, view: &SessionView) -> CliResult {
    let Some(_lock) = HostLock::acquire(&view.paths.host_lock(), Duration::from_millis(500))?
    else {
        return Err(CliError::failure(format!("session {} is starting; try again", args.id)));
    };
    let pending = offline_pending(view)?;
    let ids: Vec<String> = match &args.drop {
        Some(id) if pending.iter().any(|m| &m.message_id == id) => vec![id.clone()],
        Some(id) => return Err(CliError::failure(format!("no queued message {id}"))),
        None => pending.into_iter().map(|m| m.message_id).collect(),
    };
    let mut file = InboxFile::open(&view.paths.inbox())?;
    for id in &ids {
        file.append(&inbox::InboxRecord::Status {
            id: id.clone(),
            ts: crate::time::now_rfc3339(),
            status: MessageStatus::Dropped,
            turn: None,
            detail: Some("dropped while the session was not running".into()),
        })?;
    }
    print_dropped(args, ids)
}

fn print_dropped(args: &Args, dropped: Vec<String>) -> CliResult {
    if args.json {
        crate::cli::print_json(
            &serde_json::json!({ "ok": true, "id": args.id, "dropped": dropped }),
        )?;
    } else if dropped.is_empty() {
        println!("nothing to drop");
    } else {
        for id in dropped {
            println!("dropped {id}");
        }
    }
    Ok(code::OK)
}

fn print_messages(args: &Args, messages: Vec<PendingMessage>) -> CliResult {
    if args.json {
        crate::cli::print_json(
            &serde_json::json!({ "ok": true, "id": args.id, "messages": messages }),
        )?;
        return Ok(code::OK);
    }
    let mut out = std::io::stdout().lock();
    if messages.is_empty() {
        writeln!(out, "inbox of {} is empty", args.id)?;
        return Ok(code::OK);
    }
    writeln!(out, "{:<16}  {:<10}  {:<24}  MESSAGE", "ID", "STATUS", "QUEUED")?;
    for m in messages {
        let flags = if m.force { " [force]" } else { "" };
        writeln!(
            out,
            "{:<16}  {:<10}  {:<24}  {}{flags}",
            m.message_id,
            m.status.as_str(),
            m.queued_at,
            m.preview
        )?;
    }
    Ok(code::OK)
}
