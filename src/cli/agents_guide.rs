//! `reins agents-guide`: the guides written for an agent that drives other
//! agents with reins (`guides/agents/`).

use crate::docs::Shelf;
use crate::error::CliResult;

/// Guides for an agent that uses reins to drive other agents: the core
/// loop, dispatching work, chains, buddies, monitoring, naming, and the
/// same as MCP tools (`reins mcp`).
///
/// Short and exact: every command in them is run by the test suite. With
/// no TOPIC, lists the topics. A TOPIC is a number, a name, the start of a
/// name, or a part of one.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins agents-guide                  the topics
  reins agents-guide basics           start here
  reins agents-guide chain            plan → implement → review, as shell
  reins agents-guide show mon         `show` and prefixes work too
  reins agents-guide list --json      [{\"number\",\"name\",\"title\",\"file\"}]

Exit codes: 0 printed, 2 no such topic (the topics are listed).")]
pub(crate) struct Args {
    /// `list`, `show TOPIC`, or a TOPIC.
    #[arg(value_name = "TOPIC", num_args = 0..=2)]
    words: Vec<String>,
    /// JSON: the list as an array, a topic as one object with its `text`.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    crate::cli::shelf::serve(Shelf::AgentGuides, &args.words, args.json)
}
