//! Model endpoints: OpenAI-compatible servers (Ollama, vLLM, LiteLLM,
//! llama-swap) named in config.toml as `[endpoints.NAME]`, with the models
//! to use in fallback order. reins asks them three things, each bounded by
//! a deadline: are you there and which of my models do you have
//! ([`check::reach`]), which model answers a tiny request first
//! ([`check::probe`]), and is the model loaded now ([`check::warm`]).

pub(crate) mod check;
pub(crate) mod client;

use std::time::Duration;

use serde::Serialize;

/// How long a probe's tiny request may take (a cold local model loads).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One `[endpoints.NAME]`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Endpoint {
    pub(crate) name: String,
    /// The base URL as written.
    pub(crate) url: String,
    #[serde(skip)]
    pub(crate) base: client::BaseUrl,
    /// The models to use, first choice first.
    pub(crate) models: Vec<String>,
    /// How long one tiny request may take.
    #[serde(serialize_with = "secs")]
    pub(crate) timeout: Duration,
    /// The environment variable holding its API key (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) api_key_env: Option<String>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Endpoint {
    /// A stand-in while a config file is read (never asked anything).
    pub(crate) fn placeholder() -> Endpoint {
        Endpoint {
            name: String::new(),
            url: String::new(),
            base: client::BaseUrl { authority: String::new(), prefix: String::new() },
            models: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            api_key_env: None,
        }
    }

    /// The API key from its variable, if one is set.
    pub(crate) fn api_key(&self) -> Option<String> {
        let var = self.api_key_env.as_deref()?;
        std::env::var(var).ok().filter(|v| !v.is_empty())
    }

    /// The name its probes are stored under (beside the agents' probes).
    pub(crate) fn probe_key(&self) -> String {
        format!("endpoint:{}", self.name)
    }
}
