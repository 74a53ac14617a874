//! The mock as a local model server (Ollama, vLLM, llama-swap): which
//! models it has, which are loaded, and whether it is slow, cold or down.
//! Not in the Python mock; nothing changes until a test sets a model list
//! or a mode, so the real-agent tests see the same server as before.
//!
//! * `set_models`: `GET */models` lists exactly these; a chat or Responses
//!   request for another model is refused 404 as Ollama refuses it;
//!   `GET /api/ps` (Ollama) and `GET /running` (llama-swap) list the loaded
//!   ones.
//! * `set_cold(d)`: no model is loaded; the first request for a model takes
//!   `d` longer (loading), and it is loaded afterwards.
//! * `set_slow(d)`: every answer starts `d` late.
//! * `set_down(true)`: every connection is closed without an answer.
//! * `fail_model(m)`: requests for `m` fail with HTTP 500, as a model whose
//!   runner crashes.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::http::{Request, Responder};
use super::json::{Json, obj};
use super::providers::{Outcome, url_path};

/// What the server pretends to be.
#[derive(Debug, Default)]
pub(crate) struct Local {
    /// The models it has; `None`: the mock's default list, any model answers.
    pub(crate) models: Option<Vec<String>>,
    pub(crate) loaded: HashSet<String>,
    /// How long loading a model takes.
    pub(crate) cold: Option<Duration>,
    pub(crate) slow: Duration,
    pub(crate) down: bool,
    pub(crate) failing: HashSet<String>,
}

/// Shared between the handle and the server.
#[derive(Clone, Debug, Default)]
pub(crate) struct LocalHandle(Arc<Mutex<Local>>);

impl LocalHandle {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Local> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_down(&self) -> bool {
        self.lock().down
    }

    pub(crate) fn slow(&self) -> Duration {
        self.lock().slow
    }
}

/// The model list when one was set (`GET */models`, not Gemini's).
pub(crate) async fn get(
    local: &LocalHandle,
    request: &Request,
    out: &mut Responder<'_>,
) -> io::Result<Option<Outcome>> {
    let path = url_path(&request.path);
    let (models, loaded) = {
        let state = local.lock();
        let Some(models) = state.models.clone() else { return Ok(None) };
        let loaded: Vec<String> =
            models.iter().filter(|m| state.loaded.contains(*m)).cloned().collect();
        (models, loaded)
    };
    let listed = |names: &[String]| -> Vec<Json> {
        names
            .iter()
            .map(|m| obj! {"id" => m, "object" => "model", "created" => 0, "owned_by" => "mock"})
            .collect()
    };
    if path.ends_with("/models") && !path.contains("/v1beta/") {
        out.json(200, &obj! {"object" => "list", "data" => listed(&models)}).await?;
        return Ok(Some(Outcome { provider: Some("openai"), kind: "models", stream: false }));
    }
    if path == "/api/ps" {
        let running: Vec<Json> =
            loaded.iter().map(|m| obj! {"name" => m, "model" => m, "size" => 0}).collect();
        out.json(200, &obj! {"models" => running}).await?;
        return Ok(Some(Outcome { provider: None, kind: "running", stream: false }));
    }
    if path == "/running" {
        let running: Vec<Json> =
            loaded.iter().map(|m| obj! {"model" => m, "state" => "ready"}).collect();
        out.json(200, &obj! {"running" => running}).await?;
        return Ok(Some(Outcome { provider: None, kind: "running", stream: false }));
    }
    Ok(None)
}

/// Before a chat or Responses request is answered: refuses a model the
/// server lacks or one that fails, and loads a cold one.
pub(crate) async fn before_post(
    local: &LocalHandle,
    request: &Request,
    body: &Json,
    out: &mut Responder<'_>,
) -> io::Result<Option<Outcome>> {
    let path = url_path(&request.path);
    if !(path.ends_with("/chat/completions") || path.ends_with("/responses")) {
        return Ok(None);
    }
    let model = body.get("model").and_then(Json::as_str).unwrap_or_default().to_owned();
    // Decided under the lock, answered after it (a guard cannot cross an await).
    let refusal = {
        let state = local.lock();
        match &state.models {
            None => return Ok(None),
            Some(models) if !models.contains(&model) => {
                Some((404, format!("model \"{model}\" not found, try pulling it first")))
            }
            Some(_) if state.failing.contains(&model) => {
                Some((500, "llama runner process has terminated: exit status 2".to_string()))
            }
            Some(_) => None,
        }
    };
    if let Some((status, message)) = refusal {
        out.json(status, &obj! {"error" => obj! {"message" => message, "type" => "api_error"}})
            .await?;
        return Ok(Some(Outcome { provider: Some("openai"), kind: "error", stream: false }));
    }
    let load = {
        let state = local.lock();
        if state.loaded.contains(&model) { None } else { Some(state.cold.unwrap_or_default()) }
    };
    // Loaded once the load is over, so a running list asked meanwhile
    // still says cold.
    if let Some(load) = load {
        tokio::time::sleep(load).await;
        local.lock().loaded.insert(model);
    }
    Ok(None)
}
