//! `reins logs`: what a session's agent printed, rendered as text (or raw).

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::control::lookup::{self, Liveness};
use crate::error::{CliError, CliResult, code};
use crate::screen::{Renderer, SizeMark};
use crate::store::events::{EventKind, EventLine};
use crate::store::follow::{self, Follower, SessionFile};
use crate::store::paths::StateRoot;
use crate::store::transcript::TranscriptFiles;

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
    // Both files and the events that place them, opened together so a
    // rotation cannot fall in between.
    let files = TranscriptFiles::open(&view.paths).map_err(|err| {
        CliError::failure(format!("cannot read the transcript of {}: {err}", args.id))
    })?;
    if files.current.is_none() && files.older.is_none() {
        return Err(CliError::failure(format!("session {} has no output yet", args.id)));
    }
    let follow = args.follow && view.liveness == Liveness::Live;
    let marks = size_marks(&files.events);
    let start = files.start();
    let older = files.older.map(|(file, _)| file);
    crate::cli::runtime().block_on(async {
        let mut follower = match files.current {
            Some((file, _)) => Follower::from_open_transcript(&view.paths, file, follow)?,
            None => Follower::reading(&view.paths, SessionFile::Transcript, 0, follow),
        };
        // Only a follower waits for the host to go.
        let mut gone = match follow {
            true => follow::host_gone(&view.paths.host_lock()),
            false => tokio::sync::oneshot::channel().1,
        };
        if args.raw {
            if let Some(older) = older {
                let mut out = std::io::stdout().lock();
                each_chunk(older, |bytes| out.write_all(bytes))?;
            }
            return raw(&mut follower, follow, &mut gone).await;
        }
        let mut renderer = Renderer::new(marks, start);
        if let Some(older) = older {
            each_chunk(older, |bytes| {
                renderer.feed(bytes);
                Ok(())
            })?;
        }
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

/// Hands `file`'s content to `each` in bounded chunks (a rotated
/// transcript can be as large as `--max-log`).
fn each_chunk(
    mut file: std::fs::File,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(()),
            n => each(&buf[..n])?,
        }
    }
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

/// The screen sizes of every run of the session, at their (logical)
/// transcript offsets, from its events.
fn size_marks(events: &[EventLine]) -> Vec<SizeMark> {
    let mut marks: Vec<SizeMark> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Started(started) => Some(SizeMark {
                offset: started.transcript_offset,
                size: started.size,
                new_run: true,
            }),
            EventKind::Resized { size, transcript_offset } => {
                Some(SizeMark { offset: *transcript_offset, size: *size, new_run: false })
            }
            _ => None,
        })
        .collect();
    marks.sort_by_key(|m| m.offset);
    marks
}
