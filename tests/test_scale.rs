//! Many sessions at once: the limits that break tools of this kind first
//! (inotify instances, descriptors, the control socket's backlog, tmux
//! calls) must not break reins. `cargo bench --bench scale` runs the full
//! 200-session version; this one stays small enough for every CI run.

use std::process::{Child, Output, Stdio};

use serde_json::Value;

use crate::common::{TestEnv, have_tool};

const SESSIONS: usize = 50;
const ROUNDS: u64 = 2;

fn id(i: usize) -> String {
    format!("m{i:02}")
}

/// Runs one `reins` per session at once; every second one wakes its
/// followers through the host instead of inotify (as all do once the
/// user's inotify instances are used up).
fn all_at_once(env: &TestEnv, args: impl Fn(&str) -> Vec<String>) -> Vec<Value> {
    let children: Vec<Child> = (0..SESSIONS)
        .map(|i| {
            let args = args(&id(i));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = env.command(&args);
            if i % 2 == 1 {
                cmd.env("REINS_NO_INOTIFY", "1");
            }
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(i, child)| {
            let out: Output = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}\nstdout: {}\nstderr: {}",
                id(i),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn fifty_sessions_through_concurrent_send_and_wait_cycles() {
    let env = TestEnv::new();
    for i in 0..SESSIONS {
        env.start(&id(i), &["--", "--work", "0.05"]);
    }
    let ready = all_at_once(&env, |id| {
        ["wait", "--id", id, "--until", "ready", "--timeout", "30s"].map(String::from).to_vec()
    });
    assert!(ready.iter().all(|r| r["ok"] == true));

    for round in 1..=ROUNDS {
        let sent = all_at_once(&env, |id| {
            ["send", "--id", id, &format!("round {round}")].map(String::from).to_vec()
        });
        for (i, s) in sent.iter().enumerate() {
            assert_eq!(s["turn"], round, "{}: {s}", id(i));
        }
        let done = all_at_once(&env, |id| {
            ["wait", "--id", id, "--until", "task_complete", "--timeout", "30s"]
                .map(String::from)
                .to_vec()
        });
        for (i, d) in done.iter().enumerate() {
            assert_eq!(d["turn"], round, "{} waited for the wrong turn: {d}", id(i));
            assert_eq!(d["event"]["message_id"], sent[i]["message_id"]);
        }
    }

    // Nothing misreported: every session is live, ready, on its last turn.
    let rows = env.reins(&["status", "--json"]).ok().json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), SESSIONS);
    for row in rows {
        assert_eq!(row["host"], "live", "{row}");
        assert_eq!(row["state"], "ready", "{row}");
        assert_eq!(row["turn"], ROUNDS, "{row}");
    }
    // Nothing lost: every turn delivered, verified and completed once.
    for i in 0..SESSIONS {
        let events = env.events(&id(i));
        let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count() as u64;
        assert_eq!(count("delivered"), ROUNDS, "{}", id(i));
        assert_eq!(count("turn_started"), ROUNDS, "{}", id(i));
        assert_eq!(count("task_complete"), ROUNDS, "{}", id(i));
        assert_eq!(count("stranded"), 0, "{}", id(i));
    }
}

#[test]
fn a_burst_of_clients_on_one_host_is_served() {
    let env = TestEnv::new();
    env.start("busy", &[]);
    env.wait_state("busy", "ready");
    let children: Vec<Child> = (0..100)
        .map(|_| {
            env.command(&["pane", "--id", "busy", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pane: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(pane["text"].as_str().unwrap().contains("Type a task for mock"), "{pane}");
    }
}

#[test]
fn the_host_raises_its_open_file_limit_and_the_agent_keeps_the_callers() {
    let env = TestEnv::new();
    let hard = limit_of("self", "hard");
    if hard.is_none_or(|h| h <= 256) {
        crate::common::skip("the hard open-file limit is not above 256");
        return;
    }
    let out = env.sh(r#"ulimit -Sn 256 && exec "$REINS" run mock --id lim --detach"#).output();
    let out = out.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = started["host_pid"].as_u64().unwrap().to_string();
    let agent = started["pid"].as_u64().unwrap().to_string();
    assert_eq!(limit_of(&host, "soft"), limit_of(&host, "hard"), "the host raised its own");
    assert_eq!(limit_of(&agent, "soft"), Some(256), "the agent got the caller's");
}

/// The soft or hard "Max open files" of a process (`None` = unlimited).
fn limit_of(pid: &str, which: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    let value = if which == "soft" { fields[3] } else { fields[4] };
    value.parse().ok()
}

#[test]
fn run_tmux_is_one_tmux_call_per_session() {
    if !have_tool("tmux") {
        return;
    }
    let mut env = TestEnv::new();
    // A tmux on PATH that logs its calls and runs the real one.
    let real = String::from_utf8(
        std::process::Command::new("sh").args(["-c", "command -v tmux"]).output().unwrap().stdout,
    )
    .unwrap();
    let bin = env.path().join("bin");
    let log = env.path().join("tmux-calls");
    std::fs::create_dir_all(&bin).unwrap();
    let shim =
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.trim());
    std::fs::write(bin.join("tmux"), shim).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("tmux"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    env.set_env("PATH", Some(&path));

    for i in 0..4 {
        env.reins(&["run", "mock", "--id", &format!("t{i}"), "--tmux"]).ok();
    }
    let calls = std::fs::read_to_string(&log).unwrap();
    // The first run finds no `reins` tmux session and creates it; the
    // others open a window in it: one call each.
    assert_eq!(calls.lines().count(), 2 + 3, "{calls}");
    for i in 0..4 {
        env.reins(&["stop", "--id", &format!("t{i}")]).ok();
    }
}
