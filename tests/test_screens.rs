//! Recorded screens of the real agents: every profile reads every recorded
//! step as it should, and every state rule of a profile with recordings is
//! exercised by at least one of them. Adding an agent = its TOML profile +
//! a directory `tests/fixtures/screens/<agent>/` with `<name>.bytes` (what
//! the agent wrote to its terminal) and `<name>.steps.json` (byte offsets
//! and the state expected there).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::common::TestEnv;

#[test]
fn recorded_agent_screens_read_as_expected() {
    let env = TestEnv::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let mut matched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for agent_dir in std::fs::read_dir(&root).unwrap().flatten() {
        let agent = agent_dir.file_name().into_string().unwrap();
        for entry in std::fs::read_dir(agent_dir.path()).unwrap().flatten() {
            let path = entry.path();
            let Some(name) =
                path.file_name().unwrap().to_str().unwrap().strip_suffix(".steps.json")
            else {
                continue;
            };
            let steps: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(steps["adapter"], agent.as_str(), "{}", path.display());
            let bytes = agent_dir.path().join(format!("{name}.bytes"));
            let mut args =
                vec!["adapters".to_string(), "replay".into(), "--adapter".into(), agent.clone()];
            args.push(bytes.display().to_string());
            args.extend(["--size".into(), steps["size"].as_str().unwrap().to_string()]);
            for step in steps["steps"].as_array().unwrap() {
                args.extend(["--at".into(), step["offset"].to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = env.reins(&args).ok();
            let got: BTreeMap<u64, Value> = out
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .map(|v| (v["offset"].as_u64().unwrap(), v))
                .collect();
            for step in steps["steps"].as_array().unwrap() {
                let at = &got[&step["offset"].as_u64().unwrap()];
                for rule in at["matched"].as_array().unwrap() {
                    matched.entry(agent.clone()).or_default().insert(rule.as_str().unwrap().into());
                }
                checked += 1;
                for key in ["usage_turn_end", "usage_exit"] {
                    if !step[key].is_null() && step[key] != at[key] {
                        failures.push(format!(
                            "{agent}/{name} step {}: {key} read {}, expected {}",
                            step["label"], at[key], step[key]
                        ));
                    }
                }
                if let Some(expect) = step["expect"].as_str()
                    && at["state"] != expect
                {
                    failures.push(format!(
                        "{agent}/{name} step {} (offset {}): expected {expect}, read {} (rule {})",
                        step["label"], step["offset"], at["state"], at["rule"]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 60, "only {checked} recorded steps found");

    // Every state rule of a profile that has recordings must fire somewhere.
    let profiles = env.reins(&["adapters", "list", "--json"]).ok().json();
    for profile in profiles.as_array().unwrap() {
        let name = profile["name"].as_str().unwrap();
        let Some(seen) = matched.get(name) else { continue };
        for rule in profile["rules"].as_array().unwrap() {
            let rule = rule.as_str().unwrap();
            assert!(seen.contains(rule), "{name}: rule {rule} matches no recorded screen");
        }
    }
    for agent in ["claude", "codex", "gemini"] {
        assert!(matched.contains_key(agent), "no recordings for {agent}");
    }
}
