//! Hostile or broken bytes from a protocol agent never stop its host and
//! never grow it without bound: bytes that are not UTF-8 on stderr, more
//! stderr than a pipe holds, a line of hundreds of MiB without an end, turn
//! ids that are not ASCII. The agent is tests/fixtures/fake-app-server.py.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::test_app_server::fake_server_with;

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn vm_kib(pid: u64, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// MiB of the endless line the fake server writes.
const FLOOD_MIB: u64 = 384;

/// The peak resident memory the host may reach under the flood: its own
/// size plus one line at the stdout cap (16 MiB) and room for the
/// allocator. Without the cap the host held the whole line (372 MiB for a
/// 365 MiB line).
const HOST_PEAK_MIB: u64 = 64;

#[test]
fn an_endless_line_and_bad_stderr_bytes_leave_the_host_small_and_serving() {
    let mib = FLOOD_MIB.to_string();
    let Some(env) = fake_server_with(&["hostile", "flood.progress", &mib], 60_000) else {
        return;
    };
    let started = env.reins(&["run", "codex", "--id", "flood", "--detach"]).ok().json();
    let host = started["host_pid"].as_u64().unwrap();
    env.reins(&["wait", "--id", "flood", "--until", "ready", "--timeout", "10s"]).ok();
    let rss_ready = vm_kib(host, "VmRSS");
    env.reins(&["send", "--id", "flood", "--no-wait", "flood"]).ok();

    // While the line streams in, the host answers `status` (the progress
    // file says how far the agent got before and after each answer).
    let progress = env.work.join("flood.progress");
    let written = || -> u64 {
        std::fs::read_to_string(&progress).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut served_mid_flood = 0;
    let mut slowest = Duration::ZERO;
    loop {
        let before = written();
        if before >= FLOOD_MIB {
            break;
        }
        assert!(Instant::now() < deadline, "the flood stalled at {before} MiB");
        let asked = Instant::now();
        let status = env.reins(&["status", "--id", "flood", "--json"]).ok().json();
        slowest = slowest.max(asked.elapsed());
        assert_eq!(status[0]["id"], "flood", "{status}");
        if before > 0 && written() < FLOOD_MIB {
            served_mid_flood += 1;
        }
    }
    assert!(served_mid_flood > 0, "status was never asked while the line streamed in");
    let done = env
        .reins(&["wait", "--id", "flood", "--until", "task_complete", "--timeout", "60s"])
        .ok()
        .json();
    assert_eq!(done["event"]["status"], "completed", "{done}");

    let peak = vm_kib(host, "VmHWM");
    eprintln!(
        "host RSS: {} MiB when ready, peak {} MiB over a {FLOOD_MIB} MiB line; \
         {served_mid_flood} status answers during it, slowest {slowest:?}",
        rss_ready >> 10,
        peak >> 10
    );
    assert!(peak < HOST_PEAK_MIB << 10, "the host grew to {} MiB", peak >> 10);

    // What was on stderr is in host.log, decoded lossily and cut to size,
    // and the draining went on to the end.
    let log = std::fs::read_to_string(env.session_dir("flood").join("host.log")).unwrap();
    assert!(log.contains("error: bad \u{fffd}\u{fffd} bytes from the agent"), "{log}");
    assert!(log.contains("noise 3999 \u{fffd}( \u{fffd} more noise"), "lossy, every line");
    assert!(log.contains("more bytes cut)"), "the 4 MiB stderr line is cut");
    assert!(log.contains("stderr still drained"));
    assert!(log.contains("a line longer than 16 MiB"), "the endless line is reported");
    assert!(log.len() < 1 << 20, "host.log holds no huge line: {} bytes", log.len());

    // The session goes on working, and ends cleanly.
    let out = env
        .reins(&["send", "--id", "flood", "--wait-for-idle", "--timeout", "10s", "after"])
        .ok()
        .json();
    assert_eq!(out["task"]["status"], "completed", "{out}");
    let pane = env.reins(&["pane", "--id", "flood"]).ok().stdout;
    assert!(pane.contains("FAKE_OK flood") && pane.contains("FAKE_OK after"), "{pane}");
    let stopped = env.reins(&["stop", "--id", "flood"]).ok().json();
    assert_eq!(stopped["exit"]["reason"], "stopped", "{stopped}");
    let events = env.events("flood");
    assert_eq!(events.last().unwrap()["type"], "exited");
    let turns: Vec<&Value> = events.iter().filter(|e| e["type"] == "task_complete").collect();
    assert_eq!(turns.len(), 2, "{turns:?}");
}

/// The transcript shortened a turn id by bytes and panicked the host on
/// a multi-byte character.
#[test]
fn a_non_ascii_turn_id_does_not_panic_the_host() {
    let Some(env) = fake_server_with(&["unicode-turn"], 5_000) else { return };
    env.reins(&["run", "codex", "--id", "uni", "--detach"]).ok();
    env.reins(&["wait", "--id", "uni", "--until", "ready", "--timeout", "10s"]).ok();
    for text in ["first", "second"] {
        let out = env
            .reins(&["send", "--id", "uni", "--wait-for-idle", "--timeout", "10s", text])
            .ok()
            .json();
        assert_eq!(out["task"]["status"], "completed", "{out}");
    }
    let pane = env.reins(&["pane", "--id", "uni"]).ok().stdout;
    // "tu-x" and nine of the twenty "é": the first 13 characters.
    assert!(pane.contains(&format!("─ turn tu-x{} (completed)", "é".repeat(9))), "{pane}");
    let status = env.reins(&["status", "--id", "uni", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready", "{status}");
}
