//! Hosts that die and agents that crash: reported honestly, cleaned by gc.

use std::time::Duration;

use crate::common::{TestEnv, alive, eventually, signal};

#[test]
fn a_killed_host_is_reported_dead_and_gc_cleans_it() {
    let env = TestEnv::new();
    let started = env.start("victim", &[]);
    env.wait_state("victim", "ready");
    let host = started["host_pid"].as_u64().unwrap() as u32;
    let agent = started["pid"].as_u64().unwrap() as u32;
    signal(host as i32, 9);
    eventually(Duration::from_secs(5), "the host to die", || !alive(host));

    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(rows[0]["id"], "victim");
    assert_eq!(rows[0]["host"], "dead");
    assert_eq!(rows[0]["state"], "dead", "a dead host's last state is not reported as current");
    let table = env.reins(&["status"]).ok().stdout;
    assert!(table.lines().nth(1).unwrap().contains("dead"), "{table}");

    // The agent died with its host; gc closes the run.
    eventually(Duration::from_secs(5), "the agent to die with its host", || !alive(agent));
    let gc = env.reins(&["gc", "--json"]).ok().json();
    assert_eq!(gc["cleaned"][0]["id"], "victim");
    assert_eq!(gc["cleaned"][0]["closed_run"], true);

    assert_eq!(env.reins(&["status", "--json"]).ok().json(), serde_json::json!([]));
    let last = env.events("victim").last().cloned().unwrap();
    assert_eq!(last["type"], "exited");
    assert_eq!(last["reason"], "failure");
    assert_eq!(last["run"], started["run"]);
    assert!(last["detail"].as_str().unwrap().contains("died"), "{last}");
    assert!(env.session_dir("victim").join("exit.json").exists());
    assert_eq!(env.reins(&["gc"]).ok().stdout.trim(), "nothing to clean");
}

#[test]
fn events_follow_reports_a_host_that_died_silently() {
    let env = TestEnv::new();
    let started = env.start("silent", &[]);
    env.wait_state("silent", "ready");
    let follower = env.spawn(&["events", "--id", "silent", "--follow"]);
    signal(started["host_pid"].as_u64().unwrap() as i32, 9);
    let out = follower.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("host died"));
}

#[test]
fn a_crashing_agent_records_its_exit_code() {
    let env = TestEnv::new();
    env.start("crash", &["--", "--crash-after", "0.5"]);
    let exited = env.wait_event("crash", Duration::from_secs(10), |e| e["type"] == "exited");
    assert_eq!(exited["code"], 3);
    assert_eq!(exited["reason"], "failure");
    let exit: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.session_dir("crash").join("exit.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(exit["code"], 3);
    assert_eq!(exit["reason"], "failure");
    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(rows, serde_json::json!([]), "an exited session is not listed as running");
    let one = env.reins(&["status", "--id", "crash", "--json"]).ok().json();
    assert_eq!(one[0]["host"], "exited");
    assert_eq!(one[0]["exit"]["code"], 3);
}

#[test]
fn an_agent_killed_by_a_signal_records_the_signal() {
    let env = TestEnv::new();
    // SIGUSR1: its default action ends the process (Rust programs survive a
    // SIGSEGV sent by kill(2), their stack-overflow handler swallows it).
    let started = env.start("segv", &[]);
    env.wait_state("segv", "ready");
    signal(started["pid"].as_u64().unwrap() as i32, 10);
    let exited = env.wait_event("segv", Duration::from_secs(10), |e| e["type"] == "exited");
    assert_eq!(exited["signal"], 10);
    assert_eq!(exited["code"], serde_json::Value::Null);
    assert_eq!(exited["reason"], "failure");
}

#[test]
fn an_agent_that_cannot_start_is_a_boot_failure() {
    let env = TestEnv::new();
    // The mock agent crashes on its first message, before any screen rule
    // could match... with a boot delay it is still `starting`.
    env.reins(&[
        "run",
        "mock",
        "--id",
        "early",
        "--detach",
        "--",
        "--boot-delay",
        "5",
        "--crash-after",
        "0.2",
    ])
    .ok();
    let exited = env.wait_event("early", Duration::from_secs(10), |e| e["type"] == "exited");
    assert_eq!(exited["reason"], "boot_failure");
}
