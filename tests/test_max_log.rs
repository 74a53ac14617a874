//! `run --max-log`: the transcript rotates at its limit, one old file is
//! kept, and `logs` reads across the rotation (rendered, raw, followed, and
//! after a restart of the id).

use std::io::Read;
use std::process::Stdio;

use serde_json::Value;

use crate::common::TestEnv;

/// 16 lines of 64 bytes per KiB of flood (see the mock agent).
const LINES_PER_KIB: u64 = 16;

fn flood_numbers(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("flood ")?.get(..6)?.parse().ok())
        .collect()
}

fn rotations(env: &TestEnv, id: &str) -> Vec<Value> {
    env.events(id).into_iter().filter(|e| e["type"] == "transcript_rotated").collect()
}

/// Floods `kib` KiB through session `id` and waits for the turn to end.
fn flood(env: &TestEnv, id: &str, kib: u64, text: &str) {
    let sent = env.reins(&["send", "--id", id, &format!("[[flood:{kib}]] {text}")]).ok().json();
    let message = sent["message_id"].as_str().unwrap();
    env.reins(&["wait", "--id", id, "--message", message, "--timeout", "60s"]).ok();
}

#[test]
fn the_transcript_rotates_at_its_limit_and_logs_read_across_it() {
    let env = TestEnv::new();
    env.start("rot", &["--max-log", "64K", "--", "--work", "0.05"]);
    env.wait_state("rot", "ready");
    flood(&env, "rot", 300, "go");

    let dir = env.session_dir("rot");
    let current = std::fs::read(dir.join("transcript.log")).unwrap();
    let older = std::fs::read(dir.join("transcript.log.1")).unwrap();
    for (name, len) in [("transcript.log", current.len()), ("transcript.log.1", older.len())] {
        // A file rotates before the chunk that would take it past the
        // limit; a chunk is one read of the terminal (at most 64 KiB).
        assert!(len <= 128 << 10, "{name} is {len} bytes");
    }
    assert!(older.len() > 32 << 10, "the rotated file is near the limit: {}", older.len());

    // Offsets add up: what was dropped, plus both files, is everything.
    let rotated = rotations(&env, "rot");
    assert!(rotated.len() >= 3, "300 KiB through 64 KiB files: {rotated:?}");
    let offsets: Vec<u64> =
        rotated.iter().map(|e| e["transcript_offset"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    let dropped: u64 = rotated.iter().map(|e| e["dropped_bytes"].as_u64().unwrap()).sum();
    let last = *offsets.last().unwrap();
    assert_eq!(dropped + older.len() as u64, last, "dropped + .1 = where the current file starts");

    // Rendered: the newest flood lines, in order, each once, then the answer.
    let text = env.reins(&["logs", "--id", "rot"]).ok().stdout;
    let numbers = flood_numbers(&text);
    let total = 300 * LINES_PER_KIB;
    assert_eq!(numbers.last(), Some(&total), "{text}");
    assert!(numbers[0] > 1, "the oldest lines were rotated away");
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "no gap, no repeat: {numbers:?}");
    assert!(text.contains("● MOCK_OK (you said: go)"), "{text}");
    assert!(!text.contains('\x1b'));

    // Raw: the two files, oldest first.
    let raw = env.command(&["logs", "--id", "rot", "--raw"]).output().unwrap().stdout;
    assert_eq!(raw, [older, current].concat());

    // A new run of the id goes on from where the last one ended.
    env.reins(&["stop", "--id", "rot"]).ok();
    let end = last + std::fs::metadata(dir.join("transcript.log")).unwrap().len();
    env.start("rot", &["--max-log", "64K", "--", "--work", "0.05"]);
    env.wait_state("rot", "ready");
    let started = env.events("rot").into_iter().rfind(|e| e["type"] == "started").unwrap();
    assert_eq!(started["transcript_offset"], end, "{started}");
    flood(&env, "rot", 1, "second");
    let text = env.reins(&["logs", "--id", "rot"]).ok().stdout;
    assert!(text.contains("● MOCK_OK (you said: go)"), "{text}");
    assert!(text.contains("● MOCK_OK (you said: second)"), "{text}");
    assert_eq!(text.matches(&format!("flood {total:06} ")).count(), 1, "{text}");
}

#[test]
fn raw_logs_follow_the_output_across_rotations() {
    let env = TestEnv::new();
    env.start("rf", &["--max-log", "64K", "--", "--work", "0.05"]);
    env.wait_state("rf", "ready");
    let mut follower = env
        .command(&["logs", "--id", "rf", "--raw", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        out
    });
    flood(&env, "rf", 160, "go");
    assert!(rotations(&env, "rf").len() >= 2);
    env.reins(&["stop", "--id", "rf"]).ok();
    assert!(follower.wait().unwrap().success());
    let out = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let numbers: Vec<u64> = out
        .match_indices("flood ")
        .filter_map(|(i, _)| out.get(i + 6..i + 12)?.parse().ok())
        .collect();
    let expected: Vec<u64> = (1..=160 * LINES_PER_KIB).collect();
    assert_eq!(numbers, expected, "every line once, in order, across the rotations");
}

#[test]
fn max_log_none_never_rotates_and_bad_sizes_are_refused() {
    let env = TestEnv::new();
    env.start("nl", &["--max-log", "none", "--", "--work", "0.05"]);
    env.wait_state("nl", "ready");
    flood(&env, "nl", 100, "go");
    assert!(!env.session_dir("nl").join("transcript.log.1").exists());
    assert!(rotations(&env, "nl").is_empty());

    for bad in ["12X", "100", "1T"] {
        let out = env.reins(&["run", "mock", "--id", "bad", "--detach", "--max-log", bad]).code(2);
        assert!(out.stderr.contains("--max-log"), "{bad}: {}", out.stderr);
    }
}
