//! The client's side of the control socket.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    #[error("cannot connect to {}: {source}", path.display())]
    Connect { path: PathBuf, source: std::io::Error },
    #[error(
        "{} is served by uid {uid}, not by you (uid {me}): refusing to talk to it",
        path.display()
    )]
    Impostor { path: PathBuf, uid: u32, me: u32 },
    #[error("the host did not answer within {0:?}")]
    Timeout(Duration),
    #[error("control request failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("the host answered {status}: {message}")]
    Status { status: u16, message: String },
    #[error("the host sent an unreadable answer: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Talks to one session's host.
pub(crate) struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Client {
    pub(crate) fn new(socket: &Path, timeout: Duration) -> Client {
        Client { socket: socket.to_path_buf(), timeout }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call("GET", path, Bytes::new()).await
    }

    pub(crate) async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call("DELETE", path, Bytes::new()).await
    }

    pub(crate) async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call("POST", path, Bytes::from(serde_json::to_vec(body)?)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.timeout, self.call_inner(method, path, body))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))?
    }

    async fn call_inner<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<T, ClientError> {
        let stream = connect(&self.socket).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "reins")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("static request parts are valid");
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
            return Err(ClientError::Status { status, message });
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Connects to a session's control socket, and checks that the process
/// serving it belongs to this user before a byte is sent: whoever could
/// put a socket at that path must not receive the messages and answers
/// meant for a session.
pub(crate) async fn connect(path: &Path) -> Result<UnixStream, ClientError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ClientError::Connect { path: path.to_path_buf(), source })?;
    let me = rustix::process::getuid().as_raw();
    let cred = stream
        .peer_cred()
        .map_err(|source| ClientError::Connect { path: path.to_path_buf(), source })?;
    if cred.uid() != me {
        return Err(ClientError::Impostor { path: path.to_path_buf(), uid: cred.uid(), me });
    }
    Ok(stream)
}
