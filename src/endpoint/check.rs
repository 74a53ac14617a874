//! What reins asks an endpoint: whether it answers and which of the
//! configured models it serves, which model completes a tiny request first,
//! and whether a model is loaded (warm) right now. Every question has a
//! deadline; none can hang a command.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use super::Endpoint;
use super::client::{self, Answer};
use crate::adapter::probe::{Check, Status};
use crate::store::outcomes::Probe;

/// The warm-state question gets this long at most: it runs before every
/// attempt on a local tier, so it must cost nothing when the server is down.
pub(crate) const WARM_BUDGET: Duration = Duration::from_millis(200);

/// What [`reach`] found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Reach {
    pub(crate) endpoint: String,
    pub(crate) url: String,
    /// Its model list answered.
    pub(crate) reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) latency_ms: Option<u64>,
    /// Configured models the endpoint serves, in config order.
    pub(crate) present: Vec<String>,
    /// Configured models it does not serve.
    pub(crate) missing: Vec<String>,
    /// The models loaded now, when the server says (Ollama's `/api/ps`,
    /// llama-swap's `/running`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) loaded: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// One model a probe tried.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Tried {
    pub(crate) model: String,
    pub(crate) ok: bool,
    pub(crate) detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) latency_s: Option<f64>,
}

/// What [`probe`] found: the first model that answered, and every try.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EndpointProbe {
    pub(crate) endpoint: String,
    pub(crate) chosen: Option<String>,
    pub(crate) tried: Vec<Tried>,
    pub(crate) started_at: String,
    /// Why nothing was tried (the endpoint did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Whether a model is loaded, as [`warm`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Warm {
    pub(crate) warm: bool,
    /// How it was told: `running` (the server's running list), `models`
    /// (its model list answered within the budget), `no_answer`.
    pub(crate) by: &'static str,
}

async fn get(ep: &Endpoint, path: &str, deadline: Duration) -> Result<Answer, String> {
    let key = ep.api_key();
    tokio::time::timeout(deadline, client::request(&ep.base, "GET", path, None, key.as_deref()))
        .await
        .map_err(|_| format!("no answer within {}", crate::time::human(deadline.as_secs_f64())))?
}

/// Model names in a model list: OpenAI's `data[].id`, Ollama's
/// `models[].name`/`model`.
fn names(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (list, keys) in [("data", &["id"][..]), ("models", &["name", "model"][..])] {
        for item in body.get(list).and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = keys.iter().find_map(|k| item.get(*k).and_then(Value::as_str)) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Whether a served name is the configured model (`qwen` is `qwen:latest`).
fn same_model(configured: &str, served: &str) -> bool {
    configured == served
        || served.strip_suffix(":latest") == Some(configured)
        || configured.strip_suffix(":latest") == Some(served)
}

/// The loaded models, if the server has a running list (Ollama's
/// `/api/ps`, else llama-swap's `/running`); `Ok(None)` when it has none.
async fn running(ep: &Endpoint, deadline: Duration) -> Result<Option<Vec<String>>, String> {
    let started = Instant::now();
    let answer = get(ep, "/api/ps", deadline).await?;
    if answer.status == 200 && answer.body.get("models").is_some() {
        return Ok(Some(names(&answer.body)));
    }
    let left = deadline.saturating_sub(started.elapsed());
    let answer = get(ep, "/running", left).await?;
    if answer.status == 200
        && let Some(list) = answer.body.get("running").and_then(Value::as_array)
    {
        let loaded = list.iter().filter_map(|r| r.get("model").and_then(Value::as_str));
        return Ok(Some(loaded.map(str::to_string).collect()));
    }
    Ok(None)
}

/// Is the endpoint there, and which configured models does it serve.
pub(crate) async fn reach(ep: &Endpoint, timeout: Duration) -> Reach {
    let started = Instant::now();
    let mut out = Reach {
        endpoint: ep.name.clone(),
        url: ep.base.shown(),
        reachable: false,
        latency_ms: None,
        present: Vec::new(),
        missing: Vec::new(),
        loaded: None,
        error: None,
    };
    let answer = match get(ep, &format!("{}/models", ep.base.prefix), timeout).await {
        Ok(answer) => answer,
        Err(err) => {
            out.error = Some(err);
            return out;
        }
    };
    if answer.status != 200 {
        let why = client::error_message(&answer.body).unwrap_or_default();
        out.error = Some(format!("its model list answered HTTP {} {why}", answer.status));
        return out;
    }
    out.reachable = true;
    out.latency_ms = Some(started.elapsed().as_millis() as u64);
    let served = names(&answer.body);
    for model in &ep.models {
        if served.iter().any(|s| same_model(model, s)) {
            out.present.push(model.clone());
        } else {
            out.missing.push(model.clone());
        }
    }
    let left = timeout.saturating_sub(started.elapsed()).min(Duration::from_secs(2));
    out.loaded = running(ep, left).await.ok().flatten();
    out
}

/// Whether `model` is loaded now, within [`WARM_BUDGET`]: the server's
/// running list when it has one, else whether its model list answers.
pub(crate) async fn warm(ep: &Endpoint, model: &str) -> Warm {
    let started = Instant::now();
    match running(ep, WARM_BUDGET).await {
        Ok(Some(loaded)) => {
            Warm { warm: loaded.iter().any(|l| same_model(model, l)), by: "running" }
        }
        Ok(None) => {
            let left = WARM_BUDGET.saturating_sub(started.elapsed());
            let listed = get(ep, &format!("{}/models", ep.base.prefix), left).await;
            let warm = listed.is_ok_and(|a| a.status == 200);
            Warm { warm, by: if warm { "models" } else { "no_answer" } }
        }
        Err(_) => Warm { warm: false, by: "no_answer" },
    }
}

/// One tiny chat completion on `model`.
async fn complete(ep: &Endpoint, model: &str) -> Result<f64, String> {
    let body = json!({
        "model": model,
        "stream": false,
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "user", "content": "This is a reins probe. Reply with OK."}],
    });
    let started = Instant::now();
    let key = ep.api_key();
    let path = format!("{}/chat/completions", ep.base.prefix);
    let call = client::request(&ep.base, "POST", &path, Some(&body), key.as_deref());
    let answer = tokio::time::timeout(ep.timeout, call).await.map_err(|_| {
        format!("no answer within {}", crate::time::human(ep.timeout.as_secs_f64()))
    })??;
    if answer.status != 200 {
        let why = client::error_message(&answer.body).map(|m| format!(": {m}"));
        return Err(format!("HTTP {}{}", answer.status, why.unwrap_or_default()));
    }
    if answer.body.pointer("/choices/0/message").is_none() {
        return Err("the answer has no choices[0].message".into());
    }
    Ok((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Tries the configured models in order (skipping those the endpoint does
/// not serve) until one completes a tiny request.
pub(crate) async fn probe(ep: &Endpoint) -> EndpointProbe {
    let started_at = crate::time::now_rfc3339();
    let reach = reach(ep, ep.timeout.min(Duration::from_secs(10))).await;
    let mut out = EndpointProbe {
        endpoint: ep.name.clone(),
        chosen: None,
        tried: Vec::new(),
        started_at,
        error: None,
    };
    if !reach.reachable {
        out.error = reach.error;
        return out;
    }
    for model in &ep.models {
        if reach.missing.contains(model) {
            let detail = "not on the endpoint".to_string();
            out.tried.push(Tried { model: model.clone(), ok: false, detail, latency_s: None });
            continue;
        }
        match complete(ep, model).await {
            Ok(latency) => {
                out.tried.push(Tried {
                    model: model.clone(),
                    ok: true,
                    detail: format!("answered in {latency:.1}s"),
                    latency_s: Some(latency),
                });
                out.chosen = Some(model.clone());
                break;
            }
            Err(detail) => {
                out.tried.push(Tried { model: model.clone(), ok: false, detail, latency_s: None })
            }
        }
    }
    out
}

impl Reach {
    /// As a line of `reins doctor` (named `endpoint:NAME`): usable when it
    /// answers and serves at least one configured model.
    pub(crate) fn as_check(&self) -> Check {
        let name = format!("endpoint:{}", self.endpoint);
        let mut check = if !self.reachable {
            let why = self.error.clone().unwrap_or_else(|| "no answer".into());
            Check::new(&name, Status::Broken, format!("{}: {why}", self.url)).hint(Some(format!(
                "start the model server (e.g. `ollama serve`) or fix url in [endpoints.{}]",
                self.endpoint
            )))
        } else {
            let mut detail =
                format!("{} answered in {} ms", self.url, self.latency_ms.unwrap_or(0));
            if !self.present.is_empty() {
                detail.push_str(&format!("; has {}", self.present.join(", ")));
            }
            if !self.missing.is_empty() {
                detail.push_str(&format!("; lacks {}", self.missing.join(", ")));
            }
            if let Some(loaded) = &self.loaded {
                let warm: Vec<&String> =
                    self.present.iter().filter(|m| loaded.contains(m)).collect();
                if !warm.is_empty() {
                    let warm: Vec<&str> = warm.iter().map(|m| m.as_str()).collect();
                    detail.push_str(&format!("; loaded: {}", warm.join(", ")));
                }
            }
            if self.present.is_empty() {
                Check::new(&name, Status::Broken, detail).hint(Some(format!(
                    "it serves none of the models in [endpoints.{}]: pull one (e.g. `ollama pull {}`) \
                     or list one it has",
                    self.endpoint,
                    self.missing.first().map_or("MODEL", String::as_str)
                )))
            } else {
                Check::new(&name, Status::Ok, detail)
            }
        };
        check.path = Some(self.url.clone());
        check.endpoint = Some(self.clone());
        check
    }
}

impl EndpointProbe {
    /// As a row of the store's probes (agent `endpoint:NAME`, the model
    /// that answered).
    pub(crate) fn as_probe(&self, ep: &Endpoint) -> Probe {
        let skipped: Vec<String> = self
            .tried
            .iter()
            .filter(|t| !t.ok)
            .map(|t| format!("{}: {}", t.model, t.detail))
            .collect();
        let answered = self.tried.iter().find(|t| t.ok);
        let detail = match (answered, &self.error) {
            (_, Some(err)) => format!("unreachable: {err}"),
            (Some(t), None) if skipped.is_empty() => format!("{} {}", t.model, t.detail),
            (Some(t), None) => format!("{} {} (skipped {})", t.model, t.detail, skipped.join("; ")),
            (None, None) if skipped.is_empty() => "no models configured".to_string(),
            (None, None) => format!("no model answered ({})", skipped.join("; ")),
        };
        Probe {
            agent: ep.probe_key(),
            model: self.chosen.clone(),
            session: String::new(),
            started_at: self.started_at.clone(),
            latency_s: answered.and_then(|t| t.latency_s),
            ok: self.chosen.is_some(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_of_openai_and_ollama_are_read() {
        let openai =
            json!({"object": "list", "data": [{"id": "qwen2.5-coder:7b"}, {"id": "phi4-mini"}]});
        assert_eq!(names(&openai), ["qwen2.5-coder:7b", "phi4-mini"]);
        let ollama = json!({"models": [{"name": "llama3:latest", "model": "llama3:latest"}]});
        assert_eq!(names(&ollama), ["llama3:latest"]);
        assert!(same_model("llama3", "llama3:latest"));
        assert!(!same_model("llama3", "llama3:8b"));
    }
}
