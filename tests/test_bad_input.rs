//! Bad input: a clear error, a non-zero exit, and nothing left behind.

use std::os::unix::fs::PermissionsExt;

use crate::common::TestEnv;

/// No session directory was created for anything.
fn nothing_left(env: &TestEnv) {
    let sessions = env.state_dir().join("sessions");
    let leftovers: Vec<_> = std::fs::read_dir(&sessions)
        .map(|d| d.flatten().flat_map(|s| std::fs::read_dir(s.path()).unwrap().flatten()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[track_caller]
fn refused(env: &TestEnv, args: &[&str], code: i32, needle: &str) {
    let out = env.reins(args).code(code);
    assert!(out.stderr.starts_with("reins: "), "{}", out.stderr);
    assert!(out.stderr.contains(needle), "expected {needle:?} in: {}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    nothing_left(env);
}

#[test]
fn bad_ids_are_refused() {
    let env = TestEnv::new();
    let long = "x".repeat(65);
    for id in ["", "../x", "a/b", "a\nb", "-x", ".x", "a b", long.as_str()] {
        let flag = format!("--id={id}");
        let out = env.reins(&["run", "mock", &flag, "--detach"]);
        assert_eq!(out.code, 2, "{id:?}: {}", out.stderr);
        assert!(out.stderr.contains("invalid session id"), "{id:?}: {}", out.stderr);
        assert!(out.stderr.contains("hint:"), "{id:?}");
        assert_eq!(out.stderr.lines().count(), 2, "one line of error, one of hint: {}", out.stderr);
    }
    nothing_left(&env);
    // The same checks guard every command that takes an id.
    refused(&env, &["stop", "--id", "../x"], 2, "invalid session id");
    refused(&env, &["events", "--id", "a/b"], 2, "invalid session id");
}

#[test]
fn an_id_that_would_overflow_the_socket_path_is_refused() {
    let mut env = TestEnv::new();
    let deep = env.path().join("r".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    env.set_env("XDG_RUNTIME_DIR", Some(deep.to_str().unwrap()));
    let id = "a".repeat(40);
    refused(&env, &["run", "mock", "--id", &id, "--detach"], 2, "too long for this machine");
}

#[test]
fn bad_working_directories_and_agents_are_refused() {
    let env = TestEnv::new();
    refused(&env, &["run", "mock", "--cwd", "/no/such/dir", "--detach"], 2, "--cwd /no/such/dir");
    refused(
        &env,
        &["run", "no-such-agent-xyz", "--detach"],
        1,
        "\"no-such-agent-xyz\" not found in PATH",
    );
    let script = env.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(&env, &["run", script.to_str().unwrap(), "--detach"], 1, "is not an executable file");
    refused(&env, &["run", "--detach"], 2, "which agent?");
    refused(&env, &["run", "generic", "--detach"], 2, "needs a program");
}

#[test]
fn meta_must_be_a_json_object() {
    let env = TestEnv::new();
    refused(
        &env,
        &["run", "mock", "--meta", "[1,2]", "--detach"],
        2,
        "--meta must be a JSON object",
    );
    refused(&env, &["run", "mock", "--meta", "{oops", "--detach"], 2, "--meta is not valid JSON");
}

#[test]
fn tmux_mode_without_tmux_says_so() {
    let mut env = TestEnv::new();
    // A PATH with sh and friends but no tmux.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["sh", "sleep", "env"] {
        let target = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let target = String::from_utf8(target.stdout).unwrap();
        std::os::unix::fs::symlink(target.trim(), bin.join(tool)).unwrap();
    }
    env.set_env("PATH", Some(bin.to_str().unwrap()));
    refused(&env, &["run", "mock", "--tmux"], 1, "--tmux needs tmux, which is not installed");
}

#[test]
fn an_unwritable_state_directory_is_reported() {
    let mut env = TestEnv::new();
    let file = env.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    env.set_env("REINS_STATE_DIR", Some(file.join("state").to_str().unwrap()));
    let out = env.reins(&["run", "mock", "--detach"]).code(1);
    assert!(out.stderr.contains("is not writable"), "{}", out.stderr);
    assert!(out.stderr.contains("REINS_STATE_DIR"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_2_with_help() {
    let env = TestEnv::new();
    let out = env.reins(&["run", "mock", "--no-such-flag"]).code(2);
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    env.reins(&["stop"]).code(2);
    env.reins(&["bogus-command"]).code(2);
    env.reins(&["run", "mock", "--timeout", "soon"]).code(2);
    env.reins(&["run", "mock", "--size", "5x5"]).code(2);
    env.reins(&["--help"]).ok();
    env.reins(&["run", "--help"]).ok();
    nothing_left(&env);
}

#[test]
fn errors_of_a_json_command_are_json_on_stdout_too() {
    let env = TestEnv::new();
    // No such session: a failure, exit 1.
    let out = env.reins(&["status", "--id", "nobody", "--json"]).code(1);
    let err: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON on stdout");
    assert_eq!(err["ok"], false);
    assert_eq!(err["kind"], "failure");
    assert_eq!(err["exit_code"], 1);
    assert!(err["error"].as_str().unwrap().contains("no session named nobody"), "{err}");
    assert!(err["hint"].as_str().unwrap().contains("status --all"), "{err}");
    assert!(out.stderr.contains("no session named nobody"), "the words stay on stderr");
    // A bad flag: a usage error, exit 2, still JSON.
    let out = env.reins(&["events", "--id", "x", "--json", "--bogus"]).code(2);
    let err: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON on stdout");
    assert_eq!(err["kind"], "usage");
    assert!(err["error"].as_str().unwrap().contains("--bogus"), "{err}");
    // Without --json, stdout stays empty.
    let out = env.reins(&["status", "--id", "nobody"]).code(1);
    assert_eq!(out.stdout, "");
}

#[test]
fn foreground_run_without_a_terminal_says_what_to_do_instead() {
    let env = TestEnv::new();
    // Standard input is /dev/null here: no terminal to run the agent in.
    let out = env.reins(&["run", "mock"]).code(2);
    assert!(out.stderr.contains("standard input is not a terminal"), "{}", out.stderr);
    assert!(out.stderr.contains("reins run mock --detach"), "{}", out.stderr);
    assert!(!out.stdout.contains('\x1b'), "no raw escape sequences: {:?}", out.stdout);
    nothing_left(&env);
}
