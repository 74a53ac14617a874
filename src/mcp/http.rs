//! `reins mcp --listen 127.0.0.1:PORT`: the same server over MCP's
//! streamable HTTP transport, for clients that cannot start it themselves.
//!
//! Loopback only: anything else is refused, since the tools start agents
//! that run commands. Every request must carry `Authorization: Bearer
//! TOKEN`; the token is 256 random bits written to a file of its own (mode
//! 0600, in the 0700 runtime directory) that a client reads, and removed
//! when the server ends. It is never printed, logged or shown in status:
//! only its path is. rmcp checks `Host` (and `Origin`) against loopback
//! names too, which stops DNS rebinding from a browser.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::{Request, Response, StatusCode};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::error::CliError;
use crate::mcp::Fleet;

/// The path the MCP endpoint is served at.
pub(crate) const ENDPOINT: &str = "/mcp";

/// A `--listen` address: `127.0.0.1:PORT`, `[::1]:PORT` or
/// `localhost:PORT`; a loopback address and nothing else.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, CliError> {
    let addr = match text.strip_prefix("localhost:") {
        Some(port) => {
            port.parse::<u16>().ok().map(|p| SocketAddr::new(Ipv4Addr::LOCALHOST.into(), p))
        }
        None => text.parse::<SocketAddr>().ok(),
    };
    let Some(addr) = addr else {
        return Err(CliError::usage(format!("--listen {text}: not an address and port"))
            .hint("e.g. --listen 127.0.0.1:8765 (0 for any free port)"));
    };
    if !is_loopback(addr.ip()) {
        return Err(CliError::usage(format!(
            "--listen {text}: {} is not a loopback address",
            addr.ip()
        ))
        .hint(
            "reins mcp serves HTTP on 127.0.0.1 or [::1] only; to reach it from another \
             machine, forward a port over SSH (ssh -L 8765:127.0.0.1:8765 HOST)",
        ));
    }
    Ok(addr)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The token file of a server listening on `addr`.
pub(crate) fn token_path(runtime: &Path, addr: SocketAddr) -> PathBuf {
    runtime.join("mcp").join(format!("{}-{}.token", addr.ip(), addr.port()))
}

/// Serves `fleet` on `addr` until SIGINT or SIGTERM, then ends what it
/// still runs and removes the token file.
pub(crate) async fn serve(fleet: Fleet, addr: SocketAddr) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| CliError::failure(format!("cannot listen on {addr}: {err}")))?;
    let addr = listener.local_addr()?;
    let token = crate::ids::random_hex(32);
    let path = token_path(fleet.state.runtime(), addr);
    write_token(&path, &token)?;
    let _remove = RemoveOnDrop(path.clone());
    eprintln!(
        "reins mcp: listening on http://{addr}{ENDPOINT} (bearer token in {})",
        path.display()
    );

    let stop = CancellationToken::new();
    let config = StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token());
    let for_sessions = fleet.clone();
    let service = StreamableHttpService::new(
        move || Ok(for_sessions.for_client()),
        LocalSessionManager::default().into(),
        config,
    );
    let token = std::sync::Arc::new(token);
    let mut signals = Signals::new()?;
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let service = service.clone();
                let token = token.clone();
                let stop = stop.clone();
                connections.spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let handler = hyper::service::service_fn(move |request| {
                        let service = service.clone();
                        let token = token.clone();
                        async move { Ok::<_, Infallible>(answer(&service, &token, request).await) }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, handler);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = stop.cancelled() => connection.as_mut().graceful_shutdown(),
                    }
                });
            }
            _ = signals.next() => break,
        }
    }
    stop.cancel();
    fleet.shut_down().await;
    connections.abort_all();
    Ok(())
}

type Body = BoxBody<Bytes, Infallible>;

/// One HTTP request: the endpoint, for holders of the token.
async fn answer(
    service: &StreamableHttpService<Fleet, LocalSessionManager>,
    token: &str,
    mut request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    if request.uri().path() != ENDPOINT {
        return plain(StatusCode::NOT_FOUND, &format!("reins mcp serves {ENDPOINT} only\n"));
    }
    if !authorized(request.headers(), token) {
        let mut response = plain(
            StatusCode::UNAUTHORIZED,
            "reins mcp: send Authorization: Bearer TOKEN (the token is in the file reins mcp \
             named when it started)\n",
        );
        response
            .headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, "Bearer realm=\"reins\"".parse().unwrap());
        return response;
    }
    // Past this point nothing needs it, so nothing can log it.
    request.headers_mut().remove(hyper::header::AUTHORIZATION);
    service.handle(request).await
}

/// Whether the request carries the token (compared in constant time).
fn authorized(headers: &hyper::HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let body = http_body_util::Full::new(Bytes::from(text.to_string())).boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, "text/plain".parse().unwrap());
    response
}

/// Writes the token to a new file only the user can read (in a directory
/// only the user can enter).
fn write_token(path: &Path, token: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("the token file is in a directory");
    crate::store::fsutil::create_private_dir_all(dir)?;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| CliError::failure(format!("cannot write {}: {err}", path.display())))?;
    file.write_all(format!("{token}\n").as_bytes())?;
    Ok(())
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// SIGINT and SIGTERM, as one stream.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_listened_on() {
        for ok in ["127.0.0.1:8765", "127.0.0.1:0", "[::1]:9", "localhost:7", "127.1.2.3:80"] {
            assert!(parse_listen(ok).is_ok(), "{ok}");
        }
        for bad in ["0.0.0.0:8765", "[::]:1", "192.168.1.5:80", "10.0.0.1:1"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.message.contains("is not a loopback address"), "{bad}: {}", err.message);
            assert!(err.hint.unwrap().contains("SSH"));
        }
        for bad in ["8765", "localhost", "example.com:80", "127.0.0.1"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.message.contains("not an address and port"), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn the_token_is_checked_whole() {
        let mut headers = hyper::HeaderMap::new();
        assert!(!authorized(&headers, "abc"));
        headers.insert(hyper::header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(authorized(&headers, "abc"));
        assert!(!authorized(&headers, "abcd"));
        assert!(!authorized(&headers, "abd"));
        headers.insert(hyper::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(!authorized(&headers, "abc"));
    }
}
