//! Local tiers: an agent in config.toml with `endpoint = "NAME"` is a real
//! coding agent on a model endpoint. Offline, with the mock model server
//! standing in for Ollama: the real Codex CLI runs on the local endpoint
//! (its own model provider, pointed there by the profile's `[endpoint]`),
//! fails its check, and the cloud rung above it is accepted; the attempts
//! record their tier and whether the local model was warm.

use std::time::Duration;

use crate::support::agents::{Agent, AgentHome, agents_bin_dir, in_isolated_netns};
use crate::support::live;
use crate::support::mock_model::MockModel;

#[test]
fn a_local_rung_that_fails_its_check_climbs_to_the_cloud_rung_with_tier_and_warm_start_recorded() {
    let missing = if agents_bin_dir().is_none() {
        Some("the agent CLIs are not installed (scripts/install-agents)")
    } else if !in_isolated_netns() {
        Some("not inside a loopback-only network namespace (scripts/netns-run)")
    } else {
        None
    };
    let Some((env, cloud, home)) =
        live::world(missing, |dir, url| AgentHome::seed(Agent::Codex, &dir.join("codex"), url))
    else {
        return;
    };
    // The local server: one model, not loaded yet.
    let local = MockModel::start(None).unwrap();
    local.set_models(&["qwen-coder"]);
    local.set_cold(Duration::from_millis(300));
    let config_dir = home.home.join(".config/reins");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!(
            "[endpoints.local]\nurl = \"{}/v1\"\nmodels = [\"deepseek-coder\", \"qwen-coder\"]\n\n\
             [agents.local-qwen]\nagent = \"codex\"\nendpoint = \"local\"\n\n\
             [agents.cloud]\nagent = \"codex\"\n",
            local.base_url()
        ),
    )
    .unwrap();

    // The probe skips the model the server lacks and chooses qwen-coder.
    let probed = env.reins(&["agents", "local", "--probe", "--json"]).ok().json();
    assert_eq!(probed["endpoints"][0]["chosen"], "qwen-coder", "{probed:#}");
    // It loaded the model; unload it again, so the attempt starts cold.
    local.set_cold(Duration::from_millis(300));
    let listed = env.reins(&["agents", "local-qwen", "--json"]).ok().json();
    let row = &listed["agents"][0];
    assert_eq!(row["endpoint"]["name"], "local", "{listed:#}");
    assert_eq!(row["availability"]["available"], true, "{listed:#}");

    // The check fails the first time it runs and passes after.
    let work = home.work.to_str().unwrap();
    let mark = env.path().join("checked-once");
    let check = format!("cmd:test -e {0} || {{ touch {0}; exit 1; }}", mark.display());
    let summary = env
        .reins(&[
            "dispatch",
            "--ladder",
            "local-qwen,cloud",
            "--id",
            "tier",
            "--cwd",
            work,
            "--message",
            "write the notes",
            "--done",
            &check,
            "--timeout",
            "240s",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(summary["result"], "accepted", "{summary:#}");
    let attempts = summary["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{summary:#}");
    assert_eq!(
        (&attempts[0]["agent"], &attempts[0]["tier"], &attempts[0]["warm_start"]),
        (&"local-qwen".into(), &"local".into(), &false.into()),
        "{summary:#}"
    );
    assert_eq!(attempts[0]["model"], "qwen-coder");
    assert_eq!(attempts[0]["result"], "failed");
    assert_eq!((&attempts[1]["agent"], &attempts[1]["tier"]), (&"cloud".into(), &"cloud".into()));
    assert_eq!(attempts[1]["warm_start"], serde_json::Value::Null);
    assert_eq!(attempts[1]["result"], "accepted");

    // The local rung's model requests went to the local server, for the
    // model the probe chose; the cloud rung's to the other.
    let asked: Vec<String> = local
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/responses"))
        .map(|r| r["body"]["model"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!asked.is_empty() && asked.iter().all(|m| m == "qwen-coder"), "{asked:?}");
    assert!(
        cloud.requests().iter().any(|r| r["path"].as_str().unwrap_or("").ends_with("/responses")),
        "the cloud rung asked its own model"
    );
    // The store has the same.
    let rows = env.dispatch_history("tier");
    assert_eq!((&rows[0]["tier"], &rows[0]["warm_start"]), (&"local".into(), &false.into()));
    assert_eq!(rows[1]["tier"], "cloud");
}
