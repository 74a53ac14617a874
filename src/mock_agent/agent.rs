//! The mock agent's behaviour as a pure state machine: booting, idle, busy,
//! waiting for approval, stalled.
//!
//! It never touches the terminal or the clock itself. The driver (`app`)
//! feeds it keys and the current time, asks when it next needs waking
//! ([`Agent::next_deadline`], `None` when idle so an idle agent uses no CPU),
//! and carries out the [`Effect`]s it returns; the renderer draws its
//! [`View`]. That keeps every transition unit-testable with made-up instants.

use std::time::{Duration, Instant};

use super::input::Key;
use super::markers::{self, Parsed};

/// The version shown in the banner.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
/// How long the "Press Ctrl-C again to exit" hint (and the second press) lasts.
pub(crate) const EXIT_HINT: Duration = Duration::from_secs(1);
/// Spinner frames, one per [`SPINNER_STEP`].
pub(crate) const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// How often the busy line is redrawn.
pub(crate) const SPINNER_STEP: Duration = Duration::from_millis(100);
/// Flood lines per KiB: each line is 64 bytes on the wire with its `\r\n`.
const FLOOD_LINES_PER_KIB: u32 = 16;
/// Flood lines printed per wake-up, so that a big flood still lets Esc and
/// signals through between batches (256 lines = 16 KiB per frame).
const FLOOD_BATCH: u32 = 256;
const FLOOD_FILLER: &str =
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor";
/// Width of a flood line without the line end: 62 + `\r\n` = 64 bytes.
const FLOOD_WIDTH: usize = 62;

/// How the agent was started.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// How long a turn works when the message has no `[[wait:S]]`.
    pub(crate) work: Duration,
    /// How long `booting mock-agent…` shows before the banner.
    pub(crate) boot_delay: Duration,
    /// Ignore `/exit`, Ctrl-C at the prompt and Ctrl-D.
    pub(crate) ignore_exit: bool,
    /// The directory shown in the banner.
    pub(crate) cwd: String,
    /// A message submitted as soon as booting is done.
    pub(crate) prompt: Option<String>,
    /// Turn this many Enter presses at the prompt into newlines in the
    /// composer instead of submitting (like an agent that takes an Enter
    /// arriving right after a paste as part of it).
    pub(crate) swallow_enter: u32,
    /// The model name shown in the banner.
    pub(crate) model: String,
    /// What every turn answers instead of `MOCK_OK (you said: …)`
    /// (`[[reply:TEXT]]` in a message wins).
    pub(crate) reply: Option<String>,
    /// Ask for approval on every turn, as `[[approve]]` does.
    pub(crate) ask_approval: bool,
}

/// Something the driver must do on the agent's behalf, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Append a finished line to the transcript (above the live region).
    Print(String),
    /// Start a child process that sleeps for an hour and print its pid.
    Spawn,
    /// Erase the live region, print `message`, restore the terminal, exit.
    Exit { code: u8, message: String },
    /// Exit at once with `code`, leaving the screen as it is.
    Crash { code: u8 },
}

/// What the live region shows right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum View<'a> {
    Booting,
    Idle { input: &'a str, exit_hint: bool },
    Busy { input: &'a str, spinner: char, secs: u64 },
    Approval { cmd: &'a str },
}

/// One submitted message on its way through approval and work.
#[derive(Debug, Clone)]
struct Turn {
    started: Instant,
    parsed: Parsed,
}

#[derive(Debug, Clone)]
enum Mode {
    Booting {
        until: Instant,
        /// Enter was pressed while booting: send the composer once booted,
        /// so typeahead (or a piped message) is not lost.
        send_when_booted: bool,
    },
    Idle,
    Approval {
        turn: Turn,
    },
    Working {
        turn: Turn,
        since: Instant,
        until: Instant,
        flood_done: u32,
        flood_total: u32,
        /// Lines printed so far by `[[drip:S]]`.
        drips: u32,
    },
    /// Busy forever. The view is frozen at what was drawn on entry so that
    /// nothing (not even typed keys) produces output until interrupted.
    Stalled {
        frozen_input: String,
    },
}

/// The mock agent.
#[derive(Debug)]
pub(crate) struct Agent {
    config: Config,
    mode: Mode,
    input: String,
    /// Set by a first Ctrl-C at the prompt: a second one before this exits.
    exit_armed_until: Option<Instant>,
    /// Standard input (a pipe, not a terminal) reached its end: exit once idle.
    input_closed: bool,
    /// Enter presses still to be swallowed (see [`Config::swallow_enter`]).
    enters_to_swallow: u32,
    /// A usage limit (`[[ratelimit:S]]`) holds until then.
    limited_until: Option<Instant>,
}

impl Agent {
    /// A new agent, booting from `now`.
    pub(crate) fn new(config: Config, now: Instant) -> Agent {
        let until = now + config.boot_delay;
        Agent {
            enters_to_swallow: config.swallow_enter,
            config,
            mode: Mode::Booting { until, send_when_booted: false },
            input: String::new(),
            exit_armed_until: None,
            input_closed: false,
            limited_until: None,
        }
    }

    /// The window title for the current mode.
    pub(crate) fn title(&self) -> &'static str {
        match self.mode {
            Mode::Booting { .. } => "mock · booting",
            Mode::Idle => "mock · ready",
            Mode::Working { .. } | Mode::Stalled { .. } => "mock · working",
            Mode::Approval { .. } => "mock · action required",
        }
    }

    /// What the live region shows at `now`.
    pub(crate) fn view(&self, now: Instant) -> View<'_> {
        match &self.mode {
            Mode::Booting { .. } => View::Booting,
            Mode::Idle => View::Idle {
                input: &self.input,
                exit_hint: self.exit_armed_until.is_some_and(|until| now < until),
            },
            Mode::Approval { turn } => {
                View::Approval { cmd: turn.parsed.markers.approve.as_deref().unwrap_or_default() }
            }
            Mode::Working { since, .. } => {
                let elapsed = now.saturating_duration_since(*since);
                let step = elapsed.as_millis() / SPINNER_STEP.as_millis();
                View::Busy {
                    input: &self.input,
                    spinner: SPINNER[(step % SPINNER.len() as u128) as usize],
                    secs: elapsed.as_secs(),
                }
            }
            Mode::Stalled { frozen_input } => {
                View::Busy { input: frozen_input, spinner: SPINNER[0], secs: 0 }
            }
        }
    }

    /// When [`Agent::tick`] must next be called; `None` means only a key or
    /// a signal can change anything.
    pub(crate) fn next_deadline(&self, now: Instant) -> Option<Instant> {
        match &self.mode {
            Mode::Booting { until, .. } => Some(*until),
            Mode::Idle => self.exit_armed_until,
            Mode::Approval { .. } | Mode::Stalled { .. } => None,
            Mode::Working { turn, since, until, flood_done, flood_total, drips } => {
                if flood_done < flood_total {
                    return Some(now);
                }
                let steps = now.saturating_duration_since(*since).as_millis()
                    / SPINNER_STEP.as_millis()
                    + 1;
                let next_frame = *since + SPINNER_STEP * u32::try_from(steps).unwrap_or(u32::MAX);
                let next_drip = turn.parsed.markers.drip.map(|every| *since + every * (*drips + 1));
                Some(next_frame.min(*until).min(next_drip.unwrap_or(*until)))
            }
        }
    }

    /// Advances time-driven work: boot, flood output, end of work, hint expiry.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.exit_armed_until.is_some_and(|until| now >= until) {
            self.exit_armed_until = None;
        }
        match &mut self.mode {
            Mode::Booting { until, send_when_booted } if now >= *until => {
                let send_input = *send_when_booted;
                effects.extend(self.banner().into_iter().map(Effect::Print));
                self.mode = Mode::Idle;
                // The command-line prompt comes first, as if typed before
                // anything else; typeahead then waits in the composer.
                let message = match self.config.prompt.clone() {
                    Some(prompt) if !prompt.trim().is_empty() => Some(prompt),
                    _ if send_input && !self.input.trim().is_empty() => {
                        Some(std::mem::take(&mut self.input))
                    }
                    _ => None,
                };
                match message {
                    Some(message) => self.submit(message, now, &mut effects),
                    None => self.become_idle(&mut effects),
                }
            }
            Mode::Working { turn, since, until, flood_done, flood_total, drips } => {
                if let Some(every) = turn.parsed.markers.drip {
                    while now >= *since + every * (*drips + 1) {
                        *drips += 1;
                        effects.push(Effect::Print(format!("· step {drips} done", drips = *drips)));
                    }
                }
                let batch = (*flood_total - *flood_done).min(FLOOD_BATCH);
                for n in *flood_done + 1..=*flood_done + batch {
                    effects.push(Effect::Print(flood_line(n)));
                }
                *flood_done += batch;
                if now >= *until && flood_done == flood_total {
                    let turn = turn.clone();
                    let outcome = if turn.parsed.markers.fail { "MOCK_FAILED" } else { "MOCK_OK" };
                    self.finish(&turn, outcome, now, &mut effects);
                }
            }
            _ => {}
        }
        effects
    }

    /// Handles one key.
    pub(crate) fn key(&mut self, key: Key, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Mode::Approval { turn } = &self.mode {
            let turn = turn.clone();
            match approval_answer(&key) {
                Some(true) => self.allow(turn, now, &mut effects),
                Some(false) => self.deny(&turn, now, &mut effects),
                None if key == Key::CtrlC => self.interrupt(&mut effects),
                None if key == Key::CtrlD => self.end_of_input_key(&mut effects),
                None => {}
            }
            return effects;
        }
        match key {
            Key::Text(text) | Key::Paste(text) => self.input.push_str(&text),
            Key::Backspace => {
                self.input.pop();
            }
            Key::ClearLine => self.input.clear(),
            Key::Enter if self.input.trim().is_empty() => {}
            Key::Enter => match &mut self.mode {
                Mode::Idle if self.enters_to_swallow > 0 => {
                    self.enters_to_swallow -= 1;
                    self.input.push('\n');
                }
                Mode::Idle => {
                    let message = std::mem::take(&mut self.input);
                    self.submit(message, now, &mut effects);
                }
                Mode::Booting { send_when_booted, .. } => *send_when_booted = true,
                // Like a real agent, nothing is queued while busy: the text
                // stays in the composer until the agent is idle.
                _ => {}
            },
            Key::Esc => {
                if matches!(self.mode, Mode::Working { .. } | Mode::Stalled { .. }) {
                    self.interrupt(&mut effects);
                }
            }
            Key::CtrlC => match self.mode {
                Mode::Working { .. } | Mode::Stalled { .. } => self.interrupt(&mut effects),
                _ => {
                    self.input.clear();
                    if self.config.ignore_exit {
                        // No hint either: a second press would not exit.
                    } else if self.exit_armed_until.is_some_and(|until| now < until) {
                        effects.push(exit(0));
                    } else {
                        self.exit_armed_until = Some(now + EXIT_HINT);
                    }
                }
            },
            Key::CtrlD => self.end_of_input_key(&mut effects),
        }
        effects
    }

    /// Standard input reached its end (it is a pipe or file): exit once
    /// idle, as if Ctrl-D had been pressed then.
    pub(crate) fn input_closed(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.input_closed = true;
        if matches!(self.mode, Mode::Idle) {
            self.become_idle(&mut effects);
        }
        effects
    }

    fn banner(&self) -> Vec<String> {
        vec![
            format!("✻ reins mock-agent {VERSION}"),
            format!("  model {} · cwd {}", self.config.model, self.config.cwd),
            String::new(),
        ]
    }

    fn end_of_input_key(&mut self, effects: &mut Vec<Effect>) {
        if self.input.is_empty() && !self.config.ignore_exit {
            effects.push(exit(0));
        }
    }

    fn submit(&mut self, message: String, now: Instant, effects: &mut Vec<Effect>) {
        for (i, line) in message.lines().enumerate() {
            let prefix = if i == 0 { "> " } else { "  " };
            effects.push(Effect::Print(format!("{prefix}{line}")));
        }
        if message.trim() == "/exit" {
            if self.config.ignore_exit {
                effects.push(Effect::Print("exit ignored".into()));
                effects.push(Effect::Print(String::new()));
                self.become_idle(effects);
            } else {
                effects.push(exit(0));
            }
            return;
        }
        let mut parsed = markers::parse(&message);
        if self.config.ask_approval && parsed.markers.approve.is_none() {
            parsed.markers.approve = Some(String::new());
        }
        if let Some(code) = parsed.markers.crash {
            effects.push(Effect::Crash { code });
            return;
        }
        if let Some(secs) = parsed.markers.ratelimit {
            self.limited_until = Some(now + secs);
        }
        if let Some(until) = self.limited_until.filter(|until| *until > now) {
            // Like a real CLI at its usage limit: the turn ends at once.
            let left = until.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            let at = jiff::ZonedDateTime::now()
                .checked_add(jiff::SignedDuration::from_secs(secs as i64));
            let at = at.map(|z| z.strftime("%H:%M:%S").to_string()).unwrap_or_default();
            effects.push(Effect::Print(format!(
                "⚠ Usage limit reached · resets in {secs}s (at {at})"
            )));
            effects.push(Effect::Print(String::new()));
            self.become_idle(effects);
            return;
        }
        let turn = Turn { started: now, parsed };
        if turn.parsed.markers.approve.is_some() {
            self.mode = Mode::Approval { turn };
        } else {
            self.start_work(turn, now, effects);
        }
    }

    fn allow(&mut self, turn: Turn, now: Instant, effects: &mut Vec<Effect>) {
        let cmd = turn.parsed.markers.approve.as_deref().unwrap_or_default();
        effects.push(Effect::Print(format!("✔ Allowed: {cmd}")));
        self.start_work(turn, now, effects);
    }

    fn deny(&mut self, turn: &Turn, now: Instant, effects: &mut Vec<Effect>) {
        let cmd = turn.parsed.markers.approve.as_deref().unwrap_or_default();
        effects.push(Effect::Print(format!("✗ Denied: {cmd}")));
        self.finish(turn, "MOCK_DENIED", now, effects);
    }

    fn start_work(&mut self, turn: Turn, now: Instant, effects: &mut Vec<Effect>) {
        let markers = &turn.parsed.markers;
        if markers.spawn {
            effects.push(Effect::Spawn);
        }
        if markers.stall {
            self.mode = Mode::Stalled { frozen_input: self.input.clone() };
            return;
        }
        let work = markers.wait.unwrap_or(self.config.work);
        let flood_total = markers.flood_kib.unwrap_or(0).saturating_mul(FLOOD_LINES_PER_KIB);
        self.mode = Mode::Working {
            turn,
            since: now,
            until: now + work,
            flood_done: 0,
            flood_total,
            drips: 0,
        };
    }

    fn finish(&mut self, turn: &Turn, outcome: &str, now: Instant, effects: &mut Vec<Effect>) {
        let secs = now.saturating_duration_since(turn.started).as_secs();
        let reply = turn.parsed.markers.reply.as_ref().or(self.config.reply.as_ref());
        match reply {
            Some(reply) if outcome != "MOCK_DENIED" => {
                // Continuation lines indented under the marker, as Claude
                // Code draws a multi-line answer.
                for (i, line) in reply.split('\n').enumerate() {
                    let shown = match (i, line.is_empty()) {
                        (0, _) => format!("● {line}"),
                        (_, true) => String::new(),
                        _ => format!("  {line}"),
                    };
                    effects.push(Effect::Print(shown));
                }
            }
            _ => {
                effects.push(Effect::Print(format!("● {outcome} (you said: {})", turn.parsed.text)))
            }
        }
        effects.push(Effect::Print(format!("✻ Worked for {secs}s")));
        effects.push(Effect::Print(String::new()));
        if let Some(code) = turn.parsed.markers.exit {
            self.mode = Mode::Idle;
            effects.push(exit(code));
            return;
        }
        self.become_idle(effects);
    }

    fn interrupt(&mut self, effects: &mut Vec<Effect>) {
        effects.push(Effect::Print("■ Interrupted".into()));
        effects.push(Effect::Print(String::new()));
        self.become_idle(effects);
    }

    fn become_idle(&mut self, effects: &mut Vec<Effect>) {
        self.mode = Mode::Idle;
        if self.input_closed && !self.config.ignore_exit {
            effects.push(exit(0));
        }
    }
}

fn exit(code: u8) -> Effect {
    Effect::Exit { code, message: "bye".into() }
}

/// `Some(true)` to allow, `Some(false)` to deny, `None` for other keys.
fn approval_answer(key: &Key) -> Option<bool> {
    match key {
        Key::Enter => Some(true),
        Key::Esc => Some(false),
        Key::Text(text) => text.chars().find_map(|c| match c {
            'y' | 'Y' | '1' => Some(true),
            'n' | 'N' | '2' => Some(false),
            _ => None,
        }),
        _ => None,
    }
}

/// Flood line `n` (from 1): fixed width, so `N` KiB is exactly `16 N` lines.
fn flood_line(n: u32) -> String {
    let mut line = format!("flood {n:06} {FLOOD_FILLER}");
    line.truncate(FLOOD_WIDTH);
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            work: Duration::from_millis(500),
            boot_delay: Duration::ZERO,
            ignore_exit: false,
            cwd: "/tmp/x".into(),
            prompt: None,
            swallow_enter: 0,
            model: "mock-1".into(),
            reply: None,
            ask_approval: false,
        }
    }

    #[test]
    fn swallowed_enters_become_newlines_until_used_up() {
        let (mut agent, t0) = idle(Config { swallow_enter: 1, ..config() });
        assert!(printed(&type_and_send(&mut agent, "hi", t0)).is_empty());
        assert_eq!(agent.view(t0), View::Idle { input: "hi\n", exit_hint: false });
        assert_eq!(printed(&agent.key(Key::Enter, t0)), ["> hi"]);
    }

    fn printed(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Print(line) => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    /// A booted, idle agent at time `t0`.
    fn idle(config: Config) -> (Agent, Instant) {
        let t0 = Instant::now();
        let mut agent = Agent::new(config, t0);
        assert_eq!(agent.view(t0), View::Booting);
        let effects = agent.tick(t0);
        assert_eq!(printed(&effects)[0], format!("✻ reins mock-agent {VERSION}"));
        assert_eq!(printed(&effects)[1], "  model mock-1 · cwd /tmp/x");
        (agent, t0)
    }

    fn type_and_send(agent: &mut Agent, text: &str, now: Instant) -> Vec<Effect> {
        agent.key(Key::Text(text.into()), now);
        agent.key(Key::Enter, now)
    }

    #[test]
    fn boot_waits_for_the_delay() {
        let t0 = Instant::now();
        let mut agent = Agent::new(Config { boot_delay: Duration::from_secs(2), ..config() }, t0);
        assert_eq!(agent.next_deadline(t0), Some(t0 + Duration::from_secs(2)));
        assert!(agent.tick(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(agent.title(), "mock · booting");
        assert_eq!(printed(&agent.tick(t0 + Duration::from_secs(2))).len(), 3);
        assert_eq!(agent.title(), "mock · ready");
    }

    #[test]
    fn idle_agent_has_no_timer() {
        let (agent, t0) = idle(config());
        assert_eq!(agent.next_deadline(t0), None);
        assert_eq!(agent.view(t0), View::Idle { input: "", exit_hint: false });
    }

    #[test]
    fn a_turn_echoes_works_and_answers() {
        let (mut agent, t0) = idle(config());
        let effects = type_and_send(&mut agent, "hello  [[wait:2]] there", t0);
        assert_eq!(printed(&effects), ["> hello  [[wait:2]] there"]);
        assert_eq!(agent.title(), "mock · working");
        let t1 = t0 + Duration::from_millis(1250);
        assert_eq!(agent.view(t1), View::Busy { input: "", spinner: SPINNER[2], secs: 1 });
        assert_eq!(agent.next_deadline(t1), Some(t0 + Duration::from_millis(1300)));
        assert!(agent.tick(t1).is_empty());
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(
            printed(&agent.tick(t2)),
            ["● MOCK_OK (you said: hello there)", "✻ Worked for 2s", ""]
        );
        assert_eq!(agent.title(), "mock · ready");
        assert_eq!(agent.next_deadline(t2), None);
    }

    #[test]
    fn multi_line_messages_are_indented() {
        let (mut agent, t0) = idle(config());
        agent.key(Key::Paste("first\nsecond".into()), t0);
        let effects = agent.key(Key::Enter, t0);
        assert_eq!(printed(&effects), ["> first", "  second"]);
    }

    #[test]
    fn enter_while_busy_is_ignored_and_text_kept() {
        let (mut agent, t0) = idle(config());
        type_and_send(&mut agent, "one", t0);
        let effects = type_and_send(&mut agent, "two", t0);
        assert!(effects.is_empty());
        assert!(matches!(agent.view(t0), View::Busy { input: "two", .. }));
        agent.tick(t0 + Duration::from_secs(1));
        assert_eq!(agent.view(t0), View::Idle { input: "two", exit_hint: false });
        assert_eq!(printed(&agent.key(Key::Enter, t0)), ["> two"]);
    }

    #[test]
    fn blank_input_is_not_sent() {
        let (mut agent, t0) = idle(config());
        assert!(type_and_send(&mut agent, "   ", t0).is_empty());
        assert!(matches!(agent.view(t0), View::Idle { .. }));
    }

    #[test]
    fn esc_and_ctrl_c_interrupt_work() {
        for key in [Key::Esc, Key::CtrlC] {
            let (mut agent, t0) = idle(config());
            type_and_send(&mut agent, "x", t0);
            assert_eq!(printed(&agent.key(key, t0)), ["■ Interrupted", ""]);
            assert!(matches!(agent.view(t0), View::Idle { exit_hint: false, .. }));
        }
    }

    #[test]
    fn stall_is_silent_until_interrupted() {
        let (mut agent, t0) = idle(config());
        type_and_send(&mut agent, "[[stall]]", t0);
        let frozen = View::Busy { input: "", spinner: SPINNER[0], secs: 0 };
        assert_eq!(agent.view(t0), frozen);
        assert_eq!(agent.next_deadline(t0), None);
        agent.key(Key::Text("typed".into()), t0);
        let later = t0 + Duration::from_secs(60);
        assert!(agent.tick(later).is_empty());
        assert_eq!(agent.view(later), frozen);
        assert_eq!(printed(&agent.key(Key::Esc, later)), ["■ Interrupted", ""]);
        assert_eq!(agent.view(later), View::Idle { input: "typed", exit_hint: false });
    }

    #[test]
    fn drip_prints_a_line_every_interval_while_working() {
        let (mut agent, t0) = idle(config());
        type_and_send(&mut agent, "[[drip:1]] [[wait:3.5]] slow", t0);
        assert!(agent.next_deadline(t0).unwrap() <= t0 + Duration::from_secs(1));
        assert!(printed(&agent.tick(t0 + Duration::from_millis(900))).is_empty());
        assert_eq!(printed(&agent.tick(t0 + Duration::from_secs(1))), ["· step 1 done"]);
        assert_eq!(
            printed(&agent.tick(t0 + Duration::from_millis(3100))),
            ["· step 2 done", "· step 3 done"]
        );
        let done = printed(&agent.tick(t0 + Duration::from_millis(3500))).join("\n");
        assert!(done.contains("MOCK_OK (you said: slow)"), "{done}");
    }

    #[test]
    fn crash_exits_at_once() {
        let (mut agent, t0) = idle(config());
        let effects = type_and_send(&mut agent, "[[crash:9]] boom", t0);
        assert_eq!(effects.last(), Some(&Effect::Crash { code: 9 }));
    }

    #[test]
    fn approval_allowed() {
        for answer in [Key::Text("y".into()), Key::Text("1".into()), Key::Enter] {
            let (mut agent, t0) = idle(config());
            type_and_send(&mut agent, "go [[approve]]", t0);
            assert_eq!(agent.view(t0), View::Approval { cmd: "touch x.txt" });
            assert_eq!(agent.title(), "mock · action required");
            assert_eq!(agent.next_deadline(t0), None);
            assert_eq!(printed(&agent.key(answer, t0)), ["✔ Allowed: touch x.txt"]);
            assert!(matches!(agent.view(t0), View::Busy { .. }));
            let done = agent.tick(t0 + Duration::from_secs(1));
            assert_eq!(printed(&done)[0], "● MOCK_OK (you said: go)");
        }
    }

    #[test]
    fn approval_denied() {
        for answer in [Key::Text("n".into()), Key::Text("2".into()), Key::Esc] {
            let (mut agent, t0) = idle(config());
            type_and_send(&mut agent, "go [[approve:rm -rf /tmp/y]]", t0);
            assert_eq!(
                printed(&agent.key(answer, t0)),
                ["✗ Denied: rm -rf /tmp/y", "● MOCK_DENIED (you said: go)", "✻ Worked for 0s", ""]
            );
            assert!(matches!(agent.view(t0), View::Idle { .. }));
        }
    }

    #[test]
    fn approval_ignores_other_keys() {
        let (mut agent, t0) = idle(config());
        type_and_send(&mut agent, "[[approve]]", t0);
        assert!(agent.key(Key::Text("x".into()), t0).is_empty());
        assert!(agent.key(Key::Backspace, t0).is_empty());
        assert!(matches!(agent.view(t0), View::Approval { .. }));
    }

    #[test]
    fn flood_prints_fixed_width_lines_then_finishes() {
        let (mut agent, t0) = idle(config());
        type_and_send(&mut agent, "[[flood:20]]", t0);
        let mut lines = Vec::new();
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_millis(100);
            let effects = agent.tick(now);
            lines.extend(printed(&effects).into_iter().map(str::to_owned));
            if matches!(agent.view(now), View::Idle { .. }) {
                break;
            }
        }
        let flood: Vec<_> = lines.iter().filter(|l| l.starts_with("flood ")).collect();
        assert_eq!(flood.len(), 320);
        assert!(flood.iter().all(|l| l.len() == 62));
        assert_eq!(flood[0], "flood 000001 lorem ipsum dolor sit amet consectetur adipiscing");
        assert!(lines.contains(&"● MOCK_OK (you said: )".to_owned()));
    }

    #[test]
    fn spawn_fail_and_exit_markers() {
        let (mut agent, t0) = idle(config());
        let effects = type_and_send(&mut agent, "[[spawn]] [[fail]] [[exit:4]] bye", t0);
        assert!(effects.contains(&Effect::Spawn));
        let done = agent.tick(t0 + Duration::from_secs(1));
        assert_eq!(printed(&done)[0], "● MOCK_FAILED (you said: bye)");
        assert_eq!(done.last(), Some(&Effect::Exit { code: 4, message: "bye".into() }));
    }

    #[test]
    fn slash_exit() {
        let (mut agent, t0) = idle(config());
        let effects = type_and_send(&mut agent, "/exit", t0);
        assert_eq!(effects.last(), Some(&Effect::Exit { code: 0, message: "bye".into() }));

        let (mut agent, t0) = idle(Config { ignore_exit: true, ..config() });
        let effects = type_and_send(&mut agent, "/exit", t0);
        assert_eq!(printed(&effects), ["> /exit", "exit ignored", ""]);
        assert!(matches!(agent.view(t0), View::Idle { .. }));
    }

    #[test]
    fn ctrl_c_twice_within_a_second_exits() {
        let (mut agent, t0) = idle(config());
        agent.key(Key::Text("draft".into()), t0);
        assert!(agent.key(Key::CtrlC, t0).is_empty());
        assert_eq!(agent.view(t0), View::Idle { input: "", exit_hint: true });
        assert_eq!(agent.next_deadline(t0), Some(t0 + EXIT_HINT));
        let t1 = t0 + EXIT_HINT;
        agent.tick(t1);
        assert_eq!(agent.view(t1), View::Idle { input: "", exit_hint: false });
        assert_eq!(agent.next_deadline(t1), None);
        assert!(agent.key(Key::CtrlC, t1).is_empty());
        let effects = agent.key(Key::CtrlC, t1 + Duration::from_millis(500));
        assert_eq!(effects, [Effect::Exit { code: 0, message: "bye".into() }]);
    }

    #[test]
    fn ignore_exit_ignores_ctrl_c_and_ctrl_d() {
        let (mut agent, t0) = idle(Config { ignore_exit: true, ..config() });
        for key in [Key::CtrlC, Key::CtrlC, Key::CtrlD, Key::CtrlD] {
            assert!(agent.key(key, t0).is_empty());
        }
        assert_eq!(agent.view(t0), View::Idle { input: "", exit_hint: false });
    }

    #[test]
    fn ctrl_d_exits_only_on_empty_input() {
        let (mut agent, t0) = idle(config());
        agent.key(Key::Text("a".into()), t0);
        assert!(agent.key(Key::CtrlD, t0).is_empty());
        agent.key(Key::Backspace, t0);
        assert_eq!(agent.key(Key::CtrlD, t0), [Effect::Exit { code: 0, message: "bye".into() }]);
    }

    #[test]
    fn prompt_is_submitted_after_boot() {
        let t0 = Instant::now();
        let mut agent = Agent::new(Config { prompt: Some("fix it".into()), ..config() }, t0);
        let effects = agent.tick(t0);
        assert_eq!(printed(&effects)[3], "> fix it");
        assert!(matches!(agent.view(t0), View::Busy { .. }));
    }

    #[test]
    fn enter_while_booting_sends_once_booted() {
        let t0 = Instant::now();
        let mut agent = Agent::new(config(), t0);
        assert!(type_and_send(&mut agent, "early", t0).is_empty());
        assert_eq!(agent.view(t0), View::Booting);
        let effects = agent.tick(t0);
        assert_eq!(printed(&effects)[3], "> early");
        assert!(matches!(agent.view(t0), View::Busy { input: "", .. }));
    }

    #[test]
    fn typeahead_without_enter_stays_in_the_composer() {
        let t0 = Instant::now();
        let mut agent = Agent::new(Config { prompt: Some("first".into()), ..config() }, t0);
        agent.key(Key::Text("draft".into()), t0);
        assert_eq!(printed(&agent.tick(t0))[3], "> first");
        assert!(matches!(agent.view(t0), View::Busy { input: "draft", .. }));
    }

    #[test]
    fn closed_input_exits_once_idle() {
        let (mut agent, t0) = idle(config());
        type_and_send(&mut agent, "x", t0);
        assert!(agent.input_closed().is_empty());
        let done = agent.tick(t0 + Duration::from_secs(1));
        assert_eq!(done.last(), Some(&Effect::Exit { code: 0, message: "bye".into() }));
    }
}
