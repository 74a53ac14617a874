//! Delivering one message to a screen-driven agent, verified (DESIGN §3).
//!
//! Text (bracketed paste when the agent enabled it), a pause, the submit
//! key, then proof within a deadline that a turn started: the screen reads
//! busy, or the composer that held the message reads empty again. No
//! proof: press the key again, a bounded number of times, then give up and
//! call the message stranded. Never "delivered" without the proof.
//!
//! The key waits for the agent to show the text (any output after it, then
//! the screen settling), up to the verification deadline: an agent slow to
//! draw — a busy machine, two hundred sessions at once — must not get the
//! key while its screen still reads ready, or a quick turn would leave no
//! proof behind (ready before, ready after) and be called stranded.
//!
//! This is a state machine without I/O: the session feeds it what happened
//! (bytes written, deadlines, output, classifications) and does what it
//! says next.

use std::time::{Duration, Instant};

use crate::adapter::{Evidence, SubmitMode, SubmitSpec};
use crate::state::State;
use crate::store::inbox::Message;

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
    /// Submitted, but no turn started.
    Stranded { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
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
    },
}

/// One message on its way into the agent.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) message: Message,
    spec: SubmitSpec,
    /// False when the agent was busy and the sender forced the message in:
    /// there is no turn start to prove.
    verify: bool,
    phase: Phase,
    presses: u32,
    /// How the screen read just before the first key press.
    state_before_key: State,
    /// The agent wrote something after the text was typed.
    output_since_text: bool,
    output_since_key: bool,
}

impl Delivery {
    /// Starts delivering `message`. `bracketed` says whether the agent
    /// enabled bracketed paste; `verify` whether a turn start must be seen.
    pub(crate) fn start(
        message: Message,
        spec: &SubmitSpec,
        bracketed: bool,
        verify: bool,
    ) -> (Delivery, Next) {
        let mut delivery = Delivery {
            spec: spec.clone(),
            verify,
            phase: Phase::Typing,
            presses: 0,
            state_before_key: State::Unknown,
            output_since_text: false,
            output_since_key: false,
            message,
        };
        let next = if delivery.message.submit_only {
            delivery.press()
        } else {
            let text = delivery.message.text.as_bytes();
            let bytes = if spec.mode == SubmitMode::Paste && bracketed {
                [b"\x1b[200~".as_slice(), text, b"\x1b[201~"].concat()
            } else {
                text.to_vec()
            };
            Next::Write(bytes)
        };
        (delivery, next)
    }

    /// The bytes asked for were written to the agent.
    pub(crate) fn written(&mut self, now: Instant) -> Next {
        match self.phase {
            Phase::Typing if !self.message.submit => Next::Done(Ended::Typed),
            Phase::Typing => {
                self.phase = Phase::Pausing { until: now + self.pause() };
                Next::Wait
            }
            Phase::Pressing if !self.verify => Next::Done(Ended::Delivered { verified: false }),
            Phase::Pressing => {
                self.output_since_key = false;
                let verify = Duration::from_millis(self.spec.verify_ms);
                self.phase = Phase::Verifying { until: now + verify };
                Next::Wait
            }
            _ => Next::Wait,
        }
    }

    /// The deadline this delivery waits for, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Pausing { until }
            | Phase::AwaitingEcho { until }
            | Phase::Verifying { until } => Some(until),
            _ => None,
        }
    }

    /// The deadline passed. `state_now` is how the screen reads now.
    pub(crate) fn deadline_passed(&mut self, state_now: State) -> Next {
        match self.phase {
            // Only a verified delivery needs a screen that showed the text;
            // a forced one goes into a busy agent that may not draw it.
            Phase::Pausing { .. } if self.verify && !self.output_since_text => {
                let verify = Duration::from_millis(self.spec.verify_ms);
                self.phase = Phase::AwaitingEcho { until: Instant::now() + verify };
                Next::Wait
            }
            Phase::Pausing { .. } | Phase::AwaitingEcho { .. } => {
                self.state_before_key = state_now;
                self.press()
            }
            Phase::Verifying { .. } if self.presses <= self.spec.retries => {
                tracing::info!(
                    "message {}: no turn started after key press {}; pressing again",
                    self.message.id,
                    self.presses
                );
                self.press()
            }
            Phase::Verifying { .. } => Next::Done(Ended::Stranded {
                reason: format!(
                    "no turn started within {} ms of the submit key, pressed {} times",
                    self.spec.verify_ms, self.presses
                ),
            }),
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
            Phase::Verifying { .. } => self.output_since_key = true,
            Phase::Pressing => {}
        }
    }

    /// The screen settled and was classified.
    pub(crate) fn classified(&mut self, state: State) -> Next {
        if matches!(self.phase, Phase::AwaitingEcho { .. }) && self.output_since_text {
            // The text is on screen now (or whatever the agent drew).
            self.state_before_key = state;
            return self.press();
        }
        if !matches!(self.phase, Phase::Verifying { .. }) {
            return Next::Wait;
        }
        let busy = matches!(state, State::Busy | State::Blocked)
            && self.spec.evidence.contains(&Evidence::Busy);
        let cleared = self.spec.evidence.contains(&Evidence::ComposerCleared)
            && self.output_since_key
            && self.state_before_key != State::Ready
            && state == State::Ready;
        if busy || cleared { Next::Done(Ended::Delivered { verified: true }) } else { Next::Wait }
    }

    fn press(&mut self) -> Next {
        self.presses += 1;
        self.phase = Phase::Pressing;
        Next::Write(self.spec.key.bytes().to_vec())
    }

    fn pause(&self) -> Duration {
        let kib = self.message.text.len() as u64 / 1024;
        let ms = self.spec.pause_ms + kib * self.spec.pause_per_kib_ms;
        Duration::from_millis(ms.min(self.spec.max_pause_ms))
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

    fn spec() -> SubmitSpec {
        SubmitSpec {
            mode: SubmitMode::Paste,
            key: SubmitSpec::default().key,
            pause_ms: 50,
            pause_per_kib_ms: 10,
            max_pause_ms: 500,
            verify_ms: 1000,
            retries: 1,
            evidence: vec![Evidence::Busy, Evidence::ComposerCleared],
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

    #[test]
    fn pastes_pauses_presses_and_proves_a_busy_turn() {
        let t0 = Instant::now();
        let (mut d, next) = Delivery::start(message("fix it"), &spec(), true, true);
        assert_eq!(next, Next::Write(b"\x1b[200~fix it\x1b[201~".to_vec()));
        assert_eq!(d.written(t0), Next::Wait);
        assert_eq!(d.deadline(), Some(t0 + Duration::from_millis(50)));
        d.output(); // the text shows in the composer
        assert_eq!(d.deadline_passed(State::Unknown), Next::Write(b"\r".to_vec()));
        assert_eq!(d.written(t0), Next::Wait);
        assert_eq!(d.classified(State::Unknown), Next::Wait, "no proof yet");
        assert_eq!(d.classified(State::Busy), Next::Done(Ended::Delivered { verified: true }));
    }

    #[test]
    fn a_cleared_composer_proves_a_turn_but_only_after_output() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("run the tests"), &spec(), false, true);
        d.written(t0);
        d.output();
        d.deadline_passed(State::Unknown); // the composer holds the text
        d.written(t0);
        assert_eq!(d.classified(State::Ready), Next::Wait, "no output yet");
        d.output();
        assert_eq!(d.classified(State::Ready), Next::Done(Ended::Delivered { verified: true }));
    }

    #[test]
    fn ready_proves_nothing_when_the_text_never_showed() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("invisible"), &spec(), true, true);
        d.written(t0);
        assert_eq!(d.deadline_passed(State::Ready), Next::Wait, "no echo yet: the key waits");
        assert_eq!(d.deadline_passed(State::Ready), Next::Write(b"\r".to_vec()), "up to a cap");
        d.written(t0);
        d.output();
        assert_eq!(d.classified(State::Ready), Next::Wait);
        assert_eq!(d.classified(State::Busy), Next::Done(Ended::Delivered { verified: true }));
    }

    #[test]
    fn text_drawn_while_it_is_still_being_written_counts_as_shown() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("a long brief"), &spec(), false, true);
        d.output(); // echoed before the last write was confirmed
        d.written(t0);
        assert_eq!(
            d.deadline_passed(State::Unknown),
            Next::Write(b"\r".to_vec()),
            "the key goes in when the pause ends, not a verify deadline later"
        );
    }

    #[test]
    fn the_key_waits_for_a_slow_agent_to_show_the_text() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("slow"), &spec(), true, true);
        d.written(t0);
        // The pause is over, the screen still reads ready: nothing drawn yet.
        assert_eq!(d.deadline_passed(State::Ready), Next::Wait);
        assert!(d.deadline().is_some_and(|at| at >= t0 + Duration::from_millis(1000)));
        assert_eq!(d.classified(State::Ready), Next::Wait, "a settle without output");
        d.output();
        assert_eq!(d.classified(State::Unknown), Next::Write(b"\r".to_vec()));
        d.written(t0);
        // A quick turn: the screen reads ready again, and that is proof now.
        d.output();
        assert_eq!(d.classified(State::Ready), Next::Done(Ended::Delivered { verified: true }));
    }

    #[test]
    fn a_swallowed_key_is_pressed_again_then_the_message_is_stranded() {
        let t0 = Instant::now();
        let (mut d, _) = Delivery::start(message("hello"), &spec(), true, true);
        d.written(t0);
        d.output();
        d.deadline_passed(State::Unknown);
        d.written(t0);
        d.output();
        // The key became a newline in the composer: the text is still there.
        assert_eq!(d.classified(State::Unknown), Next::Wait);
        assert_eq!(d.deadline_passed(State::Unknown), Next::Write(b"\r".to_vec()));
        d.written(t0);
        match d.deadline_passed(State::Unknown) {
            Next::Done(Ended::Stranded { reason }) => assert!(reason.contains("pressed 2 times")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_submit_only_types_and_forced_deliveries_are_not_verified() {
        let t0 = Instant::now();
        let mut m = message("draft");
        m.submit = false;
        let (mut d, _) = Delivery::start(m, &spec(), true, true);
        assert_eq!(d.written(t0), Next::Done(Ended::Typed));

        let (mut d, _) = Delivery::start(message("steer"), &spec(), true, false);
        d.written(t0);
        d.deadline_passed(State::Busy);
        assert_eq!(d.written(t0), Next::Done(Ended::Delivered { verified: false }));
    }

    #[test]
    fn long_messages_pause_longer_up_to_a_cap() {
        let (d, _) = Delivery::start(message(&"x".repeat(10 * 1024)), &spec(), true, true);
        assert_eq!(d.pause(), Duration::from_millis(150));
        let (d, _) = Delivery::start(message(&"x".repeat(1024 * 1024)), &spec(), true, true);
        assert_eq!(d.pause(), Duration::from_millis(500));
    }

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(neutralise("a\x1b[31mred\x1b[0m\r\nb\rc\x07\td"), "a[31mred[0m\nb\nc\td");
        assert_eq!(neutralise("naïve ✓\u{9b}x"), "naïve ✓x");
    }
}
