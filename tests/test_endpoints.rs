//! Model endpoints (`[endpoints.NAME]`) with the mock model server standing
//! in for Ollama: doctor and agents report whether each answers and which
//! configured models it serves; a probe falls through the model chain to
//! the first model that answers (skipping one the server lacks and one that
//! fails) and records it; a down, slow or misconfigured endpoint is
//! reported quickly and clearly.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestEnv;
use crate::support::mock_model::MockModel;

fn local_server(models: &[&str]) -> MockModel {
    let model = MockModel::start(None).unwrap();
    model.set_models(models);
    model
}

fn endpoint_config(name: &str, url: &str, models: &[&str]) -> String {
    let models: Vec<String> = models.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "[endpoints.{name}]\nurl = \"{url}/v1\"\nmodels = [{}]\ntimeout = \"5s\"\n",
        models.join(", ")
    )
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

fn strings(value: &Value) -> Vec<&str> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
}

#[test]
fn doctor_endpoints_reports_reachability_and_which_models_it_serves() {
    let env = TestEnv::new();
    let up = local_server(&["qwen-coder", "phi4-mini"]);
    let down = local_server(&["qwen-coder"]);
    down.set_down(true);
    let mut config =
        endpoint_config("local", &up.base_url(), &["deepseek-coder", "qwen-coder", "phi4-mini"]);
    config.push_str(&endpoint_config("gone", &down.base_url(), &["qwen-coder"]));
    env.write_config(&config);

    // Only the named endpoint is required: exit 0 although `gone` is down.
    let report = env.reins(&["doctor", "endpoint:local", "--json"]).ok().json();
    let local = check(&report, "endpoint:local");
    assert_eq!(local["status"], "ok", "{local}");
    assert_eq!(strings(&local["endpoint"]["present"]), ["qwen-coder", "phi4-mini"]);
    assert_eq!(strings(&local["endpoint"]["missing"]), ["deepseek-coder"]);
    assert_eq!(strings(&local["endpoint"]["loaded"]), ["qwen-coder", "phi4-mini"]);
    let gone = check(&report, "endpoint:gone");
    assert_eq!(gone["status"], "broken", "{gone}");
    assert_eq!(gone["required"], false);
    assert!(gone["hint"].as_str().unwrap().contains("[endpoints.gone]"), "{gone}");

    // `endpoints` requires every one: exit 1, and the table says why.
    let out = env.reins(&["doctor", "endpoints"]).code(1);
    assert!(out.stdout.contains("lacks deepseek-coder"), "{}", out.stdout);
    assert!(out.stdout.contains("endpoint:gone"), "{}", out.stdout);
    assert!(out.stdout.contains("(required)"), "{}", out.stdout);
}

#[test]
fn a_slow_endpoint_is_reported_within_the_timeout_not_waited_on() {
    let env = TestEnv::new();
    let slow = local_server(&["m"]);
    slow.set_slow(Duration::from_secs(20));
    env.write_config(&endpoint_config("slow", &slow.base_url(), &["m"]));
    let started = Instant::now();
    let report = env.reins(&["doctor", "endpoints", "--timeout", "1s", "--json"]).code(1).json();
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    let c = check(&report, "endpoint:slow");
    assert!(c["detail"].as_str().unwrap().contains("no answer within 1s"), "{c}");
}

#[test]
fn an_endpoint_serving_none_of_its_models_says_what_to_pull() {
    let env = TestEnv::new();
    let server = local_server(&["llama3"]);
    env.write_config(&endpoint_config("local", &server.base_url(), &["qwen-coder"]));
    let report = env.reins(&["doctor", "endpoints", "--json"]).code(1).json();
    let c = check(&report, "endpoint:local");
    assert_eq!(c["status"], "broken");
    assert!(c["hint"].as_str().unwrap().contains("ollama pull qwen-coder"), "{c}");
}

#[test]
fn a_probe_skips_a_model_the_endpoint_lacks_and_one_that_fails_and_records_the_first_that_answers()
{
    let env = TestEnv::new();
    let server = local_server(&["qwen-coder", "phi4-mini"]);
    server.fail_model("qwen-coder");
    env.write_config(&endpoint_config(
        "local",
        &server.base_url(),
        &["deepseek-coder", "qwen-coder", "phi4-mini"],
    ));
    let report = env.reins(&["agents", "local", "--probe", "--json"]).ok().json();
    assert!(report["agents"].as_array().unwrap().is_empty(), "{report}");
    let row = &report["endpoints"][0];
    assert_eq!(row["chosen"], "phi4-mini", "{row}");
    let tried = row["probe"]["tried"].as_array().unwrap();
    assert_eq!(tried.len(), 3, "{row}");
    assert_eq!(
        (&tried[0]["model"], &tried[0]["detail"]),
        (&"deepseek-coder".into(), &"not on the endpoint".into())
    );
    assert_eq!(tried[1]["ok"], false);
    assert!(tried[1]["detail"].as_str().unwrap().starts_with("HTTP 500"), "{row}");
    assert_eq!(tried[2]["ok"], true);
    // The model the server lacks was never asked for.
    let asked: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/chat/completions"))
        .map(|r| r["body"]["model"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(asked, ["qwen-coder", "phi4-mini"]);

    // Recorded: a later listing (no probe) knows the chosen model.
    let again = env.reins(&["agents", "--json"]).ok().json();
    let row = again["endpoints"].as_array().unwrap().iter().find(|e| e["name"] == "local").unwrap();
    assert_eq!(row["chosen"], "phi4-mini", "{row}");
    assert_eq!(row["last_probe"]["agent"], "endpoint:local");
    assert!(
        row["last_probe"]["detail"].as_str().unwrap().contains("skipped deepseek-coder"),
        "{row}"
    );
    let table = env.reins(&["agents", "local"]).ok();
    assert!(table.stdout.contains("ENDPOINT"), "{}", table.stdout);
    assert!(table.stdout.contains("phi4-mini"), "{}", table.stdout);
}

#[test]
fn a_cold_model_is_loaded_by_the_probe_and_listed_warm_after() {
    let env = TestEnv::new();
    let server = local_server(&["qwen-coder"]);
    server.set_cold(Duration::from_millis(300));
    env.write_config(&endpoint_config("local", &server.base_url(), &["qwen-coder"]));
    let before = env.reins(&["doctor", "endpoints", "--json"]).ok().json();
    assert!(strings(&check(&before, "endpoint:local")["endpoint"]["loaded"]).is_empty());
    let cold = env.reins(&["agents", "local", "--json"]).ok().json();
    assert_eq!(cold["endpoints"][0]["warm"]["warm"], false, "{cold}");
    assert_eq!(cold["endpoints"][0]["warm"]["by"], "running");
    env.reins(&["agents", "local", "--probe", "--json"]).ok();
    assert_eq!(server.loaded(), ["qwen-coder"]);
    let warm = env.reins(&["agents", "local", "--json"]).ok().json();
    assert_eq!(warm["endpoints"][0]["warm"]["warm"], true, "{warm}");
    let after = env.reins(&["doctor", "endpoints", "--json"]).ok().json();
    let c = check(&after, "endpoint:local");
    assert_eq!(strings(&c["endpoint"]["loaded"]), ["qwen-coder"]);
    assert!(c["detail"].as_str().unwrap().contains("loaded: qwen-coder"), "{c}");
}

#[test]
fn a_down_endpoint_fails_its_probe_and_the_command() {
    let env = TestEnv::new();
    let server = local_server(&["m"]);
    server.set_down(true);
    env.write_config(&endpoint_config("local", &server.base_url(), &["m"]));
    let started = Instant::now();
    let out = env.reins(&["agents", "local", "--probe", "--json"]).code(1);
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let row = &out.json()["endpoints"][0];
    assert_eq!(row["chosen"], Value::Null, "{row}");
    assert_eq!(row["reach"]["reachable"], false);
    assert!(row["last_probe"]["detail"].as_str().unwrap().starts_with("unreachable"), "{row}");
}

#[test]
fn a_broken_endpoint_table_is_a_usage_error_with_its_line() {
    let env = TestEnv::new();
    env.write_config("[endpoints.local]\nurl = \"https://api.example.com\"\nmodels = [\"m\"]\n");
    let out = env.reins(&["doctor", "endpoints", "--json"]).code(2);
    let err = out.json();
    let message = err["error"].as_str().unwrap_or_default().to_string() + &err.to_string();
    assert!(message.contains("config.toml:1: [endpoints.local]: url: only http://"), "{err}");
    // Without naming endpoints, doctor still works and shows the config as broken.
    let report = env.reins(&["doctor", "--json", "--timeout", "2s"]).ok().json();
    assert_eq!(check(&report, "config")["status"], "broken", "{report}");
    // Nothing called an endpoint that is not configured.
    env.write_config("");
    env.reins(&["doctor", "endpoints"]).code(2);
}

#[test]
fn an_agent_on_an_endpoint_uses_the_model_its_probe_chose_and_bad_bindings_are_refused() {
    let env = TestEnv::new();
    let server = local_server(&["qwen-coder"]);
    let mut config =
        endpoint_config("local", &server.base_url(), &["deepseek-coder", "qwen-coder"]);
    config.push_str("\n[agents.local-qwen]\nagent = \"codex\"\nendpoint = \"local\"\n");
    env.write_config(&config);
    let before = env.reins(&["agents", "local-qwen", "--json"]).ok().json();
    let row = &before["agents"][0];
    assert_eq!(
        (&row["endpoint"]["name"], &row["model"]),
        (&"local".into(), &"deepseek-coder".into()),
        "{row}"
    );
    env.reins(&["agents", "local", "--probe", "--json"]).ok();
    let after = env.reins(&["agents", "local-qwen", "--json"]).ok().json();
    assert_eq!(after["agents"][0]["model"], "qwen-coder", "{after}");

    // An agent whose profile cannot be pointed at an endpoint, and an
    // endpoint that is not in the file.
    let mut config = endpoint_config("local", &server.base_url(), &["qwen-coder"]);
    config.push_str("\n[agents.local-claude]\nagent = \"claude\"\nendpoint = \"local\"\n");
    env.write_config(&config);
    let out = env.reins(&["agents", "--json"]).code(2);
    assert!(out.stdout.contains("cannot run on a model endpoint"), "{}", out.stdout);
    assert!(out.stdout.contains("codex"), "the hint names those that can: {}", out.stdout);
    let mut config = endpoint_config("local", &server.base_url(), &["qwen-coder"]);
    config.push_str("\n[agents.x]\nagent = \"codex\"\nendpoint = \"remote\"\n");
    env.write_config(&config);
    let out = env.reins(&["agents"]).code(2);
    assert!(out.stderr.contains("no [endpoints.remote] in the file"), "{}", out.stderr);
}
