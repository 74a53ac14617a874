//! Usage limits with the mock agent (`[[ratelimit:S]]`): reported as
//! `blocked{rate_limit}` with the reset time, messages held in the inbox,
//! lifted at the reset, and resumed only when asked (`run --on-rate-limit
//! resume`, or a watcher). The real codex app-server's limit (a mock HTTP
//! 429) is in test_real_agents.

use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, eventually};

fn kinds(env: &TestEnv, id: &str, kind: &str) -> Vec<Value> {
    env.events(id).into_iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn a_limit_is_waited_out_and_resumed_when_asked() {
    let env = TestEnv::new();
    env.start("rl", &["--on-rate-limit", "resume"]);
    env.reins(&["send", "--id", "rl", "[[ratelimit:2]] build it"]).ok();
    let limited = env
        .reins(&["wait", "--id", "rl", "--until", "rate_limited", "--timeout", "10s"])
        .ok()
        .json();
    let event = &limited["event"];
    assert_eq!(event["source"], "screen");
    assert!(event["until"].as_str().is_some(), "the reset time was read: {event}");
    assert!(event["message"].as_str().unwrap().contains("Usage limit reached"));
    let status = env.reins(&["status", "--id", "rl", "--json"]).ok().json();
    assert_eq!(
        (status[0]["state"].as_str(), status[0]["kind"].as_str()),
        (Some("blocked"), Some("rate_limit"))
    );
    let failed = &kinds(&env, "rl", "task_complete")[0];
    assert_eq!(
        (failed["status"].as_str(), failed["outcome"].as_str()),
        (Some("failed"), Some("rate-limit"))
    );

    // A message sent meanwhile waits in the inbox.
    let later = env.reins(&["send", "--id", "rl", "--no-wait", "and then this"]).ok().json();
    assert_eq!(later["status"], "queued");
    let inbox = env.reins(&["inbox", "--id", "rl", "--json"]).ok().json();
    assert_eq!(inbox["messages"].as_array().map(Vec::len), Some(1), "{inbox}");

    let lifted = env
        .reins(&["wait", "--id", "rl", "--until", "rate_limit_lifted", "--timeout", "20s"])
        .ok()
        .json();
    assert_eq!(lifted["event"]["resumed"], true);
    let resume_id = lifted["event"]["message_id"].as_str().unwrap().to_string();
    // Both go through, the waiting message first, and complete.
    eventually(Duration::from_secs(20), "both messages to complete", || {
        let done: Vec<Value> = kinds(&env, "rl", "task_complete");
        done.iter().filter(|e| e["status"] == "completed").count() == 2
    });
    let delivered: Vec<String> = kinds(&env, "rl", "delivered")
        .iter()
        .map(|e| e["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered[1..], [later["message_id"].as_str().unwrap().to_string(), resume_id]);
    let pane = env.reins(&["pane", "--id", "rl"]).ok().stdout;
    assert!(pane.contains("The usage limit has reset. Continue"), "{pane}");
}

#[test]
fn without_being_asked_nothing_is_sent_after_the_reset() {
    let env = TestEnv::new();
    env.start("quiet", &[]);
    env.reins(&["send", "--id", "quiet", "[[ratelimit:1]] go"]).ok();
    let lifted = env
        .reins(&["wait", "--id", "quiet", "--until", "rate_limit_lifted", "--timeout", "20s"])
        .ok()
        .json();
    assert_eq!(lifted["event"]["resumed"], false);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(kinds(&env, "quiet", "delivered").len(), 1, "only the message that hit the limit");
    let status = env.reins(&["status", "--id", "quiet", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready", "the old notice on screen is not a new limit");
    // It takes messages again.
    let sent = env
        .reins(&["send", "--id", "quiet", "--wait-for-idle", "--timeout", "10s", "again"])
        .ok()
        .json();
    assert_eq!(sent["task"]["status"], "completed");
}

#[test]
fn a_watched_session_is_resumed_after_the_reset() {
    let env = TestEnv::new();
    env.start("w", &[]);
    let mut watcher = env.spawn(&[
        "watch",
        "--id",
        "w",
        "--stall-after",
        "30s",
        "--on-exit",
        "leave",
        "--until-exit",
    ]);
    env.reins(&["send", "--id", "w", "[[ratelimit:2]] go"]).ok();
    let lifted = env
        .reins(&["wait", "--id", "w", "--until", "rate_limit_lifted", "--timeout", "20s"])
        .ok()
        .json();
    assert_eq!(lifted["event"]["resumed"], true, "the watcher asked for the resume");
    eventually(Duration::from_secs(20), "the resume to complete", || {
        kinds(&env, "w", "task_complete").iter().any(|e| e["status"] == "completed")
    });
    assert!(kinds(&env, "w", "escalate").is_empty());
    env.reins(&["stop", "--id", "w"]).ok();
    let status = watcher.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn waiting_for_a_limit_that_never_comes_times_out() {
    let env = TestEnv::new();
    env.start("none", &[]);
    let out = env
        .reins(&["wait", "--id", "none", "--until", "rate_limited", "--timeout", "1s"])
        .code(124);
    assert_eq!(out.json()["status"], "timeout");
    let bad = env.reins(&["run", "mock", "--detach", "--on-rate-limit", "retry"]).code(2);
    assert!(bad.stderr.contains("wait") && bad.stderr.contains("resume"), "{}", bad.stderr);
}
