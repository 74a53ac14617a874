//! `reins adapters`: profiles listed, shown, checked and explained.

use crate::common::TestEnv;

#[test]
fn list_show_and_check_the_builtin_profiles() {
    let env = TestEnv::new();
    let list = env.reins(&["adapters", "list", "--json"]).ok().json();
    let names: Vec<&str> =
        list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"mock") && names.contains(&"generic"), "{names:?}");
    let toml = env.reins(&["adapters", "show", "mock"]).ok().stdout;
    assert!(toml.contains("name = \"mock\""));
    let check = env.reins(&["adapters", "check"]).ok().stdout;
    assert!(check.lines().all(|l| l.starts_with("ok")), "{check}");
    env.reins(&["adapters", "show", "nope"]).code(1);
}

#[test]
fn a_user_profile_overrides_and_is_checked() {
    let env = TestEnv::new();
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("mine.toml"),
        r#"name = "mine"
summary = "a test profile"
[launch]
command = ["sh"]
[[rule]]
name = "prompt"
state = "ready"
region = "cursor_line"
all = [{ contains = "READY>" }]
[[rule.example]]
matches = true
screen = "READY>"
[[rule.example]]
matches = true
screen = "busy"
"#,
    )
    .unwrap();
    let list = env.reins(&["adapters", "list"]).ok().stdout;
    assert!(list.contains("mine") && list.contains("mine.toml"), "{list}");
    let bad = env.reins(&["adapters", "check", "mine"]).code(1);
    assert!(bad.stdout.contains("example 2 should match"), "{}", bad.stdout);
    std::fs::write(dir.join("broken.toml"), "name = 3").unwrap();
    let broken = env.reins(&["adapters", "show", "broken"]).code(1);
    assert!(broken.stderr.contains("is invalid"), "{}", broken.stderr);
}

#[test]
fn explain_a_screen_file_and_a_live_session() {
    let env = TestEnv::new();
    let screen = env.path().join("screen.txt");
    std::fs::write(&screen, "  output\n⠙ Working… (1s · esc to interrupt)\n").unwrap();
    let out = env
        .reins(&[
            "adapters",
            "explain",
            "--adapter",
            "mock",
            "--screen",
            screen.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["state"], "busy");
    assert_eq!(out["rule"], "working");

    env.start("ex", &[]);
    env.wait_state("ex", "ready");
    let live = env.reins(&["adapters", "explain", "--id", "ex"]).ok().stdout;
    assert!(live.starts_with("mock: ready (rule composer)"), "{live}");
    assert!(live.contains("✓ all: contains \"? for shortcuts\""), "{live}");
}
