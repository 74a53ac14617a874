//! Blocked workers fail fast: a dispatch attempt that sits blocked on an
//! approval nobody answers fails within `--blocked-grace` with that reason
//! and fails over, instead of waiting out its attempt timeout; with
//! `--approve auto` the same worker is answered and finishes.

use std::time::{Duration, Instant};

use crate::common::{TestEnv, field};

const CONFIG: &str = r#"
[agents.asker]
agent = "mock"
args = ["--work", "0.2", "--ask-approval"]

[agents.plain]
agent = "mock"
args = ["--work", "0.2"]
"#;

#[test]
fn a_worker_blocked_on_an_approval_nobody_answers_fails_over_within_the_grace() {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    let started = Instant::now();
    let out = env
        .reins(&[
            "dispatch",
            "--prefer",
            "asker,plain",
            "--max-failures",
            "1",
            "--blocked-grace",
            "2s",
            "--attempt-timeout",
            "5m",
            "--id",
            "blk",
            "--message",
            "tidy up",
            "--json",
        ])
        .ok();
    let elapsed = started.elapsed();
    let summary = out.json();
    assert_eq!(summary["result"], "accepted", "{summary}");
    let attempts = summary["attempts"].as_array().unwrap();
    assert_eq!(field(attempts, "agent"), ["asker", "plain"], "{summary}");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(reason.contains("blocked on approval for 2s"), "{reason}");
    assert!(reason.contains("--approve ask"), "{reason}");
    assert!(elapsed < Duration::from_secs(30), "not the 5m attempt timeout: {elapsed:?}");

    // --approve auto answers it: the same worker finishes.
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "asker",
            "--approve",
            "auto",
            "--blocked-grace",
            "2s",
            "--id",
            "auto",
            "--message",
            "tidy up",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["result"], "accepted", "{out}");
    let approvals: Vec<_> =
        env.events("auto").into_iter().filter(|e| e["type"] == "approval").collect();
    assert!(!approvals.is_empty(), "the policy answered: {:?}", env.events("auto"));
}
