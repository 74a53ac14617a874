//! `reins answer`: what the agent answered in a turn (the reading is
//! [`crate::control::answer`]'s).

use std::io::Write;
use std::path::PathBuf;

use crate::control::answer::{self, Which};
use crate::control::lookup;
use crate::error::{CliResult, code};
use crate::store::paths::StateRoot;

/// Print what the agent answered in a turn (default: the last completed
/// turn), exactly and nothing else, so `$(reins answer --id w1)` is the
/// answer.
///
/// On a protocol transport it is the agent's final message of the turn as
/// the protocol gave it; on a screen, the text the agent drew for the turn
/// after the echoed message, found by its adapter's `[answer]` rules
/// (`reins adapters explain --id ID` shows them). The host keeps 64 KiB
/// of an answer. `reins wait --until task_complete --json` carries the
/// same text as `answer`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins send --id w1 'What does parse() return?' && reins wait --id w1 --until task_complete
  reins answer --id w1
  reins answer --id w1 --turn 2
  reins answer --id w1 --message 3f2a9c1b4d5e6f70 --json | jq -r .answer

Exit codes: 0 printed, 1 no such session or turn, the turn is not complete
yet (wait for it with reins wait), or it has no answer; 2 bad input.")]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
    /// The answer of turn N (of the latest run that has one).
    #[arg(long, value_name = "N", conflicts_with = "message")]
    turn: Option<u64>,
    /// The answer of the turn this message started.
    #[arg(long, value_name = "MESSAGE_ID")]
    message: Option<String>,
    /// One JSON object: {id, run, turn, message_id, outcome, answer,
    /// source, cut?}.
    #[arg(long)]
    json: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let which = match (args.turn, args.message) {
        (Some(n), _) => Which::Turn(n),
        (None, Some(id)) => Which::Message(id),
        (None, None) => Which::Last,
    };
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    let found = answer::find(&view, &which)?;
    if args.json {
        crate::cli::print_json(&found)?;
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", found.answer)?;
    }
    Ok(code::OK)
}
