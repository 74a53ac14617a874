//! Delivering one message to a screen-driven agent, verified (DESIGN §3).
//!
//! Text (bracketed paste when the agent enabled it), a pause, the submit
//! key, then proof within a deadline that a turn started: the screen reads
//! busy, or the composer that held the message reads empty again. Never
//! "delivered" without the proof.
//!
//! The key waits for the agent to show the text (any output after it, then
//! the screen settling), up to the verification deadline: an agent slow to
//! draw — a busy machine, two hundred sessions at once — must not get the
//! key while its screen still reads ready, or a quick turn would leave no
//! proof behind (ready before, ready after) and be called stranded.
//!
//! When no turn starts, delivery looks before it presses again (issue 22):
//! - the text is still in the composer (`ready{draft}`) once the screen has
//!   settled after the key: the key was not taken (an agent still starting,
//!   an Enter read as part of the paste). It is pressed again as soon as
//!   that has held for `recheck_ms`, not a whole `verify_ms` later;
//! - the composer is as empty as before the key, the text never showed,
//!   and the screen did not change at all: the text never reached the
//!   agent (Gemini drops a paste that comes before its input handler). It
//!   is typed once more — the only case where text is typed again, and
//!   only when that is certain;
//! - anything else after the last press: `stranded`.
//!
//! A composer that holds a draft when delivery starts is emptied first with
//! the profile's keys (`submit.clear_draft`), the screen read between
//! presses, so the message is never appended to someone else's text.
//!
//! This is a state machine without I/O: the session feeds it what happened
//! (bytes written, deadlines, output, what the screen reads) and does what
//! it says next.

use std::time::{Duration, Instant};

use crate::adapter::{Evidence, InputSpec, SubmitMode, SubmitSpec, TermMode};
use crate::state::{Observed, State};
use crate::store::inbox::Message;

/// How the screen read at one moment, as delivery needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) observed: Observed,
    /// A fingerprint of the visible text: equal fingerprints, same screen.
    pub(crate) screen: u64,
}

impl Seen {
    fn busy(self) -> bool {
        matches!(self.observed.state, State::Busy | State::Blocked)
    }
}

/// What the session should do next for this delivery.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing until the next event or deadline.
    Wait,
    /// Write these bytes to the agent and report back with `written`.
    Write(Vec<u8>),
    /// The delivery is over.
    Done(Ended),
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Submitted and a turn was seen starting (or, when not verified,
    /// submitted to an agent that was already busy).
    Delivered { verified: bool },
    /// Typed without submitting (`--no-submit`).
    Typed,
    /// Submitted, but no turn started (or, when the composer could not be
    /// emptied of a draft, not typed at all: the reason says which).
    Stranded { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The draft's clear keys are being written.
    ClearKeys,
    /// The clear keys are in: waiting for the screen to read plain ready.
    Clearing {
        until: Instant,
    },
    Typing,
    Pausing {
        until: Instant,
    },
    /// The pause is over but the agent has not drawn anything since the
    /// text: the key waits for that (or for `until`).
    AwaitingEcho {
        until: Instant,
    },
    Pressing,
    Verifying {
        until: Instant,
        /// Set while the settled screen shows the text still in the
        /// composer: when the key is pressed again.
        recheck: Option<Instant>,
    },
}

/// One message on its way into the agent.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) message: Message,
    spec: SubmitSpec,
    bracketed: bool,
    /// False when the agent was busy and the sender forced the message in:
    /// there is no turn start to prove.
    verify: bool,
    phase: Phase,
    /// Key presses for the text as typed last (the retry budget).
    presses: u32,
    /// Key presses in all.
    total_presses: u32,
    clears: u32,
    /// How the screen read just before the latest key press.
    before_key: Option<Seen>,
    /// The agent wrote something after the text was typed.
    output_since_text: bool,
    output_since_key: bool,
    output_since_clear: bool,
    /// The screen read busy or blocked since the text was typed.
    busy_seen: bool,
    /// The screen read anything but an empty composer since the text was
    /// last typed: the agent showed it (or did something with it).
    text_shown: bool,
    /// The screen just before the first key press for the text as typed
    /// last.
    first_key_screen: Option<u64>,
    /// The text was typed a second time (it never reached the agent).
    retyped: bool,
    /// When the first byte of the text was handed over for writing.
    typed_at: Option<Instant>,
}

impl Delivery {
    /// Starts delivering `message`. `bracketed` says whether the agent
    /// enabled bracketed paste; `verify` whether a turn start must be seen;
    /// `draft` whether the composer holds a draft to clear first.
    pub(crate) fn start(
        message: Message,
        spec: &SubmitSpec,
        bracketed: bool,
        verify: bool,
        draft: bool,
        now: Instant,
    ) -> (Delivery, Next) {
        let mut delivery = Delivery {
            spec: spec.clone(),
            bracketed,
            verify,
            phase: Phase::Typing,
            presses: 0,
            total_presses: 0,
            clears: 0,
            before_key: None,
            output_since_text: false,
            output_since_key: false,
            output_since_clear: false,
            busy_seen: false,
            text_shown: false,
            first_key_screen: None,
            retyped: false,
            typed_at: None,
            message,
        };
        let next = if delivery.message.submit_only {
            delivery.press()
        } else if draft && !delivery.spec.clear_draft.is_empty() {
            delivery.clear()
        } else {
            delivery.type_text(now)
        };
        (delivery, next)
    }

    /// How often the submit key has been pressed in all.
    pub(crate) fn total_presses(&self) -> u32 {
        self.total_presses
    }

    /// Milliseconds since the text was first typed.
    pub(crate) fn elapsed_ms(&self, now: Instant) -> Option<u64> {
        self.typed_at.map(|at| now.saturating_duration_since(at).as_millis() as u64)
    }

    /// The bytes asked for were written to the agent.
    pub(crate) fn written(&mut self, now: Instant) -> Next {
        match self.phase {
            Phase::ClearKeys => {
                self.output_since_clear = false;
                self.phase = Phase::Clearing { until: now + self.verify_window() };
                Next::Wait
            }
            Phase::Typing if !self.message.submit => Next::Done(Ended::Typed),
            Phase::Typing => {
                self.phase = Phase::Pausing { until: now + self.pause() };
                Next::Wait
            }
            Phase::Pressing if !self.verify => Next::Done(Ended::Delivered { verified: false }),
            Phase::Pressing => {
                // Looked at again after `recheck_ms` even if the agent draws
                // nothing: a key it took changes the screen.
                let recheck = Some(now + Duration::from_millis(self.spec.recheck_ms));
                self.phase = Phase::Verifying { until: now + self.verify_window(), recheck };
                Next::Wait
            }
            _ => Next::Wait,
        }
    }

    /// The deadline this delivery waits for, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Clearing { until }
            | Phase::Pausing { until }
            | Phase::AwaitingEcho { until } => Some(until),
            Phase::Verifying { until, recheck } => Some(recheck.map_or(until, |r| r.min(until))),
            _ => None,
        }
    }

    /// The deadline passed; `seen` is how the screen reads now.
    pub(crate) fn deadline_passed(&mut self, seen: Seen, now: Instant) -> Next {
        self.note(seen);
        match self.phase {
            Phase::Clearing { .. } => self.after_clear(seen, true),
            // Only a verified delivery needs a screen that showed the text;
            // a forced one goes into a busy agent that may not draw it.
            Phase::Pausing { .. } if self.verify && !self.output_since_text => {
                self.phase = Phase::AwaitingEcho { until: now + self.verify_window() };
                Next::Wait
            }
            Phase::Pausing { .. } | Phase::AwaitingEcho { .. } => {
                self.before_key = Some(seen);
                self.press()
            }
            Phase::Verifying { until, recheck } => {
                if seen.busy() {
                    return Next::Done(Ended::Delivered { verified: true });
                }
                if now < until {
                    // The recheck: the text was still in the composer.
                    if recheck.is_some() && seen.observed.is_draft() {
                        return self.press_again(seen, "the text is still in the composer");
                    }
                    self.phase = Phase::Verifying { until, recheck: None };
                    return Next::Wait;
                }
                self.verify_deadline(seen, now)
            }
            _ => Next::Wait,
        }
    }

    /// The agent wrote something.
    pub(crate) fn output(&mut self) {
        match self.phase {
            // An agent may draw the text while the last of it is still
            // being written (a long message goes in several writes).
            Phase::Typing | Phase::Pausing { .. } | Phase::AwaitingEcho { .. } => {
                self.output_since_text = true
            }
            // The key is on its way: an agent may answer it before the
            // write is confirmed (a quick turn, done in one redraw).
            Phase::Pressing | Phase::Verifying { .. } => self.output_since_key = true,
            Phase::Clearing { .. } => self.output_since_clear = true,
            Phase::ClearKeys => {}
        }
    }

    /// The screen settled and was classified.
    pub(crate) fn classified(&mut self, seen: Seen, now: Instant) -> Next {
        self.note(seen);
        match self.phase {
            Phase::Clearing { .. } if self.output_since_clear => self.after_clear(seen, false),
            Phase::AwaitingEcho { .. } if self.output_since_text => {
                // The text is on screen now (or whatever the agent drew).
                self.before_key = Some(seen);
                self.press()
            }
            Phase::Verifying { until, recheck } => {
                let busy = seen.busy() && self.spec.evidence.contains(&Evidence::Busy);
                let cleared = self.spec.evidence.contains(&Evidence::ComposerCleared)
                    && self.output_since_key
                    && self.before_key.is_some_and(|b| !b.observed.is_idle())
                    && seen.observed.is_idle();
                if busy || cleared {
                    return Next::Done(Ended::Delivered { verified: true });
                }
                // While the text still shows, the recheck stands (an agent
                // slow to take the key still gets its time to show it took
                // it); once the screen moved on, only the deadline is left.
                let recheck = match recheck {
                    Some(at) if seen.observed.is_draft() => Some(at),
                    None if seen.observed.is_draft() && self.output_since_key => {
                        Some(now + Duration::from_millis(self.spec.recheck_ms))
                    }
                    _ => None,
                };
                self.phase = Phase::Verifying { until, recheck };
                Next::Wait
            }
            _ => Next::Wait,
        }
    }

    /// Remembers what the screen showed once the text was typed.
    fn note(&mut self, seen: Seen) {
        if self.typed_at.is_none()
            || matches!(self.phase, Phase::ClearKeys | Phase::Clearing { .. })
        {
            return;
        }
        self.busy_seen |= seen.busy();
        self.text_shown |= !seen.observed.is_idle();
    }

    /// At the verify deadline with no turn seen: press again, type again,
    /// or give up.
    fn verify_deadline(&mut self, seen: Seen, now: Instant) -> Next {
        let untouched = !self.text_shown
            && !self.busy_seen
            && seen.observed.is_idle()
            && self.first_key_screen == Some(seen.screen);
        if untouched && !self.retyped && !self.message.submit_only && self.verify {
            // The composer never showed the text, the key changed nothing:
            // the text did not reach the agent. Type it once more.
            tracing::info!(
                "message {}: the text never reached the composer; typing it again",
                self.message.id
            );
            self.retyped = true;
            self.presses = 0;
            self.first_key_screen = None;
            return self.type_text(now);
        }
        if self.presses <= self.spec.retries {
            return self.press_again(seen, "no turn started");
        }
        Next::Done(Ended::Stranded {
            reason: format!(
                "no turn started within {} ms of the submit key, pressed {} times",
                self.spec.verify_ms, self.presses
            ),
        })
    }

    fn press_again(&mut self, seen: Seen, why: &str) -> Next {
        if self.presses > self.spec.retries {
            // Out of presses: the verify deadline decides.
            if let Phase::Verifying { until, .. } = self.phase {
                self.phase = Phase::Verifying { until, recheck: None };
            }
            return Next::Wait;
        }
        tracing::info!(
            "message {}: {why} after key press {}; pressing again",
            self.message.id,
            self.presses
        );
        self.before_key = Some(seen);
        self.press()
    }

    /// After the clear keys: type once the composer reads empty, press
    /// them again while it still holds the draft.
    fn after_clear(&mut self, seen: Seen, deadline: bool) -> Next {
        if seen.observed.is_idle() {
            return self.type_text(Instant::now());
        }
        if seen.observed.is_draft() && self.clears < self.spec.clear_max {
            return self.clear();
        }
        if !deadline {
            return Next::Wait;
        }
        Next::Done(Ended::Stranded {
            reason: format!(
                "not typed: the composer held a draft, and after {} press(es) of the profile's \
                 clear_draft keys it reads {}",
                self.clears, seen.observed
            ),
        })
    }

    fn clear(&mut self) -> Next {
        self.clears += 1;
        self.phase = Phase::ClearKeys;
        Next::Write(self.spec.clear_draft.iter().flat_map(|s| s.bytes().to_vec()).collect())
    }

    fn type_text(&mut self, now: Instant) -> Next {
        self.typed_at.get_or_insert(now);
        self.phase = Phase::Typing;
        self.output_since_text = false;
        self.text_shown = false;
        let text = self.message.text.as_bytes();
        let bytes = if self.spec.mode == SubmitMode::Paste && self.bracketed {
            [b"\x1b[200~".as_slice(), text, b"\x1b[201~"].concat()
        } else {
            text.to_vec()
        };
        Next::Write(bytes)
    }

    /// Whether the bytes just asked for are the submit key.
    pub(crate) fn pressing(&self) -> bool {
        self.phase == Phase::Pressing
    }

    fn press(&mut self) -> Next {
        if self.presses == 0 {
            self.first_key_screen = self.before_key.map(|b| b.screen);
        }
        self.presses += 1;
        self.total_presses += 1;
        self.output_since_key = false;
        self.phase = Phase::Pressing;
        Next::Write(self.spec.key.bytes().to_vec())
    }

    /// How long a key press is given to show its effect: `verify_ms`, and
    /// as long again as the pause per KiB of the text (up to 10 s more): an
    /// agent takes in a large paste before it reads the key behind it, and
    /// on a loaded machine a 1 MiB paste took the mock agent 4 s.
    fn verify_window(&self) -> Duration {
        let kib = self.message.text.len() as u64 / 1024;
        let extra = (kib * self.spec.pause_per_kib_ms).min(MAX_EXTRA_VERIFY_MS);
        Duration::from_millis(self.spec.verify_ms + extra)
    }

    fn pause(&self) -> Duration {
        let kib = self.message.text.len() as u64 / 1024;
        let ms = self.spec.pause_ms + kib * self.spec.pause_per_kib_ms;
        Duration::from_millis(ms.min(self.spec.max_pause_ms))
    }
}

/// The most [`Delivery::verify_window`] grows for a large message.
const MAX_EXTRA_VERIFY_MS: u64 = 10_000;

/// What the session knows about whether the agent takes input.
#[derive(Debug, Clone)]
pub(crate) struct InputEvidence {
    /// The profile's `[input] modes` that are off right now.
    pub(crate) modes_off: Vec<TermMode>,
    /// How long the screen has read ready (composer empty) without a break.
    pub(crate) ready_for: Option<Duration>,
    /// No message has been typed into this run of the agent yet.
    pub(crate) first: bool,
    /// How long a message has been waiting for this evidence.
    pub(crate) waited: Duration,
}

/// Whether a message may be typed now (profile `[input]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Yes; why.
    Open { why: String },
    /// Not yet: look again after `recheck` (or when the screen changes).
    Wait { recheck: Option<Duration>, why: String },
}

/// Decides from the evidence whether the agent takes input: its terminal
/// modes are on, and (for the first message of a run) the screen has read
/// ready long enough; after `wait_max_ms` of waiting, yes regardless.
pub(crate) fn input_gate(spec: &InputSpec, ev: &InputEvidence) -> Gate {
    let bound = Duration::from_millis(spec.wait_max_ms);
    let mut missing = Vec::new();
    let mut recheck = None;
    if let Some(mode) = ev.modes_off.first() {
        missing.push(format!("{} is off", mode.describe()));
    }
    let settle = Duration::from_millis(spec.ready_after_start_ms);
    if ev.first && !settle.is_zero() {
        match ev.ready_for {
            Some(held) if held >= settle => {}
            Some(held) => {
                recheck = Some(settle - held);
                missing.push(format!(
                    "ready for {} ms of the {} ms it needs after start",
                    held.as_millis(),
                    settle.as_millis()
                ));
            }
            None => missing.push("the screen does not read ready".into()),
        }
    }
    if missing.is_empty() {
        let mut why: Vec<String> =
            spec.modes.iter().map(|m| format!("{} on", m.describe())).collect();
        if ev.first && !settle.is_zero() {
            why.push(format!("ready for at least {} ms after start", settle.as_millis()));
        }
        if why.is_empty() {
            why.push("the screen reads ready (the profile asks for nothing more)".into());
        }
        return Gate::Open { why: why.join("; ") };
    }
    if ev.waited >= bound {
        return Gate::Open {
            why: format!(
                "not confirmed after {} ms ({}): typing anyway",
                bound.as_millis(),
                missing.join("; ")
            ),
        };
    }
    let left = bound - ev.waited;
    Gate::Wait {
        recheck: Some(recheck.map_or(left, |r: Duration| r.min(left))),
        why: missing.join("; "),
    }
}

/// Makes text safe to type: no escape sequences or control characters
/// other than tab and newline (`\r\n` and `\r` become `\n`), so a message
/// cannot drive the agent's terminal or submit itself half way.
pub(crate) fn neutralise(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    text.chars().filter(|c| matches!(c, '\n' | '\t') || !(c.is_control())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::Step;
    use crate::state::BlockedKind;

    fn spec() -> SubmitSpec {
        SubmitSpec {
            mode: SubmitMode::Paste,
            key: SubmitSpec::default().key,
            pause_ms: 50,
            pause_per_kib_ms: 10,
            max_pause_ms: 500,
            verify_ms: 1000,
            recheck_ms: 300,
            retries: 1,
            evidence: vec![Evidence::Busy, Evidence::ComposerCleared],
            clear_draft: vec![Step::Text("\u{15}".into())],
            clear_max: 2,
        }
    }

    fn message(text: &str) -> Message {
        Message {
            id: "m1".into(),
            ts: "t".into(),
            text: text.into(),
            submit: true,
            submit_only: false,
            force: false,
            expires_at: None,
            source: "send".into(),
        }
    }

    fn seen(state: State, screen: u64) -> Seen {
        Seen { observed: Observed::plain(state), screen }
    }

    fn draft(screen: u64) -> Seen {
        Seen { observed: Observed { state: State::Ready, kind: Some(BlockedKind::Draft) }, screen }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Starts a delivery and brings it to the point just after the first
    /// key press was written, the text shown as `before`.
    fn pressed(text: &str, before: Seen, t0: Instant) -> Delivery {
        let (mut d, _) = Delivery::start(message(text), &spec(), true, true, false, t0);
        d.written(t0);
        d.output();
        assert_eq!(d.deadline_passed(before, t0 + ms(50)), Next::Write(b"\r".to_vec()));
        d.written(t0 + ms(50));
        d
    }

    #[test]
    fn pastes_pauses_presses_and_proves_a_busy_turn() {
        let t0 = Instant::now();
        let (mut d, next) = Delivery::start(message("fix it"), &spec(), true, true, false, t0);
        assert_eq!(next, Next::Write(b"\x1b[200~fix it\x1b[201~".to_vec()));
        assert_eq!(d.written(t0), Next::Wait);
        assert_eq!(d.deadline(), Some(t0 + ms(50)));
        d.output(); // the text shows in the composer
        assert_eq!(d.deadline_passed(draft(1), t0), Next::Write(b"\r".to_vec()));
        assert_eq!(d.written(t0), Next::Wait);
        assert_eq!(d.classified(seen(State::Unknown, 2), t0), Next::Wait, "no proof yet");
        assert_eq!(
            d.classified(seen(State::Busy, 3), t0),
            Next::Done(Ended::Delivered { verified: true })
        );
        assert_eq!(d.total_presses(), 1);
    }

    #[test]
    fn a_cleared_composer_proves_a_turn_but_only_after_output() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("run the tests"), &spec(), false, true, false, t0);
        d.written(t0);
        d.output();
        d.deadline_passed(draft(1), t0); // the composer holds the text
        d.written(t0);
        assert_eq!(d.classified(seen(State::Ready, 1), t0), Next::Wait, "no output yet");
        d.output();
        assert_eq!(
            d.classified(seen(State::Ready, 2), t0),
            Next::Done(Ended::Delivered { verified: true })
        );
    }

    #[test]
    fn ready_proves_nothing_when_the_text_never_showed() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("invisible"), &spec(), true, true, false, t0);
        d.written(t0);
        assert_eq!(d.deadline_passed(seen(State::Ready, 1), t0), Next::Wait, "the key waits");
        assert_eq!(
            d.deadline_passed(seen(State::Ready, 1), t0),
            Next::Write(b"\r".to_vec()),
            "up to a cap"
        );
        d.written(t0);
        d.output();
        assert_eq!(d.classified(seen(State::Ready, 2), t0), Next::Wait);
        assert_eq!(
            d.classified(seen(State::Busy, 3), t0),
            Next::Done(Ended::Delivered { verified: true })
        );
    }

    #[test]
    fn text_drawn_while_it_is_still_being_written_counts_as_shown() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("a long brief"), &spec(), false, true, false, t0);
        d.output(); // echoed before the last write was confirmed
        d.written(t0);
        assert_eq!(
            d.deadline_passed(seen(State::Unknown, 1), t0),
            Next::Write(b"\r".to_vec()),
            "the key goes in when the pause ends, not a verify deadline later"
        );
    }

    #[test]
    fn the_key_waits_for_a_slow_agent_to_show_the_text() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("slow"), &spec(), true, true, false, t0);
        d.written(t0);
        // The pause is over, the screen still reads ready: nothing drawn yet.
        assert_eq!(d.deadline_passed(seen(State::Ready, 1), t0), Next::Wait);
        assert!(d.deadline().is_some_and(|at| at >= t0 + ms(1000)));
        assert_eq!(d.classified(seen(State::Ready, 1), t0), Next::Wait, "a settle, no output");
        d.output();
        assert_eq!(d.classified(draft(2), t0), Next::Write(b"\r".to_vec()));
        d.written(t0);
        // A quick turn: the screen reads ready again, and that is proof now.
        d.output();
        assert_eq!(
            d.classified(seen(State::Ready, 3), t0),
            Next::Done(Ended::Delivered { verified: true })
        );
    }

    /// A quick turn drawn before the key's write is confirmed: its output
    /// counts, the cleared composer proves the turn, and the text is never
    /// typed again (it was, once, when this output was dropped).
    #[test]
    fn a_turn_that_answers_before_the_key_write_is_confirmed_is_proof() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("queued-9"), &spec(), true, true, false, t0);
        d.written(t0);
        d.output();
        assert_eq!(d.classified(draft(1), t0), Next::Wait);
        assert_eq!(d.deadline_passed(draft(1), t0 + ms(50)), Next::Write(b"\r".to_vec()));
        d.output(); // the whole turn, before `written`
        d.written(t0 + ms(60));
        assert_eq!(
            d.classified(seen(State::Ready, 2), t0 + ms(80)),
            Next::Done(Ended::Delivered { verified: true })
        );
    }

    #[test]
    fn a_swallowed_key_is_pressed_again_then_the_message_is_stranded() {
        let t0 = Instant::now();
        let mut d = pressed("hello", seen(State::Unknown, 1), t0);
        d.output();
        // The key became a newline in the composer: the text is still there.
        assert_eq!(d.classified(seen(State::Unknown, 2), t0), Next::Wait);
        assert_eq!(
            d.deadline_passed(seen(State::Unknown, 2), t0 + ms(1100)),
            Next::Write(b"\r".to_vec())
        );
        d.written(t0 + ms(1100));
        match d.deadline_passed(seen(State::Unknown, 2), t0 + ms(2200)) {
            Next::Done(Ended::Stranded { reason }) => assert!(reason.contains("pressed 2 times")),
            other => panic!("{other:?}"),
        }
    }

    /// Claude Code 2.1.197 on a busy machine ignores an Enter that comes
    /// within ~0.2 s of its first frame: the pasted text stays in the
    /// composer. Seen settled there, the key goes in again after
    /// `recheck_ms`, not after the whole `verify_ms`.
    #[test]
    fn an_ignored_key_is_pressed_again_once_the_text_is_seen_still_in_the_composer() {
        let t0 = Instant::now();
        let mut d = pressed("hello", draft(1), t0);
        let t1 = t0 + ms(50);
        assert_eq!(d.deadline(), Some(t1 + ms(300)), "the recheck comes first");
        d.output(); // a redraw: the composer still shows the text
        assert_eq!(d.classified(draft(1), t1 + ms(20)), Next::Wait);
        assert_eq!(d.deadline(), Some(t1 + ms(300)), "it stands");
        assert_eq!(d.deadline_passed(draft(1), t1 + ms(300)), Next::Write(b"\r".to_vec()));
        d.written(t1 + ms(330));
        d.output();
        assert_eq!(
            d.classified(seen(State::Busy, 2), t1 + ms(400)),
            Next::Done(Ended::Delivered { verified: true })
        );
        assert_eq!(d.total_presses(), 2);
    }

    /// An agent that ignores the key draws nothing at all: no settle, no
    /// classification. The recheck looks anyway.
    #[test]
    fn an_ignored_key_that_draws_nothing_is_pressed_again_at_the_recheck() {
        let t0 = Instant::now();
        let mut d = pressed("hello", draft(1), t0);
        let t1 = t0 + ms(50);
        assert_eq!(d.deadline_passed(draft(1), t1 + ms(300)), Next::Write(b"\r".to_vec()));
        d.written(t1 + ms(300));
        // This time the screen reads something else at the recheck: wait.
        assert_eq!(d.deadline_passed(seen(State::Unknown, 2), t1 + ms(600)), Next::Wait);
        assert_eq!(d.deadline(), Some(t1 + ms(1300)));
    }

    #[test]
    fn a_composer_that_emptied_before_the_recheck_is_not_pressed_again() {
        let t0 = Instant::now();
        let mut d = pressed("hello", draft(1), t0);
        let t1 = t0 + ms(50);
        d.output();
        d.classified(draft(1), t1 + ms(20));
        // Taken after all, late: the screen moved on, not yet busy.
        d.output();
        assert_eq!(d.classified(seen(State::Unknown, 2), t1 + ms(200)), Next::Wait);
        assert_eq!(d.deadline(), Some(t1 + ms(1000)), "no recheck left");
        assert_eq!(
            d.classified(seen(State::Busy, 3), t1 + ms(500)),
            Next::Done(Ended::Delivered { verified: true })
        );
        assert_eq!(d.total_presses(), 1);
    }

    /// Gemini CLI 0.61 drops a paste that arrives before its input handler
    /// is attached: nothing shows, the key changes nothing. That text
    /// never reached the agent, so it is typed once more.
    #[test]
    fn text_that_never_reached_the_agent_is_typed_once_more() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("dropped"), &spec(), true, true, false, t0);
        d.written(t0);
        d.deadline_passed(seen(State::Ready, 7), t0); // no echo: wait
        let t1 = t0 + ms(1100);
        assert_eq!(d.deadline_passed(seen(State::Ready, 7), t1), Next::Write(b"\r".to_vec()));
        d.written(t1);
        let typed = d.deadline_passed(seen(State::Ready, 7), t1 + ms(1000));
        assert_eq!(typed, Next::Write(b"\x1b[200~dropped\x1b[201~".to_vec()));
        d.written(t1 + ms(1000));
        d.output();
        assert_eq!(d.deadline_passed(draft(8), t1 + ms(1100)), Next::Write(b"\r".to_vec()));
        d.written(t1 + ms(1100));
        // Still nothing: no third typing, the key is pressed again instead.
        assert_eq!(d.deadline_passed(draft(8), t1 + ms(2200)), Next::Write(b"\r".to_vec()));
    }

    #[test]
    fn a_changed_screen_or_text_once_shown_rules_out_typing_again() {
        let t0 = Instant::now();
        // The screen changed (a quick turn may have come and gone), or the
        // text was in the composer before the key: press, never type.
        for (before, after) in
            [(seen(State::Ready, 7), seen(State::Ready, 9)), (draft(7), draft(7))]
        {
            let mut d = pressed("maybe", before, t0);
            assert_eq!(
                d.deadline_passed(after, t0 + ms(1100)),
                Next::Write(b"\r".to_vec()),
                "{before:?} then {after:?}"
            );
        }
    }

    #[test]
    fn a_draft_is_cleared_before_the_text_is_typed() {
        let t0 = Instant::now();
        let (mut d, next) = Delivery::start(message("nudge"), &spec(), true, true, true, t0);
        assert_eq!(next, Next::Write(b"\x15".to_vec()), "the clear keys first");
        assert_eq!(d.written(t0), Next::Wait);
        assert_eq!(d.classified(draft(1), t0), Next::Wait, "no output since the keys");
        d.output();
        assert_eq!(d.classified(draft(2), t0), Next::Write(b"\x15".to_vec()), "one more line");
        d.written(t0);
        d.output();
        assert_eq!(
            d.classified(seen(State::Ready, 3), t0),
            Next::Write(b"\x1b[200~nudge\x1b[201~".to_vec())
        );
    }

    #[test]
    fn a_draft_that_will_not_clear_strands_the_message_untyped() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("nudge"), &spec(), true, true, true, t0);
        for _ in 0..1 {
            d.written(t0);
            d.output();
            assert_eq!(d.classified(draft(1), t0), Next::Write(b"\x15".to_vec()));
        }
        d.written(t0);
        d.output();
        assert_eq!(d.classified(draft(1), t0), Next::Wait, "out of presses: wait");
        match d.deadline_passed(draft(1), t0 + ms(1000)) {
            Next::Done(Ended::Stranded { reason }) => {
                assert!(reason.starts_with("not typed: the composer held a draft"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_submit_only_types_and_forced_deliveries_are_not_verified() {
        let t0 = Instant::now();
        let mut m = message("draft");
        m.submit = false;
        let (mut d, _) = Delivery::start(m, &spec(), true, true, false, t0);
        assert_eq!(d.written(t0), Next::Done(Ended::Typed));

        let (mut d, _) = Delivery::start(message("steer"), &spec(), true, false, false, t0);
        d.written(t0);
        d.deadline_passed(seen(State::Busy, 1), t0);
        assert_eq!(d.written(t0), Next::Done(Ended::Delivered { verified: false }));
    }

    #[test]
    fn long_messages_pause_longer_up_to_a_cap() {
        let t0 = Instant::now();
        let (d, _) =
            Delivery::start(message(&"x".repeat(10 * 1024)), &spec(), true, true, false, t0);
        assert_eq!(d.pause(), ms(150));
        let (d, _) =
            Delivery::start(message(&"x".repeat(1024 * 1024)), &spec(), true, true, false, t0);
        assert_eq!(d.pause(), ms(500));
    }

    fn input(modes: Vec<TermMode>, ready_after_start_ms: u64) -> InputSpec {
        InputSpec { modes, ready_after_start_ms, wait_max_ms: 3000 }
    }

    fn evidence(modes_off: Vec<TermMode>, ready_ms: Option<u64>, first: bool) -> InputEvidence {
        InputEvidence { modes_off, ready_for: ready_ms.map(ms), first, waited: ms(100) }
    }

    /// Gemini CLI 0.61 draws its composer ~40 ms before it switches
    /// bracketed paste on with its input handler; a paste in between is
    /// dropped whole.
    #[test]
    fn no_text_is_typed_before_the_agent_switches_its_input_modes_on() {
        let spec = input(vec![TermMode::BracketedPaste], 0);
        let off = evidence(vec![TermMode::BracketedPaste], Some(500), true);
        match input_gate(&spec, &off) {
            Gate::Wait { recheck, why } => {
                assert_eq!(recheck, Some(ms(2900)), "bounded by wait_max_ms");
                assert_eq!(why, "bracketed paste (mode 2004) is off");
            }
            other => panic!("{other:?}"),
        }
        let on = evidence(vec![], Some(0), true);
        assert_eq!(
            input_gate(&spec, &on),
            Gate::Open { why: "bracketed paste (mode 2004) on".into() }
        );
        let mut late = off.clone();
        late.waited = ms(3000);
        assert!(
            matches!(input_gate(&spec, &late), Gate::Open { why } if why.contains("typing anyway"))
        );
    }

    /// Claude Code 2.1.197 ignores an Enter within ~0.2 s of its first
    /// frame on a busy machine.
    #[test]
    fn the_first_message_waits_until_the_screen_has_read_ready_long_enough() {
        let spec = input(vec![], 500);
        assert_eq!(
            input_gate(&spec, &evidence(vec![], Some(200), true)),
            Gate::Wait {
                recheck: Some(ms(300)),
                why: "ready for 200 ms of the 500 ms it needs after start".into()
            }
        );
        assert!(matches!(input_gate(&spec, &evidence(vec![], Some(500), true)), Gate::Open { .. }));
        assert!(
            matches!(input_gate(&spec, &evidence(vec![], Some(0), false)), Gate::Open { .. }),
            "later messages do not wait"
        );
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(neutralise("a\x1b[31mred\x1b[0m\r\nb\rc\x07\td"), "a[31mred[0m\nb\nc\td");
        assert_eq!(neutralise("naïve ✓\u{9b}x"), "naïve ✓x");
    }
}
