//! The benchmark suite: drives the real (release) `reins` binary with the
//! built-in mock agent and prints one table of measured figures against
//! their targets (issue 7).
//!
//! Run with `cargo bench --bench suite` (about four minutes on two cores).
//! Results are also written to `benches/results/<date>.md`.
//! `REINS_BENCH_IDLE_SECS` shortens the idle-CPU measurement (default 60 s,
//! the figure the target is stated for). The 200-session scale run with
//! tmux panes and concurrent cycles is `cargo bench --bench scale`.
//!
//! Latencies measured from an event's `ts` use its millisecond timestamp,
//! which is truncated: they read up to 1 ms high.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Row, Threads, World, cpu_ns_percent, cpu_percent, cpu_ticks, event_time, median, memory, mib,
    ms, p99, report, since,
};
use serde_json::Value;

/// Sessions for the 200-session figures.
const MANY: usize = 200;

fn id(i: usize) -> String {
    format!("w{i:03}")
}

fn main() {
    let idle_secs: u64 =
        std::env::var("REINS_BENCH_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    common::raise_nofile();
    let world = World::new();
    let mut rows = Vec::new();

    // run --detach until the session is up (the run's own return), and to
    // ready; over the first 20 sessions.
    let mut up = Vec::new();
    let mut ready = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        world.start(&id(i), &["--work", "0.05"]);
        up.push(t.elapsed());
        world.wait_ready(&id(i));
        ready.push(t.elapsed());
        if i == 0 {
            rows.push(status_row(&world, 1, "< 10 ms", Duration::from_millis(10)));
        }
    }
    let up_median = median(up.clone());
    rows.push(Row::checked(
        "`run --detach` returns (session up, `started` written)",
        format!("median {}, p99 {}", ms(up_median), ms(p99(up))),
        "< 50 ms",
        up_median < Duration::from_millis(50),
    ));
    rows.push(Row::measured(
        "`run --detach` to mock agent ready (`wait --until ready` returns)",
        format!("median {}, p99 {}", ms(median(ready.clone())), ms(p99(ready))),
    ));
    rows.push(status_row(&world, 20, "< 10 ms", Duration::from_millis(10)));

    // One idle host: memory, CPU and wake-ups.
    let host = world.host_pid(&id(0));
    let mem = memory(host);
    rows.push(Row::checked(
        "idle host memory (RSS; PSS, private)",
        format!("{}; {}, {}", mib(mem.rss), mib(mem.pss), mib(mem.private)),
        "RSS < 8 MiB",
        mem.rss < 8 * 1024,
    ));
    let (t0, threads0) = (cpu_ticks(host), Threads::of([host]));
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (t1, idle) = (cpu_ticks(host), Threads::of([host]).since(&threads0));
    let pct = cpu_ns_percent(idle.cpu_ns, idle_secs as f64);
    rows.push(Row::checked(
        format!("idle host CPU over {idle_secs} s (wake-ups: context switches)"),
        format!(
            "{pct:.4} % ({:.2} ms, {} ticks, {} wake-ups)",
            idle.cpu_ns as f64 / 1e6,
            t1 - t0,
            idle.wakeups
        ),
        "< 0.05 %, no wake-ups",
        pct < 0.05 && idle.wakeups == 0,
    ));

    rows.extend(turn_figures(&world, &id(0), "20 sessions alive"));
    rows.extend(after_output(&world, &id(1)));
    rows.extend(chatty(&world, &id(2)));

    // 200 sessions alive.
    let t = Instant::now();
    for i in 20..MANY {
        world.start(&id(i), &["--work", "0.05"]);
    }
    for i in 20..MANY {
        world.wait_ready(&id(i));
    }
    rows.push(Row::measured(
        format!("start {} more sessions, one after another, until all are ready", MANY - 20),
        format!("{:.2} s", t.elapsed().as_secs_f64()),
    ));
    rows.push(status_row(&world, MANY, "< 30 ms", Duration::from_millis(30)));
    rows.extend(client_commands(&world, &id(150)));
    rows.extend(turn_figures(&world, &id(151), "200 sessions alive"));

    // stop: request to session gone, then the rest all at once.
    let mut stops = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        world.json(&["stop", "--id", &id(i)]);
        stops.push(t.elapsed());
    }
    rows.push(Row::measured(
        "`stop` (polite exit) to session gone",
        format!("median {}, p99 {}", ms(median(stops.clone())), ms(p99(stops))),
    ));
    let t = Instant::now();
    let children: Vec<_> = (20..MANY)
        .map(|i| world.command(&["stop", "--id", &id(i)]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    rows.push(Row::measured(
        format!("stop {} sessions at once", MANY - 20),
        format!("{:.2} s", t.elapsed().as_secs_f64()),
    ));

    report("suite", &rows);
}

/// `status --json` over all sessions, `n` of them alive.
fn status_row(world: &World, n: usize, target: &str, limit: Duration) -> Row {
    let mut times = Vec::new();
    for _ in 0..50 {
        let (took, rows) = world.timed(&["status", "--json"]);
        assert_eq!(rows.as_array().unwrap().len(), n);
        times.push(took);
    }
    let med = median(times.clone());
    Row::checked(
        format!("`status --json`, {n} live session{}", if n == 1 { "" } else { "s" }),
        format!("median {}, p99 {}", ms(med), ms(p99(times))),
        target,
        med < limit,
    )
}

/// Client commands against one session while 200 are alive: each starts,
/// reads files or asks the host, answers and exits.
fn client_commands(world: &World, id: &str) -> Vec<Row> {
    let sent = world.json(&["send", "--id", id, "warm up"]);
    let message = sent["message_id"].as_str().unwrap().to_string();
    world.json(&["wait", "--id", id, "--message", &message]);
    let commands: [(&str, Vec<&str>); 6] = [
        ("status --id ID --json", vec!["status", "--id", id, "--json"]),
        ("pane --json", vec!["pane", "--id", id, "--json"]),
        ("inbox --json", vec!["inbox", "--id", id, "--json"]),
        ("events --snapshot", vec!["events", "--id", id, "--snapshot"]),
        ("wait (turn already complete)", vec!["wait", "--id", id, "--message", &message]),
        ("logs --lines 20", vec!["logs", "--id", id, "--lines", "20"]),
    ];
    commands
        .iter()
        .map(|(name, args)| {
            let mut times = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                let out = world.reins(args);
                times.push(t.elapsed());
                assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
            }
            let med = median(times.clone());
            Row::checked(
                format!("`{name}` (200 sessions alive)"),
                format!("median {}, p99 {}", ms(med), ms(p99(times))),
                "< 10 ms",
                med < Duration::from_millis(10),
            )
        })
        .collect()
}

/// A live `events --follow`: every line with the wall-clock time it
/// arrived.
struct EventTap {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<(jiff::Timestamp, Value)>>>,
}

impl EventTap {
    fn start(world: &World, id: &str) -> EventTap {
        let mut child = world
            .command(&["events", "--id", id, "--follow", "--run", "last"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                let now = jiff::Timestamp::now();
                if let Ok(value) = serde_json::from_str(&line) {
                    sink.lock().unwrap().push((now, value));
                }
            }
        });
        EventTap { child, lines }
    }

    /// Arrival latencies of the events written after `from`.
    fn finish(mut self, from: jiff::Timestamp) -> Vec<Duration> {
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|(_, e)| event_time(e) >= from)
            .map(|(arrived, e)| since(event_time(e), *arrived))
            .collect()
    }
}

/// Message round trips and turn-end latencies on session `id`.
fn turn_figures(world: &World, id: &str, label: &str) -> Vec<Row> {
    let from = jiff::Timestamp::now();
    let tap = EventTap::start(world, id);
    let mut accept = Vec::new();
    let mut delivered = Vec::new();
    let mut wake = Vec::new();
    let mut wake_no_inotify = Vec::new();
    let mut pane = Vec::new();
    for i in 0..40 {
        // Accepted into the inbox (send --no-wait).
        let (took, sent) = world.timed(&["send", "--id", id, "--no-wait", &format!("bench {i}")]);
        accept.push(took);
        // Wait for that message's turn; the latency that matters is from
        // the task_complete event being written to wait returning. Every
        // second wait is woken by the host instead of inotify.
        let message = sent["message_id"].as_str().unwrap();
        let mut wait = world.command(&["wait", "--id", id, "--message", message]);
        if i % 2 == 1 {
            wait.env("REINS_NO_INOTIFY", "1");
        }
        let out = wait.output().unwrap();
        let returned = jiff::Timestamp::now();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let waited: Value = serde_json::from_slice(&out.stdout).unwrap();
        let latency = since(event_time(&waited["event"]), returned);
        let into = if i % 2 == 1 { &mut wake_no_inotify } else { &mut wake };
        into.push(latency);
        let (took, _) = world.timed(&["pane", "--id", id, "--json"]);
        pane.push(took);
    }
    let mut verified = Vec::new();
    for i in 0..20 {
        // The whole fast path: accepted, typed, submitted, turn seen starting.
        let (took, sent) = world.timed(&["send", "--id", id, &format!("verified {i}")]);
        delivered.push(took);
        let message = sent["message_id"].as_str().unwrap().to_string();
        world.json(&["wait", "--id", id, "--message", &message]);
        verified.push((message, took));
    }
    // The host's part of a verified send: from `queued` (the message is
    // in) to `delivered` (typed, the paste pause, submitted, the turn seen
    // starting). The rest is the client's.
    let events = world.events(id);
    let at = |kind: &str, message: &str| {
        events
            .iter()
            .find(|e| e["type"] == kind && e["message_id"] == message)
            .map(event_time)
            .unwrap_or_else(|| panic!("{id}: no {kind} event for {message}"))
    };
    let client_part: Vec<Duration> = verified
        .iter()
        .map(|(message, took)| {
            took.saturating_sub(since(at("queued", message), at("delivered", message)))
        })
        .collect();
    let follow = tap.finish(from);
    let detect: Vec<Duration> = ready_to_done(world, id, from)
        .into_iter()
        .map(|(ready, done)| since(ready, done))
        .collect();
    let row = |what: String, v: Vec<Duration>, target: &str, limit: Duration| {
        let got = format!("median {}, p99 {}", ms(median(v.clone())), ms(p99(v.clone())));
        Row::checked(what, got, target, median(v) < limit)
    };
    let ms10 = Duration::from_millis(10);
    let (settle, done_after_busy) = mock_turn_end();
    let client_median = median(client_part.clone());
    vec![
        row(format!("`send --no-wait` accepted ({label})"), accept, "< 10 ms", ms10),
        Row::checked(
            format!("`send` until delivery is verified ({label})"),
            format!(
                "median {}, p99 {}; the client's part (outside queued → delivered) median {}",
                ms(median(delivered.clone())),
                ms(p99(delivered)),
                ms(client_median)
            ),
            "< 10 ms + 30 ms pause + turn start",
            client_median < ms10,
        ),
        row(
            format!("task_complete written → `wait` returns, inotify ({label})"),
            wake,
            "< 25 ms",
            Duration::from_millis(25),
        ),
        row(
            format!("task_complete written → `wait` returns, woken by the host ({label})"),
            wake_no_inotify,
            "< 25 ms",
            Duration::from_millis(25),
        ),
        row(
            format!("event written → `events --follow` prints it ({label})"),
            follow,
            "< 25 ms",
            Duration::from_millis(25),
        ),
        row(
            format!("screen ready → task_complete written ({label})"),
            detect,
            &format!(
                "at most settle + profile's done_after_busy ({} ms)",
                (settle + done_after_busy).as_millis()
            ),
            // Event times are whole milliseconds: one more is the same.
            settle + done_after_busy + Duration::from_millis(1),
        ),
        row(format!("`pane --json` round trip ({label})"), pane, "< 10 ms", ms10),
    ]
}

/// The mock profile's settle time (the default: it sets none) and its
/// `done_after_busy_ms`, from `adapters/mock.toml`: together, how long
/// after the screen reads ready a turn can be called done.
fn mock_turn_end() -> (Duration, Duration) {
    const DEFAULT_SETTLE_MS: u64 = 16;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/mock.toml");
    let profile: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let ms_of = |table: &str, key: &str| profile.get(table)?.get(key)?.as_integer();
    let settle = ms_of("screen", "settle_ms").map_or(DEFAULT_SETTLE_MS, |v| v as u64);
    let done = ms_of("turn", "done_after_busy_ms").expect("mock.toml sets done_after_busy_ms");
    (Duration::from_millis(settle), Duration::from_millis(done as u64))
}

/// For each turn of `id` completed after `from`: when the screen turned
/// ready and when task_complete was written.
fn ready_to_done(
    world: &World,
    id: &str,
    from: jiff::Timestamp,
) -> Vec<(jiff::Timestamp, jiff::Timestamp)> {
    let mut ready_at = None;
    let mut pairs = Vec::new();
    for e in world.events(id).iter().filter(|e| event_time(e) >= from) {
        if e["type"] == "state" && e["to"] == "ready" {
            ready_at = Some(event_time(e));
        }
        if e["type"] == "task_complete"
            && let Some(ready) = ready_at.take()
        {
            pairs.push((ready, event_time(e)));
        }
    }
    pairs
}

/// Bytes the transcript of `id` has received (across rotations).
fn transcript_end(world: &World, id: &str) -> u64 {
    let base = world
        .events(id)
        .iter()
        .filter(|e| e["type"] == "transcript_rotated")
        .filter_map(|e| e["transcript_offset"].as_u64())
        .next_back()
        .unwrap_or(0);
    let status = world.json(&["status", "--id", id, "--json"]);
    let dir = status[0]["session_dir"].as_str().unwrap().to_string();
    base + std::fs::metadata(format!("{dir}/transcript.log")).map_or(0, |m| m.len())
}

/// Floods `kib` KiB through `id`; returns (bytes, elapsed until the screen
/// settled after the flood, host ticks, agent ticks, pane round trips
/// meanwhile).
fn flood(world: &World, id: &str, kib: u64) -> (u64, Duration, u64, u64, Vec<Duration>) {
    let (host, agent) = (world.host_pid(id), world.agent_pid(id));
    let bytes_before = transcript_end(world, id);
    let (host0, agent0) = (cpu_ticks(host), cpu_ticks(agent));
    let started = jiff::Timestamp::now();
    let sent = world.json(&["send", "--id", id, "--no-wait", &format!("[[flood:{kib}]] go")]);
    // Someone looks at the screen every 50 ms while it floods.
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        let mut cmd = world.command(&["pane", "--id", id, "--json"]);
        std::thread::spawn(move || {
            let mut times = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                let out = cmd.output().unwrap();
                assert!(out.status.success());
                times.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(50));
            }
            times
        })
    };
    let message = sent["message_id"].as_str().unwrap();
    world.json(&["wait", "--id", id, "--message", message, "--timeout", "300s"]);
    done.store(true, Ordering::Relaxed);
    let panes = prober.join().unwrap();
    let (host1, agent1) = (cpu_ticks(host), cpu_ticks(agent));
    let settled = world
        .events(id)
        .iter()
        .filter(|e| e["type"] == "state" && e["to"] == "ready" && event_time(e) > started)
        .map(event_time)
        .next_back()
        .unwrap();
    let bytes = transcript_end(world, id) - bytes_before;
    (bytes, since(started, settled), host1 - host0, agent1 - agent0, panes)
}

/// Host memory after 10 MiB of agent output.
fn after_output(world: &World, id: &str) -> Vec<Row> {
    let (bytes, ..) = flood(world, id, 10 * 1024);
    let mem = memory(world.host_pid(id));
    vec![Row::checked(
        format!(
            "host memory after {:.1} MB of agent output (RSS; PSS, private)",
            bytes as f64 / 1e6
        ),
        format!("{}; {}, {}", mib(mem.rss), mib(mem.pss), mib(mem.private)),
        "RSS < 8 MiB",
        mem.rss < 8 * 1024,
    )]
}

/// A chatty agent: how much output the host takes, and whether it still
/// answers meanwhile.
fn chatty(world: &World, id: &str) -> Vec<Row> {
    let (bytes, took, host, agent, panes) = flood(world, id, 48 * 1024);
    let secs = took.as_secs_f64();
    vec![
        Row::measured(
            format!(
                "chatty agent: {:.0} MB flood, through the host (transcript, emulator) until the \
                 screen settles",
                bytes as f64 / 1e6
            ),
            format!(
                "{:.1} MB/s ({:.2} s; host CPU {:.0} %, agent {:.0} %)",
                bytes as f64 / 1e6 / secs,
                secs,
                cpu_percent(host, secs),
                cpu_percent(agent, secs)
            ),
        ),
        Row::checked(
            "`pane --json` round trip during the flood",
            format!(
                "median {}, p99 {} ({} probes)",
                ms(median(panes.clone())),
                ms(p99(panes.clone())),
                panes.len()
            ),
            "< 10 ms",
            median(panes) < Duration::from_millis(10),
        ),
    ]
}
