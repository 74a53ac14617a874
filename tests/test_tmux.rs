//! `reins run --tmux`: windows in a private tmux server, reused sessions,
//! the caller's session when run from inside tmux.

use std::time::Duration;

use crate::common::{TestEnv, eventually, have_tool, reins_bin, written};

fn capture(env: &TestEnv, pane: &str) -> String {
    String::from_utf8_lossy(&env.tmux(&["capture-pane", "-p", "-t", pane]).stdout).into_owned()
}

#[test]
fn outside_tmux_windows_go_to_one_reused_reins_session() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    let a = env.reins(&["run", "mock", "--id", "t1", "--tmux"]).ok().json();
    // Twice in a row: the `reins` tmux session exists now and is reused.
    let b = env.reins(&["run", "mock", "--id", "t2", "--tmux", "second"]).ok().json();
    for started in [&a, &b] {
        assert_eq!(started["mode"], "tmux");
        assert_eq!(started["tmux"]["session"], "reins");
        assert!(started["tmux"]["pane"].as_str().unwrap().starts_with('%'), "{started}");
    }
    let windows = env.tmux(&["list-windows", "-t", "reins", "-F", "#{window_name}"]);
    let names = String::from_utf8_lossy(&windows.stdout);
    assert!(names.lines().any(|n| n == "t1") && names.lines().any(|n| n == "second"), "{names}");

    let pane = a["tmux"]["pane"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), "the agent's screen in the window", || {
        capture(&env, &pane).contains("Type a task for mock")
    });
    let status = env.reins(&["status", "--json"]).ok().json();
    let row = status.as_array().unwrap().iter().find(|r| r["id"] == "t1").unwrap().clone();
    assert_eq!(row["tmux"]["pane"], pane.as_str());
    assert_eq!(row["mode"], "tmux");

    // Stopping the session closes its window.
    env.reins(&["stop", "--id", "t1"]).ok();
    eventually(Duration::from_secs(5), "the window to close", || {
        let out = env.tmux(&["list-panes", "-a", "-F", "#{pane_id}"]);
        !String::from_utf8_lossy(&out.stdout).lines().any(|p| p == pane)
    });
}

#[test]
fn typing_in_the_window_reaches_the_agent() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    let started = env.reins(&["run", "mock", "--id", "typed", "--tmux"]).ok().json();
    let pane = started["tmux"]["pane"].as_str().unwrap().to_string();
    env.wait_state("typed", "ready");
    env.tmux(&["send-keys", "-t", &pane, "-l", "hello from tmux"]);
    env.tmux(&["send-keys", "-t", &pane, "Enter"]);
    env.wait_event("typed", Duration::from_secs(10), |e| {
        e["type"] == "state" && e["from"] == "busy"
    });
    eventually(Duration::from_secs(5), "the answer on screen", || {
        capture(&env, &pane).contains("MOCK_OK (you said: hello from tmux)")
    });
    // Closing the window hangs up the host, which stops the agent cleanly.
    env.tmux(&["kill-pane", "-t", &pane]);
    let exited = env.wait_event("typed", Duration::from_secs(10), |e| e["type"] == "exited");
    assert_eq!(exited["reason"], "stopped");
}

#[test]
fn inside_tmux_the_window_joins_the_callers_session_and_knows_its_spawner() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    let out_file = env.path().join("inner.json");
    let command = format!(
        "unset REINS_TMUX_SERVER; {} run sh --id inner --tmux -- -c 'echo spawner=$REINS_SPAWNER_PANE; sleep 60' > {}; sleep 60",
        reins_bin().display(),
        out_file.display()
    );
    let outer_pane = env.tmux_session("outer", &command);
    let started: serde_json::Value =
        serde_json::from_str(&written(&out_file, Duration::from_secs(10))).unwrap();
    assert_eq!(started["tmux"]["session"], "outer", "{started}");
    let dir = env.session_dir("inner");
    eventually(Duration::from_secs(5), "the agent's output", || {
        std::fs::read_to_string(dir.join("transcript.log")).is_ok_and(|t| t.contains("spawner=%"))
    });
    let transcript = std::fs::read_to_string(dir.join("transcript.log")).unwrap();
    assert!(transcript.contains(&format!("spawner={outer_pane}")), "{transcript}");
    let registry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("session.json")).unwrap()).unwrap();
    assert_eq!(registry["spawner_pane"], outer_pane.as_str());
    assert!(!dir.join("launch.fifo").exists(), "the launch FIFO is removed");
}

#[test]
fn send_and_wait_drive_a_session_in_a_tmux_window() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    let started = env.reins(&["run", "mock", "--id", "tw", "--tmux"]).ok().json();
    let pane = started["tmux"]["pane"].as_str().unwrap().to_string();
    env.wait_state("tw", "ready");
    let out = env.reins(&["send", "--id", "tw", "--wait-for-idle", "through tmux"]).ok().json();
    assert_eq!(out["task"]["status"], "completed");
    eventually(Duration::from_secs(5), "the answer in the tmux pane", || {
        capture(&env, &pane).contains("MOCK_OK (you said: through tmux)")
    });
}

/// tmux expands formats in a window name and a start directory, and
/// `#(cmd)` in a format runs `cmd`: a name or cwd holding one ran it.
#[test]
fn hash_paren_in_a_window_name_or_cwd_runs_nothing() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    // `cd` first: tmux runs format jobs in a directory of its choosing.
    let cwd = env.work.join("x#(cd;touch pwned_cwd)#{pane_id}");
    std::fs::create_dir(&cwd).unwrap();
    let name = "w#(cd;touch pwned_name)#W";
    let cwd_arg = cwd.to_str().unwrap();
    let args = ["run", "sh", "--id", "hashes", "--tmux", name, "--cwd", cwd_arg];
    let started = env
        .reins(&[&args[..], &["--", "-c", "echo \"cwd=$(pwd)\"; sleep 60"]].concat())
        .ok()
        .json();
    let pane = started["tmux"]["pane"].as_str().unwrap().to_string();
    let dir = env.session_dir("hashes");
    eventually(Duration::from_secs(10), "the agent's output", || {
        std::fs::read_to_string(dir.join("transcript.log")).is_ok_and(|t| t.contains("cwd="))
    });
    let transcript = std::fs::read_to_string(dir.join("transcript.log")).unwrap();
    assert!(transcript.contains(&format!("cwd={cwd_arg}")), "{transcript}");
    let format = "#{window_name}\t#{pane_start_path}";
    let shown = env.tmux(&["display-message", "-p", "-t", &pane, format]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(shown.trim_end(), format!("{name}\t{cwd_arg}"));
    for file in ["pwned_cwd", "pwned_name"] {
        for place in [env.path().join("home"), env.work.clone(), cwd.clone()] {
            assert!(!place.join(file).exists(), "tmux ran the #(...) that made {file}");
        }
    }
}
