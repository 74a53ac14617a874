//! `reins watch` and `run --watch` against the mock agent: each decision
//! (continue, nudge, restart, break_lock, escalate), the budget reset, the
//! advisor (answering, hanging, talking nonsense), Ctrl-C, and the promise
//! that a finished or blocked session is never typed into.

use std::io::Read;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, signal};
use crate::support::mock_model::MockModel;

/// What a finished watcher left: exit code, summary (stdout JSON), stderr.
struct Watched {
    code: i32,
    summary: Value,
    stderr: String,
}

/// Waits for a watcher to exit (killing it and failing after `timeout`).
#[track_caller]
fn finish(mut child: Child, timeout: Duration) -> Watched {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let mut stderr = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
            panic!("the watcher did not finish within {timeout:?}:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let summary = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("outcome").is_some())
        .unwrap_or_else(|| panic!("no summary in {stdout:?}\nstderr: {stderr}"));
    Watched { code: status.code().unwrap_or(-1), summary, stderr }
}

/// Waits for an event of any run of `id` (`TestEnv::wait_event` follows
/// one run, and a restart starts another).
#[track_caller]
fn wait_for(env: &TestEnv, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    eventually(timeout, &format!("a matching event of {id}"), || {
        found = env.events(id).into_iter().find(|e| pred(e));
        found.is_some()
    });
    found.unwrap()
}

fn events_of(env: &TestEnv, id: &str, kind: &str) -> Vec<Value> {
    env.events(id).into_iter().filter(|e| e["type"] == kind).collect()
}

/// Starts `reins watch --id ID --json ARGS`.
fn watch(env: &TestEnv, id: &str, args: &[&str]) -> Child {
    let mut all = vec!["watch", "--id", id, "--json", "--on-exit", "leave"];
    all.extend_from_slice(args);
    env.spawn(&all)
}

#[test]
fn a_stalled_turn_is_nudged_and_the_budget_resets_when_it_recovers() {
    let env = TestEnv::new();
    env.start("st", &["--context", "[[stall]] build it"]);
    let watcher = watch(&env, "st", &["--stall-after", "1s", "--max-resumes", "1"]);
    // The nudge is delivered as a new turn, which completes.
    env.wait_event("st", Duration::from_secs(20), |e| {
        e["type"] == "task_complete" && e["status"] == "completed"
    });
    let resume = &events_of(&env, "st", "resume")[0];
    assert_eq!((resume["n"].as_u64(), resume["max"].as_u64()), (Some(1), Some(1)));
    assert_eq!(resume["by"], "rules");
    assert_eq!(resume["interrupted"], true);
    let stall = &events_of(&env, "st", "stall")[0];
    assert_eq!(stall["state"], "busy");
    assert!(stall["idle_s"].as_f64().unwrap() >= 1.0);
    let first = &events_of(&env, "st", "task_complete")[0];
    assert_eq!(first["status"], "interrupted", "the stalled turn was interrupted");
    // Ending the session ends the watch, with 0.
    env.reins(&["stop", "--id", "st"]).ok();
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.summary["outcome"], "finished");
    assert_eq!(done.summary["resumes"], 1);
    assert!(done.stderr.contains("budget of nudges and restarts starts over"), "{}", done.stderr);
}

#[test]
fn a_spinner_that_turns_is_not_progress() {
    let env = TestEnv::new();
    // Busy for ever with a live spinner and seconds counter.
    env.start("spin", &["--context", "[[wait:100000]] think"]);
    let watcher = watch(&env, "spin", &["--stall-after", "1500ms", "--max-resumes", "0"]);
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 2, "escalated: {}", done.stderr);
    assert_eq!(done.summary["outcome"], "escalated");
    assert!(
        done.summary["reason"].as_str().unwrap().contains("0 nudges are spent"),
        "{}",
        done.summary
    );
    assert_eq!(events_of(&env, "spin", "escalate")[0]["by"], "rules");
    assert!(events_of(&env, "spin", "resume").is_empty());
    // Left as it is: still busy, still running.
    let status = env.reins(&["status", "--id", "spin", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "busy");
}

#[test]
fn slow_but_working_sessions_are_left_alone() {
    let env = TestEnv::new();
    env.start("slow", &["--context", "[[drip:0.4]] [[wait:4]] slowly"]);
    let watcher = watch(&env, "slow", &["--stall-after", "1500ms"]);
    env.wait_event("slow", Duration::from_secs(20), |e| e["type"] == "task_complete");
    // Then it is done and sits ready; well past the stall window, nothing
    // is typed into it.
    std::thread::sleep(Duration::from_secs(3));
    env.reins(&["stop", "--id", "slow"]).ok();
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    for kind in ["stall", "resume", "escalate"] {
        assert!(events_of(&env, "slow", kind).is_empty(), "no {kind}: {:#?}", env.events("slow"));
    }
    assert_eq!(events_of(&env, "slow", "delivered").len(), 1, "only the task itself");
    assert!(done.stderr.contains("done: turn 1 ended and nothing is queued"), "{}", done.stderr);
}

#[test]
fn a_watch_returns_when_the_work_is_done_so_scripts_go_on() {
    let env = TestEnv::new();
    // `reins watch --id X && next`: it returns once the task's turn ended
    // and nothing is queued, with 0, and says so truly.
    env.start("job", &["--context", "[[wait:1]] build it"]);
    let done = finish(watch(&env, "job", &["--stall-after", "10s"]), Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.summary["outcome"], "finished");
    assert_eq!(done.summary["reason"], "done: turn 1 ended and nothing is queued");
    assert!(!done.stderr.contains("never nudged"), "{}", done.stderr);
    let status = env.reins(&["status", "--id", "job", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready", "the session is left running");

    // A session that has had no message yet is waited on, not done.
    env.start("fresh", &[]);
    let mut waiting = watch(&env, "fresh", &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(waiting.try_wait().unwrap().is_none(), "a watch of a fresh session returned");
    let sent = env.reins(&["send", "--id", "fresh", "[[wait:0.5]] go"]).ok().json();
    let done = finish(waiting, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        done.summary["reason"],
        format!("done: turn {} ended and nothing is queued", sent["turn"])
    );

    // --until-exit stays on across turns until the session ends.
    let mut stays = watch(&env, "job", &["--until-exit"]);
    env.reins(&["send", "--id", "job", "[[wait:0.5]] more"]).ok();
    env.reins(&["wait", "--id", "job", "--until", "turn_complete:2", "--timeout", "20s"]).ok();
    std::thread::sleep(Duration::from_millis(800));
    assert!(stays.try_wait().unwrap().is_none(), "--until-exit returned after a turn");
    env.reins(&["stop", "--id", "job"]).ok();
    let done = finish(stays, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.summary["reason"].as_str().unwrap().contains("the session ended"),
        "{}",
        done.summary
    );
}

#[test]
fn a_blocked_session_is_escalated_never_typed_into() {
    let env = TestEnv::new();
    env.start("ask", &["--context", "[[approve:rm -rf build]] clean"]);
    env.wait_event("ask", Duration::from_secs(10), |e| e["to"] == "blocked");
    let watcher = watch(&env, "ask", &["--stall-after", "1s", "--max-resumes", "3"]);
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 2, "{}", done.stderr);
    let reason = done.summary["reason"].as_str().unwrap();
    assert!(reason.contains("blocked on approval"), "{reason}");
    assert!(reason.contains("reins approve"), "says what to do: {reason}");
    assert!(events_of(&env, "ask", "resume").is_empty());
    assert!(events_of(&env, "ask", "approval").is_empty(), "the dialog was not answered");
    let pane = env.reins(&["pane", "--id", "ask"]).ok().stdout;
    assert!(pane.contains("Allow mock to run"), "the dialog is still there:\n{pane}");
}

#[test]
fn a_crashed_agent_is_restarted_with_its_task_and_a_note() {
    let env = TestEnv::new();
    env.start("cr", &["--context", "write the report", "--description", "reporter"]);
    env.wait_event("cr", Duration::from_secs(10), |e| e["type"] == "task_complete");
    let first_run = env.events("cr")[0]["run"].as_str().unwrap().to_string();
    // Its first task is done: a watch for what comes next stays on.
    let watcher =
        watch(&env, "cr", &["--stall-after", "5s", "--max-restarts", "1", "--until-exit"]);
    env.reins(&["send", "--id", "cr", "--no-wait", "[[crash:7]]"]).ok();
    // The new run gets the first task again, with what happened.
    let restart = wait_for(&env, "cr", Duration::from_secs(20), |e| e["type"] == "restart");
    assert_eq!(restart["previous_run"], first_run.as_str());
    assert_eq!((restart["n"].as_u64(), restart["max"].as_u64()), (Some(1), Some(1)));
    assert!(restart["reason"].as_str().unwrap().contains("exited with code 7"), "{restart}");
    let new_run = restart["run"].as_str().unwrap().to_string();
    assert_ne!(new_run, first_run);
    let task = wait_for(&env, "cr", Duration::from_secs(20), |e| {
        e["type"] == "delivered" && e["run"] == new_run.as_str()
    });
    let preview = task["preview"].as_str().unwrap();
    assert!(preview.contains("write the report"), "{preview}");
    assert!(preview.contains("[reins watch] The previous run"), "{preview}");
    let started = env
        .events("cr")
        .into_iter()
        .find(|e| e["type"] == "started" && e["run"] == new_run.as_str())
        .unwrap();
    assert_eq!(started["description"], "reporter", "same options");
    wait_for(&env, "cr", Duration::from_secs(20), |e| {
        e["type"] == "task_complete" && e["run"] == new_run.as_str()
    });
    env.reins(&["stop", "--id", "cr"]).ok();
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.summary["restarts"], 1);
    assert_eq!(done.summary["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn restarts_stop_at_the_cap_and_escalate() {
    let env = TestEnv::new();
    // Crashes on every run: the first task itself crashes it.
    env.start("loop", &["--context", "[[crash:5]] again"]);
    let watcher = watch(&env, "loop", &["--max-restarts", "1"]);
    let done = finish(watcher, Duration::from_secs(30));
    assert_eq!(done.code, 2, "{}", done.stderr);
    assert!(
        done.summary["reason"].as_str().unwrap().contains("1 restarts are spent"),
        "{}",
        done.summary
    );
    assert_eq!(done.summary["restarts"], 1);
    assert_eq!(events_of(&env, "loop", "started").len(), 2, "the first run and one restart");
    // The hint works now: the session is not running, so not `pane`.
    assert!(!done.stderr.contains("reins pane"), "{}", done.stderr);
    assert!(done.stderr.contains("`reins logs --id loop` shows what it did"), "{}", done.stderr);
    env.reins(&["logs", "--id", "loop"]).ok();
}

#[test]
fn a_dead_host_is_cleaned_up_and_the_session_restarted() {
    let env = TestEnv::new();
    let started = env.start("dh", &["--context", "task"]);
    env.wait_event("dh", Duration::from_secs(10), |e| e["type"] == "task_complete");
    let watcher = watch(&env, "dh", &["--stall-after", "5s", "--until-exit"]);
    std::thread::sleep(Duration::from_millis(300));
    let host = started["host_pid"].as_i64().unwrap() as i32;
    signal(host, 9);
    let restart = wait_for(&env, "dh", Duration::from_secs(20), |e| e["type"] == "restart");
    assert!(restart["reason"].as_str().unwrap().contains("died"), "{restart}");
    let old_agent = started["pid"].as_u64().unwrap() as u32;
    eventually(Duration::from_secs(5), "the orphaned agent to be gone", || !alive(old_agent));
    env.reins(&["stop", "--id", "dh"]).ok();
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.stderr.contains("died without recording an end"), "{}", done.stderr);
}

#[test]
fn the_advisor_decides_when_it_answers_clearly() {
    let env = TestEnv::new();
    let model = MockModel::start(None).unwrap();
    // The mock model answers `[[say:TEXT]]` with TEXT; the advisor is shown
    // the session's description.
    env.start(
        "adv",
        &["--context", "[[stall]] x", "--description", "[[say:escalate: a person must look]]"],
    );
    let url = model.base_url();
    let watcher =
        watch(&env, "adv", &["--stall-after", "1s", "--max-resumes", "3", "--advisor", &url]);
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 2, "{}", done.stderr);
    assert_eq!(events_of(&env, "adv", "escalate")[0]["by"], "advisor");
    assert!(
        done.summary["reason"].as_str().unwrap().contains("a person must look"),
        "{}",
        done.summary
    );
    let asked = model
        .requests()
        .into_iter()
        .find(|r| r["path"].as_str().unwrap_or("").ends_with("/chat/completions"));
    assert!(asked.is_some(), "the advisor was asked: {:#?}", model.requests());
}

#[test]
fn an_advisor_that_talks_nonsense_or_hangs_is_ignored() {
    let env = TestEnv::new();
    let model = MockModel::start(None).unwrap();
    // Nonsense: the mock's usual `MOCK_OK (you said: ...)`.
    env.start("noise", &["--context", "[[stall]] x"]);
    let watcher = watch(
        &env,
        "noise",
        &["--stall-after", "1s", "--max-resumes", "0", "--advisor", &model.base_url()],
    );
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("advice not taken"), "{}", done.stderr);
    assert_eq!(events_of(&env, "noise", "escalate")[0]["by"], "rules");

    // Hanging: accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    env.start("mute", &["--context", "[[stall]] x"]);
    let started = Instant::now();
    let watcher = watch(
        &env,
        "mute",
        &[
            "--stall-after",
            "1s",
            "--max-resumes",
            "1",
            "--advisor",
            &url,
            "--advisor-timeout",
            "500ms",
        ],
    );
    env.wait_event("mute", Duration::from_secs(20), |e| e["type"] == "resume");
    assert!(started.elapsed() < Duration::from_secs(10), "a hanging advisor held nothing up");
    assert_eq!(events_of(&env, "mute", "resume")[0]["by"], "rules");
    env.reins(&["stop", "--id", "mute"]).ok();
    let done = finish(watcher, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.stderr.contains("no answer within 500ms"), "{}", done.stderr);
    drop(listener);
}

#[test]
fn ctrl_c_leaves_or_stops_the_session_as_asked() {
    let env = TestEnv::new();
    env.start("cc", &[]);
    let leave = env.spawn(&["watch", "--id", "cc", "--json", "--on-exit", "leave"]);
    std::thread::sleep(Duration::from_millis(500));
    signal(leave.id() as i32, 2);
    let done = finish(leave, Duration::from_secs(10));
    assert_eq!(done.code, 130);
    assert!(done.stderr.contains("reins stop --id cc"), "a hint: {}", done.stderr);
    env.reins(&["status", "--id", "cc", "--json"]).ok();
    assert_eq!(env.reins(&["status", "--id", "cc", "--json"]).json()[0]["state"], "ready");

    let stop = env.spawn(&["watch", "--id", "cc", "--json", "--on-exit", "stop"]);
    std::thread::sleep(Duration::from_millis(500));
    signal(stop.id() as i32, 2);
    let done = finish(stop, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.summary["outcome"], "finished");
    let exited = events_of(&env, "cc", "exited");
    assert_eq!(exited.last().unwrap()["reason"], "stopped");
}

#[test]
fn run_watch_starts_and_watches_and_bad_options_are_refused() {
    let env = TestEnv::new();
    let child = env.spawn(&[
        "run",
        "mock",
        "--id",
        "rw",
        "--context",
        "[[stall]] go",
        "--auto-stop",
        "--watch",
        "--stall-after",
        "1s",
        "--json",
    ]);
    // Nudged, the nudge's turn completes, and --auto-stop ends the session
    // once nothing is left in the inbox.
    let done = finish(child, Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.summary["resumes"], 1);
    let completed: Vec<_> =
        events_of(&env, "rw", "task_complete").into_iter().map(|e| e["status"].clone()).collect();
    assert_eq!(completed, ["interrupted", "completed"], "auto-stop waited for the nudge");

    for (args, says) in [
        (&["run", "mock", "--preset", "plan"][..], "watch options need --watch"),
        (&["run", "mock", "--watch", "--stall-after", "10ms"][..], "at least 100ms"),
        (&["watch", "--id", "rw", "--advisor", "https://example.com"][..], "only http://"),
        (&["watch", "--id", "rw", "--nudge", " "][..], "--nudge is empty"),
        (&["watch", "--id", "nope"][..], "nope"),
    ] {
        let out = env.reins(args);
        assert!(out.code == 2 || out.code == 1, "{args:?}: {}", out.code);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}
