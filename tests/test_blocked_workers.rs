//! Blocked workers fail fast: a dispatch attempt that sits blocked on an
//! approval nobody answers fails within `--blocked-grace` with that reason
//! and fails over, instead of waiting out its attempt timeout; with
//! `--approve auto` the same worker is answered and finishes. The same
//! watch ends a dispatch's verifier and a chain's step sessions (within
//! `reins chain run --blocked-grace`, or the step's own `blocked_grace`).

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

#[test]
fn a_verifier_blocked_on_an_approval_nobody_answers_gives_no_verdict_within_the_grace() {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    let started = Instant::now();
    let out = env.reins(&[
        "dispatch",
        "--agent",
        "plain",
        "--verifier",
        "asker",
        "--max-failures",
        "1",
        "--blocked-grace",
        "2s",
        "--verify-timeout",
        "5m",
        "--id",
        "vblk",
        "--message",
        "tidy up",
        "--json",
    ]);
    let elapsed = started.elapsed();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let summary = out.json();
    assert_eq!(summary["result"], "failed", "{summary}");
    let attempt = &summary["attempts"][0];
    assert_eq!(attempt["result"], "rejected", "{summary}");
    assert_eq!(attempt["verifier"], "vblk-verify", "{summary}");
    let feedback = attempt["feedback"].as_str().unwrap();
    assert!(
        feedback.contains("the verifier was blocked on approval for 2s, which nobody answered"),
        "{feedback}"
    );
    assert!(feedback.contains("--approve ask"), "{feedback}");
    assert!(elapsed < Duration::from_secs(30), "not the 5m verify timeout: {elapsed:?}");
    // It was blocked for real, and it was stopped.
    let events = env.events("vblk-verify");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "state" && e["to"] == "blocked" && e["kind"] == "approval"),
        "{events:#?}"
    );
    assert!(events.iter().any(|e| e["type"] == "exited"), "the verifier was stopped: {events:#?}");
    // The store has the same.
    let rows = env.dispatch_history("vblk");
    assert!(rows[0]["feedback"].as_str().unwrap().contains("blocked on approval"), "{rows:?}");
}

/// One step whose worker asks for approval on every turn.
const BLOCKED_CHAIN: &str = r#"
[chain]
name = "NAME"
max_tries = 1

[[step]]
name = "work"
agent = "asker"
brief = "tidy up"
GRACE
"#;

#[test]
fn a_chain_step_blocked_on_an_approval_nobody_answers_fails_within_its_grace() {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    let work = env.path().join("work");
    // The step's own grace, and the runner's for a step without one.
    for (name, grace, flag, shown) in
        [("own", "blocked_grace = \"2s\"", "30m", "2s"), ("flag", "", "1s", "1s")]
    {
        let file = format!("{name}.toml");
        std::fs::write(
            work.join(&file),
            BLOCKED_CHAIN.replace("NAME", name).replace("GRACE", grace),
        )
        .unwrap();
        let started = Instant::now();
        let out = env.reins(&["chain", "run", &file, "--blocked-grace", flag, "--json"]);
        let elapsed = started.elapsed();
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        let summary = out.json();
        assert_eq!(summary["result"], "failed", "{summary}");
        let task = &summary["steps"][0]["tasks"][0];
        assert_eq!(task["result"], "skipped", "{summary}");
        let reason = task["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("blocked on approval for {shown}, which nobody answered")),
            "{name}: {reason}"
        );
        assert!(elapsed < Duration::from_secs(30), "{name}: not the 30m step timeout: {elapsed:?}");
    }
}
