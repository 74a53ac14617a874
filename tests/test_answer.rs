//! `reins answer` and the `answer` of `wait --until task_complete`: what
//! the agent answered in a turn, through the real binary on the mock agent
//! (the real agents: test_real_agents, test_acp_real).

use crate::common::TestEnv;

/// `line 1 of N` … `line N of N`, as `[[lines:N]]` answers.
pub(crate) fn lines(n: u32) -> String {
    (1..=n).map(|i| format!("line {i} of {n}")).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_answer_of_the_last_turn_is_printed_exactly() {
    let env = TestEnv::new();
    env.start("a", &["--", "--work", "0"]);
    env.wait_state("a", "ready");
    env.reins(&["send", "--id", "a", "--wait-for-idle", "hello there"]).ok();
    let out = env.reins(&["answer", "--id", "a"]).ok();
    assert_eq!(out.stdout, "MOCK_OK (you said: hello there)\n");
    let v = env.reins(&["answer", "--id", "a", "--json"]).ok().json();
    assert_eq!(v["id"], "a");
    assert_eq!(v["turn"], 1);
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["source"], "screen");
    assert_eq!(v["answer"], "MOCK_OK (you said: hello there)");
    assert!(v["message_id"].is_string() && v["run"].is_string(), "{v}");
}

#[test]
fn a_multi_line_answer_longer_than_the_screen_is_whole() {
    let env = TestEnv::new();
    // 40 rows: 120 lines scroll most of the answer off the screen.
    env.start("long", &["--size", "40x120", "--", "--work", "0"]);
    env.wait_state("long", "ready");
    let sent = env.reins(&["send", "--id", "long", "--no-wait", "[[lines:120]] count"]).ok().json();
    let waited = env
        .reins(&["wait", "--id", "long", "--until", "task_complete", "--timeout", "20s", "--json"])
        .ok()
        .json();
    assert_eq!(waited["answer"], lines(120), "{waited}");
    let out = env.reins(&["answer", "--id", "long"]).ok();
    assert_eq!(out.stdout, format!("{}\n", lines(120)));
    // By message, after a later turn.
    env.reins(&["send", "--id", "long", "--wait-for-idle", "[[reply:a\\n\\nb]] two"]).ok();
    assert_eq!(env.reins(&["answer", "--id", "long"]).ok().stdout, "a\n\nb\n");
    let by_message = env
        .reins(&["answer", "--id", "long", "--message", sent["message_id"].as_str().unwrap()])
        .ok();
    assert_eq!(by_message.stdout, format!("{}\n", lines(120)));
    let by_turn = env.reins(&["answer", "--id", "long", "--turn", "1", "--json"]).ok().json();
    assert_eq!(by_turn["answer"], lines(120));
    assert_eq!(by_turn["message_id"], sent["message_id"]);
}

#[test]
fn answer_errors_say_what_to_do() {
    let env = TestEnv::new();
    env.start("e", &["--", "--work", "0"]);
    env.wait_state("e", "ready");
    let none = env.reins(&["answer", "--id", "e"]).code(1);
    assert!(none.stderr.contains("has no turns yet"), "{}", none.stderr);
    assert!(none.stderr.contains("reins send --id e"), "{}", none.stderr);

    env.reins(&["send", "--id", "e", "--no-wait", "[[wait:30]] slow"]).ok();
    env.reins(&["wait", "--id", "e", "--until", "turn:1", "--timeout", "10s"]).ok();
    let running = env.reins(&["answer", "--id", "e"]).code(1);
    assert!(running.stderr.contains("turn 1 of e is not complete yet"), "{}", running.stderr);
    assert!(running.stderr.contains("reins wait --id e --turn 1"), "{}", running.stderr);
    let json = env.reins(&["answer", "--id", "e", "--turn", "1", "--json"]).code(1).json();
    assert_eq!(json["ok"], false);
    assert!(json["error"].as_str().unwrap().contains("not complete yet"), "{json}");

    let missing = env.reins(&["answer", "--id", "e", "--turn", "7", "--json"]).code(1).json();
    assert!(missing["error"].as_str().unwrap().contains("no turn 7"), "{missing}");
    assert!(missing["hint"].as_str().unwrap().contains("latest turn is 1"), "{missing}");
    let nobody = env.reins(&["answer", "--id", "nobody"]).code(1);
    assert!(!nobody.stderr.is_empty());
    env.reins(&["answer", "--id", "e", "--turn", "1", "--message", "x"]).code(2);
}

#[test]
fn an_interrupted_turn_has_no_answer() {
    let env = TestEnv::new();
    env.start("i", &["--", "--work", "0"]);
    env.wait_state("i", "ready");
    env.reins(&["send", "--id", "i", "--no-wait", "[[stall]] go"]).ok();
    env.reins(&["wait", "--id", "i", "--until", "busy", "--timeout", "10s"]).ok();
    env.reins(&["interrupt", "--id", "i"]).ok();
    let waited = env
        .reins(&["wait", "--id", "i", "--until", "task_complete", "--timeout", "10s"])
        .ok()
        .json();
    assert!(waited.get("answer").is_none(), "{waited}");
    let out = env.reins(&["answer", "--id", "i"]).code(1);
    assert!(out.stderr.contains("(interrupted) has no answer"), "{}", out.stderr);
}

#[test]
fn the_answer_outlives_the_session() {
    let env = TestEnv::new();
    env.start("gone", &["--", "--work", "0"]);
    env.wait_state("gone", "ready");
    env.reins(&["send", "--id", "gone", "--wait-for-idle", "[[lines:3]] bye"]).ok();
    env.reins(&["stop", "--id", "gone"]).ok();
    assert_eq!(env.reins(&["answer", "--id", "gone"]).ok().stdout, format!("{}\n", lines(3)));
}

#[test]
fn adapters_explain_shows_how_the_answer_is_found() {
    let env = TestEnv::new();
    let screen = env.path().join("screen.txt");
    std::fs::write(
        &screen,
        "> hello\n● MOCK_OK (you said: hello)\n  second row\n✻ Worked for 0s\n\n╭────╮\n│ > Type a task for mock │\n╰────╯\n",
    )
    .unwrap();
    let path = screen.to_str().unwrap();
    let text = env.reins(&["adapters", "explain", "--screen", path, "--adapter", "mock"]).ok();
    assert!(text.stdout.contains("echo:   '^> '"), "{}", text.stdout);
    assert!(text.stdout.contains("on this screen, rows 2-3:"), "{}", text.stdout);
    let json = env
        .reins(&["adapters", "explain", "--screen", path, "--adapter", "mock", "--json"])
        .ok()
        .json();
    assert_eq!(json["answer"]["answer"], "MOCK_OK (you said: hello)\nsecond row");
    assert_eq!(json["answer"]["echo_row"], 0);
    // Every built-in profile's answer examples hold.
    env.reins(&["adapters", "check"]).ok();
}

#[test]
fn a_profile_whose_answer_example_disagrees_fails_the_check() {
    let env = TestEnv::new();
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let mock = env.reins(&["adapters", "show", "mock"]).ok().stdout;
    let broken =
        mock.replace("answer = \"MOCK_OK (you said: hello)\"", "answer = \"something else\"");
    assert_ne!(broken, mock);
    std::fs::write(dir.join("mock.toml"), broken).unwrap();
    let out = env.reins(&["adapters", "check", "mock"]).code(1);
    assert!(out.stdout.contains("mock (answer): example 1 finds"), "{}", out.stdout);
}
