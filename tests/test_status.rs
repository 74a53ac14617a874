//! `reins status`: scope, hidden sessions, corrupt registries.

use crate::common::TestEnv;

#[test]
fn sessions_of_other_repositories_are_counted_not_hidden_silently() {
    let env = TestEnv::new();
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    env.start("here", &[]);
    env.start("there", &["--cwd", elsewhere.to_str().unwrap()]);
    let out = env.reins(&["status", "--json"]).ok();
    let rows = out.json();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["id"], "here");
    assert!(out.stderr.contains("1 more session in other repositories"), "{}", out.stderr);
    let all = env.reins(&["ls", "--all", "--json"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    // Commands find a session by id from anywhere when the id is unique.
    env.reins(&["status", "--id", "there", "--json"]).ok();
}

#[test]
fn a_corrupt_registry_is_reported_and_cleaned() {
    let env = TestEnv::new();
    env.start("broken", &[]);
    env.reins(&["stop", "--id", "broken"]).ok();
    let dir = env.session_dir("broken");
    std::fs::write(dir.join("session.json"), "{ not json").unwrap();
    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(rows[0]["host"], "dead");
    assert!(rows[0]["error"].as_str().unwrap().contains("corrupt session.json"), "{rows}");
    env.reins(&["gc"]).ok();
    assert!(!dir.join("session.json").exists());
    assert_eq!(env.reins(&["status", "--json"]).ok().json(), serde_json::json!([]));
}

#[test]
fn a_registry_left_by_a_dead_host_is_shown_dead() {
    let env = TestEnv::new();
    env.start("stale", &[]);
    let dir = env.session_dir("stale");
    let registry = std::fs::read_to_string(dir.join("session.json")).unwrap();
    env.reins(&["stop", "--id", "stale"]).ok();
    // Put the old registry back, as a host killed mid-write would leave it.
    std::fs::write(dir.join("session.json"), registry).unwrap();
    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(rows[0]["state"], "dead");
    // A new run of the id is not blocked by the leftovers.
    env.start("stale", &[]);
    assert_eq!(env.reins(&["status", "--json"]).ok().json()[0]["host"], "live");
}

#[test]
fn empty_status_says_how_to_start() {
    let env = TestEnv::new();
    let out = env.reins(&["status"]).ok();
    assert!(out.stdout.contains("reins run mock"), "{}", out.stdout);
    assert_eq!(env.reins(&["status", "--json"]).ok().stdout.trim(), "[]");
}

#[test]
fn an_ended_session_shows_the_turns_and_run_it_had() {
    let env = TestEnv::new();
    let started = env.start("done", &[]);
    env.wait_state("done", "ready");
    env.reins(&["send", "--id", "done", "--wait-for-idle", "one"]).ok();
    env.reins(&["send", "--id", "done", "--wait-for-idle", "two"]).ok();
    env.reins(&["stop", "--id", "done"]).ok();
    let rows = env.reins(&["status", "--id", "done", "--json"]).ok().json();
    let row = &rows[0];
    assert_eq!(row["host"], "exited", "{row}");
    assert_eq!(row["state"], "exited");
    assert_eq!(row["turn"], 2, "not 0: {row}");
    assert_eq!(row["run"], started["run"], "{row}");
    assert_eq!(row["exit"]["turns"], 2);
    assert_eq!(row["state_since"], row["exit"]["exited_at"]);
    assert_eq!(row["started_at"], row["exit"]["started_at"]);
}
