//! Real agents driving reins through `reins mcp`, offline: the real Claude
//! Code and Codex, pointed at the project's mock model and given `reins
//! mcp` as an MCP server, get scripted tool calls from the mock model
//! (`[[tool:NAME {ARGS}]]`): start a mock worker, wait for its
//! task_complete, read its screen. The test checks the worker's events
//! (its parent is the agent's own session) and the tool results the model
//! received (the mock model's request log).
//!
//! They need the agent CLIs (`scripts/install-agents`) and the loopback-only
//! network namespace (`scripts/netns-run`); without either they say so and
//! skip, except under `REINS_TEST_REQUIRE_TOOLS=1`.

use serde_json::{Value, json};

use crate::common::{TestEnv, reins_bin};
use crate::support::agents::{Agent, AgentHome, agents_bin_dir, in_isolated_netns};
use crate::support::live;
use crate::support::mock_model::MockModel;

fn world(agent: Agent) -> Option<(TestEnv, MockModel, AgentHome)> {
    let missing = if agents_bin_dir().is_none() {
        Some("the agent CLIs are not installed (scripts/install-agents)")
    } else if !in_isolated_netns() {
        Some("not inside a loopback-only network namespace (scripts/netns-run)")
    } else {
        None
    };
    live::world(missing, |dir, url| AgentHome::seed(agent, &dir.join(agent.name()), url))
}

/// The prompt whose markers make the mock model call reins' tools: start
/// a mock worker with a first task, wait for it, read its screen.
fn script(work: &str) -> String {
    let start = json!({"agent": "mock", "id": "minion", "cwd": work, "context": "write a haiku"});
    let wait = json!({"id": "minion", "timeout_s": 60});
    let read = json!({"id": "minion"});
    format!(
        "[[tool:start_session {start}]] [[tool:wait {wait}]] [[tool:read_screen {read}]] \
         hand the haiku to a worker"
    )
}

/// The text of every tool result the model was sent, in order, from the
/// last request that carried them (each request repeats the conversation).
fn tool_results(model: &MockModel) -> Vec<String> {
    let mut best: Vec<String> = Vec::new();
    for request in model.requests() {
        let body = &request["body"];
        let mut found = Vec::new();
        // Anthropic: user messages with tool_result blocks.
        for message in body["messages"].as_array().into_iter().flatten() {
            for block in message["content"].as_array().into_iter().flatten() {
                if block["type"] == "tool_result" {
                    found.push(text_of(&block["content"]));
                }
            }
        }
        // OpenAI Responses: function_call_output items.
        for item in body["input"].as_array().into_iter().flatten() {
            if item["type"] == "function_call_output" {
                found.push(text_of(&item["output"]));
            }
        }
        if found.len() > best.len() {
            best = found;
        }
    }
    best
}

/// A tool result's text (Codex puts `Wall time: ...\nOutput:\n` before it).
fn text_of(content: &Value) -> String {
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n")
        }
        other => other.to_string(),
    };
    match text.split_once("\nOutput:\n") {
        Some((head, output)) if head.starts_with("Wall time:") => output.to_string(),
        _ => text,
    }
}

/// What every agent must have done: three tool calls whose results the
/// model saw, and a worker that ran its turn as the agent's child.
fn check(env: &TestEnv, model: &MockModel, boss: &str) {
    let results = tool_results(model);
    let offered: Vec<Vec<String>> = model
        .requests()
        .iter()
        .map(|r| {
            r["body"]["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| t["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .collect();
    assert_eq!(results.len(), 3, "{results:#?}\ntools offered per request: {offered:?}");
    let started: Value =
        serde_json::from_str(&results[0]).unwrap_or_else(|e| panic!("{e}: {results:#?}"));
    assert_eq!(started["id"], "minion", "{started}");
    assert_eq!(started["parent"]["id"], boss, "{started}");
    let waited: Value = serde_json::from_str(&results[1]).expect("wait's JSON");
    assert_eq!(waited["status"], "reached", "{waited}");
    assert_eq!(waited["event"]["type"], "task_complete");
    assert_eq!(waited["event"]["status"], "completed");
    assert!(
        results[2].contains("MOCK_OK (you said: [reins session id=minion] write a haiku)"),
        "{}",
        results[2]
    );
    let events = env.events("minion");
    let first = events.iter().find(|e| e["type"] == "started").unwrap();
    assert_eq!(first["parent"]["id"], boss, "{first}");
    let done = events.iter().find(|e| e["type"] == "task_complete").expect("its turn ended");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["turn"], 1);
    env.reins(&["stop", "--id", "minion"]).ok();
}

#[test]
fn real_claude_drives_a_worker_through_reins_mcp() {
    let Some((env, model, home)) = world(Agent::Claude) else { return };
    let config = env.path().join("mcp.json");
    let servers = json!({"mcpServers": {"reins": {"command": reins_bin(), "args": ["mcp"]}}});
    std::fs::write(&config, servers.to_string()).unwrap();
    let work = home.work.to_str().unwrap();
    env.reins(&[
        "run",
        "claude",
        "--transport",
        "stream-json",
        "--approve",
        "auto",
        "--id",
        "boss",
        "--detach",
        "--cwd",
        work,
        "--",
        "--mcp-config",
        config.to_str().unwrap(),
    ])
    .ok();
    let sent = env
        .reins(&["send", "--id", "boss", "--wait-for-idle", "--timeout", "180s", &script(work)])
        .ok()
        .json();
    assert_eq!(sent["task"]["status"], "completed", "{sent}");
    check(&env, &model, "boss");
    env.reins(&["stop", "--id", "boss"]).ok();
}

#[test]
fn real_codex_drives_a_worker_through_reins_mcp() {
    let Some((env, model, home)) = world(Agent::Codex) else { return };
    // Codex reads its MCP servers from config.toml. Without an approval
    // mode it asks before each tool not marked read-only (start_session).
    let config = home.home.join(".codex/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    // Codex hands its tool servers a few variables of its own environment
    // only: the test's state and runtime directories are passed by name.
    let vars = env.env_vars();
    text.push_str(&format!(
        "\n[mcp_servers.reins]\ncommand = \"{}\"\nargs = [\"mcp\"]\ntool_timeout_sec = 120\n\
         default_tools_approval_mode = \"approve\"\n\
         env = {{ REINS_STATE_DIR = \"{}\", XDG_RUNTIME_DIR = \"{}\" }}\n",
        reins_bin().display(),
        vars["REINS_STATE_DIR"],
        vars["XDG_RUNTIME_DIR"],
    ));
    std::fs::write(&config, text).unwrap();
    let work = home.work.to_str().unwrap();
    env.reins(&["run", "codex", "--approve", "auto", "--id", "boss", "--detach", "--cwd", work])
        .ok();
    let sent = env
        .reins(&["send", "--id", "boss", "--wait-for-idle", "--timeout", "180s", &script(work)])
        .ok()
        .json();
    assert_eq!(sent["task"]["status"], "completed", "{sent}");
    check(&env, &model, "boss");
    env.reins(&["stop", "--id", "boss"]).ok();
}
