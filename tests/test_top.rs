//! `reins top` in a real tmux pane against live mock sessions: what is on
//! the dashboard follows the sessions (a turn starts, one blocks on an
//! approval, one dies), its keys act (approve unblocks, stop stops, a
//! message is sent), the filter filters, a resize redraws, a terminal too
//! small says so, and NO_COLOR means no colour.

use std::time::Duration;

use crate::common::{TestEnv, eventually, have_tool, signal};
use crate::support::dashboard::{self, keys, screen};

/// Runs `reins top` in a new tmux session `top` of `cols`x`rows`.
fn dashboard(env: &TestEnv, cols: u16, rows: u16, extra_env: &str) {
    dashboard::start(env, cols, rows, extra_env, "top");
}

#[track_caller]
fn shows(env: &TestEnv, what: &str, pred: impl Fn(&str) -> bool) {
    dashboard::shows(env, what, Duration::from_secs(10), pred);
}

/// The table row of session `id`.
fn row<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.trim_start_matches('│').starts_with(&format!("{id} ")))
}

#[test]
fn the_dashboard_follows_sessions_and_its_keys_act() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.start("alpha", &["--description", "the first"]);
    let beta = env.start("beta", &[]);
    env.wait_state("alpha", "ready");
    env.wait_state("beta", "ready");
    dashboard(&env, 130, 40, "");
    shows(&env, "both sessions ready", |s| {
        row(s, "alpha").is_some_and(|r| r.contains("ready") && r.contains("the first"))
            && row(s, "beta").is_some_and(|r| r.contains("ready"))
    });
    assert!(screen(&env).contains("2 sessions"), "{}", screen(&env));
    assert!(screen(&env).contains("alpha: screen"), "the first session is selected");

    // A turn starts: the dashboard says busy, with its turn.
    env.reins(&["send", "--id", "alpha", "--no-wait", "[[wait:30]] a long task"]).ok();
    shows(&env, "alpha busy in turn 1", |s| {
        row(s, "alpha").is_some_and(|r| r.contains("busy") && r.contains(" 1 "))
    });

    // A message from the dashboard's composer; it blocks on an approval,
    // and `a` approves it from the dashboard.
    keys(&env, &["j", "s"]);
    env.tmux(&["send-keys", "-t", "top", "-l", "[[approve]] from top"]);
    keys(&env, &["Enter"]);
    shows(&env, "beta blocked on approval", |s| {
        row(s, "beta").is_some_and(|r| r.contains("blocked{approval}"))
    });
    assert!(screen(&env).contains("beta: screen"), "{}", screen(&env));
    keys(&env, &["a"]);
    shows(&env, "beta unblocked", |s| row(s, "beta").is_some_and(|r| !r.contains("blocked")));
    let approval = env.events("beta").into_iter().find(|e| e["type"] == "approval").unwrap();
    assert_eq!(approval["request"], "a1");
    let queued = env.events("beta").into_iter().find(|e| e["type"] == "queued").unwrap();
    assert!(queued["preview"].as_str().unwrap().contains("from top"), "{queued}");

    // The filter keeps only what matches.
    keys(&env, &["/"]);
    env.tmux(&["send-keys", "-t", "top", "-l", "alp"]);
    keys(&env, &["Enter"]);
    shows(&env, "only alpha", |s| row(s, "alpha").is_some() && row(s, "beta").is_none());
    keys(&env, &["/", "Escape"]);
    shows(&env, "both again", |s| row(s, "alpha").is_some() && row(s, "beta").is_some());

    // Stop from the dashboard asks first, then stops it.
    keys(&env, &["k", "x"]);
    shows(&env, "the question", |s| s.contains("stop session alpha and everything it started?"));
    keys(&env, &["y"]);
    shows(&env, "alpha gone", |s| row(s, "alpha").is_none() && s.contains("alpha: stopped"));
    let exited = env.events("alpha").into_iter().rev().find(|e| e["type"] == "exited").unwrap();
    assert_eq!(exited["reason"], "stopped");

    // A session that dies shows as dead, without a key pressed.
    signal(beta["host_pid"].as_i64().unwrap() as i32, 9);
    shows(&env, "beta dead", |s| row(s, "beta").is_some_and(|r| r.contains("dead")));

    // Resizing redraws; too small a terminal says so.
    env.tmux(&["resize-window", "-t", "top", "-x", "50", "-y", "10"]);
    shows(&env, "the too-small note", |s| s.contains("needs a terminal of at least 60x12"));
    env.tmux(&["resize-window", "-t", "top", "-x", "100", "-y", "30"]);
    shows(&env, "the table again", |s| row(s, "beta").is_some());

    keys(&env, &["q"]);
    shows(&env, "top to exit", |s| s.contains("top exited 0"));
}

#[test]
fn no_color_means_no_colour_and_a_tab_shows_dispatches_and_chains() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.start("plain", &[]);
    env.wait_state("plain", "ready");
    dashboard(&env, 120, 30, "NO_COLOR=1");
    shows(&env, "the session", |s| row(s, "plain").is_some_and(|r| r.contains("ready")));
    let coloured = env.tmux(&["capture-pane", "-p", "-e", "-t", "top"]);
    let text = String::from_utf8_lossy(&coloured.stdout);
    for sgr in ["\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[34m", "\x1b[36m", "\x1b[38;"] {
        assert!(!text.contains(sgr), "a colour ({sgr:?}) under NO_COLOR:\n{text:?}");
    }
    keys(&env, &["Tab"]);
    shows(&env, "the dispatches view", |s| s.contains("dispatches (none yet)"));
    keys(&env, &["Tab"]);
    shows(&env, "the chains view", |s| s.contains("chains (none yet)"));
    keys(&env, &["?"]);
    shows(&env, "the help", |s| s.contains("approve / deny the approval request"));
    keys(&env, &["Escape", "q"]);
    shows(&env, "top to exit", |s| s.contains("top exited 0"));
    eventually(Duration::from_secs(5), "plain still runs", || env.listed("plain"));
}

#[test]
fn top_without_a_terminal_says_so() {
    let env = TestEnv::new();
    let out = env.reins(&["top"]).code(2);
    assert!(out.stderr.contains("needs a terminal"), "{}", out.stderr);
}

/// Its own reads of the sessions' files must not wake it: an idle
/// dashboard draws once a second for its clock, and nothing else.
#[test]
fn an_idle_dashboard_draws_only_its_clock() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.start("idle-1", &[]);
    env.start("idle-2", &[]);
    env.wait_state("idle-1", "ready");
    env.wait_state("idle-2", "ready");
    let stats = env.path().join("stats.jsonl");
    dashboard(&env, 120, 30, &format!("REINS_TOP_STATS={}", stats.display()));
    shows(&env, "both sessions", |s| row(s, "idle-1").is_some() && row(s, "idle-2").is_some());
    let frames = || std::fs::read_to_string(&stats).unwrap_or_default().lines().count();
    // Let the start settle (the selected screen's first answer), then count.
    eventually(Duration::from_secs(5), "the first frames", || frames() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let before = frames();
    std::thread::sleep(Duration::from_secs(3));
    let drawn = frames() - before;
    assert!(drawn <= 4, "{drawn} frames in 3 s of nothing happening (a loop?)");
    keys(&env, &["q"]);
}
