//! `reins logs`: what a session's agent printed, rendered as text (or raw).

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::cli::lookup::{self, Liveness};
use crate::error::{CliError, CliResult, code};
use crate::screen::{Renderer, SizeMark};
use crate::store::events::{self, EventKind};
use crate::store::follow::{self, Follower};
use crate::store::paths::{SessionPaths, StateRoot};

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
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  reins logs --id demo\n  reins logs --id demo --lines 20\n  reins logs --id demo --follow\n  reins logs --id demo --raw > demo.bytes\n\nExit codes: 0 printed (with --follow: the session ended), 1 no such session or\nno output yet, 2 bad input."
)]
pub(crate) struct Args {
    /// The session.
    #[arg(long)]
    id: String,
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
}

#[derive(Serialize)]
struct Snapshot<'a> {
    id: &'a str,
    lines: Vec<String>,
}

pub(crate) fn run(args: Args) -> CliResult {
    let state = StateRoot::from_env()?;
    let view = lookup::find(&state, &args.id, args.repo.as_deref())?;
    if !view.paths.transcript().exists() {
        return Err(CliError::failure(format!("session {} has no output yet", args.id)));
    }
    let follow = args.follow && view.liveness == Liveness::Live;
    crate::cli::runtime().block_on(async {
        let mut follower = Follower::new(&view.paths.transcript(), 0)?;
        let mut gone = follow::host_gone(&view.paths.host_lock());
        if args.raw {
            return raw(&mut follower, follow, &mut gone).await;
        }
        let mut renderer = Renderer::new(size_marks(&view.paths), 0);
        renderer.feed(&follower.read_new()?);
        let mut lines = renderer.take_finished();
        if !follow {
            lines.extend(renderer.screen_lines());
        }
        if let Some(n) = args.lines {
            lines.drain(..lines.len().saturating_sub(n));
        }
        if args.json && !follow {
            crate::cli::print_json(&Snapshot { id: &args.id, lines })?;
            return Ok(code::OK);
        }
        let mut printer = Printer { json: args.json };
        printer.print(lines)?;
        if !follow {
            return Ok(code::OK);
        }
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

/// The screen sizes of every run of the session, at their transcript
/// offsets, from the event log.
fn size_marks(paths: &SessionPaths) -> Vec<SizeMark> {
    let mut marks: Vec<SizeMark> = events::read_all(&paths.events())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Started(started) => Some(SizeMark {
                offset: started.transcript_offset,
                size: started.size,
                new_run: true,
            }),
            EventKind::Resized { size, transcript_offset } => {
                Some(SizeMark { offset: transcript_offset, size, new_run: false })
            }
            _ => None,
        })
        .collect();
    marks.sort_by_key(|m| m.offset);
    marks
}
