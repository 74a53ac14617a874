//! `reins send`: hand a session a message, and know that it got through.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::control::lookup;
use crate::control::session::{self, Follow};
use crate::error::{CliError, CliResult, code};
use crate::ipc::{MAX_MESSAGE, SendRequest};
use crate::spinner::Spinner;
use crate::store::paths::StateRoot;

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
    /// harnex's `--cli NAME`: the session must run that agent.
    #[arg(long, value_name = "NAME", hide = true)]
    cli: Option<String>,
    /// harnex's `--relay`: add the relay header even when sending to the
    /// session this runs in.
    #[arg(long, hide = true, conflicts_with = "no_relay")]
    relay: bool,
    /// harnex's `--verbose`: say what happens on standard error.
    #[arg(long, hide = true)]
    verbose: bool,
    /// harnex's direct mode (`--port`, `--token`): refused with a hint,
    /// reins sessions have no TCP endpoint (`--host` is an ssh host).
    #[arg(long, value_name = "PORT", hide = true)]
    port: Option<String>,
    #[arg(long, value_name = "TOKEN", hide = true)]
    token: Option<String>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
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
    if let Some(flag) = [("--port", &args.port), ("--token", &args.token)]
        .iter()
        .find_map(|(flag, value)| value.as_ref().map(|_| flag))
    {
        return Err(crate::cli::compat::unsupported(
            flag,
            "reins sessions listen on a private Unix socket, not on TCP",
            "name the session with --id (and --repo DIR for another repository)",
        ));
    }
    let verbose = |what: String| {
        if args.verbose {
            eprintln!("[{} send] {what}", crate::compat::program());
        }
    };
    let text = message_text(&args)?;
    let sender = crate::compat::sender_id().filter(|_| !args.no_relay && !args.submit_only);
    let text = session::with_relay_header(sender.as_deref(), &args.id, text, args.relay);
    let state = StateRoot::from_env()?;
    verbose(format!("looking up session {}", args.id));
    let view = crate::cli::compat::find(
        &state,
        Some(&args.id),
        args.cli.as_deref(),
        args.repo.as_deref(),
    )?;
    let record = lookup::require_live(&view)?;
    verbose(format!(
        "found {} ({}, {}) in {}",
        args.id,
        record.agent,
        record.state.state,
        view.paths.dir.display()
    ));
    let timeout = args.timeout.or((!args.wait_for_idle).then_some(Duration::from_secs(120)));
    let request = SendRequest {
        text,
        submit: !args.no_submit,
        submit_only: args.submit_only,
        force: args.force,
        raw: args.raw,
        ttl_ms: args.ttl.map(|t| t.as_millis().min(u128::from(u64::MAX)) as u64),
    };
    let follow = match (args.no_wait, args.wait_for_idle) {
        (true, _) => Follow::No,
        (false, true) => Follow::Turn,
        (false, false) => Follow::Delivery,
    };
    let spinner = (follow != Follow::No).then(|| Spinner::start(format!("sending to {}", args.id)));
    let sent = crate::cli::runtime().block_on(session::send(
        &view,
        &request,
        follow,
        timeout,
        |detail| {
            if let Some(spinner) = &spinner {
                spinner.detail(detail);
            }
        },
    ))?;
    drop(spinner);
    verbose(format!("message {}: {}", sent.message_id, sent.status));
    let code = match (sent.ok, sent.timed_out) {
        (true, _) => code::OK,
        (false, true) => code::TIMEOUT,
        (false, false) => code::FAILURE,
    };
    let outcome = Outcome {
        ok: sent.ok,
        id: args.id,
        message_id: sent.message_id,
        status: sent.status,
        turn: sent.turn,
        task: sent.task,
        detail: sent.detail,
        waited_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    };
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
