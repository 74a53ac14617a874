//! The command line: one file per subcommand, routed here.
//!
//! Each subcommand module has an `Args` struct (its doc comments are the
//! help text) and a `run` function returning the exit code. Errors are
//! printed and mapped to exit codes in `main` and nowhere else.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::error::{CliError, CliResult, code};

mod adapters;
mod agents;
mod agents_guide;
mod answer;
mod approve;
mod attach;
mod buddy;
mod chain;
mod compat;
mod completions;
pub(crate) mod dispatch;
pub(crate) mod doctor;
mod events;
mod gc;
mod guide;
mod host;
mod hosts;
mod inbox;
mod interrupt;
mod logs;
mod man;
mod mcp;
mod mock_agent;
mod notify;
mod pane;
mod recipes;
mod report;
pub(crate) mod run;
mod send;
mod service;
mod shelf;
mod status;
mod stop;
mod supervise;
mod top;
mod wait;
mod watch;
pub(crate) mod worktree;

const ABOUT: &str = "Drive AI coding-agent CLIs from a shell: start workers headless or in tmux \
panes, watch their state and events, stop them cleanly.";

const AFTER_HELP: &str = "\
Quick start (no API key needed, uses the built-in mock agent):
  reins run mock --id demo --detach     start a headless worker
  reins send --id demo 'write a haiku'  hand it a task (verified delivery)
  reins wait --id demo --until task_complete
  reins pane --id demo                  its screen
  reins status                          see it (state, turn, idle time)
  reins events --id demo --snapshot     its event log as JSON lines
  reins logs --id demo                  what it printed
  reins stop --id demo                  stop it and everything it started
  reins watch --id demo                 nudge it if it stalls, restart it if it dies
  reins run mock --worktree --detach    an agent in its own git worktree and branch
  reins dispatch --message 'fix it' --done 'cmd:make test'   to an available agent, checked
  reins chain run feature.toml          steps of dispatches, parallel batches, gates, resume
  reins status --host gpu               the same commands on another machine, over ssh

Learn more:
  reins guide                           a tour for people
  reins agents-guide                    how an agent drives other agents (dispatch, chain, buddy)
  reins recipes                         tested workflows, ready to copy
  reins COMMAND --help                  every command has examples and its exit codes

Exit codes: 0 ok, 1 operational failure, 2 usage error, 3 --host could not reach
the host, 124 timeout.
State lives in $REINS_STATE_DIR (default ~/.local/state/reins).
NO_COLOR=1 turns colour off; progress spinners appear only on a terminal.";

#[derive(Debug, Parser)]
#[command(name = "reins", version, about = ABOUT, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(Box<run::Args>),
    Send(send::Args),
    Wait(wait::Args),
    Answer(answer::Args),
    #[command(visible_alias = "ls")]
    Status(status::Args),
    Pane(pane::Args),
    Approve(approve::Args),
    Attach(attach::Args),
    Interrupt(interrupt::Args),
    Stop(stop::Args),
    Top(top::Args),
    Watch(watch::Args),
    Supervise(supervise::Args),
    Service(service::Args),
    Buddy(buddy::Args),
    Worktree(worktree::Args),
    Inbox(inbox::Args),
    Logs(logs::Args),
    Events(events::Args),
    Gc(gc::Args),
    Hosts(hosts::Args),
    Report(report::Args),
    Notify(notify::Args),
    Doctor(doctor::Args),
    Agents(agents::Args),
    Dispatch(dispatch::Args),
    Chain(chain::Args),
    Adapters(adapters::Args),
    Guide(guide::Args),
    AgentsGuide(agents_guide::Args),
    Recipes(recipes::Args),
    Completions(completions::Args),
    Man(man::Args),
    Mcp(mcp::Args),
    MockAgent(mock_agent::Args),
    /// Internal: the per-session host process.
    #[command(name = "__host", hide = true)]
    Host(host::Args),
}

/// The whole command-line definition, for generators (completions, man
/// pages) that need more than parsing.
pub(crate) fn command() -> clap::Command {
    Cli::command()
}

/// Parses the command line, runs the command, reports errors, exits.
/// `reins __host ARGS`, parsed without building the whole CLI: the host is
/// the one long-lived process per session, and every page of code it
/// touches on the way stays resident (see docs/scale.md).
#[derive(Debug, Parser)]
#[command(name = "reins-host")]
struct HostCli {
    #[command(flatten)]
    args: host::Args,
}

/// `reins`.
pub fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "__host") {
        let host = HostCli::parse_from(std::env::args_os().skip(1));
        return finish(host::run(host.args));
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let flavor = args.first().map_or(crate::compat::Flavor::Reins, |a| crate::compat::flavor_of(a));
    crate::compat::set_flavor(flavor);
    let mut command = Cli::command();
    if flavor == crate::compat::Flavor::Harnex {
        // Invoked as `harnex` (docs/harnex.md): its name in usage and
        // --version.
        command = command.name("harnex").bin_name("harnex");
        // Their --id may be left out for harnex's --cli, so clap's own usage
        // line would not show it; theirs says `reins`.
        for sub in ["pane", "logs", "events", "stop"] {
            command = command.mut_subcommand(sub, |c| {
                c.override_usage(format!("harnex {sub} [OPTIONS] --id <ID>"))
            });
        }
    }
    let parsed = command
        .try_get_matches_from(compat::normalize(args))
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            let code = match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => code::OK,
                _ => code::USAGE,
            };
            if code != code::OK && wants_json() {
                let text = err.to_string();
                let first = text.lines().next().unwrap_or_default();
                print_error_json(&CliError::usage(first.trim_start_matches("error: ").trim()));
            }
            return ExitCode::from(code);
        }
    };
    if let Err(err) = crate::remote::check_client_version() {
        return report(err);
    }
    if let Some((host, tty)) = cli.command.remote() {
        if crate::compat::is_harnex() && matches!(cli.command, Command::Run(_) | Command::Send(_)) {
            // harnex's `--host` is where its TCP API listens; reins has none.
            return report(compat::unsupported(
                "--host",
                "as harnex, --host is the address of a TCP API, which reins sessions do not have",
                "drop it (sessions are found by --id); `reins --host NAME` runs a command on \
                 another machine over ssh",
            ));
        }
        return finish(match &cli.command {
            Command::Wait(args) => forward_wait(host, args.timeout()),
            _ => forward(host, tty),
        });
    }
    let result = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Send(args) => send::run(args),
        Command::Wait(args) => wait::run(args),
        Command::Answer(args) => answer::run(args),
        Command::Status(args) => status::run(args),
        Command::Pane(args) => pane::run(args),
        Command::Approve(args) => approve::run(args),
        Command::Attach(args) => attach::run(args),
        Command::Interrupt(args) => interrupt::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Top(args) => top::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Supervise(args) => supervise::run(args),
        Command::Service(args) => service::run(args),
        Command::Buddy(args) => buddy::run(args),
        Command::Worktree(args) => worktree::run(args),
        Command::Inbox(args) => inbox::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Events(args) => events::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Hosts(args) => hosts::run(args),
        Command::Report(args) => report::run(args),
        Command::Notify(args) => notify::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Agents(args) => agents::run(args),
        Command::Dispatch(args) => dispatch::run(args),
        Command::Chain(args) => chain::run(args),
        Command::Adapters(args) => adapters::run(args),
        Command::Guide(args) => guide::run(args),
        Command::AgentsGuide(args) => agents_guide::run(args),
        Command::Recipes(args) => recipes::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Mcp(args) => mcp::run(args),
        Command::MockAgent(args) => mock_agent::run(args),
        Command::Host(args) => host::run(args),
    };
    finish(result)
}

/// `--host NAME` of the client commands that can run on another machine.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HostArg {
    /// Run this on another machine: a [hosts.NAME] of config.toml or an ssh
    /// destination (the reins there does the work; see `reins hosts`).
    #[arg(long, value_name = "NAME")]
    pub(crate) host: Option<String>,
}

impl Command {
    /// The host a command is sent to, and what it needs of the terminal.
    fn remote(&self) -> Option<(&str, crate::remote::Tty)> {
        use crate::remote::Tty;
        let (host, tty) = match self {
            Command::Run(a) => {
                (a.remote.host.as_deref(), if a.in_terminal() { Tty::Terminal } else { Tty::Stdin })
            }
            Command::Send(a) => (a.remote.host.as_deref(), Tty::Stdin),
            Command::Attach(a) => (a.remote.host.as_deref(), Tty::Terminal),
            Command::Wait(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Status(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Pane(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Approve(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Interrupt(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Stop(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Inbox(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Logs(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Events(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Gc(a) => (a.remote.host.as_deref(), Tty::None),
            Command::Service(a) => (a.host.as_deref(), Tty::None),
            Command::Dispatch(a) => (a.remote.host.as_deref(), Tty::None),
            // A terminal there when here is one, so Ctrl-C reaches the
            // watcher and its --on-exit question.
            Command::Watch(a) => (
                a.remote.host.as_deref(),
                if crate::term::is_tty(rustix::stdio::stdin()) { Tty::Terminal } else { Tty::None },
            ),
            _ => return None,
        };
        host.map(|h| (h, tty))
    }
}

/// Runs this command line, less `--host NAME`, with the `reins` on `host`.
fn forward(host: &str, tty: crate::remote::Tty) -> CliResult {
    let state = crate::store::paths::StateRoot::from_env()?;
    let ssh = crate::remote::Ssh::new(crate::remote::Target::resolve(host)?, &state)?;
    ssh.run_reins(&without_host(std::env::args_os().skip(1)), tty)
}

/// `wait --host`: resumed across dropped connections.
fn forward_wait(host: &str, timeout: Option<std::time::Duration>) -> CliResult {
    let state = crate::store::paths::StateRoot::from_env()?;
    let ssh = crate::remote::Ssh::new(crate::remote::Target::resolve(host)?, &state)?;
    crate::remote::wait::wait(&ssh, without_host(std::env::args_os().skip(1)), timeout)
}

/// The arguments without `--host NAME` / `--host=NAME` (before any `--`).
fn without_host(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut args = args.peekable();
    let mut options = true;
    while let Some(arg) = args.next() {
        if options && arg == "--" {
            options = false;
        } else if options && arg == "--host" {
            args.next();
            continue;
        } else if options && arg.to_str().is_some_and(|a| a.starts_with("--host=")) {
            continue;
        }
        out.push(arg);
    }
    out
}

/// `reins-host`: what `reins __host` does.
pub fn host_main() -> ExitCode {
    finish(host::run(HostCli::parse().args))
}

fn finish(result: CliResult) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => report(err),
    }
}

fn report(err: CliError) -> ExitCode {
    if err.broken_pipe {
        return ExitCode::from(code::OK);
    }
    if wants_json() {
        print_error_json(&err);
    }
    let paint = crate::style::Paint::new(crate::style::Stream::Stderr);
    let mut stderr = std::io::stderr().lock();
    let program = format!("{}:", crate::compat::program());
    let _ = writeln!(stderr, "{} {}", paint.bold_red(&program), err.message);
    if let Some(hint) = &err.hint {
        let _ = writeln!(stderr, "{} {hint}", paint.cyan("hint:"));
    }
    ExitCode::from(err.code)
}

/// Whether the command line asks for JSON (`--json` before any `--`): a
/// script reading stdout then gets its errors as JSON too.
fn wants_json() -> bool {
    std::env::args().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// An error as one JSON line on stdout (the words still go to stderr).
fn print_error_json(err: &CliError) {
    let kind = match err.code {
        code::USAGE => "usage",
        code::TIMEOUT => "timeout",
        code::UNREACHABLE => "unreachable",
        code::INTERNAL => "internal",
        _ => "failure",
    };
    let _ = print_json(&serde_json::json!({
        "ok": false,
        "error": err.message,
        "hint": err.hint,
        "kind": kind,
        "exit_code": err.code,
    }));
}

/// Writes one line of JSON to stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    // Buffered here: stdout's own line buffer is 1 KiB and looks for a
    // newline in every fragment serde writes (`status --json` with 200
    // sessions is 180 KB in one line).
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    serde_json::to_writer(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// Writes a plain table: `header`, then `rows`, each column as wide as
/// its widest cell, two spaces between, the last column unpadded.
pub(crate) fn write_columns<R: AsRef<[String]>>(
    out: &mut impl Write,
    header: &[&str],
    rows: &[R],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row.as_ref()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (cell, w) in cells.zip(&widths) {
            let pad = w.saturating_sub(cell.chars().count());
            s.push_str(cell);
            s.push_str(&" ".repeat(pad + 2));
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(&mut header.iter().copied())?;
    for row in rows {
        line(&mut row.as_ref().iter().map(String::as_str))?;
    }
    Ok(())
}

/// A current-thread tokio runtime for a client command.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    crate::control::runtime()
}
