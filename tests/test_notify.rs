//! `[notify]`: a notification command fires once per matching event of a
//! session, given the event; events it was not asked about stay quiet;
//! `reins notify test` sends a sample and says how each channel went.

use std::time::Duration;

use crate::common::{TestEnv, eventually};

/// A config whose notification command appends what it is given (the
/// event on stdin, and its environment) to `notified.log` in the work dir.
fn config(env: &TestEnv, on: &str) -> std::path::PathBuf {
    let log = env.work.join("notified.log");
    let command = format!(
        "{{ cat; echo; echo \"on=$REINS_EVENT_ON id=$REINS_EVENT_ID summary=$REINS_EVENT_SUMMARY\"; }} >> {}",
        log.display()
    );
    env.write_config(&format!(
        "[notify]\non = [{on}]\nsessions = [\"watched-*\"]\ncommand = {command:?}\n"
    ));
    log
}

#[test]
fn a_notification_command_fires_once_per_matching_event_and_is_given_it() {
    let env = TestEnv::new();
    let log = config(&env, "\"blocked\", \"task_complete\"");
    env.start("watched-1", &[]);
    env.start("other", &[]);
    env.wait_state("watched-1", "ready");
    env.wait_state("other", "ready");
    env.reins(&["send", "--id", "watched-1", "[[approve]] go"]).ok();
    env.reins(&["wait", "--id", "watched-1", "--until", "blocked", "--timeout", "10s"]).ok();
    env.reins(&["approve", "--id", "watched-1"]).ok();
    env.reins(&["wait", "--id", "watched-1", "--until", "task_complete", "--timeout", "10s"]).ok();
    // A session the filter leaves out, doing the same.
    env.reins(&["send", "--id", "other", "hello"]).ok();
    env.reins(&["wait", "--id", "other", "--until", "task_complete", "--timeout", "10s"]).ok();
    env.reins(&["stop", "--id", "watched-1"]).ok();
    let mut text = String::new();
    eventually(Duration::from_secs(10), "two notifications", || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.matches("on=").count() >= 2
    });
    std::thread::sleep(Duration::from_millis(300)); // a third would have come by now
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<serde_json::Value> =
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["blocked", "task_complete"], "{text}");
    assert!(events.iter().all(|e| e["id"] == "watched-1"), "{text}");
    assert_eq!(events[0]["request"], "a1");
    assert!(text.contains("on=blocked id=watched-1 summary=watched-1: waits for approval (a1)"));
    assert!(text.contains("on=task_complete id=watched-1 summary=watched-1: turn 1 completed"));
    assert!(!text.contains("other"), "{text}");
}

#[test]
fn an_agent_that_ends_badly_is_notified_as_its_host_ends() {
    let env = TestEnv::new();
    let log = config(&env, "\"exited\"");
    env.start("watched-crash", &["--", "--crash-after", "0.5"]);
    env.wait_event("watched-crash", Duration::from_secs(10), |e| e["type"] == "exited");
    let mut text = String::new();
    eventually(Duration::from_secs(10), "the exit notification", || {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("on=exited")
    });
    assert!(text.contains("\"reason\":\"failure\""), "{text}");
    assert!(text.contains("summary=watched-crash: ended: failure"), "{text}");
}

#[test]
fn notify_test_sends_a_sample_and_says_how_it_went() {
    let env = TestEnv::new();
    let out = env.reins(&["notify", "test"]).code(1);
    assert!(out.stderr.contains("no [notify] table"), "{}", out.stderr);
    let log = config(&env, "\"blocked\"");
    let out = env.reins(&["notify", "test", "--json"]).ok().json();
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["sent"][0]["channel"], "command");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"type\":\"blocked\"") && text.contains("on=blocked id=sample"),
        "{text}"
    );
    // A channel that fails says so, with exit 1.
    env.write_config("[notify]\ncommand = \"echo nope >&2; exit 3\"\n");
    let out = env.reins(&["notify", "test"]).code(1);
    assert!(out.stdout.contains("FAILED") && out.stdout.contains("nope"), "{}", out.stdout);
}
