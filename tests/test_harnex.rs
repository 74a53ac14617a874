//! Drop-in for harnex users: every harnex command form in
//! tests/fixtures/harnex/commands.txt runs unchanged through a `harnex`
//! symlink, against mock sessions, and does what harnex documents: each
//! line is checked for its effect (a session started, a message delivered,
//! a header added, a file written), not only its exit status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Run, TestEnv, have_tool, reins_bin};

/// One command line of the fixture.
#[derive(Debug)]
struct Line {
    group: String,
    number: usize,
    code: String,
    /// The exit status harnex documents for it (`# exits N`), else 0.
    exits: i32,
}

fn fixture() -> Vec<Line> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/harnex/commands.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut group = String::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = name.to_string();
            continue;
        }
        let (code, comment) = line
            .split_once("   # ")
            .unwrap_or_else(|| panic!("commands.txt:{}: no comment naming its source", i + 1));
        let exits = comment
            .rsplit_once("# exits ")
            .map_or(0, |(_, n)| n.trim().parse().expect("# exits N"));
        assert!(!group.is_empty(), "commands.txt:{}: before any [group]", i + 1);
        lines.push(Line { group: group.clone(), number: i + 1, code: code.trim().into(), exits });
    }
    lines
}

/// A test environment where `harnex` (a symlink to the binary under test)
/// is first on PATH, the state directory is named by HARNEX_STATE_DIR
/// only, and `codex` and `claude` are profiles running the mock agent.
fn harnex_env() -> TestEnv {
    let mut env = TestEnv::new();
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(reins_bin(), bin.join("harnex")).unwrap();
    let mock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/mock.toml"))
            .unwrap();
    let adapters = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    for name in ["codex", "claude"] {
        let profile = mock.replace("name = \"mock\"", &format!("name = \"{name}\""));
        assert_ne!(profile, mock, "adapters/mock.toml has no name line");
        std::fs::write(adapters.join(format!("{name}.toml")), profile).unwrap();
    }
    let path = format!("{}:{}", bin.display(), env.env_vars()["PATH"]);
    env.set_env("PATH", Some(&path));
    let state = env.state_dir().display().to_string();
    env.set_env("REINS_STATE_DIR", None);
    env.set_env("HARNEX_STATE_DIR", Some(&state));
    env
}

/// Runs the fixture's group `group`, checking each line.
fn run_group(group: &str) {
    let lines: Vec<Line> = fixture().into_iter().filter(|l| l.group == group).collect();
    assert!(!lines.is_empty(), "no [{group}] in commands.txt");
    if group == "patterns" && !(have_tool("tmux") && have_tool("jq")) {
        crate::common::skip("harnex's guide patterns need tmux and jq");
        return;
    }
    let env = harnex_env();
    for line in &lines {
        let out = env.sh(&line.code).output().expect("run sh");
        let out = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let context = format!(
            "commands.txt:{} `{}`\nexit {}\nstdout: {}\nstderr: {}",
            line.number, line.code, out.code, out.stdout, out.stderr
        );
        assert_eq!(out.code, line.exits, "wrong exit status: {context}");
        let world = World { env: &env, out: &out, context: &context };
        check(&world, &line.code);
    }
}

/// What a line left behind, to check.
struct World<'a> {
    env: &'a TestEnv,
    out: &'a Run,
    context: &'a str,
}

impl World<'_> {
    #[track_caller]
    fn json(&self) -> Value {
        let last = self.out.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.context))
    }

    #[track_caller]
    fn assert(&self, cond: bool, what: &str) {
        assert!(cond, "{what}: {}", self.context);
    }

    #[track_caller]
    fn stdout_has(&self, text: &str) {
        self.assert(self.out.stdout.contains(text), &format!("stdout lacks {text:?}"));
    }

    /// `status --id ID --json`'s row, through the plain reins binary.
    fn status(&self, id: &str) -> Value {
        self.env.reins(&["status", "--id", id, "--json"]).ok().json()[0].clone()
    }

    fn events(&self, id: &str) -> Vec<Value> {
        self.env.events(id)
    }

    /// The previews of messages delivered to `id`'s agent.
    fn delivered(&self, id: &str) -> Vec<String> {
        self.events(id)
            .iter()
            .filter(|e| e["type"] == "delivered")
            .map(|e| e["preview"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[track_caller]
    fn delivered_one(&self, id: &str, text: &str) {
        let delivered = self.delivered(id);
        self.assert(
            delivered.iter().any(|d| d.contains(text)),
            &format!("no message {text:?} delivered to {id} (delivered: {delivered:?})"),
        );
    }

    /// The environment of `id`'s agent process.
    fn agent_env(&self, id: &str) -> Vec<String> {
        let pid = self.status(id)["agent_pid"].as_u64().expect("agent_pid");
        let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        raw.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    /// The name of the tmux window `id` runs in.
    fn window_name(&self, id: &str) -> String {
        let pane = self.status(id)["tmux"]["pane"].as_str().expect("in tmux").to_string();
        let out = self.env.tmux(&["display-message", "-p", "-t", &pane, "#{window_name}"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn work(&self, rel: &str) -> PathBuf {
        self.env.work.join(rel)
    }
}

/// What harnex documents for each line. A line without a check here fails:
/// every form in the fixture says what it must do.
fn check(w: &World<'_>, code: &str) {
    match code {
        // [entry]
        "harnex --version" | "harnex -v" | "harnex version" => {
            w.assert(w.out.stdout.starts_with("harnex "), "prints `harnex VERSION`");
            w.stdout_has(env!("CARGO_PKG_VERSION"));
        }
        "harnex" | "harnex -h" => {
            let usage = format!("{}{}", w.out.stdout, w.out.stderr);
            w.assert(usage.contains("Usage: harnex"), "prints harnex's usage");
            w.assert(usage.contains("send"), "lists the commands");
        }
        "harnex help send" => w.stdout_has("Usage: harnex send"),
        "harnex doctor" => {
            let report = w.json();
            w.assert(report["checks"].is_array(), "doctor prints {ok, checks} as JSON");
            w.assert(report["ok"].is_boolean(), "with ok");
        }
        "harnex frobnicate" => {
            w.assert(w.out.stderr.contains("frobnicate"), "the error names the command");
        }

        // [run] and the sessions other groups start
        "harnex run codex --id w1 --detach" if w.out.code == 1 => {
            w.assert(w.out.stderr.contains("w1"), "the error names the id");
        }
        "harnex run codex --id w1 --detach"
        | "harnex run codex --id w2 --detach"
        | "harnex run codex --id w3 --detach"
        | "harnex run --id w2 --detach codex"
        | "harnex run codex --id impl-43 --detach" => {
            let started = w.json();
            let id = started["id"].as_str().unwrap().to_string();
            w.assert(started["ok"] == true && started["agent"] == "codex", "started codex");
            w.assert(w.status(&id)["host"] == "live", "the session runs");
        }
        c if c.starts_with("harnex run codex --id w3 ") => {
            let row = w.status("w3");
            w.assert(row["description"] == "fix the parser", "--description in status");
            w.assert(row["model"] == "gpt-5" && row["effort"] == "high", "model/effort in status");
            w.assert(row["meta"]["model"] == "gpt-5", "--meta kept");
        }
        c if c.starts_with("harnex run codex --id w4 ") => w.assert(w.json()["id"] == "w4", "up"),
        "harnex wait --id w4 --timeout 30" => {
            let out = w.json();
            w.assert(out["status"] == "reached", "w4 stopped itself after its first task");
            w.assert(out["exit"]["reason"] == "stopped" && out["exit"]["code"] == 0, "cleanly");
            w.delivered_one("w4", "[reins session id=w4] fix the tests");
        }
        c if c.starts_with("harnex run codex --id w5 ") => w.assert(w.json()["id"] == "w5", "up"),
        "harnex stop --id w5" => {
            w.assert(w.json()["status"] == "stopped", "stopped");
            let record = std::fs::read_to_string(w.work("w5-dispatch.jsonl"))
                .unwrap_or_else(|e| panic!("no --summary-out file ({e}): {}", w.context));
            let row: Value = serde_json::from_str(record.lines().last().unwrap()).unwrap();
            w.assert(row["meta"]["id"] == "w5", "the record is w5's");
            w.assert(row["actual"]["exit"].is_string(), "with how it ended");
        }
        c if c.starts_with("harnex run codex --id w6 ") => {
            w.assert(w.status("w6")["transport"] == "pty", "--legacy-pty drives the terminal UI");
        }
        c if c.starts_with("harnex run codex --id w7 ") => {
            let watched = &w.status("w7")["watch_files"];
            w.assert(watched[0]["as_given"] == "notes/review.md", "--watch PATH is the file hook");
            std::fs::write(w.work("notes/review.md"), "looks good\n").unwrap();
            w.env.wait_event("w7", Duration::from_secs(15), |e| {
                e["type"] == "delivered"
                    && e["preview"].as_str().is_some_and(|p| p.contains("read notes/review.md"))
            });
            w.delivered_one("w7", "file-change-hook: read notes/review.md");
        }
        c if c.starts_with("harnex run codex --id w8 ") => {
            let watched = &w.status("w8")["watch_files"];
            w.assert(watched[0]["as_given"] == "notes/w8.md", "--watch=PATH is the file hook");
            w.assert(w.status("w8")["host"] == "live", "not a watcher in the foreground");
        }
        c if c.starts_with("harnex run codex --id w9 ") => {
            w.assert(w.status("w9")["watch_files"][0]["as_given"] == "notes/w9.md", "watched");
        }
        c if c.starts_with("harnex run codex --id w10 ") => {
            w.assert(w.status("w10")["host"] == "live", "bare numbers are seconds");
        }
        c if c.starts_with("harnex run codex --id w11 ") => {
            w.env.wait_state("w11", "ready");
            let pane = w.env.reins(&["pane", "--id", "w11"]).ok().stdout;
            w.assert(pane.contains("model gpt-test"), "the agent got the arguments after --");
        }
        "harnex run codex --id w12 --tmux w12" => {
            w.assert(w.window_name("w12") == "w12", "in the tmux window named NAME");
            w.assert(w.json()["mode"] == "tmux", "prints the tmux session");
        }
        "harnex run claude --id w13 --tmux" => {
            w.assert(w.window_name("w13") == "w13", "window = id");
            w.assert(w.status("w13")["cli"] == "claude", "claude");
        }
        c if c.starts_with("harnex run codex --id w14 ") => {
            w.assert(w.out.stderr.contains("the session ended"), "the watcher saw it end");
            w.delivered_one("w14", "fix the tests");
            w.assert(w.status("w14")["host"] == "exited", "and the session is gone");
        }
        // [send]
        "harnex wait --id w1 --until prompt --timeout 10" => {
            let out = w.json();
            w.assert(out["status"] == "reached" && out["until"] == "ready", "prompt = ready");
        }
        "harnex send --id w1 --message \"first task\"" => {
            w.assert(w.json()["status"] == "delivered", "delivered");
            w.delivered_one("w1", "first task");
        }
        "harnex send --id w1 second task in words" => w.delivered_one("w1", "second task in words"),
        "echo \"from stdin\" | harnex send --id w1" => w.delivered_one("w1", "from stdin"),
        "harnex send --id w1 --message \"queued task\" --no-wait" => {
            let status = w.json()["status"].as_str().unwrap().to_string();
            w.assert(["queued", "delivering"].contains(&status.as_str()), "returned at once");
        }
        "harnex send --id w1 --message \"and wait\" --wait-for-idle" => {
            let out = w.json();
            w.assert(out["status"] == "delivered", "delivered");
            w.assert(out["task"]["status"] == "completed", "and waited for its turn to end");
            w.delivered_one("w1", "queued task");
        }
        "harnex send --id w1 --message \"a draft\" --no-submit" => {
            let pane = w.env.reins(&["pane", "--id", "w1"]).ok().stdout;
            w.assert(pane.contains("a draft"), "typed into the composer");
        }
        "harnex send --id w1 --submit-only" => {
            w.env.wait_event("w1", Duration::from_secs(15), |e| {
                e["type"] == "task_complete" && e["turn"].as_u64() >= Some(6)
            });
            let pane = w.env.reins(&["pane", "--id", "w1"]).ok().stdout;
            w.assert(pane.contains("> a draft"), "the draft was submitted");
        }
        "harnex send --id w1 --message \"right now\" --force" => {
            w.delivered_one("w1", "right now");
            let forced =
                w.events("w1").iter().any(|e| e["type"] == "delivered" && e["forced"] == true);
            w.assert(forced, "delivered as forced");
        }
        "harnex send --id w1 --message \"plain\" --no-relay --timeout 120" => {
            w.delivered_one("w1", "plain")
        }
        "harnex send --id w1 --message \"to the codex one\" --cli codex --repo ." => {
            w.delivered_one("w1", "to the codex one")
        }
        "harnex send --id w1 --message \"loud\" --verbose" => {
            w.assert(w.out.stderr.contains("[harnex send] "), "says what happens on stderr");
            w.delivered_one("w1", "loud");
        }
        c if c.ends_with("--message \"relayed\"") => {
            w.delivered_one("w1", "[harnex relay from=claude id=boss at=");
        }
        c if c.ends_with("--relay --message \"to myself\"") => {
            w.delivered_one("w1", "[harnex relay from=codex id=w1 at=");
        }
        "harnex send --id w1 --message \"to a claude\" --cli claude" => {
            w.assert(w.out.stderr.contains("does not run claude"), "says why");
            w.assert(w.delivered("w1").iter().all(|d| !d.contains("to a claude")), "not sent");
        }

        // [wait_stop]
        "harnex send --id w1 --message \"a task\" --no-wait" => {
            w.assert(w.json()["message_id"].is_string(), "queued with a message id");
        }
        "harnex wait --id w1 --until task_complete --timeout 30" => {
            let out = w.json();
            w.assert(out["status"] == "reached" && out["event"]["type"] == "task_complete", "done");
        }
        "harnex wait --id w1 --until prompt --timeout 60 --repo ." => {
            w.assert(w.json()["status"] == "reached", "at the prompt");
        }
        "harnex wait --id w1 --until busy --timeout 1" => {
            w.assert(w.json()["status"] == "timeout", "timed out");
        }
        "harnex stop --id w1 --timeout 5" => {
            w.assert(w.json()["status"] == "stopped", "stopped");
            w.assert(w.status("w1")["host"] == "exited", "gone");
        }
        "harnex wait --id w1" => {
            let out = w.json();
            let code = out["exit"]["code"].as_i64().expect("the exit record");
            w.assert(i64::from(w.out.code) == code, "exit status = the session's");
        }
        "harnex stop --id w1" => w.assert(w.json()["ok"] == true, "stopping again succeeds"),
        "harnex stop --id w2 --cli codex --repo ." => {
            w.assert(w.status("w2")["host"] == "exited", "stopped");
        }
        "harnex stop --id nope" | "harnex pane --id nope" => {
            w.assert(w.out.stderr.contains("nope"), "names the missing session");
        }

        // [read]
        "harnex send --id w1 --message \"hello there\" --wait-for-idle" => {
            w.assert(w.json()["task"]["status"] == "completed", "done")
        }
        "harnex status" | "harnex status --all" => {
            let first = w.out.stdout.lines().next().unwrap_or_default();
            w.assert(first.starts_with("ID "), "a table");
            w.assert(w.out.stdout.lines().count() > 1, "with the sessions");
        }
        "harnex status --json" | "harnex status --id w1 --json --repo ." => {
            let rows = w.json();
            let row = &rows[0];
            w.assert(row["id"] == "w1", "w1 listed");
            w.assert(row["agent_state"] == "prompt", "agent_state: ready is prompt");
            w.assert(row["cli"] == "codex", "cli");
            w.assert(row["log_idle_s"].as_f64().is_some(), "log_idle_s: it printed");
            let done = row["last_completed_at"].as_str().unwrap_or_default();
            w.assert(done.starts_with("20"), "last_completed_at: its turn ended");
            w.assert(row["auto_disconnects"] == 0, "no disconnects");
            w.assert(row["model"].is_null() && row["effort"].is_null(), "unknown model: null");
        }
        "harnex logs --id w1" | "harnex logs --id w1 --lines 200 --cli codex" => {
            w.stdout_has("hello there")
        }
        "harnex events --id w1 --snapshot"
        | "harnex events --id w1 --no-follow --from 2020-01-01T00:00:00Z" => {
            let types: Vec<String> = w
                .out
                .stdout
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].to_string())
                .collect();
            w.assert(types.iter().any(|t| t == "\"started\""), "the started event");
            w.assert(types.iter().any(|t| t == "\"task_complete\""), "and the turn's end");
        }
        "harnex events --id w1 --from yesterday" => w.assert(w.out.stdout.is_empty(), "nothing"),
        "harnex pane --id w1" => w.stdout_has("hello there"),
        "harnex pane --id w1 --lines 30 --json" => {
            let pane = w.json();
            w.assert(pane["ok"] == true && pane["id"] == "w1", "ok, id");
            w.assert(
                pane["captured_at"].is_string() && pane["text"].is_string(),
                "captured_at, text",
            );
            w.assert(pane["lines"].as_array().is_some_and(|l| l.len() <= 30), "at most 30 lines");
        }
        "harnex pane --id w1 --cli codex --lines 5" => {
            w.assert(w.out.stdout.lines().count() <= 5, "at most 5 lines")
        }
        "harnex pane --id w1 --lines 0" => w.assert(w.out.stdout.is_empty(), "nothing"),
        c if c.ends_with("harnex pane --id w1 --follow --interval 1") => {
            w.stdout_has("hello there");
            w.assert(w.status("w1")["host"] == "exited", "followed until the end");
        }
        c if c.ends_with("harnex logs --id w2 --follow") => {
            w.assert(w.status("w2")["host"] == "exited", "followed until the end");
        }
        c if c.ends_with("harnex events --id w3 --follow --cli codex") => {
            let last = w.out.stdout.lines().last().unwrap_or_default();
            w.assert(last.contains("\"type\":\"exited\""), "ends with the exited event");
        }

        // [guides]
        "harnex agents-guide" | "harnex agents-guide list" => {
            for topic in ["dispatch", "chain", "buddy", "monitoring", "naming"] {
                w.stdout_has(topic);
            }
        }
        "harnex agents-guide show 01" => w.stdout_has("# Dispatch"),
        "harnex agents-guide 02_chain" => {
            w.assert(w.out.stdout.starts_with("# ") && w.out.stdout.contains("chain"), "chain")
        }
        "harnex agents-guide monitoring" => w.stdout_has("Monitoring"),
        "harnex recipes" => w.stdout_has("fire-and-watch"),
        "harnex recipes show fire_and_watch" => w.stdout_has("# Fire a task and watch it finish"),
        "harnex recipes 03" => w.stdout_has("buddy"),
        "harnex guide" => w.stdout_has("reins"),
        "harnex agents-guide show nope" => w.assert(w.out.stderr.contains("nope"), "names it"),

        // [patterns]
        c if c.starts_with("harnex run codex --id impl-42 --tmux impl-42 ") => {
            let row = w.status("impl-42");
            w.assert(w.window_name("impl-42") == "impl-42", "window = id");
            w.assert(row["description"] == "issue 42: parser crash", "described");
        }
        "harnex wait --id impl-42 --until task_complete --timeout 60" => {
            w.delivered_one("impl-42", "implement issue 42")
        }
        "harnex logs --id impl-42 --lines 50" => w.stdout_has("implement issue 42"),
        "harnex stop --id impl-42" | "harnex stop --id review-42" | "harnex stop --id buddy-43" => {
            w.assert(w.json()["status"] == "stopped", "stopped")
        }
        c if c.starts_with("harnex run codex --id plan-42 ") => {
            w.assert(w.json()["id"] == "plan-42", "up")
        }
        "harnex wait --id plan-42 --timeout 60" => {
            w.assert(w.json()["exit"]["reason"] == "stopped", "the step ended itself")
        }
        c if c.starts_with("harnex run claude --id review-42 ") => {
            w.assert(w.json()["agent"] == "claude", "up")
        }
        "harnex wait --id review-42 --until task_complete --timeout 60" => {
            w.delivered_one("review-42", "review the plan")
        }
        c if c.starts_with("TMUX_PANE=%7 harnex run claude --id buddy-43 ") => {
            let env = w.agent_env("buddy-43");
            w.assert(env.contains(&"HARNEX_SPAWNER_PANE=%7".to_string()), "HARNEX_SPAWNER_PANE");
            w.assert(env.contains(&"HARNEX_ID=buddy-43".to_string()), "HARNEX_ID");
            w.assert(env.contains(&"HARNEX_SESSION_CLI=claude".to_string()), "HARNEX_SESSION_CLI");
        }
        "harnex pane --id impl-43 --lines 30" => {
            w.assert(!w.out.stdout.trim().is_empty(), "the worker's screen")
        }
        "harnex status --id impl-43 --json" => w.assert(w.json()[0]["id"] == "impl-43", "status"),
        "harnex send --id impl-43 --message \"You appear to have stalled. Continue…\"" => {
            w.delivered_one("impl-43", "You appear to have stalled. Continue…")
        }
        "harnex wait --id impl-43 --until task_complete --timeout 60" => {
            w.assert(w.json()["status"] == "reached", "done")
        }
        c if c.contains("select(.agent_state == \"prompt\")") => w.stdout_has("impl-43"),
        c if c.contains("select(.cli == \"claude\")") => {
            w.stdout_has("buddy-43");
            w.assert(!w.out.stdout.contains("impl-43"), "only claude sessions");
        }
        c if c.contains("{log_idle_s, last_completed_at, auto_disconnects}") => {
            let row: Value = serde_json::from_str(w.out.stdout.trim()).unwrap();
            w.assert(row["log_idle_s"].is_number(), "log_idle_s");
            w.assert(row["last_completed_at"].is_string(), "last_completed_at");
            w.assert(row["auto_disconnects"] == 0, "auto_disconnects");
        }
        c if c.contains("select(.type == \"task_complete\")") => {
            w.stdout_has("\"type\":\"task_complete\"")
        }

        // [refused]
        c if c.contains("--port 43000") || c.contains("--host 127.0.0.1") => {
            w.assert(w.out.stderr.contains("not supported"), "says it is not supported");
            w.assert(w.out.stderr.contains("hint:"), "with a hint");
            if c.ends_with("--json") {
                let err = w.json();
                w.assert(err["ok"] == false && err["kind"] == "usage", "a JSON error");
            }
            let running = w.env.reins(&["status", "--all", "--json"]).ok().json();
            w.assert(running == serde_json::json!([]), "nothing started");
        }
        other => panic!("no check for `{other}`: {}", w.context),
    }
}

#[test]
fn harnex_entry_forms() {
    run_group("entry");
}

#[test]
fn harnex_run_forms() {
    if !have_tool("tmux") {
        crate::common::skip("run --tmux needs tmux");
        return;
    }
    run_group("run");
}

#[test]
fn harnex_send_forms() {
    run_group("send");
}

#[test]
fn harnex_wait_stop_forms() {
    run_group("wait_stop");
}

#[test]
fn harnex_read_forms() {
    run_group("read");
}

#[test]
fn harnex_guides_forms() {
    run_group("guides");
}

#[test]
fn harnex_patterns_forms() {
    run_group("patterns");
}

#[test]
fn harnex_refused_forms() {
    run_group("refused");
}

/// Every group of the fixture has its test above.
#[test]
fn every_fixture_group_has_a_test() {
    let source = include_str!("test_harnex.rs");
    let mut groups: Vec<String> = fixture().into_iter().map(|l| l.group).collect();
    groups.dedup();
    for group in groups {
        assert!(source.contains(&format!("fn harnex_{group}_forms")), "[{group}] has no test");
    }
}

/// The same session is seen by `reins` and by `harnex` when both are
/// pointed at one state directory, and `reins` reads HARNEX_STATE_DIR
/// when REINS_STATE_DIR is unset.
#[test]
fn reins_and_harnex_share_a_state_dir_named_by_harnex_state_dir() {
    let env = harnex_env();
    env.start("shared", &[]);
    let out = env.sh("harnex status --id shared --json").output().unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["id"], "shared");
    assert!(env.state_dir().join("sessions").is_dir());
}

/// Invoked as harnex without HARNEX_STATE_DIR, state goes to harnex's own
/// directory, ~/.local/state/harnex, in reins' layout beside harnex's
/// files, and harnex's own registry files there are left alone.
#[test]
fn harnex_without_a_state_dir_variable_uses_harnexs_directory() {
    let mut env = harnex_env();
    env.set_env("HARNEX_STATE_DIR", None);
    let harnex_dir = env.path().join("home/.local/state/harnex");
    let sessions = harnex_dir.join("sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let theirs = sessions.join("0123456789abcdef--old.json");
    std::fs::write(&theirs, r#"{"id":"old","pid":1}"#).unwrap();
    let out = env.sh("harnex run codex --id mine --detach").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    let dir = started["session_dir"].as_str().unwrap();
    assert!(dir.starts_with(sessions.to_str().unwrap()), "{dir}");
    let out = env.sh("harnex status --all --json && harnex stop --id mine").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(theirs.exists(), "harnex's registry file was touched");
    // Plain reins keeps its own directory.
    env.set_env("REINS_STATE_DIR", None);
    let rows = env.reins(&["status", "--all", "--json"]).ok().json();
    assert_eq!(rows, serde_json::json!([]));
    // (TestEnv's cleanup looks in its own state dir: stop was run above.)
}

/// harnex's default record: `<repo>/koder/DISPATCH.jsonl` when the
/// repository has `koder/` (`--summary-out` unset).
#[test]
fn harnex_records_to_koder_dispatch_jsonl_when_the_repository_has_koder() {
    if !have_tool("git") {
        crate::common::skip("needs git");
        return;
    }
    let env = harnex_env();
    std::fs::create_dir_all(env.work.join("koder")).unwrap();
    let script = "git init -q . && harnex run codex --id k1 --detach >/dev/null \
                  && harnex stop --id k1 >/dev/null";
    let out = env.sh(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let record = std::fs::read_to_string(env.work.join("koder/DISPATCH.jsonl")).unwrap();
    let row: Value = serde_json::from_str(record.lines().last().unwrap()).unwrap();
    assert_eq!(row["meta"]["id"], "k1");
}

/// `--cli NAME` without `--id` on pane, logs, events and stop: the one
/// running session of that agent in this repository; none or several is a
/// clear error (a JSON one with --json).
#[test]
fn cli_without_an_id_picks_the_one_session_running_that_agent() {
    let env = harnex_env();
    let sh = |script: &str| {
        let out = env.sh(script).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, err) =
        sh("harnex run codex --id c1 --detach && harnex run claude --id c2 --detach");
    assert_eq!(code, Some(0), "{err}");
    env.wait_state("c2", "ready");
    let (code, out, err) = sh("harnex pane --cli claude --json");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["id"], "c2");
    let (code, out, _) = sh("harnex events --cli codex --snapshot");
    assert_eq!(code, Some(0));
    assert!(out.lines().all(|l| l.contains("\"id\":\"c1\"")), "{out}");
    let (code, out, err) = sh("harnex logs --cli gemini --json");
    assert_eq!(code, Some(1), "{err}");
    let error: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(error["error"], "no running gemini session in this repository");
    assert!(error["hint"].as_str().unwrap().contains("--id"), "{error}");
    let (code, _, err) =
        sh("harnex run codex --id c3 --detach >/dev/null && harnex stop --cli codex");
    assert_eq!(code, Some(1));
    assert!(err.contains("2 running codex sessions in this repository (c1, c3)"), "{err}");
    assert!(err.contains("hint: name one with --id"), "{err}");
    let (code, out, err) = sh("harnex stop --cli claude");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["id"], "c2");
    let (code, _, err) = sh("harnex pane");
    assert_eq!(code, Some(2));
    assert!(err.contains("--id <ID>"), "{err}");
}
