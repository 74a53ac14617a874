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
    rows.push(Row {
        what: "`run --detach` returns (session up, `started` written)".into(),
        got: format!("median {}, p99 {}", ms(median(up.clone())), ms(p99(up))),
        target: "< 50 ms".into(),
        ok: true,
    });
    rows.push(Row {
        what: "`run --detach` to mock agent ready (`wait --until ready` returns)".into(),
        got: format!("median {}, p99 {}", ms(median(ready.clone())), ms(p99(ready))),
        target: "-".into(),
        ok: true,
    });
    rows.push(status_row(&world, 20, "< 10 ms", Duration::from_millis(10)));

    // One idle host: memory, CPU and wake-ups.
    let host = world.host_pid(&id(0));
    let mem = memory(host);
    rows.push(Row {
        what: "idle host memory (RSS; PSS, private)".into(),
        got: format!("{}; {}, {}", mib(mem.rss), mib(mem.pss), mib(mem.private)),
        target: "RSS < 8 MiB".into(),
        ok: mem.rss < 8 * 1024,
    });
    let (t0, threads0) = (cpu_ticks(host), Threads::of([host]));
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (t1, idle) = (cpu_ticks(host), Threads::of([host]).since(&threads0));
    let pct = cpu_ns_percent(idle.cpu_ns, idle_secs as f64);
    rows.push(Row {
        what: format!("idle host CPU over {idle_secs} s (wake-ups: context switches)"),
        got: format!(
            "{pct:.4} % ({:.2} ms, {} ticks, {} wake-ups)",
            idle.cpu_ns as f64 / 1e6,
            t1 - t0,
            idle.wakeups
        ),
        target: "< 0.05 %, no wake-ups".into(),
        ok: pct < 0.05 && idle.wakeups == 0,
    });

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
    rows.push(Row {
        what: format!("start {} more sessions, one after another, until all are ready", MANY - 20),
        got: format!("{:.2} s", t.elapsed().as_secs_f64()),
        target: "-".into(),
        ok: true,
    });
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
    rows.push(Row {
        what: "`stop` (polite exit) to session gone".into(),
        got: format!("median {}, p99 {}", ms(median(stops.clone())), ms(p99(stops))),
        target: "-".into(),
        ok: true,
    });
    let t = Instant::now();
    let children: Vec<_> = (20..MANY)
        .map(|i| world.command(&["stop", "--id", &id(i)]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    rows.push(Row {
        what: format!("stop {} sessions at once", MANY - 20),
        got: format!("{:.2} s", t.elapsed().as_secs_f64()),
        target: "-".into(),
        ok: true,
    });

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
    Row {
        what: format!("`status --json`, {n} live session{}", if n == 1 { "" } else { "s" }),
        got: format!("median {}, p99 {}", ms(med), ms(p99(times))),
        target: target.into(),
        ok: med < limit,
    }
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
            Row {
                what: format!("`{name}` (200 sessions alive)"),
                got: format!("median {}, p99 {}", ms(med), ms(p99(times))),
                target: "< 10 ms".into(),
                ok: med < Duration::from_millis(10),
            }
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
    for i in 0..20 {
        // The whole fast path: accepted, typed, submitted, turn seen starting.
        let (took, sent) = world.timed(&["send", "--id", id, &format!("verified {i}")]);
        delivered.push(took);
        let message = sent["message_id"].as_str().unwrap();
        world.json(&["wait", "--id", id, "--message", message]);
    }
    let follow = tap.finish(from);
    let detect: Vec<Duration> = ready_to_done(world, id, from)
        .into_iter()
        .map(|(ready, done)| since(ready, done))
        .collect();
    let row = |what: String, v: Vec<Duration>, target: &str, limit: Option<Duration>| Row {
        what,
        got: format!("median {}, p99 {}", ms(median(v.clone())), ms(p99(v.clone()))),
        target: target.into(),
        ok: limit.is_none_or(|l| median(v) < l),
    };
    let ms10 = Some(Duration::from_millis(10));
    vec![
        row(format!("`send --no-wait` accepted ({label})"), accept, "< 10 ms", ms10),
        row(
            format!("`send` until delivery is verified ({label})"),
            delivered,
            "< 10 ms + 30 ms pause + turn start",
            None,
        ),
        row(
            format!("task_complete written → `wait` returns, inotify ({label})"),
            wake,
            "< 25 ms",
            Some(Duration::from_millis(25)),
        ),
        row(
            format!("task_complete written → `wait` returns, woken by the host ({label})"),
            wake_no_inotify,
            "< 25 ms",
            Some(Duration::from_millis(25)),
        ),
        row(
            format!("event written → `events --follow` prints it ({label})"),
            follow,
            "< 25 ms",
            Some(Duration::from_millis(25)),
        ),
        row(
            format!("screen ready → task_complete written ({label})"),
            detect,
            "settle + profile's done_after_busy (66 ms)",
            None,
        ),
        row(format!("`pane --json` round trip ({label})"), pane, "< 10 ms", ms10),
    ]
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
    vec![Row {
        what: format!(
            "host memory after {:.1} MB of agent output (RSS; PSS, private)",
            bytes as f64 / 1e6
        ),
        got: format!("{}; {}, {}", mib(mem.rss), mib(mem.pss), mib(mem.private)),
        target: "RSS < 8 MiB".into(),
        ok: mem.rss < 8 * 1024,
    }]
}

/// A chatty agent: how much output the host takes, and whether it still
/// answers meanwhile.
fn chatty(world: &World, id: &str) -> Vec<Row> {
    let (bytes, took, host, agent, panes) = flood(world, id, 48 * 1024);
    let secs = took.as_secs_f64();
    vec![
        Row {
            what: format!(
                "chatty agent: {:.0} MB flood, through the host (transcript, emulator) until the \
                 screen settles",
                bytes as f64 / 1e6
            ),
            got: format!(
                "{:.1} MB/s ({:.2} s; host CPU {:.0} %, agent {:.0} %)",
                bytes as f64 / 1e6 / secs,
                secs,
                cpu_percent(host, secs),
                cpu_percent(agent, secs)
            ),
            target: "-".into(),
            ok: true,
        },
        Row {
            what: "`pane --json` round trip during the flood".into(),
            got: format!(
                "median {}, p99 {} ({} probes)",
                ms(median(panes.clone())),
                ms(p99(panes.clone())),
                panes.len()
            ),
            target: "< 10 ms".into(),
            ok: median(panes) < Duration::from_millis(10),
        },
    ]
}
