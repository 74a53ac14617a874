//! `reins man`: manual pages in roff, generated from the command definition
//! (the same text as `--help`), so they cannot drift from the binary.

use std::io::Write;
use std::path::PathBuf;

use crate::error::{CliError, CliResult, code};

/// Print the manual page of reins or of one of its commands, or write them
/// all to a directory.
///
/// The pages are rendered from the same definitions as `--help`: options,
/// examples and exit codes included.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins man | man -l -                          read reins(1) now
  reins man send | man -l -                     reins-send(1)
  reins man adapters explain > reins-adapters-explain.1
  reins man --dir ~/.local/share/man/man1       install every page (then: man reins-wait)

Exit codes: 0 printed or written, 1 the directory cannot be written, 2 no
such command.")]
pub(crate) struct Args {
    /// The command (and subcommand) whose page to print; none for reins(1).
    #[arg(value_name = "COMMAND")]
    command: Vec<String>,
    /// Write reins.1 and a page for every command (reins-send.1, ...) into DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    dir: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = &args.dir {
        let written = std::fs::create_dir_all(dir).and_then(|()| write_all(&cmd, dir));
        written.map_err(|err| {
            CliError::failure(format!("cannot write manual pages to {}: {err}", dir.display()))
        })?;
        return Ok(code::OK);
    }
    let mut page = &cmd;
    for name in &args.command {
        page = page
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .find(|sub| sub.get_name() == name || sub.get_all_aliases().any(|a| a == name))
            .ok_or_else(|| {
                let path = args.command.join(" ");
                CliError::usage(format!("no command `reins {path}`"))
                    .hint("`reins --help` lists the commands")
            })?;
    }
    let mut roff = Vec::new();
    man(page).render(&mut roff)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&roff)?;
    out.flush()?;
    Ok(code::OK)
}

/// The page of one command, its source naming reins and its version.
fn man(cmd: &clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd.clone()).source(format!("reins {}", env!("CARGO_PKG_VERSION")))
}

/// Writes the page of `cmd` and of every visible subcommand under it.
fn write_all(cmd: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    man(cmd).generate_to(dir)?;
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        write_all(sub, dir)?;
    }
    Ok(())
}
