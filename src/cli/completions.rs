//! `reins completions`: shell completion scripts, generated from the same
//! command definition as `--help`, so they never fall behind the binary.

use std::io::Write;

use crate::error::{CliResult, code};

/// Print a completion script for a shell.
///
/// The script knows every subcommand, flag and fixed value of this version
/// of reins. Regenerate it after an upgrade.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins completions bash > ~/.local/share/bash-completion/completions/reins
  reins completions zsh > ~/.zfunc/_reins      (with fpath+=(~/.zfunc) in ~/.zshrc)
  reins completions fish > ~/.config/fish/completions/reins.fish
  source <(reins completions bash)             (this shell only)

Exit codes: 0 printed, 2 unknown shell.")]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

pub(crate) fn run(args: Args) -> CliResult {
    // The generators list hidden commands too; the internal host command
    // is nothing a person should be offered.
    let full = crate::cli::command();
    let visible = full.get_subcommands().filter(|sub| !sub.is_hide_set()).cloned();
    let mut cmd = clap::Command::new("reins")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommands(visible);
    // clap_complete panics on a failed write; render to memory, then write
    // ourselves so a closed pipe is a quiet exit like everywhere else.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "reins", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(code::OK)
}
