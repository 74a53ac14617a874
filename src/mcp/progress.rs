//! Long calls (`wait`, `send_message` following a turn, `dispatch`): what
//! they report while they run, and how they hear that the client gave up.
//!
//! A plain `tools/call` reports through MCP progress notifications when
//! the request carries a `progressToken` (one per state change, with the
//! session's state and turn in the message), and stops when the client
//! sends `notifications/cancelled` for it. Run as a task (the tasks
//! extension), the same reports become the task's status message, and
//! `tasks/cancel` stops it.

use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::RoleServer;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};
use rmcp::task_manager::TaskContext;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// The reporting and cancellation of one long call.
pub(crate) struct Long {
    to: To,
    cancel: Cancel,
    step: AtomicU64,
}

enum To {
    Nobody,
    Progress { peer: Peer<RoleServer>, token: ProgressToken },
    Task(TaskContext),
}

enum Cancel {
    Request(CancellationToken),
    Task(TaskContext),
}

impl Long {
    /// For a call answered in its response.
    pub(crate) fn of_request(context: &RequestContext<RoleServer>) -> Long {
        let to = match context.meta.get_progress_token() {
            Some(token) => To::Progress { peer: context.peer.clone(), token },
            None => To::Nobody,
        };
        Long { to, cancel: Cancel::Request(context.ct.clone()), step: AtomicU64::new(0) }
    }

    /// For a call run as a task.
    pub(crate) fn of_task(task: TaskContext) -> Long {
        Long { to: To::Task(task.clone()), cancel: Cancel::Task(task), step: AtomicU64::new(0) }
    }

    /// Tells the client where the call stands (dropped quietly if the
    /// client is gone: the call's own end decides what happens then).
    pub(crate) async fn report(&self, message: impl Into<String>) {
        let message = message.into();
        let step = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.to {
            To::Nobody => {}
            To::Progress { peer, token } => {
                let param = ProgressNotificationParam::new(token.clone(), step as f64)
                    .with_message(message);
                let _ = peer.notify_progress(param).await;
            }
            To::Task(task) => task.set_status_message(message),
        }
    }

    /// Resolves once the client cancelled the call.
    pub(crate) async fn cancelled(&self) {
        match &self.cancel {
            Cancel::Request(ct) => ct.cancelled().await,
            Cancel::Task(task) => task.cancelled().await,
        }
    }

    /// Runs `work`, passing on what `reports` says as it comes, until it
    /// ends; `None` if the client cancelled the call first (`work` is
    /// dropped then: only calls that leave the session as it is are run
    /// this way).
    pub(crate) async fn run<T>(
        &self,
        work: impl Future<Output = T>,
        mut reports: UnboundedReceiver<String>,
    ) -> Option<T> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => {
                    // What was said before the end, then the end.
                    while let Ok(message) = reports.try_recv() {
                        self.report(message).await;
                    }
                    return Some(out);
                }
                Some(message) = reports.recv() => self.report(message).await,
                _ = self.cancelled() => return None,
            }
        }
    }

    /// Whether the client has cancelled the call.
    pub(crate) fn cancel_requested(&self) -> bool {
        match &self.cancel {
            Cancel::Request(ct) => ct.is_cancelled(),
            Cancel::Task(task) => task.is_cancel_requested(),
        }
    }
}
