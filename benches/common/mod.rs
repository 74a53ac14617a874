//! What every benchmark harness shares: statistics and the results table.

#![allow(dead_code, reason = "each harness uses a different subset")]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One line of the results table.
pub struct Row {
    pub what: String,
    pub got: String,
    /// What the figure should be, or `-` for a figure with no target.
    pub target: String,
    /// The verdict against `target`, computed from the measurement: `None`
    /// exactly when there is no target ([`report`] refuses anything else,
    /// so no row can say "ok" without a check behind it).
    pub ok: Option<bool>,
}

impl Row {
    /// A figure with no target.
    pub fn measured(what: impl Into<String>, got: impl Into<String>) -> Row {
        Row { what: what.into(), got: got.into(), target: "-".into(), ok: None }
    }

    /// A figure and whether it met `target`.
    pub fn checked(
        what: impl Into<String>,
        got: impl Into<String>,
        target: impl Into<String>,
        ok: bool,
    ) -> Row {
        Row { what: what.into(), got: got.into(), target: target.into(), ok: Some(ok) }
    }
}

/// The commit the measured binary was built from (`git describe --always
/// --dirty`), for the results to name.
pub fn commit() -> String {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unknown".into(),
    }
}

/// The results table in Markdown, with how many targets were met.
pub fn table(rows: &[Row]) -> String {
    let mut md = String::from("| measurement | result | target | |\n|---|---|---|---|\n");
    for r in rows {
        assert_eq!(
            r.ok.is_none(),
            r.target == "-",
            "a row with a target needs a verdict, and one without needs none: {}",
            r.what
        );
        let mark = match r.ok {
            None => "",
            Some(true) => "ok",
            Some(false) => "MISSED",
        };
        md.push_str(&format!("| {} | {} | {} | {mark} |\n", r.what, r.got, r.target));
    }
    let checked: Vec<bool> = rows.iter().filter_map(|r| r.ok).collect();
    let met = checked.iter().filter(|ok| **ok).count();
    md.push_str(&format!("\n{met} of {} targets met.\n", checked.len()));
    md
}

/// The median (upper middle) of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The 99th percentile of `v`.
pub fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Prints the table and writes it to `benches/results/<date>[-name].md`.
pub fn report(name: &str, rows: &[Row]) {
    let mut md = String::new();
    let date = today();
    md.push_str(&format!("# reins benchmarks ({name}), {date}\n\n"));
    md.push_str(&format!("Machine: {} cores, {}\nCommit: {}\n\n", num_cpus(), machine(), commit()));
    md.push_str(&table(rows));
    println!("\n{md}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    std::fs::create_dir_all(&dir).unwrap();
    let file = if name == "suite" { format!("{date}.md") } else { format!("{date}-{name}.md") };
    let path = dir.join(file);
    std::fs::write(&path, md).unwrap();
    println!("written to {}", path.display());
}

/// Today, `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()
}

/// The CPU's model name.
pub fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A private reins world for a harness: its own state, runtime and home
/// directories (and tmux server), and the release binary under test.
pub struct World {
    root: tempfile::TempDir,
    pub work: std::path::PathBuf,
    pub env: Vec<(String, String)>,
    tmux_server: String,
}

impl World {
    pub fn new() -> World {
        // Short paths: socket paths must stay under 108 bytes.
        let root = tempfile::Builder::new().prefix("rb").tempdir_in("/tmp").unwrap();
        for dir in ["work", "state", "run", "home"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let p = |d: &str| root.path().join(d).display().to_string();
        let tmux_server = format!("reins-bench-{}", std::process::id());
        let env = vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), p("home")),
            ("REINS_STATE_DIR".into(), p("state")),
            ("XDG_RUNTIME_DIR".into(), p("run")),
            ("XDG_CONFIG_HOME".into(), p("home")),
            ("REINS_TMUX_SERVER".into(), tmux_server.clone()),
            ("TERM".into(), "xterm-256color".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ];
        World { work: root.path().join("work"), root, env, tmux_server }
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.root.path().join("state")
    }

    /// `$XDG_RUNTIME_DIR` of this world.
    pub fn runtime_dir(&self) -> std::path::PathBuf {
        self.root.path().join("run")
    }

    /// Writes this world's `config.toml`.
    pub fn write_config(&self, text: &str) {
        let dir = self.root.path().join("home/reins");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), text).unwrap();
    }

    /// A `reins` command in this world.
    pub fn command(&self, args: &[&str]) -> Command {
        self.launcher().command(args)
    }

    /// What other threads need to run `reins` here (the world itself stays
    /// with the thread that cleans it up).
    pub fn launcher(&self) -> Launcher {
        Launcher { work: self.work.clone(), env: self.env.clone() }
    }

    pub fn reins(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    /// Runs `reins` and parses its JSON output; panics on failure.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.reins(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `reins`, timing it; panics on failure.
    pub fn timed(&self, args: &[&str]) -> (Duration, serde_json::Value) {
        self.launcher().timed(args)
    }

    /// `reins run mock --id ID --detach [-- agent args]`.
    pub fn start(&self, id: &str, agent_args: &[&str]) -> serde_json::Value {
        let mut args = vec!["run", "mock", "--id", id, "--detach", "--"];
        args.extend_from_slice(agent_args);
        self.json(&args)
    }

    /// Blocks until `id` is ready.
    pub fn wait_ready(&self, id: &str) {
        self.json(&["wait", "--id", id, "--until", "ready", "--timeout", "60s"]);
    }

    /// The host pid of a live session.
    pub fn host_pid(&self, id: &str) -> u32 {
        let v = self.json(&["status", "--id", id, "--json"]);
        v[0]["host_pid"].as_u64().unwrap() as u32
    }

    /// The agent pid of a live session.
    pub fn agent_pid(&self, id: &str) -> u32 {
        let v = self.json(&["status", "--id", id, "--json"]);
        v[0]["agent_pid"].as_u64().unwrap() as u32
    }

    /// Parsed events of session `id`.
    pub fn events(&self, id: &str) -> Vec<serde_json::Value> {
        let out = self.reins(&["events", "--id", id, "--snapshot"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// A tmux command against this world's private server.
    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.tmux_server]).args(args).output().unwrap()
    }

    /// The pid of this world's tmux server, if it runs.
    pub fn tmux_server_pid(&self) -> Option<u32> {
        let out = self.tmux(&["display-message", "-p", "#{pid}"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}

impl Drop for World {
    /// Kills every host and agent still registered (a harness that failed
    /// half-way must not leave hundreds of sessions running), then the
    /// private tmux server.
    fn drop(&mut self) {
        let sessions = self.state_dir().join("sessions");
        for scope in std::fs::read_dir(&sessions).into_iter().flatten().flatten() {
            for session in std::fs::read_dir(scope.path()).into_iter().flatten().flatten() {
                let Ok(text) = std::fs::read_to_string(session.path().join("session.json")) else {
                    continue;
                };
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                for key in ["host_pid", "agent_pid"] {
                    let pid = record[key].as_i64().and_then(|p| i32::try_from(p).ok());
                    if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
        }
        let _ = self.tmux(&["kill-server"]);
    }
}

/// Runs `reins` in a world, from any thread.
#[derive(Clone)]
pub struct Launcher {
    work: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl Launcher {
    /// A `reins` command in the world.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reins"));
        cmd.args(args)
            .current_dir(&self.work)
            .env_clear()
            .envs(self.env.iter().cloned())
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs `reins`, timing it, and parses its JSON; panics on failure.
    pub fn timed(&self, args: &[&str]) -> (Duration, serde_json::Value) {
        let t = std::time::Instant::now();
        let out = self.command(args).output().unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (took, serde_json::from_slice(&out.stdout).unwrap())
    }
}

/// Memory of one process: resident, proportional and private, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss: u64,
    pub pss: u64,
    pub private: u64,
}

impl std::ops::AddAssign for Memory {
    fn add_assign(&mut self, other: Memory) {
        self.rss += other.rss;
        self.pss += other.pss;
        self.private += other.private;
    }
}

/// Reads `/proc/PID/smaps_rollup` (zero for a process that is gone).
pub fn memory(pid: u32) -> Memory {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return Memory::default();
    };
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss: field("Rss:"),
        pss: field("Pss:"),
        private: field("Private_Clean:") + field("Private_Dirty:"),
    }
}

/// KiB as MiB with two decimals.
pub fn mib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

/// utime + stime of a process, in clock ticks (zero once it is gone).
pub fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// CPU time of this process's finished children (the clients a harness
/// ran and waited for), in nanoseconds.
pub fn children_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[13].parse::<u64>().unwrap() + f[14].parse::<u64>().unwrap();
    ticks * 1_000_000_000 / clock_ticks_per_sec()
}

/// CPU nanoseconds as a percentage of `secs` seconds of one core.
pub fn cpu_ns_percent(ns: u64, secs: f64) -> f64 {
    ns as f64 / 1e9 / secs * 100.0
}

/// The threads of some processes at one moment: CPU nanoseconds
/// (`/proc/PID/task/TID/schedstat`: exact, where `cpu_ticks` rounds to
/// 10 ms ticks) and context switches (how often each thread woke).
#[derive(Debug, Default, Clone)]
pub struct Threads(std::collections::HashMap<(u32, u32), (u64, u64)>);

/// What some processes did between two [`Threads`] samples.
#[derive(Debug, Default, Clone, Copy)]
pub struct Activity {
    pub cpu_ns: u64,
    pub wakeups: u64,
    /// Threads gone in between (tokio's blocking threads end after 10 s
    /// idle). Each counts as one wake-up; the CPU its exit took is lost,
    /// a few microseconds.
    pub ended: u64,
}

impl Threads {
    pub fn of(pids: impl IntoIterator<Item = u32>) -> Threads {
        let mut all = std::collections::HashMap::new();
        for pid in pids {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                let read = |name: &str| std::fs::read_to_string(task.path().join(name));
                let cpu = read("schedstat")
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                let switches = read("status").map_or(0, |status| {
                    status
                        .lines()
                        .filter(|l| l.contains("ctxt_switches"))
                        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                        .sum()
                });
                all.insert((pid, tid), (cpu, switches));
            }
        }
        Threads(all)
    }

    pub fn since(&self, earlier: &Threads) -> Activity {
        let mut activity = Activity::default();
        for (key, (cpu, switches)) in &self.0 {
            let (cpu0, switches0) = earlier.0.get(key).copied().unwrap_or_default();
            activity.cpu_ns += cpu.saturating_sub(cpu0);
            activity.wakeups += switches.saturating_sub(switches0);
        }
        activity.ended = earlier.0.keys().filter(|k| !self.0.contains_key(k)).count() as u64;
        activity.wakeups += activity.ended;
        activity
    }
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

pub fn clock_ticks_per_sec() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100)
}

/// CPU time in ticks as a percentage of `secs` seconds of one core.
pub fn cpu_percent(ticks: u64, secs: f64) -> f64 {
    ticks as f64 / clock_ticks_per_sec() as f64 / secs * 100.0
}

/// Raises this process's open-file soft limit to the hard one (a harness
/// holds pipes to hundreds of children at once).
pub fn raise_nofile() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
}

/// `ts` of an event as a wall-clock instant.
pub fn event_time(event: &serde_json::Value) -> jiff::Timestamp {
    event["ts"].as_str().unwrap().parse().unwrap()
}

/// How long after `earlier` `later` is (zero if it is not later).
pub fn since(earlier: jiff::Timestamp, later: jiff::Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or_default()
}
