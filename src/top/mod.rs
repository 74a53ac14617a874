//! `reins top`: a live dashboard of the fleet.
//!
//! State and drawing are apart: what happens (a session's files changed,
//! the selected screen changed, a host answered, a key was pressed)
//! updates the [`Model`], and [`draw::draw`] renders the model. This
//! machine's sessions are driven by events, not by re-reading everything
//! on a timer: an inotify watch on the state directory says which session
//! changed (only that one is read again), a long poll on the selected
//! session's host brings its screen as it changes, and a second's tick
//! redraws only the relative times. Actions go through session control
//! ([`crate::control`]), as the commands do.
//!
//! Other machines (`--hosts`) have no files here to watch: each host's
//! `reins status --all --json` is asked every [`HOST_EVERY`] over its
//! shared ssh connection ([`crate::remote`]), on a task of its own so a
//! slow or lost host never holds up a frame, and an answer that changes
//! nothing on screen draws nothing. The selected remote session's screen
//! and events are asked about once a second while it is selected, and the
//! keys act through the reins there (`reins send --host`'s way: the same
//! commands, run by that machine's reins).

mod draw;
pub(crate) mod model;
mod read;

use std::collections::BTreeSet;
use std::ffi::OsString;
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
use crate::remote::Ssh;
use crate::store::paths::StateRoot;
use model::{Confirm, Key, Mode, Model, Reach, Remote, Row, View};

/// How often relative times (IDLE) are redrawn when nothing happens.
const TICK: Duration = Duration::from_secs(1);

/// Events shown for the selected session.
const EVENTS_SHOWN: usize = 40;

/// How often another machine's sessions are asked for.
const HOST_EVERY: Duration = Duration::from_secs(2);

/// How long a host may take to answer before it shows as not answering
/// (as long as ssh gives a connection to be made).
const HOST_ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How often the selected remote session's screen and events are asked
/// for.
const REMOTE_DETAIL_EVERY: Duration = Duration::from_secs(1);

/// What reaches the loop.
enum Happened {
    Input(Input),
    /// Something under the state directory changed.
    Files(Vec<PathBuf>),
    /// The selected session's screen changed.
    Screen {
        key: Key,
        rows: Vec<String>,
    },
    /// What another machine says of its selected session: its screen and
    /// last events (sent only when they changed).
    Remote {
        key: Key,
        screen: Vec<String>,
        events: Vec<String>,
    },
    /// A host's sessions, or why it could not say.
    Host {
        name: String,
        answer: Result<Vec<Row>, String>,
    },
    /// An action finished; what to tell the person.
    Done(String),
}

/// What every handler needs: where this machine's sessions are, the other
/// machines, and the way back to the loop.
struct Ctx {
    state: StateRoot,
    hosts: Vec<Ssh>,
    tx: mpsc::UnboundedSender<Happened>,
}

impl Ctx {
    fn ssh(&self, host: &str) -> Option<&Ssh> {
        self.hosts.iter().find(|h| h.target.name == host)
    }
}

/// Runs the dashboard until `q`: this machine's sessions, and those of
/// `hosts` (`--hosts`).
pub(crate) fn run(state: StateRoot, hosts: Vec<Ssh>) -> Result<(), CliError> {
    let runtime = crate::control::runtime();
    let color = crate::style::color_on(crate::style::Stream::Stdout);
    let mut terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    let result = runtime.block_on(run_loop(&mut terminal, state, hosts, color));
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    // An ssh call to a host that does not answer may still be running on
    // the blocking pool: quitting does not wait for it.
    runtime.shutdown_background();
    result
}

async fn run_loop(
    terminal: &mut ratatui::DefaultTerminal,
    state: StateRoot,
    hosts: Vec<Ssh>,
    color: bool,
) -> Result<(), CliError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Happened>();
    let _watcher = watch_state(&state, tx.clone());
    let mut input = read_input(tx.clone());
    let mut model = Model::new(color);
    model.remotes = hosts
        .iter()
        .map(|h| Remote { name: h.target.name.clone(), status: Reach::Asking })
        .collect();
    for ssh in &hosts {
        poll_host(ssh.clone(), tx.clone());
    }
    let ctx = Ctx { state, hosts, tx };
    let state = &ctx.state;
    model.set_sessions(read::all_sessions(state));
    model.dispatches = read::dispatches(state, 500);
    model.chains = read::chains(state);
    let mut screen_task: Option<ScreenTask> = None;
    let mut tick = tokio::time::interval(TICK);
    let mut stats = Stats::from_env();
    let mut cause = "start";
    let mut dirty = true;
    loop {
        follow_selected(&mut model, &ctx, &mut screen_task);
        if dirty {
            let t0 = std::time::Instant::now();
            terminal.draw(|frame| draw::draw(&model, frame)).map_err(CliError::from)?;
            stats.frame(cause, t0.elapsed());
        }
        dirty = true;
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
        // the first of input, files, screen, host, done in it.
        let mut batch = vec![happened];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let rank = |h: &Happened| match h {
            Happened::Input(_) => (0, "input"),
            Happened::Files(_) => (1, "files"),
            Happened::Screen { .. } | Happened::Remote { .. } => (2, "screen"),
            Happened::Host { .. } => (3, "host"),
            Happened::Done(_) => (4, "done"),
        };
        cause = batch.iter().map(rank).min().map_or("done", |(_, name)| name);
        let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
        // Only hosts' answers that change nothing on screen: no frame.
        let mut quiet = true;
        for h in batch {
            match h {
                Happened::Host { name, answer } => quiet &= !model.set_host(&name, answer),
                Happened::Files(paths) => {
                    quiet = false;
                    changed.extend(paths);
                }
                Happened::Screen { key, rows } => {
                    quiet = false;
                    if model.selected.as_ref() == Some(&key) {
                        model.screen = rows;
                        model.events = read::last_events(state, &key.scope, &key.id, EVENTS_SHOWN);
                    }
                }
                Happened::Remote { key, screen, events } => {
                    quiet = false;
                    if model.selected.as_ref() == Some(&key) {
                        model.screen = screen;
                        model.events = events;
                    }
                }
                Happened::Done(text) => {
                    quiet = false;
                    model.say(text);
                }
                Happened::Input(event) => {
                    quiet = false;
                    on_input(&mut model, &ctx, event, terminal, &mut input);
                }
            }
        }
        if !changed.is_empty() {
            on_files(&mut model, state, &changed);
        }
        dirty = !quiet;
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
        let key = Key::local(scope, id);
        match read::one_session(state, scope, id) {
            Some(mut row) => {
                // Git standings are read once (they cost git commands).
                if let Some(old) = model.sessions.iter().find(|s| s.key() == key)
                    && row.branch.is_none()
                {
                    row.branch = old.branch.clone();
                }
                model.update_session(row);
            }
            None => model.remove_session(&key),
        }
        if model.selected.as_ref() == Some(&key) {
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
type ScreenTask = (Option<Key>, tokio::task::JoinHandle<()>);

/// Keeps one long poll on the selected session's screen (another
/// machine's: asks for it about once a second).
fn follow_selected(model: &mut Model, ctx: &Ctx, task: &mut Option<ScreenTask>) {
    let want = model.selected.clone();
    if task.as_ref().is_some_and(|(key, handle)| *key == want && !handle.is_finished()) {
        return;
    }
    if let Some((_, handle)) = task.take() {
        handle.abort();
    }
    let Some(key) = want.clone() else { return };
    if let Some(host) = &key.host {
        let Some(ssh) = ctx.ssh(host) else { return };
        let handle = follow_remote(ssh.clone(), key, ctx.tx.clone());
        *task = Some((want, handle));
        return;
    }
    let state = &ctx.state;
    if model.events.is_empty() {
        model.events = read::last_events(state, &key.scope, &key.id, EVENTS_SHOWN);
    }
    let paths = state.session(&key.scope, &key.id);
    let tx = ctx.tx.clone();
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

/// Asks another machine for its selected session's screen and last
/// events about once a second; says so only when they changed.
fn follow_remote(
    ssh: Ssh,
    key: Key,
    tx: mpsc::UnboundedSender<Happened>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<(Vec<String>, Vec<String>)> = None;
        while !tx.is_closed() {
            let (s, id) = (ssh.clone(), key.id.clone());
            let got =
                tokio::task::spawn_blocking(move || read::remote_detail(&s, &id, EVENTS_SHOWN))
                    .await
                    .unwrap_or_else(|err| (vec![format!("internal error: {err}")], Vec::new()));
            if last.as_ref() != Some(&got) {
                let (screen, events) = got.clone();
                if tx.send(Happened::Remote { key: key.clone(), screen, events }).is_err() {
                    return;
                }
                last = Some(got);
            }
            tokio::time::sleep(REMOTE_DETAIL_EVERY).await;
        }
    })
}

/// Asks a host for its sessions every [`HOST_EVERY`], on a task of its
/// own, for as long as the dashboard runs. After a failure the shared
/// connection is opened again first (a master that died leaves its socket
/// behind), so a host that comes back shows again. A host that has not
/// answered within [`HOST_ANSWER_WITHIN`] (a connection that stalls with
/// no error: ssh's connect timeout does not cover it) shows as not
/// answering until that same call ends; no second one piles up behind it.
fn poll_host(ssh: Ssh, tx: mpsc::UnboundedSender<Happened>) {
    tokio::spawn(async move {
        let name = ssh.target.name.clone();
        let mut failed = false;
        while !tx.is_closed() {
            let s = ssh.clone();
            let mut call = tokio::task::spawn_blocking(move || read::remote_sessions(&s, failed));
            let answer = match tokio::time::timeout(HOST_ANSWER_WITHIN, &mut call).await {
                Ok(done) => done,
                Err(_) => {
                    let why = format!(
                        "host {} has not answered for {}s (its connection may have stalled)",
                        crate::ids::quoted(&name),
                        HOST_ANSWER_WITHIN.as_secs()
                    );
                    let answer = Err(why);
                    if tx.send(Happened::Host { name: name.clone(), answer }).is_err() {
                        return;
                    }
                    call.await
                }
            };
            let answer = answer.unwrap_or_else(|err| Err(format!("internal error: {err}")));
            failed = answer.is_err();
            if tx.send(Happened::Host { name: name.clone(), answer }).is_err() {
                return;
            }
            tokio::time::sleep(HOST_EVERY).await;
        }
    });
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
    ctx: &Ctx,
    input: Input,
    terminal: &mut ratatui::DefaultTerminal,
    reader: &mut InputReader,
) {
    match input {
        Input::Key(key) if key.kind != KeyEventKind::Release => {
            on_key(model, ctx, key, terminal, reader);
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
/// [`draw`] lays it out (a group header before each repository's rows, a
/// line for each host that shows none).
fn clicked_session(model: &Model, terminal: &ratatui::DefaultTerminal, row: u16) -> Option<usize> {
    let height = terminal.size().ok()?.height;
    let table_rows = (height.saturating_sub(2) * 45 / 100).saturating_sub(3) as usize;
    let visible = model.visible();
    let display: Vec<Option<usize>> = model
        .lines()
        .into_iter()
        .map(|line| match line {
            model::Line::Session(n) => Some(n),
            _ => None,
        })
        .collect();
    let selected_display = display
        .iter()
        .position(|d| {
            d.is_some_and(|n| model.selected.as_ref().is_some_and(|key| *key == visible[n].key()))
        })
        .unwrap_or(0);
    let offset = (selected_display + 1).saturating_sub(table_rows);
    let at = (row as usize).checked_sub(draw::FIRST_ROW as usize)? + offset;
    display.get(at).copied().flatten()
}

fn on_key(
    model: &mut Model,
    ctx: &Ctx,
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
            KeyCode::Enter if !text.trim().is_empty() => send(model, ctx, text),
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
        Mode::Confirm(Confirm::Stop(target)) => {
            if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                model.say(format!("stopping {}…", target.label()));
                if target.host.is_some() {
                    remote_action(ctx, &target, &["stop", "--force"], |v| {
                        v["status"].as_str().unwrap_or("stopped").to_string()
                    });
                    return;
                }
                let view = SessionView::read(ctx.state.session(&target.scope, &target.id));
                let id = target.id;
                spawn_action(&ctx.tx, async move {
                    match session::stop(&view, Duration::from_secs(10), true).await {
                        Ok(how) => format!("{id}: {}", how.as_str()),
                        Err(err) => format!("{id}: {}", err.message),
                    }
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
        Mode::Normal => normal_key(model, ctx, key, terminal, reader),
    }
}

fn normal_key(
    model: &mut Model,
    ctx: &Ctx,
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
            let Some(target) = selected else {
                return;
            };
            match key.code {
                KeyCode::Char('s') => model.mode = Mode::Compose(String::new()),
                KeyCode::Char('x') => model.mode = Mode::Confirm(Confirm::Stop(target)),
                KeyCode::Char('a') => approve(model, ctx, &target, Decision::Allow),
                KeyCode::Char('d') => approve(model, ctx, &target, Decision::Deny),
                KeyCode::Char('i') if target.host.is_some() => {
                    model.say(format!("{}: interrupting…", target.label()));
                    remote_action(ctx, &target, &["interrupt"], |_| "interrupt sent".to_string());
                }
                KeyCode::Char('i') => {
                    let view = SessionView::read(ctx.state.session(&target.scope, &target.id));
                    let id = target.id;
                    spawn_action(&ctx.tx, async move {
                        match session::interrupt(&view).await {
                            Ok(()) => format!("{id}: interrupt sent"),
                            Err(err) => format!("{id}: {}", err.message),
                        }
                    });
                }
                KeyCode::Char('w') if target.host.is_some() => {
                    let dir = model.selected_row().and_then(|r| r.session_dir.clone());
                    start_remote_watcher(model, ctx, &target, dir);
                }
                KeyCode::Char('w') => {
                    model.say(start_watcher(&ctx.state, &target.scope, &target.id));
                }
                KeyCode::Enter => attach(model, terminal, reader, &target, &ctx.state),
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

/// Runs `reins ARGS --id ID` on the machine of `target` (a task of its
/// own) and tells the person what it said: `done` words its JSON answer,
/// else the error the reins there gave.
fn remote_action(ctx: &Ctx, target: &Key, args: &[&str], done: fn(&serde_json::Value) -> String) {
    let Some(ssh) = target.host.as_deref().and_then(|h| ctx.ssh(h)).cloned() else { return };
    let label = target.label();
    let mut argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    argv.extend(["--id".into(), target.id.clone().into()]);
    spawn_action(&ctx.tx, async move {
        let said = tokio::task::spawn_blocking(move || read::remote_command(&ssh, &argv))
            .await
            .unwrap_or_else(|err| Err(format!("internal error: {err}")));
        match said {
            Ok(answer) => format!("{label}: {}", done(&answer)),
            Err(why) => format!("{label}: {why}"),
        }
    });
}

fn send(model: &mut Model, ctx: &Ctx, text: String) {
    let Some(target) = model.selected.clone() else { return };
    model.say(format!("sending to {}…", target.label()));
    if target.host.is_some() {
        let text = format!("--message={text}");
        let args = ["send", "--no-wait", "--json", text.as_str()];
        remote_action(ctx, &target, &args, |v| {
            format!(
                "message {} {}",
                v["message_id"].as_str().unwrap_or("?"),
                v["status"].as_str().unwrap_or("?")
            )
        });
        return;
    }
    let id = target.id;
    let view = SessionView::read(ctx.state.session(&target.scope, &id));
    let sender = crate::compat::sender_id();
    let text = session::with_relay_header(sender.as_deref(), &id, text, false);
    spawn_action(&ctx.tx, async move {
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

fn approve(model: &mut Model, ctx: &Ctx, target: &Key, decision: Decision) {
    model.say(format!("{}: answering…", target.label()));
    if target.host.is_some() {
        let args: &[&str] =
            if decision == Decision::Deny { &["approve", "--deny"] } else { &["approve"] };
        remote_action(ctx, target, args, |v| {
            format!(
                "{} request {}",
                v["decision"].as_str().unwrap_or("?"),
                v["request"].as_str().unwrap_or("?")
            )
        });
        return;
    }
    let view = SessionView::read(ctx.state.session(&target.scope, &target.id));
    let id = target.id.clone();
    spawn_action(&ctx.tx, async move {
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

/// Starts `reins watch` on another machine's session, there: in the
/// background through ssh (`nohup`, its own session where `setsid`
/// exists, so neither the ssh channel closing nor a hangup ends it), its
/// words in `watch.log` in the session's directory on that machine.
fn start_remote_watcher(model: &mut Model, ctx: &Ctx, target: &Key, dir: Option<PathBuf>) {
    let label = target.label();
    let Some(ssh) = target.host.as_deref().and_then(|h| ctx.ssh(h)).cloned() else { return };
    let Some(dir) = dir else {
        return model.say(format!("{label}: its host did not say where its directory is"));
    };
    model.say(format!("{label}: starting a watcher…"));
    let id = target.id.clone();
    spawn_action(&ctx.tx, async move {
        let log = dir.join("watch.log");
        let started =
            tokio::task::spawn_blocking(move || read::remote_watcher(&ssh, &id, &log)).await;
        match started {
            Ok(Ok((pid, log))) => {
                format!("{label}: watcher started there (pid {pid}; its log: {log})")
            }
            Ok(Err(why)) => format!("{label}: cannot start a watcher: {why}"),
            Err(err) => format!("{label}: internal error: {err}"),
        }
    });
}

/// Hands the terminal to `reins attach` (`--host`: over `ssh -t`) and
/// takes it back on detach.
fn attach(
    model: &mut Model,
    terminal: &mut ratatui::DefaultTerminal,
    reader: &mut InputReader,
    target: &Key,
    state: &StateRoot,
) {
    let exe = match crate::control::start::reins_binary() {
        Ok(exe) => exe,
        Err(err) => return model.say(err.message),
    };
    let id = target.id.as_str();
    let repo = state.session(&target.scope, id);
    let mut args = vec!["attach", "--id", id];
    if let Some(host) = &target.host {
        args.extend(["--host", host]);
    }
    reader.pause.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    let status = std::process::Command::new(exe).args(&args).status();
    *terminal = ratatui::init();
    let _ = execute!(std::io::stdout(), EnableMouseCapture);
    reader.pause.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = terminal.clear();
    let label = target.label();
    model.say(match status {
        Ok(s) if s.success() => format!("back from {label}"),
        Ok(_) if target.host.is_some() => format!("attach to {label} failed"),
        Ok(_) => format!("attach to {id} failed (its session dir: {})", repo.dir.display()),
        Err(err) => format!("cannot run reins attach: {err}"),
    });
}
