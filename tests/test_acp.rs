//! The ACP transport against a scripted agent (tests/fixtures/acp-fake-agent.py):
//! what the real agents cannot be made to do on demand — never answer,
//! write garbage, die mid-turn, ask to sign in, end a turn with each stop
//! reason, ignore the end of their input. (The real Gemini CLI, OpenCode
//! and Qwen Code are driven in test_acp_real.)

use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, have_tool, session_members};

/// A test environment with an `acpfake` profile: the fake agent in `mode`,
/// handshake requests timing out after `timeout_ms`.
fn fake_agent(mode: &str, timeout_ms: u64) -> Option<TestEnv> {
    if !have_tool("python3") {
        return None;
    }
    let env = TestEnv::new();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/acp-fake-agent.py");
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let command = ["python3".to_string(), script.display().to_string(), mode.to_string()];
    let profile = format!(
        r#"name = "acpfake"
summary = "a scripted ACP agent"
transport = "acp"

[acp]
command = {}
request_timeout_ms = {timeout_ms}
auth = [{{ method = "fake-key", env = ["FAKE_KEY"] }}]

[launch]
command = ["python3"]

[stop]
grace_ms = 1000
term_grace_ms = 1000
"#,
        serde_json::to_string(&command).unwrap()
    );
    std::fs::write(dir.join("acpfake.toml"), profile).unwrap();
    Some(env)
}

fn start(env: &TestEnv, id: &str, extra: &[&str]) -> Value {
    let mut args = vec!["run", "acpfake", "--id", id, "--detach"];
    args.extend_from_slice(extra);
    let started = env.reins(&args).ok().json();
    env.reins(&["wait", "--id", id, "--until", "ready", "--timeout", "20s"]).ok();
    started
}

fn send_and_wait(env: &TestEnv, id: &str, text: &str) -> Value {
    env.reins(&["send", "--id", id, "--wait-for-idle", "--timeout", "20s", text]).ok().json()
}

#[test]
fn acp_turns_are_queued_fenced_and_shown_with_their_usage() {
    let Some(env) = fake_agent("good", 5000) else { return };
    let started = start(&env, "f", &[]);
    assert_eq!(env.events("f")[0]["transport"], "acp");
    // A slow turn, and a message sent meanwhile: queued, then its own turn.
    let first = env.reins(&["send", "--id", "f", "--no-wait", "slow 1 first"]).ok().json();
    let second = env.reins(&["send", "--id", "f", "--no-wait", "tools second"]).ok().json();
    assert_eq!(second["status"], "queued", "{second}");
    // With a message still queued, `wait` targets that message's turn.
    let done = env.reins(&["wait", "--id", "f", "--until", "task_complete", "--timeout", "20s"]);
    let done = done.ok().json();
    assert_eq!(done["turn"], 2, "{done}");
    assert_eq!(done["event"]["message_id"], second["message_id"], "{done}");
    let first_done = env
        .reins(&["wait", "--id", "f", "--message", first["message_id"].as_str().unwrap()])
        .ok()
        .json();
    assert_eq!(first_done["turn"], 1, "{first_done}");
    assert_eq!(first_done["event"]["status"], "completed");

    let pane = env.reins(&["pane", "--id", "f"]).ok().stdout;
    for line in [
        "acp: Fake ACP 0.0.1",
        "› slow 1 first",
        "• FAKE_OK slow 1 first",
        "─ turn-1 (completed)",
        "plan:\n  [x] look\n  [ ] answer",
        "$ ls\n  a.txt",
        "• FAKE_OK tools second",
    ] {
        assert!(pane.contains(line), "{line:?} not in the pane:\n{pane}");
    }
    let logs = env.reins(&["logs", "--id", "f"]).ok().stdout;
    assert!(logs.contains("• FAKE_OK tools second"), "{logs}");
    let usage: Vec<Value> = env.events("f").into_iter().filter(|e| e["type"] == "usage").collect();
    assert_eq!(usage.len(), 2, "one usage event per turn");
    assert_eq!(usage[1]["turn"], 2);
    assert_eq!(usage[1]["total_tokens"], 13);
    assert_eq!(usage[1]["agent_session_id"], "fake-session-1");
    let status = env.reins(&["status", "--id", "f", "--json"]).ok().json();
    assert_eq!(status[0]["usage"]["context_used"], "1234", "{status}");

    // Stop: stdin closed, the agent exits on its own.
    let pid = started["pid"].as_u64().unwrap() as u32;
    let out = env.reins(&["stop", "--id", "f"]).ok().json();
    assert_eq!(out["exit"]["reason"], "stopped", "{out}");
    assert_eq!(out["exit"]["code"], 0, "it ended at the end of its input: {out}");
    assert!(!alive(pid));
    assert!(!env.events("f").iter().any(|e| e["type"] == "signalled"));
}

#[test]
fn every_stop_reason_but_end_turn_fails_or_interrupts_the_turn() {
    let Some(env) = fake_agent("good", 5000) else { return };
    start(&env, "s", &[]);
    for (prompt, status, error) in [
        ("stop refusal", "failed", Some("refusal")),
        ("stop max_tokens", "failed", Some("max_tokens")),
        ("stop max_turn_requests", "failed", Some("max_turn_requests")),
        ("fail now", "failed", Some("fake failure")),
        ("stop cancelled", "interrupted", None),
        ("still there", "completed", None),
    ] {
        let out = send_and_wait(&env, "s", prompt);
        assert_eq!(out["task"]["status"], status, "{prompt}: {out}");
        let event = env.events("s").into_iter().rfind(|e| e["type"] == "task_complete").unwrap();
        match error {
            Some(error) => {
                let got = event["error"].as_str().unwrap_or_default();
                assert!(got.contains(error), "{prompt}: {event}");
            }
            None => assert!(event["error"].is_null(), "{prompt}: {event}"),
        }
    }
    let status = env.reins(&["status", "--id", "s", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready");
}

#[test]
fn permission_requests_are_named_approvals_answered_by_client_or_policy() {
    let Some(env) = fake_agent("good", 5000) else { return };
    start(&env, "p", &[]);
    let approved = env.work.join("approved.txt");
    for (answer, chosen) in
        [(None, "yes-once"), (Some("--always"), "yes-always"), (Some("--deny"), "no")]
    {
        let _ = std::fs::remove_file(&approved);
        env.reins(&["send", "--id", "p", "--no-wait", "ask me"]).ok();
        env.reins(&["wait", "--id", "p", "--until", "blocked", "--timeout", "20s"]).ok();
        let status = env.reins(&["status", "--id", "p", "--json"]).ok().json();
        assert_eq!(status[0]["kind"], "approval");
        let request = status[0]["approval"]["request"].as_str().unwrap().to_string();
        assert_eq!(status[0]["approval"]["detail"], "write approved.txt");
        let mut args = vec!["approve", "--id", "p", "--request", &request];
        args.extend(answer);
        env.reins(&args).ok();
        let done =
            env.reins(&["wait", "--id", "p", "--until", "task_complete", "--timeout", "20s"]).ok();
        assert_eq!(done.json()["event"]["status"], "completed");
        let pane = env.reins(&["pane", "--id", "p"]).ok().stdout;
        assert!(pane.contains(&format!("FAKE chose {chosen}")), "{pane}");
        assert_eq!(approved.exists(), chosen != "no", "{chosen}");
        // The answered request is gone: a late answer lands nowhere.
        let late = env.reins(&["approve", "--id", "p", "--request", &request]).code(1);
        assert!(late.stderr.contains("no longer pending"), "{}", late.stderr);
    }
    // `wait --until blocked` then `status` raced the naming of the request
    // (the real Qwen Code lost it): the request is named before the state.
    let events = env.events("p");
    let named = events.iter().filter(|e| e["type"] == "blocked").map(|e| e["seq"].as_u64());
    let blocked = events
        .iter()
        .filter(|e| e["type"] == "state" && e["to"] == "blocked")
        .map(|e| e["seq"].as_u64());
    for (named, blocked) in named.zip(blocked) {
        assert!(named < blocked, "the request is named before the state is set: {events:#?}");
    }
    let pane = env.reins(&["pane", "--id", "p"]).ok().stdout;
    assert!(
        pane.contains("? approval needed: write approved.txt (Allow / Always allow / Reject)"),
        "{pane}"
    );
    assert!(pane.contains("✎ write approved.txt (failed)"), "the denied call: {pane}");

    // The session's policy answers without anyone: auto allows, never denies.
    for (policy, chosen) in [("auto", "yes-once"), ("never", "no")] {
        let id = format!("pol-{policy}");
        start(&env, &id, &["--approve", policy]);
        send_and_wait(&env, &id, "ask me");
        let pane = env.reins(&["pane", "--id", &id]).ok().stdout;
        assert!(pane.contains(&format!("FAKE chose {chosen}")), "{policy}: {pane}");
        let by: Vec<String> = env
            .events(&id)
            .iter()
            .filter(|e| e["type"] == "approval")
            .map(|e| format!("{}/{}", e["decision"].as_str().unwrap(), e["by"].as_str().unwrap()))
            .collect();
        let want = if policy == "auto" { "allow/policy" } else { "deny/policy" };
        assert_eq!(by, [want]);
        // Answered at once: the agent never waited on anyone.
        let states = env.events(&id);
        assert!(
            !states.iter().any(|e| e["type"] == "state" && e["to"] == "blocked"),
            "{states:#?}"
        );
    }
}

#[test]
fn interrupt_sends_session_cancel_and_ends_the_turn_interrupted() {
    let Some(env) = fake_agent("good", 5000) else { return };
    start(&env, "i", &[]);
    env.reins(&["send", "--id", "i", "--no-wait", "hang on"]).ok();
    env.wait_state("i", "busy");
    env.reins(&["interrupt", "--id", "i"]).ok();
    let done = env.reins(&["wait", "--id", "i", "--until", "task_complete", "--timeout", "10s"]);
    assert_eq!(done.ok().json()["event"]["status"], "interrupted");
    // While it waits on a permission: the request is answered `cancelled`.
    env.reins(&["send", "--id", "i", "--no-wait", "ask me"]).ok();
    env.reins(&["wait", "--id", "i", "--until", "blocked", "--timeout", "10s"]).ok();
    env.reins(&["interrupt", "--id", "i"]).ok();
    let done = env.reins(&["wait", "--id", "i", "--until", "task_complete", "--timeout", "10s"]);
    assert_eq!(done.ok().json()["event"]["status"], "interrupted");
    let status = env.reins(&["status", "--id", "i", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready");
    assert!(status[0]["approval"].is_null(), "no request left pending: {status}");
    env.reins(&["approve", "--id", "i"]).code(1);
    // Nothing runs: nothing to interrupt.
    env.reins(&["interrupt", "--id", "i"]).code(1);
    // The next turn is a normal one.
    assert_eq!(send_and_wait(&env, "i", "again")["task"]["status"], "completed");
}

#[test]
fn an_acp_agent_that_never_answers_initialize_is_a_clear_disconnect() {
    let Some(env) = fake_agent("silent", 800) else { return };
    env.reins(&["run", "acpfake", "--id", "mute", "--detach"]).ok();
    let out =
        env.reins(&["wait", "--id", "mute", "--until", "ready", "--timeout", "10s"]).code(1).json();
    assert_eq!(out["status"], "exited", "{out}");
    assert_eq!(out["exit"]["reason"], "disconnected");
    assert!(out["exit"]["detail"].as_str().unwrap().contains("initialize got no answer"), "{out}");
    let lost = env.events("mute").into_iter().find(|e| e["type"] == "disconnected").unwrap();
    assert_eq!(lost["source"], "timeout");
}

#[test]
fn garbage_from_an_acp_agent_is_survived() {
    let Some(env) = fake_agent("garbled", 5000) else { return };
    start(&env, "g", &[]);
    for text in ["first", "second"] {
        assert_eq!(send_and_wait(&env, "g", text)["task"]["status"], "completed");
    }
    let pane = env.reins(&["pane", "--id", "g"]).ok().stdout;
    assert!(pane.contains("FAKE_OK second"), "{pane}");
    assert!(pane.contains("unreadable line"), "{pane}");
}

#[test]
fn an_acp_agent_that_dies_mid_turn_ends_the_wait_with_its_exit() {
    let Some(env) = fake_agent("exit-mid-turn", 5000) else { return };
    start(&env, "d", &[]);
    env.reins(&["send", "--id", "d", "--no-wait", "go"]).ok();
    let out = env
        .reins(&["wait", "--id", "d", "--until", "task_complete", "--timeout", "10s"])
        .code(1)
        .json();
    assert_eq!(out["status"], "exited", "{out}");
    assert_eq!(out["exit"]["code"], 7);
}

#[test]
fn the_agent_is_signed_in_only_when_it_asks_and_a_credential_is_present() {
    let Some(mut env) = fake_agent("auth", 5000) else { return };
    env.set_env("FAKE_KEY", Some("secret-value"));
    start(&env, "in", &[]);
    assert_eq!(send_and_wait(&env, "in", "hello")["task"]["status"], "completed");
    let pane = env.reins(&["pane", "--id", "in"]).ok().stdout;
    assert!(pane.contains("acp: signing in with fake-key"), "{pane}");
    assert!(
        !pane.contains("secret-value")
            && !env.events("in").iter().any(|e| e.to_string().contains("secret-value"))
    );

    env.set_env("FAKE_KEY", None);
    env.reins(&["run", "acpfake", "--id", "out", "--detach"]).ok();
    let out =
        env.reins(&["wait", "--id", "out", "--until", "ready", "--timeout", "10s"]).code(1).json();
    assert_eq!(out["exit"]["reason"], "disconnected", "{out}");
    let detail = out["exit"]["detail"].as_str().unwrap();
    assert!(detail.contains("Authentication required") && detail.contains("fake-key"), "{detail}");
    let lost = env.events("out").into_iter().find(|e| e["type"] == "disconnected").unwrap();
    assert_eq!(lost["source"], "auth");
}

#[test]
fn an_agent_that_ignores_the_end_of_its_input_is_stopped_by_signals() {
    let Some(env) = fake_agent("stubborn", 5000) else { return };
    let started = start(&env, "st", &[]);
    let pid = started["pid"].as_u64().unwrap() as u32;
    let out = env.reins(&["stop", "--id", "st", "--timeout", "20s"]).ok().json();
    assert_eq!(out["exit"]["reason"], "stopped", "{out}");
    eventually(Duration::from_secs(10), "the agent to end", || {
        !alive(pid) && session_members(pid).is_empty()
    });
    let signalled: Vec<Value> =
        env.events("st").into_iter().filter(|e| e["type"] == "signalled").collect();
    assert_eq!(signalled[0]["signal"], "TERM", "{signalled:?}");
}

#[test]
fn an_acp_session_in_tmux_shows_its_transcript_in_the_pane() {
    if !have_tool("tmux") {
        return;
    }
    let Some(env) = fake_agent("good", 5000) else { return };
    let started = env.reins(&["run", "acpfake", "--id", "tm", "--tmux"]).ok().json();
    let pane = started["tmux"]["pane"].as_str().unwrap().to_string();
    env.reins(&["wait", "--id", "tm", "--until", "ready", "--timeout", "20s"]).ok();
    assert_eq!(send_and_wait(&env, "tm", "through tmux")["task"]["status"], "completed");
    let capture = || {
        String::from_utf8_lossy(&env.tmux(&["capture-pane", "-p", "-t", &pane]).stdout).into_owned()
    };
    eventually(Duration::from_secs(5), "the transcript in the tmux pane", || {
        capture().contains("• FAKE_OK through tmux")
    });
    env.reins(&["stop", "--id", "tm"]).ok();
}

/// `reins watch` counts ACP messages as progress: a turn that thinks
/// aloud for longer than the stall window is not a stall; a silent one is,
/// and is interrupted (`session/cancel`) and nudged.
#[test]
fn a_watcher_takes_acp_messages_for_progress_and_silence_for_a_stall() {
    let Some(env) = fake_agent("good", 5000) else { return };
    start(&env, "w", &[]);
    let mut watcher = env.spawn(&[
        "watch",
        "--id",
        "w",
        "--stall-after",
        "2s",
        "--nudge",
        "nudged",
        "--json",
        "--on-exit",
        "leave",
        "--until-exit",
    ]);
    assert_eq!(send_and_wait(&env, "w", "think 5")["task"]["status"], "completed");
    env.reins(&["send", "--id", "w", "--no-wait", "hang on"]).ok();
    let nudged = env.wait_event("w", Duration::from_secs(30), |e| {
        e["type"] == "task_complete" && e["status"] == "completed" && e["turn"] == 3
    });
    let events = env.events("w");
    let kinds: Vec<String> = events
        .iter()
        .filter(|e| matches!(e["type"].as_str(), Some("stall" | "task_complete")))
        .map(|e| format!("{}:{}", e["type"].as_str().unwrap(), e["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            "task_complete:completed",
            "stall:",
            "task_complete:interrupted",
            "task_complete:completed"
        ],
        "{events:#?}"
    );
    assert_eq!(nudged["turn"], 3);
    env.reins(&["stop", "--id", "w"]).ok();
    let status = watcher.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `reins doctor` runs the ACP `initialize` of an agent whose transport is
/// ACP: one that answers is ok and named, one that does not is broken.
#[test]
fn doctor_reports_whether_the_acp_handshake_answers() {
    let Some(env) = fake_agent("good", 5000) else { return };
    let report = env.reins(&["doctor", "acpfake", "--json", "--timeout", "5"]).ok().json();
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "acpfake");
    let check = check.expect("a check for acpfake").clone();
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(check["transport"], "acp");
    assert!(
        check["detail"].as_str().unwrap().contains("acp handshake ok (Fake ACP 0.0.1)"),
        "{check}"
    );

    let Some(env) = fake_agent("silent", 5000) else { return };
    let started = std::time::Instant::now();
    let report = env.reins(&["doctor", "acpfake", "--json", "--timeout", "1"]).code(1).json();
    assert!(started.elapsed() < Duration::from_secs(8), "bounded by --timeout");
    let check = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "acpfake");
    let check = check.unwrap();
    assert_eq!(check["status"], "broken", "{check}");
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains("acp handshake failed: no answer to initialize within 1s"), "{detail}");
}

/// `--context` over ACP is the first prompt, whatever the profile says
/// about the agent's command line (this one's says `argv`).
#[test]
fn the_context_of_an_acp_session_is_its_first_turn() {
    let Some(env) = fake_agent("good", 5000) else { return };
    env.reins(&["run", "acpfake", "--id", "ctx", "--detach", "--context", "first task"]).ok();
    let done = env.reins(&["wait", "--id", "ctx", "--until", "task_complete", "--timeout", "20s"]);
    let done = done.ok().json();
    assert_eq!(done["turn"], 1, "{done}");
    let pane = env.reins(&["pane", "--id", "ctx"]).ok().stdout;
    assert!(pane.contains("› [reins session id=ctx] first task"), "{pane}");
    let record = std::fs::read_to_string(env.session_dir("ctx").join("session.json")).unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    let command = record["command"].to_string();
    assert!(!command.contains("first task"), "not on the command line: {command}");
}
