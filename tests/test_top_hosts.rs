//! `reins top --hosts`: the dashboard of several machines, in a real tmux
//! pane, against the two private sshd servers of tests/support/sshd.rs
//! (each its own machine with its own reins state): every machine's
//! sessions with their host, keys that act on a remote session through the
//! reins there, a host that goes away shows its error without hiding the
//! others and comes back, and remote answers that change nothing draw
//! nothing.

use std::time::Duration;

use crate::common::{TestEnv, eventually, have_tool};
use crate::support::dashboard::{keys, screen, shows, start as dashboard};
use crate::support::sshd::Sshd;

/// The table line of host `host` whose next cell is `id` (`-` for the
/// line of a host that shows no session).
fn row<'a>(screen: &'a str, host: &str, id: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let mut cells = l.trim_start_matches('│').split_whitespace();
        cells.next() == Some(host) && cells.next() == Some(id)
    })
}

/// The line of a host that shows no session (`b  unreachable: …`, `a  no
/// sessions`): its words after the host.
fn host_line<'a>(screen: &'a str, host: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let mut cells = l.trim_start_matches('│').split_whitespace();
        cells.next() == Some(host)
            && cells.next().is_some_and(|c| c == "unreachable:" || c == "no" || c == "asking…")
    })
}

/// Kills a process (the watcher started on a host) when the test ends.
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        if crate::common::alive(self.0) {
            crate::common::signal(self.0 as i32, 9);
        }
    }
}

fn client(sshd: &Sshd) -> TestEnv {
    let env = TestEnv::new();
    env.write_config(&sshd.config_toml(true));
    env
}

#[test]
fn top_hosts_shows_every_machine_and_its_keys_act_on_a_remote_session() {
    if !have_tool("tmux") {
        return;
    }
    let Some(mut sshd) = Sshd::start(&["a", "b"]) else { return };
    let env = client(&sshd);
    env.start("here", &["--description", "on this machine"]);
    env.wait_state("here", "ready");
    for (host, id) in [("a", "wa"), ("b", "wb")] {
        env.reins(&["run", "mock", "--id", id, "--detach", "--host", host]).ok();
        sshd.host(host).env.wait_state(id, "ready");
    }
    dashboard(&env, 150, 44, "", "top --hosts a,b");
    let ten = Duration::from_secs(10);
    shows(&env, "the sessions of all three machines", ten, |s| {
        row(s, "local", "here").is_some_and(|r| r.contains("ready") && r.contains("on this"))
            && row(s, "a", "wa").is_some_and(|r| r.contains("ready"))
            && row(s, "b", "wb").is_some_and(|r| r.contains("ready"))
    });
    let s = screen(&env);
    assert!(s.contains("HOST") && s.contains("3 sessions"), "{s}");
    // This machine first, then the hosts in the order given.
    let at = |host, id| s.lines().position(|l| row(l, host, id).is_some()).unwrap();
    assert!(at("local", "here") < at("a", "wa") && at("a", "wa") < at("b", "wb"), "{s}");

    // The remote session selected: its screen and events, from a.
    keys(&env, &["j"]);
    shows(&env, "wa's screen and events", ten, |s| {
        s.contains("wa@a: screen")
            && s.contains("Type a task")
            && s.contains("wa@a: events")
            && s.contains("started")
    });

    // A message from the composer is delivered there; it blocks on an
    // approval, and `a` approves it through the reins there.
    keys(&env, &["s"]);
    env.tmux(&["send-keys", "-t", "top", "-l", "[[approve]] from top"]);
    keys(&env, &["Enter"]);
    let a = &sshd.host("a").env;
    assert!(a.first_message("wa")["text"].as_str().unwrap().contains("from top"));
    a.wait_event("wa", ten, |e| e["type"] == "delivered");
    shows(&env, "wa blocked on approval", ten, |s| {
        row(s, "a", "wa").is_some_and(|r| r.contains("blocked{approval}"))
    });
    keys(&env, &["a"]);
    a.wait_event("wa", ten, |e| e["type"] == "approval" && e["decision"] == "allow");
    shows(&env, "wa unblocked", ten, |s| row(s, "a", "wa").is_some_and(|r| !r.contains("blocked")));
    assert!(env.events("here").iter().all(|e| e["type"] != "queued"), "nothing sent here");

    // `w` starts a watcher on a, its words in the session's directory there.
    keys(&env, &["w"]);
    shows(&env, "the watcher started there", ten, |s| s.contains("wa@a: watcher started there"));
    let said = screen(&env);
    let pid: u32 = said
        .split("watcher started there (pid ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {said}"));
    // Should the test fail before the session stops, the watcher goes too.
    let _reap = Reap(pid);
    let log = sshd.host("a").session_dir("wa").join("watch.log");
    eventually(ten, "the watcher's first words on a", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("id=wa") && t.contains("until-exit"))
    });
    assert!(crate::common::alive(pid), "the watcher {pid} is not running");

    // b goes off the network: its line says why, a's rows stay.
    sshd.host_mut("b").pause();
    shows(&env, "b unreachable and a's rows still there", Duration::from_secs(20), |s| {
        host_line(s, "b").is_some_and(|l| l.contains("unreachable") && l.contains("cannot reach"))
            && row(s, "b", "wb").is_none()
            && row(s, "a", "wa").is_some()
            && row(s, "local", "here").is_some()
    });
    // And back: its rows come back.
    sshd.host_mut("b").resume();
    shows(&env, "wb back", Duration::from_secs(20), |s| {
        row(s, "b", "wb").is_some_and(|r| r.contains("ready")) && host_line(s, "b").is_none()
    });

    // Enter attaches over ssh -t (the dashboard gives up the terminal);
    // Ctrl-] comes back to it.
    keys(&env, &["Enter"]);
    shows(&env, "wa's own terminal", ten, |s| {
        s.contains("Type a task for mock") && !s.contains("wa@a: screen")
    });
    // A key typed before ssh and the attach there have the terminal in raw
    // mode can sit in a line buffer, as a person's would: press it again
    // until the dashboard is back.
    let back = |s: &str| s.contains("back from wa@a") && row(s, "a", "wa").is_some();
    eventually(ten, "the dashboard again after Ctrl-]", || {
        if !back(&screen(&env)) {
            keys(&env, &["C-]"]);
        }
        std::thread::sleep(Duration::from_millis(400));
        back(&screen(&env))
    });

    // Stop asks first, then stops it there; the watcher leaves with it.
    keys(&env, &["x"]);
    shows(&env, "the question", ten, |s| s.contains("stop session wa@a and everything"));
    keys(&env, &["y"]);
    shows(&env, "wa gone", ten, |s| row(s, "a", "wa").is_none() && s.contains("wa@a: stopped"));
    let exited = sshd.host("a").env.events("wa");
    let exited = exited.into_iter().rev().find(|e| e["type"] == "exited").unwrap();
    assert_eq!(exited["reason"], "stopped");
    eventually(ten, "the watcher to leave with its session", || !crate::common::alive(pid));
    assert!(std::fs::read_to_string(&log).unwrap().contains("the session ended"));
    shows(&env, "a with no sessions", ten, |s| {
        host_line(s, "a").is_some_and(|l| l.contains("no sessions"))
    });
    keys(&env, &["q"]);
    shows(&env, "top to exit", ten, |s| s.contains("top exited 0"));
}

/// Each host is asked every 2 s and the selected remote session every
/// second: answers that change nothing must not draw a frame.
#[test]
fn remote_answers_that_change_nothing_draw_nothing() {
    if !have_tool("tmux") {
        return;
    }
    let Some(sshd) = Sshd::start(&["a"]) else { return };
    let env = client(&sshd);
    env.reins(&["run", "mock", "--id", "quiet", "--detach", "--host", "a"]).ok();
    sshd.host("a").env.wait_state("quiet", "ready");
    let stats = env.path().join("stats.jsonl");
    dashboard(&env, 120, 30, &format!("REINS_TOP_STATS={}", stats.display()), "top --hosts a");
    shows(&env, "the remote session and its screen", Duration::from_secs(10), |s| {
        row(s, "a", "quiet").is_some() && s.contains("Type a task")
    });
    let frames = || std::fs::read_to_string(&stats).unwrap_or_default();
    std::thread::sleep(Duration::from_millis(1500));
    let before = frames().lines().count();
    // Two host refreshes and four screen refreshes at least.
    std::thread::sleep(Duration::from_secs(5));
    let text = frames();
    let window: Vec<&str> = text.lines().skip(before).collect();
    assert!(window.len() <= 6, "{} frames in 5 s of nothing happening:\n{window:#?}", window.len());
    assert!(
        window.iter().all(|f| f.contains("\"cause\":\"tick\"")),
        "a frame for an answer that changed nothing:\n{window:#?}"
    );
    keys(&env, &["q"]);
}

#[test]
fn top_hosts_all_without_configured_hosts_says_how_to_add_one() {
    let env = TestEnv::new();
    let out = env.reins(&["top", "--hosts", "all"]).code(2);
    assert!(out.stderr.contains("--hosts all: config.toml names no host"), "{}", out.stderr);
    assert!(out.stderr.contains("[hosts.NAME]"), "{}", out.stderr);
    let out = env.reins(&["top", "--hosts", ","]).code(2);
    assert!(out.stderr.contains("--hosts names no other host"), "{}", out.stderr);
}

/// A host that takes the connection but never answers (ssh waits for its
/// banner): the dashboard still shows this machine's rows at once, says it
/// is asking, and `q` quits without waiting for ssh.
#[test]
fn a_host_that_never_answers_holds_up_neither_the_frames_nor_quitting() {
    if !have_tool("tmux") {
        return;
    }
    let ssh = std::process::Command::new("ssh").arg("-V").output();
    if !ssh.is_ok_and(|o| o.status.success()) {
        return crate::common::skip("ssh is not installed (openssh-client)");
    }
    let silent = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = silent.local_addr().unwrap().port();
    let held: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Default::default();
    let keep = held.clone();
    std::thread::spawn(move || {
        for conn in silent.incoming().flatten() {
            keep.lock().unwrap().push(conn);
        }
    });
    let env = TestEnv::new();
    env.write_config(&format!(
        "[hosts.silent]\ndestination = \"127.0.0.1\"\nssh_options = [\"-p\", \"{port}\", \"-o\", \
         \"UserKnownHostsFile=/dev/null\", \"-F\", \"/dev/null\"]\n"
    ));
    env.start("here", &[]);
    env.wait_state("here", "ready");
    dashboard(&env, 120, 30, "", "top --hosts silent");
    let two = Duration::from_secs(2);
    shows(&env, "this machine's row while silent is asked", two, |s| {
        row(s, "local", "here").is_some()
            && host_line(s, "silent").is_some_and(|l| l.contains("asking"))
    });
    eventually(two, "ssh to be connected to the silent host", || !held.lock().unwrap().is_empty());
    let asked = std::time::Instant::now();
    keys(&env, &["q"]);
    shows(&env, "top to exit", two, |s| s.contains("top exited 0"));
    assert!(asked.elapsed() < two, "quitting waited for ssh: {:?}", asked.elapsed());
}

/// A connection that stalls without an error (the network holds the
/// packets): ssh's connect timeout does not cover it, so the dashboard's
/// own bound says the host is not answering, the other hosts' rows stay,
/// and the host's rows come back when its connection moves again.
#[test]
fn a_host_whose_connection_stalls_shows_as_not_answering_and_comes_back() {
    if !have_tool("tmux") {
        return;
    }
    let Some(sshd) = Sshd::start(&["a", "b"]) else { return };
    let env = client(&sshd);
    for (host, id) in [("a", "wa"), ("b", "wb")] {
        env.reins(&["run", "mock", "--id", id, "--detach", "--host", host]).ok();
        sshd.host(host).env.wait_state(id, "ready");
    }
    dashboard(&env, 150, 40, "", "top --hosts a,b");
    let ten = Duration::from_secs(10);
    shows(&env, "both hosts' rows", ten, |s| {
        row(s, "a", "wa").is_some() && row(s, "b", "wb").is_some()
    });
    // b's server and its connections stop where they are (the listener
    // itself too: nothing answers, nothing is refused).
    let resume = sshd.host("b").stall();
    shows(&env, "b not answering, a's rows still there", Duration::from_secs(20), |s| {
        host_line(s, "b").is_some_and(|l| l.contains("has not answered for 10s"))
            && row(s, "b", "wb").is_none()
            && row(s, "a", "wa").is_some()
    });
    drop(resume);
    shows(&env, "wb back", ten, |s| row(s, "b", "wb").is_some() && host_line(s, "b").is_none());
    keys(&env, &["q"]);
    shows(&env, "top to exit", ten, |s| s.contains("top exited 0"));
}
