//! The codex app-server transport against a misbehaving server: one that
//! never answers, one that writes garbage, one that dies mid-turn. (The
//! real `codex app-server` is driven in test_real_agents.)

use std::time::Duration;

use crate::common::{TestEnv, have_tool};

/// A `codex` profile whose app-server is tests/fixtures/fake-app-server.py
/// in `mode`, with short request timeouts.
fn fake_server(mode: &str) -> Option<TestEnv> {
    fake_server_with(&[mode], 800)
}

/// A `codex` profile whose app-server is tests/fixtures/fake-app-server.py
/// with `args` (its mode first), and requests that time out after
/// `timeout_ms`.
pub(crate) fn fake_server_with(args: &[&str], timeout_ms: u64) -> Option<TestEnv> {
    if !have_tool("python3") {
        return None;
    }
    let env = TestEnv::new();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-app-server.py");
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = vec!["python3".to_string(), script.display().to_string()];
    command.extend(args.iter().map(|a| a.to_string()));
    let profile = format!(
        r#"name = "codex"
summary = "a fake app-server"
transport = "codex-app-server"

[app_server]
command = {}
request_timeout_ms = {timeout_ms}

[launch]
command = ["codex"]
"#,
        serde_json::to_string(&command).unwrap()
    );
    std::fs::write(dir.join("codex.toml"), profile).unwrap();
    Some(env)
}

#[test]
fn a_server_that_never_answers_initialize_is_a_clear_disconnect() {
    let Some(env) = fake_server("silent") else { return };
    env.reins(&["run", "codex", "--id", "mute", "--detach"]).ok();
    let out =
        env.reins(&["wait", "--id", "mute", "--until", "ready", "--timeout", "10s"]).code(1).json();
    assert_eq!(out["status"], "exited");
    assert_eq!(out["exit"]["reason"], "disconnected");
    assert!(out["exit"]["detail"].as_str().unwrap().contains("initialize got no answer"), "{out}");
    let events = env.events("mute");
    let lost = events.iter().find(|e| e["type"] == "disconnected").expect("a disconnected event");
    assert_eq!(lost["source"], "timeout");
    assert_eq!(events.last().unwrap()["type"], "exited");
}

#[test]
fn garbage_from_the_server_is_survived() {
    let Some(env) = fake_server("garbled") else { return };
    env.reins(&["run", "codex", "--id", "noisy", "--detach"]).ok();
    env.reins(&["wait", "--id", "noisy", "--until", "ready", "--timeout", "10s"]).ok();
    for text in ["first", "second"] {
        let out = env
            .reins(&["send", "--id", "noisy", "--wait-for-idle", "--timeout", "10s", text])
            .ok()
            .json();
        assert_eq!(out["task"]["status"], "completed", "{out}");
    }
    let pane = env.reins(&["pane", "--id", "noisy"]).ok().stdout;
    assert!(pane.contains("FAKE_OK second"), "{pane}");
    assert!(pane.contains("unreadable line"), "{pane}");
    let status = env.reins(&["status", "--id", "noisy", "--json"]).ok().json();
    assert!(status[0]["state"] == "ready", "{status}");
}

#[test]
fn a_server_that_dies_mid_turn_ends_the_wait_with_its_exit() {
    let Some(env) = fake_server("exit-mid-turn") else { return };
    env.reins(&["run", "codex", "--id", "dying", "--detach"]).ok();
    env.reins(&["wait", "--id", "dying", "--until", "ready", "--timeout", "10s"]).ok();
    env.reins(&["send", "--id", "dying", "--no-wait", "go"]).ok();
    let out = env
        .reins(&["wait", "--id", "dying", "--until", "task_complete", "--timeout", "10s"])
        .code(1)
        .json();
    assert_eq!(out["status"], "exited", "{out}");
    assert_eq!(out["exit"]["code"], 7);
    let _ = Duration::ZERO;
}
