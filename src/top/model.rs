//! What the dashboard knows: the sessions (as `status --json` sees them),
//! the selected one's screen and last events, the dispatches and chains,
//! and what the person at the keyboard is doing (typing a message, a
//! filter, answering a question). Changed only by [`Model`]'s methods; the
//! drawing reads it.

use std::time::Instant;

use crate::control::status::SessionInfo;

/// Which list the dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Sessions,
    Dispatches,
    Chains,
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    /// Typing a message for the selected session.
    Compose(String),
    /// Typing the filter.
    Filter(String),
    /// Asking before something that cannot be undone.
    Confirm(Confirm),
    Help,
}

/// A question the dashboard asks before acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Confirm {
    Stop { scope: String, id: String },
}

/// A row of the dispatches view: one dispatch and its attempts.
#[derive(Debug, Clone, Default)]
pub(crate) struct DispatchRow {
    pub(crate) id: String,
    /// `agent rung result verdict: feedback` per attempt, oldest first.
    pub(crate) attempts: Vec<String>,
    /// The last attempt's result (`running`, `accepted`, …).
    pub(crate) result: String,
}

/// A row of the chains view: one chain and its steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainRow {
    pub(crate) id: String,
    pub(crate) status: String,
    /// `step: result (tasks)` per step.
    pub(crate) steps: Vec<String>,
    /// The last gate decisions, newest last.
    pub(crate) gates: Vec<String>,
}

/// The dashboard's state.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) view: View,
    pub(crate) sessions: Vec<SessionInfo>,
    /// The selected session, by (scope, id): it stays selected when the
    /// list around it changes.
    pub(crate) selected: Option<(String, String)>,
    pub(crate) filter: String,
    pub(crate) mode: Mode,
    /// The selected session's screen, row by row.
    pub(crate) screen: Vec<String>,
    /// The selected session's last events, one line each.
    pub(crate) events: Vec<String>,
    pub(crate) dispatches: Vec<DispatchRow>,
    pub(crate) chains: Vec<ChainRow>,
    pub(crate) selected_dispatch: usize,
    pub(crate) selected_chain: usize,
    /// A word for the person (what an action did), and since when.
    pub(crate) message: Option<(String, Instant)>,
    /// Colour is allowed (not `NO_COLOR`).
    pub(crate) color: bool,
    pub(crate) quit: bool,
}

impl Model {
    pub(crate) fn new(color: bool) -> Model {
        Model {
            view: View::Sessions,
            sessions: Vec::new(),
            selected: None,
            filter: String::new(),
            mode: Mode::Normal,
            screen: Vec::new(),
            events: Vec::new(),
            dispatches: Vec::new(),
            chains: Vec::new(),
            selected_dispatch: 0,
            selected_chain: 0,
            message: None,
            color,
            quit: false,
        }
    }

    /// The sessions the filter lets through, grouped by repository (its
    /// root, else its scope), oldest first within a group.
    pub(crate) fn visible(&self) -> Vec<&SessionInfo> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&SessionInfo> = self
            .sessions
            .iter()
            .filter(|s| needle.is_empty() || haystack(s).contains(&needle))
            .collect();
        rows.sort_by(|a, b| {
            (group_of(a), &a.started_at, &a.id).cmp(&(group_of(b), &b.started_at, &b.id))
        });
        rows
    }

    /// Replaces the session list; keeps the selection if the session is
    /// still there, else selects the first visible one.
    pub(crate) fn set_sessions(&mut self, sessions: Vec<SessionInfo>) {
        self.sessions = sessions;
        self.keep_selection();
    }

    /// Puts one session's fresh row in place (or adds it).
    pub(crate) fn update_session(&mut self, info: SessionInfo) {
        match self.sessions.iter_mut().find(|s| s.scope == info.scope && s.id == info.id) {
            Some(row) => *row = info,
            None => self.sessions.push(info),
        }
        self.keep_selection();
    }

    /// The filter or the list changed: keep the selection if it is still
    /// shown.
    pub(crate) fn refilter(&mut self) {
        self.keep_selection();
    }

    fn keep_selection(&mut self) {
        let visible = self.visible();
        let still = self
            .selected
            .as_ref()
            .is_some_and(|(scope, id)| visible.iter().any(|s| &s.scope == scope && &s.id == id));
        if !still {
            let first = visible.first().map(|s| (s.scope.clone(), s.id.clone()));
            if first != self.selected {
                self.selected = first;
                self.screen.clear();
                self.events.clear();
            }
        }
    }

    /// Moves the selection `by` rows (negative: up) in the current view.
    pub(crate) fn move_selection(&mut self, by: isize) {
        match self.view {
            View::Sessions => {
                let visible = self.visible();
                if visible.is_empty() {
                    return;
                }
                let at = self
                    .selected
                    .as_ref()
                    .and_then(|(scope, id)| {
                        visible.iter().position(|s| &s.scope == scope && &s.id == id)
                    })
                    .unwrap_or(0);
                let to = step(at, by, visible.len());
                let next = (visible[to].scope.clone(), visible[to].id.clone());
                if self.selected.as_ref() != Some(&next) {
                    self.selected = Some(next);
                    self.screen.clear();
                    self.events.clear();
                }
            }
            View::Dispatches => {
                self.selected_dispatch =
                    step(self.selected_dispatch, by, self.dispatches.len().max(1));
            }
            View::Chains => {
                self.selected_chain = step(self.selected_chain, by, self.chains.len().max(1));
            }
        }
    }

    /// Selects the `n`th visible session (a mouse click on its row).
    pub(crate) fn select_row(&mut self, n: usize) {
        let visible = self.visible();
        if let Some(s) = visible.get(n) {
            let key = (s.scope.clone(), s.id.clone());
            if self.selected.as_ref() != Some(&key) {
                self.selected = Some(key);
                self.screen.clear();
                self.events.clear();
            }
        }
    }

    pub(crate) fn say(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Instant::now()));
    }

    /// How many sessions are in each state, for the title.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for s in &self.sessions {
            let state = display_state(s);
            match counts.iter_mut().find(|(k, _)| *k == state) {
                Some((_, n)) => *n += 1,
                None => counts.push((state, 1)),
            }
        }
        counts.sort();
        counts
    }
}

/// `state` or `state{kind}`.
pub(crate) fn display_state(s: &SessionInfo) -> String {
    match &s.kind {
        Some(kind) => format!("{}{{{kind}}}", s.state),
        None => s.state.clone(),
    }
}

/// The repository a session belongs to, for grouping.
pub(crate) fn group_of(s: &SessionInfo) -> String {
    match &s.repo_root {
        Some(root) => root.display().to_string(),
        None => format!("({})", s.scope),
    }
}

fn haystack(s: &SessionInfo) -> String {
    let mut text = format!("{} {} {}", s.id, s.agent.as_deref().unwrap_or(""), display_state(s));
    for part in [s.description.as_deref(), s.cwd.as_deref().and_then(|c| c.to_str())] {
        text.push(' ');
        text.push_str(part.unwrap_or(""));
    }
    text.to_lowercase()
}

fn step(at: usize, by: isize, len: usize) -> usize {
    (at as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize
}
