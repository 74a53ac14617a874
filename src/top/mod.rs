//! `reins top`: a live dashboard of the fleet.
//!
//! State and drawing are apart: what happens (a session's files changed,
//! the selected screen changed, a key was pressed) updates the [`Model`],
//! and [`draw::draw`] renders the model. The dashboard is driven by events,
//! not by re-reading everything on a timer: an inotify watch on the state
//! directory says which session changed (only that one is read again), a
//! long poll on the selected session's host brings its screen as it
//! changes, and a second's tick redraws only the relative times. Actions go
//! through session control ([`crate::control`]), as the commands do.

mod draw;
pub(crate) mod model;
mod read;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event as Input, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers, MouseEventKind,
};
use ratatui::crossterm::execute;
use tokio::sync::mpsc;

use crate::control::lookup::SessionView;
use crate::control::session::{self, Follow};
use crate::error::CliError;
use crate::ipc::{Decision, SendRequest};
use crate::store::paths::StateRoot;
use model::{Confirm, Mode, Model, View};

/// How often relative times (IDLE) are redrawn when nothing happens.
const TICK: Duration = Duration::from_secs(1);

/// Events shown for the selected session.
const EVENTS_SHOWN: usize = 40;

/// What reaches the loop.
enum Happened {
    Input(Input),
    /// Something under the state directory changed.
    Files(Vec<PathBuf>),
    /// The selected session's screen changed.
    Screen {
        key: (String, String),
        rows: Vec<String>,
    },
    /// An action finished; what to tell the person.
    Done(String),
}

/// Runs the dashboard until `q`.
pub(crate) fn run(state: StateRoot) -> Result<(), CliError> {
    let runtime = crate::control::runtime();
    let color = crate::style::color_on(crate::style::Stream::Stdout);
    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let result = runtime.block_on(run_loop(&mut terminal, state, color));
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    result
}

async fn run_loop(
    terminal: &mut ratatui::DefaultTerminal,
    state: StateRoot,
    color: bool,
) -> Result<(), CliError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Happened>();
    let _watcher = watch_state(&state, tx.clone());
    let mut input = read_input(tx.clone());
    let mut model = Model::new(color);
    model.set_sessions(read::all_sessions(&state));
    model.dispatches = read::dispatches(&state, 500);
    model.chains = read::chains(&state);
    let mut screen_task: Option<ScreenTask> = None;
    let mut tick = tokio::time::interval(TICK);
    let mut stats = Stats::from_env();
    let mut cause = "start";
    loop {
        follow_selected(&mut model, &state, &tx, &mut screen_task);
        let t0 = std::time::Instant::now();
        terminal.draw(|frame| draw::draw(&model, frame)).map_err(CliError::from)?;
        stats.frame(cause, t0.elapsed());
        let happened = tokio::select! {
            Some(h) = rx.recv() => h,
            _ = tick.tick() => {
                if model.message.as_ref().is_some_and(|(_, at)| at.elapsed() > Duration::from_secs(6)) {
                    model.message = None;
                }
                cause = "tick";
                continue;
            }
        };
        // Take what else is waiting too: one redraw for a burst, named for
        // the first of input, files, screen, done in it.
        let mut batch = vec![happened];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let rank = |h: &Happened| match h {
            Happened::Input(_) => (0, "input"),
            Happened::Files(_) => (1, "files"),
            Happened::Screen { .. } => (2, "screen"),
            Happened::Done(_) => (3, "done"),
        };
        cause = batch.iter().map(rank).min().map_or("done", |(_, name)| name);
        let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
        for h in batch {
            match h {
                Happened::Files(paths) => changed.extend(paths),
                Happened::Screen { key, rows } => {
                    if model.selected.as_ref() == Some(&key) {
                        model.screen = rows;
                        model.events = read::last_events(&state, &key.0, &key.1, EVENTS_SHOWN);
                    }
                }
                Happened::Done(text) => model.say(text),
                Happened::Input(event) => {
                    on_input(&mut model, &state, &tx, event, terminal, &mut input);
                }
            }
        }
        if !changed.is_empty() {
            on_files(&mut model, &state, &changed);
        }
        if model.quit {
            return Ok(());
        }
    }
}

/// Frame timings for the benchmarks: with `REINS_TOP_STATS=FILE` set,
/// one JSON line per frame (`t`: when it was drawn, Unix ms; `draw_us`;
/// `cause`: what led to it).
struct Stats {
    file: Option<std::fs::File>,
}

impl Stats {
    fn from_env() -> Stats {
        let file = std::env::var_os("REINS_TOP_STATS")
            .and_then(|path| crate::store::fsutil::open_append(std::path::Path::new(&path)).ok());
        Stats { file }
    }

    fn frame(&mut self, cause: &str, took: Duration) {
        use std::io::Write;
        let Some(file) = self.file.as_mut() else { return };
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let _ = writeln!(file, r#"{{"t":{t},"draw_us":{},"cause":"{cause}"}}"#, took.as_micros());
    }
}

/// Re-reads what the changed paths belong to.
fn on_files(model: &mut Model, state: &StateRoot, changed: &BTreeSet<PathBuf>) {
    let mut sessions: BTreeSet<(String, String)> = BTreeSet::new();
    let mut dispatches = false;
    let mut chains = false;
    for path in changed {
        if let Some(key) = read::session_of_path(state, path) {
            if read::matters_for_sessions(path) {
                sessions.insert(key);
            }
        } else if path.starts_with(state.root().join("chains")) {
            chains = true;
        } else if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("reins.db")) {
            dispatches = true;
        }
    }
    for (scope, id) in &sessions {
        match read::one_session(state, scope, id) {
            Some(mut info) => {
                // Git standings are read once (they cost git commands).
                if let Some(old) = model.sessions.iter().find(|s| &s.scope == scope && &s.id == id)
                    && info.worktree.is_none()
                {
                    info.worktree = old.worktree.clone();
                }
                model.update_session(info);
            }
            None => {
                model.sessions.retain(|s| !(&s.scope == scope && &s.id == id));
                model.refilter();
            }
        }
        if model.selected.as_ref() == Some(&(scope.clone(), id.clone())) {
            model.events = read::last_events(state, scope, id, EVENTS_SHOWN);
        }
    }
    if dispatches {
        model.dispatches = read::dispatches(state, 500);
    }
    if chains {
        model.chains = read::chains(state);
    }
}

/// The long poll on one session's screen: the session, and its task.
type ScreenTask = (Option<(String, String)>, tokio::task::JoinHandle<()>);

/// Keeps one long poll on the selected session's screen.
fn follow_selected(
    model: &mut Model,
    state: &StateRoot,
    tx: &mpsc::UnboundedSender<Happened>,
    task: &mut Option<ScreenTask>,
) {
    let want = model.selected.clone();
    if task.as_ref().is_some_and(|(key, handle)| *key == want && !handle.is_finished()) {
        return;
    }
    if let Some((_, handle)) = task.take() {
        handle.abort();
    }
    let Some(key) = want.clone() else { return };
    if model.events.is_empty() {
        model.events = read::last_events(state, &key.0, &key.1, EVENTS_SHOWN);
    }
    let paths = state.session(&key.0, &key.1);
    let tx = tx.clone();
    let handle = tokio::spawn(async move {
        let mut version = None;
        loop {
            let view = SessionView::read(paths.clone());
            match session::screen(&view, version).await {
                Ok(Some(screen)) => {
                    version = Some(screen.version);
                    let event = Happened::Screen { key: key.clone(), rows: screen.rows };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                // Ended, or not a live session: nothing more to show.
                _ => return,
            }
        }
    });
    *task = Some((want, handle));
}

/// One inotify watch on the whole state directory; each change sends the
/// paths it touched.
fn watch_state(
    state: &StateRoot,
    tx: mpsc::UnboundedSender<Happened>,
) -> Option<notify::RecommendedWatcher> {
    let root = state.root().to_path_buf();
    std::fs::create_dir_all(state.sessions_dir()).ok()?;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            // Opening and reading (the dashboard's own reads among them)
            // change nothing; only writes, creations and removals do.
            use notify::event::{AccessKind, AccessMode, EventKind};
            let changes = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            };
            if !changes {
                return;
            }
            let paths: Vec<PathBuf> = event
                .paths
                .into_iter()
                .filter(|p| !p.to_string_lossy().ends_with("transcript.log"))
                .collect();
            if !paths.is_empty() {
                let _ = tx.send(Happened::Files(paths));
            }
        }
    })
    .ok()?;
    watcher.watch(&root, RecursiveMode::Recursive).ok()?;
    Some(watcher)
}

/// The keyboard and mouse, read on a thread of their own (crossterm's
/// reads block). Paused while another program has the terminal.
struct InputReader {
    pause: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn read_input(tx: mpsc::UnboundedSender<Happened>) -> InputReader {
    let pause = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let paused = pause.clone();
    std::thread::spawn(move || {
        loop {
            if paused.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            // Poll with a timeout so a pause takes effect promptly.
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(input) => {
                        if tx.send(Happened::Input(input)).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
    InputReader { pause }
}

fn on_input(
    model: &mut Model,
    state: &StateRoot,
    tx: &mpsc::UnboundedSender<Happened>,
    input: Input,
    terminal: &mut ratatui::DefaultTerminal,
    reader: &mut InputReader,
) {
    match input {
        Input::Key(key) if key.kind != KeyEventKind::Release => {
            on_key(model, state, tx, key, terminal, reader);
        }
        Input::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollDown => model.move_selection(1),
            MouseEventKind::ScrollUp => model.move_selection(-1),
            MouseEventKind::Down(_) if model.view == View::Sessions => {
                if let Some(n) = clicked_session(model, terminal, mouse.row) {
                    model.select_row(n);
                }
            }
            _ => {}
        },
        _ => {}
    }
}

/// The visible session on terminal row `row`, with the table laid out as
/// [`draw`] lays it out (a group header before each repository's rows).
fn clicked_session(model: &Model, terminal: &ratatui::DefaultTerminal, row: u16) -> Option<usize> {
    let height = terminal.size().ok()?.height;
    let table_rows = (height.saturating_sub(2) * 45 / 100).saturating_sub(3) as usize;
    let visible = model.visible();
    let mut display: Vec<Option<usize>> = Vec::new();
    let mut group = None;
    let mut selected_display = 0;
    for (i, s) in visible.iter().enumerate() {
        let g = model::group_of(s);
        if group.as_ref() != Some(&g) {
            display.push(None);
            group = Some(g);
        }
        if model.selected.as_ref().is_some_and(|(scope, id)| &s.scope == scope && &s.id == id) {
            selected_display = display.len();
        }
        display.push(Some(i));
    }
    let offset = (selected_display + 1).saturating_sub(table_rows);
    let at = (row as usize).checked_sub(draw::FIRST_ROW as usize)? + offset;
    display.get(at).copied().flatten()
}

fn on_key(
    model: &mut Model,
    state: &StateRoot,
    tx: &mpsc::UnboundedSender<Happened>,
    key: KeyEvent,
    terminal: &mut ratatui::DefaultTerminal,
    reader: &mut InputReader,
) {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        model.quit = true;
        return;
    }
    match std::mem::replace(&mut model.mode, Mode::Normal) {
        Mode::Compose(mut text) => match key.code {
            KeyCode::Enter if !text.trim().is_empty() => send(model, state, tx, text),
            KeyCode::Enter | KeyCode::Esc => {}
            KeyCode::Backspace => {
                text.pop();
                model.mode = Mode::Compose(text);
            }
            KeyCode::Char(c) => {
                text.push(c);
                model.mode = Mode::Compose(text);
            }
            _ => model.mode = Mode::Compose(text),
        },
        Mode::Filter(mut text) => match key.code {
            KeyCode::Enter => {}
            KeyCode::Esc => {
                model.filter.clear();
                model.refilter();
            }
            KeyCode::Backspace => {
                text.pop();
                model.filter = text.clone();
                model.refilter();
                model.mode = Mode::Filter(text);
            }
            KeyCode::Char(c) => {
                text.push(c);
                model.filter = text.clone();
                model.refilter();
                model.mode = Mode::Filter(text);
            }
            _ => model.mode = Mode::Filter(text),
        },
        Mode::Confirm(Confirm::Stop { scope, id }) => {
            if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                let view = SessionView::read(state.session(&scope, &id));
                let tx = tx.clone();
                model.say(format!("stopping {id}…"));
                tokio::spawn(async move {
                    let said = match session::stop(&view, Duration::from_secs(10), true).await {
                        Ok(how) => format!("{id}: {}", how.as_str()),
                        Err(err) => format!("{id}: {}", err.message),
                    };
                    let _ = tx.send(Happened::Done(said));
                });
            } else {
                model.say("not stopped");
            }
        }
        Mode::Help => {
            if !matches!(key.code, KeyCode::Esc | KeyCode::Char('?' | 'q')) {
                model.mode = Mode::Help;
            }
        }
        Mode::Normal => normal_key(model, state, tx, key, terminal, reader),
    }
}

fn normal_key(
    model: &mut Model,
    state: &StateRoot,
    tx: &mpsc::UnboundedSender<Happened>,
    key: KeyEvent,
    terminal: &mut ratatui::DefaultTerminal,
    reader: &mut InputReader,
) {
    let selected = model.selected.clone().filter(|_| model.view == View::Sessions);
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => model.quit = true,
        KeyCode::Down | KeyCode::Char('j') => model.move_selection(1),
        KeyCode::Up | KeyCode::Char('k') => model.move_selection(-1),
        KeyCode::PageDown => model.move_selection(10),
        KeyCode::PageUp => model.move_selection(-10),
        KeyCode::Tab => {
            model.view = match model.view {
                View::Sessions => View::Dispatches,
                View::Dispatches => View::Chains,
                View::Chains => View::Sessions,
            };
        }
        KeyCode::Char('?') => model.mode = Mode::Help,
        KeyCode::Char('/') => model.mode = Mode::Filter(model.filter.clone()),
        _ => {
            let Some((scope, id)) = selected else {
                return;
            };
            match key.code {
                KeyCode::Char('s') => model.mode = Mode::Compose(String::new()),
                KeyCode::Char('x') => model.mode = Mode::Confirm(Confirm::Stop { scope, id }),
                KeyCode::Char('a') => approve(model, state, tx, &scope, &id, Decision::Allow),
                KeyCode::Char('d') => approve(model, state, tx, &scope, &id, Decision::Deny),
                KeyCode::Char('i') => {
                    let view = SessionView::read(state.session(&scope, &id));
                    spawn_action(tx, async move {
                        match session::interrupt(&view).await {
                            Ok(()) => format!("{id}: interrupt sent"),
                            Err(err) => format!("{id}: {}", err.message),
                        }
                    });
                }
                KeyCode::Char('w') => model.say(start_watcher(state, &scope, &id)),
                KeyCode::Enter => attach(model, terminal, reader, &id, &scope, state),
                _ => {}
            }
        }
    }
}

fn spawn_action(
    tx: &mpsc::UnboundedSender<Happened>,
    action: impl std::future::Future<Output = String> + Send + 'static,
) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let said = action.await;
        let _ = tx.send(Happened::Done(said));
    });
}

fn send(model: &mut Model, state: &StateRoot, tx: &mpsc::UnboundedSender<Happened>, text: String) {
    let Some((scope, id)) = model.selected.clone() else { return };
    let view = SessionView::read(state.session(&scope, &id));
    let sender = crate::compat::sender_id();
    let text = session::with_relay_header(sender.as_deref(), &id, text, false);
    model.say(format!("sending to {id}…"));
    spawn_action(tx, async move {
        let request = SendRequest {
            text,
            submit: true,
            submit_only: false,
            force: false,
            raw: false,
            ttl_ms: None,
        };
        match session::send(&view, &request, Follow::No, None, |_| {}).await {
            Ok(sent) => format!("{id}: message {} {}", sent.message_id, sent.status),
            Err(err) => format!("{id}: {}", err.message),
        }
    });
}

fn approve(
    model: &mut Model,
    state: &StateRoot,
    tx: &mpsc::UnboundedSender<Happened>,
    scope: &str,
    id: &str,
    decision: Decision,
) {
    let view = SessionView::read(state.session(scope, id));
    let id = id.to_string();
    model.say(format!("{id}: answering…"));
    spawn_action(tx, async move {
        match session::approve(&view, decision, None).await {
            Ok(reply) => format!(
                "{id}: {} request {}",
                decision.as_str(),
                reply.request.as_deref().unwrap_or("?")
            ),
            Err(err) => format!("{id}: {}", err.message),
        }
    });
}

/// Starts `reins watch` on a session in the background (its own process
/// group, its words in `watch.log` in the session's directory).
fn start_watcher(state: &StateRoot, scope: &str, id: &str) -> String {
    let paths = state.session(scope, id);
    let log = paths.dir.join("watch.log");
    let started = (|| -> Result<u32, CliError> {
        let exe = crate::control::start::reins_binary()?;
        let file = crate::store::fsutil::open_append(&log)?;
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(exe)
            .args(["watch", "--id", id, "--on-exit", "leave", "--until-exit"])
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()?;
        Ok(child.id())
    })();
    match started {
        Ok(pid) => format!("{id}: watcher started (pid {pid}; its log: {})", log.display()),
        Err(err) => format!("{id}: cannot start a watcher: {}", err.message),
    }
}

/// Hands the terminal to `reins attach` and takes it back on detach.
fn attach(
    model: &mut Model,
    terminal: &mut ratatui::DefaultTerminal,
    reader: &mut InputReader,
    id: &str,
    scope: &str,
    state: &StateRoot,
) {
    let exe = match crate::control::start::reins_binary() {
        Ok(exe) => exe,
        Err(err) => return model.say(err.message),
    };
    let repo = state.session(scope, id);
    reader.pause.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    let status = std::process::Command::new(exe).args(["attach", "--id", id]).status();
    *terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    reader.pause.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = terminal.clear();
    model.say(match status {
        Ok(s) if s.success() => format!("back from {id}"),
        Ok(_) => format!("attach to {id} failed (its session dir: {})", repo.dir.display()),
        Err(err) => format!("cannot run reins attach: {err}"),
    });
}
