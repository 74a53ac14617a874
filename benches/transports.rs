//! Turns through the structured transports, measured against the real
//! agents: `codex app-server`, `claude -p --input-format stream-json`, and
//! the Agent Client Protocol of Gemini CLI, OpenCode and Qwen Code, all
//! answering from the project's mock model on 127.0.0.1.
//!
//! For each transport, per turn:
//! - the mock model's last byte → reins writes `task_complete`;
//! - `task_complete` written → `reins wait` returns;
//! - a whole turn through reins (`send --no-wait`, then `wait --message`
//!   returns) against the same turn driven directly over the agent's pipes
//!   by a minimal client in this file: the difference is reins' overhead.
//!
//! For the agents that have both, a turn over ACP against the same turn
//! through their terminal UI (`--pty`, read off the screen): what each
//! turn costs on one transport more than on the other.
//!
//! Needs the agent CLIs (`scripts/install-agents --extra`) and a
//! loopback-only network namespace, like the real-agent tests:
//!
//! ```text
//! scripts/netns-run cargo bench --bench transports [-- FILTER...]
//! ```
//!
//! With FILTERs, only the transports whose label contains one of them run
//! (`-- acp`, `-- codex`). Results go to `benches/results/<date>-transports.md`.

#[path = "../tests/support/agents.rs"]
mod agents;
mod common;
// Checked as a test target too (`clippy --all-targets`), where its own unit
// tests' imports go unused without a harness.
#[allow(unused_imports)]
#[path = "../tests/support/mock_model.rs"]
mod mock_model;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};

use agents::{Agent, AgentHome, agents_bin_dir, fixtures_dir, in_isolated_netns};
use common::{Row, median, ms, p99, report};
use mock_model::MockModel;

/// Turns measured per transport.
const TURNS: usize = 20;

fn main() {
    if agents_bin_dir().is_none() || !in_isolated_netns() {
        eprintln!(
            "SKIPPED: needs the agent CLIs (scripts/install-agents) and a loopback-only \
             network namespace: scripts/netns-run cargo bench --bench transports"
        );
        return;
    }
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |label: &str| filters.is_empty() || filters.iter().any(|f| label.contains(f));
    let mut rows = Vec::new();
    if wanted("codex app-server") {
        rows.extend(measure(
            Seed::Agent(Agent::Codex),
            "codex app-server",
            &["run", "codex"],
            direct_codex,
        ));
    }
    if wanted("claude stream-json") {
        rows.extend(measure(
            Seed::Agent(Agent::Claude),
            "claude stream-json",
            &["run", "claude", "--transport", "stream-json"],
            direct_claude,
        ));
    }
    let acp_agents = [
        (Seed::Agent(Agent::Gemini), "gemini", ["gemini", "--acp"].as_slice(), true),
        (Seed::OpenCode, "opencode", &["opencode", "acp"], true),
        (Seed::Qwen, "qwen", &["qwen", "--acp"], false),
    ];
    for (seed, name, acp_argv, has_pty) in acp_agents {
        let label = format!("{name} acp");
        if !wanted(&label) || !agents_bin_dir().unwrap().join(name).exists() {
            continue;
        }
        let run = ["run", name, "--transport", "acp"];
        let (acp_rows, acp_turn) =
            measure_with(seed, &label, &run, |world| direct_acp(world, acp_argv));
        rows.extend(acp_rows);
        if has_pty {
            let label = format!("{name} pty");
            let (pty_rows, pty_turn, detect) = measure_reins(seed, &label, &["run", name, "--pty"]);
            // A screen is read once it has been quiet for the profile's
            // window: no target here.
            rows.push(Row::measured(
                format!("{label}: model's last byte → `task_complete` written"),
                format!("median {}, max {}", ms(median(detect.clone())), ms(max(&detect))),
            ));
            rows.extend(pty_rows);
            rows.push(Row::measured(
                format!("{name}: one turn through its terminal UI minus one over ACP"),
                format!(
                    "{} ({} against {})",
                    signed_ms(pty_turn, acp_turn),
                    ms(pty_turn),
                    ms(acp_turn)
                ),
            ));
        }
    }
    report("transports", &rows);
}

/// `a - b` in milliseconds, with its sign.
fn signed_ms(a: Duration, b: Duration) -> String {
    let diff = a.as_secs_f64() - b.as_secs_f64();
    format!("{:+.2} ms", diff * 1000.0)
}

/// How an agent's home is seeded (tests/support/agents.rs knows the first
/// three; OpenCode and Qwen Code are seeded as tests/test_acp_real.rs does).
#[derive(Debug, Clone, Copy)]
enum Seed {
    Agent(Agent),
    OpenCode,
    Qwen,
}

impl Seed {
    fn home(self, root: &std::path::Path, base_url: &str) -> AgentHome {
        let (dir, vars): (&str, Vec<(&str, String)>) = match self {
            Seed::Agent(agent) => return AgentHome::seed(agent, root, base_url).unwrap(),
            Seed::OpenCode => (
                "opencode",
                vec![
                    ("OPENCODE_DISABLE_MODELS_FETCH", "1".into()),
                    ("OPENCODE_DISABLE_AUTOUPDATE", "1".into()),
                ],
            ),
            Seed::Qwen => (
                "qwen",
                vec![
                    ("OPENAI_API_KEY", "mock-key".into()),
                    ("OPENAI_BASE_URL", format!("{base_url}/v1")),
                    ("OPENAI_MODEL", "mock-model".into()),
                ],
            ),
        };
        let mut home = AgentHome::seed_from(&fixtures_dir().join(dir), root, base_url).unwrap();
        home.env.extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        home
    }
}

/// One agent's world: the mock model and a seeded home, plus reins' state.
struct World {
    _root: tempfile::TempDir,
    model: MockModel,
    home: AgentHome,
    env: Vec<(String, String)>,
}

impl World {
    fn new(seed: Seed) -> World {
        let root = tempfile::Builder::new().prefix("rt").tempdir_in("/tmp").unwrap();
        let model = MockModel::start(None).expect("start the mock model");
        let home = seed.home(&root.path().join("agent"), &model.base_url());
        let mut env = home.env.clone();
        for dir in ["state", "run"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        env.push(("REINS_STATE_DIR".into(), root.path().join("state").display().to_string()));
        env.push(("XDG_RUNTIME_DIR".into(), root.path().join("run").display().to_string()));
        World { _root: root, model, home, env }
    }

    fn reins(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_reins"))
            .args(args)
            .current_dir(&self.home.work)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reins {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// When the mock model finished each text response, in order.
    fn last_bytes(&self) -> Vec<Timestamp> {
        self.model
            .requests()
            .iter()
            .filter(|r| r["kind"] == "text")
            .filter_map(|r| r["finished_at"].as_str()?.parse().ok())
            .collect()
    }

    /// Starts `program args...` in the agent's home with its environment.
    fn spawn(&self, argv: &[&str]) -> Child {
        let program = agents_bin_dir().unwrap().join(argv[0]);
        Command::new(program)
            .args(&argv[1..])
            .current_dir(&self.home.work)
            .env_clear()
            .envs(self.home.env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// The last model byte at or before `at`.
fn last_before(bytes: &[Timestamp], at: Timestamp) -> Option<Timestamp> {
    bytes.iter().copied().filter(|b| *b <= at).max()
}

fn since(earlier: Timestamp, later: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or_default()
}

/// A turn driven directly: how long it took, and when its end was read.
type Answered = (Duration, Timestamp);

/// Measures `TURNS` turns through reins and `TURNS` driven directly.
fn measure(seed: Seed, label: &str, run: &[&str], direct: fn(&World) -> Vec<Answered>) -> Vec<Row> {
    measure_with(seed, label, run, direct).0
}

/// [`measure`], and the median turn through reins.
fn measure_with(
    seed: Seed,
    label: &str,
    run: &[&str],
    direct: impl Fn(&World) -> Vec<Answered>,
) -> (Vec<Row>, Duration) {
    let (rows, through_reins, detect) = measure_reins(seed, label, run);
    eprintln!("{label}: {TURNS} turns driven directly…");
    let direct_world = World::new(seed);
    let answered = direct(&direct_world);
    let through_pipes: Vec<Duration> = answered.iter().map(|(took, _)| *took).collect();
    // The agent's own time from its model's last byte to its turn's end,
    // seen by a client that does nothing else: what reins cannot beat.
    let bytes = direct_world.last_bytes();
    let own: Vec<Duration> = answered
        .iter()
        .filter_map(|(_, at)| last_before(&bytes, *at).map(|last| since(last, *at)))
        .collect();
    let overhead = through_reins.saturating_sub(median(through_pipes.clone()));
    let slack = median(own.clone()) + Duration::from_millis(50);
    let mut all = vec![
        Row {
            what: format!("{label}: model's last byte → `task_complete` written"),
            got: format!("median {}, max {}", ms(median(detect.clone())), ms(max(&detect))),
            target: format!("< 50 ms more than directly ({})", ms(slack)),
            ok: Some(median(detect) < slack),
        },
        Row::measured(
            format!("{label}: model's last byte → the turn's end read directly"),
            format!("median {}, max {}", ms(median(own.clone())), ms(max(&own))),
        ),
    ];
    all.extend(rows);
    all.extend([
        Row {
            what: format!("{label}: one turn driven directly (minimal client)"),
            got: format!(
                "median {}, p99 {}",
                ms(median(through_pipes.clone())),
                ms(p99(through_pipes))
            ),
            target: "-".into(),
            ok: None,
        },
        Row {
            what: format!("{label}: reins' overhead per turn"),
            got: ms(overhead),
            target: "< 50 ms".into(),
            ok: Some(overhead < Duration::from_millis(50)),
        },
    ]);
    (all, through_reins)
}

/// `TURNS` turns through reins: the rows (but the first), the median
/// whole turn, and each turn's model's last byte → `task_complete`.
fn measure_reins(seed: Seed, label: &str, run: &[&str]) -> (Vec<Row>, Duration, Vec<Duration>) {
    eprintln!("{label}: {TURNS} turns through reins…");
    let world = World::new(seed);
    let mut args = run.to_vec();
    args.extend(["--id", "b", "--detach"]);
    world.reins(&args);
    world.reins(&["wait", "--id", "b", "--until", "ready", "--timeout", "60s"]);

    let mut through_reins = Vec::new();
    let mut detect = Vec::new();
    let mut wake = Vec::new();
    for i in 0..TURNS {
        let started = Instant::now();
        let sent = world.reins(&["send", "--id", "b", "--no-wait", &format!("bench turn {i}")]);
        let message = sent["message_id"].as_str().unwrap().to_string();
        let waited = world.reins(&["wait", "--id", "b", "--message", &message, "--timeout", "60s"]);
        let returned = Timestamp::now();
        through_reins.push(started.elapsed());
        assert_eq!(waited["event"]["type"], "task_complete", "{waited}");
        let done: Timestamp = waited["event"]["ts"].as_str().unwrap().parse().unwrap();
        wake.push(since(done, returned));
        if let Some(last) = last_before(&world.last_bytes(), done) {
            detect.push(since(last, done));
        }
    }
    world.reins(&["stop", "--id", "b"]);

    let turn = median(through_reins.clone());
    let rows = vec![
        Row {
            what: format!("{label}: `task_complete` written → `wait` returns"),
            got: format!("median {}, p99 {}", ms(median(wake.clone())), ms(p99(wake.clone()))),
            target: "< 25 ms".into(),
            ok: Some(median(wake) < Duration::from_millis(25)),
        },
        Row {
            what: format!("{label}: one turn through reins (`send` + `wait`)"),
            got: format!(
                "median {}, p99 {}",
                ms(median(through_reins.clone())),
                ms(p99(through_reins))
            ),
            target: "-".into(),
            ok: None,
        },
    ];
    (rows, turn, detect)
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

/// A line-protocol peer on a child's pipes.
struct Pipes {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Pipes {
    fn new(mut child: Child) -> Pipes {
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Pipes { child, stdin, stdout }
    }

    fn send(&mut self, value: Value) {
        writeln!(self.stdin, "{value}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Reads lines until one satisfies `done`; returns it.
    fn until(&mut self, done: impl Fn(&Value) -> bool) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the agent closed its stdout");
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && done(&value)
            {
                return value;
            }
        }
    }
}

impl Drop for Pipes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `codex app-server` by hand: handshake, a thread, then `turn/start` →
/// `turn/completed` per turn.
fn direct_codex(world: &World) -> Vec<Answered> {
    let mut codex = Pipes::new(world.spawn(&["codex", "app-server"]));
    let cwd = world.home.work.display().to_string();
    codex.send(json!({ "id": 1, "method": "initialize", "params": {
        "clientInfo": { "name": "bench", "title": "bench", "version": "0" },
        "capabilities": { "experimentalApi": false, "optOutNotificationMethods": [
            "item/agentMessage/delta", "item/reasoning/textDelta",
            "item/reasoning/summaryTextDelta", "item/commandExecution/outputDelta"] } } }));
    codex.until(|v| v["id"] == 1);
    codex.send(json!({ "method": "initialized" }));
    codex.send(json!({ "id": 2, "method": "thread/start", "params": { "cwd": cwd } }));
    let thread =
        codex.until(|v| v["id"] == 2)["result"]["thread"]["id"].as_str().unwrap().to_string();
    (0..TURNS)
        .map(|i| {
            let started = Instant::now();
            codex.send(json!({ "id": 10 + i, "method": "turn/start", "params": {
                "threadId": thread, "input": [{ "type": "text", "text": format!("direct turn {i}") }] } }));
            codex.until(|v| v["method"] == "turn/completed");
            (started.elapsed(), Timestamp::now())
        })
        .collect()
}

/// `claude -p` in stream-json by hand: one user message → its `result`.
fn direct_claude(world: &World) -> Vec<Answered> {
    let argv = [
        "claude",
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
    ];
    let mut claude = Pipes::new(world.spawn(&argv));
    (0..TURNS)
        .map(|i| {
            let started = Instant::now();
            claude.send(json!({ "type": "user", "message": {
                "role": "user", "content": [{ "type": "text", "text": format!("direct turn {i}") }] } }));
            claude.until(|v| v["type"] == "result");
            (started.elapsed(), Timestamp::now())
        })
        .collect()
}

/// An ACP agent by hand: `initialize`, `session/new`, then one
/// `session/prompt` per turn, timed to its response.
fn direct_acp(world: &World, argv: &[&str]) -> Vec<Answered> {
    let mut acp = Pipes::new(world.spawn(argv));
    let cwd = world.home.work.display().to_string();
    acp.send(json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": 1,
        "clientCapabilities": { "fs": { "readTextFile": false, "writeTextFile": false },
                                "terminal": false } } }));
    acp.until(|v| v["id"] == 1 && v.get("method").is_none());
    acp.send(json!({ "jsonrpc": "2.0", "id": 2, "method": "session/new",
                     "params": { "cwd": cwd, "mcpServers": [] } }));
    let session = acp.until(|v| v["id"] == 2 && v.get("method").is_none())["result"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    (0..TURNS)
        .map(|i| {
            let id = 10 + i;
            let started = Instant::now();
            acp.send(json!({ "jsonrpc": "2.0", "id": id, "method": "session/prompt", "params": {
                "sessionId": session,
                "prompt": [{ "type": "text", "text": format!("direct turn {i}") }] } }));
            // The prompt's response; the agent's own requests carry a method.
            acp.until(|v| v["id"] == id && v.get("method").is_none());
            (started.elapsed(), Timestamp::now())
        })
        .collect()
}
