//! `reins events`: the log, filtered and followed.

use std::time::Duration;

use crate::common::TestEnv;

#[test]
fn follow_streams_until_the_session_exits() {
    let env = TestEnv::new();
    env.start("f1", &[]);
    env.wait_state("f1", "ready");
    let follower = env.spawn(&["events", "--id", "f1", "--follow"]);
    env.reins(&["stop", "--id", "f1"]).ok();
    let out = follower.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["type"], "started");
    assert_eq!(lines.last().unwrap()["type"], "exited");
}

#[test]
fn snapshot_from_and_run_filters() {
    let env = TestEnv::new();
    let first = env.start("f2", &[]);
    env.wait_state("f2", "ready");
    env.reins(&["stop", "--id", "f2"]).ok();
    let second = env.start("f2", &[]);
    env.wait_state("f2", "ready");

    let all = env.reins(&["events", "--id", "f2", "--snapshot"]).ok().stdout;
    let runs: std::collections::BTreeSet<String> = all
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["run"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(runs.len(), 2, "the log keeps every run of the id");

    let last = env.reins(&["events", "--id", "f2", "--snapshot", "--run", "last"]).ok().stdout;
    assert!(last.lines().all(|l| l.contains(second["run"].as_str().unwrap())), "{last}");
    let one = env
        .reins(&["events", "--id", "f2", "--snapshot", "--run", first["run"].as_str().unwrap()])
        .ok()
        .stdout;
    assert!(one.lines().last().unwrap().contains("\"type\":\"exited\""));

    let future =
        env.reins(&["events", "--id", "f2", "--snapshot", "--from", "2999-01-01T00:00:00Z"]);
    assert_eq!(future.ok().stdout, "");
    let bad = env.reins(&["events", "--id", "f2", "--from", "yesterday"]).code(2);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
}

#[test]
fn a_live_session_is_followed_by_default_and_snapshot_returns() {
    let env = TestEnv::new();
    env.start("f3", &[]);
    let snap = env.reins(&["events", "--id", "f3", "--snapshot"]).ok();
    assert!(snap.stdout.starts_with("{\"schema_version\":1"));
    let mut follower = env.spawn(&["events", "--id", "f3"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(follower.try_wait().unwrap().is_none(), "following a live session by default");
    env.reins(&["stop", "--id", "f3"]).ok();
    assert!(follower.wait().unwrap().success());
}
