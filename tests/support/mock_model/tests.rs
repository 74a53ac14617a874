//! The mock over real TCP: one test per provider and behaviour, through a
//! minimal HTTP/1.1 client so the exact bytes on the wire are checked.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MockConfig, MockModel};

/// A response as received.
struct Reply {
    status: u16,
    /// The status line without the line ending.
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Every byte received.
    raw: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The SSE events: (event name, data).
    fn events(&self) -> Vec<(Option<String>, String)> {
        let text = self.text();
        assert!(text.ends_with("\n\n"), "SSE body ends with a blank line: {text:?}");
        text.trim_end_matches('\n')
            .split("\n\n")
            .map(|block| {
                let mut event = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event = Some(name.to_owned());
                    } else if let Some(payload) = line.strip_prefix("data: ") {
                        data = Some(payload.to_owned());
                    } else {
                        panic!("unexpected SSE line {line:?}");
                    }
                }
                (event, data.expect("every event has data"))
            })
            .collect()
    }

    /// The event names, with the data's `type` checked against them.
    fn event_names(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .map(|(event, data)| {
                let event = event.expect("named event");
                let data: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(data["type"], event.as_str());
                event
            })
            .collect()
    }

    /// Every event's data as JSON.
    fn datas(&self) -> Vec<Value> {
        self.events().into_iter().map(|(_, d)| serde_json::from_str(&d).unwrap()).collect()
    }
}

/// Sends one request with `Connection: close` and reads to end of stream.
fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        stream.write_all(body.as_bytes()).unwrap();
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(raw)
}

fn parse_reply(raw: Vec<u8>) -> Reply {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head") + 4;
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.trim_end().split("\r\n");
    let status_line = lines.next().unwrap().to_owned();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let body = raw[end..].to_vec();
    Reply { status, status_line, headers, body, raw }
}

fn post(mock: &MockModel, path: &str, body: &Value) -> Reply {
    send(mock.port(), "POST", path, &[], Some(&body.to_string()))
}

fn mock() -> MockModel {
    MockModel::start(None).unwrap()
}

/// A Codex-like Responses request: developer message, environment context,
/// the prompt, and the shell tool codex offers.
fn codex_request(prompt: &str, tools: &[&str]) -> Value {
    let tools: Vec<Value> = tools
        .iter()
        .map(|name| json!({"type": "function", "name": name, "parameters": {}}))
        .collect();
    json!({
        "model": "mock-model",
        "stream": true,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be good"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "# AGENTS.md instructions"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]},
        ],
        "tools": tools,
    })
}

#[test]
fn responses_stream_text_events_in_order() {
    let mock = mock();
    let reply = post(&mock, "/v1/responses", &codex_request("say hello", &["exec_command"]));
    assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(reply.header("content-length"), None, "close-delimited, like Python");
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(
        reply.event_names(),
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let datas = reply.datas();
    let deltas: String = datas.iter().filter_map(|d| d["delta"].as_str()).collect();
    assert_eq!(deltas, "MOCK_OK (you said: say hello)");
    let msg_id = datas[1]["item"]["id"].as_str().unwrap();
    assert!(msg_id.starts_with("msg_") && msg_id.len() == 4 + 24);
    assert_eq!(datas[2]["item_id"], msg_id);
    assert_eq!(
        datas[8]["item"],
        json!({"type": "message", "role": "assistant", "id": msg_id, "status": "completed",
               "content": [{"type": "output_text", "text": "MOCK_OK (you said: say hello)", "annotations": []}]})
    );
    let resp_id = datas[0]["response"]["id"].as_str().unwrap();
    assert!(resp_id.starts_with("resp_"));
    assert_eq!(
        datas[9]["response"],
        json!({"id": resp_id, "status": "completed", "usage": {
            "input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 105}})
    );
    // Python's json.dumps spacing and key order.
    let (_, first_delta) = &reply.events()[3];
    assert_eq!(
        first_delta,
        &format!(
            r#"{{"type": "response.output_text.delta", "item_id": "{msg_id}", "output_index": 0, "content_index": 0, "delta": "MOCK_OK "}}"#
        )
    );
}

#[test]
fn responses_tool_calls_follow_the_offered_shell_tool() {
    let mock = mock();
    let call = |prompt: &str, tools: &[&str]| {
        let reply = post(&mock, "/v1/responses", &codex_request(prompt, tools));
        assert_eq!(
            reply.event_names(),
            [
                "response.created",
                "response.output_item.added",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let datas = reply.datas();
        assert_eq!(datas[1]["item"]["arguments"], "");
        assert_eq!(datas[1]["item"]["status"], "in_progress");
        assert_eq!(datas[3]["response"]["usage"]["output_tokens"], 10);
        assert_eq!(datas[3]["response"]["usage"]["total_tokens"], 110);
        let item = datas[2]["item"].clone();
        assert_eq!(item["type"], "function_call");
        assert_eq!(item["status"], "completed");
        assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
        assert!(item["id"].as_str().unwrap().starts_with("fc_"));
        assert_eq!(datas[1]["item"]["call_id"], item["call_id"]);
        (item["name"].as_str().unwrap().to_owned(), item["arguments"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        call("[[run:echo hi]] go", &["exec_command", "write_stdin"]),
        ("exec_command".to_owned(), r#"{"cmd": "echo hi"}"#.to_owned())
    );
    assert_eq!(
        call("[[runx:touch f]] go", &["exec_command"]),
        (
            "exec_command".to_owned(),
            r#"{"cmd": "touch f", "sandbox_permissions": "require_escalated", "justification": "Mock model wants to run: touch f"}"#
                .to_owned()
        )
    );
    assert_eq!(
        call("[[run:ls]]", &["shell_command"]),
        ("shell_command".to_owned(), r#"{"command": "ls"}"#.to_owned())
    );
    assert_eq!(
        call("[[run:ls]]", &["shell"]),
        ("shell".to_owned(), r#"{"command": ["bash", "-lc", "ls"]}"#.to_owned())
    );

    // A side request without shell tools (title generation) gets text.
    let reply =
        post(&mock, "/v1/responses", &codex_request("[[run:ls]] title please", &["web_search"]));
    let text = reply.datas().iter().filter_map(|d| d["delta"].as_str()).collect::<String>();
    assert_eq!(text, "MOCK_OK (you said: title please)");
    assert_eq!(mock.requests().last().unwrap()["kind"], "text");
}

#[test]
fn responses_answer_the_tool_output_and_accept_plain_string_input() {
    let mock = mock();
    let mut body = codex_request("[[run:echo hi]] go", &["exec_command"]);
    let input = body["input"].as_array_mut().unwrap();
    input.push(json!({"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": "{}"}));
    input.push(
        json!({"type": "function_call_output", "call_id": "call_1", "output": "hi\n  there"}),
    );
    let reply = post(&mock, "/v1/responses", &body);
    let done = &reply.datas()[reply.datas().len() - 2];
    assert_eq!(done["item"]["content"][0]["text"], "Tool finished. Output: hi there");

    // Non-string output is echoed as Python's json.dumps, in the sender's key order.
    let input = body["input"].as_array_mut().unwrap();
    input.pop();
    let raw = r#"{"input": [{"type": "message", "role": "user", "content": "[[run:x]]"},
        {"type": "custom_tool_call_output", "output": [{"type": "input_text", "text": "é"}]}],
        "tools": [{"name": "exec_command"}]}"#;
    let reply = send(mock.port(), "POST", "/v1/responses", &[], Some(raw));
    let done = &reply.datas()[reply.datas().len() - 2];
    assert_eq!(
        done["item"]["content"][0]["text"],
        r#"Tool finished. Output: [{"type": "input_text", "text": "\u00e9"}]"#
    );

    let reply = post(&mock, "/v1/responses", &json!({"input": "plain [[wait:0]] string"}));
    let text = reply.datas().iter().filter_map(|d| d["delta"].as_str()).collect::<String>();
    assert_eq!(text, "MOCK_OK (you said: plain string)");
}

#[test]
fn chat_completions_json_and_stream() {
    let mock = mock();
    let body = json!({"model": "m1", "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "chat"}]},
    ]});
    let reply = post(&mock, "/v1/chat/completions", &body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("content-length"), Some(reply.body.len().to_string().as_str()));
    let answer = reply.json();
    assert!(answer["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(answer["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["model"], "m1");
    assert_eq!(
        answer["choices"],
        json!([{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "MOCK_OK (you said: hello chat)"}}])
    );
    assert_eq!(
        answer["usage"],
        json!({"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105})
    );

    // Raw text: `json!` would sort the keys the mock echoes back.
    let body = r#"{"model": "m1", "stream": true, "messages": [{"role": "user", "content": "hi"},
        {"role": "tool", "content": [{"type": "text", "text": "x"}]}]}"#;
    let reply = send(mock.port(), "POST", "/v1/chat/completions", &[], Some(body));
    let events = reply.events();
    assert!(events.iter().all(|(event, _)| event.is_none()));
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(
        chunks.last().unwrap()["choices"][0],
        json!({"index": 0, "delta": {}, "finish_reason": "stop"})
    );
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    // A non-string tool message is echoed as Python's str().
    assert_eq!(text, "Tool finished. Output: [{'type': 'text', 'text': 'x'}]");
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "m1"));
}

#[test]
fn chat_completions_tool_calls_follow_the_offered_shell_tool() {
    let mock = mock();
    let tool =
        |name: &str| json!({"type": "function", "function": {"name": name, "parameters": {}}});
    let request = |tools: Vec<Value>, stream: bool| {
        json!({"model": "m1", "stream": stream, "tools": tools,
               "messages": [{"role": "user", "content": "[[run:touch x.txt]] go"}]})
    };
    // OpenCode offers `bash`, Qwen Code `run_shell_command`.
    for name in ["bash", "run_shell_command"] {
        let answer =
            post(&mock, "/v1/chat/completions", &request(vec![tool("read"), tool(name)], false))
                .json();
        let choice = &answer["choices"][0];
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], Value::Null);
        let call = &choice["message"]["tool_calls"][0];
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], name);
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"command": "touch x.txt", "description": "mock command"}));
    }

    let reply = post(&mock, "/v1/chat/completions", &request(vec![tool("bash")], true));
    let events = reply.events();
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks.len(), 3);
    let call = &chunks[1]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["function"]["name"], "bash");
    assert_eq!(
        chunks[2]["choices"][0],
        json!({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
    );

    // No shell tool offered (OpenCode's title request): text, markers stripped.
    let answer = post(&mock, "/v1/chat/completions", &request(vec![], false)).json();
    assert_eq!(answer["choices"][0]["message"]["content"], "MOCK_OK (you said: go)");
    // The tool's result comes back as a `tool` message: text.
    let body = json!({"model": "m1", "tools": [tool("bash")], "messages": [
        {"role": "user", "content": "[[run:touch x.txt]] go"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "(no output)"},
    ]});
    let answer = post(&mock, "/v1/chat/completions", &body).json();
    assert_eq!(answer["choices"][0]["message"]["content"], "Tool finished. Output: (no output)");
    let kinds: Vec<String> =
        mock.requests().iter().map(|r| r["kind"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(kinds, ["tool_call", "tool_call", "tool_call", "text", "text"]);
}

fn claude_request(messages: Value, tools: &[&str], stream: bool) -> Value {
    let tools: Vec<Value> =
        tools.iter().map(|name| json!({"name": name, "input_schema": {}})).collect();
    json!({"model": "claude-opus-4-8", "max_tokens": 64000, "stream": stream, "messages": messages, "tools": tools})
}

#[test]
fn anthropic_streams_text_and_skips_system_reminders() {
    let mock = mock();
    let messages = json!([
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>ignore me</system-reminder>"},
            {"type": "text", "text": "hello claude [[wait:0.1]]"},
            {"type": "text", "text": "  <system-reminder>and me</system-reminder>"},
        ]},
        {"role": "system", "content": "mid-conversation system"},
    ]);
    let reply =
        post(&mock, "/v1/messages?beta=true", &claude_request(messages, &["Bash", "Read"], true));
    assert_eq!(
        reply.event_names(),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let datas = reply.datas();
    let message = &datas[0]["message"];
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["model"], "claude-opus-4-8");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 100, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    assert_eq!(datas[1]["content_block"], json!({"type": "text", "text": ""}));
    let text: String = datas.iter().filter_map(|d| d["delta"]["text"].as_str()).collect();
    assert_eq!(text, "MOCK_OK (you said: hello claude)");
    assert_eq!(
        datas[9],
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 5}})
    );
}

#[test]
fn anthropic_tool_use_and_its_result() {
    let mock = mock();
    let ask = json!([{"role": "user", "content": "[[run:echo hi-from-bash]] run it"}]);
    let reply = post(&mock, "/v1/messages", &claude_request(ask.clone(), &["Bash"], true));
    assert_eq!(
        reply.event_names(),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let datas = reply.datas();
    let block = &datas[1]["content_block"];
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(
        (&block["type"], &block["name"], &block["input"]),
        (&json!("tool_use"), &json!("Bash"), &json!({}))
    );
    assert_eq!(
        datas[2]["delta"],
        json!({"type": "input_json_delta", "partial_json": r#"{"command": "echo hi-from-bash", "description": "mock command"}"#})
    );
    assert_eq!(datas[4]["delta"]["stop_reason"], "tool_use");
    assert_eq!(datas[4]["usage"]["output_tokens"], 20);

    // Without a Bash tool (a title request) the answer is text.
    let reply = post(&mock, "/v1/messages", &claude_request(ask.clone(), &[], true));
    assert_eq!(reply.datas()[1]["content_block"]["type"], "text");

    let follow_up = json!([
        {"role": "user", "content": "[[run:echo hi-from-bash]] run it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hi-from-bash"}]}]},
    ]);
    let reply = post(&mock, "/v1/messages", &claude_request(follow_up, &["Bash"], true));
    let text: String = reply.datas().iter().filter_map(|d| d["delta"]["text"].as_str()).collect();
    assert_eq!(text, "Tool finished. Output: hi-from-bash");

    // Non-streaming.
    let reply = post(&mock, "/v1/messages", &claude_request(ask, &["Bash"], false));
    let answer = reply.json();
    assert_eq!(answer["stop_reason"], "tool_use");
    assert_eq!(
        answer["content"][0]["input"],
        json!({"command": "echo hi-from-bash", "description": "mock command"})
    );
    assert_eq!(answer["usage"]["output_tokens"], 5);
    let title = json!([{"role": "user", "content": "<session>x</session> Write the title"}]);
    let answer = post(&mock, "/v1/messages", &claude_request(title, &[], false)).json();
    assert_eq!(
        answer,
        json!({"id": answer["id"], "type": "message", "role": "assistant", "model": "claude-opus-4-8",
               "content": [{"type": "text", "text": "MOCK_OK (you said: <session>x</session> Write the title)"}],
               "stop_reason": "end_turn", "stop_sequence": null,
               "usage": {"input_tokens": 100, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
    );
    let count = post(&mock, "/v1/messages/count_tokens?beta=true", &json!({"messages": []}));
    assert_eq!(count.text(), r#"{"input_tokens": 42}"#);
}

fn gemini_request(prompt: &str) -> Value {
    json!({"contents": [
        {"role": "user", "parts": [{"text": "<session_context>ctx</session_context>"}]},
        {"role": "user", "parts": [{"text": "thinking", "thought": true}, {"text": prompt}]},
    ], "tools": [{"functionDeclarations": [{"name": "read_file"}]}]})
}

#[test]
fn gemini_streams_text_chunks_without_event_names() {
    let mock = mock();
    let path = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse";
    let reply = post(&mock, path, &gemini_request("hello gemini"));
    let events = reply.events();
    assert_eq!(events.len(), 5);
    assert!(events.iter().all(|(event, _)| event.is_none()));
    let datas = reply.datas();
    let text: String = datas
        .iter()
        .map(|d| d["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "MOCK_OK (you said: hello gemini)");
    for (i, data) in datas.iter().enumerate() {
        let candidate = &data["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model");
        assert_eq!(candidate["index"], 0);
        assert_eq!(
            candidate.get("finishReason").is_some(),
            i == 4,
            "finishReason only on the last chunk"
        );
        assert_eq!(data["modelVersion"], "gemini-2.5-pro");
        assert_eq!(
            data["usageMetadata"],
            json!({"promptTokenCount": 100, "candidatesTokenCount": 5, "totalTokenCount": 105})
        );
        assert!(data["responseId"].as_str().unwrap().starts_with("gem_"));
    }
    assert_eq!(datas[4]["candidates"][0]["finishReason"], "STOP");

    // A tool call is one event (Python does not check the offered tools).
    let reply = post(&mock, path, &gemini_request("[[run:touch x]] go"));
    let datas = reply.datas();
    assert_eq!(datas.len(), 1);
    assert_eq!(
        datas[0]["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"name": "run_shell_command", "args": {"command": "touch x", "description": "mock"}}}])
    );
    assert_eq!(mock.requests().last().unwrap()["kind"], "tool_call");

    let follow_up = json!({"contents": [
        {"role": "user", "parts": [{"text": "[[run:touch x]] go"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "run_shell_command", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command", "response": {"output": "done"}}}]},
    ]});
    let reply = post(&mock, path, &follow_up);
    let text: String = reply
        .datas()
        .iter()
        .map(|d| d["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, r#"Tool finished. Output: {"output": "done"}"#);
}

#[test]
fn gemini_generate_content_json_mode_and_count_tokens() {
    let mock = mock();
    // Raw text: the instance follows the schema's key order, which `json!` would sort.
    let raw = r#"{"contents": [{"role": "user", "parts": [{"text": "classify this"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
            "type": "object", "properties": {
                "reasoning": {"type": "string"}, "model_choice": {"type": "string", "enum": ["flash", "pro"]}}}}}"#;
    let reply = send(
        mock.port(),
        "POST",
        "/v1beta/models/gemini-3.5-flash-lite:generateContent",
        &[],
        Some(raw),
    );
    let answer = reply.json();
    assert_eq!(
        answer["candidates"][0],
        json!({"content": {"role": "model", "parts": [{"text": r#"{"reasoning": "mock", "model_choice": "flash"}"#}]},
               "index": 0, "finishReason": "STOP"})
    );
    assert_eq!(answer["modelVersion"], "gemini-3.5-flash-lite");
    assert_eq!(mock.requests().last().unwrap()["kind"], "json");

    let mut body = gemini_request("classify this");
    body["generationConfig"] = json!({"responseMimeType": "application/json"});
    let answer = post(&mock, "/v1beta/models/m:generateContent", &body).json();
    assert_eq!(answer["candidates"][0]["content"]["parts"][0]["text"], "{}");

    let answer = post(&mock, "/v1beta/models/m:generateContent", &gemini_request("plain")).json();
    assert_eq!(answer["candidates"][0]["content"]["parts"][0]["text"], "MOCK_OK (you said: plain)");

    let count = post(&mock, "/v1beta/models/m:countTokens", &json!({}));
    assert_eq!(count.text(), r#"{"totalTokens": 42}"#);
}

#[test]
fn error_marker_uses_each_providers_error_body() {
    let mock = mock();
    let reply = post(&mock, "/v1/responses", &codex_request("[[error:500]] fail", &[]));
    assert_eq!(reply.status_line, "HTTP/1.1 500 Internal Server Error");
    assert_eq!(
        reply.text(),
        r#"{"error": {"message": "mock error 500", "type": "server_error", "code": null}}"#
    );
    let reply = post(
        &mock,
        "/v1/messages",
        &claude_request(json!([{"role": "user", "content": "[[error:429]]"}]), &[], true),
    );
    assert_eq!(reply.status_line, "HTTP/1.1 429 Too Many Requests");
    assert_eq!(
        reply.json(),
        json!({"type": "error", "error": {"type": "api_error", "message": "mock error 429"}})
    );
    let reply = post(
        &mock,
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        &gemini_request("[[error:400]]"),
    );
    assert_eq!(reply.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        reply.json(),
        json!({"error": {"code": 400, "message": "mock error 400", "status": "INTERNAL"}})
    );
    let reply = post(
        &mock,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "[[error:599]]"}]}),
    );
    assert_eq!(
        reply.status_line, "HTTP/1.1 599 ",
        "unknown codes have an empty reason, as in Python"
    );
    let entry = mock.requests().last().unwrap().clone();
    assert_eq!((entry["status"].as_u64(), entry["kind"].as_str()), (Some(599), Some("error")));
}

#[test]
fn generic_routes_head_and_unsupported_methods() {
    let mock = mock();
    let get = |path: &str| send(mock.port(), "GET", path, &[], None);
    let models = get("/v1/models?client_version=1");
    assert_eq!(
        models.text(),
        r#"{"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}], "models": []}"#
    );
    assert_eq!(get("/v1beta/models").text(), r#"{"models": [{"name": "models/gemini-2.5-pro"}]}"#);
    for path in ["/", "/health", "/healthz"] {
        assert_eq!(get(path).text(), r#"{"ok": true}"#);
    }
    let missing = get("/nope?x=1");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), r#"{"error": {"message": "mock: no GET /nope"}}"#);
    let missing = post(&mock, "/v2/other", &json!({}));
    assert_eq!(missing.text(), r#"{"error": {"message": "mock: no POST /v2/other"}}"#);
    assert_eq!(post(&mock, "/api/event_logging/batch", &json!({})).text(), "{}");
    assert_eq!(post(&mock, "/v1/telemetry/x", &json!({})).text(), "{}");

    let head = send(mock.port(), "HEAD", "/", &[], None);
    assert_eq!(head.status_line, "HTTP/1.1 200 OK");
    assert_eq!(head.header("content-length"), Some("0"));
    assert!(head.body.is_empty());
    let names: Vec<&str> = head.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["Server", "Date", "content-length"]);
    assert!(head.header("Date").unwrap().ends_with(" GMT"));

    let put = send(mock.port(), "PUT", "/v1/x", &[], None);
    assert_eq!(put.status_line, "HTTP/1.1 501 Unsupported method ('PUT')");
    assert_eq!(put.header("Connection"), Some("close"));
    assert_eq!(put.header("Content-Type"), Some("text/html;charset=utf-8"));
    assert!(put.text().contains("<p>Message: Unsupported method ('PUT').</p>"), "{}", put.text());
    assert!(
        put.text().contains(
            "<p>Error code explanation: 501 - Server does not support this operation.</p>"
        )
    );
}

#[test]
fn exact_bytes_of_a_json_response() {
    let mock = mock();
    let reply = post(&mock, "/v1/messages/count_tokens", &json!({}));
    let raw = String::from_utf8(reply.raw.clone()).unwrap();
    let date = reply.header("Date").unwrap();
    assert_eq!(
        raw,
        format!(
            "HTTP/1.1 200 OK\r\nServer: mock-llm/1.0\r\nDate: {date}\r\ncontent-type: application/json\r\n\
             content-length: 20\r\n\r\n{{\"input_tokens\": 42}}"
        )
    );
}

#[test]
fn wait_and_slow_markers_delay_the_answer() {
    let mock = mock();
    let started = Instant::now();
    let reply = post(
        &mock,
        "/v1/messages",
        &claude_request(json!([{"role": "user", "content": "[[wait:0.4]] hi"}]), &[], true),
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(reply.status, 200);
    let entry = mock.requests().last().unwrap().clone();
    let arrived = entry["t"].as_f64().unwrap();
    let first: jiff::Timestamp = entry["first_byte_at"].as_str().unwrap().parse().unwrap();
    let first = first.as_millisecond() as f64 / 1000.0;
    assert!(first - arrived >= 0.39, "the head waits out [[wait:N]]: {first} - {arrived}");

    // [[slow:N]] spreads the 4 deltas of "MOCK_OK (you said: hi)" over N seconds.
    let reply = post(
        &mock,
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        &gemini_request("[[slow:0.4]] hi"),
    );
    assert_eq!(reply.events().len(), 4);
    let entry = mock.requests().last().unwrap().clone();
    let first: jiff::Timestamp = entry["first_byte_at"].as_str().unwrap().parse().unwrap();
    let last: jiff::Timestamp = entry["finished_at"].as_str().unwrap().parse().unwrap();
    let spread = last.as_millisecond() - first.as_millisecond();
    assert!(spread >= 390, "deltas spread over [[slow:0.4]]: {spread} ms");

    // No wait once the tool result is back.
    let started = Instant::now();
    let follow_up = json!([{"role": "user", "content": "[[wait:5]] [[run:x]]"},
        {"role": "user", "content": [{"type": "tool_result", "content": "ok"}]}]);
    post(&mock, "/v1/messages", &claude_request(follow_up, &["Bash"], true));
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn request_log_in_memory_and_as_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let mock = MockModel::start(Some(&log)).unwrap();
    let body = r#"{"model": "m", "stream": true, "input": "hi", "zeta": 1, "alpha": 2}"#;
    let headers = [
        ("Authorization", "Bearer sk-0123456789abcdef"),
        ("x-api-key", "short"),
        ("User-Agent", "codex_exec/0.169.0"),
        ("originator", "codex_exec"),
        ("X-Not-Logged", "nope"),
    ];
    send(mock.port(), "POST", "/v1/responses", &headers, Some(body));
    send(mock.port(), "GET", "/v1/models", &[], None);
    send(mock.port(), "POST", "/v1/messages", &[], Some("not json"));

    let entries = mock.requests();
    assert_eq!(entries.len(), 3);
    let first = &entries[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/responses");
    assert_eq!(
        first["headers"],
        json!({"authorization": "Bearer sk-01...", "x-api-key": "short...", "user-agent": "codex_exec/0.169.0",
               "originator": "codex_exec", "content-type": "application/json"})
    );
    assert_eq!(
        first["body"],
        json!({"model": "m", "stream": true, "input": "hi", "zeta": 1, "alpha": 2})
    );
    assert_eq!(
        (first["status"].as_u64(), &first["provider"], &first["kind"]),
        (Some(200), &json!("openai"), &json!("text"))
    );
    assert_eq!((&first["stream"], &first["aborted"]), (&json!(true), &json!(false)));
    let first_byte: jiff::Timestamp = first["first_byte_at"].as_str().unwrap().parse().unwrap();
    let finished: jiff::Timestamp = first["finished_at"].as_str().unwrap().parse().unwrap();
    assert!(first_byte <= finished);
    assert!(finished.as_millisecond() as f64 / 1000.0 >= first["t"].as_f64().unwrap() - 0.001);
    let stamp = first["finished_at"].as_str().unwrap();
    assert_eq!(
        stamp.len(),
        "2026-11-23T14:12:51.123Z".len(),
        "RFC 3339 with milliseconds: {stamp}"
    );
    assert_eq!(entries[1]["body"], Value::Null);
    assert_eq!(entries[1]["kind"], "models");
    assert_eq!(entries[2]["body"], json!({"_raw": "not json"}));

    // The file has the same entries, one line each, keys in Python's order
    // and the body in the client's order.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    for (line, entry) in lines.iter().zip(&entries) {
        let mut from_file: Value = serde_json::from_str(line).unwrap();
        let mut entry = entry.clone();
        // serde_json's default float parsing may be one ULP off.
        let t = from_file["t"].take().as_f64().unwrap() - entry["t"].take().as_f64().unwrap();
        assert!(t.abs() < 1e-6);
        assert_eq!(from_file, entry);
    }
    assert!(lines[0].starts_with(r#"{"t": "#), "{}", lines[0]);
    assert!(
        lines[0].contains(
            r#", "method": "POST", "path": "/v1/responses", "headers": {"authorization": "#
        )
    );
    assert!(lines[0].contains(
        r#""body": {"model": "m", "stream": true, "input": "hi", "zeta": 1, "alpha": 2}"#
    ));
}

#[test]
fn keep_alive_pipelining_and_expect_continue() {
    let mock = mock();
    let mut stream = TcpStream::connect(("127.0.0.1", mock.port())).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"messages": []}"#;
    let request = format!(
        "POST /v1/messages/count_tokens HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut buf = [0u8; 25];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).unwrap();
    // A second request on the same connection, then one that closes it.
    stream
        .write_all(
            b"GET /health HTTP/1.1\r\n\r\nGET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert!(
        text.contains(r#"{"input_tokens": 42}"#)
            && text.contains(r#"{"ok": true}"#)
            && text.ends_with(r#""models": []}"#)
    );
    assert_eq!(mock.requests().len(), 3);
}

#[test]
fn malformed_request_lines_get_pythons_answers() {
    let mock = mock();
    let raw = |request: &[u8]| {
        let mut stream = TcpStream::connect(("127.0.0.1", mock.port())).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request).unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    // Before a version is known Python answers with a bare error page.
    let bad = raw(b"GET / HTTX/1.1\r\n\r\n");
    assert!(bad.starts_with("<!DOCTYPE HTML>"), "{bad}");
    assert!(bad.contains("<p>Message: Bad request version ('HTTX/1.1').</p>"), "{bad}");
    let bad = raw(b"GET / x HTTP/1.1\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400 Bad request syntax ('GET / x HTTP/1.1')\r\n"), "{bad}");
    assert!(raw(b"\r\n").is_empty());
    assert!(mock.requests().is_empty(), "malformed requests are not logged");
}

#[test]
fn binds_loopback_and_stops_on_drop() {
    let mock = mock();
    let port = mock.port();
    assert_ne!(port, 0);
    assert_eq!(mock.base_url(), format!("http://127.0.0.1:{port}"));
    assert!(MockModel::start_on(port, None).is_err(), "the port is taken");
    // A request still waiting is cut off when the mock is dropped.
    let waiting = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let body = r#"{"messages": [{"role": "user", "content": "[[wait:60]]"}]}"#;
        let head =
            format!("POST /v1/messages HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        out
    });
    assert!(
        mock.wait_for_request(Duration::from_secs(10), |r| r["path"] == "/v1/messages").is_some()
    );
    let started = Instant::now();
    drop(mock);
    assert!(waiting.join().unwrap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after drop");
}

#[test]
fn reply_and_delay_options() {
    let config = MockConfig { reply: "HELLO".into(), delay: 0.3, ..MockConfig::default() };
    let mock = MockModel::start_with(config).unwrap();
    let started = Instant::now();
    let reply = post(
        &mock,
        "/v1/chat/completions",
        &json!({"stream": true, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let text: String = reply.events()[..reply.events().len() - 1]
        .iter()
        .filter_map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, "HELLO (you said: x)");
    let entry =
        mock.wait_for_request(Duration::from_secs(1), |r| !r["finished_at"].is_null()).unwrap();
    assert_eq!(entry["kind"], "text");
}

/// What the ACP agents (OpenCode, Qwen Code) need from the chat route:
/// usage in a last chunk when asked for it, Qwen's system reminders left
/// out of the prompt, and `[[fail:NNN]]` refused once as invalid.
#[test]
fn chat_completions_usage_reminders_and_a_failure_once() {
    let mock = mock();
    let body = json!({"model": "m1", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nskills: [[error:500]]"},
            {"type": "text", "text": "hello acp"}]}]});
    let reply = post(&mock, "/v1/chat/completions", &body);
    let events = reply.events();
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "MOCK_OK (you said: hello acp)", "the reminder is not the prompt");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105})
    );
    // Without the option, no usage chunk (as before).
    let plain = json!({"stream": true, "messages": [{"role": "user", "content": "x"}]});
    let reply = post(&mock, "/v1/chat/completions", &plain);
    assert!(!reply.text().contains("\"usage\""), "{}", reply.text());

    let failing = |text: &str| json!({"messages": [{"role": "user", "content": text}]});
    let reply = post(&mock, "/v1/chat/completions", &failing("[[fail:400]] boom"));
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    assert!(!reply.text().contains("server_error"), "not a server error: OpenCode retries those");
    // The same marker again (Qwen Code resends the failed prompt): answered.
    let reply = post(&mock, "/v1/chat/completions", &failing("[[fail:400]] boom after"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "MOCK_OK (you said: boom after)");
    let reply = post(
        &mock,
        "/v1beta/models/m:streamGenerateContent?alt=sse",
        &json!({"contents": [{"role": "user", "parts": [{"text": "[[fail:401]] go"}]}]}),
    );
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["error"]["status"], "INVALID_ARGUMENT");
}
