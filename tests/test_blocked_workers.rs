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

/// An agent that asks whether to trust the folder and waits for ever (a
/// profile of the user's: the gate's own approvals are refused, so only
/// such a screen can hold a gate).
const STUCK_PROFILE: &str = r#"
name = "stuck"
summary = "asks about trust and waits"
tested_versions = ["sh"]

[launch]
command = ["sh", "-c", "echo 'Do you trust the files in this folder?'; exec sleep 600"]
context = "argv"

[[rule]]
name = "trust"
state = "blocked"
kind = "trust"
region = { last_lines = 5 }
all = [{ contains = "Do you trust the files" }]

[[rule.example]]
matches = true
screen = "Do you trust the files in this folder?"

[[rule.example]]
matches = false
screen = "$"
"#;

#[test]
fn a_gate_blocked_on_a_trust_screen_leaves_the_decision_to_the_rules_within_the_grace() {
    let env = TestEnv::new();
    env.write_config(&format!("{CONFIG}\n[agents.stuck]\nagent = \"stuck\"\n"));
    let adapters = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    std::fs::write(adapters.join("stuck.toml"), STUCK_PROFILE).unwrap();
    let work = env.path().join("work");
    std::fs::write(
        work.join("gated.toml"),
        "[chain]\nname = \"gated\"\nmax_tries = 1\n\n[[step]]\nname = \"work\"\n\
         agent = \"plain\"\nbrief = \"tidy up\"\ndone = [\"cmd:false\"]\nblocked_grace = \"2s\"\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = env.reins(&[
        "chain",
        "run",
        "gated.toml",
        "--gate-agent",
        "stuck",
        "--gate-timeout",
        "5m",
        "--json",
    ]);
    let elapsed = started.elapsed();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let log: Vec<serde_json::Value> =
        std::fs::read_to_string(env.state_dir().join("chains/gated/events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let gate = log.iter().find(|e| e["type"] == "gate").expect("a gate event");
    assert_eq!((&gate["by"], &gate["agent"]), (&"fallback".into(), &"stuck".into()), "{gate}");
    assert_eq!(gate["fallback"], "it was blocked on trust for 2s, which nobody answered", "{gate}");
    assert!(elapsed < Duration::from_secs(60), "not the 5m gate timeout: {elapsed:?}");
}
