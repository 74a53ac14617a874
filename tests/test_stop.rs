//! `reins stop`: polite first, then the whole process tree, always cleanly
//! recorded.

use std::time::Duration;

use crate::common::{TestEnv, alive, eventually, session_members, signal};

/// Pid printed by the mock agent's `[[spawn]]` marker.
fn spawned_child(env: &TestEnv, id: &str) -> u32 {
    let path = env.session_dir(id).join("transcript.log");
    let mut pid = None;
    eventually(Duration::from_secs(10), "the spawned child's pid", || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        pid = text
            .split("spawned child pid ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

#[test]
fn stop_ends_the_agent_and_its_whole_tree() {
    let env = TestEnv::new();
    let started = env.start("tree", &["--", "[[spawn]]"]);
    let agent = started["pid"].as_u64().unwrap() as u32;
    let host = started["host_pid"].as_u64().unwrap() as u32;
    let child = spawned_child(&env, "tree");
    assert!(alive(child));
    env.wait_state("tree", "ready");

    let out = env.reins(&["stop", "--id", "tree"]).ok().json();
    assert_eq!(out["status"], "stopped");
    assert_eq!(out["exit"]["reason"], "stopped");

    // Processes exit a moment after the kernel released the host's lock.
    eventually(Duration::from_secs(5), "every process of the session to end", || {
        !alive(agent) && !alive(child) && !alive(host) && session_members(agent).is_empty()
    });
    let events = env.events("tree");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "exited", "exited is the last event");
    assert_eq!(last["reason"], "stopped");
    let dir = env.session_dir("tree");
    assert!(dir.join("exit.json").exists());
    assert!(!dir.join("session.json").exists(), "registry entry removed");
    assert!(!std::path::Path::new(started["socket"].as_str().unwrap()).exists(), "socket removed");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "seq runs 1..n without gaps");
}

#[test]
fn stop_is_idempotent() {
    let env = TestEnv::new();
    env.start("twice", &[]);
    env.reins(&["stop", "--id", "twice"]).ok();
    let again = env.reins(&["stop", "--id", "twice"]).ok().json();
    assert_eq!(again["status"], "already_exited");
    assert_eq!(again["exit"]["reason"], "stopped");
    let unknown = env.reins(&["stop", "--id", "never-was"]).code(1);
    assert!(unknown.stderr.contains("no session named never-was"), "{}", unknown.stderr);
}

#[test]
fn an_agent_that_ignores_its_exit_command_and_sigterm_is_killed() {
    let env = TestEnv::new();
    let started = env.start("stubborn", &["--", "--ignore-exit", "--ignore-term"]);
    let agent = started["pid"].as_u64().unwrap() as u32;
    env.wait_state("stubborn", "ready");
    let out = env.reins(&["stop", "--id", "stubborn", "--timeout", "3s"]).ok().json();
    assert_eq!(out["status"], "stopped");
    assert_eq!(out["exit"]["signal"], 9);
    eventually(Duration::from_secs(2), "the agent to die", || !alive(agent));
    let signals: Vec<String> = env
        .events("stubborn")
        .iter()
        .filter(|e| e["type"] == "signalled")
        .map(|e| e["signal"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(signals, ["TERM", "KILL"]);
}

#[test]
fn a_stop_that_cannot_finish_in_time_times_out_and_force_kills() {
    let env = TestEnv::new();
    let started = env.start("frozen", &[]);
    env.wait_state("frozen", "ready");
    let host = started["host_pid"].as_u64().unwrap() as i32;
    let agent = started["pid"].as_u64().unwrap() as u32;
    // A host that stops answering: frozen with SIGSTOP.
    signal(host, 19);
    let late = env.reins(&["stop", "--id", "frozen", "--timeout", "1s"]).code(1);
    assert!(late.stderr.contains("--force"), "{}", late.stderr);
    let forced = env.reins(&["stop", "--id", "frozen", "--timeout", "1s", "--force"]).ok().json();
    assert_eq!(forced["status"], "killed");
    eventually(Duration::from_secs(5), "host and agent to die", || {
        !alive(host as u32) && !alive(agent)
    });
    assert_eq!(env.events("frozen").last().unwrap()["type"], "exited");
    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 0, "{rows}");
}

#[test]
fn hangup_and_terminate_signals_stop_the_session_cleanly() {
    let env = TestEnv::new();
    for (id, sig) in [("hup", 1), ("term", 15)] {
        let started = env.start(id, &[]);
        env.wait_state(id, "ready");
        signal(started["host_pid"].as_u64().unwrap() as i32, sig);
        let exited = env.wait_event(id, Duration::from_secs(10), |e| e["type"] == "exited");
        assert_eq!(exited["reason"], "stopped", "{id}");
        let requested = env.events(id).into_iter().find(|e| e["type"] == "stop_requested").unwrap();
        assert!(requested["source"].as_str().unwrap().starts_with("signal:"), "{requested}");
    }
}
