//! What one dispatch attempt costs: a ladder of three mock rungs, each
//! rung's answer judged by a mock verifier (the first two rejected, the
//! third accepted), so a dispatch is three worker attempts and three
//! verifier sessions.
//!
//! Per attempt (worker and its verifier), measured on the real release
//! binary:
//! - wall time, over several dispatches;
//! - processes started (every `execve` under the dispatcher, counted with
//!   `strace -f` in a separate run so tracing does not slow the timed ones),
//!   and how many of them were `reins` itself as a client (`run`, `wait`,
//!   `pane`, `stop`) rather than a session host or an agent.
//!
//! `cargo bench --bench dispatch`; results go to
//! `benches/results/<date>-dispatch.md`.

mod common;

use std::time::Instant;

use common::{Row, World, median, ms, report};

const CONFIG: &str = r#"
[agents.r1]
agent = "mock"
args = ["--work", "0.1", "--reply", "done [[reply:{\"accept\": false, \"feedback\": \"try harder\"}]]"]

[agents.r2]
agent = "mock"
args = ["--work", "0.1", "--reply", "done [[reply:{\"accept\": false, \"feedback\": \"almost\"}]]"]

[agents.r3]
agent = "mock"
args = ["--work", "0.1", "--reply", "done [[reply:{\"accept\": true, \"feedback\": \"good\"}]]"]

[agents.judge]
agent = "mock"
args = ["--work", "0.1"]
"#;

/// Dispatches timed.
const RUNS: usize = 5;

/// Attempts (worker + verifier) in one dispatch.
const ATTEMPTS: usize = 3;

fn main() {
    let world = World::new();
    let home = world.env.iter().find(|(k, _)| k == "XDG_CONFIG_HOME").map(|(_, v)| v.clone());
    let config = std::path::Path::new(&home.expect("the world sets XDG_CONFIG_HOME")).join("reins");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config.toml"), CONFIG).unwrap();

    let mut per_attempt = Vec::new();
    for i in 0..RUNS {
        let id = format!("lad{i}");
        let t = Instant::now();
        let out = world.json(&dispatch_args(&id).iter().map(String::as_str).collect::<Vec<_>>());
        let took = t.elapsed();
        assert_eq!(out["result"], "accepted", "{out}");
        assert_eq!(out["attempts"].as_array().map(Vec::len), Some(ATTEMPTS), "{out}");
        per_attempt.push(took / ATTEMPTS as u32);
    }

    let (execs, clients) = count_execs(&world);
    let rows = vec![
        Row::measured(
            "one attempt (worker + verifier, mock agents answering in 0.1 s)",
            format!("median {} over {RUNS} three-rung ladders", ms(median(per_attempt))),
        ),
        Row::measured(
            "processes started per attempt (all execve under the dispatcher)",
            format!("{:.1}", execs as f64 / ATTEMPTS as f64),
        ),
        Row::checked(
            "of them `reins` as a client (run, wait, pane, stop)",
            format!("{:.1}", clients as f64 / ATTEMPTS as f64),
            "0: sessions are driven in process",
            clients == 0,
        ),
    ];
    report("dispatch", &rows);
}

fn dispatch_args(id: &str) -> Vec<String> {
    ["dispatch", "--ladder", "r1,r2,r3", "--verifier", "judge", "--message", "parse the config"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--id".into(), id.into(), "--json".into()])
        .collect()
}

/// One more dispatch under `strace -f`: every program started, and how many
/// of them were `reins` run as a client command.
fn count_execs(world: &World) -> (usize, usize) {
    let trace = world.work.join("execs.trace");
    let reins = env!("CARGO_BIN_EXE_reins");
    let mut args: Vec<String> = vec!["-f".into(), "-qq".into(), "-e".into(), "trace=execve".into()];
    args.extend(["-o".into(), trace.display().to_string(), reins.into()]);
    args.extend(dispatch_args("traced"));
    let out = std::process::Command::new("strace")
        .args(&args)
        .current_dir(&world.work)
        .env_clear()
        .envs(world.env.iter().cloned())
        .output()
        .expect("strace (apt-get install strace) runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&trace).unwrap();
    let execs: Vec<&str> =
        text.lines().filter(|l| l.contains("execve(") && !l.contains("= -1")).collect();
    // The dispatcher's own exec is not a start it caused.
    let started = execs.len().saturating_sub(1);
    let client = |l: &&&str| {
        [r#", "run", "#, r#", "wait", "#, r#", "pane", "#, r#", "stop", "#]
            .iter()
            .any(|verb| l.contains(reins) && l.contains(verb))
    };
    let clients = execs.iter().filter(client).count();
    (started, clients)
}
