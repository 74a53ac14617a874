//! Drawing the dashboard: a pure function of the [`Model`], so what is on
//! screen is exactly what the model says (and a test can draw it into a
//! buffer).
//!
//! ```text
//! reins top — 12 sessions: 3 busy, 1 blocked{approval}, 8 ready     ?: help
//! ┌ sessions ───────────────────────────────────────────────────────────┐
//! │ ID      AGENT  STATE   TURN  IDLE  TOKENS  WHERE        DESC        │
//! │ ~/src/app                                                           │
//! │ w1      claude busy      3    2s   12.3k   reins/w1     fix tests   │
//! └─────────────────────────────────────────────────────────────────────┘
//! ┌ w1: screen ─────────────────────────────┐┌ w1: events ──────────────┐
//! │ …                                       ││ 12:01:02 state busy      │
//! └─────────────────────────────────────────┘└──────────────────────────┘
//! s send  a approve  d deny  i interrupt  x stop  w watch  enter attach …
//! ```

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};

use crate::top::model::{
    Confirm, Line as TableLine, Mode, Model, Row as Session, View, display_state,
};

/// The smallest terminal the layout fits in.
pub(crate) const MIN_COLS: u16 = 60;
pub(crate) const MIN_ROWS: u16 = 12;

/// Rows of the table (from the top of the terminal) where the session rows
/// start, for mouse clicks: the title line, the block's border, the header.
pub(crate) const FIRST_ROW: u16 = 3;

/// Draws the whole dashboard.
pub(crate) fn draw(model: &Model, frame: &mut Frame<'_>) {
    let area = frame.area();
    if area.width < MIN_COLS || area.height < MIN_ROWS {
        let text = format!(
            "reins top needs a terminal of at least {MIN_COLS}x{MIN_ROWS} (this one is {}x{}); \
             q quits",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let [title, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(4), Constraint::Length(1)])
            .areas(area);
    frame.render_widget(Paragraph::new(title_line(model)), title);
    match model.view {
        View::Sessions => {
            let [table, detail] =
                Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(body);
            sessions(model, frame, table);
            let [screen, events] =
                Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                    .areas(detail);
            selected_screen(model, frame, screen);
            selected_events(model, frame, events);
        }
        View::Dispatches => dispatches(model, frame, body),
        View::Chains => chains(model, frame, body),
    }
    frame.render_widget(Paragraph::new(footer_line(model)), footer);
    if model.mode == Mode::Help {
        help(frame, body);
    }
}

fn title_line(model: &Model) -> Line<'static> {
    let counts: Vec<String> =
        model.counts().into_iter().map(|(state, n)| format!("{n} {state}")).collect();
    let view = match model.view {
        View::Sessions => "sessions",
        View::Dispatches => "dispatches",
        View::Chains => "chains",
    };
    let mut text = format!(
        "reins top — {} session{}",
        model.sessions.len(),
        if model.sessions.len() == 1 { "" } else { "s" }
    );
    if !counts.is_empty() {
        text.push_str(&format!(": {}", counts.join(", ")));
    }
    if !model.filter.is_empty() {
        text.push_str(&format!("  [filter: {}]", model.filter));
    }
    text.push_str(&format!("  ({view}; tab switches, ? help)"));
    Line::from(Span::styled(text, Style::default().add_modifier(Modifier::BOLD)))
}

fn footer_line(model: &Model) -> Line<'static> {
    let text = match &model.mode {
        Mode::Compose(text) => {
            format!("message for {}: {text}▏ (enter sends, esc cancels)", who(model))
        }
        Mode::Filter(text) => format!("filter: {text}▏ (enter keeps it, esc clears it)"),
        Mode::Confirm(Confirm::Stop(key)) => {
            format!("stop session {} and everything it started? y/n", key.label())
        }
        Mode::Help => "esc or ? closes the help".to_string(),
        Mode::Normal => match &model.message {
            Some((text, _)) => text.clone(),
            None => "s send  a approve  d deny  i interrupt  x stop  w watch  enter attach  / \
                     filter  tab view  q quit"
                .to_string(),
        },
    };
    Line::from(text)
}

fn who(model: &Model) -> String {
    model.selected.as_ref().map_or("-".into(), |key| key.label())
}

fn state_style(model: &Model, s: &Session) -> Style {
    if !model.color {
        return Style::default();
    }
    let color = match (s.state.as_str(), s.kind.as_deref()) {
        ("blocked", Some("rate_limit")) => Color::Blue,
        ("blocked", _) => Color::Red,
        ("busy", _) => Color::Yellow,
        ("ready", _) => Color::Green,
        ("starting", _) => Color::Cyan,
        ("dead" | "exited" | "disconnected", _) => Color::DarkGray,
        _ => Color::Gray,
    };
    Style::default().fg(color)
}

fn sessions(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let visible = model.visible();
    let fleet = model.fleet();
    let dim = Style::default().add_modifier(Modifier::DIM);
    let mut rows: Vec<Row<'static>> = Vec::new();
    let mut notes: Vec<(usize, String, Style)> = Vec::new();
    let mut selected_row = None;
    for line in model.lines() {
        match line {
            TableLine::Group { host, repo } => {
                let repo = if host.is_none() { short_home(&repo) } else { repo };
                let mut cells = vec![Cell::from(repo)];
                if fleet {
                    cells.insert(0, Cell::from(host.unwrap_or_else(|| "local".into())));
                }
                rows.push(Row::new(cells).style(dim));
            }
            TableLine::Host { name, text, error } => {
                let style = if !error {
                    dim
                } else if model.color {
                    Style::default().fg(Color::Red)
                } else {
                    Style::default()
                };
                // Its words go over the row's other columns, drawn after
                // the table: an ssh error is longer than any one column.
                let text = if error { format!("unreachable: {text}") } else { text };
                notes.push((rows.len(), text, style));
                rows.push(Row::new(vec![Cell::from(name)]).style(style));
            }
            TableLine::Session(n) => {
                let s = visible[n];
                if model.selected.as_ref().is_some_and(|key| *key == s.key()) {
                    selected_row = Some(rows.len());
                }
                rows.push(session_row(model, s, fleet));
            }
        }
    }
    if visible.is_empty() && !fleet {
        let text = if model.sessions.is_empty() {
            "no sessions: start one with `reins run mock --detach`"
        } else {
            "no session matches the filter (/ changes it)"
        };
        rows.push(Row::new(vec![Cell::from(text)]));
    }
    let mut widths = vec![
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(19),
        Constraint::Length(4),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(14),
        Constraint::Min(10),
    ];
    let mut header = vec!["ID", "AGENT", "STATE", "TURN", "IDLE", "TOKENS", "WHERE", "DESC"];
    let mut host_width = 0;
    if fleet {
        let longest = model.remotes.iter().map(|r| r.name.chars().count()).max().unwrap_or(0);
        host_width = longest.clamp(5, 12) as u16;
        widths.insert(0, Constraint::Length(host_width));
        header.insert(0, "HOST");
    }
    let header = Row::new(header).style(Style::default().add_modifier(Modifier::BOLD));
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(" sessions "))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(selected_row);
    frame.render_stateful_widget(table, area, &mut state);
    let inner = area.inner(ratatui::layout::Margin { horizontal: 1, vertical: 1 });
    let shown = inner.height.saturating_sub(1) as usize;
    let x = inner.x + host_width + 1;
    for (at, text, style) in notes {
        let Some(on) = at.checked_sub(state.offset()).filter(|on| *on < shown) else { continue };
        let rect = Rect {
            x,
            y: inner.y + 1 + on as u16,
            width: inner.right().saturating_sub(x),
            height: 1,
        };
        frame.render_widget(Paragraph::new(Line::styled(text, style)), rect);
    }
}

fn session_row(model: &Model, s: &Session, fleet: bool) -> Row<'static> {
    let where_ = s
        .branch
        .clone()
        .or_else(|| s.tmux_pane.as_ref().map(|pane| format!("tmux {pane}")))
        .or_else(|| {
            // The group says which repository: say where in it.
            let cwd = s.cwd.as_ref()?;
            Some(match s.repo_root.as_ref().and_then(|r| cwd.strip_prefix(r).ok()) {
                Some(rel) if rel.as_os_str().is_empty() => ".".to_string(),
                Some(rel) => rel.display().to_string(),
                None if s.host.is_none() => short_home(&cwd.display().to_string()),
                None => cwd.display().to_string(),
            })
        })
        .unwrap_or_else(|| "-".into());
    let mut cells = vec![
        Cell::from(s.id.clone()),
        Cell::from(s.agent.clone().unwrap_or_else(|| "-".into())),
        Cell::from(Span::styled(display_state(s), state_style(model, s))),
        Cell::from(s.turn.to_string()),
        Cell::from(s.idle_s.map_or("-".into(), crate::time::compact)),
        Cell::from(tokens(s)),
        Cell::from(where_),
        Cell::from(s.description.clone().unwrap_or_default()),
    ];
    if fleet {
        cells.insert(0, Cell::from(s.host.clone().unwrap_or_else(|| "local".into())));
    }
    Row::new(cells)
}

/// Total tokens the transport reported, compact (`12.3k`).
fn tokens(s: &Session) -> String {
    match s.tokens {
        None => "-".into(),
        Some(n) if n < 1000 => n.to_string(),
        Some(n) if n < 1_000_000 => format!("{:.1}k", n as f64 / 1000.0),
        Some(n) => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn short_home(path: &str) -> String {
    match std::env::var("HOME") {
        Ok(home) if !home.is_empty() && path.starts_with(&home) => {
            format!("~{}", &path[home.len()..])
        }
        _ => path.to_string(),
    }
}

fn selected_screen(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let title = format!(" {}: screen ", who(model));
    // The last rows fit: an agent's composer and status are at the bottom.
    let inner_rows = area.height.saturating_sub(2) as usize;
    let mut rows: Vec<&str> = model.screen.iter().map(String::as_str).collect();
    while rows.last().is_some_and(|r| r.trim().is_empty()) {
        rows.pop();
    }
    let start = rows.len().saturating_sub(inner_rows);
    let text: Vec<Line<'static>> =
        rows[start..].iter().map(|r| Line::from(r.to_string())).collect();
    frame.render_widget(Paragraph::new(text).block(Block::bordered().title(title)), area);
}

fn selected_events(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let title = format!(" {}: events ", who(model));
    let inner_rows = area.height.saturating_sub(2) as usize;
    let start = model.events.len().saturating_sub(inner_rows);
    let text: Vec<Line<'static>> =
        model.events[start..].iter().map(|e| Line::from(e.clone())).collect();
    let para = Paragraph::new(text).block(Block::bordered().title(title));
    frame.render_widget(para, area);
}

fn dispatches(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let rows: Vec<Row<'static>> = model
        .dispatches
        .iter()
        .map(|d| {
            Row::new(vec![
                Cell::from(d.id.clone()),
                Cell::from(d.result.clone()),
                Cell::from(d.attempts.len().to_string()),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table =
        Table::new(rows, [Constraint::Length(30), Constraint::Length(12), Constraint::Length(9)])
            .header(
                Row::new(["DISPATCH", "LAST", "ATTEMPTS"])
                    .style(Style::default().add_modifier(Modifier::BOLD)),
            )
            .block(Block::bordered().title(if empty {
                " dispatches (none yet) "
            } else {
                " dispatches "
            }))
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state =
        TableState::default().with_selected((!empty).then_some(model.selected_dispatch));
    frame.render_stateful_widget(table, list, &mut state);
    let lines: Vec<Line<'static>> = model
        .dispatches
        .get(model.selected_dispatch)
        .map(|d| d.attempts.iter().map(|a| Line::from(a.clone())).collect())
        .unwrap_or_default();
    let para = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" attempts: agent rung → result, verdict, feedback "));
    frame.render_widget(para, detail);
}

fn chains(model: &Model, frame: &mut Frame<'_>, area: Rect) {
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(area);
    let rows: Vec<Row<'static>> = model
        .chains
        .iter()
        .map(|c| {
            Row::new(vec![
                Cell::from(c.id.clone()),
                Cell::from(c.status.clone()),
                Cell::from(c.steps.len().to_string()),
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let table =
        Table::new(rows, [Constraint::Length(30), Constraint::Length(12), Constraint::Length(6)])
            .header(
                Row::new(["CHAIN", "STATUS", "STEPS"])
                    .style(Style::default().add_modifier(Modifier::BOLD)),
            )
            .block(Block::bordered().title(if empty { " chains (none yet) " } else { " chains " }))
            .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected((!empty).then_some(model.selected_chain));
    frame.render_stateful_widget(table, list, &mut state);
    let lines: Vec<Line<'static>> = model
        .chains
        .get(model.selected_chain)
        .map(|c| {
            let mut lines: Vec<Line<'static>> =
                c.steps.iter().map(|s| Line::from(s.clone())).collect();
            if !c.gates.is_empty() {
                lines.push(Line::from(""));
                lines.extend(c.gates.iter().map(|g| Line::from(format!("gate: {g}"))));
            }
            lines
        })
        .unwrap_or_default();
    let para = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" steps and batches; gate decisions "));
    frame.render_widget(para, detail);
}

const HELP: &str = "\
up/down, k/j, mouse   select a session (or dispatch, chain)
enter                 attach to it (its terminal; come back with Ctrl-])
s                     send it a message (a one-line composer)
a / d                 approve / deny the approval request it waits on
i                     interrupt its running turn
x                     stop it (asks first)
w                     start a watcher on it, on its machine
/                     filter by id, agent, state, description or directory
tab                   sessions → dispatches → chains
q                     quit (sessions keep running)";

fn help(frame: &mut Frame<'_>, area: Rect) {
    let width = 72.min(area.width);
    let height = 13.min(area.height);
    let at = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, at);
    frame.render_widget(Paragraph::new(HELP).block(Block::bordered().title(" keys ")), at);
}
