//! `reins supervise` on the release binary, with a fleet of mock sessions
//! (most of them never asked to be watched, as on a real machine):
//!
//! - pickup: from `run --supervised` answering to the supervisor watching
//!   the session (its `supervise.json` names it): `run` pokes it, so this
//!   is not the default 2 s scan;
//! - revival: from a watched session's host being SIGKILLed to its
//!   `restart` event;
//! - the supervisor's CPU over a quiet minute and its memory, with every
//!   session alive and the watched ones watched.
//!
//! `cargo bench --bench supervise`; results go to
//! `benches/results/<date>-supervise.md`.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Row, World, cpu_percent, cpu_ticks, median, memory, mib, ms, p99, report};

const PLAIN: usize = 100;
const WATCHED: usize = 20;
const REVIVED: usize = 10;
const QUIET: Duration = Duration::from_secs(60);

struct Supervisor(Child);

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let world = World::new();
    for i in 0..PLAIN {
        world.start(&format!("plain{i}"), &[]);
    }
    let supervisor = Supervisor(
        world.command(&["supervise"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap(),
    );
    let pid = supervisor.0.id();
    let report_path = world.state_dir().join("supervise.json");
    let watching = |id: &str| {
        std::fs::read_to_string(&report_path)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .is_some_and(|r| r["watching"].as_array().unwrap().iter().any(|w| w["id"] == id))
    };
    let until = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "{what} did not happen within 60s");
            std::thread::sleep(Duration::from_millis(5));
        }
    };

    // Pickup: `run --supervised` pokes the supervisor (SIGUSR1).
    let mut pickup = Vec::new();
    for i in 0..WATCHED {
        let id = format!("w{i}");
        world.json(&["run", "mock", "--id", &id, "--supervised", "--stall-after", "10m"]);
        let answered = Instant::now();
        until("the pickup", &|| watching(&id));
        pickup.push(answered.elapsed());
    }

    // A quiet minute: every session alive, the watched ones watched.
    let ticks = cpu_ticks(pid);
    std::thread::sleep(QUIET);
    let cpu_percent = cpu_percent(cpu_ticks(pid) - ticks, QUIET.as_secs_f64());
    let rss = memory(pid).rss;

    // Revival: a host killed, its restart event.
    let mut revival = Vec::new();
    for i in 0..REVIVED {
        let id = format!("w{i}");
        let host = world.host_pid(&id);
        let killed = Instant::now();
        let _ = std::process::Command::new("kill").args(["-9", &host.to_string()]).status();
        until("the restart", &|| world.events(&id).iter().any(|e| e["type"] == "restart"));
        revival.push(killed.elapsed());
    }
    drop(supervisor);

    let figure =
        |v: &[Duration]| format!("median {}, p99 {}", ms(median(v.to_vec())), ms(p99(v.to_vec())));
    let rows = vec![
        Row::checked(
            format!("`run --supervised` answered → watched ({WATCHED} sessions)"),
            figure(&pickup),
            "p99 < 100 ms (poked, not the 2 s scan)",
            p99(pickup.clone()) < Duration::from_millis(100),
        ),
        Row::checked(
            format!("host SIGKILLed → `restart` event ({REVIVED} sessions)"),
            figure(&revival),
            "median < 2 s",
            median(revival.clone()) < Duration::from_secs(2),
        ),
        Row::checked(
            format!(
                "supervisor CPU over a quiet {} s ({PLAIN} plain + {WATCHED} watched sessions)",
                QUIET.as_secs()
            ),
            format!("{cpu_percent:.2} % of a core"),
            "< 1 %",
            cpu_percent < 1.0,
        ),
        Row::measured("supervisor RSS with its watchers", mib(rss)),
    ];
    report("supervise", &rows);
}
