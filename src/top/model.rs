//! What the dashboard knows: the sessions (as `status --json` sees them,
//! this machine's and, with `--hosts`, other machines'), the selected one's
//! screen and last events, the dispatches and chains, and what the person
//! at the keyboard is doing (typing a message, a filter, answering a
//! question). Changed only by [`Model`]'s methods; the drawing reads it.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;

use crate::control::status::SessionInfo;

/// A session, wherever it runs: `host` is `None` for this machine.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) host: Option<String>,
    pub(crate) scope: String,
    pub(crate) id: String,
}

impl Key {
    pub(crate) fn local(scope: &str, id: &str) -> Key {
        Key { host: None, scope: scope.to_string(), id: id.to_string() }
    }

    /// `id`, or `id@host` for another machine's session.
    pub(crate) fn label(&self) -> String {
        match &self.host {
            Some(host) => format!("{}@{host}", self.id),
            None => self.id.clone(),
        }
    }
}

/// One row of the table: what `status --json` says of a session, read
/// the same way whether it came from this machine's files or from another
/// machine's `reins status --all --json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// `None`: this machine.
    pub(crate) host: Option<String>,
    pub(crate) id: String,
    pub(crate) scope: String,
    pub(crate) agent: Option<String>,
    pub(crate) state: String,
    pub(crate) kind: Option<String>,
    pub(crate) turn: u64,
    pub(crate) idle_s: Option<f64>,
    pub(crate) started_at: Option<String>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) repo_root: Option<PathBuf>,
    pub(crate) description: Option<String>,
    pub(crate) tmux_pane: Option<String>,
    /// The worktree's branch (`run --worktree`).
    pub(crate) branch: Option<String>,
    /// Total tokens the transport reported.
    pub(crate) tokens: Option<u64>,
    /// The session's directory on its machine.
    pub(crate) session_dir: Option<PathBuf>,
}

impl Row {
    /// This machine's session (from its fields, not its JSON: a path that
    /// is not UTF-8 has no JSON form).
    pub(crate) fn local(info: &SessionInfo) -> Row {
        Row {
            host: None,
            id: info.id.clone(),
            scope: info.scope.clone(),
            agent: info.agent.clone(),
            state: info.state.clone(),
            kind: info.kind.clone(),
            turn: info.turn,
            idle_s: info.idle_s,
            started_at: info.started_at.clone(),
            cwd: info.cwd.clone(),
            repo_root: info.repo_root.clone(),
            description: info.description.clone(),
            tmux_pane: info.tmux.as_ref().map(|t| t.pane.clone()),
            branch: info.worktree.as_ref().map(|w| w.branch.clone()),
            tokens: info.usage.as_ref().and_then(tokens),
            session_dir: Some(info.session_dir.clone()),
        }
    }

    /// A row of `status --json` (from `host`, `None` for this machine).
    pub(crate) fn from_json(host: Option<&str>, v: &Value) -> Row {
        let text = |key: &str| v[key].as_str().map(str::to_string);
        let path = |key: &str| v[key].as_str().map(PathBuf::from);
        Row {
            host: host.map(str::to_string),
            id: text("id").unwrap_or_default(),
            scope: text("scope").unwrap_or_default(),
            agent: text("agent"),
            state: text("state").unwrap_or_else(|| "unknown".into()),
            kind: text("kind"),
            turn: v["turn"].as_u64().unwrap_or(0),
            idle_s: v["idle_s"].as_f64(),
            started_at: text("started_at"),
            cwd: path("cwd"),
            repo_root: path("repo_root"),
            description: text("description"),
            tmux_pane: v["tmux"]["pane"].as_str().map(str::to_string),
            branch: v["worktree"]["branch"].as_str().map(str::to_string),
            tokens: tokens(&v["usage"]),
            session_dir: path("session_dir"),
        }
    }

    pub(crate) fn key(&self) -> Key {
        Key { host: self.host.clone(), scope: self.scope.clone(), id: self.id.clone() }
    }

    fn is(&self, key: &Key) -> bool {
        self.host == key.host && self.scope == key.scope && self.id == key.id
    }

    /// The same row but for the time it has been idle, which changes on
    /// every read (the clock's tick shows it; it is no reason to redraw).
    fn same_but_idle(&self, other: &Row) -> bool {
        Row { idle_s: None, ..self.clone() } == Row { idle_s: None, ..other.clone() }
    }
}

/// What the dashboard knows of another machine (`--hosts`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Remote {
    pub(crate) name: String,
    pub(crate) status: Reach,
}

/// Whether a host answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reach {
    /// Asked, no answer yet.
    Asking,
    /// Its last `status` answered.
    Up,
    /// Its last `status` failed: why.
    Down(String),
}

/// A line of the sessions table, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    /// A group's header: the host (`None`: this machine) and repository.
    Group { host: Option<String>, repo: String },
    /// The `n`th of [`Model::visible`].
    Session(usize),
    /// A host with no rows to show: why (an error, or no sessions there).
    Host { name: String, text: String, error: bool },
}

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
    Stop(Key),
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
    /// Every machine's sessions: this one's first, then each host's.
    pub(crate) sessions: Vec<Row>,
    /// The other machines (`--hosts`), in the order given; empty without.
    pub(crate) remotes: Vec<Remote>,
    /// The selected session: it stays selected when the list around it
    /// changes.
    pub(crate) selected: Option<Key>,
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
            remotes: Vec::new(),
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

    /// Whether the dashboard shows several machines (`--hosts`).
    pub(crate) fn fleet(&self) -> bool {
        !self.remotes.is_empty()
    }

    /// The sessions the filter lets through: this machine's first, then
    /// each host's in the order given; within one, grouped by repository
    /// (its root, else its scope), oldest first within a group.
    pub(crate) fn visible(&self) -> Vec<&Row> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&Row> = self
            .sessions
            .iter()
            .filter(|s| needle.is_empty() || haystack(s).contains(&needle))
            .collect();
        let rank = |s: &Row| match &s.host {
            None => 0,
            Some(h) => 1 + self.remotes.iter().position(|r| &r.name == h).unwrap_or(usize::MAX - 1),
        };
        rows.sort_by(|a, b| {
            (rank(a), group_of(a), &a.started_at, &a.id).cmp(&(
                rank(b),
                group_of(b),
                &b.started_at,
                &b.id,
            ))
        });
        rows
    }

    /// The table's lines in order: a header before each group's rows, and
    /// in its place a line for each host that shows no row (why: it is
    /// down, not answered yet, or has no sessions).
    pub(crate) fn lines(&self) -> Vec<Line> {
        let visible = self.visible();
        let mut lines = Vec::new();
        let mut group: Option<(Option<&str>, String)> = None;
        if self.fleet() && !visible.iter().any(|s| s.host.is_none()) {
            let text = if self.sessions.iter().any(|s| s.host.is_none()) {
                "no session matches the filter"
            } else {
                "no sessions"
            };
            lines.push(Line::Host { name: "local".into(), text: text.into(), error: false });
        }
        let mut next_remote = 0;
        for (i, s) in visible.iter().enumerate() {
            if let Some(host) = &s.host {
                let at = self.remotes.iter().position(|r| &r.name == host).unwrap_or(0);
                while next_remote < at {
                    self.host_line(&mut lines, next_remote);
                    next_remote += 1;
                }
                next_remote = next_remote.max(at + 1);
            }
            let g = (s.host.as_deref(), group_of(s));
            if group.as_ref() != Some(&g) {
                lines.push(Line::Group { host: s.host.clone(), repo: g.1.clone() });
                group = Some(g);
            }
            lines.push(Line::Session(i));
        }
        while next_remote < self.remotes.len() {
            self.host_line(&mut lines, next_remote);
            next_remote += 1;
        }
        lines
    }

    /// The line of host `n`, which has no visible rows.
    fn host_line(&self, lines: &mut Vec<Line>, n: usize) {
        let r = &self.remotes[n];
        let (text, error) = match &r.status {
            Reach::Asking => ("asking…".to_string(), false),
            Reach::Down(why) => (why.clone(), true),
            Reach::Up if self.sessions.iter().any(|s| s.host.as_ref() == Some(&r.name)) => {
                ("no session matches the filter".to_string(), false)
            }
            Reach::Up => ("no sessions".to_string(), false),
        };
        lines.push(Line::Host { name: r.name.clone(), text, error });
    }

    /// Replaces this machine's sessions; keeps the selection if the
    /// session is still there, else selects the first visible one.
    pub(crate) fn set_sessions(&mut self, sessions: Vec<Row>) {
        self.sessions.retain(|s| s.host.is_some());
        self.sessions.extend(sessions);
        self.keep_selection();
    }

    /// Puts one session's fresh row in place (or adds it).
    pub(crate) fn update_session(&mut self, row: Row) {
        let key = row.key();
        match self.sessions.iter_mut().find(|s| s.is(&key)) {
            Some(old) => *old = row,
            None => self.sessions.push(row),
        }
        self.keep_selection();
    }

    /// Takes this machine's session out of the list (it exited).
    pub(crate) fn remove_session(&mut self, key: &Key) {
        self.sessions.retain(|s| !s.is(key));
        self.keep_selection();
    }

    /// What host `name` answered: its rows, or why it could not. Returns
    /// whether anything on screen changes (not when only idle times did).
    pub(crate) fn set_host(&mut self, name: &str, answer: Result<Vec<Row>, String>) -> bool {
        let Some(at) = self.remotes.iter().position(|r| r.name == name) else { return false };
        let (status, rows) = match answer {
            Ok(rows) => (Reach::Up, rows),
            // A host that cannot be reached shows its error, not rows that
            // may no longer be true.
            Err(why) => (Reach::Down(why), Vec::new()),
        };
        let old: Vec<&Row> =
            self.sessions.iter().filter(|s| s.host.as_deref() == Some(name)).collect();
        let same = self.remotes[at].status == status
            && old.len() == rows.len()
            && old.iter().zip(&rows).all(|(a, b)| a.same_but_idle(b));
        self.remotes[at].status = status;
        self.sessions.retain(|s| s.host.as_deref() != Some(name));
        self.sessions.extend(rows);
        self.keep_selection();
        !same
    }

    /// The selected session's row.
    pub(crate) fn selected_row(&self) -> Option<&Row> {
        let key = self.selected.as_ref()?;
        self.sessions.iter().find(|s| s.is(key))
    }

    /// The filter or the list changed: keep the selection if it is still
    /// shown.
    pub(crate) fn refilter(&mut self) {
        self.keep_selection();
    }

    fn keep_selection(&mut self) {
        let visible = self.visible();
        let still = self.selected.as_ref().is_some_and(|key| visible.iter().any(|s| s.is(key)));
        if !still {
            let first = visible.first().map(|s| s.key());
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
                    .and_then(|key| visible.iter().position(|s| s.is(key)))
                    .unwrap_or(0);
                let to = step(at, by, visible.len());
                let next = visible[to].key();
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
            let key = s.key();
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
pub(crate) fn display_state(s: &Row) -> String {
    match &s.kind {
        Some(kind) => format!("{}{{{kind}}}", s.state),
        None => s.state.clone(),
    }
}

/// The repository a session belongs to, for grouping.
pub(crate) fn group_of(s: &Row) -> String {
    match &s.repo_root {
        Some(root) => root.display().to_string(),
        None => format!("({})", s.scope),
    }
}

/// Total tokens a transport reported (`usage` of `status --json`).
fn tokens(usage: &Value) -> Option<u64> {
    usage["total_tokens"]
        .as_u64()
        .or_else(|| Some(usage["input_tokens"].as_u64()? + usage["output_tokens"].as_u64()?))
}

fn haystack(s: &Row) -> String {
    let mut text = format!("{} {} {}", s.id, s.agent.as_deref().unwrap_or(""), display_state(s));
    for part in
        [s.description.as_deref(), s.cwd.as_deref().and_then(|c| c.to_str()), s.host.as_deref()]
    {
        text.push(' ');
        text.push_str(part.unwrap_or(""));
    }
    text.to_lowercase()
}

fn step(at: usize, by: isize, len: usize) -> usize {
    (at as isize + by).clamp(0, len.saturating_sub(1) as isize) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: Option<&str>, id: &str, state: &str, idle: f64) -> Row {
        Row::from_json(
            host,
            &serde_json::json!({
                "id": id, "scope": "s-1", "state": state, "turn": 1, "idle_s": idle,
                "started_at": format!("2026-01-01T00:00:0{}Z", id.len()),
                "usage": {"input_tokens": 1000, "output_tokens": 234},
                "worktree": {"branch": "reins/x"}, "tmux": {"pane": "%3"},
            }),
        )
    }

    fn fleet(hosts: &[&str]) -> Model {
        let mut model = Model::new(false);
        model.remotes =
            hosts.iter().map(|h| Remote { name: h.to_string(), status: Reach::Asking }).collect();
        model
    }

    #[test]
    fn a_status_row_is_read_the_same_from_any_machine() {
        let r = row(Some("a"), "w1", "busy", 2.0);
        assert_eq!(r.key(), Key { host: Some("a".into()), scope: "s-1".into(), id: "w1".into() });
        assert_eq!(r.key().label(), "w1@a");
        assert_eq!(
            (r.tokens, r.branch.as_deref(), r.tmux_pane.as_deref()),
            (Some(1234), Some("reins/x"), Some("%3"))
        );
    }

    #[test]
    fn a_host_answer_that_changes_only_idle_times_changes_nothing_on_screen() {
        let mut model = fleet(&["a"]);
        assert!(model.set_host("a", Ok(vec![row(Some("a"), "w1", "ready", 1.0)])));
        assert!(!model.set_host("a", Ok(vec![row(Some("a"), "w1", "ready", 3.0)])));
        assert_eq!(model.sessions[0].idle_s, Some(3.0), "kept for the next tick");
        assert!(model.set_host("a", Ok(vec![row(Some("a"), "w1", "busy", 0.0)])));
        assert!(model.set_host("a", Err("cannot reach host \"a\"".into())));
        assert!(!model.set_host("a", Err("cannot reach host \"a\"".into())));
        assert!(model.sessions.is_empty(), "a down host's old rows are not shown as true");
        assert!(!model.set_host("nobody", Ok(Vec::new())));
    }

    #[test]
    fn local_rows_come_first_then_each_host_in_order_and_a_down_host_is_one_line() {
        let mut model = fleet(&["b", "a"]);
        model.set_sessions(vec![row(None, "here", "ready", 0.0)]);
        model.set_host("a", Ok(vec![row(Some("a"), "wa", "ready", 0.0)]));
        model.set_host("b", Err("cannot reach host \"b\"".into()));
        let lines = model.lines();
        let group = |host: Option<&str>| Line::Group {
            host: host.map(str::to_string),
            repo: "(s-1)".into(),
        };
        assert_eq!(
            lines,
            vec![
                group(None),
                Line::Session(0),
                Line::Host {
                    name: "b".into(),
                    text: "cannot reach host \"b\"".into(),
                    error: true
                },
                group(Some("a")),
                Line::Session(1),
            ]
        );
        assert_eq!(model.selected.as_ref().map(Key::label).as_deref(), Some("here"));
        model.move_selection(1);
        assert_eq!(model.selected.as_ref().map(Key::label).as_deref(), Some("wa@a"));
        // The selection stays when b comes back with rows before it.
        model.set_host("b", Ok(vec![row(Some("b"), "wb", "ready", 0.0)]));
        assert_eq!(model.selected.as_ref().map(Key::label).as_deref(), Some("wa@a"));
        // A filter by host name.
        model.filter = "b".into();
        model.refilter();
        assert_eq!(model.selected.as_ref().map(Key::label).as_deref(), Some("wb@b"));
    }
}
