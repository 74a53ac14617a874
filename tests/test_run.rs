//! `reins run --detach`: the session is up, visible and well-formed when
//! `run` returns.

use std::path::Path;
use std::process::Command;

use crate::common::{TestEnv, alive, mode};

#[test]
fn detached_session_is_in_status_when_run_returns() {
    let env = TestEnv::new();
    let started = env.start("w1", &["--description", "first worker"]);
    assert_eq!(started["ok"], true);
    assert_eq!(started["id"], "w1");
    assert_eq!(started["mode"], "detached");
    assert_eq!(started["adapter"], "mock");
    let pid = started["pid"].as_u64().unwrap() as u32;
    assert!(alive(pid), "the agent runs");
    assert!(alive(started["host_pid"].as_u64().unwrap() as u32), "the host runs");

    // No waiting: the run's own return is the synchronisation point.
    let status = env.reins(&["status", "--json"]).ok().json();
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{status}");
    assert_eq!(rows[0]["id"], "w1");
    assert_eq!(rows[0]["host"], "live");
    assert_eq!(rows[0]["agent_pid"], started["pid"]);
    assert_eq!(rows[0]["description"], "first worker");
    assert_eq!(rows[0]["cwd"], env.work.canonicalize().unwrap().display().to_string());

    let events = env.events("w1");
    assert_eq!(events[0]["type"], "started");
    assert_eq!(events[0]["seq"], 1);
    assert_eq!(events[0]["schema_version"], 1);
    assert_eq!(events[0]["pid"], started["pid"]);
    assert_eq!(events[0]["run"], started["run"]);
}

#[test]
fn mock_session_becomes_ready_and_table_shows_it() {
    let env = TestEnv::new();
    env.start("w2", &[]);
    let ev = env.wait_state("w2", "ready");
    assert_eq!(ev["from"], "starting");
    assert_eq!(ev["rule"], "composer");
    let table = env.reins(&["status"]).ok().stdout;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["ID", "AGENT", "STATE", "TURN", "IDLE", "AGE", "PANE", "CWD", "DESC"] {
        assert!(header.contains(col), "{header}");
    }
    let row = lines.next().unwrap();
    assert!(row.starts_with("w2 ") && row.contains("mock") && row.contains("ready"), "{row}");
}

#[test]
fn files_and_directories_are_private() {
    let env = TestEnv::new();
    let started = env.start("w3", &[]);
    let dir = env.session_dir("w3");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(dir.parent().unwrap()), 0o700);
    assert_eq!(mode(&env.state_dir().join("sessions")), 0o700);
    for file in ["session.json", "events.jsonl", "transcript.log", "host.log", "host.lock"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let socket = Path::new(started["socket"].as_str().unwrap());
    assert_eq!(mode(socket), 0o600, "control socket");
    assert_eq!(mode(socket.parent().unwrap()), 0o700, "socket directory");
}

#[test]
fn random_ids_are_readable_and_distinct() {
    let env = TestEnv::new();
    let a = env.reins(&["run", "mock", "--detach"]).ok().json();
    let b = env.reins(&["run", "mock", "--detach"]).ok().json();
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_ne!(a, b);
    for id in [a, b] {
        assert!(id.contains('-') && id.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{id}");
    }
}

#[test]
fn any_program_runs_with_the_generic_profile() {
    let env = TestEnv::new();
    let started = env.reins(&["run", "sh", "--id", "shell", "--detach"]).ok().json();
    assert_eq!(started["adapter"], "generic");
    assert_eq!(started["agent"], "sh");
    // sh prints a `# ` or `$ ` prompt at the cursor: ready.
    env.wait_state("shell", "ready");
}

#[test]
fn agent_gets_its_session_environment() {
    let env = TestEnv::new();
    let script = "echo id=$REINS_ID dir=$REINS_SESSION_DIR; sleep 30";
    env.reins(&["run", "sh", "--id", "envcheck", "--detach", "--", "-c", script]).ok();
    let dir = env.session_dir("envcheck");
    crate::common::eventually(std::time::Duration::from_secs(5), "agent output", || {
        std::fs::read_to_string(dir.join("transcript.log")).is_ok_and(|t| t.contains("id=envcheck"))
    });
    let text = std::fs::read_to_string(dir.join("transcript.log")).unwrap();
    assert!(text.contains(&format!("dir={}", dir.display())), "{text}");
}

#[test]
fn duplicate_live_id_is_refused() {
    let env = TestEnv::new();
    env.start("dup", &[]);
    let err = env.reins(&["run", "mock", "--id", "dup", "--detach"]).code(1);
    assert!(err.stderr.contains("session dup is already running"), "{}", err.stderr);
    assert!(err.stderr.contains("hint:"), "{}", err.stderr);
}

#[test]
fn two_runs_racing_for_one_id_have_one_winner() {
    let env = TestEnv::new();
    for round in 0..3 {
        let id = format!("race{round}");
        let a = env.spawn(&["run", "mock", "--id", &id, "--detach"]);
        let b = env.spawn(&["run", "mock", "--id", &id, "--detach"]);
        let codes: Vec<i32> = [a, b]
            .into_iter()
            .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
            .collect();
        let wins = codes.iter().filter(|c| **c == 0).count();
        assert_eq!(wins, 1, "round {round}: exit codes {codes:?}");
        assert!(codes.contains(&1), "{codes:?}");
        let rows = env.reins(&["status", "--json"]).ok().json();
        let live = rows.as_array().unwrap().iter().filter(|r| r["id"] == id.as_str()).count();
        assert_eq!(live, 1);
    }
}

#[test]
fn context_and_meta_reach_the_agent_and_the_record() {
    let env = TestEnv::new();
    env.start("ctx", &["--context", "say hi", "--meta", r#"{"ticket":"T-1"}"#]);
    let events = env.events("ctx");
    assert_eq!(events[0]["meta"]["ticket"], "T-1");
    let status = env.reins(&["status", "--id", "ctx", "--json"]).ok().json();
    assert_eq!(status[0]["meta"]["ticket"], "T-1");
    // The mock agent takes the context as its first message and answers it.
    let dir = env.session_dir("ctx");
    crate::common::eventually(std::time::Duration::from_secs(10), "the answer", || {
        std::fs::read_to_string(dir.join("transcript.log"))
            .is_ok_and(|t| t.contains("MOCK_OK (you said: [reins session id=ctx] say hi)"))
    });
}

/// The process a session's host runs as.
fn host_cmdline(env: &TestEnv, id: &str) -> Vec<String> {
    let rows = env.reins(&["status", "--id", id, "--json"]).ok().json();
    let pid = rows[0]["host_pid"].as_u64().unwrap();
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into())
        .collect()
}

#[test]
fn the_host_is_reins_host_beside_reins_and_reins_dunder_host_alone() {
    let env = TestEnv::new();
    // Beside `reins` (as cargo builds and installs them): the small binary.
    env.start("small", &[]);
    let argv = host_cmdline(&env, "small");
    assert_eq!(argv[0], env!("CARGO_BIN_EXE_reins-host"), "{argv:?}");
    env.reins(&["stop", "--id", "small"]).ok();

    // A `reins` alone runs its own `__host`.
    let alone = env.path().join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(crate::common::reins_bin(), alone.join("reins")).unwrap();
    let out = Command::new(alone.join("reins"))
        .args(["run", "mock", "--id", "big", "--detach"])
        .current_dir(&env.work)
        .env_clear()
        .envs(env.env_vars())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let argv = host_cmdline(&env, "big");
    assert_eq!(argv[1], "__host", "{argv:?}");
    env.reins(&["send", "--id", "big", "--wait-for-idle", "hello"]).ok();
    env.reins(&["stop", "--id", "big"]).ok();
}

#[test]
fn a_host_of_another_version_refuses_the_session() {
    let env = TestEnv::new();
    env.start("v", &[]);
    env.reins(&["stop", "--id", "v"]).ok();
    let record = std::fs::read_to_string(env.session_dir("v").join("launch.json")).unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&record).unwrap();
    record["spec"]["reins_version"] = "0.0.1-elsewhere".into();
    let mut child = Command::new(env!("CARGO_BIN_EXE_reins-host"))
        .current_dir(&env.work)
        .env_clear()
        .envs(env.env_vars())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let spec = serde_json::to_vec(&record["spec"]).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &spec).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("but reins 0.0.1-elsewhere started it"), "{stderr}");
    assert!(stderr.contains("hint: install reins and reins-host from one build"), "{stderr}");
    assert!(!env.events("v").iter().any(|e| e["run"] != env.events("v")[0]["run"]), "no new run");
}
