//! The watcher's rules: from what a session shows, what to do now.
//!
//! Pure functions over [`Evidence`], so every rule is unit-tested without a
//! session. The rules in one breath: a session that ended on purpose is
//! finished; one whose agent died is restarted while the budget lasts; one
//! that sits ready with no turn open and nothing queued after a turn has its
//! work done (never nudged), and one that has had no message yet waits for
//! work; one blocked on
//! a dialog is reported, never typed into; one working without progress
//! for `stall_after` is nudged while the budget lasts; anything else past
//! its budget is escalated to a person.

use std::time::Duration;

use serde::Serialize;

use crate::state::{BlockedKind, Observed, State};
use crate::store::exit_record::ExitReason;

/// What the watcher knows about the session right now.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "host", rename_all = "snake_case")]
pub(crate) enum Evidence {
    /// Its host is running.
    Live(Live),
    /// Its last run ended and recorded how.
    Ended(Ended),
    /// Its host died without recording an end (leftovers may hold the id).
    Dead,
}

/// A live session, as its host reports it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Live {
    pub(crate) state: Observed,
    /// Seconds in this state.
    pub(crate) state_for_s: f64,
    pub(crate) turn: u64,
    pub(crate) turn_open: bool,
    pub(crate) queued: usize,
    /// Seconds since the agent last made progress.
    pub(crate) idle_s: f64,
    /// How that progress was seen (`protocol`, `turn`, `screen`, `start`).
    pub(crate) progress: String,
    pub(crate) stopping: bool,
    /// Seconds until a usage limit in force resets (negative: overdue);
    /// `None` without a limit or when its reset is unknown.
    pub(crate) limit_resets_in_s: Option<f64>,
}

/// How the last run ended.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ended {
    pub(crate) run: String,
    pub(crate) reason: ExitReason,
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) detail: Option<String>,
}

/// How many nudges and restarts have been spent, of how many.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Budget {
    pub(crate) resumes: u32,
    pub(crate) max_resumes: u32,
    pub(crate) restarts: u32,
    pub(crate) max_restarts: u32,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub(crate) enum Decision {
    /// Nothing to do; look again after `recheck` (if nothing happens
    /// first), or only when something happens.
    Continue {
        #[serde(skip)]
        recheck: Option<Duration>,
        why: String,
    },
    /// Stalled while working: interrupt the turn and send the nudge.
    Nudge { why: String },
    /// The agent died: start it again.
    Restart { why: String },
    /// The host died without cleaning up: clean up after it.
    BreakLock { why: String },
    /// Give up and leave the session to a person.
    Escalate { why: String },
    /// The session ended on purpose: the watch is over.
    Finished { why: String },
    /// The session's work is done (a turn completed, nothing is queued):
    /// the watch is over unless it was asked to stay until the session ends.
    Done { why: String },
}

impl Decision {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Decision::Continue { .. } => "continue",
            Decision::Nudge { .. } => "nudge",
            Decision::Restart { .. } => "restart",
            Decision::BreakLock { .. } => "break_lock",
            Decision::Escalate { .. } => "escalate",
            Decision::Finished { .. } => "finished",
            Decision::Done { .. } => "done",
        }
    }

    #[cfg(test)]
    pub(crate) fn why(&self) -> &str {
        match self {
            Decision::Continue { why, .. }
            | Decision::Nudge { why }
            | Decision::Restart { why }
            | Decision::BreakLock { why }
            | Decision::Escalate { why }
            | Decision::Finished { why }
            | Decision::Done { why } => why,
        }
    }
}

/// The rule-based decision.
pub(crate) fn decide(evidence: &Evidence, budget: &Budget, stall_after: Duration) -> Decision {
    match evidence {
        Evidence::Dead => Decision::BreakLock {
            why: "its host died without recording an end; cleaning up after it".into(),
        },
        Evidence::Ended(ended) => after_end(ended, budget),
        Evidence::Live(live) => while_live(live, budget, stall_after),
    }
}

fn after_end(ended: &Ended, budget: &Budget) -> Decision {
    let how = describe_end(ended);
    match ended.reason {
        ExitReason::Success | ExitReason::Stopped | ExitReason::Retired => {
            Decision::Finished { why: format!("the session ended: {how}") }
        }
        ExitReason::Failure
        | ExitReason::Disconnected
        | ExitReason::Timeout
        | ExitReason::BootFailure => {
            if budget.restarts < budget.max_restarts {
                Decision::Restart {
                    why: format!(
                        "{how}; restart {} of {}",
                        budget.restarts + 1,
                        budget.max_restarts
                    ),
                }
            } else {
                Decision::Escalate {
                    why: format!("{how}, and {} restarts are spent", budget.max_restarts),
                }
            }
        }
    }
}

/// `the agent exited with code 3`, `the agent was killed by signal 9`, ...
pub(crate) fn describe_end(ended: &Ended) -> String {
    let mut how = match (ended.reason, ended.code, ended.signal) {
        (ExitReason::Stopped, ..) => "it was stopped".to_string(),
        (ExitReason::Retired, ..) => "it was retired after sitting idle".to_string(),
        (ExitReason::Disconnected, ..) => "the agent's transport was lost".to_string(),
        (ExitReason::BootFailure, ..) => "the agent did not come up".to_string(),
        (ExitReason::Timeout, ..) => "a deadline ran out".to_string(),
        (_, Some(code), _) => format!("the agent exited with code {code}"),
        (_, None, Some(signal)) => format!("the agent was killed by signal {signal}"),
        (_, None, None) => "the agent ended".to_string(),
    };
    if let Some(detail) = ended.detail.as_deref().filter(|d| !d.is_empty()) {
        how.push_str(&format!(" ({detail})"));
    }
    how
}

fn while_live(live: &Live, budget: &Budget, stall_after: Duration) -> Decision {
    let stall_s = stall_after.as_secs_f64();
    let until = |elapsed_s: f64| Some(Duration::from_secs_f64((stall_s - elapsed_s).max(0.0)));
    if live.stopping {
        return Decision::Continue { recheck: None, why: "it is stopping".into() };
    }
    match live.state.state {
        State::Blocked if live.state.kind == Some(BlockedKind::RateLimit) => {
            match live.limit_resets_in_s {
                Some(left) if left + stall_s > 0.0 => Decision::Continue {
                    recheck: Some(Duration::from_secs_f64(left.max(0.0) + stall_s)),
                    why: format!(
                        "rate-limited: waiting for the reset (in {})",
                        secs(left.max(0.0))
                    ),
                },
                Some(left) => Decision::Escalate {
                    why: format!("still rate-limited {} after its reset time", secs(-left)),
                },
                None if live.state_for_s >= stall_s => Decision::Escalate {
                    why: format!(
                        "rate-limited for {} and the agent did not say until when",
                        secs(live.state_for_s)
                    ),
                },
                None => Decision::Continue {
                    recheck: until(live.state_for_s),
                    why: "rate-limited (reset time unknown)".into(),
                },
            }
        }
        State::Blocked => {
            let what = live.state.kind.map_or("a dialog", |k| k.as_str());
            if live.state_for_s >= stall_s {
                return Decision::Escalate {
                    why: format!(
                        "blocked on {what} for {}: answer it (`reins approve --id ID`, or \
                         `run --approve auto|never`); a watcher never types into a dialog",
                        secs(live.state_for_s)
                    ),
                };
            }
            Decision::Continue {
                recheck: until(live.state_for_s),
                why: format!("blocked on {what}"),
            }
        }
        State::Ready if !live.turn_open && live.queued == 0 && live.turn == 0 => {
            Decision::Continue { recheck: None, why: "waiting for work: no message yet".into() }
        }
        State::Ready if !live.turn_open && live.queued == 0 => {
            Decision::Done { why: format!("turn {} ended and nothing is queued", live.turn) }
        }
        State::Exited => Decision::Continue { recheck: None, why: "its agent is exiting".into() },
        State::Starting if live.idle_s >= stall_s => {
            Decision::Escalate { why: format!("it has not come up after {}", secs(live.idle_s)) }
        }
        _ if live.idle_s >= stall_s => {
            let what = format!(
                "no progress for {} while {} (last progress: {})",
                secs(live.idle_s),
                live.state,
                live.progress
            );
            if budget.resumes < budget.max_resumes {
                Decision::Nudge {
                    why: format!("{what}; nudge {} of {}", budget.resumes + 1, budget.max_resumes),
                }
            } else {
                Decision::Escalate {
                    why: format!("{what}, and {} nudges are spent", budget.max_resumes),
                }
            }
        }
        _ => Decision::Continue {
            recheck: until(live.idle_s),
            why: format!("working ({})", live.state),
        },
    }
}

fn secs(s: f64) -> String {
    crate::time::human(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(60);

    fn live(state: State, idle_s: f64) -> Live {
        Live {
            state: Observed::plain(state),
            state_for_s: idle_s,
            turn: 1,
            turn_open: state == State::Busy,
            queued: 0,
            idle_s,
            progress: "screen".into(),
            stopping: false,
            limit_resets_in_s: None,
        }
    }

    fn budget(resumes: u32, restarts: u32) -> Budget {
        Budget { resumes, max_resumes: 1, restarts, max_restarts: 1 }
    }

    fn ended(reason: ExitReason, code: Option<i32>) -> Evidence {
        Evidence::Ended(Ended { run: "r".into(), reason, code, signal: None, detail: None })
    }

    #[test]
    fn working_with_progress_continues_until_the_stall_deadline() {
        let d = decide(&Evidence::Live(live(State::Busy, 20.0)), &budget(0, 0), STALL);
        assert_eq!(d.name(), "continue");
        let Decision::Continue { recheck, .. } = d else { unreachable!() };
        assert_eq!(recheck, Some(Duration::from_secs(40)));
    }

    #[test]
    fn a_stall_is_nudged_then_escalated_when_the_budget_is_spent() {
        let stalled = Evidence::Live(live(State::Busy, 61.0));
        assert_eq!(decide(&stalled, &budget(0, 0), STALL).name(), "nudge");
        let d = decide(&stalled, &budget(1, 0), STALL);
        assert_eq!(d.name(), "escalate");
        assert!(d.why().contains("1 nudges are spent"), "{}", d.why());
    }

    #[test]
    fn a_finished_session_sitting_ready_is_done_and_never_nudged() {
        let done = Evidence::Live(live(State::Ready, 10_000.0));
        let d = decide(&done, &budget(0, 0), STALL);
        assert_eq!(d, Decision::Done { why: "turn 1 ended and nothing is queued".into() });
    }

    #[test]
    fn a_session_without_a_message_yet_waits_for_work() {
        let mut fresh = live(State::Ready, 10_000.0);
        fresh.turn = 0;
        let d = decide(&Evidence::Live(fresh), &budget(0, 0), STALL);
        assert_eq!(d.name(), "continue");
        assert_eq!(d.why(), "waiting for work: no message yet");
    }

    #[test]
    fn ready_with_a_turn_open_or_messages_waiting_can_stall() {
        let mut l = live(State::Ready, 61.0);
        l.turn_open = true;
        assert_eq!(decide(&Evidence::Live(l.clone()), &budget(0, 0), STALL).name(), "nudge");
        l.turn_open = false;
        l.queued = 1;
        assert_eq!(decide(&Evidence::Live(l), &budget(0, 0), STALL).name(), "nudge");
    }

    #[test]
    fn a_blocked_session_is_reported_never_nudged() {
        let mut l = live(State::Blocked, 30.0);
        l.state = Observed { state: State::Blocked, kind: Some(BlockedKind::Approval) };
        assert_eq!(decide(&Evidence::Live(l.clone()), &budget(0, 0), STALL).name(), "continue");
        l.state_for_s = 61.0;
        l.idle_s = 61.0;
        let d = decide(&Evidence::Live(l), &budget(0, 0), STALL);
        assert_eq!(d.name(), "escalate", "even with nudges left");
        assert!(d.why().contains("blocked on approval"), "{}", d.why());
    }

    #[test]
    fn a_rate_limit_is_waited_out_then_escalated_if_it_does_not_lift() {
        let mut l = live(State::Blocked, 500.0);
        l.state = Observed { state: State::Blocked, kind: Some(BlockedKind::RateLimit) };
        l.limit_resets_in_s = Some(120.0);
        let d = decide(&Evidence::Live(l.clone()), &budget(0, 0), STALL);
        assert_eq!(
            d,
            Decision::Continue {
                recheck: Some(Duration::from_secs(180)),
                why: "rate-limited: waiting for the reset (in 2m)".into()
            }
        );
        l.limit_resets_in_s = Some(-61.0);
        assert_eq!(decide(&Evidence::Live(l.clone()), &budget(0, 0), STALL).name(), "escalate");
        l.limit_resets_in_s = None;
        assert_eq!(decide(&Evidence::Live(l), &budget(0, 0), STALL).name(), "escalate");
    }

    #[test]
    fn a_dead_agent_is_restarted_within_the_budget() {
        let crashed = ended(ExitReason::Failure, Some(3));
        let d = decide(&crashed, &budget(0, 0), STALL);
        assert_eq!(d.name(), "restart");
        assert!(d.why().contains("exited with code 3"), "{}", d.why());
        assert_eq!(decide(&crashed, &budget(0, 1), STALL).name(), "escalate");
        let lost = ended(ExitReason::Disconnected, None);
        assert_eq!(decide(&lost, &budget(0, 0), STALL).name(), "restart");
    }

    #[test]
    fn an_end_on_purpose_finishes_the_watch() {
        for reason in [ExitReason::Success, ExitReason::Stopped] {
            assert_eq!(decide(&ended(reason, Some(0)), &budget(0, 0), STALL).name(), "finished");
        }
    }

    #[test]
    fn a_dead_host_is_cleaned_up_first() {
        assert_eq!(decide(&Evidence::Dead, &budget(0, 0), STALL).name(), "break_lock");
    }

    #[test]
    fn a_stopping_session_is_left_to_stop() {
        let mut l = live(State::Busy, 1000.0);
        l.stopping = true;
        assert_eq!(decide(&Evidence::Live(l), &budget(0, 0), STALL).name(), "continue");
    }
}
