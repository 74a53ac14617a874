//! What people and viewers ask for is bounded where it is read. Durations:
//! a flag, a config file or a chain file asking for more than 30 days is
//! refused as a usage error, never taken through to a deadline that
//! overflows (`wait --timeout 3000000000000000h` and `doctor --timeout
//! 1e300` panicked). Screens: a viewer's terminal size is held to the
//! bounds of `run --size` (a 3000x1500 viewer cost the host 147 MB).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::Value;

use crate::common::TestEnv;

const HUGE: &str = "3000000000000000h";
const BOUND: &str = "longest duration reins takes, 720h (30 days)";

#[track_caller]
fn refused(env: &TestEnv, args: &[&str]) {
    let out = env.reins(args).code(2);
    assert!(out.stderr.contains(BOUND), "{args:?}: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
}

#[test]
fn a_duration_flag_beyond_thirty_days_is_a_usage_error_not_a_panic() {
    let env = TestEnv::new();
    env.start("d1", &[]);
    let to = format!("--timeout={HUGE}");
    refused(&env, &["wait", "--id", "d1", "--until", "task_complete", &to]);
    refused(&env, &["wait", "--id", "d1", "--until", &format!("idle:{HUGE}")]);
    refused(&env, &["send", "--id", "d1", "--wait-for-idle", &to, "hi"]);
    refused(&env, &["stop", "--id", "d1", &to]);
    refused(&env, &["run", "mock", "--id", "d2", "--detach", &to]);
    refused(&env, &["run", "mock", "--id", "d2", "--detach", &format!("--max-runtime={HUGE}")]);
    refused(&env, &["dispatch", "--agent", "mock", "--message", "x", &to]);
    refused(
        &env,
        &["dispatch", "--agent", "mock", "--message", "x", &format!("--done=quiet:{HUGE}")],
    );
    refused(&env, &["doctor", "--timeout", "1e300"]);
    refused(&env, &["doctor", "--timeout", "inf"]);
    refused(&env, &["gc", &format!("--idle={HUGE}")]);
    // The bound itself is fine, and a session is still there to prove
    // nothing above touched it.
    env.reins(&["wait", "--id", "d1", "--until", "ready", "--timeout", "720h"]).ok();
    env.reins(&["doctor", "mock", "--timeout", "1e1"]).ok();
}

#[test]
fn a_duration_in_a_config_or_chain_file_beyond_thirty_days_is_refused() {
    let env = TestEnv::new();
    env.write_config(&format!("[agents.w]\nagent = \"mock\"\ncooldown = \"{HUGE}\"\n"));
    let out = env.reins(&["agents"]).code(2);
    assert!(out.stderr.contains("cooldown") && out.stderr.contains(BOUND), "{}", out.stderr);

    env.write_config("[agents.w]\nagent = \"mock\"\n");
    for (table, key) in [("chain", "timeout"), ("step", "timeout")] {
        let timeout = format!("{key} = \"{HUGE}\"\n");
        let (chain, step) =
            if table == "chain" { (timeout, String::new()) } else { (String::new(), timeout) };
        let text = format!(
            "[chain]\nname = \"c\"\n{chain}\n[[step]]\nname = \"s\"\nagent = \"w\"\nbrief = \"b\"\n{step}"
        );
        std::fs::write(env.work.join("c.toml"), text).unwrap();
        let out = env.reins(&["chain", "run", "c.toml", "--check"]).code(2);
        assert!(out.stderr.contains("c.toml:") && out.stderr.contains(BOUND), "{}", out.stderr);
    }
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A viewer on the session's socket, as `reins attach` is one: `GET
/// /v1/attach` upgraded to the attach stream. Returns the stream and the
/// host's reply.
fn attach_raw(socket: &str, cols: u32, rows: u32) -> (UnixStream, Value) {
    let mut stream = UnixStream::connect(socket).unwrap();
    let request = format!(
        "GET /v1/attach?cols={cols}&rows={rows} HTTP/1.1\r\nHost: reins\r\n\
         Connection: upgrade\r\nUpgrade: reins-attach\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the host hung up");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let reply = head
        .lines()
        .find_map(|l| l.strip_prefix("x-reins-attach: "))
        .unwrap_or_else(|| panic!("no reply header: {head}"));
    (stream, serde_json::from_str(reply).unwrap())
}

#[test]
fn a_viewer_asking_for_a_huge_terminal_gets_the_largest_run_size_allows() {
    let env = TestEnv::new();
    let started = env.start("big", &[]);
    env.wait_state("big", "ready");
    let (socket, host) =
        (started["socket"].as_str().unwrap(), started["host_pid"].as_u64().unwrap());
    let before = rss_kib(host);

    let (mut viewer, reply) = attach_raw(socket, 3000, 1500);
    assert_eq!(
        (reply["size"]["cols"].as_u64(), reply["size"]["rows"].as_u64()),
        (Some(1000), Some(1000)),
        "{reply}"
    );
    let resized = env.wait_event("big", Duration::from_secs(10), |e| e["type"] == "resized");
    assert_eq!(
        (resized["size"]["cols"].as_u64(), resized["size"]["rows"].as_u64()),
        (Some(1000), Some(1000))
    );
    // A resize frame (kind 1, length 4, cols and rows big-endian) of
    // 65535x3: as wide as allowed, as short as allowed.
    let mut frame = vec![1u8, 0, 0, 0, 4];
    frame.extend_from_slice(&65535u16.to_be_bytes());
    frame.extend_from_slice(&3u16.to_be_bytes());
    viewer.write_all(&frame).unwrap();
    let resized = env.wait_event("big", Duration::from_secs(10), |e| {
        e["type"] == "resized" && e["size"]["rows"] != 1000
    });
    assert_eq!(
        (resized["size"]["cols"].as_u64(), resized["size"]["rows"].as_u64()),
        (Some(1000), Some(5))
    );
    let record = std::fs::read_to_string(env.session_dir("big").join("session.json")).unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    assert_eq!(record["size"], serde_json::json!({"rows": 5, "cols": 1000}), "{record}");
    let after = rss_kib(host);
    eprintln!("host RSS: {before} KiB before, {after} KiB after a 3000x1500 viewer");
    // 3000x1500 took the host to ~147 MB; 1000x1000 is the most it may draw.
    assert!(after < 96 * 1024, "host RSS {after} KiB");
    drop(viewer);
}
