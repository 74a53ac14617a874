//! Local tiers: an agent in config.toml with `endpoint = "NAME"` is a real
//! coding agent on a model endpoint. Offline, with the mock model server
//! standing in for Ollama: the real Codex CLI runs on the local endpoint
//! (its own model provider, pointed there by the profile's `[endpoint]`),
//! fails its check, and the cloud rung above it is accepted; the attempts
//! record their tier and whether the local model was warm. And the real
//! Qwen Code (over ACP) on the endpoint through nothing but the environment
//! its profile's `[endpoint]` sets, the key read from `api_key_env`; and the
//! real OpenCode (over ACP) through its inline provider config, whose
//! OpenAI-compatible package is built into its binary (nothing is fetched).

use std::time::Duration;

use crate::common::TestEnv;
use crate::support::agents::{Agent, AgentHome, agents_bin_dir, fixtures_dir, in_isolated_netns};
use crate::support::live;
use crate::support::mock_model::MockModel;

#[test]
fn a_local_rung_that_fails_its_check_climbs_to_the_cloud_rung_with_tier_and_warm_start_recorded() {
    let missing = missing("codex", "Codex");
    let Some((env, cloud, home)) = live::world(missing.as_deref(), |dir, url| {
        AgentHome::seed(Agent::Codex, &dir.join("codex"), url)
    }) else {
        return;
    };
    // The local server: one model, not loaded yet.
    let local = MockModel::start(None).unwrap();
    local.set_models(&["qwen-coder"]);
    local.set_cold(Duration::from_millis(300));
    write_config(
        &home,
        &format!(
            "[endpoints.local]\nurl = \"{}/v1\"\nmodels = [\"deepseek-coder\", \"qwen-coder\"]\n\n\
             [agents.local-qwen]\nagent = \"codex\"\nendpoint = \"local\"\n\n\
             [agents.cloud]\nagent = \"codex\"\n",
            local.base_url()
        ),
    );

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

#[test]
fn qwen_code_runs_on_a_local_endpoint_through_its_environment_alone() {
    let missing = missing("qwen", "Qwen Code");
    // Its home is seeded without any OPENAI_* setting: the endpoint gives
    // them all.
    let Some((env, cloud, home)) = live::world(missing.as_deref(), |dir, url| {
        AgentHome::seed_from(&fixtures_dir().join("qwen"), &dir.join("qwen"), url)
    }) else {
        return;
    };
    let local = MockModel::start(None).unwrap();
    local.set_models(&["qwen-coder"]);
    write_config(
        &home,
        &format!(
            "[endpoints.local]\nurl = \"{}/v1\"\nmodels = [\"qwen-coder\"]\n\
             api_key_env = \"LOCAL_TIER_KEY\"\n\n\
             [agents.local-qwen]\nagent = \"qwen\"\nendpoint = \"local\"\n",
            local.base_url()
        ),
    );
    let (stdout, summary) =
        dispatch(&env, &home, "local-qwen", "qwen-tier", Some("local-tier-secret"));
    assert!(!stdout.contains("local-tier-secret"), "the key is in the output: {stdout}");
    assert_eq!(summary["result"], "accepted", "{summary:#}");
    let attempt = &summary["attempts"][0];
    assert_eq!((&attempt["tier"], &attempt["model"]), (&"local".into(), &"qwen-coder".into()));
    // Its turn went to the local server, for the chosen model; none to
    // the cloud one. The launch record keeps no key.
    let asked: Vec<String> = local
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/chat/completions"))
        .map(|r| r["body"]["model"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!asked.is_empty() && asked.iter().all(|m| m == "qwen-coder"), "{asked:?}");
    assert!(
        !cloud.requests().iter().any(|r| r["path"].as_str().unwrap_or("").contains("/chat/")),
        "the cloud server was asked"
    );
    let records: Vec<std::path::PathBuf> =
        walk(env.path()).filter(|p| p.ends_with("launch.json")).collect();
    assert!(!records.is_empty(), "no launch record under {}", env.path().display());
    for record in records {
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(!text.contains("local-tier-secret"), "{}: {text}", record.display());
        assert!(text.contains("{api_key}"), "the template is kept: {text}");
    }
}

#[test]
fn opencode_runs_on_a_local_endpoint_through_its_inline_provider_offline() {
    let missing = missing("opencode", "OpenCode");
    // Its home is the usual seed: its own config names a provider on the
    // cloud server as `model` and `small_model`; the endpoint's inline
    // config (OPENCODE_CONFIG_CONTENT) must win for both.
    let Some((env, cloud, home)) = live::world(missing.as_deref(), |dir, url| {
        AgentHome::seed(Agent::OpenCode, &dir.join("opencode"), url)
    }) else {
        return;
    };
    let local = MockModel::start(None).unwrap();
    local.set_models(&["qwen-coder"]);
    local.set_cold(Duration::from_millis(300));
    write_config(
        &home,
        &format!(
            "[endpoints.local]\nurl = \"{}/v1\"\nmodels = [\"qwen-coder\"]\n\
             api_key_env = \"LOCAL_TIER_KEY\"\n\n\
             [agents.local-oc]\nagent = \"opencode\"\nendpoint = \"local\"\n",
            local.base_url()
        ),
    );
    let (stdout, summary) =
        dispatch(&env, &home, "local-oc", "opencode-tier", Some("local-tier-secret"));
    assert!(!stdout.contains("local-tier-secret"), "the key is in the output: {stdout}");
    assert_eq!(summary["result"], "accepted", "{summary:#}");
    let attempt = &summary["attempts"][0];
    assert_eq!(
        (&attempt["tier"], &attempt["model"], &attempt["warm_start"]),
        (&"local".into(), &"qwen-coder".into(), &false.into()),
        "{summary:#}"
    );
    let rows = env.dispatch_history("opencode-tier");
    assert_eq!((&rows[0]["tier"], &rows[0]["warm_start"]), (&"local".into(), &false.into()));

    // Every model request (the turn and its title) went to the local
    // server for the chosen model, with the key from api_key_env; none to
    // the cloud one.
    let asked: Vec<serde_json::Value> = local
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/chat/completions"))
        .collect();
    assert!(!asked.is_empty(), "no model request reached the endpoint");
    for request in &asked {
        assert_eq!(request["body"]["model"], "qwen-coder", "{request}");
        // The log keeps a key's first 12 characters.
        assert_eq!(request["headers"]["authorization"], "Bearer local...", "{request}");
    }
    assert!(
        !cloud.requests().iter().any(|r| r["path"].as_str().unwrap_or("").contains("/chat/")),
        "the cloud server was asked"
    );
    let records: Vec<std::path::PathBuf> =
        walk(env.path()).filter(|p| p.ends_with("launch.json")).collect();
    assert!(!records.is_empty(), "no launch record under {}", env.path().display());
    for record in records {
        let text = std::fs::read_to_string(&record).unwrap();
        assert!(!text.contains("local-tier-secret"), "{}: {text}", record.display());
        assert!(text.contains("{api_key}"), "the template is kept: {text}");
    }
}

#[test]
fn opencode_with_a_configured_model_runs_that_model_over_acp() {
    let missing = missing("opencode", "OpenCode");
    let Some((env, cloud, home)) = live::world(missing.as_deref(), |dir, url| {
        AgentHome::seed(Agent::OpenCode, &dir.join("opencode"), url)
    }) else {
        return;
    };
    // Its own config's model is mock-model; the agent asks for the other.
    write_config(&home, "[agents.oc-b]\nagent = \"opencode\"\nmodel = \"mock/mock-model-b\"\n");
    // Before: `opencode acp -m mock/mock-model-b` printed its usage and
    // exited 1, and every attempt failed.
    let (_, summary) = dispatch(&env, &home, "oc-b", "oc-model", None);
    assert_eq!(summary["result"], "accepted", "{summary:#}");
    let models: Vec<String> = cloud
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/chat/completions"))
        .map(|r| r["body"]["model"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(models.iter().any(|m| m == "mock-model-b"), "the turn's model: {models:?}");
}

/// Why a live test of `program` cannot run here, if it cannot.
fn missing(program: &str, name: &str) -> Option<String> {
    if !agents_bin_dir().is_some_and(|bin| bin.join(program).exists()) {
        Some(format!("{name} is not installed (scripts/install-agents --extra)"))
    } else if !in_isolated_netns() {
        Some("not inside a loopback-only network namespace (scripts/netns-run)".into())
    } else {
        None
    }
}

/// Writes the reins config.toml of the agent's home.
fn write_config(home: &AgentHome, text: &str) {
    let dir = home.home.join(".config/reins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// `reins dispatch --agent AGENT --id ID` of the usual task in the home's
/// work directory (with `LOCAL_TIER_KEY` set to `key`, if given); asserts
/// it succeeded and returns its stdout and summary.
#[track_caller]
fn dispatch(
    env: &TestEnv,
    home: &AgentHome,
    agent: &str,
    id: &str,
    key: Option<&str>,
) -> (String, serde_json::Value) {
    let work = home.work.to_str().unwrap();
    let mut command = env.command(&[
        "dispatch",
        "--agent",
        agent,
        "--id",
        id,
        "--cwd",
        work,
        "--message",
        "write the notes",
        "--timeout",
        "180s",
        "--json",
    ]);
    if let Some(key) = key {
        command.env("LOCAL_TIER_KEY", key);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary = serde_json::from_str(stdout.trim()).unwrap();
    (stdout, summary)
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> impl Iterator<Item = std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.into_iter()
}
