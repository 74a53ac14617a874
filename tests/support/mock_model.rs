//! A mock model server that the real agent CLIs (Codex, Claude Code, Gemini
//! CLI) talk to on 127.0.0.1 in the end-to-end tests: a faithful Rust port
//! of `reference/offline-kit/mock_llm.py`, which was proven against those
//! CLIs, so every answer matches it byte for byte (SSE event names, JSON
//! shapes and key order, Python's JSON spacing, headers, status codes).
//!
//! One server speaks three wire protocols:
//!
//! * OpenAI Responses `POST */responses` (SSE, Codex), Chat Completions
//!   `POST */chat/completions` (SSE or JSON), `GET */models`;
//! * Anthropic Messages `POST */messages[?beta=true]` (SSE or JSON, Claude
//!   Code), `POST */messages/count_tokens`, `HEAD /` (preconnect);
//! * Gemini `POST /v1beta/models/M:streamGenerateContent?alt=sse`,
//!   `:generateContent` (with the JSON-mode minimal schema instance),
//!   `:countTokens`.
//!
//! Markers in the last user prompt script the answer: `[[wait:N]]` (sleep
//! before answering), `[[slow:N]]` (spread the stream over N s),
//! `[[run:CMD]]` / `[[runx:CMD]]` (a shell tool call when the request
//! offers a shell tool; `runx` asks Codex for sandbox escalation), and
//! `[[error:NNN]]` (that HTTP status with the provider's error body),
//! `[[say:TEXT]]` (answer exactly TEXT; not in the Python mock),
//! `[[fail:NNN]]` (refuse the request as invalid, the first time only; not
//! in the Python mock), and
//! `[[tool:NAME {JSON}]]` (not in the Python mock either: a call of the
//! offered tool NAME, or `*__NAME` as agents name an MCP server's tools,
//! with those arguments; several run in order, one per response, each
//! after the previous one's result came back; Claude and Codex).
//! Otherwise the answer is `MOCK_OK (you said: <prompt>)`, or `Tool
//! finished. Output: ...` once a tool result comes back.
//!
//! Every request is logged (method, path, selected headers with keys cut
//! short, the full JSON body) in memory and optionally as JSON lines in a
//! file, together with when the first and the last byte of its response
//! were written and what the response was (provider, kind, status), for
//! latency measurements.

#![allow(
    dead_code,
    reason = "the integration tests and the example binary each use a different part of the API"
)]

#[path = "mock_model/http.rs"]
mod http;
#[path = "mock_model/json.rs"]
mod json;
#[path = "mock_model/local.rs"]
mod local;
#[path = "mock_model/providers.rs"]
mod providers;
#[cfg(test)]
#[path = "mock_model/tests.rs"]
mod tests;

use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;

use http::{Request, Responder};
use json::{Json, obj, py_str_repr};
use local::LocalHandle;
use providers::{Outcome, Settings};

/// Request headers kept in the log (Python's list).
const LOGGED_HEADERS: &[&str] = &[
    "user-agent",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
    "accept",
    "content-type",
    "originator",
    "session_id",
    "version",
    "upgrade",
];
/// Logged headers that carry a secret: only their first 12 characters stay.
const SECRET_HEADERS: &[&str] = &["authorization", "x-api-key", "x-goog-api-key"];

/// How to start a [`MockModel`] (the Python script's options).
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Also append every request as one JSON line to this file.
    pub log: Option<PathBuf>,
    /// First word of the default answer (`--reply`).
    pub reply: String,
    /// Seconds to spread each streamed answer over when the prompt has no
    /// `[[slow:N]]` marker (`--delay`).
    pub delay: f64,
    /// Print each request line and status to stderr (`-v`).
    pub verbose: bool,
}

impl Default for MockConfig {
    fn default() -> MockConfig {
        MockConfig { port: 0, log: None, reply: "MOCK_OK".to_owned(), delay: 0.0, verbose: false }
    }
}

/// A running mock model server; dropping it stops the server.
pub struct MockModel {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockModel {
    /// Starts on 127.0.0.1 with an ephemeral port, on its own thread (its
    /// own current-thread tokio runtime), logging to `log` if given.
    pub fn start(log: Option<&Path>) -> io::Result<MockModel> {
        MockModel::start_on(0, log)
    }

    /// Starts on 127.0.0.1:`port` (0 for an ephemeral one).
    pub fn start_on(port: u16, log: Option<&Path>) -> io::Result<MockModel> {
        MockModel::start_with(MockConfig {
            port,
            log: log.map(Path::to_path_buf),
            ..MockConfig::default()
        })
    }

    /// Starts with every option. Only ever binds the loopback address.
    pub fn start_with(config: MockConfig) -> io::Result<MockModel> {
        let listener =
            std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, config.port)))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let shared = Arc::new(Shared {
            settings: Settings::new(config.reply, config.delay),
            local: LocalHandle::default(),
            verbose: config.verbose,
            log: config.log,
            entries: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        });
        let (stop, stopped) = oneshot::channel();
        let server = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("mock-model-{port}"))
            .spawn(move || runtime.block_on(serve(listener, server, stopped)))?;
        Ok(MockModel { port, shared, stop: Some(stop), thread: Some(thread) })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, as JSON objects (same fields as the JSONL log;
    /// the response fields are null while it is still being answered).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.shared.lock().iter().map(|entry| entry.to_json().to_value()).collect()
    }

    /// Waits until a logged request satisfies `matches` (checked again on
    /// every new request and every finished response) and returns it; `None`
    /// after `timeout`.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut entries = self.shared.lock();
        loop {
            if let Some(found) =
                entries.iter().map(|entry| entry.to_json().to_value()).find(|v| matches(v))
            {
                return Some(found);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            entries = match self.shared.changed.wait_timeout(entries, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// The mock as a local model server (Ollama standing in; see `local.rs`).
impl MockModel {
    /// Serves exactly these models (all loaded unless the server is cold);
    /// requests for any other model are refused 404.
    pub fn set_models(&self, models: &[&str]) {
        let mut local = self.shared.local.lock();
        local.models = Some(models.iter().map(|m| m.to_string()).collect());
        if local.cold.is_none() {
            local.loaded = models.iter().map(|m| m.to_string()).collect();
        }
    }

    /// Unloads every model; loading one takes `load` on its first request.
    pub fn set_cold(&self, load: Duration) {
        let mut local = self.shared.local.lock();
        local.cold = Some(load);
        local.loaded.clear();
    }

    /// Every answer starts `delay` late.
    pub fn set_slow(&self, delay: Duration) {
        self.shared.local.lock().slow = delay;
    }

    /// Down: every connection is closed without an answer.
    pub fn set_down(&self, down: bool) {
        self.shared.local.lock().down = down;
    }

    /// Requests for `model` fail with HTTP 500 (its runner crashes).
    pub fn fail_model(&self, model: &str) {
        self.shared.local.lock().failing.insert(model.to_string());
    }

    /// The models loaded now.
    pub fn loaded(&self) -> Vec<String> {
        let mut loaded: Vec<String> = self.shared.local.lock().loaded.iter().cloned().collect();
        loaded.sort();
        loaded
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// State shared by the server thread and the handle.
struct Shared {
    settings: Settings,
    /// The mock as a local model server (see `local.rs`).
    local: LocalHandle,
    verbose: bool,
    log: Option<PathBuf>,
    entries: Mutex<Vec<Entry>>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs an arriving request; returns its index.
    fn record(&self, request: &Request, body: Option<&Json>) -> usize {
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in &request.headers {
            let name = name.to_lowercase();
            if !LOGGED_HEADERS.contains(&name.as_str()) {
                continue;
            }
            match headers.iter_mut().find(|(k, _)| *k == name) {
                Some(slot) => slot.1 = value.clone(),
                None => headers.push((name, value.clone())),
            }
        }
        for (name, value) in &mut headers {
            if SECRET_HEADERS.contains(&name.as_str()) {
                *value = format!("{}...", value.chars().take(12).collect::<String>());
            }
        }
        let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let entry = Entry {
            t,
            method: request.method.clone(),
            path: request.path.clone(),
            headers,
            body: body.cloned().unwrap_or(Json::Null),
            response: None,
        };
        let mut entries = self.lock();
        entries.push(entry);
        self.changed.notify_all();
        entries.len() - 1
    }

    /// Records how the response to entry `index` went and appends the
    /// entry to the JSONL log.
    fn finish(&self, index: usize, out: &Responder<'_>, outcome: Option<Outcome>) {
        let response = Response {
            status: out.status,
            outcome,
            first_byte_at: out.first_byte_at,
            finished_at: match outcome {
                Some(_) => out.last_byte_at.unwrap_or_else(Timestamp::now),
                None => Timestamp::now(),
            },
        };
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(index) else {
            return;
        };
        entry.response = Some(response);
        if let Some(path) = &self.log {
            // A short append under the lock keeps the lines in order; the
            // runtime only serves this mock, so the blocking write is fine.
            let line = format!("{}\n", entry.to_json().dumps());
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut file| file.write_all(line.as_bytes()));
            if let Err(err) = written {
                eprintln!("mock model: failed to append to {}: {err}", path.display());
            }
        }
        self.changed.notify_all();
    }
}

/// One logged request.
struct Entry {
    /// Arrival, seconds since the epoch (Python's `time.time()`).
    t: f64,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    /// The parsed JSON body (`{}` when empty, `{"_raw": text}` when not
    /// JSON); null for requests without a body.
    body: Json,
    /// Set once the response is over.
    response: Option<Response>,
}

struct Response {
    status: Option<u16>,
    /// `None` when writing failed (the client went away).
    outcome: Option<Outcome>,
    first_byte_at: Option<Timestamp>,
    finished_at: Timestamp,
}

impl Entry {
    fn to_json(&self) -> Json {
        let time = |ts: Option<Timestamp>| ts.map(|ts| format!("{ts:.3}"));
        let response = self.response.as_ref();
        let outcome = response.and_then(|r| r.outcome);
        obj! {
            "t" => self.t,
            "method" => &self.method,
            "path" => &self.path,
            "headers" => Json::Obj(
                self.headers.iter().map(|(k, v)| (k.clone(), Json::from(v))).collect(),
            ),
            "body" => &self.body,
            "status" => response.and_then(|r| r.status),
            "provider" => outcome.and_then(|o| o.provider),
            "kind" => outcome.map(|o| o.kind),
            "stream" => outcome.map(|o| o.stream),
            "first_byte_at" => time(response.and_then(|r| r.first_byte_at)),
            "finished_at" => time(response.map(|r| r.finished_at)),
            "aborted" => response.map(|r| r.outcome.is_none()),
        }
    }
}

/// Accepts connections until told to stop; dropping the runtime afterwards
/// cancels whatever is still being answered.
async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("mock model: failed to listen: {err}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors or similar: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Answers requests on one connection until either side closes it.
async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    // Each SSE event goes out as soon as it is written (Python leaves Nagle
    // on, which can only delay events; the bytes are the same).
    let _ = stream.set_nodelay(true);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    while let Ok(true) = one_request(&mut rd, &mut wr, &shared).await {}
    let _ = wr.shutdown().await;
}

/// Reads and answers one request; `Ok(true)` to keep the connection open.
async fn one_request(
    rd: &mut BufReader<OwnedReadHalf>,
    wr: &mut OwnedWriteHalf,
    shared: &Shared,
) -> io::Result<bool> {
    let mut out = Responder::new(wr, shared.verbose);
    let Some(request) = http::read_request(rd, &mut out).await? else {
        return Ok(false);
    };
    if shared.local.is_down() {
        return Ok(false);
    }
    let body = if request.method == "POST" {
        match http::read_body(rd, &request).await? {
            Some(raw) => Some(parse_body(&raw)),
            // A content-length that is not a number kills Python's handler.
            None => return Ok(false),
        }
    } else {
        None
    };
    let index = shared.record(&request, body.as_ref());
    let slow = shared.local.slow();
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    let local = match (request.method.as_str(), &body) {
        ("GET", _) => local::get(&shared.local, &request, &mut out).await,
        ("POST", Some(body)) => local::before_post(&shared.local, &request, body, &mut out).await,
        _ => Ok(None),
    };
    let answered = match (request.method.as_str(), &body, local) {
        (_, _, Err(err)) => Err(err),
        (_, _, Ok(Some(outcome))) => Ok(outcome),
        ("GET", _, _) => providers::get(&request, &mut out).await,
        ("HEAD", _, _) => providers::head_request(&mut out).await,
        ("POST", Some(body), _) => {
            providers::post(&request, body, &shared.settings, &mut out).await
        }
        (method, _, _) => {
            let message = format!("Unsupported method ({})", py_str_repr(method));
            let sent = out.send_error(501, Some(&message), None).await;
            sent.map(|()| Outcome { provider: None, kind: "unsupported", stream: false })
        }
    };
    shared.finish(index, &out, answered.as_ref().ok().copied());
    answered?;
    Ok(!out.close)
}

/// `_body`: `{}` when empty, the JSON, or `{"_raw": text}` when not JSON.
fn parse_body(raw: &[u8]) -> Json {
    if raw.is_empty() {
        return Json::Obj(Vec::new());
    }
    Json::parse(raw).unwrap_or_else(|| obj! {"_raw" => String::from_utf8_lossy(raw).into_owned()})
}
