//! `reins send`: verified delivery, the durable inbox, and every way a
//! message can fail to get through.

use std::collections::HashSet;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, signal};

fn send(env: &TestEnv, id: &str, text: &str) -> Value {
    env.reins(&["send", "--id", id, text]).ok().json()
}

#[test]
fn a_message_to_a_ready_agent_is_delivered_as_a_numbered_turn() {
    let env = TestEnv::new();
    env.start("s1", &[]);
    env.wait_state("s1", "ready");
    let first = send(&env, "s1", "hello");
    assert_eq!(first["status"], "delivered");
    assert_eq!(first["turn"], 1);
    let second = env.reins(&["send", "--id", "s1", "--wait-for-idle", "again"]).ok().json();
    assert_eq!(second["turn"], 2);
    assert_eq!(second["task"]["status"], "completed");
    let events = env.events("s1");
    let turn2: Vec<&str> =
        events.iter().filter(|e| e["turn"] == 2).map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(turn2, ["turn_started", "delivered", "task_complete"]);
    let text = env.reins(&["logs", "--id", "s1"]).ok().stdout;
    assert!(
        text.contains("MOCK_OK (you said: hello)") && text.contains("MOCK_OK (you said: again)")
    );
}

#[test]
fn messages_to_a_busy_agent_wait_in_the_inbox_and_go_in_order() {
    let env = TestEnv::new();
    env.start("q", &["--", "--work", "0.3"]);
    env.wait_state("q", "ready");
    let mut ids = Vec::new();
    for i in 0..4 {
        let out = env.reins(&["send", "--id", "q", "--no-wait", &format!("task {i}")]).ok().json();
        ids.push(out["message_id"].as_str().unwrap().to_string());
    }
    let last = env.reins(&["wait", "--id", "q", "--until", "task_complete"]).ok().json();
    assert_eq!(last["turn"], 4, "waits for the last queued message's turn: {last}");
    let delivered: Vec<String> = env
        .events("q")
        .iter()
        .filter(|e| e["type"] == "delivered")
        .map(|e| e["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(delivered, ids, "delivered in the order accepted");
    let queued = env.events("q").into_iter().filter(|e| e["type"] == "queued").count();
    assert_eq!(queued, 4);
}

#[test]
fn a_swallowed_submit_key_is_pressed_again() {
    let env = TestEnv::new();
    env.start("retry", &["--", "--swallow-enter", "1"]);
    let out =
        env.reins(&["send", "--id", "retry", "--wait-for-idle", "get this through"]).ok().json();
    assert_eq!(out["status"], "delivered");
    let text = env.reins(&["logs", "--id", "retry"]).ok().stdout;
    assert_eq!(text.matches("MOCK_OK (you said: get this through").count(), 1, "{text}");
}

#[test]
fn a_message_that_never_starts_a_turn_is_stranded_not_delivered() {
    let env = TestEnv::new();
    env.start("deaf", &["--", "--swallow-enter", "100"]);
    let out = env.reins(&["send", "--id", "deaf", "are you there"]).code(1).json();
    assert_eq!(out["status"], "stranded");
    assert!(out["detail"].as_str().unwrap().contains("pressed 3 times"), "{out}");
    let events = env.events("deaf");
    assert!(events.iter().any(|e| e["type"] == "stranded"));
    assert!(!events.iter().any(|e| e["type"] == "delivered" || e["type"] == "turn_started"));
}

#[test]
fn forced_messages_go_in_while_busy_without_a_new_turn() {
    let env = TestEnv::new();
    env.start("f", &[]);
    env.wait_state("f", "ready");
    env.reins(&["send", "--id", "f", "[[wait:3]] long job"]).ok();
    env.wait_state("f", "busy");
    let out = env.reins(&["send", "--id", "f", "--force", "typed while busy"]).ok().json();
    assert_eq!(out["status"], "delivered");
    assert_eq!(out["turn"], 1, "it belongs to the turn in progress");
    assert!(out["detail"].as_str().unwrap().contains("no new turn to verify"), "{out}");
}

#[test]
fn no_submit_types_and_submit_only_submits() {
    let env = TestEnv::new();
    env.start("ns", &[]);
    env.wait_state("ns", "ready");
    let typed = env.reins(&["send", "--id", "ns", "--no-submit", "draft text"]).ok().json();
    assert_eq!(typed["status"], "typed");
    let pane = env.reins(&["pane", "--id", "ns"]).ok().stdout;
    assert!(pane.contains("│ > draft text"), "{pane}");
    // The composer holds text: the agent is not idle, so a plain send waits,
    // but --submit-only goes through with --force.
    let submitted = env.reins(&["send", "--id", "ns", "--submit-only", "--force"]).ok().json();
    assert_eq!(submitted["status"], "delivered");
    env.wait_event("ns", Duration::from_secs(10), |e| e["type"] == "task_complete");
    assert!(
        env.reins(&["logs", "--id", "ns"]).ok().stdout.contains("MOCK_OK (you said: draft text)")
    );
}

#[test]
fn queued_messages_expire() {
    let env = TestEnv::new();
    env.start("ttl", &[]);
    env.wait_state("ttl", "ready");
    env.reins(&["send", "--id", "ttl", "[[wait:3]] busy now"]).ok();
    let out = env.reins(&["send", "--id", "ttl", "--ttl", "300ms", "too late"]).code(1).json();
    assert_eq!(out["status"], "expired");
    assert!(env.events("ttl").iter().any(|e| e["type"] == "expired"));
}

#[test]
fn control_characters_are_neutralised_unless_raw() {
    let env = TestEnv::new();
    env.start("ctl", &[]);
    env.wait_state("ctl", "ready");
    env.reins(&["send", "--id", "ctl", "--wait-for-idle", "red \x1b[31mtext\x07 here"]).ok();
    let text = env.reins(&["logs", "--id", "ctl"]).ok().stdout;
    assert!(text.contains("MOCK_OK (you said: red [31mtext here)"), "{text}");
}

#[test]
fn bad_messages_are_refused_before_anything_is_queued() {
    let env = TestEnv::new();
    env.start("bad", &[]);
    let empty = env.reins(&["send", "--id", "bad", "   "]).code(2);
    assert!(empty.stderr.contains("the message is empty"), "{}", empty.stderr);
    let both = env.reins(&["send", "--id", "bad", "--submit-only", "text"]).code(2);
    assert!(both.stderr.contains("--submit-only sends no text"), "{}", both.stderr);
    // Invalid UTF-8 on standard input.
    let mut child = env
        .command(&["send", "--id", "bad"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"caf\xe9 au lait").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"));
    let too_big = env.path().join("too-big.txt");
    std::fs::write(&too_big, "x".repeat((1 << 20) + 1)).unwrap();
    let big = env
        .command(&["send", "--id", "bad"])
        .stdin(std::fs::File::open(&too_big).unwrap())
        .output()
        .unwrap();
    assert_eq!(big.status.code(), Some(2));
    let inbox = std::fs::read_to_string(env.session_dir("bad").join("inbox.jsonl")).unwrap();
    assert_eq!(inbox, "", "nothing was queued");
}

#[test]
fn unknown_and_ended_sessions_fail_fast() {
    let env = TestEnv::new();
    let started = std::time::Instant::now();
    let out = env.reins(&["send", "--id", "ghost", "hello"]).code(1);
    assert!(out.stderr.contains("no session named ghost"));
    assert!(started.elapsed() < Duration::from_secs(2), "no waiting for the timeout");
    env.start("gone", &[]);
    env.reins(&["stop", "--id", "gone"]).ok();
    let ended = env.reins(&["send", "--id", "gone", "hello"]).code(1);
    assert!(ended.stderr.contains("has exited"), "{}", ended.stderr);
}

#[test]
fn a_one_mebibyte_message_is_delivered() {
    let env = TestEnv::new();
    env.start("big", &[]);
    env.wait_state("big", "ready");
    let text = format!("{} END-OF-BIG-MESSAGE", "lorem ipsum ".repeat(87_000));
    assert!(text.len() <= 1 << 20 && text.len() > 1_000_000);
    let path = env.path().join("big.txt");
    std::fs::write(&path, &text).unwrap();
    let out = env
        .command(&["send", "--id", "big"])
        .stdin(std::fs::File::open(&path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["status"], "delivered");
}

#[test]
fn the_relay_header_names_a_sending_session() {
    let mut env = TestEnv::new();
    env.start("target", &[]);
    env.wait_state("target", "ready");
    env.set_env("REINS_ID", Some("boss"));
    env.reins(&["send", "--id", "target", "--wait-for-idle", "from the boss"]).ok();
    let screen = env.reins(&["logs", "--id", "target"]).ok().stdout;
    assert!(screen.contains("> [reins relay from=boss at="), "{screen}");
    env.reins(&["send", "--id", "target", "--no-relay", "--wait-for-idle", "plain"]).ok();
    let screen = env.reins(&["logs", "--id", "target"]).ok().stdout;
    assert!(screen.contains("> plain"), "{screen}");
}

#[test]
fn a_hundred_concurrent_senders_are_all_delivered_once_in_acceptance_order() {
    let env = TestEnv::new();
    env.start("many", &["--", "--work", "0.05"]);
    env.wait_state("many", "ready");
    let children: Vec<_> = (0..100)
        .map(|i| env.spawn(&["send", "--id", "many", "--no-wait", &format!("msg-{i:03}")]))
        .collect();
    let mut ids = HashSet::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(ids.insert(v["message_id"].as_str().unwrap().to_string()), "duplicate id");
    }
    env.reins(&["wait", "--id", "many", "--until", "task_complete", "--timeout", "120s"]).ok();
    let events = env.events("many");
    let accepted: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "queued")
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    let delivered: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "delivered")
        .map(|e| e["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(accepted.len(), 100);
    assert_eq!(delivered, accepted, "every message delivered once, in acceptance order");
}

#[test]
fn queued_messages_survive_a_killed_host_and_are_delivered_once_by_the_next_run() {
    let env = TestEnv::new();
    let first = env.start("phoenix", &[]);
    env.wait_state("phoenix", "ready");
    env.reins(&["send", "--id", "phoenix", "[[wait:30]] a long first task"]).ok();
    env.wait_state("phoenix", "busy");
    for i in 0..10 {
        env.reins(&["send", "--id", "phoenix", "--no-wait", &format!("queued-{i}")]).ok();
    }
    signal(first["host_pid"].as_u64().unwrap() as i32, 9);
    env.reins(&["gc"]).ok();
    let pending = env.reins(&["inbox", "--id", "phoenix", "--json"]).ok().json();
    assert_eq!(pending["messages"].as_array().unwrap().len(), 10, "{pending}");

    env.start("phoenix", &["--", "--work", "0"]);
    env.reins(&["wait", "--id", "phoenix", "--until", "task_complete", "--timeout", "60s"]).ok();
    let text = env.reins(&["logs", "--id", "phoenix"]).ok().stdout;
    for i in 0..10 {
        let line = format!("MOCK_OK (you said: queued-{i})");
        assert_eq!(text.matches(&line).count(), 1, "{line} exactly once in:\n{text}");
    }
    let empty = env.reins(&["inbox", "--id", "phoenix", "--json"]).ok().json();
    assert_eq!(empty["messages"], serde_json::json!([]));
}

#[test]
fn a_shell_under_the_generic_profile_takes_commands_as_turns() {
    let env = TestEnv::new();
    env.reins(&["run", "sh", "--id", "sh", "--detach"]).ok();
    env.wait_state("sh", "ready");
    let out =
        env.reins(&["send", "--id", "sh", "--wait-for-idle", "echo reins-$((6*7))"]).ok().json();
    assert_eq!(out["status"], "delivered");
    assert_eq!(out["task"]["status"], "completed");
    let text = env.reins(&["logs", "--id", "sh"]).ok().stdout;
    assert!(text.contains("reins-42"), "{text}");
}
