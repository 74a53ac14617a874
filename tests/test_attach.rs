//! `reins attach` to a headless session, from real terminals (panes of a
//! private tmux server): the current screen on arrival, typing, the
//! viewer's size while attached, a second read-only viewer, Ctrl-] leaving
//! the session running, and the session ending under the viewers.

use std::time::Duration;

use crate::common::{TestEnv, eventually, have_tool, reins_bin};

/// Starts `reins attach ARGS` in a new tmux session `name` (a COLSxROWS
/// terminal); the pane keeps the command's last words after it exits.
fn viewer(env: &TestEnv, name: &str, args: &str, cols: u16, rows: u16) {
    let work = env.work.to_str().unwrap();
    let command =
        format!("{} attach {args}; echo \"attach exited $?\"; sleep 60", reins_bin().display());
    let (cols, rows) = (cols.to_string(), rows.to_string());
    let out = env.tmux(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-x",
        &cols,
        "-y",
        &rows,
        "-c",
        work,
        &command,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn screen_of(env: &TestEnv, name: &str) -> String {
    String::from_utf8_lossy(&env.tmux(&["capture-pane", "-p", "-t", name]).stdout).into_owned()
}

#[track_caller]
fn shows(env: &TestEnv, name: &str, text: &str) {
    eventually(Duration::from_secs(10), &format!("{name} to show {text:?}"), || {
        screen_of(env, name).contains(text)
    });
}

fn pane(env: &TestEnv, id: &str) -> String {
    env.reins(&["pane", "--id", id]).ok().stdout
}

#[test]
fn viewers_see_type_and_leave_a_headless_session_running() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.start("h", &["--context", "hello there"]);
    env.wait_event("h", Duration::from_secs(10), |e| e["type"] == "task_complete");

    // The current screen on arrival, at the viewer's size.
    viewer(&env, "v1", "--id h", 90, 24);
    shows(&env, "v1", "MOCK_OK (you said: [reins session id=h] hello there)");
    let resized = env.wait_event("h", Duration::from_secs(10), |e| e["type"] == "resized");
    assert_eq!(
        (resized["size"]["cols"].as_u64(), resized["size"]["rows"].as_u64()),
        (Some(90), Some(24))
    );

    // A second viewer, read-only: sees what the first types, cannot type.
    viewer(&env, "v2", "--id h --read-only", 100, 30);
    shows(&env, "v2", "MOCK_OK");
    env.tmux(&["send-keys", "-t", "v1", "-l", "typed in v1"]);
    eventually(Duration::from_secs(10), "the keys to reach the agent", || {
        pane(&env, "h").contains("> typed in v1")
    });
    shows(&env, "v2", "typed in v1");
    env.tmux(&["send-keys", "-t", "v2", "-l", "XYZ"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!pane(&env, "h").contains("XYZ"), "a read-only viewer's keys are not sent");

    // Enter from the viewer submits; the turn runs as usual.
    env.tmux(&["send-keys", "-t", "v1", "Enter"]);
    env.wait_event("h", Duration::from_secs(10), |e| {
        e["type"] == "task_complete" && e["turn"] == 2
    });
    shows(&env, "v1", "MOCK_OK (you said: typed in v1)");

    // Ctrl-] leaves; the session runs on at its own size again.
    env.tmux(&["send-keys", "-t", "v1", "C-]"]);
    shows(&env, "v1", "attach exited 0");
    assert!(screen_of(&env, "v1").contains("detached from h; it is still running"));
    let back = env.wait_event("h", Duration::from_secs(10), |e| {
        e["type"] == "resized" && e["size"]["cols"] == 120
    });
    assert_eq!(back["size"]["rows"], 40);
    let status = env.reins(&["status", "--id", "h", "--json"]).ok().json();
    assert_eq!(status[0]["host"], "live");

    // The session ends under the remaining viewer.
    env.reins(&["stop", "--id", "h"]).ok();
    shows(&env, "v2", "attach exited 0");
    assert!(screen_of(&env, "v2").contains("session h ended"), "{}", screen_of(&env, "v2"));
}

#[test]
fn attach_needs_a_terminal_and_a_live_session() {
    let env = TestEnv::new();
    env.start("t", &[]);
    let out = env.reins(&["attach", "--id", "t"]).code(2);
    assert!(out.stderr.contains("needs a terminal"), "{}", out.stderr);
    assert!(out.stderr.contains("reins pane --id t --follow"), "{}", out.stderr);
    let out = env.reins(&["attach", "--id", "nope"]).code(1);
    assert!(out.stderr.contains("nope"), "{}", out.stderr);
    env.reins(&["stop", "--id", "t"]).ok();
    let out = env.reins(&["attach", "--id", "t"]).code(1);
    assert!(out.stderr.contains("has exited"), "{}", out.stderr);
}

#[test]
fn a_tmux_session_can_be_relayed_too() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.reins(&["run", "mock", "--id", "tm", "--tmux"]).ok();
    env.wait_state("tm", "ready");
    viewer(&env, "rv", "--id tm --relay", 100, 30);
    shows(&env, "rv", "Type a task for mock");
    env.tmux(&["send-keys", "-t", "rv", "-l", "via relay"]);
    eventually(Duration::from_secs(10), "the keys to reach the agent", || {
        pane(&env, "tm").contains("via relay")
    });
    let events = env.events("tm");
    assert!(
        !events.iter().any(|e| e["type"] == "resized" && e["size"]["cols"] == 100),
        "a session with a terminal of its own keeps its size"
    );
    env.tmux(&["send-keys", "-t", "rv", "C-]"]);
    shows(&env, "rv", "attach exited 0");
}

#[test]
fn attaching_to_a_tmux_session_from_outside_tmux_says_how_to_leave() {
    if !have_tool("tmux") || !have_tool("script") {
        return;
    }
    let env = TestEnv::new();
    env.reins(&["run", "mock", "--id", "outside", "--tmux"]).ok();
    env.wait_state("outside", "ready");
    // A terminal that is not inside tmux: `script` gives attach a pty.
    let line = format!("{} attach --id outside", reins_bin().display());
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qfec", &line, "/dev/null"]).current_dir(&env.work).env_clear();
    cmd.envs(env.env_vars());
    let (_, output) = crate::common::run_merged(cmd, Duration::from_secs(3));
    assert!(output.contains("leave with C-b d"), "{output}");
    assert!(output.contains("Ctrl-] does not work here"), "{output}");
}
