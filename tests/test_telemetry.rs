//! How a run ends, told honestly on every path: the closing events (`git`
//! end, `summary`, `exited`, in that order) and the dispatch record line,
//! for a clean exit, a crash, a boot failure, a stop, a timeout and a host
//! that died; and `reins report` over a record.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, have_tool, signal};

/// The events of `id` that tell its life, in order (state changes, queue
/// bookkeeping and screen-timing details left out).
fn lifecycle(env: &TestEnv, id: &str) -> Vec<String> {
    env.events(id)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .filter(|t| {
            matches!(
                t.as_str(),
                "started"
                    | "turn_started"
                    | "task_complete"
                    | "stop_requested"
                    | "signalled"
                    | "git"
                    | "summary"
                    | "exited"
            )
        })
        .collect()
}

/// The dispatch record lines of the test's state dir.
fn record(env: &TestEnv) -> Vec<Value> {
    let path = env.state_dir().join("dispatch.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn record_of(env: &TestEnv, id: &str) -> Value {
    record(env)
        .into_iter()
        .find(|l| l["meta"]["id"] == id)
        .unwrap_or_else(|| panic!("no record line for {id}: {:#?}", record(env)))
}

fn ended(env: &TestEnv, id: &str) -> Value {
    env.wait_event(id, Duration::from_secs(20), |e| e["type"] == "exited")
}

#[test]
fn a_clean_exit() {
    let env = TestEnv::new();
    env.start("clean", &["--context", "done", "--meta", r#"{"ticket":"T-7","model":"m1"}"#]);
    env.wait_event("clean", Duration::from_secs(10), |e| e["type"] == "task_complete");
    // The agent quits on its own (not a `reins stop`).
    env.reins(&["send", "--id", "clean", "--no-wait", "/exit"]).ok();
    assert_eq!(ended(&env, "clean")["reason"], "success");
    assert_eq!(
        lifecycle(&env, "clean"),
        ["started", "turn_started", "task_complete", "summary", "exited"]
    );
    let summary = env.events("clean").into_iter().find(|e| e["type"] == "summary").unwrap();
    assert_eq!(summary["exit"], "success");
    assert_eq!(summary["turns"], 1);
    assert_eq!(summary["total_tokens"], Value::Null, "the mock shows no tokens: null, not 0");
    let path = env.state_dir().join("dispatch.jsonl");
    assert_eq!(summary["path"], path.display().to_string());
    let line = record_of(&env, "clean");
    assert_eq!(line["meta"]["ticket"], "T-7", "--meta passes through");
    assert_eq!(line["meta"]["agent"], "mock");
    assert_eq!(line["meta"]["harness"], "reins");
    assert_eq!(line["actual"]["model"], "m1");
    assert_eq!(line["actual"]["exit"], "success");
    assert_eq!(line["actual"]["exit_code"], 0);
    assert_eq!(line["actual"]["turns"], 1);
    assert_eq!(crate::common::mode(&path) & 0o777, 0o600);
}

#[test]
fn an_agent_crash() {
    let env = TestEnv::new();
    env.start("crash", &["--context", "[[wait:2]] long job"]);
    env.wait_event("crash", Duration::from_secs(10), |e| e["type"] == "turn_started");
    let agent = env.reins(&["status", "--id", "crash", "--json"]).ok().json()[0]["agent_pid"]
        .as_i64()
        .unwrap();
    signal(agent as i32, 10); // SIGUSR1: dies in the middle of its turn
    let exited = ended(&env, "crash");
    assert_eq!((exited["reason"].as_str(), exited["signal"].as_i64()), (Some("failure"), Some(10)));
    assert_eq!(
        lifecycle(&env, "crash"),
        ["started", "turn_started", "summary", "exited"],
        "the turn never completed, and no event says it did"
    );
    let line = record_of(&env, "crash");
    assert_eq!(line["actual"]["exit"], "failure");
    assert_eq!(line["actual"]["exit_signal"], 10);
}

#[test]
fn a_boot_failure() {
    let env = TestEnv::new();
    // A program that exits at once, before anything could be read.
    env.reins(&["run", "sh", "--id", "boot", "--detach", "--", "-c", "exit 9"]);
    let exited = ended(&env, "boot");
    assert_eq!(exited["reason"], "boot_failure");
    assert_eq!(lifecycle(&env, "boot"), ["started", "summary", "exited"]);
    assert_eq!(record_of(&env, "boot")["actual"]["exit"], "boot_failure");
}

#[test]
fn a_stop() {
    let env = TestEnv::new();
    env.start("stopped", &["--context", "work"]);
    env.wait_event("stopped", Duration::from_secs(10), |e| e["type"] == "task_complete");
    env.reins(&["stop", "--id", "stopped"]).ok();
    assert_eq!(ended(&env, "stopped")["reason"], "stopped");
    assert_eq!(
        lifecycle(&env, "stopped"),
        ["started", "turn_started", "task_complete", "stop_requested", "summary", "exited"]
    );
    assert_eq!(record_of(&env, "stopped")["actual"]["exit"], "stopped");
}

#[test]
fn a_timeout() {
    let env = TestEnv::new();
    env.start("slow", &["--context", "[[wait:100]] forever", "--max-runtime", "1s"]);
    let exited = ended(&env, "slow");
    assert_eq!(exited["reason"], "timeout");
    let kinds = lifecycle(&env, "slow");
    assert_eq!(&kinds[..3], ["started", "turn_started", "stop_requested"]);
    assert_eq!(&kinds[kinds.len() - 2..], ["summary", "exited"]);
    let stop = env.events("slow").into_iter().find(|e| e["type"] == "stop_requested").unwrap();
    assert_eq!(stop["source"], "max-runtime");
    let line = record_of(&env, "slow");
    assert_eq!(line["actual"]["exit"], "timeout");
    assert!(line["actual"]["duration_s"].as_f64().unwrap() >= 1.0);
}

#[test]
fn a_host_that_died_is_closed_by_gc_with_its_record() {
    let env = TestEnv::new();
    let started = env.start("lost", &[]);
    env.wait_state("lost", "ready");
    let host = started["host_pid"].as_u64().unwrap() as u32;
    signal(host as i32, 9);
    eventually(Duration::from_secs(5), "the host to die", || !alive(host));
    env.reins(&["gc"]).ok();
    assert_eq!(lifecycle(&env, "lost"), ["started", "summary", "exited"]);
    let exited = env.events("lost").last().cloned().unwrap();
    assert_eq!(exited["reason"], "failure");
    assert_eq!(exited["run"], started["run"], "closed in the run that was lost");
    assert_eq!(record_of(&env, "lost")["actual"]["exit"], "failure");
}

#[test]
fn record_goes_where_asked_or_nowhere() {
    let env = TestEnv::new();
    let mine = env.path().join("mine.jsonl");
    env.start("here", &["--context", "[[exit]]", "--record", mine.to_str().unwrap()]);
    ended(&env, "here");
    let text = std::fs::read_to_string(&mine).unwrap();
    assert_eq!(text.lines().count(), 1);
    env.start("none", &["--context", "[[exit]]", "--no-record"]);
    let summary = env.wait_event("none", Duration::from_secs(20), |e| e["type"] == "summary");
    assert_eq!(summary["path"], Value::Null);
    assert!(record(&env).is_empty(), "nothing went to the default record");

    let out =
        env.reins(&["run", "mock", "--detach", "--record", "/nonexistent/dir/r.jsonl"]).code(2);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn git_changes_are_counted_from_the_start_commit() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .arg("-C")
            .arg(&env.work)
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&ok.stderr));
    };
    git(&["init", "-q", "-b", "trunk"]);
    std::fs::write(env.work.join("a.txt"), "a\n").unwrap();
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "start"]);
    env.start("g", &[]);
    env.wait_event("g", Duration::from_secs(10), |e| e["type"] == "git");
    // What the agent would do: edit, commit, edit again.
    std::fs::write(env.work.join("a.txt"), "a\nb\n").unwrap();
    git(&["commit", "-q", "-am", "work"]);
    std::fs::write(Path::new(&env.work).join("c.txt"), "c\nc\n").unwrap();
    git(&["add", "c.txt"]);
    env.reins(&["stop", "--id", "g"]).ok();
    let events = env.events("g");
    let gits: Vec<&Value> = events.iter().filter(|e| e["type"] == "git").collect();
    assert_eq!(gits[0]["phase"], "start");
    assert_eq!(
        (gits[0]["branch"].as_str(), gits[0]["dirty"].as_bool()),
        (Some("trunk"), Some(false))
    );
    let end = gits[1];
    assert_eq!(end["phase"], "end");
    assert_eq!(end["commits"], 1);
    assert_eq!(end["counts_uncommitted"], true);
    assert_eq!((end["files_changed"].as_u64(), end["loc_added"].as_u64()), (Some(2), Some(3)));
    let line = record_of(&env, "g");
    assert_eq!(line["meta"]["branch"], "trunk");
    assert_eq!(line["meta"]["start_sha"], gits[0]["sha"]);
    assert_eq!(line["actual"]["commits"], 1);
    assert_eq!(line["actual"]["loc_added"], 3);
}

#[test]
fn report_sums_a_record() {
    let env = TestEnv::new();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dispatch/record.jsonl");
    let fixture = fixture.to_str().unwrap();
    let report = env.reins(&["report", "--record", fixture, "--json"]).ok().json();
    assert_eq!(report["skipped_lines"], 1);
    assert_eq!(report["by"], "agent");
    let groups = report["groups"].as_array().unwrap();
    let keys: Vec<&str> = groups.iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["claude", "codex", "mock"], "most sessions first, then by name");
    let codex = &groups[1];
    assert_eq!((codex["sessions"].as_u64(), codex["ok"].as_u64()), (Some(2), Some(1)));
    assert_eq!(codex["success_rate"], 0.5);
    assert_eq!(codex["total_tokens"], 1800);
    assert_eq!(codex["mean_duration_s"], 450.0);
    let claude = &groups[0];
    assert_eq!(claude["ok"], 1, "stopped counts as ok, boot_failure does not");
    assert_eq!(claude["tokens_known"], 1, "input + output when there is no total");
    assert_eq!(claude["total_tokens"], 50);
    assert_eq!(report["total"]["sessions"], 5);

    let by_day = env
        .reins(&["report", "--record", fixture, "--json", "--by", "day", "--since", "2026-11-21"])
        .ok()
        .json();
    let days: Vec<&str> =
        by_day["groups"].as_array().unwrap().iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(days, ["2026-11-22", "2026-11-21"]);
    let by_model =
        env.reins(&["report", "--record", fixture, "--json", "--by", "model"]).ok().json();
    assert_eq!(by_model["groups"][0]["key"], "gpt-5");

    let table = env.reins(&["report", "--record", fixture]).ok().stdout;
    assert!(table.starts_with("AGENT"), "{table}");
    assert!(table.contains("codex"), "{table}");
    assert!(table.contains("(1 unreadable lines skipped)"), "{table}");

    let empty = env.reins(&["report"]).ok().stdout;
    assert!(empty.contains("no sessions recorded"), "{empty}");
    let bad = env.reins(&["report", "--since", "last tuesday"]).code(2);
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);
}
