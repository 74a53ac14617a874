//! The stop escalation: the adapter's polite sequence, then SIGTERM to the
//! agent's whole tree, then SIGKILL, each after its grace period.
//!
//! The grace periods come from the profile but are fitted inside the
//! client's deadline, so `reins stop --timeout 5` ends the session within
//! 5 seconds even if the profile would be more patient.

use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::adapter::StopSpec;

/// Where a stop is in its escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The polite sequence was sent; waiting for the agent to leave.
    Polite,
    /// SIGTERM was sent.
    Terminated,
    /// SIGKILL was sent; nothing left to escalate.
    Killed,
}

/// A stop in progress.
#[derive(Debug)]
pub(crate) struct StopPlan {
    pub(crate) phase: Phase,
    /// When to escalate to the next phase.
    pub(crate) deadline: Option<Instant>,
    term_grace: Duration,
}

impl StopPlan {
    /// Plans a stop. With an empty polite sequence the plan starts at
    /// SIGTERM (the caller sends it).
    pub(crate) fn new(spec: &StopSpec, client_timeout: Option<Duration>) -> StopPlan {
        let fit = |profile_ms: u64, share: f64| {
            let profile = Duration::from_millis(profile_ms);
            match client_timeout {
                Some(t) => profile.min(t.mul_f64(share)),
                None => profile,
            }
        };
        let grace = fit(spec.grace_ms, 0.4);
        let term_grace = fit(spec.term_grace_ms, 0.3);
        if spec.sequence.is_empty() {
            StopPlan {
                phase: Phase::Terminated,
                deadline: Some(Instant::now() + term_grace),
                term_grace,
            }
        } else {
            StopPlan { phase: Phase::Polite, deadline: Some(Instant::now() + grace), term_grace }
        }
    }

    /// A plan whose polite step happens elsewhere (a protocol's own
    /// shutdown), with the profile's grace before SIGTERM.
    pub(crate) fn polite(spec: &StopSpec, client_timeout: Option<Duration>) -> StopPlan {
        let with_step =
            StopSpec { sequence: vec![crate::adapter::Step::PauseMs(0)], ..spec.clone() };
        StopPlan::new(&with_step, client_timeout)
    }

    /// Moves to the next phase; returns the signal to send, if any.
    pub(crate) fn escalate(&mut self) -> Option<Signal> {
        match self.phase {
            Phase::Polite => {
                self.phase = Phase::Terminated;
                self.deadline = Some(Instant::now() + self.term_grace);
                Some(Signal::TERM)
            }
            Phase::Terminated => {
                self.phase = Phase::Killed;
                self.deadline = None;
                Some(Signal::KILL)
            }
            Phase::Killed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::Step;

    #[test]
    fn escalates_polite_then_term_then_kill() {
        let spec = StopSpec {
            sequence: vec![Step::Text("/exit".into())],
            interrupt: vec![],
            grace_ms: 3000,
            term_grace_ms: 2000,
        };
        let mut plan = StopPlan::new(&spec, Some(Duration::from_secs(1)));
        assert_eq!(plan.phase, Phase::Polite);
        let left = plan.deadline.unwrap() - Instant::now();
        assert!(left <= Duration::from_millis(400), "fitted into the client's deadline");
        assert_eq!(plan.escalate(), Some(Signal::TERM));
        assert_eq!(plan.escalate(), Some(Signal::KILL));
        assert_eq!(plan.escalate(), None);
        assert!(plan.deadline.is_none());
    }

    #[test]
    fn no_polite_sequence_starts_at_term() {
        let plan = StopPlan::new(&StopSpec { sequence: vec![], ..StopSpec::default() }, None);
        assert_eq!(plan.phase, Phase::Terminated);
    }
}
