//! `reins pane`: the screen of any session, now or as it changes.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use crate::common::{TestEnv, have_tool};

#[test]
fn pane_shows_the_screen_of_a_headless_session() {
    let env = TestEnv::new();
    env.start("p", &[]);
    env.wait_state("p", "ready");
    let text = env.reins(&["pane", "--id", "p"]).ok().stdout;
    assert!(text.contains("│ > Type a task for mock"), "{text}");
    assert!(text.lines().last().unwrap().contains("? for shortcuts"), "no trailing blank lines");
    let last2 = env.reins(&["pane", "--id", "p", "--lines", "2", "--json"]).ok().json();
    assert_eq!(last2["lines"].as_array().unwrap().len(), 2);
    assert!(last2["lines"][1].as_str().unwrap().contains("? for shortcuts"));
    assert_eq!(last2["cols"], 120);
    env.reins(&["pane", "--id", "p", "--lines", "0"]).code(2);
}

#[test]
fn pane_follow_prints_each_change_and_ends_with_the_session() {
    let env = TestEnv::new();
    env.start("pf", &[]);
    env.wait_state("pf", "ready");
    let mut follower = env.spawn(&["pane", "--id", "pf", "--follow", "--json"]);
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(first.contains("Type a task for mock"));
    env.reins(&["send", "--id", "pf", "--wait-for-idle", "show me"]).ok();
    let mut saw_answer = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        if line.contains("MOCK_OK (you said: show me)") {
            saw_answer = true;
            break;
        }
    }
    assert!(saw_answer, "the follower saw the answer appear");
    env.reins(&["stop", "--id", "pf"]).ok();
    assert!(follower.wait().unwrap().success(), "follow ends with the session");
}

#[test]
fn pane_tmux_captures_the_tmux_pane() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.reins(&["run", "mock", "--id", "pt", "--tmux"]).ok();
    env.wait_state("pt", "ready");
    let out = env.reins(&["pane", "--id", "pt", "--tmux", "--json"]).ok().json();
    assert!(out["text"].as_str().unwrap().contains("Type a task for mock"), "{out}");
    let headless = env.start("ph", &[]);
    assert!(headless["ok"].as_bool().unwrap());
    let err = env.reins(&["pane", "--id", "ph", "--tmux"]).code(1);
    assert!(err.stderr.contains("is not in tmux"), "{}", err.stderr);
}
