//! The HTTP under every endpoint call: one request on a fresh connection,
//! JSON in and out. Plain `http://` only (the point is a model server on
//! this machine or network). Callers bound every call with a deadline.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// An answers are read up to this size (a model list, a short completion).
const MAX_BODY: usize = 4 << 20;

/// Where an OpenAI-compatible server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// `host:port` to connect to.
    pub(crate) authority: String,
    /// The API's path prefix (`/v1`), without a trailing slash.
    pub(crate) prefix: String,
}

impl BaseUrl {
    /// `http://HOST[:PORT][/PATH]`; no path means `/v1` (Ollama, vLLM and
    /// LiteLLM all serve the OpenAI API there).
    pub(crate) fn parse(url: &str) -> Result<BaseUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            if url.starts_with("https://") {
                "only http:// endpoints are supported (a model server on this machine or network)"
                    .to_string()
            } else {
                format!("{url:?} is not an http:// URL")
            }
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{url:?} names no host (or carries credentials)"));
        }
        let authority =
            if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
        let prefix = if path.is_empty() { "/v1".to_string() } else { path.to_string() };
        Ok(BaseUrl { authority, prefix })
    }

    /// The URL as shown to people.
    pub(crate) fn shown(&self) -> String {
        format!("http://{}{}", self.authority, self.prefix)
    }
}

/// An HTTP answer: status and JSON body (`Value::Null` when not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// One request to `path` (absolute, from the server's root). `bearer` is
/// sent as the Authorization header and never appears in an error.
pub(crate) async fn request(
    base: &BaseUrl,
    method: &str,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&str>,
) -> Result<Answer, String> {
    let stream = TcpStream::connect(&base.authority)
        .await
        .map_err(|err| format!("cannot connect to {}: {err}", base.authority))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("HTTP handshake with {} failed: {err}", base.authority))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", &base.authority)
        .header("accept", "application/json");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let payload = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(body.to_string())
        }
        None => Bytes::new(),
    };
    let request = builder.body(Full::new(payload)).map_err(|err| err.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| format!("{} {path} on {} failed: {err}", method, base.authority))?;
    let status = response.status().as_u16();
    let limited = http_body_util::Limited::new(response.into_body(), MAX_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|err| format!("reading the answer to {path} failed: {err}"))?
        .to_bytes();
    Ok(Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
}

/// The error message in an OpenAI-style error body, if there is one.
pub(crate) fn error_message(body: &Value) -> Option<String> {
    let message =
        body.pointer("/error/message").or_else(|| body.get("error")).and_then(Value::as_str)?;
    Some(message.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_default_to_v1_and_refuse_https() {
        let b = BaseUrl::parse("http://127.0.0.1:11434").unwrap();
        assert_eq!((b.authority.as_str(), b.prefix.as_str()), ("127.0.0.1:11434", "/v1"));
        let b = BaseUrl::parse("http://gpu-box/openai/v1/").unwrap();
        assert_eq!((b.authority.as_str(), b.prefix.as_str()), ("gpu-box:80", "/openai/v1"));
        assert!(BaseUrl::parse("https://api.example.com").unwrap_err().contains("http://"));
        assert!(BaseUrl::parse("localhost:1").is_err());
        assert!(BaseUrl::parse("http:///v1").is_err());
        assert!(BaseUrl::parse("http://user:pw@host/v1").is_err());
    }

    #[test]
    fn error_bodies_are_read() {
        let body = serde_json::json!({"error": {"message": "model \"x\" not found"}});
        assert_eq!(error_message(&body).unwrap(), "model \"x\" not found");
        assert_eq!(error_message(&serde_json::json!({"error": "down"})).unwrap(), "down");
        assert!(error_message(&Value::Null).is_none());
    }
}
