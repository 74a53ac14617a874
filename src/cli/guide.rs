//! `reins guide`: getting started, for people (`guides/getting-started.md`).

use serde::Serialize;

use crate::docs::GETTING_STARTED;
use crate::error::{CliResult, code};

/// A tour of reins for people: start an agent, give it work, watch it,
/// read what it did, stop it — with the built-in mock agent, no API key.
///
/// For an agent driving other agents, `reins agents-guide` is shorter and
/// more exact; `reins recipes` has whole workflows.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins guide
  reins guide | less
  reins guide --json                  {\"title\", \"text\"}

Exit codes: 0 printed.")]
pub(crate) struct Args {
    /// One JSON object with the guide's title and Markdown text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Guide<'a> {
    title: &'a str,
    text: &'a str,
}

pub(crate) fn run(args: Args) -> CliResult {
    if args.json {
        let title = GETTING_STARTED.lines().next().unwrap_or("").trim_start_matches("# ");
        crate::cli::print_json(&Guide { title, text: GETTING_STARTED })?;
    } else {
        crate::cli::shelf::print_markdown(GETTING_STARTED)?;
    }
    Ok(code::OK)
}
