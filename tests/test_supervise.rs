//! `reins supervise` and `reins service`: a long-running supervisor watches
//! the sessions that asked (and only while nobody else does), revives what
//! died (also while it was not running), leaves a session that called for
//! a person alone until it moves again, retires idle sessions, runs once
//! per state directory and leaves the sessions running when it stops; the
//! service unit it is installed as is accepted by systemd's own verifier,
//! and the launchd agent is a valid property list.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, eventually, have_tool, mode, signal};

/// A `reins supervise` that is killed when the test ends, however it ends.
struct Supervisor(Child);

impl Supervisor {
    fn start(env: &TestEnv) -> Supervisor {
        Supervisor::start_scanning(env, "200ms")
    }

    fn start_scanning(env: &TestEnv, every: &str) -> Supervisor {
        let supervisor = Supervisor(env.spawn(&["supervise", "--scan-every", every]));
        eventually(Duration::from_secs(10), "the supervisor to be up", || {
            env.reins(&["service", "status", "--json"]).code == 0
        });
        supervisor
    }

    /// SIGTERM, then its exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        signal(self.0.id() as i32, 15);
        let status = self.0.wait().unwrap();
        let mut stderr = String::new();
        use std::io::Read;
        self.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status.code(), stderr)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status(env: &TestEnv) -> Value {
    env.reins(&["service", "status", "--json"]).json()
}

fn watching(env: &TestEnv) -> Vec<String> {
    status(env)["supervisor"]["watching"]
        .as_array()
        .map(|w| w.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn count(env: &TestEnv, id: &str, kind: &str) -> usize {
    env.events(id).iter().filter(|e| e["type"] == kind).count()
}

/// Waits for an event of any run of `id`.
#[track_caller]
fn wait_for(env: &TestEnv, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    eventually(Duration::from_secs(30), what, || {
        found = env.events(id).into_iter().find(|e| pred(e));
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn a_supervised_session_is_nudged_when_it_stalls_and_restarted_when_its_host_dies() {
    let env = TestEnv::new();
    let _supervisor = Supervisor::start(&env);
    let run = env.reins(&[
        "run",
        "mock",
        "--id",
        "sv",
        "--context",
        "[[stall]] build it",
        "--supervised",
        "--stall-after",
        "1s",
    ]);
    let started = run.ok().json();
    wait_for(&env, "sv", "the stall to be nudged", |e| e["type"] == "resume");
    wait_for(&env, "sv", "the nudge's turn to complete", |e| {
        e["type"] == "task_complete" && e["status"] == "completed"
    });
    assert_eq!(watching(&env), ["sv"]);
    // Its host dies: the supervisor's watcher restarts the session.
    signal(started["host_pid"].as_i64().unwrap() as i32, 9);
    let restart = wait_for(&env, "sv", "a restart", |e| e["type"] == "restart");
    assert!(restart["reason"].as_str().unwrap().contains("died"), "{restart}");
    assert_ne!(restart["run"], started["run"]);
    eventually(Duration::from_secs(20), "the new run to be up", || {
        env.reins(&["status", "--id", "sv", "--json"]).code == 0
    });
    env.reins(&["stop", "--id", "sv"]).ok();
    eventually(Duration::from_secs(20), "the watch to end with the session", || {
        status(&env)["supervisor"]["ended"]
            .as_array()
            .is_some_and(|e| e.iter().any(|w| w["id"] == "sv" && w["outcome"] == "finished"))
    });
    assert!(watching(&env).is_empty());
}

#[test]
fn run_supervised_is_watched_at_once_not_at_the_next_scan() {
    let env = TestEnv::new();
    let _supervisor = Supervisor::start_scanning(&env, "1h");
    let run = env.reins(&["run", "mock", "--id", "now", "--supervised"]);
    assert!(!run.stderr.contains("no `reins supervise` runs"), "{}", run.stderr);
    run.ok();
    eventually(Duration::from_secs(10), "the supervisor to watch it", || watching(&env) == ["now"]);
}

#[test]
fn what_died_while_no_supervisor_ran_is_revived_and_nothing_else_is_touched() {
    let env = TestEnv::new();
    // Asked to be watched, with nobody to do it: said, and it starts anyway.
    let crashed = env.reins(&[
        "run",
        "mock",
        "--id",
        "crashed",
        "--context",
        "[[crash:7]] go",
        "--supervised",
        "--max-restarts",
        "1",
    ]);
    assert!(crashed.stderr.contains("no `reins supervise` runs"), "{}", crashed.stderr);
    let crashed = crashed.ok().json();
    // Ended on purpose, and one that never asked to be watched.
    env.start("stopped", &["--supervised", "--context", "hello"]);
    env.wait_event("stopped", Duration::from_secs(10), |e| e["type"] == "task_complete");
    env.reins(&["stop", "--id", "stopped"]).ok();
    env.start("plain", &["--context", "[[crash:3]] go"]);
    eventually(Duration::from_secs(10), "both crashes to be recorded", || {
        count(&env, "crashed", "exited") == 1 && count(&env, "plain", "exited") == 1
    });

    let _supervisor = Supervisor::start(&env);
    let restart =
        wait_for(&env, "crashed", "the crashed session's restart", |e| e["type"] == "restart");
    assert!(restart["reason"].as_str().unwrap().contains("exited with code 7"), "{restart}");
    assert_ne!(restart["run"], crashed["run"]);
    // The restarted run crashes again (its first task crashes it): the one
    // restart is spent, a person is called, and it is left alone after.
    eventually(Duration::from_secs(30), "the watch to call for a person", || {
        status(&env)["supervisor"]["ended"]
            .as_array()
            .is_some_and(|e| e.iter().any(|w| w["id"] == "crashed" && w["outcome"] == "escalated"))
    });
    let given_up: Value = serde_json::from_slice(
        &std::fs::read(env.session_dir("crashed").join("given_up.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(given_up["run"], restart["run"], "{given_up}");
    std::thread::sleep(Duration::from_secs(1)); // five scans
    assert_eq!(count(&env, "crashed", "started"), 2, "one restart, not one per scan");
    assert_eq!(count(&env, "stopped", "started"), 1, "a stopped session stays stopped");
    assert_eq!(count(&env, "plain", "started"), 1, "a session that did not ask is not revived");
    assert!(watching(&env).is_empty(), "{}", status(&env));
}

#[test]
fn run_watch_keeps_its_session_and_the_supervisor_takes_over_when_it_is_gone() {
    let env = TestEnv::new();
    let _supervisor = Supervisor::start(&env);
    let mut run =
        env.spawn(&["run", "mock", "--id", "rw", "--context", "hello", "--watch", "--until-exit"]);
    env.wait_event("rw", Duration::from_secs(10), |e| e["type"] == "task_complete");
    std::thread::sleep(Duration::from_millis(600)); // three scans
    assert!(watching(&env).is_empty(), "the `run --watch` has it: {}", status(&env));
    // A second watcher is refused, and says who has the session.
    let second = env.reins(&["watch", "--id", "rw", "--json"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(second.stderr.contains("already watched (by pid"), "{}", second.stderr);
    // The terminal of `run --watch` goes away: the supervisor takes over.
    run.kill().unwrap();
    run.wait().unwrap();
    eventually(Duration::from_secs(10), "the supervisor to watch rw", || watching(&env) == ["rw"]);
    let second = env.reins(&["watch", "--id", "rw", "--json"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
}

#[test]
fn a_session_that_called_for_a_person_is_left_alone_until_it_moves_again() {
    let env = TestEnv::new();
    let _supervisor = Supervisor::start(&env);
    env.reins(&[
        "run",
        "mock",
        "--id",
        "esc",
        "--context",
        "[[stall]] go",
        "--supervised",
        "--stall-after",
        "1s",
        "--max-resumes",
        "0",
    ])
    .ok();
    wait_for(&env, "esc", "the escalation", |e| e["type"] == "escalate");
    std::thread::sleep(Duration::from_secs(2)); // ten scans, two stall windows
    assert_eq!(count(&env, "esc", "escalate"), 1, "called once, not once per scan");
    assert!(watching(&env).is_empty());
    let ended = status(&env)["supervisor"]["ended"].clone();
    assert_eq!(ended[0]["outcome"], "escalated", "{ended}");
    // A person steps in: the turn is interrupted and a new task sent.
    env.reins(&["interrupt", "--id", "esc"]).ok();
    env.reins(&["send", "--id", "esc", "now this"]).ok();
    eventually(Duration::from_secs(10), "the supervisor to watch esc again", || {
        watching(&env) == ["esc"]
    });
}

#[test]
fn idle_sessions_are_retired() {
    let env = TestEnv::new();
    env.write_config("[fleet]\nretire_after = \"1s\"\n");
    env.start("idle", &["--context", "hello"]);
    env.wait_event("idle", Duration::from_secs(10), |e| e["type"] == "task_complete");
    let _supervisor = Supervisor::start(&env);
    let exited =
        wait_for(&env, "idle", "the idle session to be retired", |e| e["type"] == "exited");
    assert_eq!(exited["reason"], "retired", "{exited}");
    eventually(Duration::from_secs(5), "the count of retired sessions", || {
        status(&env)["supervisor"]["retired"] == 1
    });
}

#[test]
fn one_supervisor_per_state_directory_and_stopping_it_leaves_the_sessions_running() {
    let env = TestEnv::new();
    let supervisor = Supervisor::start(&env);
    let pid = supervisor.0.id();
    let second = env.reins(&["supervise"]);
    assert_eq!(second.code, 1);
    assert!(second.stderr.contains("a supervisor already runs for"), "{}", second.stderr);
    assert!(second.stderr.contains(&format!("(pid {pid})")), "{}", second.stderr);
    let report = env.state_dir().join("supervise.json");
    assert_eq!(mode(&report), 0o600);
    env.reins(&["run", "mock", "--id", "kept", "--supervised", "--context", "hi"]).ok();
    eventually(Duration::from_secs(10), "kept to be watched", || watching(&env) == ["kept"]);

    let (code, stderr) = supervisor.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("the sessions go on running"), "{stderr}");
    assert!(!report.exists(), "supervise.json is removed at exit");
    env.reins(&["status", "--id", "kept", "--json"]).ok();
    let shown = env.reins(&["service", "status"]);
    assert_eq!(shown.code, 3, "not running: {}", shown.stdout);
    assert!(shown.stdout.contains("supervisor  not running"), "{}", shown.stdout);
    let bad = env.reins(&["supervise", "--scan-every", "1ms"]);
    assert_eq!(bad.code, 2);
    let bad = env.reins(&["run", "mock", "--supervised", "--on-exit", "stop"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

/// `systemd-analyze verify --user UNIT`: Ok, or what it said.
fn verify(env: &TestEnv, unit: &std::path::Path) -> Result<(), String> {
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(unit)
        .env_clear()
        .envs(env.env_vars())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.success() && said.trim().is_empty() { Ok(()) } else { Err(said) }
}

#[test]
fn the_systemd_unit_passes_systemds_verifier_and_is_removed_again() {
    if !have_tool("systemd-analyze") {
        return;
    }
    let env = TestEnv::new();
    let installed = env.reins(&["service", "install", "--no-start", "--json"]).ok().json();
    let path = std::path::PathBuf::from(installed["path"].as_str().unwrap());
    assert_eq!(path, env.path().join("config/systemd/user/reins-supervise.service"));
    assert_eq!(mode(&path), 0o600);
    assert_eq!(installed["steps"], serde_json::json!([]));
    let text = std::fs::read_to_string(&path).unwrap();
    let bin = crate::common::reins_bin().canonicalize().unwrap();
    assert!(text.contains(&format!("ExecStart=\"{}\" supervise\n", bin.display())), "{text}");
    let state = env.state_dir();
    assert!(text.contains(&format!("Environment=\"REINS_STATE_DIR={}\"", state.display())));
    assert!(text.contains("KillMode=process\n"), "{text}");
    assert!(!text.contains("After="), "no advisor, no order: {text}");
    verify(&env, &path).unwrap();
    // The verifier can fail: a unit whose program is gone is refused.
    let broken = env.path().join("broken.service");
    std::fs::write(&broken, text.replace(&bin.display().to_string(), "/nonexistent/reins"))
        .unwrap();
    assert!(verify(&env, &broken).is_err());

    let shown = env.reins(&["service", "status", "--json"]);
    assert_eq!(shown.code, 3, "no supervisor runs");
    let shown = shown.json();
    assert_eq!(
        (shown["unit"]["installed"].clone(), shown["unit"]["current"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(shown["supervisor"]["running"], false);

    // An advisor on this machine: the unit starts after its model server.
    env.write_config("[advisor]\nurl = \"http://127.0.0.1:11434/v1\"\n");
    let printed = env.reins(&["service", "install", "--print"]).ok().stdout;
    assert!(!printed.contains("After="), "no server unit installed: {printed}");
    let noted = env.reins(&["service", "install", "--no-start", "--json"]).ok().json();
    assert!(noted["notes"][0].as_str().unwrap().contains("[service] after"), "{noted}");
    let units = env.path().join("config/systemd/user");
    std::fs::write(units.join("ollama.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
    let installed = env.reins(&["service", "install", "--no-start", "--json"]).ok().json();
    assert_eq!(installed["after"], serde_json::json!(["ollama.service"]));
    assert_eq!(installed["replaced"], true);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("After=ollama.service\nWants=ollama.service\n"), "{text}");
    verify(&env, &path).unwrap();
    env.write_config("[service]\nafter = [\"llama-swap.service\"]\n");
    let printed = env.reins(&["service", "install", "--print"]).ok().stdout;
    assert!(printed.contains("After=llama-swap.service\n"), "{printed}");
    env.write_config("[service]\nafter = [\"ollama\"]\n");
    let bad = env.reins(&["service", "install", "--print"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("config.toml:2: [service] after"), "{}", bad.stderr);
    let bad = env.reins(&["service", "install", "--print", "--after", "x;y"]);
    assert_eq!(bad.code, 2);

    let removed = env.reins(&["service", "uninstall", "--json"]).ok().json();
    assert_eq!(removed["removed"], true);
    assert!(!path.exists());
    let again = env.reins(&["service", "uninstall"]).ok();
    assert!(again.stdout.contains("nothing to remove"), "{}", again.stdout);
}

#[test]
fn the_launchd_agent_is_a_property_list_that_runs_supervise() {
    if !have_tool("python3") {
        return;
    }
    let env = TestEnv::new();
    let plist = env.reins(&["service", "install", "--manager", "launchd", "--print"]).ok().stdout;
    let script =
        "import json, plistlib, sys; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))";
    let mut python = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    python.stdin.take().unwrap().write_all(plist.as_bytes()).unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(out.status.success(), "not a property list:\n{plist}");
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bin = crate::common::reins_bin().canonicalize().unwrap();
    assert_eq!(
        parsed["ProgramArguments"],
        serde_json::json!([bin.display().to_string(), "supervise"])
    );
    assert_eq!(parsed["Label"], "dev.reins.supervise");
    assert_eq!(parsed["AbandonProcessGroup"], true, "stopping it leaves the sessions");
    assert_eq!(
        parsed["EnvironmentVariables"]["REINS_STATE_DIR"],
        env.state_dir().display().to_string()
    );
}

#[test]
fn another_machine_gets_its_unit_and_its_supervisor_watches_what_is_started_from_here() {
    let Some(sshd) = crate::support::sshd::Sshd::start(&["a"]) else { return };
    let env = TestEnv::new();
    env.write_config(&sshd.config_toml(true));
    let machine = &sshd.host("a").env;
    let installed =
        env.reins(&["service", "install", "--no-start", "--json", "--host", "a"]).ok().json();
    let unit = machine.path().join("config/systemd/user/reins-supervise.service");
    assert_eq!(installed["path"], unit.display().to_string(), "{installed}");
    let text = std::fs::read_to_string(&unit).unwrap();
    let state = machine.state_dir();
    assert!(text.contains(&format!("REINS_STATE_DIR={}", state.display())), "{text}");
    // That machine's supervisor watches a session started from here.
    let _supervisor = Supervisor::start(machine);
    env.reins(&["run", "mock", "--id", "far", "--supervised", "--host", "a"]).ok();
    eventually(Duration::from_secs(10), "a's supervisor to watch far", || {
        let shown = env.reins(&["service", "status", "--json", "--host", "a"]);
        shown.code == 0 && shown.json()["supervisor"]["watching"][0]["id"] == "far"
    });
    assert!(watching(&env).is_empty(), "none runs here");
}
