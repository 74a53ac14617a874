//! The runnable examples in `examples/*.sh` work as their headers say:
//! each runs to success with the mock agent (its default), and is
//! shellcheck-clean.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{TestEnv, have_tool, run_merged};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

/// Runs an example with the mock agent and returns what it printed.
fn run_example(name: &str) -> String {
    let env = TestEnv::new();
    let path = example(name);
    let (code, output) = run_merged(env.bash(&[path.to_str().unwrap()]), Duration::from_secs(60));
    assert_eq!(code, Some(0), "examples/{name} failed:\n{output}");
    let left = env.reins(&["status", "--all", "--json"]).ok().json();
    let running: Vec<_> = left.as_array().unwrap().iter().filter(|s| s["host"] == "live").collect();
    assert!(running.is_empty(), "examples/{name} left sessions running: {running:?}");
    output
}

#[test]
fn fire_and_watch_example_runs_with_the_mock_agent() {
    if !have_tool("jq") {
        return;
    }
    let output = run_example("fire-and-watch.sh");
    assert!(output.contains("task_complete  completed"), "{output}");
    assert!(output.contains("its task ended: completed"), "{output}");
}

#[test]
fn chain_example_runs_three_agents_and_a_fix() {
    if !have_tool("jq") || !have_tool("git") {
        return;
    }
    let output = run_example("chain.sh");
    for step in ["== plan (mock)", "== implement (mock)", "== review (mock)", "== fix (mock)"] {
        assert!(output.contains(step), "{step} missing:\n{output}");
    }
    assert!(output.contains("turn 1: completed\nturn 2: completed"), "{output}");
}

#[test]
fn buddy_example_nudges_a_stalled_worker_to_done() {
    if !have_tool("jq") || !have_tool("git") {
        return;
    }
    let output = run_example("buddy.sh");
    assert!(output.contains("done after 1 nudge(s)"), "{output}");
    assert!(output.contains("turn 1: interrupted\nturn 2: completed"), "{output}");
}

#[test]
fn examples_are_shellcheck_clean() {
    if !have_tool("shellcheck") {
        return;
    }
    let mut scripts: Vec<String> = std::fs::read_dir(example(""))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".sh"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 3, "{scripts:?}");
    let out = std::process::Command::new("shellcheck").args(&scripts).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `examples/library.rs`, built with the tests: reins used as a Rust
/// library starts a mock session, sends, waits and reads the answer.
#[test]
fn the_library_example_drives_a_mock_session() {
    let env = TestEnv::new();
    // target/debug/deps/integration-… → target/debug/examples/library
    let test_binary = std::env::current_exe().unwrap();
    let example = test_binary.parent().unwrap().parent().unwrap().join("examples/library");
    assert!(example.is_file(), "{} was not built with the tests", example.display());
    let mut cmd = std::process::Command::new(&example);
    cmd.current_dir(&env.work)
        .env_clear()
        .envs(env.env_vars())
        .env("REINS_BIN", crate::common::reins_bin());
    let (code, output) = run_merged(cmd, Duration::from_secs(60));
    assert_eq!(code, Some(0), "examples/library failed:\n{output}");
    assert!(output.contains("is delivered (turn Some(1))"), "{output}");
    assert!(output.contains("turn Some(1): completed"), "{output}");
    assert!(output.contains("answer: MOCK_OK (you said: write a haiku about reins)"), "{output}");
    assert!(output.trim_end().ends_with("stopped"), "{output}");
    let left = env.reins(&["status", "--all", "--json"]).ok().json();
    assert_eq!(left, serde_json::json!([]), "the example left a session running");
}
