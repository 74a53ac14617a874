//! Answering the agent's approval requests: `reins approve` and the
//! `--approve auto|never` policy.
//!
//! Every request gets a name when it appears (`a1`, `a2`, … per run), in
//! a `blocked` event and in `status`: a protocol agent's request as the
//! protocol delivers it, a screen agent's when the screen starts reading
//! `blocked{approval}` (or shows a different dialog right after one was
//! answered). `reins approve --request NAME` answers that request or
//! nothing: a late answer never lands on the next dialog. Keys are pressed
//! only while the screen reads `blocked{approval}`, once per request.

use std::collections::VecDeque;

use crate::adapter::Step;
use crate::host::ApprovalPolicy;
use crate::host::input::Input;
use crate::host::session::{Link, Session, to_json};
use crate::ipc::{ApproveReply, Decision, PendingApproval};
use crate::state::{BlockedKind, Observed, State};
use crate::store::events::EventKind;
use crate::time;
use crate::trust::Requester;

/// The approval requests the agent waits on, oldest first (a protocol may
/// ask several at once; a screen shows one).
#[derive(Debug, Default)]
pub(super) struct Approvals {
    pending: VecDeque<PendingApproval>,
    /// Requests named so far in this run.
    named: u64,
    /// The screen text of the last dialog answered, while the screen may
    /// still show it (a screen agent redraws after the answer).
    answered_screen: Option<u64>,
}

impl Approvals {
    pub(super) fn front(&self) -> Option<&PendingApproval> {
        self.pending.front()
    }
}

impl Session {
    /// `POST /v1/approve`.
    pub(super) fn approve_request(
        &mut self,
        decision: Decision,
        request: Option<&str>,
        requester: Option<Requester>,
    ) -> (u16, serde_json::Value) {
        match self.answer_dialog(decision, request, "client", requester) {
            Ok(answered) => {
                (200, to_json(&ApproveReply { ok: true, decision, request: Some(answered) }))
            }
            Err(error) => (409, serde_json::json!({ "ok": false, "error": error })),
        }
    }

    /// Answers the oldest pending request (which must be `request` when
    /// one is named); returns its name.
    fn answer_dialog(
        &mut self,
        decision: Decision,
        request: Option<&str>,
        by: &str,
        requester: Option<Requester>,
    ) -> Result<String, String> {
        let Some(front) = self.approvals.pending.front() else {
            return Err(match request {
                Some(name) => format!("request {name} is no longer pending (none is)"),
                None => {
                    format!("no approval request is pending (the session is {})", self.observed)
                }
            });
        };
        if let Some(name) = request.filter(|n| *n != front.request) {
            let queued = self.approvals.pending.iter().any(|p| p.request == name);
            return Err(if queued {
                format!("request {name} waits behind {}: answer that one first", front.request)
            } else {
                format!(
                    "request {name} is no longer pending (the pending one is {})",
                    front.request
                )
            });
        }
        let name = front.request.clone();
        if let Link::Protocol(_) = self.link {
            // The protocol knows exactly which requests wait for an answer.
            self.protocol_answer(decision)?;
        } else {
            self.press_answer(decision)?;
        }
        self.approvals.pending.pop_front();
        tracing::info!("approval request {name} answered: {} (by {by})", decision.as_str());
        self.emit(&EventKind::Approval {
            decision: decision.as_str().into(),
            by: by.into(),
            request: Some(name.clone()),
            requester,
        });
        self.write_approval_to_registry();
        Ok(name)
    }

    /// Presses the profile's keys for `decision` in the dialog on screen.
    fn press_answer(&mut self, decision: Decision) -> Result<(), String> {
        let approval = Observed { state: State::Blocked, kind: Some(BlockedKind::Approval) };
        if self.observed != approval {
            return Err(format!("no approval dialog on screen (the session is {})", self.observed));
        }
        let spec = &self.profile.approve;
        let keys: Vec<Step> = match decision {
            Decision::Allow => spec.allow.clone(),
            Decision::Always if spec.always.is_empty() => spec.allow.clone(),
            Decision::Always => spec.always.clone(),
            Decision::Deny => spec.deny.clone(),
        };
        if keys.is_empty() {
            return Err(format!(
                "the {} profile has no keys to {}",
                self.profile.name,
                decision.as_str()
            ));
        }
        if !self.send_input(Input::Sequence(keys)) {
            return Err("the agent's input is closed".into());
        }
        self.approvals.answered_screen =
            Some(screen_fingerprint(&self.screen.text().matching_rows()));
        Ok(())
    }

    /// The agent asks for approval: name the request, record it, and
    /// answer it if the session's policy says so.
    pub(super) fn approval_asked(&mut self, detail: Option<String>) {
        self.approvals.named += 1;
        let request = format!("a{}", self.approvals.named);
        self.approvals.pending.push_back(PendingApproval {
            request: request.clone(),
            detail: detail.clone(),
            since: time::now_rfc3339(),
        });
        tracing::info!("approval request {request}: {detail:?}");
        self.emit(&EventKind::Blocked { kind: BlockedKind::Approval, request, detail });
        self.write_approval_to_registry();
        self.apply_approval_policy();
    }

    /// A screen agent's state changed (or its screen settled while it
    /// stays blocked): a dialog that appeared is a new request; a dialog
    /// that went away takes its requests with it.
    pub(super) fn follow_screen_approval(&mut self, from: Observed) {
        let approval = Observed { state: State::Blocked, kind: Some(BlockedKind::Approval) };
        if !matches!(self.link, Link::Terminal { .. }) {
            if from == approval && self.observed != approval {
                self.clear_approvals();
            }
            return;
        }
        if self.observed != approval {
            if from == approval {
                self.clear_approvals();
            }
            return;
        }
        if !self.approvals.pending.is_empty() {
            return;
        }
        let rows = self.screen.text().matching_rows();
        let fingerprint = screen_fingerprint(&rows);
        if from == approval && self.approvals.answered_screen == Some(fingerprint) {
            return; // the dialog just answered, not redrawn yet
        }
        self.approvals.answered_screen = None;
        self.approval_asked(Some(dialog_detail(&rows)));
    }

    fn clear_approvals(&mut self) {
        self.approvals.answered_screen = None;
        if !self.approvals.pending.is_empty() {
            self.approvals.pending.clear();
            self.write_approval_to_registry();
        }
    }

    fn write_approval_to_registry(&mut self) {
        let front = self.approvals.pending.front().cloned();
        if self.record.approval != front {
            self.record.approval = front;
            self.write_registry();
        }
    }

    /// Answers a request if the session's policy says so.
    fn apply_approval_policy(&mut self) {
        let decision = match self.spec.approve {
            ApprovalPolicy::Ask => return,
            ApprovalPolicy::Auto => Decision::Allow,
            ApprovalPolicy::Never => Decision::Deny,
        };
        if let Err(err) = self.answer_dialog(decision, None, "policy", None) {
            tracing::warn!("approval policy could not answer: {err}");
        }
    }
}

/// What a screen dialog asks, as far as the screen tells: its last
/// non-empty lines, bounded.
fn dialog_detail(rows: &[String]) -> String {
    const LINES: usize = 6;
    const CHARS: usize = 600;
    let lines: Vec<&str> =
        rows.iter().map(|r| r.trim()).filter(|r| !r.is_empty()).rev().take(LINES).collect();
    let text: String = lines.into_iter().rev().collect::<Vec<_>>().join("\n");
    if text.chars().count() <= CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(CHARS - 1).collect();
    cut.push('…');
    cut
}

fn screen_fingerprint(rows: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    rows.hash(&mut hasher);
    hasher.finish()
}
