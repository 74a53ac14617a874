//! The scale run: 200 mock sessions at once — 150 headless and 50 in
//! windows of a private tmux server — driven through concurrent
//! send → task_complete cycles, with `status` watched all along.
//!
//! It asserts that nothing is lost or misreported (every send opens the
//! turn it should, every wait returns that turn, every session's event log
//! holds each delivery and completion exactly once, `status` always lists
//! 200 live sessions) and reports what it cost: latencies under load, CPU
//! and memory totals of hosts, agents and the tmux server, descriptors,
//! inotify instances, idle CPU and wake-ups of all 200 hosts, and how late
//! a 10 ms sleep wakes up while it all runs (is the machine responsive?).
//!
//! Run with `cargo bench --bench scale` (about a minute and a half on two cores;
//! `REINS_BENCH_IDLE_SECS` shortens the idle minute). Results go to
//! `benches/results/<date>-scale.md`.

mod common;

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Memory, Row, Threads, World, children_cpu_ns, cpu_ns_percent, fd_count, median, memory, mib,
    ms, p99, report,
};
use serde_json::Value;

const HEADLESS: usize = 150;
const IN_TMUX: usize = 50;
const SESSIONS: usize = HEADLESS + IN_TMUX;
const ROUNDS: u64 = 5;

fn id(i: usize) -> String {
    if i < HEADLESS { format!("h{i:03}") } else { format!("t{:03}", i - HEADLESS) }
}

/// One session's processes.
struct Procs {
    host: u32,
    agent: u32,
}

fn main() {
    let idle_secs: u64 =
        std::env::var("REINS_BENCH_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    common::raise_nofile();
    let world = World::new();
    let mut rows = Vec::new();

    // Start: one after another, timing each `run`.
    let inotify_before = inotify_instances();
    let mut up_headless = Vec::new();
    let mut up_tmux = Vec::new();
    let t = Instant::now();
    for i in 0..SESSIONS {
        let tmux = i >= HEADLESS;
        let id = id(i);
        let mode = if tmux { "--tmux" } else { "--detach" };
        let started = Instant::now();
        world.json(&["run", "mock", "--id", &id, mode, "--", "--work", "0.05"]);
        let into = if tmux { &mut up_tmux } else { &mut up_headless };
        into.push(started.elapsed());
    }
    let start_all = t.elapsed();
    let (headless_median, tmux_median) = (median(up_headless.clone()), median(up_tmux.clone()));
    rows.push(Row::checked(
        format!("`run --detach` ({HEADLESS} sessions, one after another)"),
        format!("median {}, p99 {}", ms(headless_median), ms(p99(up_headless))),
        "< 50 ms median",
        headless_median < Duration::from_millis(50),
    ));
    rows.push(Row::checked(
        format!("`run --tmux` ({IN_TMUX} windows on one tmux server)"),
        format!("median {}, p99 {}", ms(tmux_median), ms(p99(up_tmux))),
        "< 50 ms median",
        tmux_median < Duration::from_millis(50),
    ));

    // Ready: 200 waits at once.
    let ready = join_all(spawn_all(&world, |id| argv(&["wait", "--id", id, "--until", "ready"])));
    assert!(ready.iter().all(|r| r.json["ok"] == true));
    rows.push(Row::measured(
        format!("all {SESSIONS} up and ready (starts + 200 concurrent `wait --until ready`)"),
        format!("{:.2} s", start_all.as_secs_f64() + wall(&ready).as_secs_f64()),
    ));

    let procs: Vec<Procs> = (0..SESSIONS)
        .map(|i| Procs { host: world.host_pid(&id(i)), agent: world.agent_pid(&id(i)) })
        .collect();
    let tmux_pid = world.tmux_server_pid();

    // Cycles: in each burst round 200 waits for the round's turn are
    // started first (and block), then 200 sends at once; status and a
    // sleeper watch. On two cores the 400 client processes of a round are
    // the load: the reaction of `wait` is measured again in a paced round
    // below, where the sends come one after another.
    let done = Arc::new(AtomicBool::new(false));
    let status_probe = probe_status(&world, &done);
    let jitter_probe = probe_jitter(&done);
    let (cpu_before, clients_before) = (cpu(&procs, tmux_pid), children_cpu_ns());
    let t = Instant::now();
    let (mut sends, mut reactions, mut round_times) = (Vec::new(), Vec::new(), Vec::new());
    let (mut inotify_peak, mut first_returned) = (0, 0);
    for round in 1..=ROUNDS {
        let r = Instant::now();
        let waiting = block_waits(&world, round);
        if round == 1 {
            // All 200 blocked at once: more than the 128 inotify instances
            // a user has by default.
            inotify_peak = blocked_waits_settle(&waiting);
        }
        let text = format!("round {round}");
        let sent = join_all(spawn_all(&world, |id| argv(&["send", "--id", id, &text])));
        let waited = join_all(waiting);
        if round == 1 {
            first_returned = waited.iter().filter(|w| w.json["turn"] == round).count();
        }
        reactions.extend(check_round(round, &sent, &waited));
        round_times.push(r.elapsed());
        sends.extend(sent.iter().map(|r| r.took));
    }
    let cycles = t.elapsed();
    let (cpu_after, clients_ns) = (cpu(&procs, tmux_pid), children_cpu_ns() - clients_before);

    // The paced round: 200 waits blocked, sends accepted one every 20 ms
    // from one thread, so turns end while the machine has room.
    let round = ROUNDS + 1;
    let waiting = block_waits(&world, round);
    blocked_waits_settle(&waiting);
    let paced_sent: Vec<Ran> = (0..SESSIONS)
        .map(|i| {
            let ran = run_one(
                &world.launcher(),
                &id(i),
                &argv(&["send", "--id", &id(i), "--no-wait", &format!("round {round}")]),
            );
            std::thread::sleep(Duration::from_millis(20));
            ran
        })
        .collect();
    let paced = check_round(round, &paced_sent, &join_all(waiting));
    done.store(true, Ordering::Relaxed);
    let (status_times, status_bad, status_unknown) = status_probe.join().unwrap();
    let jitter = jitter_probe.join().unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    // Nothing lost, nothing misreported.
    let final_rows = world.json(&["status", "--json"]);
    let final_rows = final_rows.as_array().unwrap();
    let mut final_bad = SESSIONS.abs_diff(final_rows.len());
    for r in final_rows {
        let want = (&"live".into(), &"ready".into(), &(ROUNDS + 1).into());
        if (&r["host"], &r["state"], &r["turn"]) != want {
            final_bad += 1;
            eprintln!("after the cycles, status shows {r}");
        }
    }
    let mut lost = 0;
    for i in 0..SESSIONS {
        let events = world.events(&id(i));
        let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count() as u64;
        for (kind, want) in [
            ("delivered", ROUNDS + 1),
            ("turn_started", ROUNDS + 1),
            ("task_complete", ROUNDS + 1),
            ("stranded", 0),
        ] {
            if count(kind) != want {
                lost += 1;
                eprintln!("{}: {kind} {} times, expected {want}", id(i), count(kind));
            }
        }
    }

    // The same paced round with one `wait` for all 200 sessions instead of
    // one per session.
    let round = ROUNDS + 2;
    let (mut one_wait, one_wait_lines) = one_wait_for_all(&world, round);
    let mut one_reactions = Vec::new();
    let mut one_sent = Vec::new();
    for i in 0..SESSIONS {
        let args = argv(&["send", "--id", &id(i), "--no-wait", &format!("round {round}")]);
        one_sent.push(run_one(&world.launcher(), &id(i), &args));
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = one_wait.wait().unwrap().code().unwrap_or(-1);
    let lines = one_wait_lines.join().unwrap();
    let mut one_wrong = SESSIONS.abs_diff(lines.len());
    for (line, at) in &lines {
        let i = (0..SESSIONS).find(|i| line["id"] == id(*i).as_str()).unwrap();
        let good = line["turn"] == round
            && line["event"]["message_id"] == one_sent[i].json["message_id"]
            && line["status"] == "reached";
        if !good {
            one_wrong += 1;
            eprintln!("one wait for all: {line}\n  its send said: {}", one_sent[i].json);
        }
        one_reactions.push(common::since(common::event_time(&line["event"]), *at));
    }

    rows.push(Row::checked(
        format!(
            "{ROUNDS} rounds: {SESSIONS} concurrent `wait --turn N`, then {SESSIONS} concurrent \
             `send`"
        ),
        format!(
            "{:.2} s ({:.0} turns/s; round median {:.2} s)",
            cycles.as_secs_f64(),
            (ROUNDS as usize * SESSIONS) as f64 / cycles.as_secs_f64(),
            median(round_times).as_secs_f64()
        ),
        "nothing lost",
        lost == 0 && final_bad == 0,
    ));
    rows.push(Row::checked(
        "inotify instances in use with 200 waits blocked at once (limit: max_user_instances)",
        format!(
            "{} of {}; the other waits were woken by their hosts; {first_returned} of \
             {SESSIONS} returned their turn",
            inotify_peak.saturating_sub(inotify_before),
            max_user_instances()
        ),
        "no wait fails",
        first_returned == SESSIONS,
    ));
    rows.push(Row::measured(
        "each `send` under that load (until delivery verified)",
        format!("median {}, p99 {}", ms(median(sends.clone())), ms(p99(sends))),
    ));
    rows.push(Row::measured(
        "task_complete written → its `wait` returns, under that load (400 clients per round)",
        format!("median {}, p99 {}", ms(median(reactions.clone())), ms(p99(reactions))),
    ));
    rows.push(Row::checked(
        format!(
            "task_complete written → its `wait` returns, {SESSIONS} waits blocked, sends paced \
             20 ms apart"
        ),
        format!("median {}, p99 {}", ms(median(paced.clone())), ms(p99(paced.clone()))),
        "< 25 ms median",
        median(paced) < Duration::from_millis(25),
    ));
    rows.push(Row::checked(
        format!(
            "task_complete written → its line from one `wait` for all {SESSIONS} sessions \
             (`--id` ×{SESSIONS} `--until turn_complete:N`), sends paced 20 ms apart"
        ),
        format!(
            "median {}, p99 {}; 1 process instead of {SESSIONS}; {one_wrong} wrong, exit {status}",
            ms(median(one_reactions.clone())),
            ms(p99(one_reactions.clone()))
        ),
        "< 25 ms median, every line right",
        one_wrong == 0 && status == 0 && median(one_reactions) < Duration::from_millis(25),
    ));
    rows.push(Row::checked(
        "events: delivered, turn_started, task_complete, stranded per session (all 200)",
        format!("{0}, {0}, {0}, 0: none lost, none repeated", ROUNDS + 1),
        "exact",
        lost == 0,
    ));
    let status_med = median(status_times.clone());
    rows.push(Row::checked(
        format!("`status --json` every 250 ms during the cycles ({} probes)", status_times.len()),
        format!(
            "median {}, p99 {}; {status_bad} misreported ({status_unknown} rows read `unknown`: \
             a message in the composer)",
            ms(status_med),
            ms(p99(status_times))
        ),
        "< 30 ms, none misreported",
        status_med < Duration::from_millis(30) && status_bad == 0,
    ));
    rows.push(Row::measured(
        "how late a 10 ms sleep wakes during the cycles (responsiveness)",
        format!(
            "median {}, p99 {}; load average {}",
            ms(median(jitter.clone())),
            ms(p99(jitter)),
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        ),
    ));
    let secs = cycles.as_secs_f64();
    let pct = |i: usize| cpu_ns_percent(cpu_after[i].since(&cpu_before[i]).cpu_ns, secs);
    rows.push(Row::measured(
        "CPU during the cycles, in % of one core (the machine has 2)",
        format!(
            "hosts {:.0} %, agents {:.0} %, tmux server {:.0} %, clients {:.0} % ({} runs, {:.2} ms \
             each)",
            pct(0),
            pct(1),
            pct(2),
            cpu_ns_percent(clients_ns, secs),
            ROUNDS as usize * SESSIONS * 2,
            clients_ns as f64 / 1e6 / (ROUNDS as usize * SESSIONS * 2) as f64
        ),
    ));

    // Memory and descriptors, after the cycles.
    let (mut hosts, mut agents) = (Memory::default(), Memory::default());
    for p in &procs {
        hosts += memory(p.host);
        agents += memory(p.agent);
    }
    let tmux_mem = tmux_pid.map(memory).unwrap_or_default();
    rows.push(Row::checked(
        format!("memory of {SESSIONS} hosts (RSS; PSS, private)"),
        format!(
            "{}; {}, {} (per host: RSS {}, private {})",
            mib(hosts.rss),
            mib(hosts.pss),
            mib(hosts.private),
            mib(hosts.rss / SESSIONS as u64),
            mib(hosts.private / SESSIONS as u64)
        ),
        "RSS < 8 MiB per host",
        hosts.rss / (SESSIONS as u64) < 8 * 1024,
    ));
    rows.push(Row::measured(
        format!("memory of {SESSIONS} mock agents; the tmux server with {IN_TMUX} panes (PSS)"),
        format!("{}; {}", mib(agents.pss), mib(tmux_mem.pss)),
    ));
    let fds: Vec<usize> = procs.iter().map(|p| fd_count(p.host)).collect();
    rows.push(Row::measured(
        "open descriptors per host (idle)",
        format!("max {}, total {}", fds.iter().max().unwrap(), fds.iter().sum::<usize>()),
    ));

    // A quiet minute.
    let c0 = cpu(&procs, tmux_pid);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let c1 = cpu(&procs, tmux_pid);
    let idle = |i: usize| cpu_ns_percent(c1[i].since(&c0[i]).cpu_ns, idle_secs as f64);
    let hosts_idle = c1[0].since(&c0[0]);
    rows.push(Row::checked(
        format!("{SESSIONS} idle hosts over {idle_secs} s: CPU together, wake-ups together"),
        format!(
            "{:.4} % ({:.1} ms), {} wake-ups ({} of them a blocking-pool thread ending)",
            idle(0),
            hosts_idle.cpu_ns as f64 / 1e6,
            hosts_idle.wakeups,
            hosts_idle.ended
        ),
        "< 0.05 % per host",
        idle(0) / (SESSIONS as f64) < 0.05,
    ));
    rows.push(Row::measured(
        format!("{SESSIONS} idle mock agents; the tmux server, over the same {idle_secs} s"),
        format!("{:.4} %; {:.4} %", idle(1), idle(2)),
    ));

    // Stop everything at once.
    let stopped = join_all(spawn_all(&world, |id| argv(&["stop", "--id", id])));
    assert!(stopped.iter().all(|r| r.json["ok"] == true));
    let left = procs.iter().filter(|p| alive(p.host) || alive(p.agent)).count();
    rows.push(Row::checked(
        format!("stop all {SESSIONS} at once"),
        format!("{:.2} s; {left} processes left", wall(&stopped).as_secs_f64()),
        "none left",
        left == 0,
    ));
    report("scale", &rows);
    write_doc(&rows);
    assert_eq!(lost, 0, "events lost or repeated");
    assert_eq!(final_bad, 0, "sessions not live, ready and at the last turn after the cycles");
    assert_eq!(status_bad, 0, "status misreported a session during the cycles");
    assert_eq!(left, 0, "processes left behind");
}

/// Where the figures of one run go in `docs/scale.md`: between these
/// lines, replaced whole on every run.
const DOC: &str = "docs/scale.md";
const DOC_BEGIN: &str =
    "<!-- scale-bench: generated by `cargo bench --bench scale`; do not edit -->";
const DOC_END: &str = "<!-- scale-bench: end -->";

/// Rewrites the figures section of `docs/scale.md` with this run's table,
/// naming the commit it measured, so the document holds one run's
/// figures and says which.
fn write_doc(rows: &[Row]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    let text = std::fs::read_to_string(&path).unwrap();
    let (Some(begin), Some(end)) = (text.find(DOC_BEGIN), text.find(DOC_END)) else {
        panic!("{DOC} has no section between {DOC_BEGIN:?} and {DOC_END:?}");
    };
    let section = format!(
        "{DOC_BEGIN}\n\nOne run of `cargo bench --bench scale` at commit `{}`, {}, on {} cores \
         ({}), release build. The run rewrites this section; commit it only from a quiet \
         machine.\n\n{}\n",
        common::commit(),
        common::today(),
        common::num_cpus(),
        common::machine(),
        common::table(rows)
    );
    let updated = format!("{}{section}{}", &text[..begin], &text[end..]);
    std::fs::write(&path, updated).unwrap();
    println!("figures written to {DOC}");
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// One client run: how long it took, when it returned, what it printed.
struct Ran {
    took: Duration,
    returned: jiff::Timestamp,
    json: Value,
}

/// Starts one `reins` per session, all at once, each on its own thread.
fn spawn_all(
    world: &World,
    args: impl Fn(&str) -> Vec<String>,
) -> Vec<std::thread::JoinHandle<Ran>> {
    (0..SESSIONS)
        .map(|i| {
            let (id, args, world) = (id(i), args(&id(i)), world.launcher());
            std::thread::spawn(move || run_one(&world, &id, &args))
        })
        .collect()
}

/// Runs one `reins` for session `id`; panics unless it succeeds with JSON.
fn run_one(world: &common::Launcher, id: &str, args: &[String]) -> Ran {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let t = Instant::now();
    let out = world.command(&args).stderr(Stdio::piped()).output().unwrap();
    let returned = jiff::Timestamp::now();
    assert!(
        out.status.success(),
        "{id}: {args:?}: {}: {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = serde_json::from_slice(&out.stdout).unwrap();
    Ran { took: t.elapsed(), returned, json }
}

/// One blocking `wait --turn ROUND` per session.
fn block_waits(world: &World, round: u64) -> Vec<std::thread::JoinHandle<Ran>> {
    let turn = round.to_string();
    spawn_all(world, |id| argv(&["wait", "--id", id, "--turn", &turn, "--timeout", "120s"]))
}

/// Checks that every session's send opened turn `round` and its wait
/// returned that turn's completion; returns how long after each
/// task_complete was written its wait returned.
fn check_round(round: u64, sent: &[Ran], waited: &[Ran]) -> Vec<Duration> {
    (0..SESSIONS)
        .map(|i| {
            let (s, w) = (&sent[i].json, &waited[i].json);
            // `send --no-wait` answers before the turn opens: no turn yet.
            assert!(s["turn"].is_null() || s["turn"] == round, "{}: {s}", id(i));
            assert_eq!(w["turn"], round, "{} waited for the wrong turn: {w}", id(i));
            assert_eq!(w["event"]["message_id"], s["message_id"], "{}", id(i));
            common::since(common::event_time(&w["event"]), waited[i].returned)
        })
        .collect()
}

/// Starts one `reins wait` for every session's turn `round`; the thread
/// returns each line it printed with the time it arrived.
fn one_wait_for_all(
    world: &World,
    round: u64,
) -> (std::process::Child, std::thread::JoinHandle<Vec<(Value, jiff::Timestamp)>>) {
    let mut args = vec!["wait".to_string()];
    for i in 0..SESSIONS {
        args.extend(["--id".to_string(), id(i)]);
    }
    args.extend(argv(&["--until", &format!("turn_complete:{round}"), "--timeout", "120s"]));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = world.command(&args).stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|line| (serde_json::from_str(&line).unwrap(), jiff::Timestamp::now()))
            .collect()
    });
    // Let it read every session's events before the sends go out.
    std::thread::sleep(Duration::from_secs(2));
    (child, lines)
}

/// Joins a batch, in session order.
fn join_all(batch: Vec<std::thread::JoinHandle<Ran>>) -> Vec<Ran> {
    batch.into_iter().map(|t| t.join().unwrap()).collect()
}

/// Waits until a batch of blocking waits has settled (the count of inotify
/// instances on the machine stops changing), and returns that count.
fn blocked_waits_settle(batch: &[std::thread::JoinHandle<Ran>]) -> usize {
    let mut last = inotify_instances();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = inotify_instances();
        if now == last || batch.iter().any(|t| t.is_finished()) {
            return now.max(last);
        }
        last = now;
    }
    last
}

/// The longest of a batch's wall times: when the last one finished.
fn wall(batch: &[Ran]) -> Duration {
    batch.iter().map(|r| r.took).max().unwrap_or_default()
}

/// The threads of all hosts, all agents and the tmux server.
fn cpu(procs: &[Procs], tmux: Option<u32>) -> [Threads; 3] {
    [
        Threads::of(procs.iter().map(|p| p.host)),
        Threads::of(procs.iter().map(|p| p.agent)),
        Threads::of(tmux),
    ]
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !matches!(s[s.rfind(')').unwrap() + 2..].chars().next(), Some('Z' | 'X')))
}

/// Runs `status --json` every 250 ms until `done`; returns the times and
/// how many answers misreported a session.
fn probe_status(
    world: &World,
    done: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Vec<Duration>, usize, usize)> {
    let world = world.launcher();
    let done = done.clone();
    std::thread::spawn(move || {
        let mut times = Vec::new();
        let (mut bad, mut unknown) = (0, 0);
        while !done.load(Ordering::Relaxed) {
            let (took, rows) = world.timed(&["status", "--json"]);
            times.push(took);
            let rows = rows.as_array().unwrap();
            unknown += rows.iter().filter(|r| r["state"] == "unknown").count();
            let wrong: Vec<&Value> = rows.iter().filter(|r| misreported(r)).collect();
            for r in &wrong {
                eprintln!(
                    "status shows {} {} {} since {}",
                    r["id"], r["host"], r["state"], r["state_since"]
                );
            }
            if rows.len() != SESSIONS || !wrong.is_empty() {
                bad += 1;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        (times, bad, unknown)
    })
}

/// Whether a `status` row is wrong for a session that is being driven
/// through turns: its host must be live and its state ready, busy, or
/// `unknown` — which is what the screen reads while a message sits in the
/// composer between paste and submit (long enough to be seen when the
/// machine is this busy). A session stuck there fails the final check.
fn misreported(row: &Value) -> bool {
    !matches!(
        (row["host"].as_str(), row["state"].as_str()),
        (Some("live"), Some("ready" | "busy" | "unknown"))
    )
}

/// Sleeps 10 ms over and over until `done`; returns how late each wake-up
/// was.
fn probe_jitter(done: &Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    let done = done.clone();
    let late = Arc::new(Mutex::new(Vec::new()));
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            let t = Instant::now();
            std::thread::sleep(Duration::from_millis(10));
            late.lock().unwrap().push(t.elapsed().saturating_sub(Duration::from_millis(10)));
        }
        std::mem::take(&mut *late.lock().unwrap())
    })
}

/// inotify instances open on the machine (every process of every user).
fn inotify_instances() -> usize {
    let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
    procs
        .flatten()
        .filter(|p| p.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .filter_map(|p| std::fs::read_dir(p.path().join("fd")).ok())
        .flat_map(|fds| fds.flatten())
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify")
        })
        .count()
}

fn max_user_instances() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .map_or("?".into(), |s| s.trim().to_string())
}
