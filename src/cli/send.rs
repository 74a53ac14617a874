//! `reins send`: hand a session a message, and know that it got through.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::control::lookup;
use crate::error::{CliError, CliResult, code};
use crate::ipc::{Client, ClientError, MAX_MESSAGE, SendReply, SendRequest};
use crate::spinner::Spinner;
use crate::store::events::EventKind;
use crate::store::paths::StateRoot;
use crate::store::stream::EventStream;

/// Send a message to a session's agent, verified.
///
/// The message goes into the session's inbox first (it survives a host
/// restart), then into the agent as soon as it is ready: pasted, submitted,
/// and confirmed by the turn it starts. `send` waits for that and prints
/// the message's turn; a message that did not start a turn is `stranded`
/// (exit 1), never reported as delivered. The text comes from --message,
/// the arguments, or standard input.
///
/// Control characters and escape sequences are removed unless --raw. When
/// the sender is itself a reins session, the text gets a relay header
/// naming it (--no-relay to leave it out).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins send --id w1 'fix the failing test in parser.rs'
  reins send --id w1 --wait-for-idle --message \"$(cat task.md)\"
  git diff | reins send --id reviewer
  reins send --id w1 --force 'stop and summarise'      (now, even while busy)
  reins send --id w1 --no-wait 'next task'             (return once queued)

Exit codes: 0 delivered (and, with --wait-for-idle, its turn done), 1 stranded,
expired, dropped or the session ended, 2 bad input, 124 timeout (the message
stays queued).")]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// The message (else the arguments, else standard input).
    #[arg(long, short, value_name = "TEXT", conflicts_with = "words")]
    message: Option<String>,
    /// The message, as words.
    #[arg(value_name = "TEXT")]
    words: Vec<String>,
    /// Type the text but do not submit it.
    #[arg(long, conflicts_with = "submit_only")]
    no_submit: bool,
    /// Only press the submit key (e.g. to answer a dialog, or to submit
    /// text typed with --no-submit).
    #[arg(long)]
    submit_only: bool,
    /// Deliver now, even while the agent is busy, ahead of queued messages.
    #[arg(long)]
    force: bool,
    /// Keep control characters and escape sequences.
    #[arg(long)]
    raw: bool,
    /// Do not add the relay header when sending from inside a session.
    #[arg(long)]
    no_relay: bool,
    /// Return as soon as the message is accepted (queued or being typed).
    #[arg(long, conflicts_with = "wait_for_idle")]
    no_wait: bool,
    /// After delivery, wait until the turn it started is complete.
    #[arg(long)]
    wait_for_idle: bool,
    /// Expire the message if it is still queued after this long.
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    ttl: Option<Duration>,
    /// How long to wait in all [default: 120s, or no limit with --wait-for-idle].
    #[arg(long, value_name = "DURATION", value_parser = crate::time::parse_duration)]
    timeout: Option<Duration>,
    /// Accepted for symmetry: the output is always one JSON line.
    #[arg(long)]
    json: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Outcome {
    ok: bool,
    id: String,
    message_id: String,
    /// queued, delivering, delivered, typed, stranded, expired, dropped,
    /// exited or timeout.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn: Option<u64>,
    /// With --wait-for-idle: how the turn ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    waited_s: f64,
}

pub(crate) fn run(args: Args) -> CliResult {
    let started = Instant::now();
    let text = message_text(&args)?;
    let text = relay_header(&args, text);
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let record = lookup::require_live(&view)?;
    let timeout = args.timeout.or((!args.wait_for_idle).then_some(Duration::from_secs(120)));
    let request = SendRequest {
        text,
        submit: !args.no_submit,
        submit_only: args.submit_only,
        force: args.force,
        raw: args.raw,
        ttl_ms: args.ttl.map(|t| t.as_millis().min(u128::from(u64::MAX)) as u64),
    };
    crate::cli::runtime().block_on(async {
        // Follow from here on, before asking, so no outcome can be missed.
        let mut stream =
            if args.no_wait { None } else { Some(EventStream::from_end(&view.paths)) };
        let client = Client::new(&record.socket, Duration::from_secs(10));
        let reply: SendReply = client.post("/v1/send", &request).await.map_err(|err| {
            let message = format!("cannot send to {}: {err}", args.id);
            match err {
                ClientError::Status { status: 400 | 413, .. } => CliError::usage(message),
                _ => CliError::failure(message),
            }
        })?;
        let mut outcome = Outcome {
            ok: true,
            id: args.id.clone(),
            message_id: reply.message_id.clone(),
            status: reply.status.as_str().into(),
            turn: None,
            task: None,
            detail: None,
            waited_s: 0.0,
        };
        let Some(stream) = stream.as_mut() else {
            return finish(outcome, started, code::OK);
        };
        let deadline = timeout.map(|t| tokio::time::Instant::from_std(started + t));
        let spinner = Spinner::start(format!("sending to {}", args.id));
        spinner.detail(outcome.status.clone());
        let followed = follow(stream, &record.run, &mut outcome, args.wait_for_idle, &spinner);
        let followed = with_deadline(deadline, followed).await;
        drop(spinner);
        let code = match followed {
            Some(result) => result?,
            None => {
                outcome.ok = false;
                outcome.detail = Some(format!(
                    "gave up waiting after {:.1}s; the message stays in the inbox (`reins inbox --id {}`)",
                    timeout.unwrap_or_default().as_secs_f64(),
                    args.id
                ));
                if outcome.status == "delivered" {
                    outcome.status = "timeout".into();
                }
                code::TIMEOUT
            }
        };
        finish(outcome, started, code)
    })
}

/// Follows the session's events until the message's fate (and, with
/// `wait_for_idle`, its turn's end) is known. Returns the exit code.
async fn follow(
    stream: &mut EventStream,
    run: &str,
    outcome: &mut Outcome,
    wait_for_idle: bool,
    spinner: &Spinner,
) -> Result<u8, CliError> {
    while let Some(event) = stream.next().await? {
        if event.header.run != run {
            continue;
        }
        let ours = |id: &str| id == outcome.message_id;
        match event.kind {
            EventKind::Delivered { message_id, verified, .. } if ours(&message_id) => {
                outcome.status = "delivered".into();
                outcome.turn = event.header.turn;
                if !verified {
                    outcome.detail = Some("forced into a busy agent: no new turn to verify".into());
                }
                if !wait_for_idle || !verified {
                    return Ok(code::OK);
                }
                spinner.detail(format!(
                    "delivered; turn {} is running",
                    event.header.turn.map_or("?".into(), |t| t.to_string())
                ));
            }
            EventKind::Typed { message_id, .. } if ours(&message_id) => {
                outcome.status = "typed".into();
                return Ok(code::OK);
            }
            EventKind::Stranded { message_id, reason, .. } if ours(&message_id) => {
                outcome.ok = false;
                outcome.status = "stranded".into();
                outcome.detail = Some(reason);
                return Ok(code::FAILURE);
            }
            EventKind::Expired { message_id, .. } if ours(&message_id) => {
                outcome.ok = false;
                outcome.status = "expired".into();
                return Ok(code::FAILURE);
            }
            EventKind::Dropped { message_id, .. } if ours(&message_id) => {
                outcome.ok = false;
                outcome.status = "dropped".into();
                return Ok(code::FAILURE);
            }
            EventKind::TaskComplete { status, .. }
                if outcome.turn.is_some() && event.header.turn == outcome.turn =>
            {
                outcome.task = Some(serde_json::json!({ "status": status }));
                return Ok(code::OK);
            }
            EventKind::Exited { .. } => {
                outcome.ok = false;
                if outcome.status != "delivered" {
                    outcome.detail =
                        Some("the session ended first; the message stays in its inbox".into());
                } else {
                    outcome.detail = Some("the session ended before the turn completed".into());
                }
                outcome.status = "exited".into();
                return Ok(code::FAILURE);
            }
            _ => {}
        }
    }
    outcome.ok = false;
    outcome.status = "exited".into();
    outcome.detail = Some("the session's host died".into());
    Ok(code::FAILURE)
}

async fn with_deadline<T>(
    deadline: Option<tokio::time::Instant>,
    fut: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
        None => Some(fut.await),
    }
}

fn finish(mut outcome: Outcome, started: Instant, code: u8) -> CliResult {
    outcome.waited_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    crate::cli::print_json(&outcome)?;
    Ok(code)
}

/// The text to send: --message, the words, or standard input.
fn message_text(args: &Args) -> Result<String, CliError> {
    if args.submit_only {
        if args.message.is_some() || !args.words.is_empty() {
            return Err(CliError::usage("--submit-only sends no text"));
        }
        return Ok(String::new());
    }
    let text = if let Some(m) = &args.message {
        m.clone()
    } else if !args.words.is_empty() {
        args.words.join(" ")
    } else if !std::io::stdin().is_terminal() {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        String::from_utf8(bytes).map_err(|err| {
            CliError::usage(format!(
                "standard input is not valid UTF-8 (bad byte at offset {})",
                err.utf8_error().valid_up_to()
            ))
            .hint("convert it first, e.g. with iconv")
        })?
    } else {
        return Err(CliError::usage("no message: give --message TEXT, words, or standard input"));
    };
    if text.trim().is_empty() {
        return Err(CliError::usage("the message is empty")
            .hint("to press the submit key alone, use --submit-only"));
    }
    let limit = MAX_MESSAGE;
    if text.len() > limit {
        return Err(CliError::usage(format!(
            "the message is {} bytes; the limit is {limit} (1 MiB)",
            text.len()
        ))
        .hint("write it to a file and send the agent its path"));
    }
    Ok(text)
}

/// Prefixes the relay header when the sender is itself a reins session.
fn relay_header(args: &Args, text: String) -> String {
    let Ok(sender) = std::env::var("REINS_ID") else { return text };
    if args.no_relay || args.submit_only || sender.is_empty() || sender == args.id {
        return text;
    }
    if text.starts_with("[reins relay ") {
        return text;
    }
    format!("[reins relay from={sender} at={}]\n{text}", crate::time::now_rfc3339())
}
