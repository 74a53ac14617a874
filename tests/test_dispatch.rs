//! `reins dispatch` and `reins agents`: availability-first choice,
//! failover after repeated failures, ladders that climb on a verifier's
//! rejection, done checks, the outcome store, clean-up on timeout and
//! SIGTERM, and bad input — all with mock agents configured in config.toml.

use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, eventually, field};

/// Mock-backed agents: `cheap` crashes before it finishes anything,
/// `strong` works, `ghost` cannot run at all, `lo`/`hi` answer with a
/// verdict for the verifier (`judge`) to repeat, `garb` with nonsense.
const CONFIG: &str = r#"
[agents.ghost]
agent = "generic"
args = ["no-such-agent-program-here"]

[agents.cheap]
agent = "mock"
model = "mini"
args = ["--work", "5", "--crash-after", "0.5"]

[agents.strong]
agent = "mock"
model = "big"
args = ["--work", "0.2"]

[agents.judge]
agent = "mock"
args = ["--work", "0.1"]

[agents.lo]
agent = "mock"
args = ["--work", "0.2", "--reply", "done [[reply:{\"accept\": false, \"feedback\": \"handle the empty input\"}]]"]

[agents.hi]
agent = "mock"
args = ["--work", "0.2", "--reply", "done [[reply:{\"accept\": true, \"feedback\": \"looks right\"}]]"]

[agents.top]
agent = "mock"

[agents.garb]
agent = "mock"
args = ["--work", "0.2", "--reply", "done [[reply:sure, all good]]"]
"#;

fn env() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(CONFIG);
    env
}

/// The dispatcher's own log.
fn log(env: &TestEnv, id: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(env.state_dir().join("dispatches").join(id).join("events.jsonl"))
            .unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn availability_first_choice_and_failover_after_two_failures() {
    let env = env();
    let agents = env.reins(&["agents", "--json"]).ok().json();
    let row = |name: &str| {
        agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap().clone()
    };
    assert_eq!(row("ghost")["availability"]["available"], false, "{agents}");
    assert!(
        row("ghost")["availability"]["reason"].as_str().unwrap().contains("not on PATH"),
        "{agents}"
    );
    assert_eq!(row("cheap")["availability"]["available"], true);
    assert_eq!(row("cheap")["source"], "config");
    assert_eq!(row("mock")["source"], "builtin");

    let run = env
        .reins(&[
            "dispatch",
            "--prefer",
            "ghost,cheap,strong",
            "--message",
            "write the report",
            "--id",
            "fo",
            "--label",
            "docs",
            "--json",
        ])
        .ok();
    let out = run.json();
    assert_eq!(out["result"], "accepted", "{out}");
    assert_eq!((out["agent"].as_str(), out["session"].as_str()), (Some("strong"), Some("fo-c")));
    let attempts = out["attempts"].as_array().unwrap();
    assert_eq!(field(attempts, "agent"), ["cheap", "cheap", "strong"]);
    assert_eq!(field(attempts, "session"), ["fo", "fo-b", "fo-c"]);
    assert_eq!(field(attempts, "result"), ["failed", "failed", "accepted"]);
    assert!(attempts[0]["reason"].as_str().unwrap().contains("exit code 3"), "{out}");
    // One line per attempt on stderr.
    assert_eq!(run.stderr.matches(") failed: ").count(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("skipping ghost"), "{}", run.stderr);

    // The retry on cheap and the failover brief say why the last one failed.
    assert!(env.brief("fo").contains("write the report"));
    assert!(!env.brief("fo").contains("not accepted"));
    for id in ["fo-b", "fo-c"] {
        let text = env.brief(id);
        assert!(text.contains("was not accepted") && text.contains("exit code 3"), "{text}");
    }
    // The model reached the agent (the mock shows it in its banner).
    let screen = env.reins(&["logs", "--id", "fo-c"]).ok().stdout;
    assert!(screen.contains("model big"), "{screen}");

    // The store matches, and so does the log.
    let rows = env.dispatch_history("fo");
    assert_eq!(field(&rows, "session"), ["fo", "fo-b", "fo-c"]);
    assert_eq!(field(&rows, "result"), ["failed", "failed", "accepted"]);
    assert_eq!(field(&rows, "model"), ["mini", "mini", "big"]);
    assert!(rows.iter().all(|r| r["labels"] == serde_json::json!(["docs"])));
    assert!(rows.iter().all(|r| r["task_hash"] == out["task_hash"] && r["ended_at"].is_string()));
    let log = log(&env, "fo");
    let types: Vec<&str> = log.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "dispatch_started",
            "skipped",
            "attempt_started",
            "attempt",
            "attempt_started",
            "attempt",
            "cooldown",
            "attempt_started",
            "attempt",
            "dispatch_ended"
        ]
    );
    assert!(log.iter().all(|e| e["id"] == "fo" && e["schema_version"] == 1));
    // Every session it started is gone.
    for id in ["fo", "fo-b", "fo-c"] {
        assert!(!env.listed(id), "{id} still runs");
    }

    // cheap now cools down: the next dispatch goes straight to strong.
    let agents = env.reins(&["agents", "--json", "cheap"]).ok().json();
    let cheap = &agents["agents"][0]["availability"];
    assert_eq!(cheap["available"], false, "{agents}");
    assert!(cheap["cooldown"]["left_s"].as_f64().unwrap() > 500.0, "{agents}");
    let out = env
        .reins(&[
            "dispatch",
            "--prefer",
            "cheap,strong",
            "--message",
            "again",
            "--id",
            "fo2",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(field(out["attempts"].as_array().unwrap(), "agent"), ["strong"], "{out}");
}

#[test]
fn a_ladder_climbs_on_rejection_with_feedback_and_stops_on_accept() {
    let env = env();
    let out = env
        .reins(&[
            "dispatch",
            "--ladder",
            "lo:small,hi:large,top:huge",
            "--verifier",
            "judge",
            "--message",
            "parse the config",
            "--id",
            "lad",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["result"], "accepted", "{out}");
    let attempts = out["attempts"].as_array().unwrap();
    assert_eq!(field(attempts, "agent"), ["lo", "hi"], "stops on accept: top never runs");
    assert_eq!(field(attempts, "model"), ["small", "large"]);
    assert_eq!(attempts[0]["rung"], 1);
    assert_eq!(attempts[1]["rung"], 2);
    assert_eq!(field(attempts, "result"), ["rejected", "accepted"]);
    assert_eq!(field(attempts, "verdict"), ["reject", "accept"]);
    assert_eq!(field(attempts, "feedback"), ["handle the empty input", "looks right"]);
    assert_eq!(field(attempts, "verifier"), ["lad-verify", "lad-b-verify"]);

    // The verifier saw the task and the worker's answer; the next rung got
    // the verifier's feedback in its brief.
    let review = env.brief("lad-verify");
    assert!(review.contains("parse the config") && review.contains("handle the empty input"));
    let second = env.brief("lad-b");
    assert!(second.starts_with("[reins session id=lad-b] parse the config"), "{second}");
    assert!(second.contains("The reviewer's feedback: handle the empty input"), "{second}");
    let delivered = env.events("lad-b").into_iter().find(|e| e["type"] == "delivered").unwrap();
    assert!(delivered["preview"].as_str().unwrap().contains("parse the config"), "{delivered}");
    let screen = env.reins(&["logs", "--id", "lad-b"]).ok().stdout;
    assert!(screen.contains("model large"), "{screen}");

    let rows = env.dispatch_history("lad");
    assert_eq!(field(&rows, "result"), ["rejected", "accepted"]);
    assert_eq!(field(&rows, "feedback"), ["handle the empty input", "looks right"]);
    let attempt_events: Vec<Value> =
        log(&env, "lad").into_iter().filter(|e| e["type"] == "attempt").collect();
    assert_eq!(attempt_events.len(), 2);
    assert_eq!(attempt_events[0]["verdict"], "reject");
    assert_eq!(attempt_events[0]["rung"], 1);
    for id in ["lad", "lad-b", "lad-verify", "lad-b-verify"] {
        assert!(!env.listed(id), "{id} still runs");
    }
}

#[test]
fn a_verifier_that_answers_garbage_rejects() {
    let env = env();
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "garb",
            "--verifier",
            "judge",
            "--max-failures",
            "1",
            "--message",
            "tidy up",
            "--id",
            "gb",
            "--json",
        ])
        .code(1)
        .json();
    assert_eq!(out["result"], "failed");
    let a = &out["attempts"][0];
    assert_eq!(a["result"], "rejected", "{out}");
    assert_eq!(a["verdict"], "reject");
    assert!(a["feedback"].as_str().unwrap().contains("no JSON verdict"), "{out}");
    assert_eq!(env.dispatch_history("gb")[0]["verdict"], "reject");
}

#[test]
fn a_failing_done_check_fails_the_attempt() {
    let env = env();
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "strong",
            "--max-failures",
            "1",
            "--done",
            "cmd:echo boom; exit 3",
            "--message",
            "make the tests pass",
            "--id",
            "dc",
            "--json",
        ])
        .code(1)
        .json();
    let a = &out["attempts"][0];
    assert_eq!(a["result"], "failed", "{out}");
    assert!(
        a["reason"].as_str().unwrap().contains("cmd:echo boom; exit 3 failed: exit 3"),
        "{out}"
    );
    let output = a["checks"][0]["output"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(output).unwrap(), "boom\n");
    assert!(env.brief("dc").contains("reins checks: cmd:echo boom; exit 3"));
    // A passing check and a present file: accepted.
    std::fs::write(env.work.join("report.md"), "ok").unwrap();
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "strong",
            "--done",
            "cmd:true",
            "--done",
            "file:report.md",
            "--message",
            "write report.md",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["result"], "accepted", "{out}");
    let checks = &out["attempts"][0]["checks"];
    assert_eq!((checks[0]["ok"].as_bool(), checks[1]["ok"].as_bool()), (Some(true), Some(true)));
}

#[test]
fn timeout_and_sigterm_stop_every_session_it_started() {
    let env = env();
    let run = env
        .reins(&[
            "dispatch",
            "--agent",
            "strong",
            "--message",
            "[[wait:60]] slow work",
            "--id",
            "to",
            "--timeout",
            "2s",
            "--json",
        ])
        .code(124);
    let out = run.json();
    assert_eq!(out["result"], "timeout");
    assert_eq!(out["attempts"][0]["result"], "timeout");
    assert!(!env.listed("to"), "the session outlived its dispatcher");
    assert_eq!(env.dispatch_history("to")[0]["result"], "timeout");

    let mut child = env.spawn(&[
        "dispatch",
        "--agent",
        "strong",
        "--message",
        "[[wait:60]] slow work",
        "--id",
        "st",
    ]);
    env.wait_event("st", Duration::from_secs(15), |e| e["type"] == "turn_started");
    crate::common::signal(child.id() as i32, 15);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    eventually(Duration::from_secs(5), "st to be stopped", || !env.listed("st"));
    assert_eq!(env.dispatch_history("st")[0]["result"], "interrupted");
}

#[test]
fn bad_input_is_a_usage_error_with_a_hint() {
    let env = env();
    let bad = |args: &[&str], said: &str| {
        let run = env.reins(args).code(2);
        assert!(run.stderr.contains(said), "{said:?} not in:\n{}", run.stderr);
        // Our errors carry a hint; clap's name the forms and point at --help.
        assert!(run.stderr.contains("hint:") || run.stderr.contains("--help"), "{}", run.stderr);
    };
    bad(&["dispatch", "--agent", "nobody", "--message", "x"], "no agent named \"nobody\"");
    bad(&["dispatch", "--ladder", "lo:a,nobody:b", "--message", "x"], "no agent named \"nobody\"");
    bad(&["dispatch", "--agent", "strong", "--verifier", "nobody", "--message", "x"], "nobody");
    bad(&["dispatch", "--agent", "strong", "--task", "missing.md"], "--task missing.md");
    bad(&["dispatch", "--agent", "strong"], "what is the task?");
    bad(
        &["dispatch", "--agent", "strong", "--message", "x", "--done", "tests"],
        "not a done check",
    );
    bad(&["dispatch", "--agent", "strong", "--message", "  "], "the task is empty");
    // Watch options are checked before anything starts.
    let watch = ["dispatch", "--agent", "strong", "--message", "x", "--watch"];
    bad(&[&watch[..], &["--preset", "fast"]].concat(), "invalid value 'fast' for '--preset");
    bad(
        &[&watch[..], &["--stall-after", "soon"]].concat(),
        "invalid value 'soon' for '--stall-after",
    );
    bad(&["dispatch", "--agent", "strong", "--message", "x", "--nudge", "go"], "--watch");
    bad(&["agents", "nobody"], "no agent named \"nobody\"");

    env.write_config("[agents.ok]\nagent = \"mock\"\n\n[agents.typo]\nagnet = \"mock\"\n");
    let config = env.path().join("config/reins/config.toml");
    let shown = format!("{}:4: [agents.typo]: unknown field `agnet`", config.display());
    bad(&["agents"], &shown);
    bad(&["dispatch", "--message", "x"], &shown);
    env.write_config("[agents.x]\nagent = \"mock\"\nmax_concurrent = \"two\"\n");
    bad(&["agents"], "config.toml:1: [agents.x]: invalid type");
    env.write_config("[agents.x\n");
    bad(&["agents"], "config.toml:1:");
    // Nothing was started or recorded.
    assert!(!env.state_dir().join("dispatches").exists());
}

#[test]
fn probes_are_recorded_and_load_counts_against_the_cap() {
    let env = env();
    env.write_config(&format!("{CONFIG}\n[agents.capped]\nagent = \"mock\"\nmax_concurrent = 1\n"));
    let out = env.reins(&["agents", "--probe", "strong", "--json"]).ok().json();
    let strong = &out["agents"][0];
    assert_eq!(strong["probe"]["ok"], true, "{out}");
    assert!(strong["probe"]["latency_s"].as_f64().unwrap() > 0.0, "{out}");
    assert_eq!(strong["availability"]["last_probe"]["ok"], true);

    // A probe that fails makes the agent unavailable (it answers --version
    // but cannot complete a turn).
    let out = env.reins(&["agents", "--probe", "cheap", "--json"]).code(1).json();
    let cheap = &out["agents"][0];
    assert_eq!(cheap["probe"]["ok"], false, "{out}");
    assert_eq!(cheap["availability"]["available"], false);
    assert!(cheap["availability"]["reason"].as_str().unwrap().contains("last probe failed"));
    let probe_session = cheap["probe"]["session"].as_str().unwrap();
    assert!(!env.listed(probe_session));

    // A live session of `capped` puts it at its cap.
    env.start("cap1", &["--meta", r#"{"reins_agent":"capped"}"#]);
    let out = env.reins(&["agents", "capped", "--json"]).ok().json();
    let capped = &out["agents"][0]["availability"];
    assert_eq!((capped["load"].as_u64(), capped["max_concurrent"].as_u64()), (Some(1), Some(1)));
    assert_eq!(capped["available"], false, "{out}");
    assert!(capped["reason"].as_str().unwrap().contains("at its cap: 1 of 1"), "{out}");
    // ...and dispatch passes it over for the next one.
    let out = env
        .reins(&["dispatch", "--prefer", "capped,strong", "--message", "x", "--json"])
        .ok()
        .json();
    assert_eq!(field(out["attempts"].as_array().unwrap(), "agent"), ["strong"], "{out}");
}

#[test]
fn a_watched_worker_is_nudged_and_its_next_turn_counts() {
    let env = env();
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "strong",
            "--message",
            "[[stall]] go",
            "--id",
            "wn",
            "--watch",
            "--stall-after",
            "1s",
            "--max-resumes",
            "1",
            "--attempt-timeout",
            "30s",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["result"], "accepted", "{out}");
    let kinds: Vec<String> =
        env.events("wn").iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert!(kinds.contains(&"stall".to_string()) && kinds.contains(&"resume".to_string()));
    assert!(!env.listed("wn"));
}

#[test]
fn without_a_choice_agents_take_turns() {
    let env = TestEnv::new();
    env.write_config(
        "[agents.a]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
         [agents.b]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n",
    );
    let first = |id: &str| {
        let out = env.reins(&["dispatch", "--message", "x", "--id", id, "--json"]).ok().json();
        out["agent"].as_str().unwrap().to_string()
    };
    assert_eq!([first("r1"), first("r2"), first("r3")], ["a", "b", "a"]);
}

#[test]
fn routing_rules_send_a_task_to_the_agents_that_suit_it() {
    let env = TestEnv::new();
    let config = "[agents.a]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
                  [agents.b]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
                  [agents.c]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n\n\
                  [[route]]\nwhen = [\"(?i)docs\"]\nprefer = [\"b\"]\n\n\
                  [[route]]\nwhen = [\"(?i)flaky\", \"label:hard\"]\nprefer = [\"c\", \"b\"]\n";
    env.write_config(config);
    let dispatch = |id: &str, extra: &[&str]| {
        let mut args = vec!["dispatch", "--id", id, "--json"];
        args.extend_from_slice(extra);
        env.reins(&args).ok()
    };
    // The best-scoring rule wins: two of its patterns match.
    let run = dispatch("r1", &["--message", "fix the flaky docs test", "--label", "hard"]);
    assert_eq!(run.json()["agent"], "c", "{}", run.stderr);
    assert!(
        run.stderr.contains("rule at line 17 (score 2: (?i)flaky, label:hard)"),
        "{}",
        run.stderr
    );
    let started = log(&env, "r1").into_iter().find(|e| e["type"] == "dispatch_started").unwrap();
    assert_eq!(started["route"], "route");
    assert_eq!(started["agents"], serde_json::json!(["c", "b", "a"]), "the pool follows");
    // One pattern each: file order.
    assert_eq!(dispatch("r2", &["--message", "flaky docs"]).json()["agent"], "b");
    // No rule matches: round robin over the pool.
    let run = dispatch("r3", &["--message", "refactor the parser"]);
    assert!(!run.stderr.contains("routed by"), "{}", run.stderr);
    // A preferred agent at its cap fails over to the rest of the pool.
    env.write_config(&config.replace("[agents.c]\n", "[agents.c]\nmax_concurrent = 1\n"));
    env.reins(&["run", "mock", "--id", "busy-c", "--detach", "--meta", r#"{"reins_agent":"c"}"#])
        .ok();
    let run = dispatch("r4", &["--message", "flaky", "--label", "hard"]);
    assert_eq!(run.json()["agent"], "b", "{}", run.stderr);
    env.reins(&["stop", "--id", "busy-c"]).ok();

    // Bad rules are usage errors at their line.
    let path = env.path().join("config/reins/config.toml");
    for (rule, said) in [
        ("when = [\"(\"]\nprefer = [\"a\"]", "is not a regex"),
        ("when = [\"x\"]\nprefer = [\"ghost\"]", "\"ghost\", which is no agent"),
        ("when = [\"x\"]\nprefer = [\"a\"]\ncolour = 1", "unknown field `colour`"),
    ] {
        env.write_config(&format!("[agents.a]\nagent = \"mock\"\n\n[[route]]\n{rule}\n"));
        let run = env.reins(&["dispatch", "--message", "x"]).code(2);
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
        if said != "unknown field `colour`" {
            assert!(run.stderr.contains(&format!("{}:4:", path.display())), "{}", run.stderr);
        }
    }
}

#[test]
fn an_agent_without_credentials_is_passed_over() {
    let mut env = TestEnv::new();
    // A profile that needs a token, as claude, codex and gemini do.
    let mock = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/mock.toml"),
    )
    .unwrap();
    let keyed = mock.replacen("name = \"mock\"", "name = \"keyed\"", 1).replacen(
        "[launch]",
        "[auth]\nenv = [\"REINS_TEST_TOKEN\"]\nlogin = \"set REINS_TEST_TOKEN\"\n\n[launch]",
        1,
    );
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keyed.toml"), keyed).unwrap();
    env.write_config(
        "[agents.locked]\nagent = \"keyed\"\nargs = [\"--work\", \"0.1\"]\n\n\
         [agents.open]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n",
    );
    let locked = |env: &TestEnv| {
        let out = env.reins(&["agents", "locked", "--json"]).ok().json();
        out["agents"][0]["availability"].clone()
    };
    let a = locked(&env);
    assert_eq!(a["available"], false, "{a}");
    let reason = a["reason"].as_str().unwrap();
    assert!(reason.contains("no credentials found (looked for env REINS_TEST_TOKEN)"), "{reason}");
    assert!(reason.ends_with(": set REINS_TEST_TOKEN"), "{reason}");
    let run = env.reins(&["dispatch", "--prefer", "locked,open", "--message", "x", "--json"]).ok();
    assert_eq!(run.json()["agent"], "open", "{}", run.stderr);
    assert!(run.stderr.contains("skipping locked: no credentials found"), "{}", run.stderr);

    env.set_env("REINS_TEST_TOKEN", Some("tok-value-never-shown"));
    let a = locked(&env);
    assert_eq!(a["available"], true, "{a}");
    assert_eq!(a["auth"], "env REINS_TEST_TOKEN");
    let table = env.reins(&["agents"]).ok().stdout;
    assert!(table.contains("credentials: env REINS_TEST_TOKEN"), "{table}");
    assert!(!table.contains("tok-value"), "{table}");
}

/// `max_concurrent` was check-then-act: dispatchers started together all
/// counted the last place free and all started a session. The sessions of
/// a capped agent must never overlap, however many dispatchers race.
#[test]
fn racing_dispatchers_never_run_more_sessions_than_the_cap() {
    let env = TestEnv::new();
    env.write_config(
        "[agents.one]\nagent = \"mock\"\nargs = [\"--work\", \"1\"]\nmax_concurrent = 1\n",
    );
    let ids: Vec<String> = (1..=4).map(|n| format!("race{n}")).collect();
    let children: Vec<_> = ids
        .iter()
        .map(|id| {
            env.spawn(&["dispatch", "--prefer", "one", "--message", "x", "--id", id, "--json"])
        })
        .collect();
    let runs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    // Each session's life, from its `started` to its `exited` event.
    let mut lives = Vec::new();
    for (id, run) in ids.iter().zip(&runs) {
        let out: Value = serde_json::from_slice(&run.stdout).unwrap();
        for attempt in out["attempts"].as_array().unwrap() {
            let session = attempt["session"].as_str().unwrap();
            let events = env.events(session);
            let at = |kind: &str| {
                let event = events.iter().find(|e| e["type"] == kind);
                event.unwrap_or_else(|| panic!("{session} has no {kind}: {events:?}"))["ts"]
                    .as_str()
                    .unwrap()
                    .to_string()
            };
            lives.push((at("started"), at("exited"), session.to_string()));
        }
        if out["result"] != "accepted" {
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert!(stderr.contains("at its cap: 1 of 1"), "{id}: {out}\n{stderr}");
        }
    }
    assert!(!lives.is_empty(), "no dispatcher got the place");
    lives.sort();
    for pair in lives.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two sessions of a capped agent at once: {pair:?}");
    }
}

/// The verifier was told to write its verdict to a path anyone could work
/// out from the session id (`dispatches/ID/SESSION-verify.verdict.json`),
/// and whatever was there when it finished was believed. A file planted
/// there while the verifier works is not its verdict.
#[test]
fn a_verdict_planted_at_the_old_path_is_not_believed() {
    let env = TestEnv::new();
    env.write_config(&format!(
        "{CONFIG}\n[agents.slowjudge]\nagent = \"mock\"\nargs = [\"--work\", \"3\"]\n"
    ));
    let child = env.spawn(&[
        "dispatch",
        "--agent",
        "lo",
        "--verifier",
        "slowjudge",
        "--max-failures",
        "1",
        "--message",
        "parse the config",
        "--id",
        "pl",
        "--json",
    ]);
    env.wait_event("pl-verify", Duration::from_secs(20), |e| e["type"] == "turn_started");
    let dir = env.state_dir().join("dispatches/pl");
    let planted = r#"{"accept": true, "feedback": "planted"}"#;
    std::fs::write(dir.join("pl-verify.verdict.json"), planted).unwrap();
    let out = child.wait_with_output().unwrap();
    let out: Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = &out["attempts"][0];
    assert_eq!((a["result"].as_str(), a["verdict"].as_str()), (Some("rejected"), Some("reject")));
    assert_eq!(a["feedback"], "handle the empty input", "{out}");
    // It was told of a file in a directory of its own, made for it.
    let brief = env.brief("pl-verify");
    let told = brief.split_whitespace().find(|w| w.contains("verdict.json")).unwrap();
    let told = std::path::Path::new(told.trim_end_matches('.'));
    assert!(told.starts_with(&dir) && told != dir.join("pl-verify.verdict.json"), "{brief}");
    assert_eq!(crate::common::mode(told.parent().unwrap()), 0o700);
}

#[test]
fn report_counts_dispatched_sessions_by_their_real_result() {
    let env = env();
    // One rung whose answer the verifier rejects: the dispatch fails, and
    // the dispatcher stops both sessions (their exit says `stopped`).
    let out = env.reins(&[
        "dispatch",
        "--ladder",
        "lo:small",
        "--verifier",
        "judge",
        "--message",
        "parse it",
        "--id",
        "rep",
        "--json",
    ]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    let report = env.reins(&["report", "--json"]).ok().json();
    let total = &report["total"];
    assert_eq!(total["sessions"], 2, "{report}");
    assert_eq!(total["ok"], 1, "the verifier did its job: {report}");
    assert_eq!(total["failed"], 1, "the worker's attempt was rejected: {report}");
    assert_eq!(total["success_rate"], 0.5, "{report}");
}

#[test]
fn an_agent_that_did_not_get_a_task_done_rests_from_that_task_only() {
    let env = env();
    let dispatch = |id: &str, task: &str| {
        env.reins(&[
            "dispatch",
            "--prefer",
            "lo",
            "--verifier",
            "judge",
            "--max-failures",
            "1",
            "--message",
            task,
            "--id",
            id,
        ])
    };
    // lo works, but its answer is rejected: the task was not done.
    let first = dispatch("t1", "task A");
    assert_eq!(first.code, 1, "{}{}", first.stdout, first.stderr);
    let agents = env.reins(&["agents", "--json", "lo"]).ok().json();
    assert_eq!(agents["agents"][0]["availability"]["available"], true, "{agents}");
    // Another task still gets lo.
    let other = dispatch("t2", "task B");
    assert!(other.stdout.contains("no attempt accepted after 1 attempt(s)"), "{}", other.stdout);
    // The same task again: lo rests from it, and the dispatch says why and
    // how to override.
    let again = dispatch("t3", "task A");
    assert_eq!(again.code, 1);
    assert!(again.stdout.contains("no agent could take the task"), "{}", again.stdout);
    assert!(again.stdout.contains("lo: cooling down until"), "{}", again.stdout);
    assert!(again.stdout.contains("for this task"), "{}", again.stdout);
    assert!(again.stdout.contains("--agent NAME"), "{}", again.stdout);
    let json = env
        .reins(&[
            "dispatch",
            "--prefer",
            "lo",
            "--verifier",
            "judge",
            "--message",
            "task A",
            "--id",
            "t4",
            "--json",
        ])
        .json();
    assert_eq!(json["skipped"][0]["agent"], "lo", "{json}");
    assert!(json["skipped"][0]["reason"].as_str().unwrap().contains("for this task"), "{json}");
}
