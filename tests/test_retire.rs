//! `reins gc --idle` and `[fleet] retire_after`: idle sessions are stopped
//! and recorded as retired; a session whose turn runs is never retired.

use std::time::Duration;

use serde_json::Value;

use crate::common::TestEnv;

fn exit_reason(env: &TestEnv, id: &str) -> Value {
    let text = std::fs::read_to_string(env.session_dir(id).join("exit.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["reason"].clone()
}

#[test]
fn idle_sessions_are_retired_and_working_ones_are_not() {
    let env = TestEnv::new();
    env.start("idle", &[]);
    env.start("busy", &[]);
    env.wait_state("idle", "ready");
    env.wait_state("busy", "ready");
    env.reins(&["send", "--id", "busy", "[[wait:30]] long work"]).ok();
    env.wait_event("busy", Duration::from_secs(10), |e| e["type"] == "turn_started");

    // A dry run names it and stops nothing.
    let out = env.reins(&["gc", "--idle", "0s", "--dry-run", "--json"]).ok().json();
    let ids: Vec<&str> = out["retired"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kept"].is_null())
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["idle"], "{out}");
    assert!(env.listed("idle"));

    // Nothing has been idle for an hour.
    let out = env.reins(&["gc", "--idle", "1h", "--json"]).ok().json();
    assert_eq!(out["retired"], serde_json::json!([]), "{out}");

    let out = env.reins(&["gc", "--idle", "0s", "--json"]).ok().json();
    let retired = out["retired"].as_array().unwrap();
    let idle = retired.iter().find(|r| r["id"] == "idle").unwrap();
    assert!(idle["kept"].is_null(), "{out}");
    let busy = retired.iter().find(|r| r["id"] == "busy").unwrap();
    assert_eq!(busy["kept"], "a turn is running", "{out}");
    assert!(!env.listed("idle"));
    assert!(env.listed("busy"), "a working session was retired");
    assert_eq!(exit_reason(&env, "idle"), "retired");
    let exited = env.events("idle").into_iter().rev().find(|e| e["type"] == "exited").unwrap();
    assert_eq!(exited["reason"], "retired");
    let requested = env.events("idle").into_iter().find(|e| e["type"] == "stop_requested").unwrap();
    assert_eq!(requested["source"], "retire");

    // [fleet] retire_after applies to a plain `reins gc`.
    env.start("later", &[]);
    env.wait_state("later", "ready");
    env.write_config("[fleet]\nretire_after = \"0s\"\n");
    let text = env.reins(&["gc"]).ok().stdout;
    assert!(text.contains("retired later"), "{text}");
    assert!(text.contains("kept busy"), "{text}");
    assert_eq!(exit_reason(&env, "later"), "retired");
    env.write_config("[fleet]\nretire_after = \"soon\"\n");
    let run = env.reins(&["gc"]).code(2);
    assert!(run.stderr.contains("config.toml:2: [fleet] retire_after"), "{}", run.stderr);
    env.reins(&["stop", "--id", "busy", "--force"]).ok();
}
