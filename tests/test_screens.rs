//! Recorded screens of the real agents: every profile reads every recorded
//! step as it should, and every state rule of a profile with recordings is
//! exercised by at least one of them. Adding an agent = its TOML profile +
//! a directory `tests/fixtures/screens/<agent>/` with `<name>.bytes` (what
//! the agent wrote to its terminal) and `<name>.steps.json` (byte offsets
//! and the state expected there).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestEnv;
use crate::support::agents::{Agent, AgentHome, agents_bin_dir, in_isolated_netns};

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

/// Rows of a screen as compared with tmux: trailing empty rows dropped.
fn screen_rows(text: &str) -> Vec<&str> {
    let mut rows: Vec<&str> = text.split('\n').collect();
    while rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    rows
}

/// Every recording with tmux's reference screens (`<name>.ref/NN_<label>.txt`:
/// `tmux capture-pane -p` of a tmux 3.3a pane fed the same bytes up to step
/// NN) replays to exactly that screen, character for character: the
/// no-break spaces after Claude's `❯` and `⎿`, wide characters, and `⚠️`
/// (U+26A0 U+FE0F), which vt100 alone draws one column wider than tmux.
/// So do the synthetic streams of `tests/fixtures/tmux-screens/` (scroll
/// regions with IND and NEL, which vt100 alone ignores; leading blanks).
#[test]
fn recorded_screens_equal_tmux_character_for_character() {
    let env = TestEnv::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/screens");
    let mut compared = 0;
    let mut failures = Vec::new();
    for agent_dir in std::fs::read_dir(&root).unwrap().flatten() {
        let agent = agent_dir.file_name().into_string().unwrap();
        for entry in std::fs::read_dir(agent_dir.path()).unwrap().flatten() {
            let file_name = entry.file_name().into_string().unwrap();
            let Some(name) = file_name.strip_suffix(".ref") else { continue };
            let steps_path = agent_dir.path().join(format!("{name}.steps.json"));
            let steps: Value =
                serde_json::from_str(&std::fs::read_to_string(&steps_path).unwrap()).unwrap();
            let steps = steps["steps"].as_array().unwrap();
            let mut refs: Vec<_> = std::fs::read_dir(entry.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            refs.sort();
            assert_eq!(refs.len(), steps.len(), "{agent}/{name}: one reference screen per step");
            let bytes = agent_dir.path().join(format!("{name}.bytes"));
            let bytes = bytes.to_str().unwrap();
            let mut args = vec!["adapters", "replay", "--adapter", &agent, bytes, "--screens"];
            let offsets: Vec<String> = steps.iter().map(|s| s["offset"].to_string()).collect();
            for offset in &offsets {
                args.extend(["--at", offset]);
            }
            let out = env.reins(&args).ok();
            let screens: BTreeMap<u64, String> = out
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .map(|v| (v["offset"].as_u64().unwrap(), v["screen"].as_str().unwrap().into()))
                .collect();
            for (i, file) in refs.iter().enumerate() {
                let step = &steps[i];
                let label = step["label"].as_str().unwrap();
                assert_eq!(file, &format!("{i:02}_{label}.txt"), "{agent}/{name}");
                let want = std::fs::read_to_string(entry.path().join(file)).unwrap();
                let got = &screens[&step["offset"].as_u64().unwrap()];
                compared += 1;
                let (want, got) = (screen_rows(&want), screen_rows(got));
                if want != got {
                    let rows = (0..want.len().max(got.len()))
                        .filter(|r| want.get(*r) != got.get(*r))
                        .map(|r| {
                            format!(
                                "  row {r}\n    tmux: {:?}\n    reins: {:?}",
                                want.get(r),
                                got.get(r)
                            )
                        })
                        .collect::<Vec<_>>();
                    failures.push(format!("{agent}/{name} {label}:\n{}", rows.join("\n")));
                }
            }
        }
    }
    // Synthetic streams for what the recordings do not show (40x10).
    let synthetic = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tmux-screens");
    for entry in std::fs::read_dir(&synthetic).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "bytes") {
            continue;
        }
        let bytes = path.to_str().unwrap();
        let args = ["adapters", "replay", "--adapter", "generic", bytes, "--size", "40x10"];
        let out = env.reins(&[&args[..], &["--screens"]].concat()).ok().json();
        let want = std::fs::read_to_string(path.with_extension("txt")).unwrap();
        compared += 1;
        let (want, got) = (screen_rows(&want), screen_rows(out["screen"].as_str().unwrap()));
        if want != got {
            failures.push(format!("{}:\n  tmux:  {want:?}\n  reins: {got:?}", path.display()));
        }
    }
    assert!(failures.is_empty(), "screens differ from tmux's:\n{}", failures.join("\n"));
    assert!(compared >= 78, "only {compared} reference screens found");
}

/// Polls until `pane` and `pane --tmux` of session `id` agree (the tmux
/// pane draws what the host relays a moment after the host's emulator has
/// it, and no event says when tmux is done), or fails showing both.
fn pane_equals_tmux(env: &TestEnv, id: &str, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pane = env.reins(&["pane", "--id", id]).ok().stdout;
        let tmux = env.reins(&["pane", "--id", id, "--tmux"]).ok().stdout;
        if pane == tmux {
            return;
        }
        if Instant::now() > deadline {
            assert_eq!(pane, tmux, "{when}: `pane` (left) and `pane --tmux` (right) differ");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The real Claude Code in tmux: the host's screen (`pane`) and tmux's
/// (`pane --tmux`) agree character for character, at the prompt with its
/// logo (whose first row starts with a space that `pane --tmux` used to
/// lose), and after a turn with an approved tool call (`⎿` and a no-break
/// space).
#[test]
fn real_claude_pane_equals_tmux_capture() {
    let missing = if agents_bin_dir().is_none() {
        Some("the agent CLIs are not installed (scripts/install-agents)")
    } else if !in_isolated_netns() {
        Some("not inside a loopback-only network namespace (scripts/netns-run)")
    } else {
        None
    };
    let Some((env, _model, home)) = crate::support::live::world(missing, |dir, url| {
        AgentHome::seed(Agent::Claude, &dir.join("claude"), url)
    }) else {
        return;
    };
    let work = home.work.to_str().unwrap();
    env.reins(&["run", "claude", "--id", "cl", "--tmux", "--cwd", work]).ok();
    let ready = env.reins(&["wait", "--id", "cl", "--until", "ready", "--timeout", "60s"]);
    assert_eq!(ready.code, 0, "{}", env.reins(&["pane", "--id", "cl"]).stdout);
    let logo = env.reins(&["pane", "--id", "cl", "--tmux"]).ok().stdout;
    assert!(logo.starts_with(" ▐▛███▜▌"), "the logo row keeps its leading space:\n{logo}");
    pane_equals_tmux(&env, "cl", "at the prompt");

    env.reins(&["send", "--id", "cl", "--timeout", "60s", "[[run:touch x.txt]] go"]).ok();
    let blocked = env.reins(&["wait", "--id", "cl", "--until", "blocked", "--timeout", "60s"]);
    assert_eq!(blocked.code, 0, "{}", env.reins(&["pane", "--id", "cl"]).stdout);
    env.reins(&["approve", "--id", "cl"]).ok();
    let done = env.reins(&["wait", "--id", "cl", "--until", "task_complete", "--timeout", "60s"]);
    assert_eq!(done.code, 0, "{}", env.reins(&["pane", "--id", "cl"]).stdout);
    let screen = env.reins(&["pane", "--id", "cl"]).ok().stdout;
    assert!(
        screen.contains("⎿ \u{a0}"),
        "Claude's tool result row, no-break space and all:\n{screen}"
    );
    pane_equals_tmux(&env, "cl", "after an approved tool call");
}
