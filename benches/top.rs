//! `reins top` over 200 sessions, measured on the release binary in a
//! real tmux pane:
//! - the time to draw a frame (the dashboard writes its frame timings to
//!   `REINS_TOP_STATS`), over 100 selection moves;
//! - its CPU while nothing happens, over a minute
//!   (`REINS_BENCH_IDLE_SECS` shortens it);
//! - from an event being written (a session going busy) to the frame that
//!   shows it.
//!
//! `cargo bench --bench top`; results go to `benches/results/<date>-top.md`.

mod common;

use std::time::{Duration, Instant};

use common::{Row, World, cpu_percent, cpu_ticks, event_time, median, ms, p99, report};
use serde_json::Value;

const SESSIONS: usize = 200;

fn main() {
    common::raise_nofile();
    let idle_secs: u64 =
        std::env::var("REINS_BENCH_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let world = World::new();
    for i in 0..SESSIONS {
        world.start(&format!("t{i:03}"), &["--work", "0.3"]);
    }
    for i in 0..SESSIONS {
        world.wait_ready(&format!("t{i:03}"));
    }
    let stats = world.work.join("top-stats.jsonl");
    let command = format!(
        "{}={} {} {}",
        "REINS_TOP_STATS",
        stats.display(),
        env!("CARGO_BIN_EXE_reins"),
        "top"
    );
    let envs: Vec<String> = world.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let line = format!("exec env {} {command}", envs.join(" "));
    let out = world.tmux(&["new-session", "-d", "-s", "top", "-x", "200", "-y", "60", &line]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for(&stats, |frames| frames.iter().any(|f| f["cause"] == "start"));
    // `exec env` execs reins: the pane's process is the dashboard.
    let out = world.tmux(&["display-message", "-p", "-t", "top", "#{pane_pid}"]);
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();

    // Frames: 100 selection moves, each waited for (the dashboard draws
    // one frame for the keys that arrive together).
    for n in 1..=100 {
        world.tmux(&["send-keys", "-t", "top", "j"]);
        wait_for(&stats, |frames| frames.iter().filter(|f| f["cause"] == "input").count() >= n);
    }
    let frames = wait_for(&stats, |_| true);
    let draws: Vec<Duration> = frames
        .iter()
        .filter(|f| f["cause"] == "input")
        .map(|f| Duration::from_micros(f["draw_us"].as_u64().unwrap()))
        .collect();

    // Idle CPU.
    let t0 = Instant::now();
    let c0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle = cpu_percent(cpu_ticks(pid) - c0, t0.elapsed().as_secs_f64());

    // Event → frame: 20 sessions go busy, one at a time.
    let mut latencies = Vec::new();
    for i in 0..20 {
        let id = format!("t{i:03}");
        world.json(&["send", "--id", &id, "hello"]);
        let busy = world
            .events(&id)
            .into_iter()
            .rev()
            .find(|e| e["type"] == "state" && e["to"] == "busy")
            .expect("a busy event");
        let at = event_time(&busy).as_millisecond();
        let frames = wait_for(&stats, |frames| {
            frames.iter().any(|f| f["cause"] == "files" && f["t"].as_i64().unwrap() >= at)
        });
        let shown = frames
            .iter()
            .filter(|f| f["cause"] == "files")
            .map(|f| f["t"].as_i64().unwrap())
            .find(|t| *t >= at)
            .unwrap();
        latencies.push(Duration::from_millis((shown - at) as u64));
        world.json(&["wait", "--id", &id, "--until", "task_complete", "--timeout", "30s"]);
    }
    world.tmux(&["send-keys", "-t", "top", "q"]);

    let rows = vec![
        Row::checked(
            format!("frame draw time, {SESSIONS} sessions (100 selection moves)"),
            format!("median {}, p99 {}", ms(median(draws.clone())), ms(p99(draws.clone()))),
            "< 10 ms",
            p99(draws) < Duration::from_millis(10),
        ),
        Row::checked(
            format!("CPU of an idle dashboard over {idle_secs} s"),
            format!("{idle:.2}%"),
            "< 1%",
            idle < 1.0,
        ),
        Row::checked(
            "event written → the frame that shows it (20 sessions going busy)",
            format!("median {}, p99 {}", ms(median(latencies.clone())), ms(p99(latencies.clone()))),
            "< 100 ms",
            median(latencies) < Duration::from_millis(100),
        ),
    ];
    report("top", &rows);
}

/// Waits until the stats file satisfies `ready`; returns its frames.
fn wait_for(path: &std::path::Path, ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let frames: Vec<Value> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if ready(&frames) {
            return frames;
        }
        assert!(Instant::now() < deadline, "the dashboard's frames never came: {path:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
