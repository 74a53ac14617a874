//! `reins wait`: per-turn fences that never match the past, states, exits.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestEnv, signal};

#[test]
fn waiting_after_the_task_already_finished_returns_at_once() {
    let env = TestEnv::new();
    env.start("w", &["--", "--work", "0"]);
    env.wait_state("w", "ready");
    env.reins(&["send", "--id", "w", "--wait-for-idle", "quick"]).ok();
    let t = Instant::now();
    let out = env
        .reins(&["wait", "--id", "w", "--until", "task_complete", "--timeout", "5s"])
        .ok()
        .json();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(out["turn"], 1);
    assert_eq!(out["event"]["type"], "task_complete");
}

#[test]
fn task_complete_never_matches_an_older_turn_or_run() {
    let env = TestEnv::new();
    env.start("old", &["--", "--work", "0"]);
    env.wait_state("old", "ready");
    env.reins(&["send", "--id", "old", "--wait-for-idle", "first run"]).ok();
    env.reins(&["stop", "--id", "old"]).ok();
    // A new run of the id: its first turn is the target, not the old one.
    env.start("old", &[]);
    env.wait_state("old", "ready");
    let waiter =
        env.spawn(&["wait", "--id", "old", "--until", "task_complete", "--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(300));
    env.reins(&["send", "--id", "old", "second run"]).ok();
    let out = waiter.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["turn"], 1);
    let new_run = env.events("old").last().unwrap()["run"].clone();
    assert_eq!(v["run"], new_run);
}

#[test]
fn message_and_turn_target_exactly() {
    let env = TestEnv::new();
    env.start("exact", &["--", "--work", "0.2"]);
    env.wait_state("exact", "ready");
    let a = env.reins(&["send", "--id", "exact", "--no-wait", "a"]).ok().json();
    let b = env.reins(&["send", "--id", "exact", "--no-wait", "b"]).ok().json();
    let out_a = env
        .reins(&["wait", "--id", "exact", "--message", a["message_id"].as_str().unwrap()])
        .ok()
        .json();
    assert_eq!(out_a["turn"], 1);
    let out_b = env
        .reins(&["wait", "--id", "exact", "--message", b["message_id"].as_str().unwrap()])
        .ok()
        .json();
    assert_eq!(out_b["turn"], 2);
    let turn1 = env.reins(&["wait", "--id", "exact", "--turn", "1"]).ok().json();
    assert_eq!(turn1["event"]["message_id"], a["message_id"]);
    let started = env.reins(&["wait", "--id", "exact", "--until", "turn:2"]).ok().json();
    assert_eq!(started["status"], "reached");
}

#[test]
fn turn_conditions_say_whether_the_turn_started_or_completed() {
    let env = TestEnv::new();
    env.start("names", &["--", "--work", "0.2"]);
    env.wait_state("names", "ready");
    let sent = env.reins(&["send", "--id", "names", "--no-wait", "[[wait:2]] slow"]).ok().json();
    assert_eq!(sent["turn"], Value::Null, "not yet delivered: {sent}");
    // Started returns as the turn starts; complete only once it is done.
    let started = env
        .reins(&["wait", "--id", "names", "--until", "turn_started:1", "--timeout", "10s"])
        .ok()
        .json();
    assert_eq!(
        (started["until"].as_str(), started["turn"].as_u64()),
        (Some("turn_started:1"), Some(1))
    );
    let early =
        env.reins(&["wait", "--id", "names", "--until", "turn_complete:1", "--timeout", "300ms"]);
    assert_eq!(early.code, 124, "turn 1 is still running: {}", early.stdout);
    let done = env
        .reins(&["wait", "--id", "names", "--until", "turn_complete:1", "--timeout", "20s"])
        .ok()
        .json();
    assert_eq!(done["event"]["type"], "task_complete", "{done}");
    assert_eq!(done["turn"], 1);
    // The old spelling still means started; a turn number is checked.
    let old = env.reins(&["wait", "--id", "names", "--until", "turn:1"]).ok().json();
    assert_eq!(old["until"], "turn_started:1");
    let bad = env.reins(&["wait", "--id", "names", "--until", "turn_complete:x"]).code(2);
    assert!(bad.stderr.contains("N must be a turn number"), "{}", bad.stderr);
    let both = env.reins(&["wait", "--id", "names", "--until", "turn_complete:1", "--turn", "1"]);
    assert_eq!(both.code, 2, "{}", both.stderr);
}

#[test]
fn state_conditions_and_timeouts() {
    let env = TestEnv::new();
    env.start("st", &[]);
    let ready =
        env.reins(&["wait", "--id", "st", "--until", "ready", "--timeout", "10s"]).ok().json();
    assert_eq!(ready["status"], "reached");
    let t = Instant::now();
    let out = env
        .reins(&["wait", "--id", "st", "--until", "busy", "--timeout", "300ms"])
        .code(124)
        .json();
    assert_eq!(out["status"], "timeout");
    assert!(t.elapsed() < Duration::from_secs(2));
    env.reins(&["wait", "--id", "st", "--until", "idle:200ms", "--timeout", "5s"]).ok();
    let bad = env.reins(&["wait", "--id", "st", "--until", "sleepy"]).code(2);
    assert!(bad.stderr.contains("unknown condition"), "{}", bad.stderr);
}

#[test]
fn until_exit_passes_the_agents_exit_code_through_even_after_the_end() {
    let env = TestEnv::new();
    env.start("ex", &[]);
    env.wait_state("ex", "ready");
    let waiter = env.spawn(&["wait", "--id", "ex", "--until", "exit"]);
    env.reins(&["send", "--id", "ex", "bye [[exit:7]]"]).ok();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit"]["code"], 7);
    // And afterwards, from exit.json.
    let after = env.reins(&["wait", "--id", "ex"]).code(7).json();
    assert_eq!(after["exit"]["code"], 7);
}

#[test]
fn an_agent_that_crashes_mid_turn_ends_the_wait_at_once() {
    let env = TestEnv::new();
    env.start("crashy", &["--", "--crash-after", "2"]);
    env.wait_state("crashy", "ready");
    let sent = env.reins(&["send", "--id", "crashy", "[[wait:30]] a long job"]).ok().json();
    assert_eq!(sent["turn"], 1);
    let t = Instant::now();
    let out = env
        .reins(&["wait", "--id", "crashy", "--until", "task_complete", "--timeout", "20s"])
        .code(1)
        .json();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(out["status"], "exited");
    assert_eq!(out["exit"]["code"], 3);
}

#[test]
fn a_host_that_dies_ends_the_wait() {
    let env = TestEnv::new();
    let started = env.start("doomed", &[]);
    env.wait_state("doomed", "ready");
    let waiter = env.spawn(&["wait", "--id", "doomed", "--until", "busy"]);
    std::thread::sleep(Duration::from_millis(200));
    signal(started["host_pid"].as_u64().unwrap() as i32, 9);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "host_died");
}

#[test]
fn auto_stop_ends_the_session_after_its_first_task() {
    let env = TestEnv::new();
    env.start("auto", &["--context", "one job", "--auto-stop"]);
    let out = env.reins(&["wait", "--id", "auto", "--timeout", "20s"]).ok().json();
    assert_eq!(out["exit"]["reason"], "stopped");
    let events = env.events("auto");
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let done = kinds.iter().position(|k| *k == "task_complete").expect("a task completed");
    let stop = kinds.iter().position(|k| *k == "stop_requested").unwrap();
    assert!(done < stop, "{kinds:?}");
    assert!(
        env.reins(&["logs", "--id", "auto"])
            .ok()
            .stdout
            .contains("you said: [reins session id=auto] one job")
    );
}

#[test]
fn one_wait_follows_several_sessions_and_prints_a_line_for_each() {
    let env = TestEnv::new();
    for id in ["mw-a", "mw-b", "mw-c", "other"] {
        env.start(id, &["--", "--work", "0.1"]);
        env.wait_state(id, "ready");
    }
    // b finishes first, then a; c is given nothing.
    env.reins(&["send", "--id", "mw-a", "--no-wait", "[[wait:1.5]] a"]).ok();
    env.reins(&["send", "--id", "mw-b", "--no-wait", "[[wait:0.3]] b"]).ok();
    let all = env.reins(&[
        "wait",
        "--id",
        "mw-a",
        "--id",
        "mw-b",
        "--until",
        "turn_complete:1",
        "--timeout",
        "20s",
    ]);
    assert_eq!(all.code, 0, "{}{}", all.stdout, all.stderr);
    let lines: Vec<Value> = all.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["mw-b", "mw-a"], "in the order they completed");
    assert!(lines.iter().all(|l| l["status"] == "reached" && l["turn"] == 1), "{lines:?}");

    // A pattern picks this repository's running sessions by id; --any
    // returns at the first, a timeout names the sessions still waited on.
    env.reins(&["send", "--id", "mw-a", "--no-wait", "[[wait:0.3]] a2"]).ok();
    let any = env.reins(&[
        "wait",
        "--id",
        "mw-*",
        "--until",
        "turn_complete:2",
        "--any",
        "--timeout",
        "20s",
    ]);
    assert_eq!(any.code, 0, "{}{}", any.stdout, any.stderr);
    let first: Value = serde_json::from_str(any.stdout.trim()).unwrap();
    assert_eq!((first["id"].as_str(), first["turn"].as_u64()), (Some("mw-a"), Some(2)));
    let late =
        env.reins(&["wait", "--id", "mw-*", "--until", "turn_complete:2", "--timeout", "500ms"]);
    assert_eq!(late.code, 124, "{}", late.stdout);
    let statuses: Vec<(String, String)> = late
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|l| (l["id"].as_str().unwrap().to_string(), l["status"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(statuses.len(), 3, "{statuses:?}");
    assert!(statuses.contains(&("mw-a".into(), "reached".into())), "{statuses:?}");
    assert!(statuses.contains(&("mw-c".into(), "timeout".into())), "{statuses:?}");
    assert!(!late.stdout.contains("\"other\""), "the pattern left `other` out");

    // A session that ends first makes the wait fail; bad combinations are
    // refused.
    env.reins(&["stop", "--id", "mw-c"]).ok();
    let ended = env.reins(&["wait", "--id", "mw-c", "--id", "mw-b", "--until", "turn_complete:1"]);
    assert_eq!(ended.code, 1, "{}", ended.stdout);
    let turn = env.reins(&["wait", "--id", "mw-a", "--id", "mw-b", "--turn", "1"]).code(2);
    assert!(turn.stderr.contains("name a turn of one session"), "{}", turn.stderr);
    let none = env.reins(&["wait", "--id", "zz-*"]).code(1);
    assert!(none.stderr.contains("no running session"), "{}", none.stderr);
}
