//! `reins gc`: clean up after session hosts that died.

use serde::Serialize;

use crate::cli::cleanup::{self, Cleaned};
use crate::cli::lookup::{Liveness, SessionView};
use crate::error::{CliResult, code};
use crate::store::exit_record::ExitReason;
use crate::store::paths::StateRoot;

/// Clean up sessions whose host process died: kill what is left of their
/// agents, record how they ended (`exited`, `exit.json`) and remove their
/// registry entries and sockets. Live sessions and the history of ended
/// ones (events, transcripts) are never touched.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  reins gc\n  reins gc --dry-run --json")]
pub(crate) struct Args {
    /// Only list what would be cleaned.
    #[arg(long)]
    dry_run: bool,
    /// Print a JSON array instead of lines of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    cleaned: Vec<Cleaned>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let mut cleaned = Vec::new();
    for paths in state.list_sessions(None) {
        let view = SessionView::read(paths);
        if view.liveness != Liveness::Dead {
            continue;
        }
        if args.dry_run {
            cleaned.push(Cleaned {
                id: view.paths.id.clone(),
                scope: view.paths.scope.clone(),
                killed: Vec::new(),
                closed_run: false,
            });
        } else if let Some(done) = cleanup::clean_dead(&view, ExitReason::Failure)? {
            cleaned.push(done);
        }
    }
    if args.json {
        crate::cli::print_json(&Report { dry_run: args.dry_run, cleaned })?;
    } else if cleaned.is_empty() {
        println!("nothing to clean");
    } else {
        let verb = if args.dry_run { "would clean" } else { "cleaned" };
        for c in &cleaned {
            let killed = if c.killed.is_empty() {
                String::new()
            } else {
                format!(" (killed leftover pids {:?})", c.killed)
            };
            println!("{verb} {} in {}{killed}", c.id, c.scope);
        }
    }
    Ok(code::OK)
}
