//! A second opinion for the watcher: an OpenAI-compatible chat endpoint
//! (a local Ollama, say) sees the evidence and the rules' proposal and may
//! pick another of the allowed decisions.
//!
//! It can only help, never hold things up: the whole exchange has a hard
//! deadline, and an endpoint that is unreachable, slow, or answers anything
//! but one allowed decision leaves the rules' decision standing. One that
//! is down (it did not answer a ping or a question) is not asked again for
//! a while (30 s, doubling to 5 min), so a dead advisor costs nothing per
//! cycle. Models are tried in order: one the server lacks or that fails
//! gives way to the next. Plain `http://` only (the point is a model on
//! this machine or network).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// How the watcher asks its advisor.
#[derive(Debug, Clone)]
pub(crate) struct Advisor {
    /// `host:port` to connect to.
    authority: String,
    /// Path of the chat completions endpoint.
    path: String,
    /// The models to ask, first choice first.
    models: Vec<String>,
    timeout: Duration,
    instructions: Option<String>,
    /// When it is asked again after it was down (shared by the clones).
    backoff: Arc<Mutex<Backoff>>,
}

/// How long a down advisor is left alone.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
}

/// The first rest after the advisor was found down; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

const SYSTEM: &str = "You supervise an AI coding agent that a watcher program runs \
unattended. You are given what the watcher sees (the session's state, how long it has \
made no progress, its budget of nudges and restarts, the last lines of its screen) and \
what the watcher's rules propose. Choose one of the allowed decisions: continue (leave \
it alone), nudge (interrupt its turn and tell it to continue), restart (start the dead \
agent again), escalate (stop watching and call a person). Answer with one JSON object \
and nothing else: {\"decision\": \"...\", \"reason\": \"...\"}.";

const PICK: &str = "You route coding tasks to AI coding agents. You are given the task, \
its labels, and the agents that can take it now with what they did before on tasks with \
those labels (attempts, success rate, median duration in seconds). Pick the agent most \
likely to get it accepted soon. Answer with one JSON object and nothing else: \
{\"agent\": \"NAME\", \"reason\": \"...\"}.";

/// The advisor's answer, when it gave a usable one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Advice {
    pub(crate) decision: String,
    pub(crate) reason: String,
}

impl Advisor {
    /// Checks the endpoint URL: `http://HOST:PORT[/PATH]`. A path ending in
    /// `/chat/completions` is used as it is; otherwise `/v1/chat/completions`
    /// (or `/chat/completions` after a `/v1`) is appended.
    pub(crate) fn new(
        url: &str,
        model: &str,
        timeout: Duration,
        instructions: Option<String>,
    ) -> Result<Advisor, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                "only http:// advisors are supported (a model on this machine or network)".into()
            } else {
                format!("{url:?} is not an http:// URL")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let authority =
            if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
        let path = if path.ends_with("/chat/completions") {
            path.to_string()
        } else if path.ends_with("/v1") {
            format!("{path}/chat/completions")
        } else {
            format!("{path}/v1/chat/completions")
        };
        Ok(Advisor {
            authority,
            path,
            models: vec![model.to_string()],
            timeout,
            instructions,
            backoff: Arc::default(),
        })
    }

    /// The same advisor asking `models` in order.
    pub(crate) fn with_models(mut self, models: Vec<String>) -> Advisor {
        if !models.is_empty() {
            self.models = models;
        }
        self
    }

    /// `http://HOST:PORT/PATH` of its chat endpoint, for people.
    pub(crate) fn shown(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }

    /// Why it is not asked now, when it is resting after being down.
    fn resting(&self) -> Option<String> {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let left = backoff.until?.checked_duration_since(Instant::now())?;
        Some(format!(
            "the advisor is down; asked again in {}",
            crate::time::human(left.as_secs_f64().ceil())
        ))
    }

    fn went_down(&self) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let rest = FIRST_BACKOFF.saturating_mul(1 << backoff.failures.min(4)).min(MAX_BACKOFF);
        backoff.failures += 1;
        backoff.until = Some(Instant::now() + rest);
    }

    fn came_back(&self) {
        *self.backoff.lock().unwrap_or_else(|p| p.into_inner()) = Backoff::default();
    }

    /// Whether the advisor answers now (its model list, within its timeout
    /// and at most 2 s); a failure rests it like a failed question.
    pub(crate) async fn ping(&self) -> Result<(), String> {
        let models = match self.path.strip_suffix("/chat/completions") {
            Some(prefix) => format!("{prefix}/models"),
            None => "/v1/models".to_string(),
        };
        let deadline = self.timeout.min(Duration::from_secs(2));
        let asked = tokio::time::timeout(deadline, self.request("GET", &models, None)).await;
        let result = match asked {
            Err(_) => {
                Err(format!("no answer within {}", crate::time::human(deadline.as_secs_f64())))
            }
            Ok(Err(err)) => Err(err),
            Ok(Ok((status, _))) if status >= 500 => Err(format!("it answered HTTP {status}")),
            Ok(Ok(_)) => Ok(()),
        };
        match &result {
            Ok(()) => self.came_back(),
            Err(_) => self.went_down(),
        }
        result
    }

    /// Asks for a decision among `allowed`; `Err` says why the advice was
    /// not taken (the caller keeps the rules' decision). Costs nothing
    /// while the advisor rests after being down.
    pub(crate) async fn ask(&self, situation: &Value, allowed: &[&str]) -> Result<Advice, String> {
        let mut user = json!({ "situation": situation, "allowed": allowed });
        if let Some(instructions) = &self.instructions {
            user["instructions"] = json!(instructions);
        }
        let content = self.complete(SYSTEM, &user).await?;
        parse_advice(&content, allowed)
    }

    /// Asks which of `agents` (with the store's figures) should take a
    /// task; the answer must name one of `names`.
    pub(crate) async fn pick(&self, task: &Value, names: &[&str]) -> Result<Advice, String> {
        let content = self.complete(PICK, task).await?;
        let unfenced = unfenced(&content);
        // `{"agent", "reason"}`, or a reply that starts with the agent's name.
        let (agent, reason) = match serde_json::from_str::<Value>(unfenced) {
            Ok(value) => (
                value.get("agent").and_then(Value::as_str).unwrap_or_default().to_string(),
                value.get("reason").and_then(Value::as_str).unwrap_or_default().to_string(),
            ),
            Err(_) => {
                let word: String = unfenced
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .collect();
                let rest = unfenced[word.len()..].trim_start_matches([':', '.', ',', ' ', '-']);
                (word, rest.trim().to_string())
            }
        };
        if !names.contains(&agent.as_str()) {
            let shown: String = content.trim().chars().take(80).collect();
            return Err(format!(
                "the advisor's answer names none of {}: {shown:?}",
                names.join(", ")
            ));
        }
        Ok(Advice { decision: agent, reason })
    }

    /// One chat completion (the models in order); its text.
    async fn complete(&self, system: &str, user: &Value) -> Result<String, String> {
        if let Some(why) = self.resting() {
            return Err(why);
        }
        let started = Instant::now();
        let mut refused = Vec::new();
        for model in &self.models {
            let body = json!({
                "model": model,
                "stream": false,
                "temperature": 0,
                "messages": [
                    { "role": "system", "content": system },
                    { "role": "user", "content": user.to_string() },
                ],
            });
            let left = self.timeout.saturating_sub(started.elapsed());
            let asked =
                tokio::time::timeout(left, self.request("POST", &self.path, Some(body))).await;
            let (status, answer) = match asked {
                Err(_) => {
                    self.went_down();
                    return Err(format!(
                        "no answer within {}",
                        crate::time::human(self.timeout.as_secs_f64())
                    ));
                }
                Ok(Err(err)) => {
                    self.went_down();
                    return Err(err);
                }
                Ok(Ok(answered)) => answered,
            };
            self.came_back();
            if !(200..300).contains(&status) {
                // A model the server lacks or that fails: the next one.
                refused.push(format!("{model}: HTTP {status}"));
                continue;
            }
            let answer = answer.ok_or("the answer is not JSON")?;
            let content = answer
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or("the answer has no choices[0].message.content")?;
            return Ok(content.to_string());
        }
        Err(format!("no model answered ({})", refused.join("; ")))
    }

    /// One request; the status and the JSON body (if it is JSON).
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Option<Value>), String> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|err| format!("cannot connect to {}: {err}", self.authority))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| format!("HTTP handshake failed: {err}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|err| err.to_string())?;
        let response =
            sender.send_request(request).await.map_err(|err| format!("request failed: {err}"))?;
        let status = response.status().as_u16();
        let bytes = http_body_util::Limited::new(response.into_body(), 4 << 20)
            .collect()
            .await
            .map_err(|err| format!("reading the answer failed: {err}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&bytes).ok()))
    }
}

/// A model's reply without the code fence it may be wrapped in.
fn unfenced(content: &str) -> &str {
    let text = content.trim();
    text.strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .map_or(text, str::trim)
}

/// Reads the model's reply: a JSON object `{"decision", "reason"}`
/// (possibly inside a code fence), or a reply that starts with a decision
/// word. Only `allowed` decisions are taken.
pub(crate) fn parse_advice(content: &str, allowed: &[&str]) -> Result<Advice, String> {
    let unfenced = unfenced(content);
    let (decision, reason) = match serde_json::from_str::<Value>(unfenced) {
        Ok(value) => (
            value.get("decision").and_then(Value::as_str).unwrap_or_default().to_string(),
            value.get("reason").and_then(Value::as_str).unwrap_or_default().to_string(),
        ),
        Err(_) => {
            let word: String = unfenced
                .chars()
                .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
                .collect::<String>()
                .to_ascii_lowercase();
            let rest = unfenced[word.len()..].trim_start_matches([':', '.', ',', ' ', '-']);
            (word, rest.trim().to_string())
        }
    };
    let decision = decision.trim().to_ascii_lowercase();
    if allowed.contains(&decision.as_str()) {
        Ok(Advice { decision, reason })
    } else {
        let shown: String = content.chars().take(80).collect();
        Err(format!("the advisor's answer is not one of {}: {shown:?}", allowed.join("|")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &[&str] = &["continue", "nudge", "escalate"];

    #[test]
    fn urls_name_the_chat_completions_endpoint() {
        let t = Duration::from_secs(1);
        let a = Advisor::new("http://127.0.0.1:11434", "m", t, None).unwrap();
        assert_eq!(
            (a.authority.as_str(), a.path.as_str()),
            ("127.0.0.1:11434", "/v1/chat/completions")
        );
        let a = Advisor::new("http://localhost:8080/v1/", "m", t, None).unwrap();
        assert_eq!(
            (a.authority.as_str(), a.path.as_str()),
            ("localhost:8080", "/v1/chat/completions")
        );
        let a = Advisor::new("http://h/api/chat/completions", "m", t, None).unwrap();
        assert_eq!((a.authority.as_str(), a.path.as_str()), ("h:80", "/api/chat/completions"));
        assert!(
            Advisor::new("https://api.example.com", "m", t, None).unwrap_err().contains("http://")
        );
        assert!(Advisor::new("ftp://x", "m", t, None).is_err());
        assert!(Advisor::new("http:///v1", "m", t, None).is_err());
    }

    #[test]
    fn json_answers_are_read() {
        let a = parse_advice(r#"{"decision": "Nudge", "reason": "it hangs"}"#, LIVE).unwrap();
        assert_eq!(a, Advice { decision: "nudge".into(), reason: "it hangs".into() });
        let fenced = "```json\n{\"decision\":\"escalate\",\"reason\":\"r\"}\n```";
        assert_eq!(parse_advice(fenced, LIVE).unwrap().decision, "escalate");
    }

    #[test]
    fn a_leading_decision_word_is_read() {
        let a = parse_advice("continue: it is still compiling", LIVE).unwrap();
        assert_eq!(
            a,
            Advice { decision: "continue".into(), reason: "it is still compiling".into() }
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["", "banana", "MOCK_OK (you said: x)", r#"{"decision":"restart"}"#, "[1,2]"] {
            assert!(parse_advice(bad, LIVE).is_err(), "{bad:?}");
        }
    }
}
