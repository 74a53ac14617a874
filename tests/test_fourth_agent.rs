//! A fourth real agent — OpenCode 1.18.33 (`opencode-ai` on npm) — driven by
//! reins through its terminal UI in tmux, offline, against the project's
//! mock model on 127.0.0.1 (Chat Completions). What it took to add it: the
//! profile `adapters/opencode.toml`, the recordings in
//! `tests/fixtures/screens/opencode/`, the seed in
//! `tests/fixtures/agent-homes/opencode/` and this file
//! (`docs/fourth-agent.md`).
//!
//! It needs the CLI (`scripts/install-agents --extra`) and a loopback-only
//! network namespace (`scripts/netns-run`). Without either it says so and
//! skips, except under `REINS_TEST_REQUIRE_TOOLS=1`, where that fails.
//!
//! The approval round trip is required: the mock answers `[[run:CMD]]`
//! with a `bash` tool call on its Chat Completions route when the request
//! offers that tool (it once answered with text only, so the round trip
//! was optional and a run that never asked for approval still passed).

use std::io;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, session_members};
use crate::support::agents::{AgentHome, agents_bin_dir, fixtures_dir, in_isolated_netns};
use crate::support::live;
use crate::support::mock_model::MockModel;

const ID: &str = "opencode";

/// An isolated home for one OpenCode run, seeded from
/// `tests/fixtures/agent-homes/opencode/` like the other three's. The
/// provider's base URL in the seed is `{{BASE_URL}}/v1`.
fn seed_opencode(root: &Path, base_url: &str) -> io::Result<AgentHome> {
    let mut home = AgentHome::seed_from(&fixtures_dir().join("opencode"), root, base_url)?;
    home.env.extend([
        // No fetch of the models.dev catalogue (a DNS lookup of
        // models.opencode.ai, an error in its log, a slower first turn).
        ("OPENCODE_DISABLE_MODELS_FETCH".into(), "1".into()),
        // Belt and braces with `"autoupdate": false` in the seed.
        ("OPENCODE_DISABLE_AUTOUPDATE".into(), "1".into()),
    ]);
    Ok(home)
}

struct Live {
    env: TestEnv,
    model: MockModel,
    home: AgentHome,
}

/// Sets up a live run, or explains (loudly) why it cannot.
fn live() -> Option<Live> {
    let bin = agents_bin_dir();
    let missing = match &bin {
        None => Some("the agent CLIs are not installed (scripts/install-agents --extra)"),
        Some(bin) if !bin.join("opencode").exists() => {
            Some("opencode is not installed (scripts/install-agents --extra)")
        }
        Some(_) if !in_isolated_netns() => {
            Some("not inside a loopback-only network namespace (scripts/netns-run)")
        }
        Some(_) => None,
    };
    let (env, model, home) = live::world(missing, |dir, url| seed_opencode(&dir.join(ID), url))?;
    Some(Live { env, model, home })
}

impl Live {
    fn reins(&self, args: &[&str]) -> crate::common::Run {
        self.env.reins(args)
    }

    fn screen(&self) -> String {
        self.reins(&["pane", "--id", ID]).stdout
    }

    fn events(&self) -> Vec<Value> {
        self.env.events(ID)
    }
}

#[test]
fn real_opencode_runs_a_task_and_an_approved_command() {
    let Some(live) = live() else { return };
    let work = live.home.work.to_str().unwrap();
    // Its terminal UI (ACP, the default, is test_acp_real's).
    let started =
        live.reins(&["run", ID, "--pty", "--id", ID, "--tmux", "--cwd", work]).ok().json();
    assert_eq!(started["adapter"], ID, "{started}");
    let agent_pid = started["pid"].as_u64().unwrap() as u32;
    // A cold start takes 5-9 s on the 2-core test machine.
    let ready = live.reins(&["wait", "--id", ID, "--until", "ready", "--timeout", "60s"]);
    assert_eq!(ready.code, 0, "opencode never read ready:\n{}\n{}", ready.stdout, live.screen());

    // A task: delivered (verified), busy, done.
    let sent = live
        .reins(&[
            "send",
            "--id",
            ID,
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
    assert!(
        events.iter().any(|e| e["type"] == "state" && e["to"] == "busy"),
        "the turn was seen busy:\n{events:#?}"
    );
    assert!(live.screen().contains("MOCK_OK (you said: hello reins)"), "{}", live.screen());
    let logs = live.reins(&["logs", "--id", ID]).ok().stdout;
    assert!(logs.contains("MOCK_OK (you said: hello reins)"), "{logs}");

    // A shell command that needs approval (the seed says `"bash": "ask"`).
    let made = live.home.work.join("made-by-reins.txt");
    let sent = live
        .reins(&["send", "--id", ID, "--timeout", "90s", "[[run:touch made-by-reins.txt]] go"])
        .ok()
        .json();
    assert_eq!(sent["turn"].as_u64(), Some(turn + 1), "{sent}");
    // The answer to the request that offered the tools (not the title
    // request, which offers none) says whether the mock asked for the tool.
    let answered = live
        .model
        .wait_for_request(Duration::from_secs(60), |r| {
            let offers_tools = r["body"]["tools"].as_array().is_some_and(|t| !t.is_empty());
            let last_user = r["body"]["messages"]
                .as_array()
                .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
                .map(|m| m["content"].to_string())
                .unwrap_or_default();
            offers_tools
                && last_user.contains("[[run:touch made-by-reins.txt]]")
                && !r["kind"].is_null()
        })
        .expect("opencode sent the prompt to the mock model");
    assert_eq!(answered["kind"], "tool_call", "the mock asked for the `bash` tool: {answered}");
    let blocked = live.reins(&["wait", "--id", ID, "--until", "blocked", "--timeout", "60s"]);
    assert_eq!(blocked.code, 0, "no approval dialog:\n{}", live.screen());
    let status = live.reins(&["status", "--id", ID, "--json"]).ok().json();
    assert_eq!(status[0]["state"], "blocked");
    assert_eq!(status[0]["kind"], "approval");
    assert!(!made.exists(), "nothing ran before the approval");
    live.reins(&["approve", "--id", ID]).ok();
    let done = live.reins(&["wait", "--id", ID, "--until", "task_complete", "--timeout", "90s"]);
    assert_eq!(done.code, 0, "{}\n{}", done.stdout, live.screen());
    assert!(made.exists(), "the approved command ran");
    assert!(live.screen().contains("Tool finished."), "{}", live.screen());
    // No approval dialog now: approve refuses and types nothing.
    live.reins(&["approve", "--id", ID]).code(1);

    // Stop ends the whole process tree.
    let out = live.reins(&["stop", "--id", ID, "--timeout", "20s"]).ok().json();
    assert_eq!(out["status"], "stopped", "{out}");
    eventually(Duration::from_secs(10), "opencode's processes to end", || {
        !alive(agent_pid) && session_members(agent_pid).is_empty()
    });
    let events = live.events();
    assert_eq!(events.last().unwrap()["type"], "exited");
    let approvals = events.iter().filter(|e| e["type"] == "approval").count();
    assert_eq!(approvals, 1, "{events:#?}");
    // Read from the screen: the first turn's duration (`▣ ... · 1.2s`) and,
    // on exit, the session id (`opencode -s ses_...`).
    let usage: Vec<&Value> = events.iter().filter(|e| e["type"] == "usage").collect();
    assert!(usage.iter().any(|e| e["duration_s"].is_number()), "{events:#?}");
    assert!(
        usage.iter().any(|e| e["agent_session_id"].as_str().is_some_and(|s| s.starts_with("ses_"))),
        "{events:#?}"
    );
    // Nothing but the mock was asked for anything.
    let requests = live.model.requests();
    assert!(requests.iter().all(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/v1/"))));
}
