//! `reins hosts`: the machines `--host` reaches, whether each answers,
//! with which `reins` and which agents; `reins hosts install` copies this
//! `reins` to one.

use crate::error::{CliResult, code};
use crate::remote::hosts::{self, HostReport};
use crate::remote::{Ssh, Target};
use crate::store::paths::StateRoot;

/// List the other machines `--host NAME` reaches, and check each.
///
/// A host is a `[hosts.NAME]` table of config.toml (or any ssh destination
/// given as NAME). For each, reins connects with the system `ssh` (keys
/// only, no password prompts; the connection is then shared by later
/// commands for 10 minutes), and reports whether it answered, the version
/// of `reins` there (it must be this one: the fix is `reins hosts install
/// NAME --force`) and the agents available there.
///
/// Columns: HOST, DESTINATION, STATUS (ok, unreachable, no reins, or what
/// is wrong), VERSION, AGENTS (available there).
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
config.toml:
  [hosts.gpu]
  destination = \"me@gpu.lan\"       # an ssh destination (default: the name)
  ssh_options = [\"-p\", \"2222\"]     # more ssh arguments (default: none)
  reins = \"/opt/reins/bin/reins\"   # reins there (default: on its PATH, then ~/.local/bin)

Examples:
  reins hosts                        every [hosts.NAME], checked
  reins hosts gpu --json
  reins hosts install gpu            copy this reins there when it has none
  reins run mock --id w1 --detach --host gpu
  reins status --hosts all

Exit codes: 0 every host listed is ok, 1 a host has no reins or another version, 2 usage
error, 3 a host could not be reached."
)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Only these hosts (a [hosts.NAME] or an ssh destination).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    Install(InstallArgs),
}

/// Copy this reins to a host that has none (to ~/.local/bin/reins there,
/// or the host's configured `reins` path), over the shared ssh connection.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  reins hosts install gpu
  reins hosts install gpu --force    replace a reins of another version

Exit codes: 0 installed (or the same version was there), 1 another version is there (use
--force) or the copy failed, 2 usage error, 3 the host could not be reached.")]
struct InstallArgs {
    /// The host (a [hosts.NAME] or an ssh destination).
    #[arg(value_name = "NAME")]
    name: String,
    /// Replace a reins of another version.
    #[arg(long)]
    force: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    if let Some(Action::Install(install)) = args.action {
        let ssh = Ssh::new(Target::resolve(&install.name)?, &state)?;
        let done = hosts::install(&ssh, install.force)?;
        if install.json {
            crate::cli::print_json(&done)?;
        } else {
            let what = match done.status {
                "already_installed" => "already has",
                "replaced" => "now has (replaced)",
                _ => "now has",
            };
            println!("{} {what} reins {} at {}", done.host_name, done.version, done.path);
        }
        return Ok(code::OK);
    }
    let names: Vec<String> = if args.names.is_empty() {
        crate::config::hosts()?.into_keys().collect()
    } else {
        args.names.clone()
    };
    if names.is_empty() && !args.json {
        println!(
            "No hosts. Add one to {} as [hosts.NAME] (see `reins hosts --help`).",
            crate::config::config_path()
                .map_or_else(|| "config.toml".into(), |p| p.display().to_string())
        );
        return Ok(code::OK);
    }
    let targets = names.iter().map(|n| Target::resolve(n)).collect::<Result<Vec<_>, _>>()?;
    let conns = targets.into_iter().map(|t| Ssh::new(t, &state)).collect::<Result<Vec<_>, _>>()?;
    // Every host at once: one that does not answer costs its connect
    // timeout, not the others'.
    let reports: Vec<HostReport> = std::thread::scope(|s| {
        let handles: Vec<_> = conns.iter().map(|c| s.spawn(|| hosts::probe(c))).collect();
        handles.into_iter().map(|h| h.join().expect("a host probe panicked")).collect()
    });
    if args.json {
        crate::cli::print_json(&reports)?;
    } else {
        print_table(&reports)?;
        for r in reports.iter().filter(|r| !r.ok) {
            if let Some(err) = &r.error {
                eprintln!("reins: {err}");
            }
            if let Some(hint) = &r.hint {
                eprintln!("hint: {hint}");
            }
        }
    }
    Ok(if reports.iter().any(|r| !r.reachable) {
        code::UNREACHABLE
    } else if reports.iter().any(|r| !r.ok) {
        code::FAILURE
    } else {
        code::OK
    })
}

fn status_word(r: &HostReport) -> &'static str {
    match (r.reachable, r.ok, &r.version) {
        (false, _, _) => "unreachable",
        (true, true, _) => "ok",
        (true, false, None) => "no reins",
        (true, false, Some(v)) if v != crate::remote::VERSION => "other version",
        (true, false, Some(_)) => "error",
    }
}

fn print_table(reports: &[HostReport]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|r| {
            [
                r.host_name.clone(),
                r.destination.clone(),
                status_word(r).to_string(),
                r.version.clone().unwrap_or_else(|| "-".into()),
                if r.agents.is_empty() { "-".into() } else { r.agents.join(",") },
            ]
        })
        .collect();
    let header = ["HOST", "DESTINATION", "STATUS", "VERSION", "AGENTS"];
    crate::cli::write_columns(&mut out, &header, &rows)
}
