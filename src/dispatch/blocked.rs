//! Sessions nobody is going to unblock. A session that a dispatch or a
//! chain started headless and that sits blocked on auth, trust, a dialog
//! or an approval its policy leaves to a person is not coming back: the
//! person is not watching. One watch for all of them — a dispatch's
//! attempts and verifiers, a chain's gates — so each fails within its
//! grace with what it was blocked on, instead of waiting out its timeout.

use std::time::Duration;

use crate::dispatch::sessions::{Reins, Started, TurnEnd};

/// How often the session's state is looked at while it is being watched:
/// its events file here, one `reins status` round trip for a session on
/// another machine.
const LOOK_EVERY: Duration = Duration::from_millis(250);
const LOOK_REMOTE_EVERY: Duration = Duration::from_secs(1);

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
///
/// Here, how long is read from the state's own time; on another machine,
/// from when this watch first saw that state (its clock is not this one's),
/// so the grace is never cut short by a skewed clock.
pub(crate) async fn watch(reins: &Reins, started: &Started, grace: Duration) -> Blocked {
    let grace = grace.as_secs_f64();
    let remote = Reins::is_remote(started);
    let mut seen: Option<(String, std::time::Instant)> = None;
    loop {
        tokio::time::sleep(if remote { LOOK_REMOTE_EVERY } else { LOOK_EVERY }).await;
        let Some((kind, since)) = reins.blocked_since(started).await else {
            seen = None;
            continue;
        };
        let secs = if remote {
            if seen.as_ref().is_none_or(|(at, _)| *at != since) {
                seen = Some((since.clone(), std::time::Instant::now()));
            }
            seen.as_ref().map_or(0.0, |(_, first)| first.elapsed().as_secs_f64())
        } else {
            crate::time::seconds_since(&since).unwrap_or(0.0)
        };
        if secs >= grace {
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
