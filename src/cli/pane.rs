//! `reins pane`: the agent's screen as the host's emulator sees it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::control::lookup;
use crate::control::session;
use crate::error::{CliError, CliResult, code};
use crate::ipc::ScreenReply;
use crate::store::paths::StateRoot;
use crate::tmux::Tmux;

/// Show a session's screen: what the agent shows right now, for headless
/// sessions too (the host keeps the screen). `--follow` redraws whenever it
/// changes, until the session ends. `--tmux` asks tmux for the pane instead.
#[derive(Debug, clap::Args)]
#[command(override_usage = "reins pane [OPTIONS] --id <ID>")]
#[command(
    after_help = "Examples:\n  reins pane --id w1\n  reins pane --id w1 --lines 10 --json\n  reins pane --id w1 --follow\n\nExit codes: 0 shown (with --follow: the session ended), 1 no such session, it\nis not running, or (--tmux) it is not in tmux; 2 bad input."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long, required_unless_present = "cli")]
    id: Option<String>,
    /// harnex's `--cli NAME`: the session running that agent.
    #[arg(long, value_name = "NAME", hide = true)]
    cli: Option<String>,
    /// harnex's `--interval SECS` with --follow: redraw at most this often.
    #[arg(long, value_name = "DURATION", hide = true, value_parser = crate::time::parse_duration)]
    interval: Option<std::time::Duration>,
    /// Only the last N lines (of the screen, trailing blank lines dropped).
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    lines: Option<u64>,
    /// Redraw on every change until the session ends.
    #[arg(long, short)]
    follow: bool,
    /// One JSON object (with --follow, one per line).
    #[arg(long)]
    json: bool,
    /// Capture the session's tmux pane with tmux instead.
    #[arg(long)]
    tmux: bool,
    /// Look for the session in the repository at DIR.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::cli::HostArg,
}

#[derive(Serialize)]
struct Pane<'a> {
    ok: bool,
    id: &'a str,
    captured_at: String,
    lines: Vec<String>,
    text: String,
    cursor: Option<[usize; 2]>,
    title: String,
    cols: u16,
    rows: u16,
    version: u64,
}

pub(crate) fn run(mut args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view =
        super::compat::find(&state, args.id.as_deref(), args.cli.as_deref(), args.repo.as_deref())?;
    args.id = Some(view.paths.id.clone());
    let record = lookup::require_live(&view)?;
    if args.tmux {
        let target = record.tmux.as_ref().ok_or_else(|| {
            CliError::failure(format!("session {} is not in tmux", view.paths.id))
                .hint("drop --tmux: the host has the screen of every session")
        })?;
        return tmux_capture(target, &args);
    }
    let stdout_tty = std::io::stdout().is_terminal();
    crate::cli::runtime().block_on(async {
        let mut version = None;
        loop {
            let Some(screen) = session::screen(&view, version).await? else {
                return Ok(code::OK); // the session ended while we followed it
            };
            version = Some(screen.version);
            print_screen(&args, screen, args.follow && stdout_tty && !args.json)?;
            if !args.follow {
                return Ok(code::OK);
            }
            if let Some(interval) = args.interval {
                tokio::time::sleep(interval).await;
            }
        }
    })
}

fn print_screen(args: &Args, screen: ScreenReply, redraw: bool) -> std::io::Result<()> {
    let mut lines = screen.rows.clone();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if let Some(n) = args.lines {
        lines.drain(..lines.len().saturating_sub(n as usize));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let pane = Pane {
            ok: true,
            id: args.id.as_deref().unwrap_or_default(),
            captured_at: crate::time::now_rfc3339(),
            text: lines.join("\n"),
            lines,
            cursor: Some([screen.cursor_row, screen.cursor_col]),
            title: screen.title,
            cols: screen.size.cols,
            rows: screen.size.rows,
            version: screen.version,
        };
        serde_json::to_writer(&mut out, &pane)?;
        writeln!(out)?;
    } else {
        if redraw {
            out.write_all(b"\x1b[H\x1b[2J")?;
        }
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        if args.follow && !redraw {
            writeln!(out, "----")?;
        }
    }
    out.flush()
}

fn tmux_capture(target: &crate::store::events::TmuxTarget, args: &Args) -> CliResult {
    let text = Tmux::for_target(target).capture(&target.pane)?;
    // capture-pane already drops trailing spaces; a trailing no-break
    // space is screen content, as in the host's rows.
    let mut lines: Vec<String> =
        text.lines().map(|l| l.trim_end_matches(' ').to_string()).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if let Some(n) = args.lines {
        lines.drain(..lines.len().saturating_sub(n as usize));
    }
    if args.json {
        crate::cli::print_json(&serde_json::json!({
            "ok": true, "id": args.id.as_deref().unwrap_or_default(), "captured_at": crate::time::now_rfc3339(),
            "text": lines.join("\n"), "lines": lines, "pane": target.pane,
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for line in &lines {
            writeln!(out, "{line}")?;
        }
    }
    Ok(code::OK)
}
