//! `reins mock-agent`: the command line of the built-in fake agent.

use std::time::Duration;

use crate::error::CliResult;
use crate::mock_agent;

const AFTER_HELP: &str = "\
Markers in a message change what the turn does (they can be combined):
  [[wait:S]]                    work for S seconds instead of --work
  [[stall]]                     go busy, then print nothing until Esc or Ctrl-C
  [[crash]], [[crash:N]]        exit at once with code N (default 3)
  [[approve]], [[approve:CMD]]  ask before running CMD (default `touch x.txt`)
  [[flood:N]]                   print N KiB of transcript while working
  [[spawn]]                     start a child that sleeps for an hour
  [[exit]], [[exit:N]]          exit with code N (default 0) after the turn
  [[fail]]                      answer MOCK_FAILED instead of MOCK_OK
  [[drip:S]]                    print a line of progress every S seconds while working
  [[ratelimit:S]]               hit a usage limit that resets in S seconds: until then
                                every message ends at once with the limit notice
  [[reply:TEXT]]                answer `● TEXT` instead of `MOCK_OK (you said: ...)`
                                (e.g. a verifier's JSON verdict for `reins dispatch`)

Keys: enter sends; esc or ctrl-c interrupts a turn; ctrl-c twice, ctrl-d on
an empty prompt or the message /exit quits.

Examples:
  reins run mock --id demo --detach              drive it with reins (the usual way)
  reins run mock --detach -- --boot-delay 2      slow to start
  reins send --id demo '[[wait:5]] take your time'
  reins mock-agent                               try it by hand in this terminal

Exit codes: 0 it quit (/exit, ctrl-d, [[exit]]), 3 it crashed (--crash-after,
[[crash]]), N from [[exit:N]] or [[crash:N]], 2 bad input.";

/// A fake coding agent for demos and tests: draws a composer, works on
/// messages, and can be told to stall, crash, ask for approval or print a lot.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct Args {
    /// Show `booting mock-agent…` for this long before the prompt.
    #[arg(long, value_name = "SECS", default_value = "0", value_parser = secs)]
    boot_delay: Duration,

    /// How long a turn works, unless the message says [[wait:S]].
    #[arg(long, value_name = "SECS", default_value = "0.5", value_parser = secs)]
    work: Duration,

    /// Ignore /exit, Ctrl-C at the prompt and Ctrl-D.
    #[arg(long)]
    ignore_exit: bool,

    /// Ignore SIGTERM and SIGHUP, so that only SIGKILL stops it.
    #[arg(long)]
    ignore_term: bool,

    /// Crash with exit code 3 this long after starting.
    #[arg(long, value_name = "SECS", value_parser = secs)]
    crash_after: Option<Duration>,

    /// Take the first N Enter presses at the prompt as newlines in the
    /// composer instead of submitting (like an agent that takes an Enter
    /// arriving right after a paste as part of the paste).
    #[arg(long, value_name = "N", default_value = "0")]
    swallow_enter: u32,

    /// The model name shown in the banner (`reins dispatch` passes one).
    #[arg(long, value_name = "NAME", default_value = "mock-1")]
    model: String,

    /// Answer every turn with this text instead of `MOCK_OK (you said:
    /// ...)`; a message's [[reply:TEXT]] wins.
    #[arg(long, value_name = "TEXT")]
    reply: Option<String>,

    /// Ask for approval on every turn, as `[[approve]]` in a message does.
    #[arg(long)]
    ask_approval: bool,

    /// How the transcript reaches the screen: `inline` like Claude Code
    /// (the whole screen scrolls), or `scroll-region` like Codex's inline
    /// mode (the composer stays at the bottom and lines are pushed up
    /// through a scroll region anchored at the top row).
    #[arg(long, value_enum, value_name = "HOW", default_value = "inline")]
    draw: mock_agent::Draw,
    /// A first message, sent as soon as the agent has booted.
    #[arg(value_name = "PROMPT")]
    prompt: Vec<String>,
}

/// Runs the mock agent; its exit code is the process's.
pub(crate) fn run(args: Args) -> CliResult<u8> {
    let options = mock_agent::Options {
        work: args.work,
        boot_delay: args.boot_delay,
        ignore_exit: args.ignore_exit,
        ignore_term: args.ignore_term,
        crash_after: args.crash_after,
        prompt: (!args.prompt.is_empty()).then(|| args.prompt.join(" ")),
        swallow_enter: args.swallow_enter,
        model: args.model,
        reply: args.reply,
        ask_approval: args.ask_approval,
        draw: args.draw,
    };
    super::runtime().block_on(mock_agent::run(options))
}

fn secs(text: &str) -> Result<Duration, String> {
    mock_agent::parse_secs(text).ok_or_else(|| {
        format!("`{text}` is not a number of seconds from 0 to 1e9 (such as 2 or 0.5)")
    })
}
