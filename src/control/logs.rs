//! Reading what a session's agent printed: its transcript (both files of a
//! rotation, opened together), rendered through a terminal emulator at the
//! agent's real screen sizes so redraws and spinners come out as the lines
//! the user saw, or as raw bytes.
//!
//! `reins logs` prints with it (and follows), `reins mcp`'s `read_logs`
//! answers with its last lines.

use std::fs::File;
use std::io::Read;

use crate::control::lookup::SessionView;
use crate::error::CliError;
use crate::screen::{Renderer, SizeMark};
use crate::store::events::{EventKind, EventLine};
use crate::store::follow::{Follower, SessionFile};
use crate::store::transcript::TranscriptFiles;

/// A session's transcript, opened.
pub(crate) struct Transcript {
    /// Reads `transcript.log` (and, when following, what is appended).
    pub(crate) follower: Follower,
    /// `transcript.log.1`, the older half of a rotation, if there is one.
    older: Option<File>,
    marks: Vec<SizeMark>,
    start: u64,
}

impl Transcript {
    /// Opens the transcript of `view`'s session; with `follow`, its
    /// follower also sees what is appended later.
    pub(crate) fn open(view: &SessionView, follow: bool) -> Result<Transcript, CliError> {
        let id = &view.paths.id;
        // Both files and the events that place them, opened together so a
        // rotation cannot fall in between.
        let files = TranscriptFiles::open(&view.paths).map_err(|err| {
            CliError::failure(format!("cannot read the transcript of {id}: {err}"))
        })?;
        if files.current.is_none() && files.older.is_none() {
            return Err(CliError::failure(format!("session {id} has no output yet")));
        }
        let marks = size_marks(&files.events);
        let start = files.start();
        let older = files.older.map(|(file, _)| file);
        let follower = match files.current {
            Some((file, _)) => Follower::from_open_transcript(&view.paths, file, follow)?,
            None => Follower::reading(&view.paths, SessionFile::Transcript, 0, follow),
        };
        Ok(Transcript { follower, older, marks, start })
    }

    /// Hands `each` the older file's bytes in bounded chunks (a rotated
    /// transcript can be as large as `--max-log`); the current file is the
    /// follower's to read.
    pub(crate) fn older_bytes(
        &mut self,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Some(mut file) = self.older.take() else { return Ok(()) };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match file.read(&mut buf)? {
                0 => return Ok(()),
                n => each(&buf[..n])?,
            }
        }
    }

    /// A renderer fed with everything written so far (the follower is
    /// then at the end of the current file).
    pub(crate) fn render(&mut self) -> Result<Renderer, CliError> {
        let mut renderer = Renderer::new(std::mem::take(&mut self.marks), self.start);
        self.older_bytes(|bytes| {
            renderer.feed(bytes);
            Ok(())
        })?;
        renderer.feed(&self.follower.read_new()?);
        Ok(renderer)
    }
}

/// The rendered lines of everything the agent printed (the lines that
/// scrolled off, then the last screen), or only the last `last` of them.
pub(crate) fn lines(view: &SessionView, last: Option<usize>) -> Result<Vec<String>, CliError> {
    let mut renderer = Transcript::open(view, false)?.render()?;
    let mut lines = renderer.take_finished();
    lines.extend(renderer.screen_lines());
    if let Some(n) = last {
        lines.drain(..lines.len().saturating_sub(n));
    }
    Ok(lines)
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
                new_run: Some(format!("run {} started {}", e.header.run, e.header.ts)),
            }),
            EventKind::Resized { size, transcript_offset } => {
                Some(SizeMark { offset: *transcript_offset, size: *size, new_run: None })
            }
            _ => None,
        })
        .collect();
    marks.sort_by_key(|m| m.offset);
    marks
}
