//! The file-change hook (`run --watch-file PATH`): tells the agent to read
//! a file whenever its content changes.
//!
//! The host watches each file's parent directory with inotify (through
//! `notify`), so a file that does not exist yet, or that is replaced by an
//! atomic rename, is seen as well as one written in place. Only events that
//! can change the content count (created, written, closed after writing,
//! renamed onto the name); reads, attribute changes and removals do not.
//! Changes are debounced per file: the session hears of a file once it has
//! been quiet for [`DEBOUNCE`], so an editor's save or a burst of appends
//! becomes one message. The session then queues
//! `file-change-hook: read PATH` in the inbox like any other message.
//!
//! Nothing here runs while the files are quiet: the watcher thread blocks
//! in the kernel and the debounce task arms a timer only after a change.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::store::registry::WatchedFile;

/// How long a file must be quiet after a change before the agent is told.
pub(crate) const DEBOUNCE: Duration = Duration::from_secs(1);

/// `Message::source` of the hook's messages.
pub(crate) const SOURCE: &str = "file-change-hook";

/// The message that tells the agent to read `file`.
pub(crate) fn message(file: &WatchedFile) -> String {
    format!("file-change-hook: read {}", file.as_given)
}

/// What the watcher thread saw.
enum Seen {
    /// The file with this index (in the spec's list) may have changed.
    Changed(usize),
    /// Events were lost (inotify queue overflow): any file may have changed.
    Unknown,
}

/// Settled changes of the watched files, for the session's main loop.
pub(crate) struct FileHook {
    /// Indexes into the spec's `watch_files` whose changes have settled.
    settled: Option<mpsc::UnboundedReceiver<usize>>,
}

impl FileHook {
    /// A hook that never fires (no `--watch-file`).
    pub(crate) fn none() -> FileHook {
        FileHook { settled: None }
    }

    /// Starts watching `files`. Must run inside the host's tokio runtime;
    /// the watch is in place when this returns, so no change made after the
    /// session starts is missed.
    pub(crate) fn start(files: &[WatchedFile]) -> io::Result<FileHook> {
        if files.is_empty() {
            return Ok(FileHook::none());
        }
        let targets: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        let (seen_tx, seen_rx) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            for seen in classify(res, &targets) {
                let _ = seen_tx.send(seen);
            }
        })
        .map_err(io::Error::other)?;
        let mut dirs: Vec<&Path> = files.iter().filter_map(|f| f.path.parent()).collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|err| {
                io::Error::other(format!("cannot watch {}: {err}", dir.display()))
            })?;
        }
        let (settled_tx, settled) = mpsc::unbounded_channel();
        tokio::spawn(debounce(watcher, seen_rx, settled_tx, files.len()));
        Ok(FileHook { settled: Some(settled) })
    }

    /// The next file whose changes have settled (pending forever without
    /// watched files).
    pub(crate) async fn next(&mut self) -> usize {
        match self.settled.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(index) => index,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

/// Which watched files an inotify event may have changed.
fn classify(res: notify::Result<notify::Event>, targets: &[PathBuf]) -> Vec<Seen> {
    let event = match res {
        Ok(event) if event.need_rescan() => return vec![Seen::Unknown],
        Ok(event) => event,
        Err(_) => return vec![Seen::Unknown],
    };
    let changes_content = matches!(
        event.kind,
        EventKind::Create(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(RenameMode::To))
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    );
    if !changes_content {
        return Vec::new();
    }
    targets
        .iter()
        .enumerate()
        .filter(|(_, target)| event.paths.iter().any(|p| p == *target))
        .map(|(index, _)| Seen::Changed(index))
        .collect()
}

/// Owns the watcher; reports each file once it has been quiet for
/// [`DEBOUNCE`] after its last change. Ends when the session is gone.
async fn debounce(
    _watcher: notify::RecommendedWatcher,
    mut seen: mpsc::UnboundedReceiver<Seen>,
    settled: mpsc::UnboundedSender<usize>,
    count: usize,
) {
    let mut due: HashMap<usize, Instant> = HashMap::new();
    loop {
        let next = due.values().min().copied();
        tokio::select! {
            event = seen.recv() => {
                let Some(event) = event else { return };
                let at = Instant::now() + DEBOUNCE;
                match event {
                    Seen::Changed(index) => {
                        due.insert(index, at);
                    }
                    Seen::Unknown => {
                        tracing::warn!("file-change events were lost; announcing every watched file");
                        due.extend((0..count).map(|index| (index, at)));
                    }
                }
            }
            _ = sleep_until(next) => {
                let now = Instant::now();
                let ready: Vec<usize> =
                    due.iter().filter(|(_, at)| **at <= now).map(|(index, _)| *index).collect();
                for index in ready {
                    due.remove(&index);
                    if settled.send(index).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, MetadataKind};

    use super::*;

    fn event(kind: EventKind, path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    fn changed(res: notify::Result<notify::Event>) -> Vec<usize> {
        let targets = [PathBuf::from("/w/notes.md"), PathBuf::from("/w/plan.md")];
        classify(res, &targets)
            .into_iter()
            .map(|s| match s {
                Seen::Changed(i) => i,
                Seen::Unknown => usize::MAX,
            })
            .collect()
    }

    #[test]
    fn content_changes_of_the_watched_name_count() {
        let create = EventKind::Create(CreateKind::File);
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let moved_to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        for kind in [create, write, close, moved_to] {
            assert_eq!(changed(event(kind, "/w/notes.md")), [0], "{kind:?}");
            assert_eq!(changed(event(kind, "/w/plan.md")), [1], "{kind:?}");
            assert!(changed(event(kind, "/w/other.md")).is_empty(), "{kind:?}");
        }
    }

    #[test]
    fn reads_attributes_removals_and_renames_away_do_not() {
        let kinds = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Remove(notify::event::RemoveKind::File),
        ];
        for kind in kinds {
            assert!(changed(event(kind, "/w/notes.md")).is_empty(), "{kind:?}");
        }
        // notify reports a rename within the directory as From, To and Both
        // (old and new path): only the To counts, so renaming the watched
        // file away does not announce it.
        let both = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(PathBuf::from("/w/notes.md"))
            .add_path(PathBuf::from("/w/notes.old"));
        assert!(changed(Ok(both)).is_empty());
    }

    #[test]
    fn lost_events_announce_everything() {
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(changed(Ok(overflow)), [usize::MAX]);
    }
}
