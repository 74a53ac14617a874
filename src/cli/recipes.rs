//! `reins recipes`: tested workflows (`recipes/`).

use crate::docs::Shelf;
use crate::error::CliResult;

/// Tested workflows, ready to copy: fire and watch, a chain of agents, a
/// buddy, approvals, fan-out.
///
/// Every command in them is run against the mock agent by the test suite,
/// so they work as written. With no argument, lists them. Name one by
/// number, name, or the start or part of a name.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins recipes                       the list
  reins recipes 1                     the first one
  reins recipes show chain            by name (prefixes work too)
  reins recipes --json                [{\"number\",\"name\",\"title\",\"file\"}]

Exit codes: 0 printed, 2 no such recipe (the recipes are listed).")]
pub(crate) struct Args {
    /// `list`, `show RECIPE`, or a RECIPE.
    #[arg(value_name = "RECIPE", num_args = 0..=2)]
    words: Vec<String>,
    /// JSON: the list as an array, a recipe as one object with its `text`.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    crate::cli::shelf::serve(Shelf::Recipes, &args.words, args.json)
}
