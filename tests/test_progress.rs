//! What waiting commands show on a terminal, and that scripts never see
//! it: a spinner with the elapsed time on standard error when that is a
//! terminal, nothing otherwise; colour only on a terminal and never with
//! NO_COLOR; standard output stays plain JSON either way.

use std::time::Duration;

use crate::common::{TestEnv, eventually, have_tool, reins_bin, written};

fn capture(env: &TestEnv, pane: &str) -> String {
    String::from_utf8_lossy(&env.tmux(&["capture-pane", "-p", "-t", pane]).stdout).into_owned()
}

/// Runs `args` in a tmux pane (standard error on the pane's terminal,
/// standard output into a file) and returns the pane and that file.
fn in_pane(env: &TestEnv, name: &str, args: &str) -> (String, std::path::PathBuf) {
    let out = env.path().join(format!("{name}.out"));
    let command = format!("{} {args} > {}; sleep 60", reins_bin().display(), out.display());
    (env.tmux_session(name, &command), out)
}

#[test]
fn wait_shows_a_spinner_on_a_terminal_and_erases_it_before_the_json() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.start("sp", &[]);
    env.reins(&["send", "--id", "sp", "--no-wait", "[[wait:3]] take a while"]).ok();
    let (pane, out) = in_pane(&env, "spin", "wait --id sp --until task_complete");
    let mut seen = String::new();
    eventually(Duration::from_secs(10), "the spinner with a clock", || {
        seen = capture(&env, &pane);
        seen.contains("waiting for sp: task_complete") && seen.contains("· 1s")
    });
    assert!(seen.contains("busy"), "the session's state is shown: {seen}");
    let json = written(&out, Duration::from_secs(15));
    assert!(!json.contains('\x1b'), "no escape sequence on stdout: {json:?}");
    let outcome: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(outcome["status"], "reached");
    eventually(Duration::from_secs(5), "the spinner to be erased", || {
        !capture(&env, &pane).contains("waiting for sp")
    });
}

#[test]
fn send_wait_for_idle_shows_its_turn_running() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.start("si", &[]);
    let (pane, out) = in_pane(&env, "spin", "send --id si --wait-for-idle '[[wait:3]] slow'");
    eventually(Duration::from_secs(10), "the spinner of send", || {
        let screen = capture(&env, &pane);
        screen.contains("sending to si") && screen.contains("turn 1 is running")
    });
    let json = written(&out, Duration::from_secs(15));
    assert!(!json.contains('\x1b'), "{json:?}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(json.trim()).unwrap()["status"],
        "delivered"
    );
}

#[test]
fn without_a_terminal_a_long_wait_prints_only_its_json() {
    let env = TestEnv::new();
    env.start("pl", &[]);
    env.reins(&["send", "--id", "pl", "--no-wait", "[[wait:1]] a second"]).ok();
    let run = env.reins(&["wait", "--id", "pl", "--until", "task_complete"]).ok();
    assert_eq!(run.stderr, "", "nothing on a non-terminal stderr");
    assert!(!run.stdout.contains('\x1b'));
    assert!(run.json()["waited_s"].as_f64().unwrap() > 0.5, "the wait was long enough to spin");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal_and_never_with_no_color() {
    let mut env = TestEnv::new();
    env.start("co", &[]);
    env.wait_state("co", "ready");
    let plain = env.reins(&["status"]).ok();
    assert!(!plain.stdout.contains('\x1b'), "piped output is plain: {:?}", plain.stdout);
    let missing = env.reins(&["stop", "--id", "nope"]).code(1);
    assert!(missing.stderr.starts_with("reins: no session named nope"), "{:?}", missing.stderr);

    env.set_env("CLICOLOR_FORCE", Some("1"));
    let forced = env.reins(&["status"]).ok();
    assert!(forced.stdout.contains("\x1b[32mready\x1b[0m"), "{:?}", forced.stdout);
    let header = forced.stdout.lines().next().unwrap();
    let row = forced.stdout.lines().nth(1).unwrap().replace("\x1b[32m", "").replace("\x1b[0m", "");
    assert_eq!(header.find("TURN"), row.find('0'), "colour does not shift the columns");
    let missing = env.reins(&["stop", "--id", "nope"]).code(1);
    assert!(
        missing.stderr.starts_with("\x1b[1;31mreins:\x1b[0m no session"),
        "{:?}",
        missing.stderr
    );

    env.set_env("NO_COLOR", Some("1"));
    let no_color = env.reins(&["status"]).ok();
    assert!(!no_color.stdout.contains('\x1b'), "NO_COLOR wins: {:?}", no_color.stdout);
    let help = env.reins(&["--help"]).ok();
    assert!(!help.stdout.contains('\x1b'), "clap's help follows NO_COLOR too");
}
