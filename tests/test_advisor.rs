//! `[advisor]` in config.toml: the watcher's second opinion comes from a
//! model endpoint, pinged at the start and by doctor; one that is down
//! rests (no cycle waits on it, and it is not even connected to again),
//! one that answers garbage is ignored, and its model chain skips a model
//! the server lacks.

use std::io::Read;
use std::net::TcpListener;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestEnv;
use crate::support::mock_model::MockModel;

/// Waits for a watcher to exit; its exit code and stderr.
fn finish(mut child: Child, timeout: Duration) -> (i32, String) {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the watcher did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr)
}

fn watch(env: &TestEnv, id: &str, args: &[&str]) -> Child {
    let mut all = vec!["watch", "--id", id, "--json", "--on-exit", "leave"];
    all.extend_from_slice(args);
    env.spawn(&all)
}

fn by_of(env: &TestEnv, id: &str, kind: &str) -> Vec<Value> {
    env.events(id).into_iter().filter(|e| e["type"] == kind).map(|e| e["by"].clone()).collect()
}

#[test]
fn a_down_advisor_rests_so_no_cycle_waits_on_it() {
    let env = TestEnv::new();
    // Accepts connections and never answers; counts them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    env.write_config(&format!(
        "[advisor]\nurl = \"{url}\"\nmodels = [\"phi4-mini\"]\ntimeout = \"3s\"\n"
    ));
    env.start("dn", &["--context", "[[stall]] x"]);
    let started = Instant::now();
    let watcher = watch(&env, "dn", &["--stall-after", "1s", "--max-resumes", "0"]);
    let (code, stderr) = finish(watcher, Duration::from_secs(40));
    assert_eq!(code, 2, "escalated by the rules: {stderr}");
    assert!(stderr.contains("is down (no answer within 2s)"), "{stderr}");
    assert!(stderr.contains("the advisor is down; asked again in"), "{stderr}");
    assert_eq!(by_of(&env, "dn", "escalate"), ["rules"]);
    // The ping's 2 s and the stall's 1 s, not the advisor's 3 s timeout.
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "only the ping connected; no cycle asked");

    // Doctor says so, and `doctor advisor` fails.
    let report = env.reins(&["doctor", "advisor", "--json", "--timeout", "2s"]).code(1).json();
    let check =
        report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "advisor").unwrap();
    assert_eq!(check["status"], "broken", "{check}");
}

#[test]
fn an_advisor_on_an_endpoint_skips_a_model_it_lacks_and_its_garbage_is_not_taken() {
    let env = TestEnv::new();
    let model = MockModel::start(None).unwrap();
    model.set_models(&["phi4-mini"]);
    env.write_config(&format!(
        "[endpoints.local]\nurl = \"{}/v1\"\nmodels = [\"phi4-mini\"]\n\n\
         [advisor]\nendpoint = \"local\"\nmodels = [\"missing-model\", \"phi4-mini\"]\ntimeout = \"5s\"\n",
        model.base_url()
    ));
    let report = env.reins(&["doctor", "advisor", "--json", "--timeout", "2s"]).ok().json();
    let check =
        report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "advisor").unwrap();
    assert_eq!(check["status"], "ok", "{check}");

    // The mock answers `MOCK_OK (you said: ...)`: no decision.
    env.start("gb", &["--context", "[[stall]] x"]);
    let watcher = watch(&env, "gb", &["--stall-after", "1s", "--max-resumes", "0"]);
    let (code, stderr) = finish(watcher, Duration::from_secs(30));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("the advisor at http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("advice not taken"), "{stderr}");
    assert_eq!(by_of(&env, "gb", "escalate"), ["rules"]);
    let asked: Vec<String> = model
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or("").ends_with("/chat/completions"))
        .map(|r| r["body"]["model"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(asked, ["missing-model", "phi4-mini"], "the chain skipped the model it lacks");
}

/// Two quick mock agents, and a dispatch advisor on the mock model.
fn dispatch_config(model: &MockModel) -> String {
    format!(
        "[agents.a]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
         [agents.b]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
         [advisor]\nurl = \"{}\"\nmodels = [\"router\"]\ntimeout = \"5s\"\ndispatch = true\n",
        model.base_url()
    )
}

#[test]
fn a_dispatch_advisor_is_shown_the_stores_figures_and_its_pick_is_validated_and_recorded() {
    let env = TestEnv::new();
    let model = MockModel::start(None).unwrap();
    env.write_config(&dispatch_config(&model));
    // The store's figures for label `ui`: a failed its check once, b was accepted.
    let seed = |agent: &str, id: &str, done: &str| {
        env.reins(&[
            "dispatch",
            "--agent",
            agent,
            "--label",
            "ui",
            "--id",
            id,
            "--message",
            "seed",
            "--done",
            done,
            "--max-failures",
            "1",
            "--json",
        ])
    };
    seed("a", "s1", "cmd:false").code(1);
    seed("b", "s2", "cmd:true").ok();

    // The mock model says what `[[say:...]]` in the task says.
    let out = env
        .reins(&[
            "dispatch",
            "--label",
            "ui",
            "--id",
            "pick",
            "--json",
            "--message",
            "[[say:b: it was accepted on ui tasks]] restyle the button",
        ])
        .ok();
    assert!(
        out.stderr.contains("the advisor picked b: it was accepted on ui tasks"),
        "{}",
        out.stderr
    );
    let summary = out.json();
    assert_eq!(summary["attempts"][0]["agent"], "b", "{summary}");
    assert_eq!(summary["attempts"][0]["routed_by"], "advisor", "{summary}");
    assert_eq!(env.dispatch_history("pick")[0]["routed_by"], "advisor");
    // What it was shown: each agent's figures on `ui` tasks.
    let asked = model
        .requests()
        .into_iter()
        .find(|r| r["path"].as_str().unwrap_or("").ends_with("/chat/completions"))
        .unwrap();
    let shown: Value =
        serde_json::from_str(asked["body"]["messages"][1]["content"].as_str().unwrap()).unwrap();
    let figures = |name: &str| {
        shown["agents"].as_array().unwrap().iter().find(|a| a["agent"] == name).unwrap().clone()
    };
    assert_eq!(
        (figures("a")["attempts"].as_u64(), figures("a")["success_rate"].as_f64()),
        (Some(1), Some(0.0)),
        "{shown}"
    );
    assert_eq!(figures("b")["success_rate"].as_f64(), Some(1.0), "{shown}");
    assert!(figures("b")["median_duration_s"].as_f64().is_some(), "{shown}");

    // Garbage (the mock's own `MOCK_OK ...`): the rules decide.
    let out =
        env.reins(&["dispatch", "--label", "ui", "--id", "garb", "--json", "--message", "x"]).ok();
    assert!(out.stderr.contains("advice not taken"), "{}", out.stderr);
    assert_ne!(out.json()["attempts"][0]["routed_by"], "advisor");
}
