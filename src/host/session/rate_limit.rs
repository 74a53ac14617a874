//! Usage and rate limits: noticing one, waiting out its reset, and — when
//! asked — resuming the agent after it.
//!
//! A limit is seen on the screen (a profile rule of kind `rate_limit`, its
//! reset time read with the `[rate_limit]` patterns) or in the protocol
//! (codex: a turn failed with `usageLimitExceeded`, `rateLimitExceeded` or
//! an HTTP 429; the reset from `account/rateLimits/updated`). The session
//! then reads `blocked{rate_limit}` and delivers nothing (messages wait in
//! the inbox); the open turn ends as failed. At the reset time (plus a
//! little jitter, so a fleet does not resume in one instant) the limit is
//! lifted: the session reads ready again, and with `run --on-rate-limit
//! resume` (or when a watcher asked) reins sends the resume message, once.
//! A limit notice still on screen after it was lifted is the old notice,
//! not a new limit.

use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::Session;
use crate::adapter::TurnStatus;
use crate::host::launch::RateLimitPolicy;
use crate::ipc::api::RateLimitReport;
use crate::state::{BlockedKind, Observed, State};
use crate::store::events::EventKind;
use crate::time;

/// What reins tells the agent when its limit has reset.
pub(crate) const RESUME_MESSAGE: &str =
    "The usage limit has reset. Continue with your task where you left off.";

/// The longest jitter added to a reset time.
const MAX_JITTER: Duration = Duration::from_secs(10);

/// One limit, from when it was seen until after it lifted.
#[derive(Debug)]
pub(crate) struct Episode {
    until: Option<Timestamp>,
    /// The screen line that announced it.
    notice: Option<String>,
    lifted: bool,
    /// Send the resume message when it lifts.
    resume: bool,
    /// When to lift it (the reset time plus jitter).
    lift_at: Option<Instant>,
}

impl Session {
    /// A limit was seen. `notice` is the screen line that said so.
    pub(super) fn on_rate_limited(
        &mut self,
        until: Option<(Timestamp, jiff::SignedDuration)>,
        source: &str,
        message: Option<String>,
        notice: Option<String>,
    ) {
        if let Some(episode) = &self.rate_limit
            && (!episode.lifted || (notice.is_some() && episode.notice == notice))
        {
            return; // the same limit, still (or its old notice)
        }
        let resume = self.spec.on_rate_limit == RateLimitPolicy::Resume;
        // Lifted once the limit has surely reset: the stated time plus its
        // precision, plus jitter.
        let lift_at = until.map(|(until, precision)| {
            let sure = until.checked_add(precision).unwrap_or(until);
            let now = Timestamp::now();
            let wait =
                if now < sure { now.duration_until(sure).unsigned_abs() } else { Duration::ZERO };
            Instant::now() + wait + jitter(wait)
        });
        let until = until.map(|(until, _)| until);
        tracing::info!("rate-limited until {until:?} ({source})");
        self.rate_limit = Some(Episode { until, notice, lifted: false, resume, lift_at });
        self.end_turn_at_limit(message.clone());
        self.emit(&EventKind::RateLimited {
            until: until.map(time::format_rfc3339),
            source: source.into(),
            message,
        });
        let blocked = Observed { state: State::Blocked, kind: Some(BlockedKind::RateLimit) };
        self.set_state(blocked, Some("rate-limit".into()));
    }

    /// A turn open while a limit is in force has hit it: it is over, and
    /// failed. (On a screen the limit can show before the message that hit
    /// it is seen delivered; its turn then ends as soon as it opens.)
    pub(super) fn end_turn_at_limit(&mut self, error: Option<String>) {
        if self.rate_limit.as_ref().is_none_or(|e| e.lifted) || self.delivery.is_some() {
            return;
        }
        if let Some(turn) = self.turns.finish() {
            // A turn cut short by the limit has no answer to keep.
            self.forget_answer();
            self.emit_in_turn(
                turn.number,
                &EventKind::task_complete(
                    TurnStatus::Failed,
                    turn.message_id,
                    Some("rate-limit".into()),
                    error,
                    None,
                ),
            );
        }
    }

    /// When the current limit lifts.
    pub(super) fn rate_limit_deadline(&self) -> Option<Instant> {
        self.rate_limit.as_ref().filter(|e| !e.lifted).and_then(|e| e.lift_at)
    }

    /// The reset time (and jitter) passed: the limit is lifted.
    pub(super) fn on_rate_limit_reset(&mut self) {
        let Some(episode) = self.rate_limit.as_mut() else { return };
        episode.lifted = true;
        episode.lift_at = None;
        let resume = episode.resume;
        tracing::info!("rate limit lifted");
        self.set_state(Observed::plain(State::Ready), None);
        let message_id =
            if resume { self.queue_own(RESUME_MESSAGE.into(), "rate-limit") } else { None };
        self.emit(&EventKind::RateLimitLifted { resumed: message_id.is_some(), message_id });
        self.try_deliver();
    }

    /// A settled screen read `blocked{rate_limit}`: a new limit or the one
    /// in force (true), or the old notice of a lifted one (false: the
    /// screen is not limited).
    pub(super) fn screen_rate_limit(&mut self, rows: &[String]) -> bool {
        let now = jiff::ZonedDateTime::now();
        let reset = self.profile.rate_limit.reset(rows, &now);
        let notice = reset.as_ref().map(|r| r.line.clone());
        if let Some(episode) = &self.rate_limit
            && episode.lifted
            && notice.is_some()
            && episode.notice == notice
        {
            return false; // the old notice: not limited
        }
        let message = notice.clone();
        self.on_rate_limited(reset.map(|r| (r.until, r.precision)), "screen", message, notice);
        true
    }

    /// `POST /v1/rate-limit` (`{"resume": true}`): a watcher asks for the
    /// resume message when the current limit lifts.
    pub(super) fn arm_resume(
        &mut self,
        requester: Option<crate::trust::Requester>,
    ) -> (u16, serde_json::Value) {
        match self.rate_limit.as_mut().filter(|e| !e.lifted) {
            Some(episode) => {
                let already = std::mem::replace(&mut episode.resume, true);
                if !already {
                    self.emit(&EventKind::ResumeArmed { requester });
                }
                (200, serde_json::json!({ "ok": true }))
            }
            None => (409, serde_json::json!({ "ok": false, "error": "no rate limit is in force" })),
        }
    }

    /// The current limit, for `status`.
    pub(super) fn rate_limit_report(&self) -> Option<RateLimitReport> {
        self.rate_limit
            .as_ref()
            .filter(|e| !e.lifted)
            .map(|e| RateLimitReport { until: e.until.map(time::format_rfc3339), resume: e.resume })
    }
}

/// Up to 5% of the wait, at most [`MAX_JITTER`].
fn jitter(wait: Duration) -> Duration {
    let span = (wait / 20).min(MAX_JITTER);
    let mut byte = [0u8; 2];
    let _ = rustix::rand::getrandom(&mut byte, rustix::rand::GetRandomFlags::empty());
    span.mul_f64(f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX))
}
