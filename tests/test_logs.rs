//! `reins logs`: the transcript, rendered or raw, live or after the end.

use std::time::Duration;

use crate::common::TestEnv;

fn finished_flood(env: &TestEnv, id: &str) {
    env.start(id, &["--", "[[flood:4]] go"]);
    // busy while flooding, then ready again once the answer is printed
    env.wait_state(id, "busy");
    env.wait_event(id, Duration::from_secs(20), |e| {
        e["type"] == "state" && e["from"] == "busy" && e["to"] == "ready"
    });
}

#[test]
fn rendered_logs_read_like_the_screen_and_raw_logs_are_bytes() {
    let env = TestEnv::new();
    finished_flood(&env, "l1");
    let text = env.reins(&["logs", "--id", "l1"]).ok().stdout;
    assert!(!text.contains('\x1b'), "no escape sequences in rendered logs");
    assert!(text.contains("flood 000001"), "{text}");
    assert!(text.contains("flood 000064"));
    assert!(text.contains("● MOCK_OK (you said: go)"));
    assert_eq!(text.matches("flood 000064").count(), 1, "no line printed twice");
    assert!(!text.contains("Working…"), "spinner frames are not log lines:\n{text}");

    let raw = env.command(&["logs", "--id", "l1", "--raw"]).output().unwrap().stdout;
    assert!(raw.contains(&0x1b), "raw logs keep escape sequences");

    let tail = env.reins(&["logs", "--id", "l1", "--lines", "3"]).ok().stdout;
    assert_eq!(tail.lines().count(), 3, "{tail}");
    let json = env.reins(&["logs", "--id", "l1", "--lines", "2", "--json"]).ok().json();
    assert_eq!(json["id"], "l1");
    assert_eq!(json["lines"].as_array().unwrap().len(), 2);
}

#[test]
fn logs_work_after_the_session_exited() {
    let env = TestEnv::new();
    finished_flood(&env, "l2");
    env.reins(&["stop", "--id", "l2"]).ok();
    let text = env.reins(&["logs", "--id", "l2"]).ok().stdout;
    assert!(text.contains("● MOCK_OK (you said: go)"));
    assert!(text.trim_end().ends_with("bye"), "the final screen is included:\n{text}");
}

#[test]
fn follow_prints_lines_as_they_finish_and_ends_with_the_session() {
    let env = TestEnv::new();
    env.start("l3", &["--", "--work", "1", "[[flood:8]] go"]);
    env.wait_state("l3", "ready");
    let follower = env.spawn(&["logs", "--id", "l3", "--follow"]);
    env.wait_event("l3", Duration::from_secs(20), |e| e["type"] == "state" && e["from"] == "busy");
    env.reins(&["stop", "--id", "l3"]).ok();
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("flood 000128"), "{text}");
    assert_eq!(text.matches("flood 000100 ").count(), 1);
    assert!(text.trim_end().ends_with("bye"), "{text}");
}
