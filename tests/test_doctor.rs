//! `reins doctor`: what it finds, what it says about what is missing or
//! broken, and its exit code. Agents here are stand-in scripts on a private
//! PATH; test_real_agents runs doctor against the installed CLIs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::common::{TestEnv, have_tool};

/// A TestEnv whose PATH holds only a `bin` directory of stand-ins (plus
/// python3 and tmux when the machine has them).
fn private_path() -> (TestEnv, std::path::PathBuf) {
    let mut env = TestEnv::new();
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["python3", "tmux"] {
        if let Some(found) = which(tool) {
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
    }
    env.set_env("PATH", Some(bin.to_str().unwrap()));
    (env, bin)
}

/// The real program behind `tool` (python3 may be a shim that needs more
/// of PATH than the private one has).
fn which(tool: &str) -> Option<std::path::PathBuf> {
    if tool == "python3" {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()?;
        let exe = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return (!exe.is_empty()).then(|| exe.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A stand-in `codex`: `--version` answers; `app-server` runs the fake
/// server in `mode` (with `bin` as an extra argument that marks it as this
/// test's).
fn fake_codex(bin: &Path, version: &str, mode: &str) {
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-app-server.py");
    script(
        bin,
        "codex",
        &format!(
            "case \"$1\" in\n  --version) echo 'codex-cli {version}' ;;\n  app-server) exec python3 {} {mode} {} ;;\n  *) exit 3 ;;\nesac",
            server.display(),
            bin.display()
        ),
    );
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check named {name}: {report}"))
}

#[test]
fn missing_agents_are_reported_with_how_to_install_them() {
    let (env, _bin) = private_path();
    let report = env.reins(&["doctor", "--json", "--timeout", "5"]).ok().json();
    assert_eq!(report["ok"], true, "nothing was required: {report}");
    assert_eq!(check(&report, "state-dir")["status"], "ok");
    assert_eq!(check(&report, "pty")["status"], "ok");
    assert_eq!(check(&report, "mock")["status"], "ok", "the mock agent is built in");
    let claude = check(&report, "claude");
    assert_eq!(claude["status"], "missing");
    assert_eq!(claude["required"], false);
    assert!(claude["hint"].as_str().unwrap().contains("npm install -g @anthropic-ai/claude-code"));
    assert!(report["checks"].as_array().unwrap().iter().all(|c| c["name"] != "generic"));

    // Named, a missing agent fails the run, and the table says why.
    let out = env.reins(&["doctor", "claude", "--timeout", "5"]).code(1);
    assert!(out.stdout.contains("claude"), "{}", out.stdout);
    assert!(out.stdout.contains("missing"), "{}", out.stdout);
    assert!(out.stdout.contains("(required)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("hint: npm install -g @anthropic-ai/claude-code"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_working_app_server_passes_the_handshake() {
    if !have_tool("python3") {
        return;
    }
    let (env, bin) = private_path();
    fake_codex(&bin, "0.169.0", "garbled");
    let report = env.reins(&["doctor", "codex", "--json", "--timeout", "5"]).ok().json();
    let codex = check(&report, "codex");
    assert_eq!(codex["status"], "ok", "{report}");
    assert_eq!(codex["version"], "0.169.0");
    assert_eq!(codex["tested"], true);
    assert_eq!(codex["transport"], "codex-app-server");
    assert!(codex["detail"].as_str().unwrap().contains("handshake ok (fake)"), "{codex}");

    // Another version works but is flagged as untested.
    fake_codex(&bin, "9.9.9", "garbled");
    let report = env.reins(&["doctor", "codex", "--json", "--timeout", "5"]).ok().json();
    let codex = check(&report, "codex");
    assert_eq!(codex["tested"], false);
    assert!(codex["detail"].as_str().unwrap().contains("untested"), "{codex}");
}

#[test]
fn an_app_server_that_never_answers_is_broken_not_a_hang() {
    if !have_tool("python3") {
        return;
    }
    let (env, bin) = private_path();
    fake_codex(&bin, "0.169.0", "silent");
    let started = std::time::Instant::now();
    let report = env.reins(&["doctor", "codex", "--json", "--timeout", "1"]).code(1).json();
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "bounded by --timeout");
    assert_eq!(report["ok"], false);
    let codex = check(&report, "codex");
    assert_eq!(codex["status"], "broken");
    assert!(
        codex["detail"].as_str().unwrap().contains("no answer to initialize within 1s"),
        "{codex}"
    );
    assert!(codex["hint"].as_str().unwrap().contains("--pty"), "{codex}");
    // The stand-in server was killed, not left behind.
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("fake-app-server.py silent {}", bin.display())])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left}");
}

#[test]
fn a_program_whose_version_fails_is_broken() {
    let (env, bin) = private_path();
    script(&bin, "gemini", "echo 'segfault in node' >&2; exit 9");
    let report = env.reins(&["doctor", "gemini", "--json", "--timeout", "5"]).code(1).json();
    let gemini = check(&report, "gemini");
    assert_eq!(gemini["status"], "broken");
    assert!(gemini["detail"].as_str().unwrap().contains("segfault in node"), "{gemini}");
    assert!(gemini["path"].as_str().unwrap().ends_with("/bin/gemini"));
}

#[test]
fn unknown_names_and_bad_timeouts_are_usage_errors() {
    let (env, _bin) = private_path();
    let out = env.reins(&["doctor", "codx"]).code(2);
    assert!(out.stderr.contains("nothing called \"codx\""), "{}", out.stderr);
    assert!(out.stderr.contains("tmux, "), "lists what can be named: {}", out.stderr);
    let out = env.reins(&["doctor", "--timeout", "0"]).code(2);
    assert!(out.stderr.contains("--timeout"), "{}", out.stderr);
}

#[test]
fn tmux_is_checked_when_named() {
    if !have_tool("tmux") {
        return;
    }
    let (env, _bin) = private_path();
    let report = env.reins(&["doctor", "tmux", "--json"]).ok().json();
    let tmux = check(&report, "tmux");
    assert_eq!(tmux["status"], "ok");
    assert!(tmux["version"].as_str().unwrap().contains('.'), "{tmux}");
}

/// A shell loop (builtins only: the private PATH has no `yes` or `head`)
/// that prints 1 MiB to stdout and to stderr.
const MEBIBYTE: &str = "line=0123456789012345678901234567890123456789012345678901234567890\n\
     i=0; while [ $i -lt 16384 ]; do echo \"$line\"; echo \"$line\" >&2; i=$((i+1)); done";

/// doctor waited for `--version` to exit before reading its output: one
/// that printed more than a pipe holds (64 KiB) waited for doctor to read,
/// and doctor reported it hung.
#[test]
fn a_chatty_version_is_read_while_it_runs() {
    let (env, bin) = private_path();
    script(&bin, "claude", &format!("echo '2.1.197 (Claude Code)'\n{MEBIBYTE}"));
    let started = std::time::Instant::now();
    let report = env.reins(&["doctor", "claude", "--json", "--timeout", "20"]).ok().json();
    let claude = check(&report, "claude");
    assert_eq!(claude["status"], "ok", "{claude}");
    assert_eq!(claude["version"], "2.1.197");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}", started.elapsed());

    // One that keeps talking and never exits still meets the timeout.
    script(&bin, "gemini", &format!("{MEBIBYTE}\nwhile :; do echo more; done"));
    let started = std::time::Instant::now();
    let report = env.reins(&["doctor", "gemini", "--json", "--timeout", "1"]).code(1).json();
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "bounded by --timeout");
    let gemini = check(&report, "gemini");
    assert_eq!(gemini["status"], "broken");
    assert!(gemini["detail"].as_str().unwrap().contains("did not answer within 1s"), "{gemini}");
}
