//! The host's open-file limit.
//!
//! A host holds one descriptor per connected client, and a follower
//! without inotify keeps a connection open for as long as it waits (see
//! [`crate::store::follow`]). Many scripts waiting on one session must not
//! run the host out of descriptors at the usual soft limit of 1024, so the
//! host raises its soft limit to the hard one. The agent gets the limit the
//! host started with, exactly as if reins were not in between.

use std::sync::OnceLock;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The limit the host inherited, for its agent.
static INHERITED: OnceLock<Rlimit> = OnceLock::new();

/// Raises the soft open-file limit to the hard limit (once).
pub(crate) fn raise_nofile() {
    let inherited = getrlimit(Resource::Nofile);
    if INHERITED.set(inherited).is_err() || inherited.current == inherited.maximum {
        return;
    }
    let raised = Rlimit { current: inherited.maximum, maximum: inherited.maximum };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!("open-file limit raised to {:?}", inherited.maximum),
        Err(err) => tracing::warn!("cannot raise the open-file limit: {err}"),
    }
}

/// Puts back the inherited limit; call it in the agent between fork and
/// exec (setrlimit(2) is async-signal-safe).
pub(crate) fn restore_for_agent() -> std::io::Result<()> {
    match INHERITED.get() {
        Some(limit) => Ok(setrlimit(Resource::Nofile, *limit)?),
        None => Ok(()),
    }
}
