//! Who may change a session: an agent cannot answer its own approval
//! requests however it asks, a session started from inside another records
//! its parent, every state-changing request names its requester, `approve
//! --request` never lands on the next dialog, and `[policy] agents =
//! "started"` keeps agents to the sessions they started.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::common::{TestEnv, eventually, reins_bin};

/// A profile `gate` whose agent is the shell script `script` (run with
/// `sh`): reins reads `Allow gate to run it? [y/n]` as an approval dialog
/// and answers with `y`/`n` and Enter.
fn gate_profile(env: &TestEnv, script: &str) -> PathBuf {
    let path = env.path().join("gate.sh");
    std::fs::write(&path, script.replace("$REINS_BIN", &reins_bin().display().to_string()))
        .unwrap();
    let dir = env.path().join("config/reins/adapters");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = format!(
        r#"name = "gate"
summary = "a shell script that asks for approval"

[launch]
command = ["sh", "{}"]

[screen]
boot_timeout_ms = 2000

[approve]
allow = [{{ text = "y" }}, {{ key = "enter" }}]
deny = [{{ text = "n" }}, {{ key = "enter" }}]

[[rule]]
name = "approval"
state = "blocked"
kind = "approval"
region = {{ last_lines = 2 }}
all = [{{ contains = "Allow gate to run it? [y/n]" }}]

[[rule.example]]
matches = true
screen = "Allow gate to run it? [y/n]"

[[rule.example]]
matches = false
screen = "answered: y"
"#,
        path.display()
    );
    std::fs::write(dir.join("gate.toml"), profile).unwrap();
    path
}

/// Waits until the shell line that wrote `path` appended its `rc=N`.
fn finished(path: &std::path::Path) -> String {
    let mut text = String::new();
    eventually(Duration::from_secs(20), &format!("{} to be finished", path.display()), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.contains("rc=")
    });
    text
}

/// Waits until `id`'s status names a pending approval request; returns it.
fn pending_request(env: &TestEnv, id: &str) -> Value {
    let mut approval = Value::Null;
    eventually(Duration::from_secs(10), &format!("{id} to wait on an approval"), || {
        let rows = env.reins(&["status", "--id", id, "--json"]).ok().json();
        approval = rows[0]["approval"].clone();
        approval.is_object()
    });
    approval
}

/// Waits for an approval to be pending, then tries to answer it from
/// inside the agent's own tree: as a child, from a process that left the
/// session with setsid, and as a keystroke sent with `send --force`.
const SELF_APPROVER: &str = r#"
R=$REINS_BIN
printf 'Allow gate to run it? [y/n] '
until "$R" status --id "$REINS_ID" --json | grep -q '"request"'; do sleep 0.05; done
"$R" approve --id "$REINS_ID" > child.out 2>&1; echo "rc=$?" >> child.out
setsid sh -c '"$0" approve --id "$REINS_ID"' "$R" > escaped.out 2>&1; echo "rc=$?" >> escaped.out
"$R" send --id "$REINS_ID" --force --raw --no-wait y > keys.out 2>&1; echo "rc=$?" >> keys.out
touch tried
read answer
echo "answered: $answer"
[ "$answer" = y ] && touch approved
exec sleep 1000
"#;

#[test]
fn an_agent_cannot_approve_its_own_request() {
    let env = TestEnv::new();
    gate_profile(&env, SELF_APPROVER);
    env.reins(&["run", "gate", "--id", "selfish", "--detach"]).ok();
    let request = pending_request(&env, "selfish");
    assert_eq!(request["request"], "a1");
    eventually(Duration::from_secs(10), "the agent's attempts", || env.work.join("tried").exists());
    for file in ["child.out", "escaped.out", "keys.out"] {
        let out = finished(&env.work.join(file));
        assert!(out.contains("rc=1"), "{file}: {out}");
        assert!(out.contains("own approval requests"), "{file}: {out}");
    }
    assert!(!env.work.join("approved").exists(), "the agent approved itself");
    let refused: Vec<Value> =
        env.events("selfish").into_iter().filter(|e| e["type"] == "refused").collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert_eq!(refused[0]["request"], "approve");
    assert_eq!(refused[0]["requester"]["session"], "selfish");
    assert_eq!(refused[2]["request"], "send");

    // A person answers it.
    let out = env.reins(&["approve", "--id", "selfish", "--request", "a1"]).ok().json();
    assert_eq!(out["request"], "a1");
    eventually(Duration::from_secs(5), "the approved command", || {
        env.work.join("approved").exists()
    });
    let approval =
        env.events("selfish").into_iter().find(|e| e["type"] == "approval").expect("approval");
    assert_eq!(approval["request"], "a1");
    assert_eq!(approval["requester"]["command"], "reins");
    assert!(approval["requester"].get("session").is_none(), "{approval}");
}

#[test]
fn an_agent_cannot_attach_to_its_own_session_to_type() {
    if !crate::common::have_tool("python3") {
        return;
    }
    let env = TestEnv::new();
    let script = r#"
R=$REINS_BIN
printf 'Allow gate to run it? [y/n] '
until "$R" status --id "$REINS_ID" --json | grep -q '"request"'; do sleep 0.05; done
python3 - "$R" "$REINS_ID" > attach.out 2>&1 <<'PY'
import json, socket, subprocess, sys
rows = json.loads(subprocess.check_output([sys.argv[1], "status", "--id", sys.argv[2], "--json"]))
s = socket.socket(socket.AF_UNIX)
s.connect(rows[0]["socket"])
s.sendall(b"GET /v1/attach?read_only=0&cols=80&rows=24 HTTP/1.1\r\nHost: reins\r\n"
          b"Upgrade: reins-attach\r\nConnection: upgrade\r\n\r\n")
print(s.recv(4096).decode(errors="replace"))
PY
echo "rc=$?" >> attach.out
exec sleep 1000
"#;
    gate_profile(&env, script);
    env.reins(&["run", "gate", "--id", "peek", "--detach"]).ok();
    let out = finished(&env.work.join("attach.out"));
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    assert!(out.contains("rc=0"), "{out}");
    assert!(out.contains("own approval requests"), "{out}");
}

#[test]
fn a_late_approve_never_lands_on_the_next_dialog() {
    let env = TestEnv::new();
    // Two dialogs one after the other.
    let script = r#"
printf 'Allow gate to run it? [y/n] '
read first
printf '\nfirst: %s\n' "$first"
printf 'Allow gate to run it? [y/n] '
read second
printf '\nsecond: %s\n' "$second"
exec sleep 1000
"#;
    gate_profile(&env, script);
    env.reins(&["run", "gate", "--id", "late", "--detach"]).ok();
    assert_eq!(pending_request(&env, "late")["request"], "a1");
    env.reins(&["approve", "--id", "late", "--request", "a1"]).ok();
    env.wait_event("late", Duration::from_secs(10), |e| {
        e["type"] == "blocked" && e["request"] == "a2"
    });
    // A second answer meant for a1 arrives late: refused, nothing typed.
    let late = env.reins(&["approve", "--id", "late", "--request", "a1", "--deny"]).code(1);
    assert!(late.stderr.contains("no longer pending"), "{}", late.stderr);
    assert!(late.stderr.contains("a2"), "{}", late.stderr);
    let screen = env.reins(&["pane", "--id", "late"]).ok().stdout;
    assert!(!screen.contains("second:"), "the late answer was typed: {screen}");
    env.reins(&["approve", "--id", "late", "--request", "a2", "--deny"]).ok();
    eventually(Duration::from_secs(5), "the second answer on screen", || {
        env.reins(&["pane", "--id", "late"]).ok().stdout.contains("second: n")
    });
    let screen = env.reins(&["pane", "--id", "late"]).ok().stdout;
    assert!(screen.contains("first: y"), "{screen}");
}

/// A shell agent that runs `script` with the reins binary in `$R`.
fn shell_agent(env: &TestEnv, id: &str, script: &str) -> Value {
    let script = format!("R={}\n{script}", reins_bin().display());
    env.reins(&["run", "sh", "--id", id, "--detach", "--", "-c", &script]).ok().json()
}

#[test]
fn a_session_started_from_inside_another_records_its_parent_and_may_be_driven_by_it() {
    let env = TestEnv::new();
    let started = shell_agent(
        &env,
        "boss",
        r#""$R" run mock --id minion --detach > child.json 2> child.err
"$R" wait --id minion --until ready --timeout 10s > /dev/null
"$R" send --id minion --no-wait '[[approve]] go' > /dev/null
until "$R" status --id minion --json | grep -q '"request"'; do sleep 0.05; done
"$R" approve --id minion > approve.out 2>&1; echo "rc=$?" >> approve.out
exec sleep 1000"#,
    );
    let out = finished(&env.work.join("approve.out"));
    assert!(out.contains("rc=0"), "the parent's agent may answer its child: {out}");
    let child: Value =
        serde_json::from_str(&std::fs::read_to_string(env.work.join("child.json")).unwrap())
            .unwrap();
    assert_eq!(child["parent"]["id"], "boss", "{child}");
    assert_eq!(child["parent"]["run"], started["run"]);
    let rows = env.reins(&["status", "--id", "minion", "--json"]).ok().json();
    assert_eq!(rows[0]["parent"]["id"], "boss");
    let events = env.events("minion");
    let first = events.iter().find(|e| e["type"] == "started").unwrap();
    assert_eq!(first["parent"]["id"], "boss");
    let queued = events.iter().find(|e| e["type"] == "queued").unwrap();
    assert_eq!(queued["requester"]["session"], "boss", "{queued}");
    let approval = events.iter().find(|e| e["type"] == "approval").unwrap();
    assert_eq!(approval["requester"]["session"], "boss");
}

#[test]
fn policy_started_keeps_an_agent_to_the_sessions_it_started() {
    let env = TestEnv::new();
    env.write_config("[policy]\nagents = \"started\"\n");
    env.start("stranger", &[]);
    env.wait_state("stranger", "ready");
    shell_agent(
        &env,
        "meddler",
        r#""$R" send --id stranger --no-wait hello > stranger.out 2>&1; echo "rc=$?" >> stranger.out
"$R" run mock --id own --detach > /dev/null
"$R" send --id own --no-wait hello > own.out 2>&1; echo "rc=$?" >> own.out
exec sleep 1000"#,
    );
    let out = finished(&env.work.join("stranger.out"));
    assert!(out.contains("rc=1") && out.contains("did not start this session"), "{out}");
    let out = finished(&env.work.join("own.out"));
    assert!(out.contains("rc=0"), "{out}");
    let refused = env.events("stranger").into_iter().find(|e| e["type"] == "refused").unwrap();
    assert_eq!(refused["requester"]["session"], "meddler");
    // A person is not an agent: the policy does not apply to them.
    env.reins(&["send", "--id", "stranger", "--no-wait", "hi"]).ok();
}

#[test]
fn state_changing_requests_name_their_requester() {
    let env = TestEnv::new();
    env.start("audited", &[]);
    env.wait_state("audited", "ready");
    env.reins(&["send", "--id", "audited", "[[wait:30]] work"]).ok();
    env.reins(&["interrupt", "--id", "audited"]).ok();
    env.reins(&["stop", "--id", "audited"]).ok();
    let events = env.events("audited");
    for kind in ["queued", "interrupt_requested", "stop_requested"] {
        let e = events.iter().find(|e| e["type"] == kind).unwrap_or_else(|| panic!("{kind}"));
        assert_eq!(e["requester"]["command"], "reins", "{e}");
        assert!(e["requester"]["pid"].as_u64().unwrap() > 1, "{e}");
    }
}

#[test]
fn a_state_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let state = env.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.reins(&["status"]).code(1);
    assert!(out.stderr.contains("can be written by other users (mode 0777)"), "{}", out.stderr);
    assert!(out.stderr.contains("chmod go-w"), "{}", out.stderr);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.reins(&["status"]).ok();
}

/// Whether this test runs as root (needed to act as another user).
fn root() -> bool {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    if !root {
        assert!(
            !crate::common::tools_required(),
            "this test needs root (REINS_TEST_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIPPED: not root, so this test cannot act as another user");
    }
    root
}

#[test]
fn a_runtime_directory_of_another_user_is_refused() {
    if !root() {
        return;
    }
    let env = TestEnv::new();
    let runtime = env.path().join("run/reins");
    std::fs::create_dir_all(&runtime).unwrap();
    std::os::unix::fs::chown(&runtime, Some(65534), Some(65534)).unwrap();
    let out = env.reins(&["run", "mock", "--id", "x", "--detach"]).code(1);
    assert!(out.stderr.contains("belongs to uid 65534"), "{}", out.stderr);
    assert!(out.stderr.contains("XDG_RUNTIME_DIR"), "{}", out.stderr);
}

#[test]
fn the_client_refuses_a_socket_served_by_another_user() {
    if !root() || !crate::common::have_tool("python3") {
        return;
    }
    let env = TestEnv::new();
    let started = env.start("spoofed", &[]);
    env.wait_state("spoofed", "ready");
    // Someone else serves the session's socket path: bound by root (only
    // root may write there), listening as uid 65534.
    let socket = started["socket"].as_str().unwrap().to_string();
    std::fs::remove_file(&socket).unwrap();
    let server = r#"
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.setuid(65534)
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(3)
try:
    data = c.recv(65536)
except OSError:
    data = b""
print("heard", len(data), flush=True)
"#;
    let mut fake = std::process::Command::new("python3")
        .args(["-c", server, &socket])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(fake.stdout.take().unwrap()));
    assert_eq!(lines.next().unwrap().unwrap(), "listening");
    let out = env.reins(&["send", "--id", "spoofed", "--no-wait", "secret plans"]).code(1);
    assert!(out.stderr.contains("served by uid 65534"), "{}", out.stderr);
    assert_eq!(lines.next().unwrap().unwrap(), "heard 0", "the impostor heard the request");
    fake.wait().unwrap();
}
