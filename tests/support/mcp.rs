//! Real MCP clients for the `reins mcp` tests: the MCP Inspector's
//! command-line client (pinned; `scripts/install-mcp-inspector`), which
//! starts `reins mcp` itself for each call, and a plain JSON-RPC client on
//! the server's stdio for what the inspector cannot do (progress
//! notifications, cancellation, tasks, a client that goes away mid-call).

#![allow(dead_code, reason = "each MCP test uses a different part of the clients")]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TestEnv, reins_bin, skip};

/// Where `scripts/install-mcp-inspector` puts the inspector's bin dir.
pub fn inspector_bin_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("REINS_MCP_INSPECTOR_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/mcp-inspector"),
    };
    let bin = dir.join("node_modules/.bin");
    (dir.join("installed.sha256").is_file() && bin.join("mcp-inspector-cli").exists())
        .then_some(bin)
}

/// The inspector's CLI, run in a test environment.
pub struct Inspector<'a> {
    env: &'a TestEnv,
    bin: PathBuf,
}

impl<'a> Inspector<'a> {
    /// The inspector, or a loud skip when it is not installed.
    pub fn new(env: &'a TestEnv) -> Option<Inspector<'a>> {
        let Some(dir) = inspector_bin_dir() else {
            skip("the MCP Inspector is not installed (scripts/install-mcp-inspector)");
            return None;
        };
        // inspector-cli 1.0.3 finds its own package.json by a path relative
        // to its working directory (`../package.json`, then
        // `../../package.json`, checked with existsSync but imported
        // relative to its module): with one beside the work directory the
        // first check passes and its real package.json is imported.
        std::fs::write(env.path().join("package.json"), "{}\n").unwrap();
        Some(Inspector { env, bin: dir.join("mcp-inspector-cli") })
    }

    /// The inspector's CLI program.
    pub fn bin_path(&self) -> PathBuf {
        self.bin.clone()
    }

    /// `mcp-inspector-cli --cli reins mcp ARGS` in the test's work
    /// directory and environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--cli").arg(reins_bin()).arg("mcp").args(args);
        cmd.current_dir(&self.env.work).env_clear().envs(self.env.env_vars());
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs it; (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command(args).output().expect("run the MCP inspector");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `tools/list`.
    #[track_caller]
    pub fn list_tools(&self) -> Value {
        self.json(&["--method", "tools/list"])
    }

    /// `tools/call TOOL` with `key=value` arguments (values that parse as
    /// JSON are sent as JSON); the result.
    #[track_caller]
    pub fn call(&self, tool: &str, args: &[&str]) -> Value {
        let mut argv = vec!["--method", "tools/call", "--tool-name", tool];
        if !args.is_empty() {
            argv.push("--tool-arg");
            argv.extend_from_slice(args);
        }
        self.json(&argv)
    }

    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "inspector {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}");
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("inspector printed no JSON ({e}): {stdout}\n{stderr}"))
    }
}

/// A JSON-RPC client on `reins mcp`'s stdin and stdout.
pub struct RawClient {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    next_id: u64,
    /// Messages read while looking for something else.
    pub seen: Vec<Value>,
}

impl RawClient {
    /// Starts `reins mcp` in the test environment and initializes it with
    /// these client capabilities.
    pub fn start(env: &TestEnv, capabilities: Value) -> RawClient {
        let mut child = env
            .command(&["mcp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start reins mcp");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("the server wrote a line that is not JSON ({e}): {line}")
                });
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut client =
            RawClient { child: Some(child), stdin, lines, next_id: 1, seen: Vec::new() };
        let init = client.request(
            "initialize",
            json!({
                "protocolVersion": "2025-11-25",
                "capabilities": capabilities,
                "clientInfo": {"name": "reins-test", "version": "1"},
            }),
        );
        let answer = client.response(init, Duration::from_secs(10));
        assert!(answer["result"]["serverInfo"]["name"] == "reins", "{answer}");
        client.notify("notifications/initialized", json!({}));
        client
    }

    pub fn send(&mut self, message: &Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{message}").expect("write to reins mcp");
        stdin.flush().unwrap();
    }

    /// Sends a request; its id.
    pub fn request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message from the server, if one comes within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Waits for the response to request `id`; what came before it is kept
    /// in `seen`.
    #[track_caller]
    pub fn response(&mut self, id: u64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(message) = self.next(left) else {
                panic!("no response to request {id} within {timeout:?}; seen: {:#?}", self.seen);
            };
            if message["id"] == json!(id) && message.get("method").is_none() {
                return message;
            }
            self.seen.push(message);
        }
    }

    /// `tools/call`; its id.
    pub fn call(&mut self, tool: &str, arguments: Value, meta: Option<Value>) -> u64 {
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        self.request("tools/call", params)
    }

    /// `tools/call` and its result (the response's `result`).
    #[track_caller]
    pub fn call_result(&mut self, tool: &str, arguments: Value) -> Value {
        let id = self.call(tool, arguments, None);
        let answer = self.response(id, Duration::from_secs(60));
        answer.get("result").cloned().unwrap_or_else(|| panic!("an error: {answer}"))
    }

    /// Closes the server's stdin: the client is gone.
    pub fn hang_up(&mut self) {
        self.stdin = None;
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// Waits for the server to exit; its exit code.
    #[track_caller]
    pub fn exits_within(&mut self, timeout: Duration) -> i32 {
        let mut child = self.child.take().expect("the server runs");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send((status, child));
        });
        match rx.recv_timeout(timeout) {
            Ok((status, _)) => status.unwrap().code().unwrap_or(-1),
            Err(_) => panic!("reins mcp did not exit within {timeout:?}"),
        }
    }
}

impl Drop for RawClient {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
