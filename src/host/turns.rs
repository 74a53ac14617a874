//! Turns of a screen-driven agent: opened when a delivered message (or the
//! agent going busy on its own) starts work, closed when the screen has
//! read `ready` long enough (DESIGN §3).
//!
//! A turn reins interrupted ends as soon as the agent stops working,
//! whatever its screen reads then: `ready`, `ready{draft}` (Claude Code
//! puts the interrupted prompt back into its composer), or a screen no rule
//! knows. Only busy and blocked keep it open.

use std::time::{Duration, Instant};

use crate::adapter::TurnSpec;
use crate::state::State;

/// The turn being worked on.
#[derive(Debug, Clone)]
pub(crate) struct OpenTurn {
    pub(crate) number: u64,
    /// The message that opened it, if one did.
    pub(crate) message_id: Option<String>,
    busy_seen: bool,
    /// reins interrupted it (`reins interrupt`, a watcher's nudge).
    pub(crate) interrupted: bool,
    /// When the turn counts as done if the screen stays ready.
    done_at: Option<Instant>,
    /// The first `done_at` since the screen last read busy, and the window
    /// it was armed with.
    first_done: Option<(Instant, Duration)>,
}

/// How much later than its first deadline a turn may end because the
/// screen kept changing while it read ready (see [`Turns::on_drawn`]).
const MAX_DRAW_WAIT: Duration = Duration::from_secs(2);

/// Turn bookkeeping for one run.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    /// Turns started in this run.
    pub(crate) count: u64,
    open: Option<OpenTurn>,
}

impl Turns {
    /// Opens the next turn; `busy` says whether the agent already reads busy.
    pub(crate) fn start(&mut self, message_id: Option<String>, busy: bool) -> u64 {
        self.count += 1;
        self.open = Some(OpenTurn {
            number: self.count,
            message_id,
            busy_seen: busy,
            interrupted: false,
            done_at: None,
            first_done: None,
        });
        self.count
    }

    /// reins interrupted the open turn: it ends once the agent stops
    /// working; returns its number.
    pub(crate) fn interrupt(&mut self) -> Option<u64> {
        let turn = self.open.as_mut()?;
        turn.interrupted = true;
        Some(turn.number)
    }

    pub(crate) fn open(&self) -> Option<&OpenTurn> {
        self.open.as_ref()
    }

    /// Follows the screen: busy (or blocked) keeps the turn going; ready
    /// arms the done timer, longer if busy was never seen (after an
    /// interrupt, any screen that is not busy or blocked arms it).
    pub(crate) fn on_state(&mut self, state: State, spec: &TurnSpec, now: Instant) {
        let Some(turn) = self.open.as_mut() else { return };
        match state {
            State::Busy | State::Blocked => {
                turn.busy_seen = true;
                turn.done_at = None;
                turn.first_done = None;
            }
            _ if state == State::Ready || turn.interrupted => {
                if turn.done_at.is_none() {
                    let ms = if turn.busy_seen {
                        spec.done_after_busy_ms
                    } else {
                        spec.done_without_busy_ms
                    };
                    let after = Duration::from_millis(ms);
                    turn.done_at = Some(now + after);
                    turn.first_done.get_or_insert((now + after, after));
                }
            }
            _ => turn.done_at = None,
        }
    }

    /// The agent drew something while its turn reads ready: the turn is
    /// done once the screen has also been quiet for the done window, so an
    /// answer still being drawn (Codex inserts its history after its
    /// composer is back, and on a loaded machine in pieces) is read whole.
    /// Never more than [`MAX_DRAW_WAIT`] past the first deadline: an agent
    /// that redraws all the time still ends its turns.
    pub(crate) fn on_drawn(&mut self, now: Instant) {
        let Some(turn) = self.open.as_mut() else { return };
        let (Some(done), Some((first, after))) = (turn.done_at, turn.first_done) else { return };
        turn.done_at = Some((now + after).max(done).min(first + MAX_DRAW_WAIT));
    }

    /// When the open turn will be done if nothing changes.
    pub(crate) fn done_deadline(&self) -> Option<Instant> {
        self.open.as_ref().and_then(|t| t.done_at)
    }

    /// Closes the open turn.
    pub(crate) fn finish(&mut self) -> Option<OpenTurn> {
        self.open.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_while_ready_moves_the_end_until_quiet_but_never_past_the_cap() {
        let spec = TurnSpec { done_after_busy_ms: 200, done_without_busy_ms: 1000 };
        let t0 = Instant::now();
        let ms = |n: u64| Duration::from_millis(n);
        let mut turns = Turns::default();
        turns.start(None, true);
        turns.on_state(State::Ready, &spec, t0);
        assert_eq!(turns.done_deadline(), Some(t0 + ms(200)));
        // The answer is still being drawn 150 ms in: 200 ms of quiet after it.
        turns.on_drawn(t0 + ms(150));
        assert_eq!(turns.done_deadline(), Some(t0 + ms(350)));
        // Output earlier than the deadline's window moves nothing back.
        turns.on_drawn(t0 + ms(10));
        assert_eq!(turns.done_deadline(), Some(t0 + ms(350)));
        // Drawing for ever: the turn still ends, 2 s after its first deadline.
        for n in 1..100 {
            turns.on_drawn(t0 + ms(100 * n));
        }
        assert_eq!(turns.done_deadline(), Some(t0 + ms(200) + MAX_DRAW_WAIT));
        // Busy again starts over.
        turns.on_state(State::Busy, &spec, t0 + ms(3000));
        turns.on_drawn(t0 + ms(3001));
        assert_eq!(turns.done_deadline(), None);
        turns.on_state(State::Ready, &spec, t0 + ms(4000));
        assert_eq!(turns.done_deadline(), Some(t0 + ms(4200)));
    }

    fn spec() -> TurnSpec {
        TurnSpec { done_after_busy_ms: 100, done_without_busy_ms: 1000 }
    }

    #[test]
    fn ready_after_busy_ends_a_turn_sooner_than_ready_alone() {
        let t0 = Instant::now();
        let mut turns = Turns::default();
        assert_eq!(turns.start(Some("m1".into()), false), 1);
        turns.on_state(State::Ready, &spec(), t0);
        assert_eq!(turns.done_deadline(), Some(t0 + Duration::from_millis(1000)));
        turns.on_state(State::Busy, &spec(), t0);
        assert_eq!(turns.done_deadline(), None, "busy again: not done");
        turns.on_state(State::Ready, &spec(), t0);
        assert_eq!(turns.done_deadline(), Some(t0 + Duration::from_millis(100)));
        let done = turns.finish().unwrap();
        assert_eq!((done.number, done.message_id.as_deref()), (1, Some("m1")));
        assert_eq!(turns.start(None, true), 2);
    }

    /// Claude Code puts an interrupted prompt back into its composer; a
    /// screen no rule knew then held the turn open for good (issue 22).
    #[test]
    fn an_interrupted_turn_ends_on_any_screen_that_is_not_busy() {
        let t0 = Instant::now();
        let mut turns = Turns::default();
        turns.start(Some("m1".into()), true);
        turns.on_state(State::Unknown, &spec(), t0);
        assert_eq!(turns.done_deadline(), None);
        assert_eq!(turns.interrupt(), Some(1));
        turns.on_state(State::Busy, &spec(), t0);
        assert_eq!(turns.done_deadline(), None, "still working");
        turns.on_state(State::Unknown, &spec(), t0);
        assert_eq!(turns.done_deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(turns.finish().unwrap().interrupted);
    }

    #[test]
    fn unknown_screens_hold_a_turn_open() {
        let t0 = Instant::now();
        let mut turns = Turns::default();
        turns.start(None, true);
        turns.on_state(State::Ready, &spec(), t0);
        turns.on_state(State::Unknown, &spec(), t0);
        assert_eq!(turns.done_deadline(), None);
    }
}
