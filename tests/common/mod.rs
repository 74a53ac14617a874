//! The hermetic test environment: every test gets its own state, runtime,
//! config and home directories, a scrubbed environment, and (when it needs
//! tmux) a private tmux server. Dropping the environment kills whatever the
//! test left running.

#![allow(dead_code, reason = "each test module uses a different subset of the helpers")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of the `reins` binary under test.
pub fn reins_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_reins"))
}

/// Whether missing tools must fail tests instead of skipping them (CI).
pub fn tools_required() -> bool {
    std::env::var_os("REINS_TEST_REQUIRE_TOOLS").is_some_and(|v| v == "1")
}

/// Returns false (and says so loudly) when `tool` is missing; panics
/// instead when the run requires every tool.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg(if tool == "tmux" { "-V" } else { "--version" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}

/// The one way a test says it will not run (the caller returns after it).
/// Under `REINS_TEST_REQUIRE_TOOLS=1` (CI) it fails the test instead: in
/// CI nothing may skip. Either way the test's name and `why` are appended
/// to the file `$REINS_TEST_SKIP_LOG` names, one tab-separated line each,
/// so `scripts/test` can count what passed without running (nextest shows
/// a skipped test as a pass, and hides its output).
#[track_caller]
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("an unnamed test").to_string();
    if let Some(log) = std::env::var_os("REINS_TEST_SKIP_LOG").filter(|p| !p.is_empty()) {
        use std::io::Write;
        let line = format!("{test}\t{why}\n");
        // One append of one line: tests in parallel processes never mix.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(err) = written {
            panic!("cannot record the skip in {}: {err}", Path::new(&log).display());
        }
    }
    assert!(!tools_required(), "{test} cannot run: {why} (REINS_TEST_REQUIRE_TOOLS=1)");
    eprintln!("SKIPPED: {why}; this test did not run");
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    /// The working directory commands run in.
    pub work: PathBuf,
    env: HashMap<String, String>,
    tmux_server: String,
}

/// The result of running `reins`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns self.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts this exit code and returns self.
    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "wrong exit code:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Short paths: socket paths must stay under 108 bytes.
        let root = tempfile::Builder::new().prefix("rt").tempdir_in("/tmp").unwrap();
        let base = root.path();
        let work = base.join("work");
        for dir in ["work", "home", "state", "run", "config"] {
            std::fs::create_dir_all(base.join(dir)).unwrap();
        }
        let mut env = HashMap::new();
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.insert("HOME".into(), base.join("home").display().to_string());
        env.insert("REINS_STATE_DIR".into(), base.join("state").display().to_string());
        env.insert("XDG_RUNTIME_DIR".into(), base.join("run").display().to_string());
        env.insert("XDG_CONFIG_HOME".into(), base.join("config").display().to_string());
        env.insert("LANG".into(), "C.UTF-8".into());
        env.insert("TERM".into(), "xterm-256color".into());
        // `REINS_NO_INOTIFY=1 cargo nextest run` runs the suite with
        // followers woken by their hosts instead of inotify.
        if let Ok(v) = std::env::var("REINS_NO_INOTIFY") {
            env.insert("REINS_NO_INOTIFY".into(), v);
        }
        let tmux_server = format!("reins-test-{}-{n}", std::process::id());
        env.insert("REINS_TMUX_SERVER".into(), tmux_server.clone());
        TestEnv { root, work, env, tmux_server }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// Sets (or with `None` removes) an environment variable for later runs.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.env.insert(key.into(), v.into()),
            None => self.env.remove(key),
        };
    }

    /// A `reins` command in this environment.
    /// The environment every command of this test runs with.
    pub fn env_vars(&self) -> &HashMap<String, String> {
        &self.env
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(reins_bin());
        cmd.args(args).current_dir(&self.work).env_clear().envs(&self.env);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// A `sh -c SCRIPT` command in this environment (the script finds the
    /// binary under test in `$REINS`).
    pub fn sh(&self, script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]).current_dir(&self.work).env_clear().envs(&self.env);
        cmd.env("REINS", reins_bin()).stdin(Stdio::null());
        cmd
    }

    /// Runs `reins` to completion.
    pub fn reins(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("run reins"))
    }

    /// `reins run AGENT --id ID --detach [extra]` and its JSON.
    #[track_caller]
    pub fn start(&self, id: &str, extra: &[&str]) -> Value {
        let mut args = vec!["run", "mock", "--id", id, "--detach"];
        args.extend_from_slice(extra);
        self.reins(&args).ok().json()
    }

    /// A tmux command against this test's private server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.tmux_server])
            .args(args)
            .env_clear()
            .envs(&self.env)
            .output()
            .expect("run tmux")
    }

    pub fn tmux_server(&self) -> &str {
        &self.tmux_server
    }

    /// Starts tmux session `name` on the private server, its one 100x30
    /// pane running the shell `command` in the work directory; returns the
    /// pane id.
    #[track_caller]
    pub fn tmux_session(&self, name: &str, command: &str) -> String {
        let work = self.work.to_str().unwrap();
        let args =
            ["new-session", "-d", "-P", "-F", "#{pane_id}", "-s", name, "-x", "100", "-y", "30"];
        let out = self.tmux(&[&args[..], &["-c", work, command]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The session directory of `id` (searching every scope).
    #[track_caller]
    pub fn session_dir(&self, id: &str) -> PathBuf {
        self.find_session_dir(id).unwrap_or_else(|| panic!("no session directory for {id}"))
    }

    /// Writes `$XDG_CONFIG_HOME/reins/config.toml`.
    pub fn write_config(&self, text: &str) {
        let dir = self.path().join("config/reins");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), text).unwrap();
    }

    /// The attempts the outcome store has for dispatch `id`.
    pub fn dispatch_history(&self, id: &str) -> Vec<Value> {
        let out = self.reins(&["dispatch", "--history", "--id", id, "--json"]).ok().json();
        assert_eq!(out["store_schema"], 3, "{out}");
        out["attempts"].as_array().unwrap().clone()
    }

    /// Whether `status --all` lists session `id` (its host is registered).
    pub fn listed(&self, id: &str) -> bool {
        let status = self.reins(&["status", "--json", "--all"]).ok().json();
        status.as_array().into_iter().flatten().any(|s| s["id"] == id)
    }

    /// The text of the first message a session got (its brief).
    pub fn brief(&self, id: &str) -> String {
        self.first_message(id)["text"].as_str().unwrap().to_string()
    }

    /// The first message queued for `id` (its brief), from its inbox. A
    /// host queues `--context` once it is up, just after `run --detach`
    /// returns, so this waits for it.
    pub fn first_message(&self, id: &str) -> Value {
        let mut first = None;
        eventually(Duration::from_secs(10), &format!("the first message in {id}'s inbox"), || {
            let inbox = std::fs::read_to_string(self.session_dir(id).join("inbox.jsonl"));
            first = inbox.ok().and_then(|t| t.lines().next().map(str::to_owned));
            first.is_some()
        });
        let first: Value = serde_json::from_str(&first.unwrap()).unwrap();
        assert_eq!(first["type"], "message", "{first}");
        first
    }

    fn find_session_dir(&self, id: &str) -> Option<PathBuf> {
        let sessions = self.state_dir().join("sessions");
        std::fs::read_dir(&sessions)
            .ok()?
            .flatten()
            .map(|scope| scope.path().join(id))
            .find(|dir| dir.join("events.jsonl").is_file())
    }

    /// Parsed events of `id`.
    pub fn events(&self, id: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.session_dir(id).join("events.jsonl")).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Waits (by following `reins events --follow`) until an event of `id`
    /// satisfies `pred`, and returns it.
    #[track_caller]
    pub fn wait_event(&self, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        // A session started by a command in a tmux pane may not exist yet.
        eventually(timeout, &format!("session {id} to exist"), || {
            self.find_session_dir(id).is_some()
        });
        let mut child = self
            .command(&["events", "--id", id, "--follow"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let ev: Value = serde_json::from_str(&line).unwrap();
                    if pred(&ev) {
                        break Some(ev);
                    }
                    seen.push(line);
                }
                Err(_) => break None,
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        found.unwrap_or_else(|| {
            panic!("no matching event for {id} within {timeout:?}; saw:\n{}", seen.join("\n"))
        })
    }

    /// Waits until `id` reaches `state`.
    #[track_caller]
    pub fn wait_state(&self, id: &str, state: &str) -> Value {
        self.wait_event(id, Duration::from_secs(10), |e| e["type"] == "state" && e["to"] == state)
    }

    /// Spawns `reins` in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Kill every host and agent this test started, whatever state the
        // test left them in.
        let sessions = self.state_dir().join("sessions");
        if let Ok(scopes) = std::fs::read_dir(&sessions) {
            for scope in scopes.flatten() {
                for session in std::fs::read_dir(scope.path()).into_iter().flatten().flatten() {
                    let Ok(text) = std::fs::read_to_string(session.path().join("session.json"))
                    else {
                        continue;
                    };
                    let Ok(record) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    for key in ["agent_pid", "host_pid"] {
                        if let Some(pid) = record[key].as_i64() {
                            kill_session_of(pid as i32);
                        }
                    }
                }
            }
        }
        let _ = Command::new("tmux")
            .args(["-L", &self.tmux_server, "kill-server"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn kill_session_of(pid: i32) {
    for member in session_members(pid as u32) {
        signal(member as i32, 9);
    }
    signal(pid, 9);
}

/// Sends signal `sig` to `pid` (a negative pid: to that process group),
/// with kill(1) (keeps the tests free of unsafe code).
pub fn signal(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), "--".into(), pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Fields of /proc/PID/stat: (state, session id).
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields[0].chars().next()?, fields[3].parse().ok()?))
}

/// Whether `pid` is a live (non-zombie) process.
pub fn alive(pid: u32) -> bool {
    proc_stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// Live processes whose session id is `sid`.
pub fn session_members(sid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| proc_stat(*pid).is_some_and(|(st, s)| s == sid && st != 'Z'))
        .collect()
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes. Only for
/// facts no event announces (a process disappearing, a tmux pane's text).
#[track_caller]
pub fn eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a command writes a complete last line to `path`, and
/// returns the file's text.
#[track_caller]
pub fn written(path: &Path, timeout: Duration) -> String {
    let mut text = String::new();
    eventually(timeout, &format!("{} to be written", path.display()), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.ends_with('\n')
    });
    text
}

/// Mode bits of a path.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

impl TestEnv {
    /// A `bash` command in this environment, run in the work directory with
    /// the binary under test first on PATH as `reins`: for running shell
    /// text from the docs and the examples as a reader would.
    pub fn bash(&self, args: &[&str]) -> Command {
        let bin = self.root.path().join("bin");
        if !bin.join("reins").exists() {
            std::fs::create_dir_all(&bin).unwrap();
            std::os::unix::fs::symlink(reins_bin(), bin.join("reins")).unwrap();
        }
        let path = format!("{}:{}", bin.display(), self.env.get("PATH").map_or("", String::as_str));
        let mut cmd = Command::new("bash");
        cmd.args(args).current_dir(&self.work).env_clear().envs(&self.env).env("PATH", path);
        cmd.stdin(Stdio::null());
        cmd
    }
}

/// Runs `cmd` in its own process group with stdout and stderr merged,
/// and returns its exit code (`None` if it had to be killed after
/// `timeout`, with its whole group) and everything it printed.
pub fn run_merged(mut cmd: Command, timeout: Duration) -> (Option<i32>, String) {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::sync::{Arc, Mutex};
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    cmd.stdout(writer.try_clone().unwrap()).stderr(writer).process_group(0);
    let mut child = cmd.spawn().expect("spawn");
    drop(cmd); // closes our copies of the write end
    // Read as it comes: a session the command started may keep the pipe
    // open long after the command itself is done.
    let output = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&output);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.code().unwrap_or(-1));
        }
        if Instant::now() >= deadline {
            signal(-(child.id() as i32), 9);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(50));
    let text = String::from_utf8_lossy(&output.lock().unwrap()).into_owned();
    (code, text)
}

/// The `key` of each row, `-` where it is not a string.
pub fn field<'a>(rows: &'a [Value], key: &str) -> Vec<&'a str> {
    rows.iter().map(|r| r[key].as_str().unwrap_or("-")).collect()
}

/// The skip accounting, tested through this test binary itself.
mod skip_accounting {
    use std::process::Command;

    /// Skips when asked to (`REINS_TEST_SKIP_PROBE=1`); otherwise does
    /// nothing. The test below runs it.
    #[test]
    fn probe() {
        if std::env::var_os("REINS_TEST_SKIP_PROBE").is_some() {
            super::skip("the probe was asked to skip");
        }
    }

    /// 14 real-agent tests passed as no-ops on a local run and nothing
    /// said so: a skip is written down (for `scripts/test` to count), and
    /// under `REINS_TEST_REQUIRE_TOOLS=1` it is a failure.
    #[test]
    fn a_skip_is_logged_and_fails_where_tools_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.tsv");
        let run = |require: bool, threads: &str| {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args(["--exact", "common::skip_accounting::probe", "--test-threads", threads])
                .env("REINS_TEST_SKIP_PROBE", "1")
                .env("REINS_TEST_SKIP_LOG", &log)
                .env_remove("REINS_TEST_REQUIRE_TOOLS");
            if require {
                cmd.env("REINS_TEST_REQUIRE_TOOLS", "1");
            }
            cmd.output().unwrap()
        };
        for threads in ["1", "2"] {
            let out = run(false, threads);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let out = run(true, threads);
            assert!(!out.status.success(), "a skip must fail where tools are required");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("cannot run: the probe was asked to skip"), "{stdout}");
        }
        let line = "common::skip_accounting::probe\tthe probe was asked to skip\n";
        assert_eq!(std::fs::read_to_string(&log).unwrap(), line.repeat(4));
    }
}
