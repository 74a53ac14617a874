//! Reading a session's event log: which run is meant, which events a
//! reader keeps, what is there now (from a cursor), and what comes next.
//!
//! `reins events` prints with it and `reins mcp`'s `read_events` pages
//! through it; both read `events.jsonl`, so they work after the session
//! ended, and both follow it by file events, never by polling. A cursor is
//! a run and a sequence number: `seq` counts from 1 in each run, so the
//! pair names one event for good.

use std::time::Duration;

use jiff::Timestamp;

use crate::control::lookup::{Liveness, SessionView};
use crate::error::CliError;
use crate::store::events::{self, EventKind, EventLine};
use crate::store::stream::EventStream;
use crate::time;

/// Which events a reader keeps.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Only events at or after this time.
    pub(crate) from: Option<Timestamp>,
    /// Only this run's.
    pub(crate) run: Option<String>,
    /// Only events whose `seq` is at least this (meaningful with `run`).
    pub(crate) from_seq: Option<u64>,
    /// Only these types (none: every type).
    pub(crate) types: Vec<String>,
}

impl Filter {
    pub(crate) fn keeps(&self, event: &EventLine) -> bool {
        if self.run.as_ref().is_some_and(|r| *r != event.header.run) {
            return false;
        }
        if self.from_seq.is_some_and(|s| event.header.seq < s) {
            return false;
        }
        if !self.types.is_empty() && !self.types.contains(&event.header.kind) {
            return false;
        }
        match (&self.from, time::parse_rfc3339(&event.header.ts)) {
            (Some(from), Some(ts)) => ts >= *from,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

/// The run a running session is in.
pub(crate) fn live_run(view: &SessionView) -> Option<String> {
    match (view.liveness, &view.record) {
        (Liveness::Live, Some(record)) => Some(record.run.clone()),
        _ => None,
    }
}

/// The session's latest run: the one it is in, else the last one its log
/// shows starting (or ending).
pub(crate) fn last_run(view: &SessionView) -> Option<String> {
    live_run(view).or_else(|| {
        let all = events::read_all(&view.paths.events()).ok()?;
        all.iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::Started { .. }) || e.header.kind == "exited")
            .map(|e| e.header.run.clone())
    })
}

/// `all`, `last` or a run id, as `--run` takes it: the run to keep, if one.
pub(crate) fn select_run(view: &SessionView, which: &str) -> Option<String> {
    match which {
        "all" => None,
        "last" => last_run(view),
        other => Some(other.to_string()),
    }
}

/// The events in the log now that `filter` keeps.
pub(crate) fn read(view: &SessionView, filter: &Filter) -> Result<Vec<EventLine>, CliError> {
    Ok(events::read_all(&view.paths.events())?.into_iter().filter(|e| filter.keeps(e)).collect())
}

/// Hands `each` every event `filter` keeps, from the start of the log and
/// then as they are written, until the `exited` event of run `ends` (any
/// run's, when `None`). An error when the host died without writing it.
pub(crate) async fn follow(
    view: &SessionView,
    filter: &Filter,
    ends: Option<&str>,
    mut each: impl FnMut(&EventLine) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut stream = EventStream::open(&view.paths, 0);
    while let Some(event) = stream.next().await? {
        if filter.keeps(&event) {
            each(&event)?;
        }
        let ended = matches!(event.kind, EventKind::Exited { .. })
            && ends.is_none_or(|r| r == event.header.run);
        if ended {
            return Ok(());
        }
    }
    Err(CliError::failure(format!(
        "session {}: its host died without recording the end",
        view.paths.id
    ))
    .hint("`reins gc` records it and cleans up"))
}

/// Where to read from: one run, from a sequence number on.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// The run (default: the latest).
    pub(crate) run: Option<String>,
    /// The first `seq` wanted (default 1).
    pub(crate) from_seq: u64,
    /// At most this many events.
    pub(crate) limit: usize,
    /// Only these types (none: every type).
    pub(crate) types: Vec<String>,
}

/// A page of one run's events.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) id: String,
    /// The run read (absent: the session never started).
    pub(crate) run: Option<String>,
    /// The events, as written.
    pub(crate) events: Vec<serde_json::Value>,
    /// Where the next read starts: one past the last event returned (or
    /// the cursor given, when none was).
    pub(crate) next_seq: u64,
    /// More events of the run are in the log now beyond this page.
    pub(crate) more: bool,
    /// The run is still going (more events may come).
    pub(crate) live: bool,
}

/// The events of the cursor's run from its `seq` on, at most `limit`.
/// With `wait`, a read that finds nothing new on a live run waits that
/// long for the next event before it answers (empty, if none came).
pub(crate) async fn page(
    view: &SessionView,
    cursor: &Cursor,
    wait: Option<Duration>,
) -> Result<Page, CliError> {
    let run = cursor.run.clone().or_else(|| last_run(view));
    let filter = Filter {
        run: Some(run.clone().unwrap_or_default()),
        from_seq: Some(cursor.from_seq),
        types: cursor.types.clone(),
        from: None,
    };
    let live = run.is_some() && live_run(view) == run;
    let (mut found, offset) = read_kept(view, &filter)?;
    if found.is_empty()
        && live
        && let Some(wait) = wait.filter(|w| !w.is_zero())
    {
        let mut stream = EventStream::open(&view.paths, offset);
        let arrived = tokio::time::timeout(wait, async {
            while let Some(event) = stream.next().await? {
                if filter.keeps(&event) {
                    return Ok::<_, CliError>(true);
                }
            }
            Ok(false)
        })
        .await;
        if matches!(arrived, Ok(Ok(true))) {
            found = read_kept(view, &filter)?.0;
        } else if let Ok(Err(err)) = arrived {
            return Err(err);
        }
    }
    let more = found.len() > cursor.limit;
    found.truncate(cursor.limit);
    let next_seq = found.last().map_or(cursor.from_seq, |e| e.header.seq + 1);
    let events = found.iter().filter_map(|e| serde_json::from_str(&e.raw).ok()).collect();
    let live = live && SessionView::read(view.paths.clone()).liveness == Liveness::Live;
    Ok(Page { id: view.paths.id.clone(), run, events, next_seq, more, live })
}

/// The kept events now, and the log's length after the last whole line.
fn read_kept(view: &SessionView, filter: &Filter) -> Result<(Vec<EventLine>, u64), CliError> {
    let (all, offset) = events::read_all_with_offset(&view.paths.events())?;
    Ok((all.into_iter().filter(|e| filter.keeps(e)).collect(), offset))
}
