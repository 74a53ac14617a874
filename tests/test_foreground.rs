//! Foreground `reins run`: the agent in your terminal, keystrokes relayed,
//! its exit code passed through. Driven inside a private tmux pane, which
//! gives the command a real terminal.

use std::time::Duration;

use crate::common::{TestEnv, have_tool, reins_bin, written};

/// Runs `reins ARGS` in a tmux pane and returns the file its exit code
/// will be written to.
fn run_in_pane(env: &TestEnv, args: &str) -> std::path::PathBuf {
    let code_file = env.path().join("code.txt");
    let command = format!(
        "{} {args}; echo \"code=$?\" > {}; sleep 60",
        reins_bin().display(),
        code_file.display()
    );
    env.tmux_session("fg", &command);
    code_file
}

#[test]
fn foreground_run_relays_keys_and_passes_the_exit_code_through() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    let code_file = run_in_pane(&env, "run mock --id fg");
    env.wait_state("fg", "ready");
    let status = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(status[0]["mode"], "foreground");
    env.tmux(&["send-keys", "-t", "fg", "-l", "done [[exit:5]]"]);
    env.tmux(&["send-keys", "-t", "fg", "Enter"]);
    assert_eq!(written(&code_file, Duration::from_secs(15)).trim(), "code=5");
    let exited = env.events("fg").last().cloned().unwrap();
    assert_eq!(exited["type"], "exited");
    assert_eq!(exited["code"], 5);
}

#[test]
fn resizing_the_terminal_resizes_the_agent() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    run_in_pane(&env, "run mock --id rs");
    env.wait_state("rs", "ready");
    let started = env.events("rs")[0].clone();
    assert_eq!(started["size"]["cols"], 100);
    env.tmux(&["resize-window", "-t", "fg", "-x", "80", "-y", "24"]);
    let resized = env.wait_event("rs", Duration::from_secs(10), |e| e["type"] == "resized");
    assert_eq!(resized["size"]["cols"], 80);
    assert_eq!(resized["size"]["rows"], 24);
}
