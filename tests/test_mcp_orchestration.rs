//! The orchestration tools of `reins mcp` — dispatch (with its progress,
//! its cancellation and a client that goes away), dispatch_status,
//! chain_run, chain_status, list_agents — with mock agents configured in
//! config.toml, through real MCP clients.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestEnv, eventually};
use crate::support::mcp::{Inspector, RawClient};

/// `strong` works, `slow` works for half a minute, `ghost` cannot run.
const CONFIG: &str = r#"
[agents.strong]
agent = "mock"
args = ["--work", "0.2"]

[agents.slow]
agent = "mock"
args = ["--work", "30"]

[agents.ghost]
agent = "generic"
args = ["no-such-agent-program-here"]
"#;

fn env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    env
}

/// The progress messages seen for `token`.
fn progress(seen: &[Value], token: &str) -> Vec<String> {
    seen.iter()
        .filter(|m| {
            m["method"] == "notifications/progress" && m["params"]["progressToken"] == token
        })
        .map(|m| m["params"]["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn live(env: &TestEnv, id: &str) -> bool {
    let out = env.reins(&["status", "--id", id, "--json"]);
    out.code == 0 && out.json()[0]["host"] == "live"
}

#[test]
fn a_dispatch_reports_its_attempts_and_answers_the_accepted_screen() {
    let env = env();
    let mut client = RawClient::start(&env, json!({}));
    let id = client.call(
        "dispatch",
        json!({
            "message": "write the notes",
            "id": "d1",
            "agent": "strong",
            "done": ["cmd:true"],
            "timeout_s": 60,
        }),
        Some(json!({"progressToken": "p"})),
    );
    let answer = client.response(id, Duration::from_secs(90));
    let summary = &answer["result"]["structuredContent"];
    assert_eq!(summary["result"], "accepted", "{answer:#}");
    assert_eq!(summary["session"], "d1");
    assert_eq!(summary["attempts"].as_array().unwrap().len(), 1);
    let screen = summary["answer"].as_str().expect("the accepted screen");
    assert!(
        screen.contains("MOCK_OK (you said: [reins session id=d1] write the notes"),
        "{screen}"
    );
    let said = progress(&client.seen, "p");
    assert_eq!(said[0], "dispatch d1: started", "{said:#?}");
    assert!(
        said.contains(&"dispatch d1: attempt 1: session d1 (agent strong)".to_string()),
        "{said:#?}"
    );
    // The worker's states, as its events say them.
    assert!(said.iter().any(|m| m.starts_with("dispatch d1: d1: busy, turn ")), "{said:#?}");
    assert!(said.iter().any(|m| m == "dispatch d1: d1: ready, turn 1"), "{said:#?}");
    assert!(said.iter().any(|m| m == "dispatch d1: attempt 1 by strong: accepted"), "{said:#?}");
    assert_eq!(said.last().unwrap(), "dispatch d1: ended: accepted", "{said:#?}");
    assert!(!live(&env, "d1"), "the dispatch stopped its session");

    let status = client.call_result("dispatch_status", json!({"id": "d1"}));
    let status = &status["structuredContent"];
    assert_eq!(status["state"], "ended", "{status:#}");
    assert_eq!(status["result"], "accepted");
    assert_eq!(status["attempts"][0]["result"], "accepted");
    // The command line reads the same log.
    let cli = env.reins(&["dispatch", "--status", "--id", "d1", "--json"]).ok().json();
    assert_eq!(cli["result"], "accepted");
    let unknown = client.call_result("dispatch_status", json!({"id": "d-none"}));
    assert_eq!(unknown["isError"], true, "{unknown:#}");
}

#[test]
fn a_cancelled_dispatch_and_a_client_gone_mid_dispatch_stop_their_sessions() {
    let env = env();
    let mut client = RawClient::start(&env, json!({}));
    let id = client.call(
        "dispatch",
        json!({"message": "take your time", "id": "d2", "agent": "slow"}),
        Some(json!({"progressToken": "c"})),
    );
    // Cancelled once its worker is busy: the session is stopped, the
    // dispatch recorded as interrupted, and no answer comes.
    while !progress(&client.seen, "c").iter().any(|m| m.contains("d2: busy")) {
        let message = client.next(Duration::from_secs(30)).expect("progress");
        client.seen.push(message);
    }
    assert!(live(&env, "d2"));
    client.notify("notifications/cancelled", json!({"requestId": id}));
    let cli = || env.reins(&["dispatch", "--status", "--id", "d2", "--json"]).ok().json();
    eventually(Duration::from_secs(20), "the dispatch to end", || cli()["state"] == "ended");
    assert_eq!(cli()["result"], "interrupted");
    assert!(!live(&env, "d2"), "the cancelled dispatch stopped its session");
    let ping = client.request("ping", json!({}));
    client.response(ping, Duration::from_secs(10));
    assert!(!client.seen.iter().any(|m| m["id"] == json!(id)), "a cancelled call was answered");

    // The client goes away mid-dispatch: the server stops it before it exits.
    let id = client.call(
        "dispatch",
        json!({"message": "take your time", "id": "d3", "agent": "slow"}),
        Some(json!({"progressToken": "g"})),
    );
    while !progress(&client.seen, "g").iter().any(|m| m.contains("d3: busy")) {
        let message = client.next(Duration::from_secs(30)).expect("progress");
        client.seen.push(message);
    }
    let _ = id;
    client.hang_up();
    assert_eq!(client.exits_within(Duration::from_secs(30)), 0);
    let status = env.reins(&["dispatch", "--status", "--id", "d3", "--json"]).ok().json();
    assert_eq!(status["state"], "ended", "{status:#}");
    assert_eq!(status["result"], "interrupted");
    assert!(!live(&env, "d3"), "the server stopped the dispatch's session before it left");
}

#[test]
fn chain_run_starts_a_runner_that_outlives_the_server() {
    let env = env();
    let Some(mcp) = Inspector::new(&env) else { return };
    let file = env.work.join("small.toml");
    std::fs::write(
        &file,
        "[chain]\nname = \"small\"\ntask = \"say hi\"\n\n[[step]]\nname = \"only\"\nagent = \"strong\"\nbrief = \"Do {{task}}.\"\n",
    )
    .unwrap();
    let started = mcp.call("chain_run", &[&format!("file={}", file.display())]);
    let chain = &started["structuredContent"];
    assert_eq!(chain["id"], "small", "{started:#}");
    assert_eq!(chain["runner_alive"], true, "{started:#}");
    assert!(chain["runner_log"].as_str().unwrap().ends_with("small.runner.log"));
    // The inspector's server is gone; the runner goes on and ends.
    let status = || env.reins(&["chain", "status", "small", "--json"]).ok().json();
    eventually(Duration::from_secs(60), "the chain to end", || status()["result"] != "running");
    assert_eq!(status()["result"], "accepted", "{:#}", status());
    let seen = mcp.call("chain_status", &["id=small"]);
    assert_eq!(seen["structuredContent"]["result"], "accepted", "{seen:#}");
    assert_eq!(seen["structuredContent"]["runner_alive"], false, "{seen:#}");
    let all = mcp.call("chain_status", &[]);
    assert_eq!(all["structuredContent"]["chains"][0]["id"], "small", "{all:#}");

    // A bad chain file is refused before anything starts.
    let bad = env.work.join("bad.toml");
    std::fs::write(&bad, "[chain]\nname = \"bad\"\n").unwrap();
    let refused = mcp.call("chain_run", &[&format!("file={}", bad.display())]);
    assert_eq!(refused["isError"], true, "{refused:#}");
    assert_eq!(refused["_meta"]["reins/error"]["kind"], "invalid_input", "{refused:#}");
    assert!(!env.state_dir().join("chains/bad").exists());
}

#[test]
fn list_agents_says_which_agents_can_take_a_task() {
    let env = env();
    let Some(mcp) = Inspector::new(&env) else { return };
    let listed = mcp.call("list_agents", &[]);
    let agents = listed["structuredContent"]["agents"].as_array().unwrap();
    let row = |name: &str| agents.iter().find(|a| a["name"] == name).unwrap().clone();
    assert_eq!(row("strong")["availability"]["available"], true, "{listed:#}");
    assert_eq!(row("ghost")["availability"]["available"], false);
    assert!(row("ghost")["availability"]["reason"].as_str().unwrap().contains("not on PATH"));
    let one = mcp.call("list_agents", &[r#"names=["strong"]"#]);
    assert_eq!(one["structuredContent"]["agents"].as_array().unwrap().len(), 1, "{one:#}");
    let unknown = mcp.call("list_agents", &[r#"names=["nobody"]"#]);
    assert_eq!(unknown["isError"], true, "{unknown:#}");
}
