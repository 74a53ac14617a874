//! Sessions nobody is going to unblock. A session that a dispatch or a
//! chain started headless and that sits blocked on auth, trust, a dialog
//! or an approval its policy leaves to a person is not coming back: the
//! person is not watching. One watch for all of them — a dispatch's
//! attempts and verifiers, a chain's gates — so each fails within its
//! grace with what it was blocked on, instead of waiting out its timeout.

use std::time::Duration;

use crate::dispatch::sessions::{Reins, Started, TurnEnd};

/// How often the session's state is looked at while it is being watched.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// A session that sat blocked past its grace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blocked {
    /// What it was blocked on (`approval`, `trust`, `auth`, `dialog`).
    pub(crate) kind: String,
    /// For how long, in whole seconds.
    pub(crate) secs: f64,
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "blocked on {} for {}, which nobody answered",
            self.kind,
            crate::time::human(self.secs)
        )
    }
}

/// Ends once the session has sat blocked (not on a usage limit or a
/// draft, which have their own handling) for `grace`.
pub(crate) async fn watch(reins: &Reins, started: &Started, grace: Duration) -> Blocked {
    let grace = grace.as_secs_f64();
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        if let Some((kind, secs)) = reins.blocked_for(started)
            && secs >= grace
        {
            return Blocked { kind, secs: secs.floor() };
        }
    }
}

/// Waits for the session's first task to complete (as
/// [`Reins::wait_task`]), or for it to sit blocked for `grace`.
pub(crate) async fn wait_task(
    reins: &Reins,
    id: &str,
    started: &Started,
    timeout: Duration,
    grace: Duration,
) -> Result<TurnEnd, Blocked> {
    tokio::select! {
        end = reins.wait_task(id, timeout) => Ok(end),
        blocked = watch(reins, started, grace) => Err(blocked),
    }
}
