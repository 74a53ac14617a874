//! `reins mcp` driven by real MCP clients: the MCP Inspector's command-line
//! client (pinned, `scripts/install-mcp-inspector`) lists the tools and
//! drives a mock session through start, send, wait, screen, events, logs
//! and stop; a plain JSON-RPC client checks what the inspector cannot ask
//! for (progress, cancellation, tasks, a client that goes away mid-wait)
//! and bad input of every kind.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestEnv, alive};
use crate::support::mcp::{Inspector, RawClient};

/// The tools `reins mcp` must have.
const TOOLS: &[&str] = &[
    "list_sessions",
    "session_status",
    "start_session",
    "send_message",
    "wait",
    "read_screen",
    "read_events",
    "read_logs",
    "interrupt",
    "approve",
    "deny",
    "stop_session",
    "dispatch",
    "dispatch_status",
    "chain_run",
    "chain_status",
    "list_agents",
];

#[test]
fn the_inspector_lists_every_tool_with_its_schemas() {
    let env = TestEnv::new();
    let Some(inspector) = Inspector::new(&env) else { return };
    let listed = inspector.list_tools();
    let tools = listed["tools"].as_array().expect("a tool list");
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for name in TOOLS {
        assert!(names.contains(name), "{name} is not listed: {names:?}");
    }
    assert_eq!(names.len(), TOOLS.len(), "{names:?}");
    for tool in tools {
        let name = &tool["name"];
        let description = tool["description"].as_str().unwrap_or_default();
        assert!(description.len() > 40, "{name} says too little: {description:?}");
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{name}: {schema}");
        assert_eq!(schema["additionalProperties"], false, "{name} takes unknown arguments");
        for (arg, spec) in schema["properties"].as_object().unwrap() {
            let said = spec["description"].as_str().unwrap_or_default();
            assert!(!said.is_empty(), "{name}.{arg} has no description: {spec}");
        }
    }
    let wait = tools.iter().find(|t| t["name"] == "wait").unwrap();
    assert!(wait["outputSchema"]["properties"]["reached"].is_object(), "{wait:#}");
    assert_eq!(wait["annotations"]["readOnlyHint"], true);
    let start = tools.iter().find(|t| t["name"] == "start_session").unwrap();
    assert_eq!(start["inputSchema"]["required"], json!(["agent"]));
}

#[test]
fn the_inspector_drives_a_mock_session_from_start_to_stop() {
    let env = TestEnv::new();
    let Some(mcp) = Inspector::new(&env) else { return };
    let started = mcp
        .call("start_session", &["agent=mock", "id=w1", "description=a worker started over MCP"]);
    assert_eq!(started["isError"], false, "{started:#}");
    let session = &started["structuredContent"];
    assert_eq!(session["id"], "w1");
    assert_eq!(session["mode"], "detached");
    let pid = session["pid"].as_u64().unwrap() as u32;
    assert!(alive(pid));
    // The CLI sees the session the MCP server started, and the other way round.
    let status = env.reins(&["status", "--id", "w1", "--json"]).ok().json();
    assert_eq!(status[0]["description"], "a worker started over MCP");

    let sent = mcp.call("send_message", &["id=w1", "text=write a haiku [[wait:0.3]]"]);
    let sent = &sent["structuredContent"];
    assert_eq!(sent["status"], "delivered", "{sent:#}");
    assert_eq!(sent["turn"], 1);
    let message = sent["message_id"].as_str().unwrap().to_string();

    let waited = mcp.call("wait", &["id=w1", &format!("message_id={message}"), "timeout_s=30"]);
    let waited = &waited["structuredContent"];
    assert_eq!(waited["status"], "reached", "{waited:#}");
    assert_eq!(waited["reached"], true);
    assert_eq!(waited["turn"], 1);
    assert_eq!(waited["event"]["type"], "task_complete");
    assert_eq!(waited["event"]["status"], "completed");
    assert_eq!(waited["state"], "ready");

    let screen = mcp.call("read_screen", &["id=w1"]);
    let rows = screen["structuredContent"]["rows"].as_array().unwrap();
    let text: Vec<&str> = rows.iter().map(|r| r.as_str().unwrap()).collect();
    assert!(text.iter().any(|r| r.contains("MOCK_OK (you said: write a haiku)")), "{text:#?}");
    assert!(!text.last().unwrap().trim().is_empty(), "blank rows at the bottom are left out");

    // Events from a cursor: the whole run, then only what is new.
    let events = mcp.call("read_events", &["id=w1"]);
    let page = &events["structuredContent"];
    let kinds: Vec<&str> =
        page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "started", "{kinds:?}");
    assert!(kinds.contains(&"task_complete"), "{kinds:?}");
    let next = page["next_seq"].as_u64().unwrap();
    assert_eq!(next, page["events"].as_array().unwrap().len() as u64 + 1);
    assert_eq!(page["live"], true);
    let newer = mcp.call("read_events", &["id=w1", &format!("from_seq={next}")]);
    assert_eq!(newer["structuredContent"]["events"], json!([]), "{newer:#}");
    let only = mcp.call("read_events", &["id=w1", r#"types=["task_complete"]"#]);
    assert_eq!(only["structuredContent"]["events"].as_array().unwrap().len(), 1);

    let logs = mcp.call("read_logs", &["id=w1", "lines=5"]);
    let lines = logs["structuredContent"]["lines"].as_array().unwrap();
    assert!(lines.len() <= 5, "{lines:#?}");

    let listed = mcp.call("list_sessions", &[]);
    let sessions = listed["structuredContent"]["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], "w1");
    assert_eq!(sessions[0]["turn"], 1);

    let stopped = mcp.call("stop_session", &["id=w1"]);
    assert_eq!(stopped["structuredContent"]["outcome"], "stopped", "{stopped:#}");
    assert!(!alive(pid), "the agent is gone");
    let status = mcp.call("session_status", &["id=w1"]);
    assert_eq!(status["structuredContent"]["host"], "exited", "{status:#}");
    // Its history stays readable.
    let events = mcp.call("read_events", &["id=w1", r#"types=["exited"]"#]);
    assert_eq!(events["structuredContent"]["live"], false);
    assert_eq!(events["structuredContent"]["events"].as_array().unwrap().len(), 1);
}

/// The error a tool answered: its details (`_meta["reins/error"]`) and
/// its text.
#[track_caller]
fn tool_error(result: &Value) -> (Value, String) {
    assert_eq!(result["isError"], true, "not an error: {result:#}");
    assert!(result.get("structuredContent").is_none(), "{result:#}");
    let text = result["content"][0]["text"].as_str().unwrap().to_string();
    let error = result["_meta"]["reins/error"].clone();
    assert_eq!(
        text.lines().next().unwrap(),
        format!("reins: {}", error["message"].as_str().unwrap())
    );
    (error, text)
}

#[test]
fn bad_input_is_answered_with_what_went_wrong() {
    let env = TestEnv::new();
    let Some(mcp) = Inspector::new(&env) else { return };
    // A tool that does not exist: a protocol error (-32602), as the
    // inspector reports it.
    let (code, _, stderr) = mcp.run(&["--method", "tools/call", "--tool-name", "launch_rockets"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("launch_rockets"), "{stderr}");
    assert!(stderr.contains("-32602"), "{stderr}");
    // Arguments that do not fit the schema: a tool error the model can
    // read (as MCP 2025-11-25 asks), in reins' shape.
    let (error, text) = tool_error(&mcp.call("session_status", &[]));
    assert_eq!(error["kind"], "invalid_input");
    assert_eq!(error["message"], "bad arguments for session_status: missing field `id`");
    assert!(text.contains("hint: tools/list has the input schema of session_status"), "{text}");
    let (error, _) = tool_error(&mcp.call("session_status", &["id=w1", "colour=blue"]));
    assert!(error["message"].as_str().unwrap().contains("unknown field `colour`"), "{error}");
    let (error, _) = tool_error(&mcp.call("read_logs", &["id=w1", "lines=many"]));
    assert!(error["message"].as_str().unwrap().contains("invalid type"), "{error}");

    // What reins refuses: a result the model can read, with the hint.
    let (error, text) = tool_error(&mcp.call("session_status", &["id=nobody"]));
    assert_eq!(error["kind"], "failed");
    assert_eq!(error["message"], "no session named nobody");
    assert!(error["hint"].as_str().unwrap().contains("status --all"), "{error}");
    assert!(text.starts_with("reins: no session named nobody\nhint: "), "{text}");
    let (error, _) = tool_error(&mcp.call("session_status", &["id=../etc"]));
    assert_eq!(error["kind"], "invalid_input", "{error}");
    let (error, _) = tool_error(&mcp.call("start_session", &["agent=no-such-agent-program"]));
    assert!(error["message"].as_str().unwrap().contains("not found in PATH"), "{error}");

    env.start("w2", &[]);
    let (error, _) = tool_error(&mcp.call("wait", &["id=w2", "until=sunrise"]));
    assert_eq!(error["kind"], "invalid_input");
    assert!(error["message"].as_str().unwrap().contains("unknown condition"), "{error}");
    let (error, _) = tool_error(&mcp.call("wait", &["id=w2", "timeout_s=-1"]));
    assert_eq!(error["kind"], "invalid_input");
    let (error, _) = tool_error(&mcp.call("send_message", &["id=w2", "text= "]));
    assert_eq!(error["message"], "the message is empty");
    let (error, _) = tool_error(&mcp.call("approve", &["id=w2"]));
    assert!(error["message"].as_str().unwrap().contains("cannot approve"), "{error}");

    // A wait that times out is an answer, and comes on time.
    let t0 = std::time::Instant::now();
    let waited = mcp.call("wait", &["id=w2", "until=busy", "timeout_s=0.5"]);
    let waited = &waited["structuredContent"];
    assert_eq!(waited["status"], "timeout", "{waited:#}");
    assert_eq!(waited["reached"], false);
    assert_eq!(waited["state"], "ready");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    env.reins(&["stop", "--id", "w2"]).ok();
    let (error, _) = tool_error(&mcp.call("send_message", &["id=w2", "text=hello"]));
    assert!(error["message"].as_str().unwrap().contains("has exited"), "{error}");
}

/// The progress notifications seen for the request with this token.
fn progress(seen: &[Value], token: &str) -> Vec<String> {
    seen.iter()
        .filter(|m| {
            m["method"] == "notifications/progress" && m["params"]["progressToken"] == token
        })
        .map(|m| m["params"]["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_wait_reports_state_and_turn_as_progress_and_stops_when_cancelled() {
    let env = TestEnv::new();
    env.start("w3", &[]);
    env.wait_state("w3", "ready");
    let mut client = RawClient::start(&env, json!({}));
    client.call_result("send_message", json!({"id": "w3", "text": "slowly [[wait:0.5]]"}));
    let id = client.call(
        "wait",
        json!({"id": "w3", "timeout_s": 30}),
        Some(json!({"progressToken": "tok-1"})),
    );
    let answer = client.response(id, Duration::from_secs(30));
    assert_eq!(answer["result"]["structuredContent"]["status"], "reached", "{answer:#}");
    let said = progress(&client.seen, "tok-1");
    assert!(said[0].starts_with("w3: waiting for task_complete ("), "{said:#?}");
    assert_eq!(said.last().unwrap(), "w3: ready, turn 1", "{said:#?}");
    let repeated = said.windows(2).any(|w| w[0] == w[1]);
    assert!(!repeated, "each report says something new: {said:#?}");

    // Cancelled: no answer, the session as it was, the server still serving.
    let id = client.call(
        "wait",
        json!({"id": "w3", "until": "exit", "timeout_s": 600}),
        Some(json!({"progressToken": "tok-2"})),
    );
    // Its first report says the wait is under way.
    let mut started = false;
    for _ in 0..50 {
        let message = client.next(Duration::from_secs(10)).expect("a progress report");
        if message["params"]["progressToken"] == "tok-2" {
            started = true;
            break;
        }
    }
    assert!(started);
    client.notify("notifications/cancelled", json!({"requestId": id, "reason": "enough"}));
    let ping = client.request("ping", json!({}));
    client.response(ping, Duration::from_secs(10));
    assert!(
        !client.seen.iter().any(|m| m["id"] == json!(id)),
        "a cancelled call was answered: {:#?}",
        client.seen
    );
    let status = env.reins(&["status", "--id", "w3", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready");
    assert_eq!(status[0]["host"], "live");
}

#[test]
fn a_client_that_goes_away_mid_wait_leaves_the_session_untouched() {
    let env = TestEnv::new();
    let started = env.start("w4", &[]);
    let agent = started["pid"].as_u64().unwrap() as u32;
    env.wait_state("w4", "ready");
    let events_before = env.events("w4").len();
    let mut client = RawClient::start(&env, json!({}));
    let server = client.pid();
    let id = client.call(
        "wait",
        json!({"id": "w4", "until": "exit", "timeout_s": 600}),
        Some(json!({"progressToken": "t"})),
    );
    let first = client.next(Duration::from_secs(10)).expect("the wait started");
    assert_eq!(first["method"], "notifications/progress", "{first}");
    client.hang_up();
    assert_eq!(client.exits_within(Duration::from_secs(10)), 0);
    assert!(!alive(server));
    // Nothing of the server is left: no process of its tree.
    let leftover = std::process::Command::new("pgrep")
        .args(["-P", &server.to_string()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert!(leftover.is_empty(), "the server left children: {leftover}");
    // The session goes on as it was; nothing was asked of it.
    assert!(alive(agent));
    let status = env.reins(&["status", "--id", "w4", "--json"]).ok().json();
    assert_eq!(status[0]["state"], "ready");
    let after = env.events("w4");
    assert_eq!(after.len(), events_before, "{:#?}", &after[events_before..]);
    let _ = id;
    // And answers the next client.
    let sent = env.reins(&["send", "--id", "w4", "hello again"]).ok().json();
    assert_eq!(sent["status"], "delivered");
}

#[test]
fn a_client_of_the_tasks_extension_gets_long_calls_as_tasks() {
    let env = TestEnv::new();
    env.start("w5", &[]);
    env.wait_state("w5", "ready");
    let tasks = json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    let mut client = RawClient::start(&env, tasks);
    // A short call stays a plain call.
    let status = client.call_result("session_status", json!({"id": "w5"}));
    assert_eq!(status["structuredContent"]["state"], "ready", "{status:#}");

    // So is a send that answers on delivery.
    let sent = client.call_result("send_message", json!({"id": "w5", "text": "go [[wait:0.5]]"}));
    assert_eq!(sent["structuredContent"]["status"], "delivered", "{sent:#}");
    let id = client.call("wait", json!({"id": "w5", "timeout_s": 30}), None);
    let created = client.response(id, Duration::from_secs(10));
    let task = &created["result"];
    assert_eq!(task["resultType"], "task", "{created:#}");
    assert_eq!(task["status"], "working", "{created:#}");
    let task_id = task["taskId"].as_str().unwrap().to_string();
    // Tasks are polled: that is the extension's protocol.
    let mut done = Value::Null;
    for _ in 0..600 {
        let get = client.request("tasks/get", json!({"taskId": task_id}));
        let got = client.response(get, Duration::from_secs(10));
        if got["result"]["status"] != "working" {
            done = got["result"].clone();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["result"]["structuredContent"]["status"], "reached", "{done:#}");

    // Cancelled through tasks/cancel: the task says so, the session is as it was.
    let id = client.call("wait", json!({"id": "w5", "until": "exit", "timeout_s": 600}), None);
    let created = client.response(id, Duration::from_secs(10));
    let task_id = created["result"]["taskId"].as_str().unwrap().to_string();
    let cancel = client.request("tasks/cancel", json!({"taskId": task_id}));
    client.response(cancel, Duration::from_secs(10));
    let mut last = Value::Null;
    for _ in 0..600 {
        let get = client.request("tasks/get", json!({"taskId": task_id}));
        last = client.response(get, Duration::from_secs(10))["result"].clone();
        if last["status"] != "working" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last["status"], "cancelled", "{last:#}");
    let status = env.reins(&["status", "--id", "w5", "--json"]).ok().json();
    assert_eq!(status[0]["host"], "live");
}

/// A profile `gate` whose agent is the shell script `script` (`$R` is the
/// reins binary, `$I` the inspector): reins reads `Allow gate to run it?
/// [y/n]` as an approval dialog and answers with `y`/`n` and Enter.
fn gate_profile(env: &TestEnv, inspector: &std::path::Path, script: &str) {
    let path = env.path().join("gate.sh");
    let script =
        format!("R={}\nI={}\n{script}", crate::common::reins_bin().display(), inspector.display());
    std::fs::write(&path, script).unwrap();
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
}

/// Waits until the shell line that wrote `path` appended its `rc=N`.
fn finished(path: &std::path::Path) -> String {
    let mut text = String::new();
    crate::common::eventually(Duration::from_secs(60), &format!("{}", path.display()), || {
        text = std::fs::read_to_string(path).unwrap_or_default();
        text.contains("rc=")
    });
    text
}

/// The agent of a session drives reins through `reins mcp` (started by
/// its MCP client, so inside its process tree): the session it starts
/// records it as parent, and its own approval request stays its own to
/// wait on — the host refuses the answer, as it does on every other way.
#[test]
fn an_agent_on_mcp_is_the_parent_of_what_it_starts_and_cannot_approve_itself() {
    let env = TestEnv::new();
    let Some(inspector) = Inspector::new(&env) else { return };
    let script = r#"
printf 'Allow gate to run it? [y/n] '
until "$R" status --id "$REINS_ID" --json | grep -q '"request"'; do sleep 0.05; done
"$I" --cli "$R" mcp --method tools/call --tool-name approve --tool-arg "id=$REINS_ID" > approve.out 2>&1
echo "rc=$?" >> approve.out
"$I" --cli "$R" mcp --method tools/call --tool-name start_session --tool-arg agent=mock id=minion > child.out 2>&1
echo "rc=$?" >> child.out
touch tried
read answer
echo "answered: $answer"
[ "$answer" = y ] && touch approved
exec sleep 1000
"#;
    gate_profile(&env, &inspector.bin_path(), script);
    let boss = env.reins(&["run", "gate", "--id", "boss", "--detach"]).ok().json();

    let out = finished(&env.work.join("approve.out"));
    assert!(out.contains("\"isError\": true"), "{out}");
    assert!(out.contains("own approval requests"), "{out}");
    assert!(!env.work.join("approved").exists(), "the agent approved itself");
    let refused: Vec<Value> =
        env.events("boss").into_iter().filter(|e| e["type"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["request"], "approve");
    assert_eq!(refused[0]["requester"]["session"], "boss");

    let out = finished(&env.work.join("child.out"));
    assert!(out.contains("\"isError\": false"), "{out}");
    let rows = env.reins(&["status", "--id", "minion", "--json"]).ok().json();
    assert_eq!(rows[0]["parent"]["id"], "boss", "{rows:#}");
    assert_eq!(rows[0]["parent"]["run"], boss["run"]);
    let started = env.events("minion").into_iter().find(|e| e["type"] == "started").unwrap();
    assert_eq!(started["parent"]["id"], "boss");

    // A person answers it.
    env.reins(&["approve", "--id", "boss"]).ok();
    crate::common::eventually(Duration::from_secs(10), "the approved command", || {
        env.work.join("approved").exists()
    });
    env.reins(&["stop", "--id", "minion"]).ok();
}

/// One raw HTTP request to `addr`: the status code and the whole answer.
fn http_post(addr: &str, path: &str, authorization: Option<&str>, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{auth}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, answer)
}

#[test]
fn http_listens_on_loopback_only_behind_a_bearer_token() {
    use std::io::BufRead;
    let env = TestEnv::new();
    let refused = env.reins(&["mcp", "--listen", "0.0.0.0:8765"]).code(2);
    assert!(refused.stderr.contains("0.0.0.0 is not a loopback address"), "{}", refused.stderr);
    assert!(refused.stderr.contains("ssh -L"), "{}", refused.stderr);

    let mut server = env
        .command(&["mcp", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect(&line).to_string();
    let addr = url.trim_start_matches("http://").trim_end_matches("/mcp").to_string();
    let token_file = line.split("bearer token in ").nth(1).unwrap().trim().trim_end_matches(')');
    let token_file = std::path::PathBuf::from(token_file);
    assert_eq!(crate::common::mode(&token_file), 0o600);
    assert_eq!(crate::common::mode(token_file.parent().unwrap()), 0o700);
    let token = std::fs::read_to_string(&token_file).unwrap().trim().to_string();
    assert_eq!(token.len(), 64, "256 random bits");
    assert!(!line.contains(&token), "the token is never printed");

    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, answer) = http_post(&addr, "/mcp", None, init);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer.contains("WWW-Authenticate: Bearer") || answer.contains("www-authenticate: Bearer")
    );
    let (status, _) = http_post(&addr, "/mcp", Some(&format!("Bearer {}x", &token[1..])), init);
    assert_eq!(status, 401, "a wrong token");
    let (status, _) = http_post(&addr, "/mcp", Some(&format!("Bearer {token}")), init);
    assert_eq!(status, 200);
    let (status, _) = http_post(&addr, "/other", Some(&format!("Bearer {token}")), init);
    assert_eq!(status, 404);

    // A real client with the token drives sessions over HTTP.
    if let Some(inspector) = Inspector::new(&env) {
        let bin = inspector.bin_path();
        let call = |args: &[&str]| {
            let out = std::process::Command::new(&bin)
                .args(["--cli", &url, "--transport", "http"])
                .args(["--header", &format!("Authorization: Bearer {token}")])
                .args(args)
                .current_dir(&env.work)
                .env_clear()
                .envs(env.env_vars())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        let started = call(&[
            "--method",
            "tools/call",
            "--tool-name",
            "start_session",
            "--tool-arg",
            "agent=mock",
            "id=h1",
        ]);
        assert_eq!(started["structuredContent"]["id"], "h1", "{started:#}");
        let listed = call(&["--method", "tools/call", "--tool-name", "list_sessions"]);
        assert_eq!(listed["structuredContent"]["sessions"][0]["id"], "h1", "{listed:#}");
        // The token is nowhere a session or its status shows.
        let status = env.reins(&["status", "--id", "h1", "--json"]).ok().stdout;
        assert!(!status.contains(&token));
        let dir = env.session_dir("h1");
        for file in ["events.jsonl", "session.json", "host.log"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
            assert!(!text.contains(&token), "{file} holds the token");
        }
        env.reins(&["stop", "--id", "h1"]).ok();
    }

    crate::common::signal(server.id() as i32, 15);
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(!rest.contains(&token), "{rest}");
    assert!(!token_file.exists(), "the token file is removed when the server ends");
}

#[test]
fn screens_and_events_are_resources_that_tell_their_subscribers_when_they_change() {
    let env = TestEnv::new();
    env.start("r1", &["--description", "the resource one"]);
    env.wait_state("r1", "ready");
    let mut client = RawClient::start(&env, json!({}));
    let list = client.request("resources/list", json!({}));
    let listed = client.response(list, Duration::from_secs(10));
    let resources = listed["result"]["resources"].as_array().unwrap().clone();
    let uris: Vec<&str> = resources.iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["reins://sessions/r1/screen", "reins://sessions/r1/events"], "{listed:#}");
    assert!(resources[0]["description"].as_str().unwrap().contains("the resource one"));
    let templates = client.request("resources/templates/list", json!({}));
    let templates = client.response(templates, Duration::from_secs(10));
    assert_eq!(templates["result"]["resourceTemplates"].as_array().unwrap().len(), 2);

    for uri in ["reins://sessions/r1/screen", "reins://sessions/r1/events"] {
        let sub = client.request("resources/subscribe", json!({"uri": uri}));
        let answer = client.response(sub, Duration::from_secs(10));
        assert!(answer.get("error").is_none(), "{answer:#}");
    }
    env.reins(&["send", "--id", "r1", "--wait-for-idle", "--timeout", "20s", "hello resources"])
        .ok();
    // Both told their subscriber; then the screen reads as it is now.
    let mut updated = std::collections::BTreeSet::new();
    for message in client.seen.drain(..) {
        if message["method"] == "notifications/resources/updated" {
            updated.insert(message["params"]["uri"].as_str().unwrap().to_string());
        }
    }
    while updated.len() < 2 {
        let message = client.next(Duration::from_secs(10)).expect("a resource update");
        if message["method"] == "notifications/resources/updated" {
            updated.insert(message["params"]["uri"].as_str().unwrap().to_string());
        }
    }
    let read = client.request("resources/read", json!({"uri": "reins://sessions/r1/screen"}));
    let read = client.response(read, Duration::from_secs(10));
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(text.contains("MOCK_OK (you said: hello resources)"), "{text}");
    let read = client.request("resources/read", json!({"uri": "reins://sessions/r1/events"}));
    let read = client.response(read, Duration::from_secs(10));
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "application/x-ndjson");
    let lines: Vec<Value> = contents["text"]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|e| e["type"] == "task_complete"), "{lines:#?}");

    // Unsubscribed: quiet.
    for uri in ["reins://sessions/r1/screen", "reins://sessions/r1/events"] {
        let unsub = client.request("resources/unsubscribe", json!({"uri": uri}));
        client.response(unsub, Duration::from_secs(10));
    }
    // What was sent before the unsubscribe answers came before them.
    client.seen.clear();
    env.reins(&["send", "--id", "r1", "--wait-for-idle", "--timeout", "20s", "again"]).ok();
    let ping = client.request("ping", json!({}));
    client.response(ping, Duration::from_secs(10));
    let late: Vec<&Value> =
        client.seen.iter().filter(|m| m["method"] == "notifications/resources/updated").collect();
    assert!(late.is_empty(), "{late:#?}");

    // Resources that are not there.
    for uri in
        ["reins://sessions/nobody/screen", "reins://sessions/r1/secrets", "file:///etc/passwd"]
    {
        let read = client.request("resources/read", json!({"uri": uri}));
        let answer = client.response(read, Duration::from_secs(10));
        assert!(answer["error"]["message"].as_str().unwrap().contains(uri), "{answer:#}");
    }
}
