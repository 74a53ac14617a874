//! Answering the agent's approval dialogs: `reins approve` and the
//! `--approve auto|never` policy. Keys are pressed only while the screen
//! reads `blocked{approval}`, and only once per dialog.

use crate::adapter::Step;
use crate::host::ApprovalPolicy;
use crate::host::input::Input;
use crate::host::session::{Link, Session, to_json};
use crate::ipc::{ApproveReply, Decision};
use crate::state::{BlockedKind, Observed, State};
use crate::store::events::EventKind;

impl Session {
    /// `POST /v1/approve`.
    pub(super) fn approve_request(&mut self, decision: Decision) -> (u16, serde_json::Value) {
        match self.answer_dialog(decision, "client") {
            Ok(()) => (200, to_json(&ApproveReply { ok: true, decision })),
            Err(error) => (409, serde_json::json!({ "ok": false, "error": error })),
        }
    }

    /// Presses the profile's keys for `decision`, if an approval dialog is
    /// on screen and has not been answered yet.
    fn answer_dialog(&mut self, decision: Decision, by: &str) -> Result<(), String> {
        if let Link::Protocol(_) = self.link {
            // The protocol knows exactly which requests wait for an answer.
            return self.protocol_answer(decision, by);
        }
        let approval = Observed { state: State::Blocked, kind: Some(BlockedKind::Approval) };
        if self.observed != approval {
            return Err(format!("no approval dialog on screen (the session is {})", self.observed));
        }
        if self.dialog_answered_at == Some(self.screen_version) {
            return Err("that dialog was just answered; the agent has not redrawn yet".into());
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
        self.dialog_answered_at = Some(self.screen_version);
        tracing::info!("approval dialog answered: {} (by {by})", decision.as_str());
        self.emit(&EventKind::Approval { decision: decision.as_str().into(), by: by.into() });
        Ok(())
    }

    /// Called when an approval is asked for (the screen starts reading
    /// `blocked{approval}`, or the protocol sends a request): answers it if
    /// the session's policy says so.
    pub(super) fn apply_approval_policy(&mut self) {
        let decision = match self.spec.approve {
            ApprovalPolicy::Ask => return,
            ApprovalPolicy::Auto => Decision::Allow,
            ApprovalPolicy::Never => Decision::Deny,
        };
        if let Err(err) = self.answer_dialog(decision, "policy") {
            tracing::warn!("approval policy could not answer: {err}");
        }
    }
}
