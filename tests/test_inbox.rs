//! `reins inbox`: see, drop and clear queued messages, live or not.

use crate::common::TestEnv;

#[test]
fn queued_messages_can_be_listed_dropped_and_cleared() {
    let env = TestEnv::new();
    env.start("ib", &[]);
    env.wait_state("ib", "ready");
    env.reins(&["send", "--id", "ib", "[[wait:30]] keep busy"]).ok();
    let ids: Vec<String> = (0..3)
        .map(|i| {
            let out =
                env.reins(&["send", "--id", "ib", "--no-wait", &format!("later {i}")]).ok().json();
            out["message_id"].as_str().unwrap().to_string()
        })
        .collect();
    let list = env.reins(&["inbox", "--id", "ib", "--json"]).ok().json();
    let listed: Vec<&str> = list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    let table = env.reins(&["inbox", "--id", "ib"]).ok().stdout;
    assert!(table.contains("later 1") && table.contains("queued"), "{table}");

    let dropped = env.reins(&["inbox", "--id", "ib", "--drop", &ids[1], "--json"]).ok().json();
    assert_eq!(dropped["dropped"], serde_json::json!([ids[1]]));
    env.reins(&["inbox", "--id", "ib", "--drop", &ids[1]]).code(1);
    let cleared = env.reins(&["inbox", "--id", "ib", "--clear", "--json"]).ok().json();
    assert_eq!(cleared["dropped"], serde_json::json!([ids[0], ids[2]]));
    assert!(env.reins(&["inbox", "--id", "ib"]).ok().stdout.contains("is empty"));
    let drops = env.events("ib").iter().filter(|e| e["type"] == "dropped").count();
    assert_eq!(drops, 3);
}

#[test]
fn the_inbox_of_an_ended_session_can_be_read_and_cleared() {
    let env = TestEnv::new();
    env.start("off", &[]);
    env.wait_state("off", "ready");
    env.reins(&["send", "--id", "off", "[[wait:30]] busy"]).ok();
    env.reins(&["send", "--id", "off", "--no-wait", "for the next run"]).ok();
    env.reins(&["stop", "--id", "off"]).ok();
    let list = env.reins(&["inbox", "--id", "off", "--json"]).ok().json();
    assert_eq!(list["messages"][0]["preview"], "for the next run");
    env.reins(&["inbox", "--id", "off", "--clear"]).ok();
    let list = env.reins(&["inbox", "--id", "off", "--json"]).ok().json();
    assert_eq!(list["messages"], serde_json::json!([]));
}

#[test]
fn a_torn_last_line_never_swallows_the_next_record() {
    use std::io::Write;
    let env = TestEnv::new();
    env.start("torn", &[]);
    env.wait_state("torn", "ready");
    env.reins(&["send", "--id", "torn", "first"]).ok();
    env.reins(&["stop", "--id", "torn"]).ok();
    // A crash mid-write left half a line at the end of both logs.
    let dir = env.session_dir("torn");
    for (file, torn) in [("inbox.jsonl", "{\"type\":\"mes"), ("events.jsonl", "{\"schema_ver")] {
        let mut f = std::fs::OpenOptions::new().append(true).open(dir.join(file)).unwrap();
        f.write_all(torn.as_bytes()).unwrap();
    }
    // The next run's events and the next message are whole lines of their own.
    let started = env.start("torn", &[]);
    env.wait_state("torn", "ready");
    let sent = env.reins(&["send", "--id", "torn", "--no-wait", "after the tear"]).ok().json();
    let id = sent["message_id"].as_str().unwrap().to_string();
    env.reins(&["wait", "--id", "torn", "--message", &id, "--timeout", "10s"]).ok();
    let inbox = std::fs::read_to_string(dir.join("inbox.jsonl")).unwrap();
    let record = inbox.lines().find(|l| l.contains("after the tear")).unwrap();
    let record: serde_json::Value = serde_json::from_str(record).expect("a whole line");
    assert_eq!(record["id"], id.as_str());
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let first_of_run = events.lines().find(|l| l.contains(started["run"].as_str().unwrap()));
    let first: serde_json::Value = serde_json::from_str(first_of_run.unwrap()).expect("whole");
    assert_eq!(first["type"], "started");
    assert!(events.contains("{\"schema_ver\n"), "the torn line is ended, not removed");
}
