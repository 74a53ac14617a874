//! The host's side of the control socket.
//!
//! Each connection is served by its own task; every request becomes an
//! [`Incoming`] message to the host's main loop, which owns all session
//! state and answers through a oneshot channel. Connections from other
//! users are refused before a byte is read; every request carries the
//! pid of the process that connected, so the host can tell who asks
//! ([`crate::trust`]).

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

use tokio::io::AsyncWriteExt;

use crate::ipc::api::{Attach, ControlRequest};
use crate::ipc::attach;
use crate::store::follow::SessionFile;
use crate::store::registry::Size;

/// Largest request body accepted: a 1 MiB message, JSON-escaped, fits.
const MAX_BODY: usize = 8 << 20;

/// How long to wait after a failed `accept` before trying again.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// A request for the main loop, with who sent it and the channel for its
/// answer.
pub(crate) struct Incoming {
    pub(crate) request: ControlRequest,
    pub(crate) peer: Peer,
    pub(crate) reply: oneshot::Sender<(u16, serde_json::Value)>,
}

/// The process on the other end of a control connection, from the
/// socket's peer credentials (SO_PEERCRED: what the kernel saw at
/// connect, not what the peer says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) pid: Option<u32>,
    pub(crate) uid: u32,
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
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors or memory: the connection stays in the
                // backlog. Back off instead of spinning on the same error.
                tracing::warn!("cannot accept a control connection: {err}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let peer = match stream.peer_cred() {
            Ok(cred) if cred.uid() == me => {
                Peer { pid: cred.pid().and_then(|p| u32::try_from(p).ok()), uid: me }
            }
            _ => {
                tracing::warn!("refused a control connection from another user");
                continue;
            }
        };
        let to_host = to_host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, to_host.clone(), peer));
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
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
    peer: Peer,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/v1/attach" {
        return Ok(attach(req, to_host, peer).await);
    }
    let (status, body) = match route(req).await {
        Ok(request) => ask_host(request, peer, &to_host).await,
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
    parse_request(&method, &path, &query, &body)
}

/// The request a control call makes, from its method, path, query string
/// and body: a pure function of what the client sent, so every way a
/// client (or an agent) can call it is testable without a socket.
pub(crate) fn parse_request(
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
) -> Result<ControlRequest, (u16, String)> {
    let json = |body: &[u8]| -> Result<serde_json::Value, (u16, String)> {
        if body.is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_slice(body).map_err(|err| (400, format!("invalid json: {err}")))
    };
    match (method.clone(), path) {
        (Method::GET, "/v1/status") => Ok(ControlRequest::Status),
        (Method::GET, "/v1/screen") => {
            let after = query_param(query, "after")
                .map(|v| v.parse::<u64>().map_err(|_| (400, format!("bad after={v}"))))
                .transpose()?;
            Ok(ControlRequest::Screen { after })
        }
        (Method::POST, "/v1/stop") => Ok(ControlRequest::Stop(typed(json(body)?)?)),
        (Method::POST, "/v1/send") => Ok(ControlRequest::Send(typed(json(body)?)?)),
        (Method::GET, "/v1/inbox") => Ok(ControlRequest::Inbox),
        (Method::POST, "/v1/approve") => Ok(ControlRequest::Approve(typed(json(body)?)?)),
        (Method::POST, "/v1/interrupt") => Ok(ControlRequest::Interrupt),
        (Method::POST, "/v1/rate-limit") => Ok(ControlRequest::ArmResume),
        (Method::POST, "/v1/note") => Ok(ControlRequest::Note(Box::new(typed(json(body)?)?))),
        (Method::GET, "/v1/grown") => {
            let number = |name: &str| -> Result<u64, (u16, String)> {
                let v = query_param(query, name).ok_or((400, format!("{name}= is missing")))?;
                v.parse().map_err(|_| (400, format!("bad {name}={v}")))
            };
            let file = query_param(query, "file").unwrap_or_default();
            let file = SessionFile::parse(file)
                .ok_or_else(|| (400, format!("bad file={file}: use events or transcript")))?;
            Ok(ControlRequest::Grown { file, ino: number("ino")?, len: number("len")? })
        }
        (Method::DELETE, "/v1/inbox") => Ok(ControlRequest::Drop { message_id: None }),
        (Method::DELETE, p) if p.starts_with("/v1/inbox/") => {
            Ok(ControlRequest::Drop { message_id: Some(p["/v1/inbox/".len()..].to_string()) })
        }
        (
            _,
            "/v1/status" | "/v1/screen" | "/v1/stop" | "/v1/send" | "/v1/inbox" | "/v1/approve"
            | "/v1/interrupt" | "/v1/note" | "/v1/rate-limit" | "/v1/grown",
        ) => Err((405, format!("method not allowed on {path}"))),
        _ => Err((404, format!("no such endpoint: {path}"))),
    }
}

/// `GET /v1/attach?read_only=1&cols=C&rows=R` with `Upgrade:
/// reins-attach`: registers a viewer with the host and, once the
/// connection is upgraded, pumps the agent's output to it and its frames
/// (keystrokes, sizes) to the host. The viewer leaves when either side
/// ends.
async fn attach(
    mut req: Request<Body>,
    to_host: mpsc::Sender<Incoming>,
    peer: Peer,
) -> Response<Full<Bytes>> {
    let error = |status: u16, message: String| {
        json_response(status, &serde_json::json!({ "ok": false, "error": message }))
    };
    if req.method() != Method::GET {
        return error(405, "method not allowed on /v1/attach".into());
    }
    let upgrade = req.headers().get(hyper::header::UPGRADE).and_then(|v| v.to_str().ok());
    if upgrade != Some(attach::PROTOCOL) {
        return error(400, format!("attach needs `Upgrade: {}`", attach::PROTOCOL));
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let number = |name: &str| query_param(&query, name).and_then(|v| v.parse::<u16>().ok());
    let size = match (number("cols"), number("rows")) {
        (Some(cols), Some(rows)) if cols > 0 && rows > 0 => Some(Size { cols, rows }),
        _ => None,
    };
    let read_only = query_param(&query, "read_only") == Some("1");
    let (output, mut from_host) = mpsc::channel::<Bytes>(VIEWER_BACKLOG);
    let request = ControlRequest::Attach(Attach { read_only, size, output });
    let (status, body) = ask_host(request, peer, &to_host).await;
    if status != 200 {
        return json_response(status, &body);
    }
    let Some(viewer) = body.get("viewer").and_then(serde_json::Value::as_u64) else {
        return error(500, "the host did not number the viewer".into());
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let left = |to_host: mpsc::Sender<Incoming>| async move {
            tell_host(&to_host, ControlRequest::ViewerLeft { viewer }, peer).await;
        };
        let Ok(upgraded) = on_upgrade.await else {
            left(to_host).await;
            return;
        };
        let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        let pump_out = async {
            while let Some(bytes) = from_host.recv().await {
                if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        };
        let pump_in = async {
            while let Ok(Some(frame)) = attach::Frame::read(&mut reader).await {
                let request = match frame {
                    attach::Frame::Input(bytes) => ControlRequest::ViewerInput { viewer, bytes },
                    attach::Frame::Resize(size) => ControlRequest::ViewerResize { viewer, size },
                };
                tell_host(&to_host, request, peer).await;
            }
        };
        // Either side ending ends the viewer: the session ended (output
        // closed), or the viewer detached (its frames ended).
        tokio::select! {
            _ = pump_out => {}
            _ = pump_in => {}
        }
        left(to_host).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(hyper::header::CONNECTION, "upgrade")
        .header(hyper::header::UPGRADE, attach::PROTOCOL)
        .header(attach::REPLY_HEADER, body.to_string())
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid")
}

/// Chunks of output a viewer may fall behind by before it is dropped.
const VIEWER_BACKLOG: usize = 1024;

/// Sends a request whose answer nobody waits for.
async fn tell_host(to_host: &mpsc::Sender<Incoming>, request: ControlRequest, peer: Peer) {
    let (reply, _) = oneshot::channel();
    let _ = to_host.send(Incoming { request, peer, reply }).await;
}

fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, (u16, String)> {
    serde_json::from_value(value).map_err(|err| (400, format!("invalid request: {err}")))
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

async fn ask_host(
    request: ControlRequest,
    peer: Peer,
    to_host: &mpsc::Sender<Incoming>,
) -> (u16, serde_json::Value) {
    let (reply, answer) = oneshot::channel();
    let unavailable =
        || (503, serde_json::json!({ "ok": false, "error": "session is shutting down" }));
    if to_host.send(Incoming { request, peer, reply }).await.is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/architecture.md lists the control API; every endpoint it names
    /// is one the host serves.
    #[test]
    fn the_documented_endpoints_are_served() {
        let doc = include_str!("../../docs/architecture.md");
        let section = doc.split("## The control API").nth(1).unwrap();
        let section = section.split("\n## ").next().unwrap().replace('\n', " ");
        let mut found = 0;
        for method in ["GET", "POST", "DELETE"] {
            for part in section.split(&format!("`{method} ")).skip(1) {
                let path = part.split(['`', '[', '?']).next().unwrap().trim();
                let m = Method::from_bytes(method.as_bytes()).unwrap();
                let full = format!("/v1/{path}");
                let query = match path {
                    "grown" => "file=events&ino=1&len=0",
                    _ => "",
                };
                let body: &[u8] = match path {
                    "send" => br#"{"text":"hi"}"#,
                    "approve" => br#"{"decision":"allow"}"#,
                    "note" => br#"{"type":"escalate","reason":"r","by":"rules"}"#,
                    _ => b"",
                };
                found += 1;
                if path == "attach" {
                    continue; // an upgrade, served before routing
                }
                if let Err((status, why)) = parse_request(&m, &full, query, body) {
                    panic!("{method} {full} is documented but answers {status}: {why}");
                }
            }
        }
        assert!(found >= 12, "only {found} endpoints found in the doc");
    }
}
