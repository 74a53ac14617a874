//! The real agent CLIs — Codex 0.169.0, Claude Code 2.1.197, Gemini CLI
//! 0.61.0 — driven by reins through their terminal UIs in tmux, offline,
//! against the project's mock model on 127.0.0.1.
//!
//! They need the CLIs (`scripts/install-agents`) and a loopback-only
//! network namespace (`scripts/netns-run`, which `scripts/test` uses), so
//! no byte can leave the machine. Without either they say so and skip —
//! except where `REINS_TEST_REQUIRE_TOOLS=1` (CI), where that fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, session_members};
use crate::support::agents::{Agent, AgentHome, agents_bin_dir, in_isolated_netns};
use crate::support::live;
use crate::support::mock_model::MockModel;

/// A live run's world: the test environment, the mock model and the
/// agent's seeded home.
struct Live {
    env: TestEnv,
    model: MockModel,
    home: AgentHome,
    agent: Agent,
}

/// Sets up a live run, or explains (loudly) why it cannot.
fn live(agent: Agent) -> Option<Live> {
    let missing = if agents_bin_dir().is_none() {
        Some("the agent CLIs are not installed (scripts/install-agents)")
    } else if !in_isolated_netns() {
        Some("not inside a loopback-only network namespace (scripts/netns-run)")
    } else {
        None
    };
    let (env, model, home) =
        live::world(missing, |dir, url| AgentHome::seed(agent, &dir.join(agent.name()), url))?;
    Some(Live { env, model, home, agent })
}

impl Live {
    fn id(&self) -> &'static str {
        self.agent.name()
    }

    fn reins(&self, args: &[&str]) -> crate::common::Run {
        self.env.reins(args)
    }

    /// Starts the agent in a tmux window and waits until it reads ready.
    fn start(&self, extra: &[&str]) -> Value {
        let work = self.home.work.to_str().unwrap();
        let mut args = vec!["run", self.id(), "--id", self.id(), "--tmux", "--cwd", work];
        if matches!(self.agent, Agent::Codex | Agent::Gemini) {
            // This test is about the terminal UI; the app-server and ACP
            // have their own (test_acp_real for Gemini).
            args.push("--pty");
        }
        args.extend_from_slice(extra);
        let started = self.reins(&args).ok().json();
        let ready =
            self.reins(&["wait", "--id", self.id(), "--until", "ready", "--timeout", "60s"]);
        assert_eq!(
            ready.code,
            0,
            "{} never read ready:\n{}\n{}",
            self.id(),
            ready.stdout,
            self.screen()
        );
        started
    }

    fn screen(&self) -> String {
        self.reins(&["pane", "--id", self.id()]).stdout
    }

    /// The marker that makes the mock model ask for a shell command that
    /// needs approval.
    fn tool_prompt(&self, file: &str) -> String {
        match self.agent {
            // Codex runs plain commands in its read-only sandbox without
            // asking; an escalated one needs approval.
            Agent::Codex => format!("[[runx:touch {file}]] go"),
            _ => format!("[[run:touch {file}]] go"),
        }
    }

    fn events(&self) -> Vec<Value> {
        self.env.events(self.id())
    }

    fn events_of(&self, id: &str) -> Vec<Value> {
        self.env.events(id)
    }
}

fn drive(agent: Agent) {
    let Some(live) = live(agent) else { return };
    let id = live.id();
    let started = live.start(&[]);
    let agent_pid = started["pid"].as_u64().unwrap() as u32;

    // A task: delivered (verified), busy, done.
    let sent = live
        .reins(&[
            "send",
            "--id",
            id,
            "--wait-for-idle",
            "--timeout",
            "90s",
            "hello reins [[wait:1]]",
        ])
        .ok()
        .json();
    assert_eq!(sent["status"], "delivered", "{sent}");
    assert_eq!(sent["task"]["status"], "completed", "{sent}");
    let turn = sent["turn"].as_u64().unwrap();
    let events = live.events();
    let busy_in_turn = events.iter().any(|e| e["type"] == "state" && e["to"] == "busy");
    assert!(busy_in_turn, "the turn was seen busy:\n{events:#?}");
    assert!(live.screen().contains("MOCK_OK (you said: hello reins"), "{}", live.screen());
    let logs = live.reins(&["logs", "--id", id]).ok().stdout;
    assert!(logs.contains("MOCK_OK (you said: hello reins"), "{logs}");

    // A tool call that needs approval: blocked, approved, really run.
    let made = live.home.work.join("made-by-reins.txt");
    let prompt = live.tool_prompt("made-by-reins.txt");
    let sent = live.reins(&["send", "--id", id, "--timeout", "90s", &prompt]).ok().json();
    assert_eq!(sent["turn"].as_u64(), Some(turn + 1), "{sent}");
    let blocked = live.reins(&["wait", "--id", id, "--until", "blocked", "--timeout", "60s"]);
    assert_eq!(blocked.code, 0, "no approval dialog:\n{}", live.screen());
    let status = live.reins(&["status", "--id", id, "--json"]).ok().json();
    assert_eq!(status[0]["state"], "blocked");
    assert_eq!(status[0]["kind"], "approval");
    // The request has a name, in status and in its `blocked` event.
    let request = status[0]["approval"]["request"].as_str().expect("a named request").to_string();
    let asked = live.events().into_iter().find(|e| e["type"] == "blocked").expect("blocked");
    assert_eq!(asked["request"], request.as_str());
    assert!(!made.exists(), "nothing ran before the approval");
    let answered = live.reins(&["approve", "--id", id, "--request", &request]).ok().json();
    assert_eq!(answered["request"], request.as_str());
    let done = live.reins(&["wait", "--id", id, "--until", "task_complete", "--timeout", "90s"]);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, live.screen());
    assert!(made.exists(), "the approved command ran");
    // No approval dialog now: approve refuses and types nothing, and the
    // answered request is not pending any more.
    live.reins(&["approve", "--id", id]).code(1);
    let late = live.reins(&["approve", "--id", id, "--request", &request]).code(1);
    assert!(late.stderr.contains("no longer pending"), "{}", late.stderr);

    // Stop ends the whole process tree.
    let out = live.reins(&["stop", "--id", id, "--timeout", "20s"]).ok().json();
    assert_eq!(out["status"], "stopped");
    eventually(Duration::from_secs(10), "the agent's processes to end", || {
        !alive(agent_pid) && session_members(agent_pid).is_empty()
    });
    let events = live.events();
    assert_eq!(events.last().unwrap()["type"], "exited");
    let approvals = events.iter().filter(|e| e["type"] == "approval").count();
    assert_eq!(approvals, 1);
    assert!(
        events.iter().any(|e| e["type"] == "usage"),
        "usage read from the screen:\n{events:#?}"
    );
    let requests = live.model.requests();
    assert!(
        requests.iter().any(|r| r["kind"] == "tool_call"),
        "the model was asked for a tool call"
    );
}

#[test]
fn real_codex_runs_a_task_and_an_approved_command() {
    drive(Agent::Codex);
}

#[test]
fn real_claude_runs_a_task_and_an_approved_command() {
    drive(Agent::Claude);
}

#[test]
fn real_gemini_runs_a_task_and_an_approved_command() {
    drive(Agent::Gemini);
}

/// 50 send → task_complete cycles: none stranded, none lost, none
/// mis-fenced. Prints how long reins took to see each turn end after the
/// mock model sent its last byte.
fn soak(agent: Agent) {
    let Some(live) = live(agent) else { return };
    let id = live.id();
    live.start(&[]);
    let started = Instant::now();
    for i in 1..=50u64 {
        let sent = live.reins(&["send", "--id", id, "--timeout", "60s", &format!("cycle {i}")]);
        assert_eq!(sent.code, 0, "cycle {i}: {}\n{}", sent.stdout, live.screen());
        let sent = sent.json();
        assert_eq!(sent["turn"], i, "cycle {i}: {sent}");
        let done =
            live.reins(&["wait", "--id", id, "--until", "task_complete", "--timeout", "60s"]);
        assert_eq!(done.code, 0, "cycle {i}: {}\n{}", done.stdout, live.screen());
        assert_eq!(done.json()["turn"], i);
    }
    let events = live.events();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("stranded"), 0);
    assert_eq!(count("delivered"), 50);
    assert_eq!(count("task_complete"), 50);
    let lags = turn_end_lags(&live.model.requests(), &events);
    eprintln!(
        "{}: 50 cycles in {:.1}s; model's last byte → task_complete: median {:.0} ms, max {:.0} ms",
        id,
        started.elapsed().as_secs_f64(),
        percentile(&lags, 50),
        percentile(&lags, 100)
    );
    let _ = std::fs::write(
        PathBuf::from(std::env::var("REINS_TEST_REPORT_DIR").unwrap_or_else(|_| "/tmp".into()))
            .join(format!("reins-turn-lag-{id}.txt")),
        format!("{lags:?}\n"),
    );
    live.reins(&["stop", "--id", id]).ok();
}

/// For every task_complete: milliseconds since the mock model finished the
/// last response that began before it.
fn turn_end_lags(requests: &[Value], events: &[Value]) -> Vec<f64> {
    let ms = |ts: &str| ts.parse::<jiff::Timestamp>().unwrap().as_millisecond() as f64;
    let finished: Vec<f64> = requests
        .iter()
        .filter(|r| r["kind"] == "text" && !r["finished_at"].is_null())
        .map(|r| ms(r["finished_at"].as_str().unwrap()))
        .collect();
    events
        .iter()
        .filter(|e| e["type"] == "task_complete")
        .filter_map(|e| {
            let done = ms(e["ts"].as_str().unwrap());
            let last = finished.iter().copied().filter(|f| *f <= done).fold(f64::NAN, f64::max);
            (!last.is_nan()).then_some(done - last)
        })
        .collect()
}

fn percentile(values: &[f64], p: usize) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v.get((v.len().saturating_sub(1)) * p / 100).copied().unwrap_or(f64::NAN)
}

#[test]
fn real_codex_soak() {
    soak(Agent::Codex);
}

#[test]
fn real_claude_soak() {
    soak(Agent::Claude);
}

#[test]
fn real_gemini_soak() {
    soak(Agent::Gemini);
}

/// `reins doctor` finds the installed CLIs at their tested versions, and
/// the real `codex app-server` answers its handshake.
#[test]
fn real_doctor_finds_every_installed_agent() {
    let Some(live) = live(Agent::Codex) else { return };
    // Every agent starts at once (ACP ones too): a loaded machine needs
    // more than the default 10 s.
    let args = ["doctor", "codex", "claude", "gemini", "tmux", "--json", "--timeout", "60"];
    let report = live.reins(&args).ok().json();
    assert_eq!(report["ok"], true, "{report}");
    for agent in Agent::ALL {
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == agent.name())
            .unwrap_or_else(|| panic!("no check for {}: {report}", agent.name()));
        assert_eq!(check["status"], "ok", "{check}");
        assert_eq!(check["tested"], true, "the pinned version is the tested one: {check}");
    }
    let codex = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "codex").unwrap();
    assert!(codex["detail"].as_str().unwrap().contains("app-server handshake ok"), "{codex}");
}

/// `reins run codex` talks to `codex app-server`: turns, usage, approvals
/// under each policy, a failed turn, interrupt, steer and stop.
#[test]
fn real_codex_app_server_end_to_end() {
    let Some(live) = live(Agent::Codex) else { return };
    let work = live.home.work.to_str().unwrap();
    let run = |id: &str, extra: &[&str]| {
        let mut args = vec!["run", "codex", "--id", id, "--detach", "--cwd", work];
        args.extend_from_slice(extra);
        let started = live.reins(&args).ok().json();
        assert_eq!(
            live.reins(&["wait", "--id", id, "--until", "ready", "--timeout", "30s"]).code,
            0
        );
        started
    };
    let started = run("app", &[]);
    assert_eq!(live.events_of("app")[0]["transport"], "codex-app-server");

    // A turn with the server's own turn id and token usage.
    let sent = live
        .reins(&["send", "--id", "app", "--wait-for-idle", "--timeout", "60s", "hello app-server"])
        .ok()
        .json();
    assert_eq!(sent["task"]["status"], "completed");
    let usage =
        live.events_of("app").into_iter().find(|e| e["type"] == "usage").expect("a usage event");
    assert!(usage["total_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(usage["turn"], 1);
    let status = live.reins(&["status", "--id", "app", "--json"]).ok().json();
    assert!(
        status[0]["usage"]["total_tokens"].is_string() || status[0]["usage"].is_object(),
        "{status}"
    );
    assert!(
        live.reins(&["pane", "--id", "app"])
            .ok()
            .stdout
            .contains("MOCK_OK (you said: hello app-server)")
    );

    // Approval, asked: blocked until `reins approve`.
    let made = live.home.work.join("asked.txt");
    live.reins(&["send", "--id", "app", "--timeout", "60s", "[[runx:touch asked.txt]] go"]).ok();
    assert_eq!(
        live.reins(&["wait", "--id", "app", "--until", "blocked", "--timeout", "30s"]).code,
        0
    );
    assert!(!made.exists());
    let status = live.reins(&["status", "--id", "app", "--json"]).ok().json();
    let request = status[0]["approval"]["request"].as_str().expect("a named request").to_string();
    live.reins(&["approve", "--id", "app", "--request", &request]).ok();
    live.reins(&["wait", "--id", "app", "--until", "task_complete", "--timeout", "60s"]).ok();
    assert!(made.exists(), "approved command ran");
    // ...or `reins approve --deny`: the command does not run, the turn ends.
    let refused = live.home.work.join("refused.txt");
    live.reins(&["send", "--id", "app", "--timeout", "60s", "[[runx:touch refused.txt]] go"]).ok();
    assert_eq!(
        live.reins(&["wait", "--id", "app", "--until", "blocked", "--timeout", "30s"]).code,
        0
    );
    live.reins(&["approve", "--id", "app", "--deny"]).ok();
    live.reins(&["wait", "--id", "app", "--until", "task_complete", "--timeout", "60s"]).ok();
    assert!(!refused.exists(), "denied command did not run");
    let answered: Vec<String> = live
        .events_of("app")
        .iter()
        .filter(|e| e["type"] == "approval")
        .map(|e| format!("{}/{}", e["decision"].as_str().unwrap(), e["by"].as_str().unwrap()))
        .collect();
    assert_eq!(answered, ["allow/client", "deny/client"]);

    // A model error fails the turn; the session stays usable.
    let failed = live
        .reins(&[
            "send",
            "--id",
            "app",
            "--wait-for-idle",
            "--timeout",
            "60s",
            "[[error:500]] boom",
        ])
        .ok()
        .json();
    assert_eq!(failed["task"]["status"], "failed", "{failed}");
    let again = live
        .reins(&["send", "--id", "app", "--wait-for-idle", "--timeout", "60s", "still there?"])
        .ok()
        .json();
    assert_eq!(again["task"]["status"], "completed");

    // Interrupt a long turn.
    live.reins(&["send", "--id", "app", "--timeout", "60s", "[[wait:20]] long"]).ok();
    live.reins(&["interrupt", "--id", "app"]).ok();
    let done = live
        .reins(&["wait", "--id", "app", "--until", "task_complete", "--timeout", "30s"])
        .ok()
        .json();
    assert_eq!(done["event"]["status"], "interrupted", "{done}");

    // Steer: a forced message goes into the running turn.
    let first =
        live.reins(&["send", "--id", "app", "--timeout", "60s", "[[wait:3]] first"]).ok().json();
    let steered = live
        .reins(&["send", "--id", "app", "--force", "--timeout", "60s", "and this too"])
        .ok()
        .json();
    assert_eq!(steered["status"], "delivered", "{steered}");
    assert_eq!(steered["turn"], first["turn"], "steered into the same turn");
    live.reins(&["wait", "--id", "app", "--until", "task_complete", "--timeout", "60s"]).ok();

    // Stop: nothing left.
    let pid = started["pid"].as_u64().unwrap() as u32;
    live.reins(&["stop", "--id", "app"]).ok();
    eventually(Duration::from_secs(10), "app-server to end", || {
        !alive(pid) && session_members(pid).is_empty()
    });
    assert_eq!(live.events_of("app").last().unwrap()["reason"], "stopped");

    // Policies: auto allows, never declines; neither waits for anyone.
    run("auto", &["--approve", "auto"]);
    live.reins(&[
        "send",
        "--id",
        "auto",
        "--wait-for-idle",
        "--timeout",
        "60s",
        "[[runx:touch auto.txt]] go",
    ])
    .ok();
    assert!(live.home.work.join("auto.txt").exists());
    run("never", &["--approve", "never"]);
    live.reins(&[
        "send",
        "--id",
        "never",
        "--wait-for-idle",
        "--timeout",
        "60s",
        "[[runx:touch never.txt]] go",
    ])
    .ok();
    assert!(!live.home.work.join("never.txt").exists(), "declined command did not run");
    let decisions: Vec<String> = ["auto", "never"]
        .iter()
        .flat_map(|id| live.events_of(id))
        .filter(|e| e["type"] == "approval")
        .map(|e| format!("{}/{}", e["decision"].as_str().unwrap(), e["by"].as_str().unwrap()))
        .collect();
    assert_eq!(decisions, ["allow/policy", "deny/policy"]);
    for id in ["auto", "never"] {
        live.reins(&["stop", "--id", id]).ok();
    }
    let _ = live.id();
}

/// A watched codex app-server session whose model request hangs mid-turn:
/// no app-server message for the stall window is a stall; the watcher
/// interrupts the turn and nudges, and the nudge's turn completes.
#[test]
fn real_codex_app_server_hang_is_detected_and_recovered() {
    let Some(live) = live(Agent::Codex) else { return };
    let work = live.home.work.to_str().unwrap();
    live.reins(&["run", "codex", "--id", "hang", "--detach", "--cwd", work]).ok();
    live.reins(&["wait", "--id", "hang", "--until", "ready", "--timeout", "30s"]).ok();
    let mut watcher = live.env.spawn(&[
        "watch",
        "--id",
        "hang",
        "--stall-after",
        "3s",
        "--json",
        "--on-exit",
        "leave",
    ]);
    live.reins(&["send", "--id", "hang", "--timeout", "60s", "[[wait:300]] think hard"]).ok();
    let completed = |events: &[Value]| {
        events.iter().any(|e| e["type"] == "task_complete" && e["status"] == "completed")
    };
    eventually(Duration::from_secs(60), "the nudge's turn to complete", || {
        completed(&live.events_of("hang"))
    });
    let events = live.events_of("hang");
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e["type"].as_str(), Some("stall" | "resume" | "task_complete")))
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    // The watcher writes `resume` once the nudge is queued, which can be
    // just before or just after the host ends the interrupted turn.
    assert!(
        kinds == ["stall", "resume", "task_complete", "task_complete"]
            || kinds == ["stall", "task_complete", "resume", "task_complete"],
        "{events:#?}"
    );
    let done: Vec<&Value> = events.iter().filter(|e| e["type"] == "task_complete").collect();
    assert_eq!(done[0]["status"], "interrupted", "the hung turn was interrupted");
    assert_eq!(done[1]["status"], "completed");
    let stall = events.iter().find(|e| e["type"] == "stall").unwrap();
    assert_eq!(stall["progress"], "protocol", "{stall}");
    live.reins(&["stop", "--id", "hang"]).ok();
    let status = watcher.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut watcher.stdout.take().unwrap(), &mut out).unwrap();
    assert_eq!(status.code(), Some(0), "{out}");
    let summary: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["resumes"], 1);
}

/// `reins run claude --transport stream-json`: turns with usage, a tool
/// call end to end (allowed by `--approve auto`), stop.
#[test]
fn real_claude_stream_json_end_to_end() {
    let Some(live) = live(Agent::Claude) else { return };
    let work = live.home.work.to_str().unwrap();
    let args = [
        "run",
        "claude",
        "--transport",
        "stream-json",
        "--approve",
        "auto",
        "--id",
        "sj",
        "--detach",
        "--cwd",
        work,
    ];
    let started = live.reins(&args).ok().json();
    assert_eq!(live.events_of("sj")[0]["transport"], "claude-stream-json");
    let first = live
        .reins(&["send", "--id", "sj", "--wait-for-idle", "--timeout", "60s", "hello stream"])
        .ok()
        .json();
    assert_eq!(first["task"]["status"], "completed", "{first}");
    let tool = live
        .reins(&[
            "send",
            "--id",
            "sj",
            "--wait-for-idle",
            "--timeout",
            "60s",
            "[[run:touch stream.txt]] go",
        ])
        .ok()
        .json();
    assert_eq!(tool["turn"], 2);
    assert!(live.home.work.join("stream.txt").exists(), "the tool call ran");
    let pane = live.reins(&["pane", "--id", "sj"]).ok().stdout;
    assert!(pane.contains("$ Bash(touch stream.txt)"), "{pane}");
    assert!(pane.contains("• MOCK_OK (you said: hello stream)"), "{pane}");
    let usage: Vec<Value> =
        live.events_of("sj").into_iter().filter(|e| e["type"] == "usage").collect();
    assert_eq!(usage.len(), 2);
    assert!(usage[1]["agent_session_id"].is_string());
    let pid = started["pid"].as_u64().unwrap() as u32;
    live.reins(&["stop", "--id", "sj"]).ok();
    eventually(Duration::from_secs(10), "claude to end", || {
        !alive(pid) && session_members(pid).is_empty()
    });
}

/// A real codex app-server session at a usage limit (the mock model's HTTP
/// 429 with its reset headers): `blocked{rate_limit}` with the reset time
/// from `account/rateLimits/updated`, lifted at the reset, and resumed
/// without a human because `--on-rate-limit resume` asked for it.
#[test]
fn real_codex_app_server_usage_limit_is_waited_out_and_resumed() {
    let Some(live) = live(Agent::Codex) else { return };
    let work = live.home.work.to_str().unwrap();
    live.reins(&[
        "run",
        "codex",
        "--id",
        "rl",
        "--detach",
        "--cwd",
        work,
        "--on-rate-limit",
        "resume",
    ])
    .ok();
    live.reins(&["wait", "--id", "rl", "--until", "ready", "--timeout", "30s"]).ok();
    let sent = live
        .reins(&["send", "--id", "rl", "--wait-for-idle", "--timeout", "60s", "[[ratelimit:3]] go"])
        .ok()
        .json();
    assert_eq!(sent["task"]["status"], "failed", "{sent}");
    let limited = live
        .reins(&["wait", "--id", "rl", "--until", "rate_limited", "--timeout", "10s"])
        .ok()
        .json();
    let event = &limited["event"];
    assert_eq!(event["source"], "protocol", "{event}");
    let until: jiff::Timestamp = event["until"].as_str().expect("a reset time").parse().unwrap();
    let left = jiff::Timestamp::now().duration_until(until).as_secs_f64();
    assert!((-2.0..=4.0).contains(&left), "resets in about 3 s: {left}");
    assert!(event["message"].as_str().unwrap().contains("usage limit"), "{event}");
    let lifted = live
        .reins(&["wait", "--id", "rl", "--until", "rate_limit_lifted", "--timeout", "30s"])
        .ok()
        .json();
    assert_eq!(lifted["event"]["resumed"], true);
    let resume = lifted["event"]["message_id"].as_str().unwrap().to_string();
    let done =
        live.reins(&["wait", "--id", "rl", "--message", &resume, "--timeout", "60s"]).ok().json();
    assert_eq!(done["event"]["status"], "completed", "{done}");
    live.reins(&["stop", "--id", "rl"]).ok();
}

/// `reins dispatch` through a real agent: codex (its app-server) does the
/// task, a second codex session reviews it and answers the verdict, and
/// the check, the verdict and the real turn's tokens reach the outcome
/// store.
#[test]
fn real_codex_dispatch_is_checked_verified_and_recorded() {
    let Some(live) = live(Agent::Codex) else { return };
    let work = live.home.work.to_str().unwrap();
    // The mock model answers `[[say:TEXT]]` with TEXT: the worker and the
    // verifier (whose brief quotes the task) both say the verdict.
    let task = r#"[[say:{"accept": true, "feedback": "the notes are fine"}]] write the notes"#;
    let args = [
        "dispatch",
        "--agent",
        "codex",
        "--verifier",
        "codex",
        "--id",
        "rd",
        "--cwd",
        work,
        "--message",
        task,
        "--done",
        "cmd:true",
        "--timeout",
        "180s",
        "--json",
    ];
    let summary = live.reins(&args).ok().json();
    assert_eq!(summary["result"], "accepted", "{summary:#}");
    let attempts = summary["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{summary:#}");
    let attempt = &attempts[0];
    assert_eq!(attempt["agent"], "codex");
    assert_eq!(attempt["session"], "rd");
    assert_eq!(attempt["verifier"], "rd-verify", "the verifier's session");
    assert_eq!(attempt["feedback"], "the notes are fine", "{attempt:#}");
    assert_eq!(attempt["checks"][0]["ok"], true, "{attempt:#}");
    assert!(attempt["tokens"].as_u64().is_some_and(|t| t > 0), "real usage: {attempt:#}");
    // Both sessions ran through the app-server and are stopped.
    assert_eq!(live.events_of("rd")[0]["transport"], "codex-app-server");
    assert_eq!(live.events_of("rd-verify")[0]["transport"], "codex-app-server");
    let status = live.reins(&["status", "--json"]).ok().json();
    assert!(status.as_array().unwrap().iter().all(|s| s["host"] != "live"), "{status:#}");
    // The store says the same.
    let history = live.reins(&["dispatch", "--history", "--id", "rd", "--json"]).ok().json();
    let rows = history["attempts"].as_array().expect("history rows");
    assert_eq!(rows.len(), 1, "{history:#}");
    assert_eq!(rows[0]["result"], "accepted");
    assert_eq!(rows[0]["tokens"], attempt["tokens"]);
    // Its credentials are found where the seeded home keeps them: a custom
    // model provider whose key's variable config.toml names.
    let agents = live.reins(&["agents", "codex", "--json"]).ok().json();
    let availability = &agents["agents"][0]["availability"];
    assert_eq!(availability["available"], true, "{agents:#}");
    let auth = availability["auth"].as_str().unwrap_or_default();
    assert!(auth.starts_with("env MOCK_API_KEY (named in "), "{agents:#}");
    assert!(!agents.to_string().contains("mock-key"), "no credential's value is shown");
    // A probe is one real turn too: it succeeds and is recorded.
    let probed = live.reins(&["agents", "codex", "--probe", "--json"]).ok().json();
    let codex = &probed["agents"][0];
    assert_eq!(codex["probe"]["ok"], true, "{probed:#}");
    assert_eq!(codex["availability"]["last_probe"]["ok"], true, "{probed:#}");
}

/// `reins answer` on a real agent: a one-line, a multi-line and a
/// longer-than-a-screen answer (the mock model's `[[lines:N]]`), each the
/// same in `wait --until task_complete --json`. `exact`: a protocol gives
/// the text as the model sent it; a screen gives it as the agent drew it.
fn answers(live: &Live, id: &str, source: &str) {
    for (n, prompt) in [(1, "[[lines:1]] one"), (3, "[[lines:3]] three"), (80, "[[lines:80]] long")]
    {
        let sent =
            live.reins(&["send", "--id", id, "--no-wait", "--timeout", "90s", prompt]).ok().json();
        let message = sent["message_id"].as_str().unwrap();
        let waited = live.reins(&[
            "wait",
            "--id",
            id,
            "--message",
            message,
            "--until",
            "task_complete",
            "--timeout",
            "120s",
        ]);
        assert_eq!(waited.code, 0, "{id}: {}", waited.stdout);
        let want = crate::test_answer::lines(n);
        let waited = waited.json();
        let logs = || live.reins(&["logs", "--id", id]).stdout;
        assert_eq!(waited["answer"], want.as_str(), "{id}: {waited}\n{}", logs());
        let printed = live.reins(&["answer", "--id", id, "--message", message]).ok().stdout;
        assert_eq!(printed, format!("{want}\n"), "{id}");
        let json = live.reins(&["answer", "--id", id, "--json"]).ok().json();
        assert_eq!(json["source"], source, "{json}");
        assert_eq!(json["answer"], want.as_str());
    }
    live.reins(&["stop", "--id", id, "--timeout", "20s"]).ok();
}

#[test]
fn real_claude_answers_on_the_screen() {
    let Some(live) = live(Agent::Claude) else { return };
    live.start(&[]);
    answers(&live, live.id(), "screen");
}

#[test]
fn real_codex_answers_on_the_screen() {
    let Some(live) = live(Agent::Codex) else { return };
    live.start(&[]);
    answers(&live, live.id(), "screen");
}

#[test]
fn real_gemini_answers_on_the_screen() {
    let Some(live) = live(Agent::Gemini) else { return };
    live.start(&[]);
    answers(&live, live.id(), "screen");
}

#[test]
fn real_codex_app_server_answers_exactly() {
    let Some(live) = live(Agent::Codex) else { return };
    let work = live.home.work.to_str().unwrap();
    live.reins(&["run", "codex", "--id", "cx", "--detach", "--cwd", work]).ok();
    live.reins(&["wait", "--id", "cx", "--until", "ready", "--timeout", "30s"]).ok();
    answers(&live, "cx", "codex-app-server");
}

#[test]
fn real_claude_stream_json_answers_exactly() {
    let Some(live) = live(Agent::Claude) else { return };
    let work = live.home.work.to_str().unwrap();
    let args =
        ["run", "claude", "--transport", "stream-json", "--id", "sj", "--detach", "--cwd", work];
    live.reins(&args).ok();
    answers(&live, "sj", "claude-stream-json");
}
