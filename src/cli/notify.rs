//! `reins notify`: the notifications `[notify]` in config.toml sends.

use crate::error::{CliError, CliResult, code};
use crate::notify::On;

/// Notifications that come to you: `[notify]` in config.toml says which
/// events of which sessions are worth a word, and where it goes.
///
/// ```toml
/// [notify]
/// on = ["blocked", "escalate", "rate_limit", "exited"]   # the default
/// sessions = ["impl-*"]           # only these ids; `*` matches anything
/// command = "~/bin/page-me"       # `sh -c`, the event as JSON on stdin
/// desktop = true                  # notify-send
/// url = "https://ntfy.sh/my-topic" # POST the event as JSON (with curl)
/// ```
///
/// `on` takes blocked (an approval request, a trust or login dialog),
/// task_complete, escalate (a watcher gave up), rate_limit and exited (the
/// agent ended badly). The command also gets REINS_EVENT_ID, REINS_EVENT_ON,
/// REINS_EVENT_SUMMARY (one line for a person) and REINS_EVENT_JSON. The
/// session's host sends them as it writes the events, in the background;
/// a session takes the table as it is when it starts.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins notify test
  reins notify test --on task_complete --json

Exit codes: 0 every channel took it, 1 one did not (or there is no [notify]
table), 2 bad input.")]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Send a sample notification on every channel and say how each went.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins notify test
  reins notify test --on task_complete --json

Exit codes: 0 every channel took it, 1 one did not (or there is no [notify]
table), 2 bad input.")]
struct TestArgs {
    /// What the sample is about.
    #[arg(long, value_name = "KIND", default_value = "blocked", value_parser = parse_on)]
    on: On,
    /// Print one JSON line instead of a line per channel.
    #[arg(long)]
    json: bool,
}

fn parse_on(text: &str) -> Result<On, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|_| {
        format!("{text:?}: use blocked, task_complete, escalate, rate_limit or exited")
    })
}

pub(crate) fn run(args: Args) -> CliResult {
    let Sub::Test(args) = args.command;
    let notify = crate::config::notify()?.ok_or_else(|| {
        CliError::failure("there is no [notify] table in config.toml")
            .hint("`reins notify --help` shows one to start from")
    })?;
    let sample = sample(args.on);
    let sent = notify.send_and_wait("sample", args.on, &sample);
    if sent.is_empty() {
        return Err(CliError::failure("[notify] has no channel: give command, desktop or url")
            .hint("`reins notify --help` shows them"));
    }
    let ok = sent.iter().all(|s| s.ok);
    if args.json {
        crate::cli::print_json(&serde_json::json!({ "ok": ok, "sent": sent }))?;
    } else {
        for s in &sent {
            println!("{:<8} {}  {}", s.channel, if s.ok { "ok    " } else { "FAILED" }, s.detail);
        }
    }
    Ok(if ok { code::OK } else { code::FAILURE })
}

/// An event line of the kind asked for, from session `sample`.
fn sample(on: On) -> String {
    let body = match on {
        On::Blocked => serde_json::json!({"type": "blocked", "kind": "approval", "request": "a1",
            "detail": "Allow the sample agent to run `make test`?"}),
        On::TaskComplete => serde_json::json!({"type": "task_complete", "turn": 1,
            "status": "completed"}),
        On::Escalate => serde_json::json!({"type": "escalate", "reason": "a sample escalation",
            "by": "rules"}),
        On::RateLimit => serde_json::json!({"type": "rate_limited", "source": "screen"}),
        On::Exited => serde_json::json!({"type": "exited", "code": 1, "signal": null,
            "reason": "failure"}),
    };
    let mut event = serde_json::json!({
        "schema_version": 1, "run": "sample", "seq": 1, "ts": crate::time::now_rfc3339(),
        "id": "sample",
    });
    if let (Some(event), Some(body)) = (event.as_object_mut(), body.as_object()) {
        event.extend(body.clone());
    }
    event.to_string()
}
