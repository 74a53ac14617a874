//! `reins logs`: the transcript, rendered or raw, live or after the end.

use std::time::Duration;

use crate::common::TestEnv;
use crate::support::agents::{Agent, AgentHome, agents_bin_dir, in_isolated_netns};

fn finished_flood(env: &TestEnv, id: &str) {
    env.start(id, &["--", "[[flood:4]] go"]);
    // busy while flooding, then ready again once the answer is printed
    env.wait_state(id, "busy");
    env.wait_event(id, Duration::from_secs(20), |e| {
        e["type"] == "state" && e["from"] == "busy" && e["to"] == "ready"
    });
}

#[test]
fn rendered_logs_read_like_the_screen_and_raw_logs_are_bytes() {
    let env = TestEnv::new();
    finished_flood(&env, "l1");
    let text = env.reins(&["logs", "--id", "l1"]).ok().stdout;
    assert!(!text.contains('\x1b'), "no escape sequences in rendered logs");
    assert!(text.contains("flood 000001"), "{text}");
    assert!(text.contains("flood 000064"));
    assert!(text.contains("● MOCK_OK (you said: go)"));
    assert_eq!(text.matches("flood 000064").count(), 1, "no line printed twice");
    assert!(!text.contains("Working…"), "spinner frames are not log lines:\n{text}");

    let raw = env.command(&["logs", "--id", "l1", "--raw"]).output().unwrap().stdout;
    assert!(raw.contains(&0x1b), "raw logs keep escape sequences");

    let tail = env.reins(&["logs", "--id", "l1", "--lines", "3"]).ok().stdout;
    assert_eq!(tail.lines().count(), 3, "{tail}");
    let json = env.reins(&["logs", "--id", "l1", "--lines", "2", "--json"]).ok().json();
    assert_eq!(json["id"], "l1");
    assert_eq!(json["lines"].as_array().unwrap().len(), 2);
}

#[test]
fn logs_work_after_the_session_exited() {
    let env = TestEnv::new();
    finished_flood(&env, "l2");
    env.reins(&["stop", "--id", "l2"]).ok();
    let text = env.reins(&["logs", "--id", "l2"]).ok().stdout;
    assert!(text.contains("● MOCK_OK (you said: go)"));
    assert!(text.trim_end().ends_with("bye"), "the final screen is included:\n{text}");
}

#[test]
fn a_reused_id_marks_where_each_run_starts() {
    let env = TestEnv::new();
    finished_flood(&env, "again");
    env.reins(&["stop", "--id", "again"]).ok();
    let first = env.reins(&["logs", "--id", "again"]).ok().stdout;
    assert!(!first.contains("────"), "one run, no separator:\n{first}");
    env.start("again", &["--", "second run"]);
    env.wait_event("again", Duration::from_secs(20), |e| e["type"] == "task_complete");
    env.reins(&["stop", "--id", "again"]).ok();
    let runs: Vec<String> = env
        .events("again")
        .into_iter()
        .filter(|e| e["type"] == "started")
        .map(|e| e["run"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(runs.len(), 2);
    let text = env.reins(&["logs", "--id", "again"]).ok().stdout;
    let mark = format!("──── run {} started ", runs[1]);
    let at = text.find(&mark).unwrap_or_else(|| panic!("no mark of run {}:\n{text}", runs[1]));
    assert_eq!(text.matches("────").count(), 2, "one separator:\n{text}");
    assert!(text[..at].contains("MOCK_OK (you said: go)"), "the first run above it:\n{text}");
    assert!(text[at..].contains("MOCK_OK (you said: second run)"), "the second below:\n{text}");
}

#[test]
fn follow_prints_lines_as_they_finish_and_ends_with_the_session() {
    let env = TestEnv::new();
    env.start("l3", &["--", "--work", "1", "[[flood:8]] go"]);
    env.wait_state("l3", "ready");
    let follower = env.spawn(&["logs", "--id", "l3", "--follow"]);
    env.wait_event("l3", Duration::from_secs(20), |e| e["type"] == "state" && e["from"] == "busy");
    env.reins(&["stop", "--id", "l3"]).ok();
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("flood 000128"), "{text}");
    assert_eq!(text.matches("flood 000100 ").count(), 1);
    assert!(text.trim_end().ends_with("bye"), "{text}");
}

/// Sends `answer 01` … `answer 10` to session `id`, each after the last
/// one's turn is complete.
fn ten_turns(env: &TestEnv, id: &str) {
    for i in 1..=10 {
        let sent = env.reins(&["send", "--id", id, "--timeout", "60s", &format!("answer {i:02}")]);
        let screen = || env.reins(&["pane", "--id", id]).stdout;
        assert_eq!(sent.code, 0, "turn {i}: {}\n{}", sent.stdout, screen());
        let done = env.reins(&["wait", "--id", id, "--until", "task_complete", "--timeout", "60s"]);
        assert_eq!(done.code, 0, "turn {i}: {}\n{}", done.stdout, screen());
    }
}

/// Each of the ten answers is in `logs` of `id` exactly once, in order.
fn every_answer_once(env: &TestEnv, id: &str, answer: impl Fn(usize) -> String) -> String {
    let logs = env.reins(&["logs", "--id", id]).ok().stdout;
    let mut last = 0;
    for i in 1..=10 {
        let text = answer(i);
        assert_eq!(logs.matches(&text).count(), 1, "{text:?} once in the logs:\n{logs}");
        let at = logs.find(&text).unwrap();
        assert!(at > last, "{text:?} after the answer before it:\n{logs}");
        last = at;
    }
    logs
}

/// An agent that keeps its composer at the bottom and pushes its transcript
/// up through a scroll region starting at the top row (as Codex does with
/// --no-alt-screen; the mock also uses IND there, which vt100 alone
/// ignores): what leaves that region is history, so after ten turns `logs`
/// has every answer, not only the last screen's, and reads exactly like
/// the history and screen tmux keeps of the same pane.
#[test]
fn logs_keep_lines_pushed_off_a_scroll_region_at_the_top() {
    let env = TestEnv::new();
    let extra = ["--tmux", "--", "--work", "0.1", "--draw", "scroll-region"];
    let started = env.reins(&[&["run", "mock", "--id", "sr"][..], &extra].concat()).ok().json();
    let pane = started["tmux"]["pane"].as_str().unwrap().to_string();
    env.wait_state("sr", "ready");
    ten_turns(&env, "sr");
    // Many lines in one frame, all through the region.
    env.reins(&["send", "--id", "sr", "--wait-for-idle", "[[flood:1]] many"]).ok();
    let raw = env.command(&["logs", "--id", "sr", "--raw"]).output().unwrap().stdout;
    let raw = String::from_utf8_lossy(&raw);
    let region_from_the_top = raw.match_indices("\x1b[1;").any(|(at, _)| {
        let rest = &raw[at + 4..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with('r')
    });
    assert!(region_from_the_top, "the transcript went through a scroll region (CSI 1;N r)");
    assert!(raw.contains("\x1bD"), "IND pushed rows up");
    let screen = env.reins(&["pane", "--id", "sr"]).ok().stdout;
    assert!(!screen.contains("answer 01"), "the first answer has left the screen:\n{screen}");
    let logs = every_answer_once(&env, "sr", |i| format!("● MOCK_OK (you said: answer {i:02})"));
    assert_eq!(logs.matches("reins mock-agent").count(), 1, "the banner once:\n{logs}");
    for i in 1..=16 {
        assert_eq!(logs.matches(&format!("flood {i:06} ")).count(), 1, "flood line {i}:\n{logs}");
    }
    let out = env.tmux(&["capture-pane", "-p", "-S", "-", "-t", &pane]);
    let tmux = String::from_utf8_lossy(&out.stdout);
    let trimmed = |text: &str| text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    assert_eq!(
        trimmed(&logs).trim_end(),
        trimmed(&tmux).trim_end(),
        "logs (left) and tmux (right)"
    );
}

/// The real Codex TUI (`run codex --pty`) after ten turns: every answer is
/// in `logs`, not only the four on its last screen (Codex now runs inline,
/// `--no-alt-screen`, so its transcript scrolls into history).
#[test]
fn real_codex_pty_logs_keep_every_answer_after_ten_turns() {
    let missing = if agents_bin_dir().is_none() {
        Some("the agent CLIs are not installed (scripts/install-agents)")
    } else if !in_isolated_netns() {
        Some("not inside a loopback-only network namespace (scripts/netns-run)")
    } else {
        None
    };
    let Some((env, _model, home)) = crate::support::live::world(missing, |dir, url| {
        AgentHome::seed(Agent::Codex, &dir.join("codex"), url)
    }) else {
        return;
    };
    let work = home.work.to_str().unwrap();
    env.reins(&["run", "codex", "--pty", "--id", "cx", "--tmux", "--cwd", work]).ok();
    let ready = env.reins(&["wait", "--id", "cx", "--until", "ready", "--timeout", "60s"]);
    assert_eq!(ready.code, 0, "{}", env.reins(&["pane", "--id", "cx"]).stdout);
    ten_turns(&env, "cx");
    let screen = env.reins(&["pane", "--id", "cx"]).ok().stdout;
    assert!(!screen.contains("answer 01)"), "the first answer has left the screen:\n{screen}");
    every_answer_once(&env, "cx", |i| format!("• MOCK_OK (you said: answer {i:02})"));
}
