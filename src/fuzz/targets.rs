//! The fuzz targets, one test each: what it feeds, and what it checks
//! besides "no panic" (outputs bounded by what went in, state that cannot
//! grow without end). Seeds are real fixtures: recorded app-server and
//! stream-json sessions, the built-in adapter profiles, the session files
//! of a real mock session, requests built from the real API types.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Target, files, fuzz, mutate_bytes, mutate_json_lines, mutate_toml};
use crate::ipc::Decision;
use crate::transport::acp::{self, Acp};
use crate::transport::codex::{CodexAppServer, Settings};
use crate::transport::{Effect, MAX_FIELD, MAX_SHOWN, Protocol, claude::ClaudeStream};

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

// ---- the protocol decoders -------------------------------------------

/// A protocol session as the fuzzer drives it: lines from the agent, and
/// lines starting with `!` for what the session does (`!deliver TEXT`,
/// `!steer TEXT`, `!interrupt`, `!answer allow|always|deny`, `!deadline`).
fn drive(mut protocol: Protocol, t0: Instant, input: &[u8]) -> bool {
    let mut now = t0;
    let mut turns = false;
    for raw in input.split(|b| *b == b'\n') {
        // The transport hands over only UTF-8 lines; anything else is
        // reported as garbled before it gets here.
        let Ok(line) = std::str::from_utf8(raw) else { continue };
        let line = line.trim_end_matches('\r');
        let effects = match line.strip_prefix('!') {
            Some(op) => {
                let (op, arg) = op.split_once(' ').unwrap_or((op, ""));
                match op {
                    "deliver" => protocol.deliver("m", arg, false, now),
                    "steer" => protocol.deliver("m", arg, true, now),
                    "interrupt" => protocol.interrupt(now),
                    "answer" => {
                        let decision = match arg {
                            "always" => Decision::Always,
                            "deny" => Decision::Deny,
                            _ => Decision::Allow,
                        };
                        protocol.answer(decision).unwrap_or_default()
                    }
                    "deadline" => {
                        now += Duration::from_secs(3600);
                        protocol.on_deadline(now)
                    }
                    _ => Vec::new(),
                }
            }
            None => protocol.on_line(line, now),
        };
        check_effects(&effects, input.len());
        turns |= effects.iter().any(|e| matches!(e, Effect::TurnCompleted { .. }));
        let _ = (protocol.can_start_turn(), protocol.has_active_turn(), protocol.next_deadline());
        if let Protocol::Codex(codex) = &protocol {
            assert!(codex.waiting_approvals() <= 64, "approvals pile up");
        }
        if let Protocol::Acp(acp) = &protocol {
            assert!(acp.waiting_approvals() <= 64, "permission requests pile up");
        }
    }
    turns
}

/// Nothing the agent says reaches the transcript, the events or the
/// registry longer than its cap; lines sent back are JSON and no bigger
/// than what came in.
fn check_effects(effects: &[Effect], input: usize) {
    let field = |s: &str| assert!(s.len() <= MAX_FIELD, "a field of {} bytes", s.len());
    for effect in effects {
        match effect {
            Effect::Send(line) => {
                serde_json::from_str::<Value>(line).expect("a line sent is JSON");
                assert!(line.len() <= input + 4096, "a line of {} sent", line.len());
            }
            Effect::Transcript(text) => {
                assert!(text.len() <= MAX_SHOWN, "a transcript entry of {} bytes", text.len())
            }
            Effect::Warning(text) => field(text),
            Effect::Answer { text, .. } => {
                assert!(text.len() <= MAX_SHOWN, "an answer of {} bytes", text.len())
            }
            Effect::Refused { reason, .. } => field(reason),
            Effect::TurnCompleted { error, .. } => error.iter().for_each(|e| field(e)),
            Effect::RateLimited { message, .. } => message.iter().for_each(|m| field(m)),
            Effect::ApprovalAsked { detail } => field(detail),
            Effect::Disconnected { message, .. } => field(message),
            Effect::Usage { fields, .. } => fields.values().for_each(|v| field(v)),
            Effect::State(_)
            | Effect::Delivered { .. }
            | Effect::Steered { .. }
            | Effect::TurnStarted { .. } => {}
        }
    }
}

/// The recorded app-server sessions as fuzz inputs: what the server said,
/// and what reins did in between as `!` lines.
fn codex_seeds() -> Vec<Vec<u8>> {
    let dir = repo("tests/fixtures/codex-app-server-transcripts");
    let mut seeds = Vec::new();
    for (path, bytes) in files(&dir) {
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let mut out = String::new();
        for line in String::from_utf8(bytes).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let (dir, msg) = match (record.get("s2c"), record.get("c2s")) {
                (Some(m), _) => ("s2c", m),
                (_, Some(m)) => ("c2s", m),
                _ => (record["dir"].as_str().unwrap_or(""), &record["msg"]),
            };
            let text = || msg.pointer("/params/input/0/text").and_then(Value::as_str).unwrap_or("");
            let op = match (dir, msg["method"].as_str()) {
                ("s2c", _) => msg.to_string(),
                (_, Some("turn/start")) => format!("!deliver {}", text().replace('\n', " ")),
                (_, Some("turn/steer")) => format!("!steer {}", text().replace('\n', " ")),
                (_, Some("turn/interrupt")) => "!interrupt".into(),
                (_, None) => match msg.pointer("/result/decision").and_then(Value::as_str) {
                    Some("acceptForSession" | "approved_for_session") => "!answer always".into(),
                    Some("decline" | "denied") => "!answer deny".into(),
                    Some(_) => "!answer allow".into(),
                    None => continue,
                },
                _ => continue,
            };
            out.push_str(&op);
            out.push('\n');
        }
        out.push_str("!deadline\n");
        seeds.push(out.into_bytes());
    }
    assert!(seeds.len() >= 4, "the recorded app-server sessions");
    seeds
}

#[test]
fn fuzz_codex_app_server() {
    let run = |input: &[u8]| {
        let t0 = Instant::now();
        let settings = Settings {
            client_version: "0.1.0".into(),
            cwd: "/w".into(),
            approval_policy: Some("on-request".into()),
            sandbox: None,
            model: None,
            request_timeout: Duration::from_secs(30),
        };
        let (codex, _) = CodexAppServer::start(settings, t0);
        drive(Protocol::Codex(Box::new(codex)), t0, input)
    };
    fuzz(Target {
        name: "codex-app-server",
        seeds: codex_seeds(),
        iters: 2500,
        max_len: 96 << 10,
        mutate: mutate_json_lines,
        run: &run,
    });
}

/// The recorded ACP sessions of Gemini CLI, OpenCode and Qwen Code as
/// fuzz inputs: what the agent said, and what reins did in between as `!`
/// lines (the recordings' ids are the ones [`Acp`] uses).
fn acp_seeds() -> Vec<Vec<u8>> {
    let dir = repo("tests/fixtures/acp-transcripts");
    let mut seeds = Vec::new();
    for (path, bytes) in files(&dir) {
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let mut out = String::new();
        for line in String::from_utf8(bytes).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let msg = &record["msg"];
            let op = match (record["dir"].as_str(), msg["method"].as_str()) {
                (Some("s2c"), _) => msg.to_string(),
                (_, Some("session/prompt")) => {
                    let text = msg.pointer("/params/prompt/0/text").and_then(Value::as_str);
                    format!("!deliver {}", text.unwrap_or("").replace('\n', " "))
                }
                (_, Some("session/cancel")) => "!interrupt".into(),
                (_, None) => {
                    match msg.pointer("/result/outcome/optionId").and_then(Value::as_str) {
                        Some(id) if id.contains("always") => "!answer always".into(),
                        Some("cancel" | "reject") => "!answer deny".into(),
                        Some(_) => "!answer allow".into(),
                        None => continue,
                    }
                }
                _ => continue,
            };
            out.push_str(&op);
            out.push('\n');
        }
        out.push_str("!deadline\n");
        seeds.push(out.into_bytes());
    }
    assert!(seeds.len() >= 12, "the recorded ACP sessions");
    seeds
}

#[test]
fn fuzz_acp() {
    let run = |input: &[u8]| {
        let t0 = Instant::now();
        let settings = acp::Settings {
            client_version: "0.1.0".into(),
            cwd: "/w".into(),
            request_timeout: Duration::from_secs(30),
            credentials: vec!["gemini-api-key".into()],
        };
        let (acp, _) = Acp::start(settings, t0);
        drive(Protocol::Acp(Box::new(acp)), t0, input)
    };
    fuzz(Target {
        name: "acp",
        seeds: acp_seeds(),
        iters: 2500,
        max_len: 96 << 10,
        mutate: mutate_json_lines,
        run: &run,
    });
}

#[test]
fn fuzz_claude_stream_json() {
    let recorded =
        std::fs::read(repo("tests/fixtures/claude-stream-json/tool_turn.jsonl")).unwrap();
    let mut seed = b"!deliver [[run:echo hi]] run it\n".to_vec();
    seed.extend_from_slice(&recorded);
    seed.extend_from_slice(b"\n!deliver again\n");
    seed.extend_from_slice(&recorded);
    let run =
        |input: &[u8]| drive(Protocol::Claude(ClaudeStream::start().0), Instant::now(), input);
    fuzz(Target {
        name: "claude-stream-json",
        seeds: vec![seed],
        iters: 2500,
        max_len: 96 << 10,
        mutate: mutate_json_lines,
        run: &run,
    });
}

// ---- the session files -----------------------------------------------

/// Runs `read` on `input` written to a file, as the readers only take paths.
fn through_file<T>(input: &[u8], read: impl FnOnce(&Path) -> T) -> T {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.jsonl");
    std::fs::write(&path, input).unwrap();
    read(&path)
}

#[test]
fn fuzz_inbox_reader() {
    let run = |input: &[u8]| {
        let entries = through_file(input, crate::store::inbox::replay)
            .expect("the inbox replays whatever bytes are in it");
        let lines = input.split(|b| *b == b'\n').count();
        assert!(entries.len() <= lines);
        for entry in &entries {
            assert!(entry.message.text.len() <= input.len());
        }
        !entries.is_empty()
    };
    fuzz(Target {
        name: "inbox",
        seeds: Vec::new(),
        iters: 5000,
        max_len: 16 << 10,
        mutate: mutate_json_lines,
        run: &run,
    });
}

#[test]
fn fuzz_events_reader() {
    let run = |input: &[u8]| {
        let (events, offset) = through_file(input, crate::store::events::read_all_with_offset)
            .expect("the events read whatever bytes are in the file");
        assert!(offset as usize <= input.len());
        assert!(events.len() <= input.split(|b| *b == b'\n').count());
        for event in &events {
            assert!(event.raw.len() <= input.len());
        }
        !events.is_empty()
    };
    fuzz(Target {
        name: "events",
        seeds: Vec::new(),
        iters: 3000,
        max_len: 16 << 10,
        mutate: mutate_json_lines,
        run: &run,
    });
}

// ---- the control API -------------------------------------------------

/// A request as `METHOD PATH[?QUERY]` on the first line, its body after.
fn control_seeds() -> Vec<Vec<u8>> {
    use crate::ipc::api::{ApproveRequest, SendRequest, StopRequest};
    let send = SendRequest {
        text: "héllo 世界\n[[approve]]".into(),
        submit: true,
        submit_only: false,
        force: true,
        raw: false,
        ttl_ms: Some(60_000),
    };
    let note = json!({ "type": "stall", "idle_s": 30.5, "state": "busy", "reason": "quiet" });
    let requests: Vec<(&str, String)> = vec![
        ("POST /v1/send", serde_json::to_string(&send).unwrap()),
        (
            "POST /v1/stop",
            serde_json::to_string(&StopRequest { timeout_ms: Some(5000), retire: true }).unwrap(),
        ),
        (
            "POST /v1/approve",
            serde_json::to_string(&ApproveRequest {
                decision: Decision::Always,
                request: Some("ap-3".into()),
            })
            .unwrap(),
        ),
        ("POST /v1/note", note.to_string()),
        ("GET /v1/screen?after=42", String::new()),
        ("GET /v1/grown?file=events&ino=1234&len=99", String::new()),
        ("GET /v1/status", String::new()),
        ("GET /v1/inbox", String::new()),
        ("DELETE /v1/inbox/0a1b2c3d", String::new()),
        ("POST /v1/interrupt", "{}".into()),
        ("POST /v1/rate-limit", String::new()),
    ];
    requests.into_iter().map(|(head, body)| format!("{head}\n{body}").into_bytes()).collect()
}

/// Mutates the body (as JSON when it is), the path and query, or the
/// whole request: a method hyper would refuse never gets to the parser.
fn mutate_request(rng: &mut super::Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let mut head = head.to_vec();
    let mut body = body.get(1..).unwrap_or_default().to_vec();
    match rng.below(4) {
        0 | 1 => mutate_json_lines(rng, &mut body, &[]),
        2 => {
            // After the method and its space.
            let at = head.iter().position(|b| *b == b' ').map_or(0, |i| i + 1);
            let mut target = head.split_off(at);
            mutate_bytes(rng, &mut target, pool);
            head.extend_from_slice(&target);
        }
        _ => {
            let mut whole = [head.as_slice(), b"\n", &body].concat();
            mutate_bytes(rng, &mut whole, pool);
            *data = whole;
            return;
        }
    }
    *data = [head.as_slice(), b"\n", &body].concat();
}

#[test]
fn fuzz_control_api() {
    let run = |input: &[u8]| {
        let (head, body) = match input.iter().position(|b| *b == b'\n') {
            Some(i) => (&input[..i], &input[i + 1..]),
            None => (input, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let (method, target) = head.split_once(' ').unwrap_or((&head, "/"));
        // hyper hands over a method token and a path and query that are
        // valid in a URI; anything else never reaches the parser.
        let Ok(method) = hyper::Method::from_bytes(method.as_bytes()) else { return false };
        let Ok(uri) = target.parse::<hyper::Uri>() else { return false };
        let (path, query) = (uri.path(), uri.query().unwrap_or(""));
        let result = crate::ipc::server::parse_request(&method, path, query, body);
        if let Err((status, message)) = &result {
            assert!((400..500).contains(status), "{status}");
            // An error may quote the request, not more.
            let asked = path.len() + query.len() + body.len();
            assert!(message.len() <= asked + 512, "an error of {} bytes", message.len());
        }
        result.is_ok()
    };
    fuzz(Target {
        name: "control-api",
        seeds: control_seeds(),
        iters: 60_000,
        max_len: 16 << 10,
        mutate: mutate_request,
        run: &run,
    });
}

// ---- TOML: config, adapter profiles, chains --------------------------

#[test]
fn fuzz_config_toml() {
    let profiles: Vec<String> =
        ["claude", "codex", "gemini", "mock", "opencode"].map(String::from).to_vec();
    let run = |input: &[u8]| {
        let text = String::from_utf8_lossy(input);
        let Ok((agents, routes)) = crate::config::parse(&text, Path::new("config.toml"), &profiles)
        else {
            return false;
        };
        // What `Agents::load` does next: the rules are checked against the
        // agents.
        let known: Vec<&str> = agents.iter().map(|a| a.name.as_str()).chain(["mock"]).collect();
        for (line, table) in routes.into_iter().enumerate() {
            let _ = crate::dispatch::routing::Rule::new(table, line, &known);
        }
        true
    };
    fuzz(Target {
        name: "config",
        seeds: Vec::new(),
        iters: 4000,
        max_len: 16 << 10,
        mutate: mutate_toml,
        run: &run,
    });
}

#[test]
fn fuzz_adapter_profiles() {
    let seeds: Vec<Vec<u8>> = files(&repo("adapters")).into_iter().map(|(_, b)| b).collect();
    assert!(seeds.len() >= 5, "the built-in profiles");
    let run = |input: &[u8]| {
        let text = String::from_utf8_lossy(input);
        crate::adapter::Profile::parse(&text, crate::adapter::ProfileSource::Builtin).is_ok()
    };
    fuzz(Target {
        name: "adapter-profile",
        seeds,
        iters: 800,
        max_len: 16 << 10,
        mutate: mutate_toml,
        run: &run,
    });
}

#[test]
fn fuzz_chain_files() {
    use crate::config::{AgentSpec, Agents, DEFAULT_COOLDOWN, Source};
    let agent = |name: &str| AgentSpec {
        name: name.into(),
        base: "mock".into(),
        model: None,
        args: Vec::new(),
        model_args: Vec::new(),
        max_concurrent: None,
        cooldown: DEFAULT_COOLDOWN,
        source: Source::Config,
        host: None,
        self_certify: false,
        model_args_set: false,
        endpoint: None,
    };
    let agents = Agents {
        list: vec![agent("w"), agent("mock"), agent("reviewer")],
        path: None,
        rules: Vec::new(),
        endpoints: Vec::new(),
        dispatch: Default::default(),
    };
    // brief_file is read relative to the chain file: an empty directory.
    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.toml");
    let run = |input: &[u8]| {
        let text = String::from_utf8_lossy(input);
        let Ok(def) = crate::chain::file::parse(&text, &chain, &agents) else { return false };
        // What a run does with it next: placeholders filled, checks parsed.
        let values = [("task", "é task"), ("prev.plan.output", "{{task}}"), ("feedback", "")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into_iter()
            .collect();
        for step in &def.steps {
            let _ = crate::chain::file::placeholders(&step.brief);
            let brief = crate::chain::file::render(&step.brief, &values);
            assert!(brief.len() <= step.brief.len() * 8 + 64, "a brief grew to {}", brief.len());
            let _ = step.checks("é {{task}}");
        }
        true
    };
    fuzz(Target {
        name: "chain",
        seeds: Vec::new(),
        iters: 16_000,
        max_len: 16 << 10,
        mutate: mutate_toml,
        run: &run,
    });
}

// ---- terminal input --------------------------------------------------

#[test]
fn fuzz_mock_agent_input_decoder() {
    use crate::mock_agent::input::{Decoder, Key};
    let run = |input: &[u8]| {
        // The first byte says where the chunks are cut: input arrives in
        // pieces of any size.
        let step = usize::from(input.first().copied().unwrap_or(1)).max(1);
        let mut decoder = Decoder::default();
        let mut keys = Vec::new();
        for chunk in input.chunks(step) {
            keys.extend(decoder.feed(chunk));
            if chunk.len() % 3 == 0 && decoder.is_waiting() {
                keys.extend(decoder.timeout());
            }
        }
        let text: usize = keys
            .iter()
            .map(|k| match k {
                Key::Text(s) | Key::Paste(s) => s.len(),
                _ => 1,
            })
            .sum();
        // A byte that is not UTF-8 becomes at most one U+FFFD (3 bytes).
        assert!(text <= input.len() * 3, "{text} bytes of keys from {}", input.len());
        keys.iter().any(|k| matches!(k, Key::Paste(_)))
    };
    let seeds = vec![
        b"hi\x7f!\r\x03\x04\x08\x15".to_vec(),
        "é世😀\r".as_bytes().to_vec(),
        b"\x1b[200~pasted\r\nlines\ttab\x1b[201~\r".to_vec(),
        b"\x1b[A\x1b[<0;10;5M\x1b]11;rgb:0000/0000/0000\x07\x1bOP\x1b[M abc\x1b\x1bx".to_vec(),
        b"\x1b[I\x1b[O\x1b[?1;2c\x1b[12;40R\x1bP1$r0m\x1b\\q".to_vec(),
    ];
    fuzz(Target {
        name: "mock-agent-input",
        seeds,
        iters: 30_000,
        max_len: 16 << 10,
        mutate: mutate_bytes,
        run: &run,
    });
}

#[test]
fn fuzz_attach_frames() {
    use crate::ipc::attach::Frame;
    use crate::store::registry::Size;
    let run = |input: &[u8]| {
        let mut reader = input;
        let mut total = 0;
        loop {
            // A byte slice never makes a read wait: the future is ready
            // at its first poll.
            let mut read = std::pin::pin!(Frame::read(&mut reader));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let std::task::Poll::Ready(result) = read.as_mut().poll(&mut cx) else {
                panic!("a frame read from memory waited");
            };
            match result {
                Ok(Some(Frame::Input(bytes))) => total += 5 + bytes.len(),
                Ok(Some(Frame::Resize(_))) => total += 9,
                Ok(None) | Err(_) => break,
            }
        }
        assert!(total <= input.len());
        total > 0
    };
    let seeds = vec![
        [
            Frame::Input(b"hello\r".to_vec()),
            Frame::Resize(Size { cols: 132, rows: 43 }),
            Frame::Input("é\x1b[A".as_bytes().to_vec()),
            Frame::Input(Vec::new()),
        ]
        .iter()
        .flat_map(Frame::encode)
        .collect(),
    ];
    fuzz(Target {
        name: "attach-frames",
        seeds,
        iters: 60_000,
        max_len: 16 << 10,
        mutate: mutate_bytes,
        run: &run,
    });
}

/// Every crash file is replayed by its target: a file in a directory no
/// target reads would be a regression test that never runs.
#[test]
fn every_fuzz_fixture_directory_has_a_target() {
    let targets = [
        "codex-app-server",
        "claude-stream-json",
        "inbox",
        "events",
        "control-api",
        "config",
        "adapter-profile",
        "chain",
        "mock-agent-input",
        "attach-frames",
        "acp",
    ];
    let source = include_str!("targets.rs");
    for name in targets {
        assert!(source.contains(&format!("name: \"{name}\"")), "{name} is not a target");
    }
    for entry in std::fs::read_dir(repo("tests/fixtures/fuzz")).unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap();
        assert!(targets.contains(&name.as_str()), "tests/fixtures/fuzz/{name} has no target");
    }
}
