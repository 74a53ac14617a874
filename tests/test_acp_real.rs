//! The real agents that speak the Agent Client Protocol — Gemini CLI
//! 0.61.0 (`gemini --acp`), OpenCode 1.18.33 (`opencode acp`), Qwen Code
//! 0.24.4 (`qwen --acp`) — driven by reins over ACP, offline, against the
//! project's mock model on 127.0.0.1: a turn with an answer, two turns back
//! to back with `wait` fenced to each, usage, a permission allowed (the
//! file appears) and one denied (it does not), a model error that fails
//! its turn and a next turn that succeeds, an interrupted long turn, stop.
//!
//! They need the CLIs (`scripts/install-agents --extra`) and a
//! loopback-only network namespace (`scripts/netns-run`); without either
//! they say so and skip, except under `REINS_TEST_REQUIRE_TOOLS=1`.

use std::io;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, session_members};
use crate::support::agents::{Agent, AgentHome, agents_bin_dir, fixtures_dir, in_isolated_netns};
use crate::support::live;
use crate::support::mock_model::MockModel;

/// An agent that speaks ACP.
#[derive(Debug, Clone, Copy)]
enum AcpAgent {
    Gemini,
    OpenCode,
    Qwen,
}

impl AcpAgent {
    fn name(self) -> &'static str {
        match self {
            AcpAgent::Gemini => "gemini",
            AcpAgent::OpenCode => "opencode",
            AcpAgent::Qwen => "qwen",
        }
    }

    /// Its seeded home: config files pointing it at the mock model, and
    /// the environment that keeps it offline and quiet.
    fn seed(self, root: &Path, base_url: &str) -> io::Result<AgentHome> {
        let base_url = base_url.trim_end_matches('/');
        let mut home = match self {
            AcpAgent::Gemini => return AgentHome::seed(Agent::Gemini, root, base_url),
            AcpAgent::OpenCode | AcpAgent::Qwen => {
                AgentHome::seed_from(&fixtures_dir().join(self.name()), root, base_url)?
            }
        };
        let vars: Vec<(&str, String)> = match self {
            AcpAgent::Gemini => unreachable!("seeded above"),
            // As tests/test_fourth_agent.rs: no models.dev fetch, no update.
            AcpAgent::OpenCode => vec![
                ("OPENCODE_DISABLE_MODELS_FETCH", "1".into()),
                ("OPENCODE_DISABLE_AUTOUPDATE", "1".into()),
            ],
            // An OpenAI-compatible provider (`security.auth.selectedType`
            // in the seed is `openai`).
            AcpAgent::Qwen => vec![
                ("OPENAI_API_KEY", "mock-key".into()),
                ("OPENAI_BASE_URL", format!("{base_url}/v1")),
                ("OPENAI_MODEL", "mock-model".into()),
            ],
        };
        home.env.extend(vars.into_iter().map(|(k, v)| (k.to_string(), v)));
        Ok(home)
    }
}

struct Live {
    env: TestEnv,
    model: MockModel,
    home: AgentHome,
    agent: AcpAgent,
}

/// Sets up a live run, or explains (loudly) why it cannot.
fn live(agent: AcpAgent) -> Option<Live> {
    let bin = agents_bin_dir();
    let missing = match &bin {
        None => Some("the agent CLIs are not installed (scripts/install-agents --extra)"),
        Some(bin) if !bin.join(agent.name()).exists() => {
            Some("opencode and qwen are not installed (scripts/install-agents --extra)")
        }
        Some(_) if !in_isolated_netns() => {
            Some("not inside a loopback-only network namespace (scripts/netns-run)")
        }
        Some(_) => None,
    };
    let (env, model, home) =
        live::world(missing, |dir, url| agent.seed(&dir.join(agent.name()), url))?;
    Some(Live { env, model, home, agent })
}

impl Live {
    fn reins(&self, args: &[&str]) -> crate::common::Run {
        self.env.reins(args)
    }

    fn events(&self) -> Vec<Value> {
        self.env.events(self.agent.name())
    }

    fn pane(&self) -> String {
        self.reins(&["pane", "--id", self.agent.name()]).ok().stdout
    }

    /// `send --wait-for-idle TEXT`: its JSON.
    fn turn(&self, text: &str) -> Value {
        let id = self.agent.name();
        self.reins(&["send", "--id", id, "--wait-for-idle", "--timeout", "120s", text]).ok().json()
    }

    fn wait(&self, until: &str) -> Value {
        let id = self.agent.name();
        let out = self.reins(&["wait", "--id", id, "--until", until, "--timeout", "120s"]);
        assert_eq!(out.code, 0, "{id}: no {until}: {}\n{}", out.stdout, self.pane());
        out.json()
    }

    /// A tool call that asks for permission, answered with `answer`
    /// (`--deny`, ... or nothing for allow); returns whether `file` exists
    /// once its turn is over.
    fn permission(&self, file: &str, answer: Option<&str>) -> bool {
        let id = self.agent.name();
        let path = self.home.work.join(file);
        let prompt = format!("[[run:touch {file}]] go");
        self.reins(&["send", "--id", id, "--no-wait", &prompt]).ok();
        self.wait("blocked");
        let status = self.reins(&["status", "--id", id, "--json"]).ok().json();
        assert_eq!(status[0]["kind"], "approval", "{status}");
        let request = status[0]["approval"]["request"].as_str();
        let request = request
            .unwrap_or_else(|| panic!("{id}: no named request: {status}\n{:#?}", self.events()));
        let detail = status[0]["approval"]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&format!("touch {file}")), "{id}: {status}");
        assert!(!path.exists(), "{id}: nothing ran before the answer");
        let mut args = vec!["approve", "--id", id, "--request", request];
        args.extend(answer);
        let answered = self.reins(&args).ok().json();
        assert_eq!(answered["request"], request);
        let done = self.wait("task_complete");
        assert_eq!(done["event"]["status"], "completed", "{id}: {done}");
        path.exists()
    }
}

fn acp_end_to_end(agent: AcpAgent) {
    let Some(live) = live(agent) else { return };
    let id = agent.name();
    let work = live.home.work.to_str().unwrap();
    // ACP is each one's default transport.
    let started = live.reins(&["run", id, "--id", id, "--detach", "--cwd", work]).ok().json();
    live.wait("ready");
    assert_eq!(live.events()[0]["transport"], "acp");

    // A turn with an answer.
    let first = live.turn("hello acp");
    assert_eq!(first["status"], "delivered", "{id}: {first}");
    assert_eq!(first["task"]["status"], "completed", "{id}: {first}");
    assert!(live.pane().contains("• MOCK_OK (you said: hello acp)"), "{id}:\n{}", live.pane());

    // Two turns back to back: the second waits in the inbox, and each
    // `wait` sees its own turn end.
    let slow = live.reins(&["send", "--id", id, "--no-wait", "[[slow:1]] one"]).ok().json();
    let next = live.reins(&["send", "--id", id, "--no-wait", "two"]).ok().json();
    assert_eq!(next["status"], "queued", "{id}: {next}");
    let last = live.wait("task_complete");
    assert_eq!(last["event"]["message_id"], next["message_id"], "{id}: {last}");
    assert_eq!(last["turn"], 3, "{id}: {last}");
    let slow_id = slow["message_id"].as_str().unwrap();
    let earlier = live.reins(&["wait", "--id", id, "--message", slow_id]).ok().json();
    assert_eq!(earlier["turn"], 2, "{id}: {earlier}");
    assert_eq!(earlier["event"]["status"], "completed");
    let pane = live.pane();
    assert!(pane.contains("(you said: one)") && pane.contains("(you said: two)"), "{id}:\n{pane}");

    // Usage, per turn, from the protocol.
    let usage: Vec<Value> = live.events().into_iter().filter(|e| e["type"] == "usage").collect();
    assert!(usage.len() >= 3, "{id}: {usage:#?}");
    for event in &usage {
        assert!(event["input_tokens"].as_u64().is_some_and(|n| n > 0), "{id}: {event}");
        assert!(event["turn"].is_u64(), "{id}: {event}");
    }

    // A tool call held for permission: allowed, the file appears; denied,
    // it does not.
    assert!(live.permission("allowed.txt", None), "{id}: the allowed command ran");
    assert!(!live.permission("denied.txt", Some("--deny")), "{id}: the denied command ran");
    let answers: Vec<String> = live
        .events()
        .iter()
        .filter(|e| e["type"] == "approval")
        .map(|e| format!("{}/{}", e["decision"].as_str().unwrap(), e["by"].as_str().unwrap()))
        .collect();
    assert_eq!(answers, ["allow/client", "deny/client"], "{id}");

    // A model error fails the turn; the next one succeeds.
    let failed = live.turn("[[fail:400]] boom");
    assert_eq!(failed["task"]["status"], "failed", "{id}: {failed}");
    let error = live.events().into_iter().rfind(|e| e["type"] == "task_complete").unwrap();
    assert!(
        error["error"].as_str().unwrap_or_default().contains("mock request rejected"),
        "{error}"
    );
    let again = live.turn("after the error");
    assert_eq!(again["task"]["status"], "completed", "{id}: {again}");

    // Interrupt a long turn.
    let long =
        live.reins(&["send", "--id", id, "--timeout", "60s", "[[wait:60]] long"]).ok().json();
    assert_eq!(long["status"], "delivered", "{id}: {long}");
    live.reins(&["interrupt", "--id", id]).ok();
    let out = live.reins(&["wait", "--id", id, "--until", "task_complete", "--timeout", "30s"]);
    let done = out.ok().json();
    assert_eq!(done["event"]["status"], "interrupted", "{id}: {done}");

    // Stop: nothing left running.
    let pid = started["pid"].as_u64().unwrap() as u32;
    let stopped = live.reins(&["stop", "--id", id, "--timeout", "20s"]).ok().json();
    assert_eq!(stopped["status"], "stopped", "{id}: {stopped}");
    eventually(Duration::from_secs(10), "the agent's processes to end", || {
        !alive(pid) && session_members(pid).is_empty()
    });
    assert_eq!(live.events().last().unwrap()["type"], "exited");
    let requests = live.model.requests();
    assert!(requests.iter().any(|r| r["kind"] == "tool_call"), "{id}: the model asked for a tool");
}

#[test]
fn real_gemini_over_acp_end_to_end() {
    acp_end_to_end(AcpAgent::Gemini);
}

#[test]
fn real_opencode_over_acp_end_to_end() {
    acp_end_to_end(AcpAgent::OpenCode);
}

#[test]
fn real_qwen_over_acp_end_to_end() {
    acp_end_to_end(AcpAgent::Qwen);
}

/// `reins doctor` starts each ACP agent and says whether its `initialize`
/// answers.
#[test]
fn real_doctor_reports_each_acp_handshake() {
    let Some(live) = live(AcpAgent::Qwen) else { return };
    let names = ["gemini", "opencode", "qwen"];
    let mut args = vec!["doctor", "--json", "--timeout", "60"];
    args.extend(names);
    let report = live.reins(&args).ok().json();
    for (name, agent) in
        names.into_iter().zip(["Gemini CLI 0.61.0", "OpenCode 1.18.33", "Qwen Code 0.24.4"])
    {
        let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name);
        let check = check.unwrap_or_else(|| panic!("no check for {name}: {report}"));
        assert_eq!(check["status"], "ok", "{check}");
        let detail = check["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("acp handshake ok ({agent})")), "{check}");
    }
}

/// 50 send → task_complete cycles over ACP: none stranded, none lost, none
/// mis-fenced; prints how long reins took to see each turn end after the
/// mock model's last byte (the figures behind each profile's default
/// transport, docs/acp.md).
fn acp_soak(agent: AcpAgent) {
    let Some(live) = live(agent) else { return };
    let id = agent.name();
    let work = live.home.work.to_str().unwrap();
    live.reins(&["run", id, "--transport", "acp", "--id", id, "--detach", "--cwd", work]).ok();
    live.wait("ready");
    let started = std::time::Instant::now();
    for i in 1..=50u64 {
        let sent = live.reins(&["send", "--id", id, "--timeout", "60s", &format!("cycle {i}")]);
        assert_eq!(sent.code, 0, "{id} cycle {i}: {}", sent.stdout);
        assert_eq!(sent.json()["turn"], i, "{id} cycle {i}");
        let done = live.wait("task_complete");
        assert_eq!(done["turn"], i, "{id} cycle {i}: {done}");
        assert_eq!(done["event"]["status"], "completed", "{id} cycle {i}: {done}");
    }
    let events = live.events();
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("stranded"), 0);
    assert_eq!(count("delivered"), 50);
    assert_eq!(count("task_complete"), 50);
    // The model's last byte of each turn's answer → its task_complete.
    let ms = |ts: &str| ts.parse::<jiff::Timestamp>().unwrap().as_millisecond() as f64;
    let finished: Vec<f64> = live
        .model
        .requests()
        .iter()
        .filter(|r| r["kind"] == "text" && !r["finished_at"].is_null())
        .map(|r| ms(r["finished_at"].as_str().unwrap()))
        .collect();
    let mut lags: Vec<f64> = events
        .iter()
        .filter(|e| e["type"] == "task_complete")
        .filter_map(|e| {
            let done = ms(e["ts"].as_str().unwrap());
            let last = finished.iter().copied().filter(|f| *f <= done).fold(f64::NAN, f64::max);
            (!last.is_nan()).then_some(done - last)
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    eprintln!(
        "{id} over ACP: 50 cycles in {:.1}s; model's last byte → task_complete: median {:.0} ms, \
         max {:.0} ms",
        started.elapsed().as_secs_f64(),
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
    live.reins(&["stop", "--id", id]).ok();
}

#[test]
fn real_gemini_acp_soak() {
    acp_soak(AcpAgent::Gemini);
}

#[test]
fn real_opencode_acp_soak() {
    acp_soak(AcpAgent::OpenCode);
}

#[test]
fn real_qwen_acp_soak() {
    acp_soak(AcpAgent::Qwen);
}

/// `reins answer` over ACP: the turn's last agent message, its chunks
/// joined exactly — multi-line, and longer than a screen.
#[test]
fn real_gemini_over_acp_answers_exactly() {
    let Some(live) = live(AcpAgent::Gemini) else { return };
    let id = AcpAgent::Gemini.name();
    let work = live.home.work.to_str().unwrap();
    live.reins(&["run", id, "--id", id, "--detach", "--cwd", work]).ok();
    live.wait("ready");
    for n in [1, 3, 80] {
        let done = live.turn(&format!("[[lines:{n}]] count"));
        assert_eq!(done["task"]["status"], "completed", "{done}");
        let want = crate::test_answer::lines(n);
        let json = live.reins(&["answer", "--id", id, "--json"]).ok().json();
        assert_eq!(json["answer"], want.as_str(), "{json}\n{}", live.pane());
        assert_eq!(json["source"], "acp");
        assert_eq!(live.reins(&["answer", "--id", id]).ok().stdout, format!("{want}\n"));
    }
    live.reins(&["stop", "--id", id]).ok();
}

/// `reins supervise` acting on a real agent: a supervised Gemini whose
/// turn hangs (the model holds its answer) is nudged, and when its agent
/// is killed the session is restarted with its task.
#[test]
fn real_gemini_supervised_is_nudged_and_revived() {
    let Some(live) = live(AcpAgent::Gemini) else { return };
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _supervisor = Killed(live.env.spawn(&["supervise", "--scan-every", "200ms"]));
    eventually(Duration::from_secs(10), "the supervisor to be up", || {
        live.reins(&["service", "status", "--json"]).code == 0
    });
    let work = live.home.work.to_str().unwrap();
    let started = live
        .reins(&[
            "run",
            "gemini",
            "--id",
            "gemini",
            "--cwd",
            work,
            "--supervised",
            "--stall-after",
            "4s",
            "--context",
            "[[wait:60]] a long one",
        ])
        .ok()
        .json();
    let find = |kind: &str| {
        let mut found = None;
        eventually(Duration::from_secs(60), kind, || {
            found = live.events().into_iter().find(|e| e["type"] == kind);
            found.is_some()
        });
        found.unwrap()
    };
    let resume = find("resume");
    assert_eq!(resume["by"], "rules", "{resume}");
    eventually(Duration::from_secs(60), "the nudge's turn to complete", || {
        live.events().iter().any(|e| e["type"] == "task_complete" && e["status"] == "completed")
    });
    // The agent is killed: the supervisor's watcher starts it again.
    crate::common::signal(started["pid"].as_i64().unwrap() as i32, 9);
    let restart = find("restart");
    assert_ne!(restart["run"], started["run"], "{restart}");
    let new_run = restart["run"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the new run to take its task", || {
        live.events().iter().any(|e| e["type"] == "delivered" && e["run"] == new_run.as_str())
    });
    live.reins(&["stop", "--id", "gemini", "--timeout", "20s"]).ok();
}
