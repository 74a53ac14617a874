//! `reins logs`: what a session's agent printed, rendered as text (or raw).

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::control::logs::{self, Transcript};
use crate::control::lookup::Liveness;
use crate::error::CliResult;
use crate::error::code;
use crate::store::follow::{self, Follower};
use crate::store::paths::StateRoot;

/// Print what a session's agent printed.
///
/// Rendered as text by default: the transcript is replayed through a
/// terminal emulator at the agent's real screen size, so redraws, spinners
/// and colours come out as the lines the user saw. `--raw` prints the bytes
/// as written (escape sequences included). Works after the session ended.
///
/// With `--follow`, lines are printed as they become final: when they
/// scroll off the agent's screen, and the last screen when the session
/// ends (use `reins pane` to watch the live screen). `--raw --follow`
/// streams bytes as they arrive.
///
/// What scrolls off is what tmux keeps as history: lines pushed off the
/// whole screen or off a scroll region at its top. An agent that draws full
/// screen on the alternate screen (OpenCode) leaves no history, so its
/// logs hold only its last screen.
#[derive(Debug, clap::Args)]
#[command(override_usage = "reins logs [OPTIONS] --id <ID>")]
#[command(
    after_help = "Examples:\n  reins logs --id demo\n  reins logs --id demo --lines 20\n  reins logs --id demo --follow\n  reins logs --id demo --raw > demo.bytes\n\nExit codes: 0 printed (with --follow: the session ended), 1 no such session or\nno output yet, 2 bad input."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long, required_unless_present = "cli")]
    id: Option<String>,
    /// harnex's `--cli NAME`: the session running that agent.
    #[arg(long, value_name = "NAME", hide = true)]
    cli: Option<String>,
    /// Print only the last N lines (rendered mode) before following.
    #[arg(long, short = 'n', value_name = "N")]
    lines: Option<usize>,
    /// Keep printing until the session exits.
    #[arg(long, short)]
    follow: bool,
    /// The raw bytes, escape sequences included.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
    /// JSON: `{"id", "lines": [...]}`, or one `{"line": ...}` per line when following.
    #[arg(long)]
    json: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

#[derive(Serialize)]
struct Snapshot<'a> {
    id: &'a str,
    lines: Vec<String>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view =
        super::compat::find(&state, args.id.as_deref(), args.cli.as_deref(), args.repo.as_deref())?;
    let id = view.paths.id.clone();
    let follow = args.follow && view.liveness == Liveness::Live;
    if !follow && !args.raw {
        let lines = logs::lines(&view, args.lines)?;
        if args.json {
            crate::cli::print_json(&Snapshot { id: &id, lines })?;
        } else {
            Printer { json: false }.print(lines)?;
        }
        return Ok(code::OK);
    }
    let mut transcript = Transcript::open(&view, follow)?;
    crate::cli::runtime().block_on(async {
        // Only a follower waits for the host to go.
        let mut gone = match follow {
            true => follow::host_gone(&view.paths.host_lock()),
            false => tokio::sync::oneshot::channel().1,
        };
        if args.raw {
            let mut out = std::io::stdout().lock();
            transcript.older_bytes(|bytes| out.write_all(bytes))?;
            drop(out);
            return raw(&mut transcript.follower, follow, &mut gone).await;
        }
        let mut renderer = transcript.render()?;
        let mut lines = renderer.take_finished();
        if let Some(n) = args.lines {
            lines.drain(..lines.len().saturating_sub(n));
        }
        let mut printer = Printer { json: args.json };
        printer.print(lines)?;
        let follower = &mut transcript.follower;
        loop {
            tokio::select! {
                _ = follower.changed() => {
                    renderer.feed(&follower.read_new()?);
                    printer.print(renderer.take_finished())?;
                }
                _ = &mut gone => {
                    renderer.feed(&follower.read_new()?);
                    renderer.flush_screen();
                    printer.print(renderer.take_finished())?;
                    return Ok(code::OK);
                }
            }
        }
    })
}

struct Printer {
    json: bool,
}

impl Printer {
    fn print(&mut self, lines: impl IntoIterator<Item = String>) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        for line in lines {
            if self.json {
                serde_json::to_writer(&mut out, &serde_json::json!({ "line": line }))?;
                writeln!(out)?;
            } else {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()
    }
}

async fn raw(
    follower: &mut Follower,
    follow: bool,
    gone: &mut tokio::sync::oneshot::Receiver<()>,
) -> CliResult {
    let mut out = std::io::stdout().lock();
    out.write_all(&follower.read_new()?)?;
    out.flush()?;
    if !follow {
        return Ok(code::OK);
    }
    loop {
        tokio::select! {
            _ = follower.changed() => {}
            _ = &mut *gone => {
                out.write_all(&follower.read_new()?)?;
                out.flush()?;
                return Ok(code::OK);
            }
        }
        out.write_all(&follower.read_new()?)?;
        out.flush()?;
    }
}
