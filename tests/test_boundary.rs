//! The boundary between a session and its agent: the agent holds only its
//! standard descriptors (never the PTY master, through which anything
//! could type into its terminal), it dies with its host, and what it left
//! running is ended by the next run of its id or by `gc`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestEnv, alive, eventually, have_tool, signal};

/// The descriptors `pid` holds: (number, what it points to).
fn descriptors(pid: u32) -> Vec<(u32, String)> {
    let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            Some((n, target.display().to_string()))
        })
        .collect();
    fds.sort();
    fds
}

#[track_caller]
fn assert_only_standard_descriptors(pid: u32, what: &str) {
    let fds = descriptors(pid);
    let numbers: Vec<u32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, [0, 1, 2], "{what} (pid {pid}) holds more than 0-2: {fds:?}");
    assert!(
        fds.iter().all(|(_, target)| !target.contains("ptmx")),
        "{what} holds a PTY master: {fds:?}"
    );
}

/// `reins run ... --detach` with descriptor 7 open without close-on-exec,
/// as a shell or tmux may hand one to whoever it starts: the host inherits
/// it, the agent must not.
fn run_with_stray_descriptor(env: &TestEnv, args: &str) -> Value {
    let out = env.sh(&format!("exec 7</dev/null; \"$REINS\" run {args}")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_pty_master_does_not_leak_into_the_agent_or_what_it_starts() {
    let env = TestEnv::new();
    let started = run_with_stray_descriptor(&env, "sh --id fds --detach -- -c 'sleep 1000 & wait'");
    let agent = started["pid"].as_u64().unwrap() as u32;
    let host = started["host_pid"].as_u64().unwrap() as u32;
    assert!(descriptors(host).iter().any(|(n, _)| *n == 7), "the host got the stray descriptor");
    let mut members = Vec::new();
    eventually(Duration::from_secs(5), "the agent's background sleep", || {
        members = crate::common::session_members(agent);
        members.len() >= 2
    });
    for pid in members {
        assert_only_standard_descriptors(pid, "a process of the agent's session");
    }
}

/// A `codex` profile whose app-server is tests/fixtures/fake-app-server.py.
fn fake_app_server(env: &TestEnv) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fake-app-server.py");
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = format!(
        "name = \"codex\"\nsummary = \"a fake app-server\"\ntransport = \"codex-app-server\"\n\n\
         [app_server]\ncommand = [\"python3\", \"{}\", \"garbled\"]\n\n[launch]\ncommand = [\"codex\"]\n",
        script.display()
    );
    std::fs::write(dir.join("codex.toml"), profile).unwrap();
}

#[test]
fn a_protocol_agent_gets_only_its_pipes() {
    if !have_tool("python3") {
        return;
    }
    let env = TestEnv::new();
    fake_app_server(&env);
    let started = run_with_stray_descriptor(&env, "codex --id pipes --detach");
    env.reins(&["wait", "--id", "pipes", "--until", "ready", "--timeout", "10s"]).ok();
    assert_only_standard_descriptors(started["pid"].as_u64().unwrap() as u32, "the app-server");
}

/// SIGKILLs the host of `started` and returns how long its agent took to
/// die.
fn kill_host_and_time_the_agent(started: &Value) -> Duration {
    let host = started["host_pid"].as_u64().unwrap() as u32;
    let agent = started["pid"].as_u64().unwrap() as u32;
    assert!(alive(agent));
    let t0 = Instant::now();
    signal(host as i32, 9);
    eventually(Duration::from_secs(5), "the agent to die with its host", || !alive(agent));
    t0.elapsed()
}

#[test]
fn an_agent_dies_with_its_host() {
    let env = TestEnv::new();
    let started = env.start("orphan", &[]);
    env.wait_state("orphan", "ready");
    let took = kill_host_and_time_the_agent(&started);
    eprintln!("figure: a PTY agent died {} ms after its host was SIGKILLed", took.as_millis());
}

#[test]
fn a_stubborn_agent_dies_with_its_host_too() {
    // The mock agent ignoring SIGHUP and SIGTERM: the terminal's hangup is
    // not enough, the death signal is.
    let env = TestEnv::new();
    let started = env.start("mule", &["--", "--ignore-term"]);
    env.wait_state("mule", "ready");
    kill_host_and_time_the_agent(&started);
}

#[test]
fn a_protocol_agent_dies_with_its_host() {
    if !have_tool("python3") {
        return;
    }
    let env = TestEnv::new();
    fake_app_server(&env);
    let started = env.reins(&["run", "codex", "--id", "piped", "--detach"]).ok().json();
    env.reins(&["wait", "--id", "piped", "--until", "ready", "--timeout", "10s"]).ok();
    let took = kill_host_and_time_the_agent(&started);
    eprintln!("figure: a stdio agent died {} ms after its host was SIGKILLed", took.as_millis());
}

/// Starts `sh` as the agent of `id`; it leaves two sleeps that outlive it
/// (one ignoring hangups in its session, one that left the session with
/// setsid) and writes their pids to `leftovers.pids` in the work dir.
fn start_agent_with_leftovers(env: &TestEnv, id: &str) -> (Value, Vec<u32>) {
    let script = "nohup sleep 1000 >/dev/null 2>&1 & echo $! > leftovers.pids; \
                  setsid sleep 1001 >/dev/null 2>&1 & echo $! >> leftovers.pids; exec sleep 1002";
    let started = env.reins(&["run", "sh", "--id", id, "--detach", "--", "-c", script]).ok().json();
    let pids_file = env.work.join("leftovers.pids");
    let mut pids = Vec::new();
    eventually(Duration::from_secs(5), "the agent to write its leftovers' pids", || {
        let text = std::fs::read_to_string(&pids_file).unwrap_or_default();
        pids = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        pids.len() == 2 && pids.iter().all(|p| alive(*p))
    });
    std::fs::remove_file(&pids_file).unwrap();
    (started, pids)
}

#[test]
fn run_on_the_id_of_a_dead_host_ends_what_the_last_run_left() {
    let env = TestEnv::new();
    let (started, leftovers) = start_agent_with_leftovers(&env, "again");
    kill_host_and_time_the_agent(&started);
    assert!(leftovers.iter().all(|p| alive(*p)), "the background jobs outlive the agent");

    let out = env.reins(&["run", "sh", "--id", "again", "--detach", "--", "-c", "sleep 1000"]);
    let out = out.ok();
    assert!(out.stderr.contains("lost its host"), "{}", out.stderr);
    for pid in &leftovers {
        eventually(Duration::from_secs(5), "a leftover of the dead run to die", || !alive(*pid));
    }
    // The lost run is closed in the log before the new one starts.
    let events = env.events("again");
    let old = started["run"].as_str().unwrap();
    let exited = events.iter().position(|e| e["type"] == "exited" && e["run"] == old).unwrap();
    let new_start = events.iter().position(|e| e["type"] == "started" && e["run"] != old).unwrap();
    assert!(exited < new_start, "{events:?}");
}

#[test]
fn gc_ends_what_a_dead_run_left_even_when_its_agent_is_gone() {
    let env = TestEnv::new();
    let (started, leftovers) = start_agent_with_leftovers(&env, "ghost");
    kill_host_and_time_the_agent(&started);

    let dry = env.reins(&["gc", "--dry-run", "--json"]).ok().json();
    let mut listed: Vec<u32> = dry["cleaned"][0]["killed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as u32)
        .collect();
    listed.sort_unstable();
    let mut expected = leftovers.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected, "{dry}");
    assert!(leftovers.iter().all(|p| alive(*p)), "a dry run kills nothing");

    let gc = env.reins(&["gc", "--json"]).ok().json();
    assert_eq!(gc["cleaned"][0]["id"], "ghost");
    for pid in &leftovers {
        eventually(Duration::from_secs(5), "a leftover of the dead run to die", || !alive(*pid));
    }
}
