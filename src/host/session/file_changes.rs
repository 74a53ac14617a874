//! A watched file changed (`run --watch-file`): queue the message that
//! tells the agent to read it, exactly as `send --no-wait` would.

use crate::host::delivery;
use crate::host::file_hook;
use crate::host::session::Session;

impl Session {
    /// The changes of watched file `index` have settled: queue
    /// `file-change-hook: read PATH`, unless the same message still waits
    /// in the inbox (the agent will read the latest content anyway).
    pub(super) fn on_file_changed(&mut self, index: usize) {
        let Some(file) = self.spec.watch_files.get(index) else { return };
        if self.stop.is_some() {
            return;
        }
        let text = delivery::neutralise(&file_hook::message(file));
        if self.queue.pending().any(|m| m.source == file_hook::SOURCE && m.text == text) {
            tracing::info!("{} changed again; its message is still queued", file.path.display());
            return;
        }
        tracing::info!("{} changed", file.path.display());
        self.queue_own(text, file_hook::SOURCE);
    }
}
