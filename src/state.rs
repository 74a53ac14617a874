//! The session state machine's vocabulary (DESIGN §3).
//!
//! `starting → ready ⇄ busy`, `blocked{kind}`, `unknown`, `disconnected`,
//! `exited`. Adapters yield these; the host records every change as a `state`
//! event and in `session.json`.
//!
//! A state may carry a kind: why a `blocked` session is blocked, or, for
//! `ready`, that the composer holds a draft (`ready{draft}`: the agent is at
//! its prompt and takes input, but text someone typed, or a prompt the agent
//! put back after an interrupt, waits there unsent). A message is never
//! typed after a draft: delivery clears it first (the profile's
//! `submit.clear_draft` keys) or does not start.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the agent is doing, as far as reins can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Launched; no screen rule has matched yet.
    Starting,
    /// Waiting for input.
    Ready,
    /// Working on a turn.
    Busy,
    /// Waiting on a person: an approval, a trust dialog, a login, a rate limit.
    Blocked,
    /// Nothing reliable on screen; reins will not guess.
    Unknown,
    /// The structured transport was lost while the process lives.
    Disconnected,
    /// The agent process is gone.
    Exited,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Ready => "ready",
            State::Busy => "busy",
            State::Blocked => "blocked",
            State::Unknown => "unknown",
            State::Disconnected => "disconnected",
            State::Exited => "exited",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of a state it is: why a `blocked` session is blocked, or
/// (`draft`, with `ready` only) that its composer holds unsent text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BlockedKind {
    Approval,
    Trust,
    Dialog,
    Auth,
    RateLimit,
    /// Ready, with text in the composer (`ready{draft}`).
    Draft,
}

impl BlockedKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BlockedKind::Approval => "approval",
            BlockedKind::Trust => "trust",
            BlockedKind::Dialog => "dialog",
            BlockedKind::Auth => "auth",
            BlockedKind::RateLimit => "rate_limit",
            BlockedKind::Draft => "draft",
        }
    }
}

/// A state together with its blocked kind, e.g. `blocked{approval}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Observed {
    pub(crate) state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<BlockedKind>,
}

impl Observed {
    pub(crate) const fn plain(state: State) -> Self {
        Observed { state, kind: None }
    }

    /// Ready with an empty composer: a message can be typed right away.
    pub(crate) fn is_idle(self) -> bool {
        self.state == State::Ready && self.kind.is_none()
    }

    /// Ready, with a draft waiting in the composer.
    pub(crate) fn is_draft(self) -> bool {
        self.state == State::Ready && self.kind == Some(BlockedKind::Draft)
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{}{{{}}}", self.state, kind.as_str()),
            None => write!(f, "{}", self.state),
        }
    }
}
