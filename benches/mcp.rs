//! What a tool call through `reins mcp` costs, against the same operation
//! through the command line, on the real release binary and a mock
//! session:
//!
//! - `session_status` over MCP (a JSON-RPC request on the server's stdin
//!   → its answer on stdout) against `reins status --id ID --json` (a
//!   process run to its end);
//! - `send_message` (following the message until its turn started:
//!   verified delivery) against `reins send`, each followed by a wait for
//!   the turn's end that is not timed, so every send finds the agent
//!   ready;
//! - `send_message` with `follow: "none"` against `reins send --no-wait`:
//!   the call alone, without the agent's own latency.
//!
//! Median and p99 of each. `cargo bench --bench mcp`; results go to
//! `benches/results/<date>-mcp.md`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{Row, World, median, ms, p99, report};

/// Status calls timed, each way.
const STATUS: usize = 300;
/// Sends timed, each way and each kind.
const SENDS: usize = 60;

fn main() {
    let world = World::new();
    world.start("b1", &["--work", "0.05"]);
    world.wait_ready("b1");
    let mut mcp = Client::start(&world);
    let mut rows = Vec::new();

    // session_status
    let over_mcp = times(STATUS, || {
        let answer = mcp.call("session_status", json!({"id": "b1"}));
        assert_eq!(answer["structuredContent"]["id"], "b1", "{answer}");
    });
    let over_cli = times(STATUS, || {
        let (_, out) = world.timed(&["status", "--id", "b1", "--json"]);
        assert_eq!(out[0]["id"], "b1");
    });
    rows.extend(compare("session_status", &over_mcp, "reins status --id --json", &over_cli));

    // send_message, verified delivery (the agent's turn seen starting).
    let mut n = 0;
    let mut sends_mcp = Vec::new();
    let mut sends_cli = Vec::new();
    for _ in 0..SENDS {
        n += 1;
        let t = Instant::now();
        let sent = mcp.call("send_message", json!({"id": "b1", "text": format!("task {n}")}));
        sends_mcp.push(t.elapsed());
        assert_eq!(sent["structuredContent"]["status"], "delivered", "{sent}");
        turn_done(&world, &sent["structuredContent"]);
        n += 1;
        let (took, sent) = world.timed(&["send", "--id", "b1", &format!("task {n}")]);
        sends_cli.push(took);
        assert_eq!(sent["status"], "delivered", "{sent}");
        turn_done(&world, &sent);
    }
    rows.extend(compare(
        "send_message (until delivered)",
        &sends_mcp,
        "reins send (until delivered)",
        &sends_cli,
    ));

    // The call alone: queued, not followed.
    let mut queued_mcp = Vec::new();
    let mut queued_cli = Vec::new();
    for _ in 0..SENDS {
        n += 1;
        let t = Instant::now();
        let sent = mcp.call(
            "send_message",
            json!({"id": "b1", "text": format!("task {n}"), "follow": "none"}),
        );
        queued_mcp.push(t.elapsed());
        turn_done(&world, &sent["structuredContent"]);
        n += 1;
        let (took, sent) = world.timed(&["send", "--id", "b1", "--no-wait", &format!("task {n}")]);
        queued_cli.push(took);
        turn_done(&world, &sent);
    }
    rows.extend(compare(
        "send_message, follow none",
        &queued_mcp,
        "reins send --no-wait",
        &queued_cli,
    ));
    drop(mcp);
    world.reins(&["stop", "--id", "b1"]);
    report("mcp", &rows);
}

/// Runs `f` `n` times; how long each took.
fn times(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect()
}

/// Median and p99 of both ways, and whether MCP's median beat the CLI's.
fn compare(mcp: &str, over_mcp: &[Duration], cli: &str, over_cli: &[Duration]) -> Vec<Row> {
    let (m_med, m_p99) = (median(over_mcp.to_vec()), p99(over_mcp.to_vec()));
    let (c_med, c_p99) = (median(over_cli.to_vec()), p99(over_cli.to_vec()));
    vec![
        Row::checked(
            format!("{mcp} over MCP ({} calls)", over_mcp.len()),
            format!("median {}, p99 {}", ms(m_med), ms(m_p99)),
            "median below the CLI's",
            m_med < c_med,
        ),
        Row::measured(
            format!("{cli} ({} runs)", over_cli.len()),
            format!("median {}, p99 {}", ms(c_med), ms(c_p99)),
        ),
    ]
}

/// Waits (untimed) until the turn a send started, or the queued message's
/// turn, is over, so the next send finds the agent ready.
fn turn_done(world: &World, sent: &Value) {
    let message = sent["message_id"].as_str().expect("a message id");
    let out = world.reins(&["wait", "--id", "b1", "--message", message, "--timeout", "30s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A JSON-RPC client on `reins mcp`'s stdio.
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Client {
    fn start(world: &World) -> Client {
        let mut child = world
            .command(&["mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start reins mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut client = Client { child, stdin, stdout, next_id: 1 };
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        });
        client.request("initialize", params);
        writeln!(client.stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#)
            .unwrap();
        client
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "reins mcp closed stdout");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == json!(id) && message.get("method").is_none() {
                return message;
            }
        }
    }

    /// `tools/call`; the result.
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        answer.get("result").cloned().unwrap_or_else(|| panic!("{tool}: {answer}"))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
