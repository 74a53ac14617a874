//! A bounded soak: many send → task_complete cycles against one session,
//! with zero lost, stranded or mis-fenced turns.

use std::time::{Duration, Instant};

use crate::common::TestEnv;

#[test]
fn two_hundred_send_and_wait_cycles() {
    let env = TestEnv::new();
    env.start("soak", &["--", "--work", "0.03"]);
    env.wait_state("soak", "ready");
    let started = Instant::now();
    for i in 1..=200u64 {
        let sent = env.reins(&["send", "--id", "soak", &format!("cycle {i}")]).ok().json();
        assert_eq!(sent["turn"], i, "cycle {i}: {sent}");
        let done = env
            .reins(&["wait", "--id", "soak", "--until", "task_complete", "--timeout", "10s"])
            .ok()
            .json();
        assert_eq!(done["turn"], i, "cycle {i} waited for the wrong turn: {done}");
        assert_eq!(done["event"]["message_id"], sent["message_id"]);
    }
    assert!(started.elapsed() < Duration::from_secs(90), "took {:?}", started.elapsed());
    let events = env.events("soak");
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    assert_eq!(count("delivered"), 200);
    assert_eq!(count("task_complete"), 200);
    assert_eq!(count("stranded"), 0);
    eprintln!("200 cycles in {:?}", started.elapsed());
}
