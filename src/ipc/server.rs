//! The host's side of the control socket.
//!
//! Each connection is served by its own task; every request becomes an
//! [`Incoming`] message to the host's main loop, which owns all session
//! state and answers through a oneshot channel. Connections from other
//! users are refused before a byte is read.

use std::convert::Infallible;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::ipc::api::ControlRequest;

/// Largest request body accepted: a 1 MiB message, JSON-escaped, fits.
const MAX_BODY: usize = 8 << 20;

/// A request for the main loop, with the channel for its answer.
pub(crate) struct Incoming {
    pub(crate) request: ControlRequest,
    pub(crate) reply: oneshot::Sender<(u16, serde_json::Value)>,
}

/// Binds the socket, replacing a stale file (the caller holds the host
/// lock, so nothing else can be serving it), and makes it owner-only.
pub(crate) fn bind(path: &Path) -> io::Result<UnixListener> {
    crate::store::fsutil::remove_if_exists(path)?;
    // Bind with a restrictive umask-equivalent: set the mode right after.
    // The directory is 0700, so nobody else can reach the socket meanwhile.
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections until the listener fails or the host goes away.
pub(crate) async fn serve(listener: UnixListener, to_host: mpsc::Sender<Incoming>) {
    let me = rustix::process::getuid().as_raw();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let peer_ok = stream.peer_cred().is_ok_and(|cred| cred.uid() == me);
        if !peer_ok {
            tracing::warn!("refused a control connection from another user");
            continue;
        }
        let to_host = to_host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, to_host.clone()));
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("control connection ended: {err}");
            }
        });
    }
}

async fn handle(
    req: Request<Body>,
    to_host: mpsc::Sender<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match route(req).await {
        Ok(request) => ask_host(request, &to_host).await,
        Err((status, message)) => (status, serde_json::json!({ "ok": false, "error": message })),
    };
    Ok(json_response(status, &body))
}

async fn route(req: Request<Body>) -> Result<ControlRequest, (u16, String)> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let body = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|err| {
            if err.is::<http_body_util::LengthLimitError>() {
                (413, format!("request body over {} MiB", MAX_BODY >> 20))
            } else {
                (400, format!("cannot read request body: {err}"))
            }
        })?
        .to_bytes();
    let json = |body: &[u8]| -> Result<serde_json::Value, (u16, String)> {
        if body.is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_slice(body).map_err(|err| (400, format!("invalid json: {err}")))
    };
    match (method, path.as_str()) {
        (Method::GET, "/v1/status") => Ok(ControlRequest::Status),
        (Method::GET, "/v1/screen") => {
            let after = query_param(&query, "after")
                .map(|v| v.parse::<u64>().map_err(|_| (400, format!("bad after={v}"))))
                .transpose()?;
            Ok(ControlRequest::Screen { after })
        }
        (Method::POST, "/v1/stop") => Ok(ControlRequest::Stop(typed(json(&body)?)?)),
        (Method::POST, "/v1/send") => Ok(ControlRequest::Send(typed(json(&body)?)?)),
        (Method::GET, "/v1/inbox") => Ok(ControlRequest::Inbox),
        (Method::POST, "/v1/approve") => Ok(ControlRequest::Approve(typed(json(&body)?)?)),
        (Method::POST, "/v1/interrupt") => Ok(ControlRequest::Interrupt),
        (Method::POST, "/v1/note") => Ok(ControlRequest::Note(Box::new(typed(json(&body)?)?))),
        (Method::DELETE, "/v1/inbox") => Ok(ControlRequest::Drop { message_id: None }),
        (Method::DELETE, p) if p.starts_with("/v1/inbox/") => {
            Ok(ControlRequest::Drop { message_id: Some(p["/v1/inbox/".len()..].to_string()) })
        }
        (
            _,
            "/v1/status" | "/v1/screen" | "/v1/stop" | "/v1/send" | "/v1/inbox" | "/v1/approve"
            | "/v1/interrupt" | "/v1/note",
        ) => Err((405, format!("method not allowed on {path}"))),
        _ => Err((404, format!("no such endpoint: {path}"))),
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, (u16, String)> {
    serde_json::from_value(value).map_err(|err| (400, format!("invalid request: {err}")))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

async fn ask_host(
    request: ControlRequest,
    to_host: &mpsc::Sender<Incoming>,
) -> (u16, serde_json::Value) {
    let (reply, answer) = oneshot::channel();
    let unavailable =
        || (503, serde_json::json!({ "ok": false, "error": "session is shutting down" }));
    if to_host.send(Incoming { request, reply }).await.is_err() {
        return unavailable();
    }
    answer.await.unwrap_or_else(|_| unavailable())
}

fn json_response(status: u16, body: &impl Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("static response parts are valid")
}
