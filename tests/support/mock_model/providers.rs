//! What the mock answers: the prompt markers (`Plan`) and the three wire
//! protocols, line for line after `mock_llm.py`'s handler methods.
//!
//! Where the Python would raise on a malformed body (an `input` item that
//! is not an object, a text that is not a string, ...) and drop the
//! connection, this port skips the odd value instead; the real CLIs never
//! send such bodies.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use regex::Regex;

use super::http::{Request, Responder};
use super::json::{Json, is_py_space, obj};

/// Server-wide answer settings (`--reply`, `--delay`).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The default answer's first word (`MOCK_OK`).
    pub(crate) reply: String,
    /// Seconds to spread each streamed answer over when there is no
    /// `[[slow:N]]` marker.
    pub(crate) delay: f64,
    /// The `[[fail:NNN]]` markers already answered with their failure:
    /// each fails once per server.
    failed: Arc<Mutex<HashSet<String>>>,
}

impl Settings {
    pub(crate) fn new(reply: String, delay: f64) -> Settings {
        Settings { reply, delay, failed: Arc::default() }
    }

    /// True the first time `marker` is seen by this server.
    fn first_failure(&self, marker: &str) -> bool {
        let mut failed = self.failed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failed.insert(marker.to_owned())
    }
}

/// What a response was, for the request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// `openai`, `anthropic`, `gemini`, or `None` for generic routes.
    pub(crate) provider: Option<&'static str>,
    /// `text`, `tool_call`, `json`, `error`, `count_tokens`, `models`,
    /// `health`, `head`, `telemetry`, `not_found` or `unsupported`.
    pub(crate) kind: &'static str,
    /// Whether the body was an event stream.
    pub(crate) stream: bool,
}

impl Outcome {
    fn new(provider: Option<&'static str>, kind: &'static str) -> Outcome {
        Outcome { provider, kind, stream: false }
    }

    fn streamed(provider: &'static str, kind: &'static str) -> Outcome {
        Outcome { provider: Some(provider), kind, stream: true }
    }
}

static SLOW: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[slow:([0-9]+(?:\.[0-9]+)?)\]\]"));
static WAIT: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[wait:([0-9]+(?:\.[0-9]+)?)\]\]"));
static ERROR: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[error:([0-9]{3})\]\]"));
static RUN: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[run(x?):(.+?)\]\]"));
static SAY: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[say:(.+?)\]\]"));
static LINES: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[lines:([0-9]{1,4})\]\]"));
static TOOL: LazyLock<Regex> =
    LazyLock::new(|| marker(r"\[\[tool:([A-Za-z0-9_.-]+)\s+(\{.*?\})\]\]"));
static RATELIMIT: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[ratelimit:([0-9]+)\]\]"));
static FAIL: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[fail:([0-9]{3})\]\]"));
static ANY_MARKER: LazyLock<Regex> = LazyLock::new(|| marker(r"\[\[.*?\]\]"));

fn marker(pattern: &str) -> Regex {
    Regex::new(pattern).expect("marker patterns are valid")
}

/// What the mock should answer for one request (Python's `Plan`).
struct Plan {
    prompt: String,
    tool_result: Option<String>,
    reply: String,
    slow: f64,
    wait: f64,
    /// `[[error:NNN]]`; `000` counts as none, as in Python.
    error: Option<u16>,
    /// `[[ratelimit:N]]`: a 429 whose limit resets in N seconds.
    ratelimit: Option<u64>,
    /// `[[fail:NNN]]` (not in the Python mock), the first time it is seen:
    /// the request is refused as invalid with HTTP NNN, an error the
    /// clients do not retry (`[[error:NNN]]` answers a server error, which
    /// OpenCode retries). Once only, because Qwen Code sends a prompt that
    /// failed again together with the next one.
    fail: Option<u16>,
    run: Option<String>,
    escalate: bool,
    /// `[[tool:NAME {ARGS}]]`, in order: the calls to make, one per
    /// response, of the offered tool called NAME (or `*__NAME`, as agents
    /// name the tools of an MCP server).
    tools: Vec<(String, String)>,
    /// How many tool results came back since the prompt: the next call is
    /// `tools[round]`.
    round: usize,
}

impl Plan {
    /// Reads the markers and sleeps out `[[wait:N]]` (not on the request
    /// that carries a tool result), as the Python constructor does.
    async fn new(prompt: Option<String>, tool_result: Option<String>, settings: &Settings) -> Plan {
        let prompt = prompt.unwrap_or_default();
        let number = |re: &Regex| re.captures(&prompt).and_then(|c| c[1].parse::<f64>().ok());
        let slow = number(&SLOW).unwrap_or(settings.delay);
        let wait = number(&WAIT).unwrap_or(0.0);
        let error = ERROR
            .captures(&prompt)
            .and_then(|c| c[1].parse::<u16>().ok())
            .filter(|code| *code != 0);
        let ratelimit = RATELIMIT.captures(&prompt).and_then(|c| c[1].parse::<u64>().ok());
        let fail = FAIL
            .captures(&prompt)
            .filter(|c| tool_result.is_none() && settings.first_failure(&c[0]))
            .and_then(|c| c[1].parse::<u16>().ok());
        let run_marker = RUN.captures(&prompt);
        let escalate = run_marker.as_ref().is_some_and(|c| !c[1].is_empty());
        let run = match (&run_marker, &tool_result) {
            (Some(c), None) => Some(c[2].to_owned()),
            _ => None,
        };
        let tools =
            TOOL.captures_iter(&prompt).map(|c| (c[1].to_owned(), c[2].to_owned())).collect();
        let plan = Plan {
            reply: settings.reply.clone(),
            prompt,
            tool_result,
            slow,
            wait,
            error,
            ratelimit,
            fail,
            run,
            escalate,
            tools,
            round: 0,
        };
        if plan.wait > 0.0 && plan.tool_result.is_none() {
            sleep(plan.wait).await;
        }
        plan
    }

    /// The scripted tool call due now, if its tool is offered: the
    /// offered name and the arguments.
    fn next_tool(&self, offered: &[&str]) -> Option<(String, Json)> {
        let offered: Vec<(Option<&str>, &str)> = offered.iter().map(|t| (None, *t)).collect();
        self.next_tool_in(&offered).map(|(_, name, args)| (name, args))
    }

    /// The same among tools that may sit in a namespace (Codex offers an
    /// MCP server's tools as one `namespace` tool): the namespace too.
    fn next_tool_in(
        &self,
        offered: &[(Option<&str>, &str)],
    ) -> Option<(Option<String>, String, Json)> {
        let (name, args) = self.tools.get(self.round)?;
        let suffix = format!("__{name}");
        let (namespace, offered) =
            offered.iter().find(|(_, t)| *t == name.as_str() || t.ends_with(&suffix))?;
        let args = Json::parse(args.as_bytes()).unwrap_or_else(|| Json::Obj(Vec::new()));
        Some((namespace.map(str::to_owned), (*offered).to_owned(), args))
    }

    fn text(&self) -> String {
        if let Some(result) = &self.tool_result {
            return format!("Tool finished. Output: {}", head(result, 200));
        }
        // `[[say:TEXT]]` (an extension of the Python mock): answer exactly TEXT.
        if let Some(said) = SAY.captures(&self.prompt) {
            return said[1].to_owned();
        }
        // `[[lines:N]]` (not in the Python mock either): N lines, `line 1
        // of N` to `line N of N`, for multi-line and longer-than-a-screen
        // answers.
        if let Some(n) = LINES.captures(&self.prompt).and_then(|c| c[1].parse::<u32>().ok()) {
            let lines: Vec<String> = (1..=n.max(1)).map(|i| format!("line {i} of {n}")).collect();
            return lines.join("\n");
        }
        let clean = ANY_MARKER.replace_all(&self.prompt, "");
        let clean = clean.trim_matches(is_py_space);
        format!("{} (you said: {})", self.reply, head(clean, 60))
    }

    /// `re.findall(r"\S+\s*", text) or [text]`: words with their trailing
    /// whitespace, one per streamed delta.
    fn chunks(&self) -> Vec<String> {
        let text = self.text();
        let mut chunks: Vec<String> = Vec::new();
        let mut current = String::new();
        let mut in_space = false;
        for c in text.chars() {
            if is_py_space(c) {
                if !current.is_empty() {
                    current.push(c);
                    in_space = true;
                }
            } else {
                if in_space {
                    chunks.push(std::mem::take(&mut current));
                    in_space = false;
                }
                current.push(c);
            }
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        if chunks.is_empty() {
            chunks.push(text);
        }
        chunks
    }

    async fn pause(&self, n_chunks: usize) {
        if self.slow > 0.0 && n_chunks > 0 {
            sleep(self.slow / n_chunks as f64).await;
        }
    }
}

async fn sleep(seconds: f64) {
    if let Ok(duration) = Duration::try_from_secs_f64(seconds) {
        tokio::time::sleep(duration).await;
    }
}

/// `head(text, n)`: whitespace runs collapsed to one space, cut to `n`
/// characters with `...`.
fn head(text: &str, n: usize) -> String {
    let words: Vec<&str> = text.split(is_py_space).filter(|w| !w.is_empty()).collect();
    let text = words.join(" ");
    if text.chars().count() <= n {
        return text;
    }
    let mut cut: String = text.chars().take(n - 3).collect();
    cut.push_str("...");
    cut
}

/// `prefix + uuid4().hex[:24]`.
fn rid(prefix: &str) -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(nanos);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    // The version and variant nibbles of a UUID4 fall inside the first 24.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", &hex[..24])
}

/// Python's `urlsplit(target).path`.
pub(crate) fn url_path(target: &str) -> &str {
    let mut url = target;
    if let Some(i) = url.find(':') {
        let scheme = &url[..i];
        let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if i > 0 && valid {
            url = &url[i + 1..];
        }
    }
    if let Some(rest) = url.strip_prefix("//") {
        url = rest.find(['/', '?', '#']).map_or("", |i| &rest[i..]);
    }
    if let Some(i) = url.find('#') {
        url = &url[..i];
    }
    if let Some(i) = url.find('?') {
        url = &url[..i];
    }
    url
}

/// Minimal JSON instance for a JSON schema (Gemini JSON-mode side calls).
fn schema_instance(schema: Option<&Json>, depth: usize) -> Json {
    let Some(schema) = schema.filter(|s| s.is_object() && depth <= 6) else {
        return Json::from("mock");
    };
    if let Some(values) = schema.get("enum").filter(|e| e.truthy()) {
        return match values {
            Json::Arr(items) => items[0].clone(),
            Json::Str(s) => Json::from(s.chars().next().map(String::from).unwrap_or_default()),
            _ => Json::from("mock"),
        };
    }
    if let Some(choices) = schema.get("anyOf").filter(|a| a.truthy()) {
        return schema_instance(choices.as_array().and_then(|a| a.first()), depth + 1);
    }
    let mut kind = schema.get("type").cloned().unwrap_or(Json::Null);
    if let Json::Arr(types) = &kind {
        kind = if types.is_empty() {
            Json::from("string")
        } else {
            types
                .iter()
                .find(|t| t.py_str().to_lowercase() != "null")
                .cloned()
                .unwrap_or_else(|| Json::from("string"))
        };
    }
    let kind = if kind.truthy() { kind.py_str() } else { "object".to_owned() }.to_lowercase();
    match kind.as_str() {
        "object" => {
            let props = match schema.get("properties") {
                Some(Json::Obj(pairs)) => pairs.as_slice(),
                _ => &[],
            };
            Json::Obj(
                props
                    .iter()
                    .map(|(k, v)| (k.clone(), schema_instance(Some(v), depth + 1)))
                    .collect(),
            )
        }
        "array" => Json::Arr(Vec::new()),
        "integer" | "number" => Json::from(0),
        "boolean" => Json::from(false),
        _ => Json::from("mock"),
    }
}

/// `value or []` for a value expected to be a list.
fn list(value: Option<&Json>) -> &[Json] {
    value.and_then(Json::as_array).unwrap_or(&[])
}

/// A message `content`: the string, or the joined `text` of its parts.
fn content_text(content: Option<&Json>) -> String {
    match content {
        Some(Json::Str(s)) => s.clone(),
        other => list(other)
            .iter()
            .filter(|part| part.is_object())
            .filter_map(|part| match part.get("text") {
                None => Some(""),
                Some(text) => text.as_str(),
            })
            .collect(),
    }
}

/// A chat user message's text: [`content_text`] without the parts that
/// are `<system-reminder>`s (Qwen Code puts its skills and tool lists in
/// the user message that way), as the Anthropic route leaves them out.
fn user_text(content: Option<&Json>) -> String {
    match content {
        Some(Json::Arr(parts)) => {
            let reminder = |part: &&Json| {
                part.get("text").and_then(Json::as_str).is_some_and(|text| {
                    text.trim_start_matches(is_py_space).starts_with("<system-reminder>")
                })
            };
            let kept: Vec<Json> = parts.iter().filter(|p| !reminder(p)).cloned().collect();
            content_text(Some(&Json::Arr(kept)))
        }
        other => content_text(other),
    }
}

/// The offered tools with the namespace each sits in, if any: a
/// `namespace` tool's own `tools` are offered under its name.
fn namespaced_tools(body: &Json) -> Vec<(Option<&str>, &str)> {
    let mut out = Vec::new();
    for tool in list(body.get("tools")).iter() {
        let Some(name) = tool.get("name").and_then(Json::as_str) else { continue };
        let inner = list(tool.get("tools"));
        if tool.get("type").and_then(Json::as_str) == Some("namespace") || !inner.is_empty() {
            out.extend(
                inner
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Json::as_str))
                    .map(|t| (Some(name), t)),
            );
        } else {
            out.push((None, name));
        }
    }
    out
}

/// The names of the offered tools (`t.get("name")` of each object).
fn tool_names(body: &Json) -> Vec<&str> {
    list(body.get("tools")).iter().filter_map(|t| t.get("name").and_then(Json::as_str)).collect()
}

/// `body.get(key, default)`.
fn get_or(body: &Json, key: &str, default: &str) -> Json {
    body.get(key).cloned().unwrap_or_else(|| Json::from(default))
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[derive(Clone, Copy)]
enum ErrorStyle {
    OpenAi,
    Anthropic,
    Gemini,
}

/// `[[error:NNN]]`: the provider's error body with that status.
async fn maybe_error(plan: &Plan, style: ErrorStyle, out: &mut Responder<'_>) -> io::Result<bool> {
    if let Some(secs) = plan.ratelimit {
        rate_limited(secs, style, out).await?;
        return Ok(true);
    }
    if let Some(code) = plan.fail {
        let message = format!("mock request rejected ({code})");
        let body = match style {
            ErrorStyle::Anthropic => obj! {
                "type" => "error",
                "error" => obj! {"type" => "invalid_request_error", "message" => message},
            },
            ErrorStyle::Gemini => obj! {
                "error" => obj! {"code" => code, "message" => message, "status" => "INVALID_ARGUMENT"},
            },
            ErrorStyle::OpenAi => obj! {
                "error" => obj! {
                    "message" => message, "type" => "invalid_request_error", "code" => Json::Null,
                },
            },
        };
        out.json(code, &body).await?;
        return Ok(true);
    }
    let Some(code) = plan.error else {
        return Ok(false);
    };
    let message = format!("mock error {code}");
    let body = match style {
        ErrorStyle::Anthropic => obj! {
            "type" => "error",
            "error" => obj! {"type" => "api_error", "message" => message},
        },
        ErrorStyle::Gemini => obj! {
            "error" => obj! {"code" => code, "message" => message, "status" => "INTERNAL"},
        },
        ErrorStyle::OpenAi => obj! {
            "error" => obj! {"message" => message, "type" => "server_error", "code" => Json::Null},
        },
    };
    out.json(code, &body).await?;
    Ok(true)
}

/// `[[ratelimit:N]]` (not in the Python mock): HTTP 429 as each provider
/// sends it when a usage limit is reached, resetting in `secs` seconds —
/// `retry-after`, OpenAI's `usage_limit_reached` body with
/// `resets_in_seconds` and Codex's `x-codex-primary-*` headers, Anthropic's
/// `rate_limit_error` with its unified-limit headers.
async fn rate_limited(secs: u64, style: ErrorStyle, out: &mut Responder<'_>) -> io::Result<()> {
    let resets_at = now_secs() + secs as i64;
    let message = format!("mock usage limit reached; resets in {secs}s");
    let body = match style {
        ErrorStyle::Anthropic => obj! {
            "type" => "error",
            "error" => obj! {"type" => "rate_limit_error", "message" => message},
        },
        ErrorStyle::Gemini => obj! {
            "error" => obj! {"code" => 429, "message" => message, "status" => "RESOURCE_EXHAUSTED"},
        },
        ErrorStyle::OpenAi => obj! {
            "error" => obj! {
                "type" => "usage_limit_reached",
                "message" => message,
                "plan_type" => "plus",
                "resets_at" => resets_at,
                "resets_in_seconds" => secs as i64,
            },
        },
    };
    let data = body.dumps();
    out.send_response(429, None);
    out.send_header("content-type", "application/json");
    out.send_header("retry-after", &secs.to_string());
    out.send_header("x-codex-primary-used-percent", "100");
    out.send_header("x-codex-primary-window-minutes", "300");
    out.send_header("x-codex-primary-reset-after-seconds", &secs.to_string());
    out.send_header("x-codex-primary-reset-at", &resets_at.to_string());
    out.send_header("anthropic-ratelimit-unified-status", "rejected");
    out.send_header("anthropic-ratelimit-unified-reset", &resets_at.to_string());
    out.send_header("content-length", &data.len().to_string());
    out.end_headers().await?;
    out.write(data.as_bytes()).await
}

/// `do_GET`.
pub(crate) async fn get(request: &Request, out: &mut Responder<'_>) -> io::Result<Outcome> {
    let path = url_path(&request.path);
    if path.ends_with("/models") {
        if path.contains("/v1beta/") {
            let models = obj! {"models" => vec![obj! {"name" => "models/gemini-2.5-pro"}]};
            out.json(200, &models).await?;
            return Ok(Outcome::new(Some("gemini"), "models"));
        }
        let models = obj! {
            "object" => "list",
            "data" => vec![obj! {
                "id" => "mock-model", "object" => "model", "created" => 0, "owned_by" => "mock",
            }],
            "models" => Vec::new(),
        };
        out.json(200, &models).await?;
        return Ok(Outcome::new(Some("openai"), "models"));
    }
    if matches!(path, "/" | "/health" | "/healthz") {
        out.json(200, &obj! {"ok" => true}).await?;
        return Ok(Outcome::new(None, "health"));
    }
    let error = obj! {"error" => obj! {"message" => format!("mock: no GET {path}")}};
    out.json(404, &error).await?;
    Ok(Outcome::new(None, "not_found"))
}

/// `do_HEAD`: the preconnect Claude Code makes to its base URL.
pub(crate) async fn head_request(out: &mut Responder<'_>) -> io::Result<Outcome> {
    out.send_response(200, None);
    out.send_header("content-length", "0");
    out.end_headers().await?;
    Ok(Outcome::new(None, "head"))
}

/// `do_POST`.
pub(crate) async fn post(
    request: &Request,
    body: &Json,
    settings: &Settings,
    out: &mut Responder<'_>,
) -> io::Result<Outcome> {
    let path = url_path(&request.path);
    if path.ends_with("/responses") {
        return openai_responses(body, settings, out).await;
    }
    if path.ends_with("/chat/completions") {
        return openai_chat(body, settings, out).await;
    }
    if path.ends_with("/messages/count_tokens") {
        out.json(200, &obj! {"input_tokens" => 42}).await?;
        return Ok(Outcome::new(Some("anthropic"), "count_tokens"));
    }
    if path.ends_with("/messages") {
        return anthropic_messages(body, settings, out).await;
    }
    if path.contains(":streamGenerateContent") {
        return gemini(body, path, true, settings, out).await;
    }
    if path.contains(":generateContent") {
        return gemini(body, path, false, settings, out).await;
    }
    if path.contains(":countTokens") {
        out.json(200, &obj! {"totalTokens" => 42}).await?;
        return Ok(Outcome::new(Some("gemini"), "count_tokens"));
    }
    if path.ends_with("/event_logging/batch") || path.contains("telemetry") {
        out.json(200, &Json::Obj(Vec::new())).await?;
        return Ok(Outcome::new(None, "telemetry"));
    }
    let error = obj! {"error" => obj! {"message" => format!("mock: no POST {path}")}};
    out.json(404, &error).await?;
    Ok(Outcome::new(None, "not_found"))
}

/// OpenAI Responses API (Codex).
async fn openai_responses(
    body: &Json,
    settings: &Settings,
    out: &mut Responder<'_>,
) -> io::Result<Outcome> {
    let single;
    let items: &[Json] = match body.get("input") {
        Some(Json::Str(text)) if !text.is_empty() => {
            single = [obj! {"type" => "message", "role" => "user", "content" => text}];
            &single
        }
        other => list(other),
    };
    // The last user message, then any tool output after it.
    let (mut prompt, mut tool_result, mut round) = (None, None, 0);
    for item in items.iter().filter(|it| it.is_object()) {
        let kind = item.get("type");
        let is_message = kind.is_none_or(|k| k.as_str() == Some("message"));
        if is_message && item.get("role").and_then(Json::as_str) == Some("user") {
            let text = content_text(item.get("content"));
            // Codex also sends AGENTS.md and environment_context as user messages.
            if text.contains("<environment_context>") || text.starts_with("# AGENTS.md") {
                continue;
            }
            prompt = Some(text);
            tool_result = None;
            round = 0;
        } else if matches!(
            kind.and_then(Json::as_str),
            Some("function_call_output" | "custom_tool_call_output")
        ) {
            tool_result = Some(match item.get("output") {
                Some(Json::Str(s)) => s.clone(),
                other => other.unwrap_or(&Json::Null).dumps(),
            });
            round += 1;
        }
    }
    let mut plan = Plan::new(prompt, tool_result, settings).await;
    plan.round = round;
    if maybe_error(&plan, ErrorStyle::OpenAi, out).await? {
        return Ok(Outcome::new(Some("openai"), "error"));
    }
    let resp_id = rid("resp_");
    out.sse_start().await?;
    let created = obj! {"type" => "response.created", "response" => obj! {"id" => &resp_id}};
    out.sse_json(Some("response.created"), &created).await?;
    let tools = tool_names(body);
    let scripted = plan.next_tool_in(&namespaced_tools(body));
    if plan.run.is_some()
        && !tools.iter().any(|t| matches!(*t, "exec_command" | "shell_command" | "shell"))
    {
        plan.run = None; // a side request without shell tools (e.g. title generation)
    }
    let shell = plan.run.as_ref().filter(|_| scripted.is_none());
    let (kind, text_len) = if scripted.is_some() || shell.is_some() {
        let call_id = rid("call_");
        let (name, args) = match (&scripted, shell) {
            (Some((_, name, args)), _) => (name.as_str(), args.clone()),
            (None, Some(run)) if tools.contains(&"exec_command") => {
                let mut args = obj! {"cmd" => run};
                if plan.escalate {
                    // Asks to run outside the sandbox: an approval prompt.
                    if let Json::Obj(pairs) = &mut args {
                        pairs.push(("sandbox_permissions".into(), Json::from("require_escalated")));
                        let why = format!("Mock model wants to run: {run}");
                        pairs.push(("justification".into(), Json::from(why)));
                    }
                }
                ("exec_command", args)
            }
            (None, Some(run)) if tools.contains(&"shell_command") => {
                ("shell_command", obj! {"command" => run})
            }
            (None, run) => {
                let run = run.expect("a shell call");
                let argv = vec![Json::from("bash"), Json::from("-lc"), Json::from(run)];
                ("shell", obj! {"command" => argv})
            }
        };
        let fc_id = rid("fc_");
        let namespace = scripted.as_ref().and_then(|(namespace, _, _)| namespace.clone());
        let item = |arguments: String, status: &str| {
            let mut item = obj! {
                "type" => "function_call", "id" => &fc_id, "call_id" => &call_id,
                "name" => name, "arguments" => arguments, "status" => status,
            };
            // A tool of a namespace is called by its name and namespace.
            if let (Some(namespace), Json::Obj(pairs)) = (&namespace, &mut item) {
                pairs.push(("namespace".into(), Json::from(namespace)));
            }
            item
        };
        let added = obj! {
            "type" => "response.output_item.added", "output_index" => 0,
            "item" => item(String::new(), "in_progress"),
        };
        out.sse_json(Some("response.output_item.added"), &added).await?;
        let done = obj! {
            "type" => "response.output_item.done", "output_index" => 0,
            "item" => item(args.dumps(), "completed"),
        };
        out.sse_json(Some("response.output_item.done"), &done).await?;
        ("tool_call", 10)
    } else {
        let msg_id = rid("msg_");
        let added = obj! {
            "type" => "response.output_item.added", "output_index" => 0,
            "item" => obj! {
                "type" => "message", "role" => "assistant", "id" => &msg_id,
                "status" => "in_progress", "content" => Vec::new(),
            },
        };
        out.sse_json(Some("response.output_item.added"), &added).await?;
        let part = obj! {
            "type" => "response.content_part.added", "item_id" => &msg_id,
            "output_index" => 0, "content_index" => 0,
            "part" => obj! {"type" => "output_text", "text" => "", "annotations" => Vec::new()},
        };
        out.sse_json(Some("response.content_part.added"), &part).await?;
        let chunks = plan.chunks();
        for chunk in &chunks {
            plan.pause(chunks.len()).await;
            let delta = obj! {
                "type" => "response.output_text.delta", "item_id" => &msg_id,
                "output_index" => 0, "content_index" => 0, "delta" => chunk,
            };
            out.sse_json(Some("response.output_text.delta"), &delta).await?;
        }
        let done = obj! {
            "type" => "response.output_item.done", "output_index" => 0,
            "item" => obj! {
                "type" => "message", "role" => "assistant", "id" => &msg_id,
                "status" => "completed",
                "content" => vec![obj! {
                    "type" => "output_text", "text" => plan.text(), "annotations" => Vec::new(),
                }],
            },
        };
        out.sse_json(Some("response.output_item.done"), &done).await?;
        ("text", chunks.len())
    };
    let completed = obj! {
        "type" => "response.completed",
        "response" => obj! {
            "id" => &resp_id, "status" => "completed",
            "usage" => obj! {
                "input_tokens" => 100, "input_tokens_details" => obj! {"cached_tokens" => 0},
                "output_tokens" => text_len,
                "output_tokens_details" => obj! {"reasoning_tokens" => 0},
                "total_tokens" => 100 + text_len,
            },
        },
    };
    out.sse_json(Some("response.completed"), &completed).await?;
    Ok(Outcome::streamed("openai", kind))
}

/// OpenAI Chat Completions (streamed or not): text, or a shell tool call
/// for `[[run:CMD]]` when the request offers a shell tool (`bash`:
/// OpenCode, `run_shell_command`: Qwen Code, `shell`).
async fn openai_chat(
    body: &Json,
    settings: &Settings,
    out: &mut Responder<'_>,
) -> io::Result<Outcome> {
    let (mut prompt, mut tool_result) = (None, None);
    for message in list(body.get("messages")).iter().filter(|m| m.is_object()) {
        match message.get("role").and_then(Json::as_str) {
            Some("user") => {
                prompt = Some(user_text(message.get("content")));
                tool_result = None;
            }
            Some("tool") => {
                tool_result = Some(message.get("content").unwrap_or(&Json::Null).py_str());
            }
            _ => {}
        }
    }
    let plan = Plan::new(prompt, tool_result, settings).await;
    if maybe_error(&plan, ErrorStyle::OpenAi, out).await? {
        return Ok(Outcome::new(Some("openai"), "error"));
    }
    // Chat Completions tools are `{"type": "function", "function": {"name": ...}}`.
    let shell = list(body.get("tools"))
        .iter()
        .filter_map(|t| t.get("function").and_then(|f| f.get("name")).and_then(Json::as_str))
        .find(|name| matches!(*name, "bash" | "run_shell_command" | "shell"));
    let call = plan.run.as_ref().zip(shell).map(|(run, name)| {
        let args = obj! {"command" => run, "description" => "mock command"};
        obj! {
            "id" => rid("call_"), "type" => "function",
            "function" => obj! {"name" => name, "arguments" => args.dumps()},
        }
    });
    let cid = rid("chatcmpl-");
    let model = get_or(body, "model", "mock-model");
    if !body.get("stream").is_some_and(Json::truthy) {
        let (message, finish, kind) = match call {
            Some(call) => (
                obj! {"role" => "assistant", "content" => Json::Null, "tool_calls" => vec![call]},
                "tool_calls",
                "tool_call",
            ),
            None => (obj! {"role" => "assistant", "content" => plan.text()}, "stop", "text"),
        };
        let answer = obj! {
            "id" => &cid, "object" => "chat.completion", "created" => now_secs(),
            "model" => &model,
            "choices" => vec![obj! {"index" => 0, "finish_reason" => finish, "message" => message}],
            "usage" => obj! {"prompt_tokens" => 100, "completion_tokens" => 5, "total_tokens" => 105},
        };
        out.json(200, &answer).await?;
        return Ok(Outcome::new(Some("openai"), kind));
    }
    out.sse_start().await?;
    let chunk = |delta: Json, finish: Option<&str>| {
        obj! {
            "id" => &cid, "object" => "chat.completion.chunk", "created" => now_secs(),
            "model" => &model,
            "choices" => vec![obj! {"index" => 0, "delta" => delta, "finish_reason" => finish}],
        }
    };
    out.sse_json(None, &chunk(obj! {"role" => "assistant", "content" => ""}, None)).await?;
    let (kind, completion_tokens) = if let Some(mut call) = call {
        // A streamed tool call carries its index in the list.
        if let Json::Obj(pairs) = &mut call {
            pairs.insert(0, ("index".into(), Json::from(0)));
        }
        out.sse_json(None, &chunk(obj! {"tool_calls" => vec![call]}, None)).await?;
        out.sse_json(None, &chunk(Json::Obj(Vec::new()), Some("tool_calls"))).await?;
        ("tool_call", 1)
    } else {
        let chunks = plan.chunks();
        for text in &chunks {
            plan.pause(chunks.len()).await;
            out.sse_json(None, &chunk(obj! {"content" => text}, None)).await?;
        }
        out.sse_json(None, &chunk(Json::Obj(Vec::new()), Some("stop"))).await?;
        ("text", chunks.len())
    };
    // `stream_options.include_usage` (not in the Python mock): a last chunk
    // with no choices and the usage, as OpenAI sends it.
    let include_usage =
        body.get("stream_options").and_then(|o| o.get("include_usage")).is_some_and(Json::truthy);
    if include_usage {
        let usage = obj! {
            "id" => &cid, "object" => "chat.completion.chunk", "created" => now_secs(),
            "model" => &model, "choices" => Vec::<Json>::new(),
            "usage" => obj! {
                "prompt_tokens" => 100, "completion_tokens" => completion_tokens,
                "total_tokens" => 100 + completion_tokens,
            },
        };
        out.sse_json(None, &usage).await?;
    }
    out.sse(None, "[DONE]").await?;
    Ok(Outcome::streamed("openai", kind))
}

/// Anthropic Messages API (Claude Code).
async fn anthropic_messages(
    body: &Json,
    settings: &Settings,
    out: &mut Responder<'_>,
) -> io::Result<Outcome> {
    let (mut prompt, mut tool_result, mut round) = (None, None, 0);
    for message in list(body.get("messages")).iter().filter(|m| m.is_object()) {
        if message.get("role").and_then(Json::as_str) != Some("user") {
            continue;
        }
        let content = message.get("content");
        if let Some(Json::Str(text)) = content {
            prompt = Some(text.clone());
            tool_result = None;
            round = 0;
            continue;
        }
        let blocks: Vec<&Json> = list(content).iter().filter(|b| b.is_object()).collect();
        let kind_is = |b: &Json, kind: &str| b.get("type").and_then(Json::as_str) == Some(kind);
        let texts: Vec<&str> = blocks
            .iter()
            .filter(|b| kind_is(b, "text"))
            .filter_map(|b| match b.get("text") {
                None => Some(""),
                Some(text) => text.as_str(),
            })
            .filter(|text| !text.trim_start_matches(is_py_space).starts_with("<system-reminder>"))
            .collect();
        let results: Vec<&&Json> = blocks.iter().filter(|b| kind_is(b, "tool_result")).collect();
        if let Some(last) = results.last() {
            tool_result = Some(content_text(last.get("content")));
            round += 1;
        } else if let Some(text) = texts.last() {
            prompt = Some((*text).to_owned());
            tool_result = None;
            round = 0;
        }
    }
    let mut plan = Plan::new(prompt, tool_result, settings).await;
    plan.round = round;
    let model = get_or(body, "model", "claude-mock");
    if maybe_error(&plan, ErrorStyle::Anthropic, out).await? {
        return Ok(Outcome::new(Some("anthropic"), "error"));
    }
    let tool_input = |command: &str| obj! {"command" => command, "description" => "mock command"};
    let run = plan.run.as_ref().filter(|_| tool_names(body).contains(&"Bash"));
    // A scripted call of an offered tool, else a shell command.
    let call: Option<(String, Json)> = plan
        .next_tool(&tool_names(body))
        .or_else(|| run.map(|run| ("Bash".to_owned(), tool_input(run))));
    let msg_id = rid("msg_");
    let usage = |output_tokens: i32| {
        obj! {
            "input_tokens" => 100, "output_tokens" => output_tokens,
            "cache_creation_input_tokens" => 0, "cache_read_input_tokens" => 0,
        }
    };
    if !body.get("stream").is_some_and(Json::truthy) {
        // Non-streaming side calls (titles, quota checks, summaries...).
        let (content, stop, kind) = match &call {
            Some((name, input)) => (
                obj! {
                    "type" => "tool_use", "id" => rid("toolu_"), "name" => name,
                    "input" => input,
                },
                "tool_use",
                "tool_call",
            ),
            None => (obj! {"type" => "text", "text" => plan.text()}, "end_turn", "text"),
        };
        let answer = obj! {
            "id" => &msg_id, "type" => "message", "role" => "assistant", "model" => &model,
            "content" => vec![content], "stop_reason" => stop, "stop_sequence" => Json::Null,
            "usage" => usage(5),
        };
        out.json(200, &answer).await?;
        return Ok(Outcome::new(Some("anthropic"), kind));
    }
    out.sse_start().await?;
    let start = obj! {
        "type" => "message_start",
        "message" => obj! {
            "id" => &msg_id, "type" => "message", "role" => "assistant", "model" => &model,
            "content" => Vec::new(), "stop_reason" => Json::Null, "stop_sequence" => Json::Null,
            "usage" => usage(1),
        },
    };
    out.sse_json(Some("message_start"), &start).await?;
    let (stop, out_tokens, kind) = if let Some((name, input)) = &call {
        let block = obj! {
            "type" => "content_block_start", "index" => 0,
            "content_block" => obj! {
                "type" => "tool_use", "id" => rid("toolu_"), "name" => name,
                "input" => Json::Obj(Vec::new()),
            },
        };
        out.sse_json(Some("content_block_start"), &block).await?;
        let delta = obj! {
            "type" => "content_block_delta", "index" => 0,
            "delta" => obj! {"type" => "input_json_delta", "partial_json" => input.dumps()},
        };
        out.sse_json(Some("content_block_delta"), &delta).await?;
        let stop = obj! {"type" => "content_block_stop", "index" => 0};
        out.sse_json(Some("content_block_stop"), &stop).await?;
        ("tool_use", 20, "tool_call")
    } else {
        let block = obj! {
            "type" => "content_block_start", "index" => 0,
            "content_block" => obj! {"type" => "text", "text" => ""},
        };
        out.sse_json(Some("content_block_start"), &block).await?;
        out.sse_json(Some("ping"), &obj! {"type" => "ping"}).await?;
        let chunks = plan.chunks();
        for text in &chunks {
            plan.pause(chunks.len()).await;
            let delta = obj! {
                "type" => "content_block_delta", "index" => 0,
                "delta" => obj! {"type" => "text_delta", "text" => text},
            };
            out.sse_json(Some("content_block_delta"), &delta).await?;
        }
        let stop = obj! {"type" => "content_block_stop", "index" => 0};
        out.sse_json(Some("content_block_stop"), &stop).await?;
        ("end_turn", chunks.len() as i32, "text")
    };
    let delta = obj! {
        "type" => "message_delta",
        "delta" => obj! {"stop_reason" => stop, "stop_sequence" => Json::Null},
        "usage" => obj! {"output_tokens" => out_tokens},
    };
    out.sse_json(Some("message_delta"), &delta).await?;
    out.sse_json(Some("message_stop"), &obj! {"type" => "message_stop"}).await?;
    Ok(Outcome::streamed("anthropic", kind))
}

/// Gemini `generateContent` / `streamGenerateContent` (Gemini CLI).
async fn gemini(
    body: &Json,
    path: &str,
    stream: bool,
    settings: &Settings,
    out: &mut Responder<'_>,
) -> io::Result<Outcome> {
    let model = path.rsplit("/models/").next().unwrap_or(path);
    let model = model.split(':').next().unwrap_or(model);
    let empty = Json::Obj(Vec::new());
    let generation = body.get("generationConfig").filter(|g| g.is_object()).unwrap_or(&empty);
    let (mut prompt, mut tool_result) = (None, None);
    for content in list(body.get("contents")).iter().filter(|c| c.is_object()) {
        if content.get("role").and_then(Json::as_str) != Some("user") {
            continue;
        }
        let parts: Vec<&Json> =
            list(content.get("parts")).iter().filter(|p| p.is_object()).collect();
        let responses: Vec<&&Json> =
            parts.iter().filter(|p| p.get("functionResponse").is_some()).collect();
        let texts: Vec<&str> = parts
            .iter()
            .filter(|p| !p.get("thought").is_some_and(Json::truthy))
            .filter_map(|p| p.get("text").and_then(Json::as_str))
            .filter(|text| {
                let text = text.trim_start_matches(is_py_space);
                !text.starts_with("<session_context>") && !text.starts_with("<system-reminder>")
            })
            .collect();
        let text = texts.last().copied().unwrap_or("");
        if let Some(last) = responses.last() {
            let response = last.get("functionResponse").and_then(|r| r.get("response"));
            tool_result = Some(response.unwrap_or(&Json::Null).dumps());
        } else if !text.is_empty() {
            prompt = Some(text.to_owned());
            tool_result = None;
        }
    }
    let plan = Plan::new(prompt, tool_result, settings).await;
    if maybe_error(&plan, ErrorStyle::Gemini, out).await? {
        return Ok(Outcome::new(Some("gemini"), "error"));
    }
    let schema = generation
        .get("responseJsonSchema")
        .filter(|s| s.truthy())
        .or_else(|| generation.get("responseSchema"));
    let (parts, kind) =
        if generation.get("responseMimeType").and_then(Json::as_str) == Some("application/json") {
            let instance = match schema.filter(|s| s.truthy()) {
                Some(schema) => schema_instance(Some(schema), 0),
                None => Json::Obj(Vec::new()),
            };
            (Some(vec![obj! {"text" => instance.dumps()}]), "json")
        } else if let Some(run) = &plan.run {
            let call = obj! {
                "functionCall" => obj! {
                    "name" => "run_shell_command",
                    "args" => obj! {"command" => run, "description" => "mock"},
                },
            };
            (Some(vec![call]), "tool_call")
        } else {
            (None, "text")
        };
    let response = |parts: Vec<Json>, finish: Option<&str>| {
        let mut candidate =
            obj! {"content" => obj! {"role" => "model", "parts" => parts}, "index" => 0};
        if let (Some(finish), Json::Obj(pairs)) = (finish, &mut candidate) {
            pairs.push(("finishReason".into(), Json::from(finish)));
        }
        obj! {
            "candidates" => vec![candidate],
            "usageMetadata" => obj! {
                "promptTokenCount" => 100, "candidatesTokenCount" => 5, "totalTokenCount" => 105,
            },
            "modelVersion" => model, "responseId" => rid("gem_"),
        }
    };
    if !stream {
        let parts = parts.unwrap_or_else(|| vec![obj! {"text" => plan.text()}]);
        out.json(200, &response(parts, Some("STOP"))).await?;
        return Ok(Outcome::new(Some("gemini"), kind));
    }
    out.sse_start().await?;
    if let Some(parts) = parts {
        out.sse_json(None, &response(parts, Some("STOP"))).await?;
        return Ok(Outcome::streamed("gemini", kind));
    }
    let chunks = plan.chunks();
    for (i, text) in chunks.iter().enumerate() {
        plan.pause(chunks.len()).await;
        let finish = (i == chunks.len() - 1).then_some("STOP");
        out.sse_json(None, &response(vec![obj! {"text" => text}], finish)).await?;
    }
    Ok(Outcome::streamed("gemini", kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new("MOCK_OK".into(), 0.0)
    }

    fn plan(prompt: &str, tool_result: Option<&str>) -> Plan {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(Plan::new(Some(prompt.into()), tool_result.map(Into::into), &settings()))
    }

    #[test]
    fn markers_parse_like_python() {
        let p = plan("[[slow:1.5]] hi [[error:429]] [[runx:ls -la]] [[run:echo no]]", None);
        assert_eq!(p.slow, 1.5);
        assert_eq!(p.error, Some(429));
        assert_eq!(p.run.as_deref(), Some("ls -la"));
        assert!(p.escalate);
        assert_eq!(plan("[[error:000]]", None).error, None);
        assert_eq!(plan("[[error:1234]]", None).error, None, "exactly three digits");
        let p = plan("[[run:echo hi]] go", Some("out"));
        assert_eq!(p.run, None, "no tool call once the tool result is back");
        assert_eq!(p.text(), "Tool finished. Output: out");
        let p = plan(r#"{"description": "[[say:nudge: it hangs]]"}"#, None);
        assert_eq!(p.text(), "nudge: it hangs", "[[say:TEXT]] is answered verbatim");
    }

    #[test]
    fn tool_markers_script_one_call_per_round_of_offered_tools() {
        let prompt = r#"[[tool:start_session {"agent": "mock", "id": "w"}]] then
            [[tool:wait {"id": "w"}]] go"#;
        let mut p = plan(prompt, None);
        let offered = ["Bash", "mcp__reins__start_session", "mcp__reins__wait"];
        let (name, args) = p.next_tool(&offered).unwrap();
        assert_eq!(name, "mcp__reins__start_session");
        assert_eq!(args.dumps(), r#"{"agent": "mock", "id": "w"}"#);
        assert_eq!(p.next_tool(&["Bash"]), None, "only a tool that is offered");
        p.round = 1;
        assert_eq!(p.next_tool(&offered).unwrap().0, "mcp__reins__wait");
        assert_eq!(p.next_tool(&["wait"]).unwrap().0, "wait", "the bare name too");
        p.round = 2;
        assert_eq!(p.next_tool(&offered), None, "every call made: then text");
        assert_eq!(p.text(), "MOCK_OK (you said: then go)");
        p.round = 1;
        let namespaced = [(None, "exec_command"), (Some("mcp__reins"), "wait")];
        let (namespace, name, _) = p.next_tool_in(&namespaced).unwrap();
        assert_eq!((namespace.as_deref(), name.as_str()), (Some("mcp__reins"), "wait"));
    }

    #[test]
    fn text_strips_markers_and_collapses_whitespace() {
        let p = plan("  [[wait:0]]say\n\t hello  [[slow:0]] ", None);
        assert_eq!(p.text(), "MOCK_OK (you said: say hello)");
        assert_eq!(p.chunks(), ["MOCK_OK ", "(you ", "said: ", "say ", "hello)"]);
        let long = "x".repeat(100);
        assert_eq!(head(&long, 60), format!("{}...", "x".repeat(57)));
        assert_eq!(head("a\u{1f}b\u{a0}c", 60), "a b c");
    }

    #[test]
    fn ids_look_like_python_uuid4_prefixes() {
        let id = rid("resp_");
        assert_eq!(id.len(), 5 + 24);
        assert_eq!(&id[5 + 12..5 + 13], "4");
        assert!(matches!(&id[5 + 16..5 + 17], "8" | "9" | "a" | "b"));
        assert_ne!(rid("x"), rid("x"));
    }

    #[test]
    fn url_path_matches_urlsplit() {
        assert_eq!(url_path("/v1/messages?beta=true"), "/v1/messages");
        assert_eq!(
            url_path("/v1beta/models/g:streamGenerateContent?alt=sse"),
            "/v1beta/models/g:streamGenerateContent"
        );
        assert_eq!(url_path("http://127.0.0.1:1/v1/models#x"), "/v1/models");
        assert_eq!(url_path("/a#b?c"), "/a");
    }

    #[test]
    fn schema_instance_is_minimal() {
        let schema = Json::parse(
            br#"{"type": "OBJECT", "properties": {
                "reasoning": {"type": "string"}, "score": {"type": ["null", "integer"]},
                "ok": {"type": "boolean"}, "list": {"type": "array"},
                "pick": {"enum": ["a", "b"]}, "any": {"anyOf": [{"type": "number"}]},
                "nested": {"properties": {"deep": {}}}}}"#,
        )
        .unwrap();
        assert_eq!(
            schema_instance(Some(&schema), 0).dumps(),
            r#"{"reasoning": "mock", "score": 0, "ok": false, "list": [], "pick": "a", "any": 0, "nested": {"deep": {}}}"#
        );
    }
}
