//! A watched file changed (`run --watch-file`): queue the message that
//! tells the agent to read it, exactly as `send --no-wait` would.

use crate::host::delivery;
use crate::host::file_hook;
use crate::host::session::Session;
use crate::store::inbox::Message;
use crate::time;

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
        let ttl = self.spec.inbox_ttl_ms.min(i64::MAX as u64) as i64;
        let expires_at = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_millis(ttl))
            .ok()
            .map(time::format_rfc3339);
        let message = Message {
            id: crate::ids::random_hex(8),
            ts: time::now_rfc3339(),
            text,
            submit: true,
            submit_only: false,
            force: false,
            expires_at,
            source: file_hook::SOURCE.into(),
        };
        if let Err(err) = self.accept(message) {
            tracing::error!("cannot write the inbox: {err}");
            return;
        }
        self.recompute_expiry();
        self.try_deliver();
    }
}
