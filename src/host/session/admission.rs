//! Who may change this session (DESIGN §10): every control request that
//! changes something is admitted here first, with the process that sent
//! it identified from the socket's peer credentials ([`crate::trust`]).
//!
//! - The session's own agent tree may not answer the session's approval
//!   request, by any route: `approve`/`deny`, an interrupt while the
//!   request is pending (the interrupt keys dismiss the dialog), keys typed
//!   at once (`send --force`, `--raw`, `--submit-only`), an interactive
//!   `attach`, or a watcher's note about itself.
//! - With `[policy] agents = "started"` in config.toml, an agent of
//!   another session may change this one only if it started it (directly
//!   or through sessions it started).
//!
//! What is refused is answered 403 and recorded as a `refused` event;
//! what is admitted is recorded by the request's own event, naming its
//! requester.

use crate::ipc::{ControlRequest, Peer};
use crate::state::{BlockedKind, State};
use crate::store::events::EventKind;
use crate::trust::{self, AgentControl, AgentTree, Requester};

use super::Session;

/// A refused request: the HTTP status and body to answer with.
pub(super) type Refusal = (u16, serde_json::Value);

impl Session {
    /// Admits `request` from `peer`, or refuses it. Requests that change
    /// nothing are admitted without a look (`None`: nobody to record).
    pub(super) fn admit(
        &mut self,
        request: &ControlRequest,
        peer: Peer,
    ) -> Result<Option<Requester>, Refusal> {
        let Some(what) = self.changes(request) else { return Ok(None) };
        let Some(pid) = peer.pid else {
            // No pid (not Linux semantics): nothing to tell apart.
            return Ok(None);
        };
        let requester = trust::identify(pid, peer.uid);
        let own = AgentTree {
            pid: self.agent_pid,
            start_ticks: self.record.agent_start_ticks,
            run: &self.spec.run,
        }
        .contains(pid);
        let reason = if own && what.answers_dialog {
            Some(format!(
                "{} from this session's own agent: an agent may not answer its own approval \
                 requests",
                what.name
            ))
        } else if !own && self.spec.agent_control == AgentControl::Started {
            requester.session.as_ref().zip(requester.scope.as_ref()).and_then(|(id, scope)| {
                let started_it = trust::descends_from(
                    &self.spec.state().sessions_dir(),
                    self.spec.parent.clone(),
                    scope,
                    id,
                );
                (!started_it).then(|| {
                    format!(
                        "{} from session {id}'s agent, which did not start this session \
                         ([policy] agents = \"started\")",
                        what.name
                    )
                })
            })
        } else {
            None
        };
        match reason {
            None => Ok(Some(requester)),
            Some(reason) => {
                tracing::warn!("refused {}: {reason} (pid {pid})", what.name);
                self.emit(&EventKind::Refused {
                    request: what.name.into(),
                    reason: reason.clone(),
                    requester,
                });
                Err((403, serde_json::json!({ "ok": false, "error": reason })))
            }
        }
    }

    /// What `request` changes, if anything.
    fn changes(&self, request: &ControlRequest) -> Option<Change> {
        let approval_pending = self.observed.state == State::Blocked
            && self.observed.kind == Some(BlockedKind::Approval);
        let change = |name, answers_dialog| Some(Change { name, answers_dialog });
        match request {
            ControlRequest::Approve(_) => change("approve", true),
            ControlRequest::Send(req) => change("send", req.force || req.raw || req.submit_only),
            ControlRequest::Interrupt => change("interrupt", approval_pending),
            ControlRequest::Stop(_) => change("stop", false),
            ControlRequest::ArmResume => change("rate-limit", false),
            ControlRequest::Drop { .. } => change("inbox drop", false),
            ControlRequest::Note(_) => change("note", true),
            ControlRequest::Attach(a) if !a.read_only => change("attach", true),
            ControlRequest::Attach(_)
            | ControlRequest::Status
            | ControlRequest::Screen { .. }
            | ControlRequest::Inbox
            | ControlRequest::Grown { .. }
            | ControlRequest::ViewerInput { .. }
            | ControlRequest::ViewerResize { .. }
            | ControlRequest::ViewerLeft { .. } => None,
        }
    }
}

/// A request that changes the session.
struct Change {
    name: &'static str,
    /// It could answer a pending approval request (so the session's own
    /// agent may not make it).
    answers_dialog: bool,
}
