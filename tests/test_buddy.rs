//! `reins buddy`: a second session that looks after a worker, briefed by its
//! first message, and linked to the worker in `status`.

use serde_json::Value;

use crate::common::TestEnv;

fn row<'a>(rows: &'a Value, id: &str) -> &'a Value {
    rows.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{rows}"))
}

#[test]
fn the_brief_is_the_first_message_and_status_links_both_ways() {
    let env = TestEnv::new();
    env.start("bw", &["--description", "fix the flaky test"]);
    let started = env
        .reins(&["buddy", "--for", "bw", "--agent", "mock", "--every", "2m", "--detach"])
        .ok()
        .json();
    assert_eq!(started["id"], "bw-buddy");
    assert_eq!(started["buddy_of"], "bw");
    assert_eq!(started["every"], "2m");
    assert_eq!(started["nudge_after"], "4m");
    let done_file = started["done_file"].as_str().unwrap().to_string();
    assert!(done_file.ends_with("/bw-buddy/done"), "{started}");

    // The brief went in first, with every placeholder filled.
    let brief = env.first_message("bw-buddy");
    assert_eq!(brief["source"], "context");
    let text = brief["text"].as_str().unwrap();
    assert!(text.starts_with("[reins session id=bw-buddy] You are the buddy of reins session bw"));
    for expected in [
        "Worker: bw (agent mock)",
        "Task: fix the flaky test",
        "Look every 2m. Nudge after 4m",
        "status --id bw --json",
        "pane --id bw --lines 40",
        "events --id bw --snapshot --from 20",
        "send --id bw --no-wait",
        "wait --id bw --until exit --timeout 2m",
        "stop --id bw-buddy",
        &format!("> {done_file}"),
    ] {
        assert!(text.contains(expected), "{expected:?} missing from the brief:\n{text}");
    }
    assert!(!text.contains("{{"), "unfilled placeholder:\n{text}");
    // ...and the buddy's agent got it as its first turn.
    let done = env.reins(&["wait", "--id", "bw-buddy", "--until", "task_complete"]).ok().json();
    assert_eq!(done["turn"], 1, "{done}");
    let delivered = env.events("bw-buddy").into_iter().find(|e| e["type"] == "delivered").unwrap();
    assert_eq!(delivered["message_id"], brief["id"]);
    let screen = env.reins(&["logs", "--id", "bw-buddy"]).ok().stdout;
    assert!(screen.contains("MOCK_OK (you said: [reins session id=bw-buddy] You are the buddy"));

    // status: the buddy names its worker, the worker its buddy.
    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(row(&rows, "bw-buddy")["buddy_of"], "bw");
    assert_eq!(row(&rows, "bw")["buddies"], serde_json::json!(["bw-buddy"]));
    assert_eq!(row(&rows, "bw")["buddy_of"], Value::Null);
    let one = env.reins(&["status", "--id", "bw", "--json"]).ok().json();
    assert_eq!(one[0]["buddies"], serde_json::json!(["bw-buddy"]));
    let table = env.reins(&["status"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    let worker = lines.iter().position(|l| l.starts_with("bw ")).unwrap();
    assert!(
        lines[worker + 1].starts_with("└ bw-buddy "),
        "the buddy goes under its worker:\n{table}"
    );
    let alone = env.reins(&["status", "--id", "bw-buddy"]).ok().stdout;
    assert!(alone.contains("bw-buddy (buddy of bw)"), "{alone}");
    let alone = env.reins(&["status", "--id", "bw"]).ok().stdout;
    assert!(alone.contains("bw (buddy: bw-buddy)"), "{alone}");
}

#[test]
fn a_custom_brief_gets_the_same_placeholders() {
    let mut env = TestEnv::new();
    // The worker was started from a tmux pane: the buddy reports there.
    env.set_env("TMUX_PANE", Some("%42"));
    env.start("cw", &[]);
    env.set_env("TMUX_PANE", None);
    let brief = env.work.join("brief.md");
    std::fs::write(
        &brief,
        "Mind {{worker}} ({{worker_agent}}) as {{buddy}} every {{every}}; {{typo}}\n{{report}}",
    )
    .unwrap();
    let done = env.work.join("reports/cw.done");
    let out = env
        .reins(&[
            "buddy",
            "--for",
            "cw",
            "--agent",
            "mock",
            "--id",
            "minder",
            "--every",
            "90s",
            "--brief",
            brief.to_str().unwrap(),
            "--done-file",
            "reports/cw.done",
            "--detach",
        ])
        .ok();
    assert!(out.stderr.contains("unknown placeholder {{typo}}"), "{}", out.stderr);
    assert_eq!(out.json()["done_file"], done.to_str().unwrap());
    let text = env.first_message("minder")["text"].as_str().unwrap().to_string();
    assert!(text.contains("Mind cw (mock) as minder every 90s; {{typo}}"), "{text}");
    let tmux = format!(
        "tmux -L {} send-keys -t %42 'buddy minder: done: SUMMARY' Enter",
        env.tmux_server()
    );
    assert!(text.contains(&tmux), "{text}");
    assert!(text.contains(&format!("> {}", done.display())), "{text}");
    let rows = env.reins(&["status", "--json"]).ok().json();
    assert_eq!(row(&rows, "minder")["buddy_of"], "cw");
    assert_eq!(row(&rows, "cw")["buddies"], serde_json::json!(["minder"]));

    // --print-brief shows what a buddy would get and starts nothing.
    let printed =
        env.reins(&["buddy", "--for", "cw", "--id", "other", "--print-brief"]).ok().stdout;
    assert!(printed.starts_with("You are the buddy of reins session cw"), "{printed}");
    assert!(
        !env.state_dir()
            .join("sessions")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|scope| { scope.path().join("other").exists() })
    );
    // ... also while that buddy runs.
    let printed =
        env.reins(&["buddy", "--for", "cw", "--id", "minder", "--print-brief"]).ok().stdout;
    assert!(printed.contains("You: minder."), "{printed}");
    // A done file that exists already would read as "done" at once.
    std::fs::write(&done, "old\n").unwrap();
    let refused = env
        .reins(&[
            "buddy",
            "--for",
            "cw",
            "--agent",
            "mock",
            "--id",
            "m3",
            "--done-file",
            done.to_str().unwrap(),
            "--detach",
        ])
        .code(1);
    assert!(refused.stderr.contains("already exists"), "{}", refused.stderr);
}

#[test]
fn a_buddy_needs_a_running_worker_and_a_free_id() {
    let env = TestEnv::new();
    let missing = env.reins(&["buddy", "--for", "nope", "--agent", "mock", "--detach"]).code(1);
    assert!(missing.stderr.contains("--for nope: no session named nope"), "{}", missing.stderr);
    assert!(missing.stderr.contains("hint: "), "{}", missing.stderr);

    env.start("gone", &[]);
    env.reins(&["stop", "--id", "gone"]).ok();
    let exited = env.reins(&["buddy", "--for", "gone", "--agent", "mock", "--detach"]).code(1);
    assert!(exited.stderr.contains("--for gone: session gone has exited"), "{}", exited.stderr);

    env.start("w", &[]);
    env.reins(&["buddy", "--for", "w", "--agent", "mock", "--detach"]).ok();
    let taken = env.reins(&["buddy", "--for", "w", "--agent", "mock", "--detach"]).code(1);
    assert!(taken.stderr.contains("session w-buddy is already running"), "{}", taken.stderr);
    assert!(taken.stderr.contains("use another --id"), "{}", taken.stderr);
    let own = env.reins(&["buddy", "--for", "w", "--id", "w", "--detach"]).code(2);
    assert!(own.stderr.contains("cannot be its own buddy"), "{}", own.stderr);
}
