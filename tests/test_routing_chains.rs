//! Routing chains in config.toml: a `[[route]]` with a `ladder` and a
//! `verifier`, `[dispatch] default_ladder` and `verifier`, and a rung that
//! certifies itself (`self_certify = true`: no verifier call), with the
//! mock agent as every tier. `--agent` still pins one rung with no ladder.

use serde_json::Value;

use crate::common::{TestEnv, field};

/// `lo` is rejected by the verifier (`judge` repeats the verdict in the
/// task it is shown), `top` certifies itself.
const CONFIG: &str = r#"
[agents.lo]
agent = "mock"
args = ["--work", "0.2", "--reply", "done [[reply:{\"accept\": false, \"feedback\": \"handle the empty input\"}]]"]

[agents.top]
agent = "mock"
args = ["--work", "0.2"]
self_certify = true

[agents.judge]
agent = "mock"
args = ["--work", "0.1"]

[agents.other]
agent = "mock"
args = ["--work", "0.1"]

[[route]]
when = ["label:feature"]
ladder = ["lo", "top:huge"]
verifier = "judge"

[dispatch]
default_ladder = ["other"]
"#;

fn dispatch(env: &TestEnv, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["dispatch", "--message", "parse the config", "--json"];
    args.extend_from_slice(extra);
    let out = env.reins(&args).ok();
    (out.json(), out.stderr)
}

#[test]
fn a_route_with_a_ladder_climbs_it_with_its_verifier_and_the_last_rung_certifies_itself() {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    let (out, stderr) = dispatch(&env, &["--label", "feature", "--id", "feat"]);
    assert!(stderr.contains("routed by") && stderr.contains("ladder lo, top:huge"), "{stderr}");
    assert_eq!(out["result"], "accepted", "{out}");
    let attempts = out["attempts"].as_array().unwrap();
    assert_eq!(field(attempts, "agent"), ["lo", "top"]);
    assert_eq!(field(attempts, "model")[1], "huge");
    assert_eq!(field(attempts, "result"), ["rejected", "accepted"]);
    assert_eq!(attempts[0]["verifier"], "feat-verify", "the rule's verifier checked lo");
    assert_eq!(attempts[1]["verifier"], Value::Null, "top certified itself: {out}");
    assert!(attempts[1]["feedback"].as_str().unwrap().starts_with("self-certified by top"));
    assert_eq!(field(attempts, "tier"), ["cloud", "cloud"]);
    let rows = env.dispatch_history("feat");
    assert_eq!(field(&rows, "tier"), ["cloud", "cloud"]);
    assert!(!env.listed("feat-b-verify"), "no verifier session for the self-certifying rung");
}

#[test]
fn an_unrouted_task_takes_the_default_ladder_and_agent_still_pins_one_rung() {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    let (out, stderr) = dispatch(&env, &["--id", "plain"]);
    assert!(stderr.contains("the default ladder"), "{stderr}");
    assert_eq!(field(out["attempts"].as_array().unwrap(), "agent"), ["other"]);
    assert_eq!(out["attempts"][0]["rung"], 1, "{out}");
    // --agent: only that agent, no ladder, no rule.
    let (out, _) = dispatch(&env, &["--agent", "top", "--label", "feature", "--id", "pin"]);
    assert_eq!(field(out["attempts"].as_array().unwrap(), "agent"), ["top"]);
    assert_eq!(out["attempts"][0]["rung"], Value::Null, "{out}");
}

#[test]
fn routing_chains_naming_unknown_agents_are_refused_with_their_line() {
    let env = TestEnv::new();
    env.write_config(
        "[agents.a]\nagent = \"mock\"\n\n[[route]]\nwhen = [\"x\"]\nladder = [\"a\", \"ghost\"]\n",
    );
    let out = env.reins(&["dispatch", "--message", "x", "--json"]).code(2);
    assert!(out.stdout.contains(":4: [[route]]: ladder names \\\"ghost\\\""), "{}", out.stdout);
    env.write_config("[agents.a]\nagent = \"mock\"\n\n[dispatch]\nverifier = \"nobody\"\n");
    let out = env.reins(&["dispatch", "--message", "x"]).code(2);
    assert!(
        out.stderr.contains(":4: [dispatch]: verifier \"nobody\" is no agent"),
        "{}",
        out.stderr
    );
}
