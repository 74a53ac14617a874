//! `--host` and `reins hosts`: sessions on other machines over OpenSSH,
//! against two private sshd servers on loopback (tests/support/sshd.rs),
//! each with its own home and reins state, driven from one client.

use std::time::Duration;

use serde_json::Value;

use crate::common::TestEnv;
use crate::support::sshd::Sshd;

/// A client whose config.toml names the servers (and, with `reins`, the
/// binary under test as the reins there), plus `extra` tables.
fn client(sshd: &Sshd, reins: bool, extra: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&format!("{}{extra}", sshd.config_toml(reins)));
    env
}

/// A host that refuses connections: a loopback port nothing listens on.
fn unreachable_table() -> String {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
    format!(
        "[hosts.gone]\ndestination = \"127.0.0.1\"\nssh_options = [\"-p\", \"{port}\", \"-o\", \
         \"UserKnownHostsFile=/dev/null\", \"-F\", \"/dev/null\"]\n"
    )
}

#[test]
fn hosts_lists_reachability_version_and_agents_of_each() {
    let Some(sshd) = Sshd::start(&["a", "b"]) else { return };
    let env = client(&sshd, true, &unreachable_table());
    let run = env.reins(&["hosts", "--json"]).code(3);
    let rows: Vec<Value> = serde_json::from_str(run.stdout.trim()).unwrap();
    let row = |name: &str| rows.iter().find(|r| r["host_name"] == name).unwrap().clone();
    for name in ["a", "b"] {
        let r = row(name);
        assert_eq!(r["reachable"], true, "{r}");
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"), "{r}");
        assert!(r["agents"].as_array().unwrap().iter().any(|a| a == "mock"), "{r}");
    }
    // The host that is down does not hide the others, and says why.
    let gone = row("gone");
    assert_eq!(gone["reachable"], false, "{gone}");
    let error = gone["error"].as_str().unwrap();
    assert!(error.contains("cannot reach host \"gone\"") && error.contains("refused"), "{error}");
    assert!(gone["hint"].as_str().unwrap().contains("BatchMode=yes"), "{gone}");
    // The table, and the reasons on stderr.
    let run = env.reins(&["hosts"]).code(3);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("HOST"), "{}", run.stdout);
    assert!(lines.iter().any(|l| l.starts_with("a ") && l.contains(" ok ")), "{}", run.stdout);
    assert!(lines.iter().any(|l| l.starts_with("gone") && l.contains("unreachable")));
    assert!(run.stderr.contains("cannot reach host \"gone\""), "{}", run.stderr);
    // Only the hosts asked about.
    let rows = env.reins(&["hosts", "a", "b", "--json"]).ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");
}

#[test]
fn hosts_install_copies_reins_to_a_host_without_one() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, false, "");
    let run = env.reins(&["hosts", "a", "--json"]).code(1);
    let row = &run.json()[0];
    assert_eq!(row["reachable"], true, "{row}");
    assert!(row["error"].as_str().unwrap().contains("not installed"), "{row}");
    assert!(row["hint"].as_str().unwrap().contains("reins hosts install a"), "{row}");
    let done = env.reins(&["hosts", "install", "a", "--json"]).ok().json();
    assert_eq!(done["status"], "installed", "{done}");
    let home = sshd.host("a").env.path().join("home");
    let installed = home.join(".local/bin/reins");
    assert_eq!(done["path"], installed.display().to_string(), "{done}");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(crate::common::reins_bin()).unwrap(),
        "the copy is this binary, byte for byte"
    );
    // Found there on the next command, without any configured path.
    env.reins(&["hosts", "a"]).ok();
    let done = env.reins(&["hosts", "install", "a", "--json"]).ok().json();
    assert_eq!(done["status"], "already_installed", "{done}");
    let started = env.reins(&["run", "mock", "--id", "w1", "--detach", "--host", "a"]).ok().json();
    assert_eq!(started["id"], "w1");
    assert!(sshd.host("a").session_dir("w1").join("events.jsonl").is_file());
}

#[test]
fn a_remote_reins_of_another_version_is_a_clear_error_with_the_fix() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = TestEnv::new();
    let old = sshd.host("a").env.path().join("old-reins");
    std::fs::write(&old, "#!/bin/sh\necho 'reins 0.0.1'\n").unwrap();
    std::process::Command::new("chmod").arg("755").arg(&old).status().unwrap();
    env.write_config(&format!(
        "{}\nreins = \"{}\"\n",
        sshd.config_toml(false).trim_end(),
        old.display()
    ));
    let run = env.reins(&["hosts"]).code(1);
    assert!(run.stdout.contains("other version"), "{}", run.stdout);
    assert!(run.stderr.contains("host \"a\" has reins 0.0.1"), "{}", run.stderr);
    assert!(run.stderr.contains("reins hosts install a --force"), "{}", run.stderr);
    let run = env.reins(&["hosts", "install", "a"]).code(1);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    // A reins that a client of another version calls refuses, saying why.
    let mut cmd = env.command(&["status"]);
    cmd.env("REINS_CLIENT_VERSION", "0.0.1");
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("client that called it over ssh is 0.0.1"), "{stderr}");
}

#[test]
fn sessions_on_two_hosts_from_one_client() {
    let Some(sshd) = Sshd::start(&["a", "b"]) else { return };
    let env = client(&sshd, true, "");
    let (a, b) = (sshd.host("a"), sshd.host("b"));
    assert_ne!((&a.addr, a.port), (&b.addr, b.port), "two servers");
    for host in ["a", "b"] {
        let up = env.reins(&["run", "mock", "--id", "w1", "--detach", "--host", host]).ok().json();
        assert_eq!(up["ok"], true, "{up}");
    }
    // Each session is on its own machine, none on the client.
    for host in ["a", "b"] {
        assert!(sshd.host(host).session_dir("w1").join("events.jsonl").is_file());
    }
    assert!(!env.state_dir().join("sessions").exists() || !env.listed("w1"));
    let text = "on a: it's $(echo no) `x` \"y\" *".to_string();
    let sent = env.reins(&["send", "--id", "w1", &text, "--host", "a"]).ok().json();
    assert_eq!(sent["status"], "delivered", "{sent}");
    let sent = env.reins(&["send", "--id", "w1", "on b", "--host=b"]).ok().json();
    assert_eq!(sent["status"], "delivered", "{sent}");
    // The words arrived as typed.
    assert_eq!(sshd.host("a").env.first_message("w1")["text"], text.as_str());
    assert_eq!(sshd.host("b").env.first_message("w1")["text"], "on b");
    for host in ["a", "b"] {
        let waited = env
            .reins(&["wait", "--id", "w1", "--until", "task_complete", "--host", host])
            .ok()
            .json();
        assert_eq!(waited["status"], "reached", "{waited}");
        let rows = env.reins(&["status", "--json", "--host", host]).ok().json();
        assert_eq!(rows[0]["id"], "w1", "{rows}");
        assert_eq!(rows[0]["turn"], 1, "{rows}");
        let pane = env.reins(&["pane", "--id", "w1", "--host", host]).ok();
        assert!(pane.stdout.contains("Type a task"), "{}", pane.stdout);
        let events = env.reins(&["events", "--id", "w1", "--snapshot", "--host", host]).ok();
        assert!(events.stdout.contains("\"task_complete\""), "{}", events.stdout);
    }
    // The other client commands, each answered by the reins there.
    let inbox = env.reins(&["inbox", "--id", "w1", "--json", "--host", "a"]).ok().json();
    assert_eq!(inbox["messages"], serde_json::json!([]), "{inbox}");
    let logs = env.reins(&["logs", "--id", "w1", "--host", "b"]).ok();
    assert!(logs.stdout.contains("mock-agent"), "{}", logs.stdout);
    let gc = env.reins(&["gc", "--dry-run", "--json", "--host", "a"]).ok().json();
    assert_eq!(gc["dry_run"], true, "{gc}");
    let run = env.reins(&["interrupt", "--id", "w1", "--host", "b"]).code(1);
    assert!(run.stderr.contains("no turn is running"), "{}", run.stderr);
    let run = env.reins(&["approve", "--id", "w1", "--host", "a"]).code(1);
    assert!(run.stderr.contains("no approval request is pending"), "{}", run.stderr);
    let stopped = env.reins(&["stop", "--id", "w1", "--host", "a"]).ok().json();
    assert_eq!(stopped["status"], "stopped", "{stopped}");
    // b's session is untouched by a's stop.
    let rows = env.reins(&["status", "--json", "--host", "b"]).ok().json();
    assert_eq!(rows[0]["state"], "ready", "{rows}");
    // The shared connections live in a private directory.
    let ssh_dir = env.path().join("run/reins/ssh");
    assert_eq!(crate::common::mode(&ssh_dir) & 0o777, 0o700);
    assert_eq!(std::fs::read_dir(&ssh_dir).unwrap().count(), 2, "one socket per host");
}

#[test]
fn ssh_failure_is_distinct_from_the_remote_commands_exit_code() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, &unreachable_table());
    // The remote command's own failure passes through as it is.
    let run = env.reins(&["status", "--id", "nope", "--json", "--host", "a"]).code(1);
    let err = run.json();
    assert_eq!(err["ok"], false, "{err}");
    assert_eq!(err["exit_code"], 1, "{err}");
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    // ssh's failure is its own exit code and kind.
    let run = env.reins(&["status", "--json", "--host", "gone"]).code(3);
    let err = run.json();
    assert_eq!(err["kind"], "unreachable", "{err}");
    assert!(err["error"].as_str().unwrap().contains("cannot reach host \"gone\""), "{err}");
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    // A destination that would be an ssh option is refused before ssh runs.
    let run = env.reins(&["status", "--host=-oProxyCommand=x"]).code(2);
    assert!(run.stderr.contains("not a host name"), "{}", run.stderr);
}

#[test]
fn status_across_hosts_merges_rows_and_an_unreachable_host_hides_none() {
    let Some(sshd) = Sshd::start(&["a", "b"]) else { return };
    let env = client(&sshd, true, &unreachable_table());
    env.reins(&["run", "mock", "--id", "wa", "--detach", "--host", "a"]).ok();
    env.reins(&["run", "mock", "--id", "wb", "--detach", "--host", "b"]).ok();
    env.start("here", &[]);
    let run = env.reins(&["status", "--hosts", "all", "--json"]).code(3);
    let rows: Vec<Value> = serde_json::from_str(run.stdout.trim()).unwrap();
    let on =
        |host: &str| -> Vec<&Value> { rows.iter().filter(|r| r["host_name"] == host).collect() };
    assert_eq!(on("a").len(), 1, "{rows:?}");
    assert_eq!(on("a")[0]["id"], "wa");
    assert_eq!(on("b")[0]["id"], "wb");
    assert_eq!(on("local")[0]["id"], "here");
    let gone = on("gone");
    assert_eq!(gone.len(), 1, "{rows:?}");
    assert_eq!(gone[0]["state"], "unreachable");
    assert!(gone[0]["error"].as_str().unwrap().contains("cannot reach host \"gone\""));
    assert!(run.stderr.contains("cannot reach host \"gone\""), "{}", run.stderr);
    // The table has a HOST column; a named subset asks only those.
    let run = env.reins(&["status", "--hosts", "a,b"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("HOST  ID"), "{}", run.stdout);
    assert!(lines.iter().any(|l| l.starts_with("a ") && l.contains("wa")), "{}", run.stdout);
    assert!(lines.iter().any(|l| l.starts_with("b ") && l.contains("wb")), "{}", run.stdout);
    assert_eq!(lines.len(), 3, "{}", run.stdout);
}

#[test]
fn wait_host_survives_a_dropped_connection_and_never_settles_on_a_later_turn() {
    let Some(mut sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, "");
    env.reins(&["run", "mock", "--id", "w1", "--detach", "--host", "a"]).ok();
    let sent = env.reins(&["send", "--id", "w1", "first [[wait:2]]", "--host", "a"]).ok().json();
    assert_eq!(sent["turn"], 1, "{sent}");
    let waiting = env.spawn(&["wait", "--id", "w1", "--until", "task_complete", "--host", "a"]);
    // The remote wait is running (it has said how to resume it).
    crate::common::eventually(Duration::from_secs(10), "the remote wait to start", || {
        std::process::Command::new("pgrep")
            .args(["-f", "wait --id w1 --until task_complete --announce"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    // The machine drops off the network; meanwhile turn 1 completes and
    // a turn 2 starts there.
    sshd.host_mut("a").pause();
    let host = sshd.host("a");
    host.env.wait_event("w1", Duration::from_secs(20), |e| {
        e["type"] == "task_complete" && e["turn"] == 1
    });
    let sent = host.env.reins(&["send", "--id", "w1", "second [[wait:30]]"]).ok().json();
    assert_eq!(sent["turn"], 2, "{sent}");
    let mut waiting = waiting;
    assert!(waiting.try_wait().unwrap().is_none(), "the wait returned while the host was away");
    sshd.host_mut("a").resume();
    let (code, out, err) = finish(waiting, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(err.contains("lost the connection to host \"a\""), "{err}");
    assert_eq!(out.lines().count(), 1, "one outcome: {out}");
    let outcome: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(outcome["status"], "reached", "{outcome}");
    assert_eq!(outcome["turn"], 1, "turn 1's completion, not turn 2's: {outcome}");
    assert_eq!(outcome["event"]["type"], "task_complete", "{outcome}");
    assert_eq!(outcome["event"]["turn"], 1, "{outcome}");
    assert!(!out.contains("\"resume\""), "the resume line is the client's: {out}");
}

/// Waits for `child`; its exit code, stdout and stderr.
fn finish(child: std::process::Child, timeout: Duration) -> (Option<i32>, String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(timeout).expect("the command did not finish").unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn dispatch_runs_agents_on_other_hosts_and_keeps_the_outcome_store_here() {
    let Some(sshd) = Sshd::start(&["a", "b"]) else { return };
    let verdict = r#"done [[reply:{\"accept\": true, \"feedback\": \"fine\"}]]"#;
    let env = client(
        &sshd,
        true,
        &format!(
            "[agents.far]\nagent = \"mock\"\nhost = \"a\"\nargs = [\"--work\", \"0.1\"]\n\n\
             [agents.judge]\nagent = \"mock\"\nhost = \"b\"\nargs = [\"--work\", \"0.1\", \
             \"--reply\", \"{verdict}\"]\n"
        ),
    );
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "far",
            "--verifier",
            "judge",
            "--message",
            "x",
            "--id",
            "r1",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["agent"], "far", "{out}");
    assert_eq!(out["ok"], true, "{out}");
    // The worker ran on a, the verifier on b, nothing on this machine.
    let sessions = |state: std::path::PathBuf| -> Vec<String> {
        let mut ids = Vec::new();
        for scope in std::fs::read_dir(state.join("sessions")).into_iter().flatten().flatten() {
            for s in std::fs::read_dir(scope.path()).unwrap().flatten() {
                ids.push(s.file_name().to_string_lossy().into_owned());
            }
        }
        ids
    };
    assert_eq!(sessions(sshd.host("a").env.state_dir()).len(), 1, "the worker on a");
    assert_eq!(sessions(sshd.host("b").env.state_dir()).len(), 1, "the verifier on b");
    assert!(sessions(env.state_dir()).is_empty(), "{:?}", sessions(env.state_dir()));
    // Each stopped when its part was done.
    for h in ["a", "b"] {
        let rows = sshd.host(h).env.reins(&["status", "--all", "--json"]).ok().json();
        assert_eq!(rows.as_array().unwrap().len(), 0, "{h}: {rows}");
    }
    // The outcome store is this machine's.
    let attempts = env.dispatch_history("r1");
    assert_eq!(attempts[0]["agent"], "far", "{attempts:?}");
    assert!(env.state_dir().join("reins.db").is_file());
    for h in ["a", "b"] {
        assert!(!sshd.host(h).env.state_dir().join("reins.db").exists(), "{h} has a store");
    }
}

#[test]
fn a_remote_agents_sessions_count_against_its_cap_and_an_unreachable_host_is_a_reason() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(
        &sshd,
        true,
        &format!(
            "{}\n[agents.far]\nagent = \"mock\"\nhost = \"a\"\nmax_concurrent = 1\n\
             args = [\"--work\", \"0.1\"]\n\n[agents.lost]\nagent = \"mock\"\nhost = \"gone\"\n\n\
             [agents.near]\nagent = \"mock\"\nargs = [\"--work\", \"0.1\"]\n",
            unreachable_table()
        ),
    );
    // A live session of `far` on a (as a dispatch there would have started).
    env.reins(&[
        "run",
        "mock",
        "--id",
        "busy1",
        "--detach",
        "--meta",
        r#"{"reins_agent":"far"}"#,
        "--host",
        "a",
    ])
    .ok();
    // One that is not far's does not count.
    env.reins(&["run", "mock", "--id", "other", "--detach", "--host", "a"]).ok();
    let out = env.reins(&["agents", "far", "lost", "--json"]).ok().json();
    let availability = |name: &str| {
        out["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
            ["availability"]
            .clone()
    };
    let far = availability("far");
    assert_eq!((far["load"].as_u64(), far["max_concurrent"].as_u64()), (Some(1), Some(1)));
    assert_eq!(far["available"], false, "{far}");
    assert!(far["reason"].as_str().unwrap().contains("at its cap: 1 of 1"), "{far}");
    let lost = availability("lost");
    assert_eq!(lost["available"], false, "{lost}");
    assert_eq!(lost["load"], Value::Null, "not counted: {lost}");
    let why = lost["reason"].as_str().unwrap();
    assert!(why.contains("cannot count its sessions on host gone"), "{why}");
    assert!(why.contains("cannot reach host \"gone\""), "{why}");
    // The table says the same.
    let table = env.reins(&["agents", "far", "lost"]).ok().stdout;
    assert!(table.lines().any(|l| l.starts_with("far") && l.contains("1/1")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("lost") && l.contains("?")), "{table}");
    // Dispatch passes both over, saying why, and never starts a second
    // session of far on a.
    let out = env
        .reins(&["dispatch", "--prefer", "lost,far,near", "--message", "x", "--json"])
        .ok()
        .json();
    assert_eq!(out["agent"], "near", "{out}");
    let skipped = out["skipped"].as_array().unwrap();
    let reason = |name: &str| {
        skipped.iter().find(|s| s["agent"] == name).unwrap()["reason"].as_str().unwrap().to_string()
    };
    assert!(reason("far").contains("at its cap: 1 of 1"), "{out}");
    assert!(reason("lost").contains("cannot reach host \"gone\""), "{out}");
    let rows = sshd.host("a").env.reins(&["status", "--all", "--json"]).ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 2, "no new session on a: {rows}");
    // Its session gone, far takes the next task there.
    env.reins(&["stop", "--id", "busy1", "--host", "a"]).ok();
    let out = env
        .reins(&["dispatch", "--prefer", "far,near", "--message", "x", "--id", "d2", "--json"])
        .ok()
        .json();
    assert_eq!(out["agent"], "far", "{out}");
}

#[test]
fn wait_host_on_several_sessions_resumes_each_after_a_dropped_connection() {
    let Some(mut sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, "");
    for id in ["w1", "w2"] {
        env.reins(&["run", "mock", "--id", id, "--detach", "--host", "a"]).ok();
    }
    env.reins(&["send", "--id", "w1", "one [[wait:1]]", "--host", "a"]).ok();
    env.reins(&["send", "--id", "w2", "two [[wait:4]]", "--host", "a"]).ok();
    // A pattern: the sessions it names when the wait starts.
    let mut waiting = env.spawn(&["wait", "--id", "w*", "--until", "task_complete", "--host", "a"]);
    let stdout = waiting.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // w1's turn completes while connected: its line comes at once.
    let first: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!((first["id"].as_str(), first["status"].as_str()), (Some("w1"), Some("reached")));
    // The machine drops off the network; meanwhile w2's turn 1 completes,
    // both get a turn 2, and a new session that the pattern would match
    // starts there.
    sshd.host_mut("a").pause();
    let host = sshd.host("a");
    host.env.wait_event("w2", Duration::from_secs(20), |e| {
        e["type"] == "task_complete" && e["turn"] == 1
    });
    for id in ["w1", "w2"] {
        let sent = host.env.reins(&["send", "--id", id, "again [[wait:30]]"]).ok().json();
        assert_eq!(sent["turn"], 2, "{sent}");
    }
    host.env.start("w3", &[]);
    assert!(waiting.try_wait().unwrap().is_none(), "the wait returned while the host was away");
    sshd.host_mut("a").resume();
    let second: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert_eq!(second["id"], "w2", "{second}");
    assert_eq!(second["status"], "reached", "{second}");
    assert_eq!(second["turn"], 1, "turn 1's completion, not turn 2's: {second}");
    assert_eq!(second["event"]["turn"], 1, "{second}");
    let (code, rest, err) = finish(waiting, Duration::from_secs(30));
    assert_eq!(code, Some(0), "both reached: {rest}\n{err}");
    assert!(err.contains("lost the connection to host \"a\""), "{err}");
    // Nothing more: w1 is not reported twice, w3 not at all, no resume line.
    assert!(lines.recv_timeout(Duration::from_millis(200)).is_err());
    assert_eq!(rest, "", "stdout was taken by the reader");
}

#[test]
fn wait_host_until_exit_tells_a_session_that_exited_3_from_an_unreachable_host() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, &unreachable_table());
    env.reins(&["run", "mock", "--id", "w1", "--detach", "--host", "a"]).ok();
    env.reins(&["send", "--id", "w1", "bye [[exit:3]]", "--host", "a"]).ok();
    // The session's own 3: the line says it was reached, with its exit.
    let run = env.reins(&["wait", "--id", "w1", "--until", "exit", "--host", "a"]).code(3);
    let line = run.json();
    assert_eq!(line["status"], "reached", "{line}");
    assert_eq!(line["exit"]["code"], 3, "{line}");
    assert!(line.get("kind").is_none(), "{line}");
    // ssh's 3: the line says the host was unreachable (without --json too),
    // one for each session waited on.
    let run = env
        .reins(&["wait", "--id", "w1", "--id", "w2", "--until", "exit", "--host", "gone"])
        .code(3);
    let lines: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    for (line, id) in lines.iter().zip(["w1", "w2"]) {
        assert_eq!(line["id"], id, "{line}");
        assert_eq!(line["status"], "unreachable", "{line}");
        assert_eq!(line["kind"], "unreachable", "{line}");
        assert_eq!(line["host_name"], "gone", "{line}");
        assert!(line["error"].as_str().unwrap().contains("cannot reach host"), "{line}");
    }
    assert!(run.stderr.contains("cannot reach host \"gone\""), "{}", run.stderr);
    // With --json, still one line per session (not an extra error line).
    let run = env.reins(&["wait", "--id", "w1", "--json", "--host", "gone"]).code(3);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
}

#[test]
fn dispatch_watch_watches_a_remote_worker_with_the_watcher_there() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(
        &sshd,
        true,
        "[agents.far]\nagent = \"mock\"\nhost = \"a\"\nargs = [\"--work\", \"0.1\"]\n",
    );
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "far",
            "--message",
            "[[stall]] go",
            "--id",
            "wn",
            "--watch",
            "--stall-after",
            "1s",
            "--max-resumes",
            "1",
            "--attempt-timeout",
            "30s",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(out["result"], "accepted", "the nudged turn counts: {out}");
    // The watcher ran there: the stall and the nudge are in the session's
    // log on a, and its words in the attempt's watch log here.
    let kinds: Vec<String> = sshd
        .host("a")
        .env
        .events("wn")
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"stall".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"resume".to_string()), "{kinds:?}");
    let logs: Vec<std::path::PathBuf> = walk(&env.state_dir())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("wn.watch.log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let words = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(words.contains("id=wn stall-after=1s"), "{words:?} {:?}", walk(&env.state_dir()));
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn watch_host_runs_the_watcher_there_and_returns_its_summary() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, "");
    env.reins(&[
        "run",
        "mock",
        "--id",
        "st",
        "--detach",
        "--context",
        "[[stall]] go",
        "--host",
        "a",
    ])
    .ok();
    let watched = env
        .reins(&["watch", "--id", "st", "--stall-after", "1s", "--json", "--host", "a"])
        .ok()
        .json();
    assert_eq!((&watched["outcome"], &watched["resumes"]), (&"finished".into(), &1.into()));
    // The decisions are in a's event log: its reins did the watching.
    let events = sshd.host("a").env.events("st");
    assert!(events.iter().any(|e| e["type"] == "resume"), "no nudge on a");
    let missing = env.reins(&["watch", "--id", "nope", "--host", "a"]).code(1);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

#[test]
fn a_remote_worker_blocked_on_an_approval_nobody_answers_fails_over_within_the_grace() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(
        &sshd,
        true,
        "[agents.asker]\nagent = \"mock\"\nhost = \"a\"\n\
         args = [\"--work\", \"0.2\", \"--ask-approval\"]\n\n\
         [agents.plain]\nagent = \"mock\"\nargs = [\"--work\", \"0.2\"]\n",
    );
    let started = std::time::Instant::now();
    let summary = env
        .reins(&[
            "dispatch",
            "--prefer",
            "asker,plain",
            "--max-failures",
            "1",
            "--blocked-grace",
            "2s",
            "--attempt-timeout",
            "5m",
            "--id",
            "rblk",
            "--message",
            "tidy up",
            "--json",
        ])
        .ok()
        .json();
    let elapsed = started.elapsed();
    assert_eq!(summary["result"], "accepted", "{summary}");
    let attempts = summary["attempts"].as_array().unwrap();
    assert_eq!(crate::common::field(attempts, "agent"), ["asker", "plain"], "{summary}");
    let reason = attempts[0]["reason"].as_str().unwrap();
    assert!(reason.contains("blocked on approval for 2s"), "{reason}");
    assert!(elapsed < Duration::from_secs(40), "not the 5m attempt timeout: {elapsed:?}");
    // The blocked worker on a was stopped.
    let rows = sshd.host("a").env.reins(&["status", "--all", "--json"]).ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 0, "{rows}");
}

#[test]
fn dispatch_host_runs_the_whole_dispatch_there_with_its_store() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, "");
    let out = env
        .reins(&[
            "dispatch",
            "--agent",
            "mock",
            "--message",
            "x",
            "--id",
            "whole",
            "--json",
            "--host",
            "a",
        ])
        .ok()
        .json();
    assert_eq!(out["result"], "accepted", "{out}");
    let there = env.reins(&["dispatch", "--history", "--id", "whole", "--json", "--host", "a"]);
    assert_eq!(there.ok().json()["attempts"][0]["agent"], "mock");
    assert!(sshd.host("a").env.state_dir().join("reins.db").is_file(), "a's store");
    assert!(!env.state_dir().join("reins.db").exists(), "nothing in this machine's store");
}

#[test]
fn a_host_that_stops_answering_ends_a_command_within_seconds_not_never() {
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd, true, "");
    // The shared connection is up; then the host vanishes without a word.
    env.reins(&["status", "--json", "--host", "a"]).ok();
    let stalled = sshd.host("a").stall();
    let started = std::time::Instant::now();
    let child = env.spawn(&["status", "--json", "--host", "a"]);
    let (code, stdout, stderr) = finish(child, Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    // Keepalives end the shared connection (15 s), then ssh's own try at a
    // new one gives up at its connect timeout (10 s): never a hang.
    assert!(took < Duration::from_secs(45), "keepalives end it: {took:?}");
    assert!(stderr.contains("host \"a\""), "{stderr}");
    drop(stalled);
    env.reins(&["status", "--json", "--host", "a"]).ok();
}
