//! `reins run --watch-file PATH`: a change to the file queues
//! `file-change-hook: read PATH` for the agent, debounced, through the inbox.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, have_tool};

const LONG: Duration = Duration::from_secs(20);

fn is_hook(e: &Value, given: &str) -> bool {
    e["type"] == "queued" && e["preview"] == format!("file-change-hook: read {given}").as_str()
}

fn hooks_queued(env: &TestEnv, id: &str) -> Vec<Value> {
    env.events(id)
        .into_iter()
        .filter(|e| {
            e["type"] == "queued"
                && e["preview"].as_str().is_some_and(|p| p.starts_with("file-change-hook:"))
        })
        .collect()
}

/// Waits until the hook message for `given` was delivered and its turn done.
fn wait_answered(env: &TestEnv, id: &str, given: &str) {
    let queued = env.wait_event(id, LONG, |e| is_hook(e, given));
    let message = queued["message_id"].as_str().unwrap().to_string();
    env.reins(&["wait", "--id", id, "--message", &message, "--until", "task_complete"]).ok();
}

/// A turn that lasts longer than the debounce window, so that a message the
/// hook should not have sent would be queued before it ends.
fn outlast_the_debounce(env: &TestEnv, id: &str) {
    env.reins(&["send", "--id", id, "--wait-for-idle", "[[wait:1.5]] hold on"]).ok();
}

fn append(path: &std::path::Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_write_queues_a_message_to_read_the_file_as_given() {
    let env = TestEnv::new();
    let started = env.start("wf", &["--watch-file", "notes/review.md", "--watch-file", "plan.md"]);
    assert_eq!(started["watch_files"][0]["as_given"], "notes/review.md");
    // The missing parent directory was created, and the paths are absolute.
    assert!(env.work.join("notes").is_dir());
    let status = env.reins(&["status", "--id", "wf", "--json"]).ok().json();
    let watched = status[0]["watch_files"].as_array().unwrap();
    assert_eq!(watched.len(), 2, "{status}");
    let work = std::fs::canonicalize(&env.work).unwrap();
    assert_eq!(watched[0]["path"], work.join("notes/review.md").to_str().unwrap());
    assert_eq!(watched[1]["as_given"], "plan.md");

    std::fs::write(env.work.join("notes/review.md"), "looks good\n").unwrap();
    wait_answered(&env, "wf", "notes/review.md");
    std::fs::write(env.work.join("plan.md"), "step 1\n").unwrap();
    wait_answered(&env, "wf", "plan.md");

    let text = env.reins(&["logs", "--id", "wf"]).ok().stdout;
    assert!(text.contains("MOCK_OK (you said: file-change-hook: read notes/review.md)"), "{text}");
    assert!(text.contains("MOCK_OK (you said: file-change-hook: read plan.md)"), "{text}");
    // Through the durable inbox, like `send --no-wait`.
    let inbox = std::fs::read_to_string(env.session_dir("wf").join("inbox.jsonl")).unwrap();
    assert_eq!(inbox.matches(r#""source":"file-change-hook""#).count(), 2, "{inbox}");
    let delivered = env.events("wf").iter().filter(|e| e["type"] == "delivered").count();
    assert_eq!(delivered, 2);
}

#[test]
fn an_atomic_rename_onto_the_file_counts() {
    let env = TestEnv::new();
    env.start("mv", &["--watch-file", "out/report.json"]);
    env.wait_state("mv", "ready");
    let dir = env.work.join("out");
    std::fs::write(dir.join(".report.json.tmp"), "{}\n").unwrap();
    std::fs::rename(dir.join(".report.json.tmp"), dir.join("report.json")).unwrap();
    wait_answered(&env, "mv", "out/report.json");
    outlast_the_debounce(&env, "mv");
    assert_eq!(hooks_queued(&env, "mv").len(), 1, "the temporary file does not count");
}

#[test]
fn a_burst_of_writes_becomes_one_message() {
    let env = TestEnv::new();
    env.start("burst", &["--watch-file", "log.txt"]);
    env.wait_state("burst", "ready");
    let path = env.work.join("log.txt");
    for i in 0..20 {
        append(&path, &format!("line {i}\n"));
    }
    wait_answered(&env, "burst", "log.txt");
    outlast_the_debounce(&env, "burst");
    assert_eq!(hooks_queued(&env, "burst").len(), 1);
}

#[test]
fn other_files_in_the_directory_and_reads_are_ignored() {
    let env = TestEnv::new();
    std::fs::write(env.work.join("notes.md"), "old\n").unwrap();
    env.start("quiet", &["--watch-file", "notes.md"]);
    env.wait_state("quiet", "ready");
    std::fs::write(env.work.join("other.md"), "x\n").unwrap();
    std::fs::write(env.work.join("notes.md.swp"), "x\n").unwrap();
    std::fs::rename(env.work.join("other.md"), env.work.join("other2.md")).unwrap();
    assert_eq!(std::fs::read_to_string(env.work.join("notes.md")).unwrap(), "old\n");
    outlast_the_debounce(&env, "quiet");
    assert!(hooks_queued(&env, "quiet").is_empty(), "{:?}", hooks_queued(&env, "quiet"));
    // The watch is alive: a real change still gets through.
    append(&env.work.join("notes.md"), "new\n");
    wait_answered(&env, "quiet", "notes.md");
}

#[test]
fn a_change_while_the_agent_works_waits_for_it() {
    let env = TestEnv::new();
    env.start("busy", &["--watch-file", "todo.md"]);
    env.wait_state("busy", "ready");
    env.reins(&["send", "--id", "busy", "[[wait:60]] long job"]).ok();
    env.wait_state("busy", "busy");
    std::fs::write(env.work.join("todo.md"), "more\n").unwrap();
    let queued = env.wait_event("busy", LONG, |e| is_hook(e, "todo.md"));
    let message = queued["message_id"].as_str().unwrap().to_string();
    let inbox = env.reins(&["inbox", "--id", "busy", "--json"]).ok().json();
    assert_eq!(inbox["messages"][0]["message_id"], message.as_str(), "{inbox}");
    assert_eq!(inbox["messages"][0]["status"], "queued", "{inbox}");
    env.reins(&["interrupt", "--id", "busy"]).ok();
    let delivered = env.wait_event("busy", LONG, |e| {
        e["type"] == "delivered" && e["message_id"] == message.as_str()
    });
    assert_eq!(delivered["turn"], 2, "delivered after the running turn: {delivered}");
}

#[test]
fn a_tmux_session_watches_too() {
    if !have_tool("tmux") {
        return;
    }
    let env = TestEnv::new();
    env.reins(&["run", "mock", "--id", "tw", "--tmux", "--watch-file", "spec.md"]).ok();
    env.wait_state("tw", "ready");
    std::fs::write(env.work.join("spec.md"), "v2\n").unwrap();
    wait_answered(&env, "tw", "spec.md");
}

#[test]
fn a_directory_is_refused() {
    let env = TestEnv::new();
    std::fs::create_dir(env.work.join("docs")).unwrap();
    let out = env.reins(&["run", "mock", "--detach", "--watch-file", "docs"]).code(2);
    assert!(out.stderr.contains("--watch-file docs: is a directory"), "{}", out.stderr);
    let out = env.reins(&["run", "mock", "--detach", "--watch-file", "docs/.."]).code(2);
    assert!(out.stderr.contains("not a file name"), "{}", out.stderr);
    assert_eq!(env.reins(&["status", "--json"]).ok().json(), serde_json::json!([]));
}
