//! The HTTP server: an accept loop that serves each connection with hyper's HTTP/1.1 server
//! (keep-alive on) in a task of its own.
//!
//! Invariants:
//! - at most `max_connections` connections are open at once. Each holds a file descriptor, and
//!   a tool call's pipes, pidfd and directories come from the same per-process limit, so
//!   connections must run out well before descriptors do. A connection beyond the cap is
//!   answered a fixed `503` with `Retry-After` (written without waiting: a new socket's send
//!   buffer takes it at once) and closed straight away, so a refusal holds nothing;
//! - no client is waited on without a bound ([`super::waits`]): for a request to begin, for its
//!   head, for its body;
//! - a failed `accept` (EMFILE, ENFILE, ENOBUFS) pauses the loop, doubling from 10 ms up to a
//!   second, instead of spinning on the connection still queued;
//! - on shutdown the listener is closed first (the kernel then refuses new connections), idle
//!   connections are closed at once and busy ones after their answer; [`serve`] returns when the
//!   last one has ended.

use std::convert::Infallible;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower::util::Oneshot;

use super::waits::{BodyDeadline, ClientWaits};
use crate::api::{ErrorBody, RETRY_AFTER_SECS};

/// First pause after a failed accept: short, because descriptors free up as soon as a
/// connection or a job ends.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest pause: a full descriptor table empties as connections time out, in seconds, so
/// trying more often than this gains nothing.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Most bytes of a refused connection's request read (and dropped) before it is closed: closing
/// a socket with unread data makes the kernel send a reset, which can cost the client the 503
/// it was sent. A request head fits; anything more is not waited for.
const REFUSAL_DRAIN_BYTES: usize = 16 * 1024;

/// What bounds the server's connections (`[http]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    pub waits: ClientWaits,
}

/// Serves `app` on `listener` until `shutdown`, then closes the listener and returns when every
/// connection has ended (busy ones after their answer).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let refusal = refusal_response(limits.max_connections);
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut refusing = false;
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                (stream, peer)
            }
            // The client gave up while queued: nothing to do.
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                tracing::error!(
                    %error,
                    pause_ms = backoff.as_millis() as u64,
                    "cannot accept a connection; pausing before the next try"
                );
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        if connections.len() >= limits.max_connections {
            if !refusing {
                refusing = true;
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "connection limit reached: new connections get 503 until some close"
                );
            }
            refuse(stream, &refusal);
            continue;
        }
        if refusing {
            refusing = false;
            tracing::info!("below the connection limit again: accepting connections");
        }
        // Nagle's algorithm off: a response written in parts (an MCP answer's SSE events, a
        // streamed body) must not wait for the ACK of the part before it, which the client may
        // delay by up to 40 ms. A refused connection's single write does not need it.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
        connections.spawn(serve_connection(
            stream,
            peer,
            app.clone(),
            limits.waits,
            shutdown.clone(),
        ));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Accept errors that concern one connection the client already gave up on, not the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// The whole answer to a connection beyond the cap, built once.
fn refusal_response(max_connections: usize) -> Vec<u8> {
    let body = ErrorBody {
        error: format!(
            "too many open connections: the daemon serves at most {max_connections} at once; \
             retry later"
        ),
        errors: None,
    };
    let body = serde_json::to_string(&body).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes `response` to `stream` without waiting, drops what of its request already arrived,
/// and closes it.
fn refuse(stream: TcpStream, response: &[u8]) {
    // tokio's own non-blocking calls answer "would block" until the reactor has seen the new
    // socket; the plain (still non-blocking) socket is written and read at once.
    let Ok(mut stream) = stream.into_std() else {
        return;
    };
    if let Err(error) = stream.write_all(response) {
        tracing::debug!(%error, "cannot write the connection-limit answer");
        return;
    }
    let mut scratch = [0u8; 4096];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN_BYTES {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(read) => drained += read,
        }
    }
}

/// Serves one connection until it ends, or until `shutdown` and then its current answer.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    waits: ClientWaits,
    shutdown: CancellationToken,
) {
    let (stream, timer) = waits.watch(stream);
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(timer)
        .header_read_timeout(waits.header_read);
    let service = AppService {
        app,
        body_read: waits.body_read,
        peer,
    };
    let connection = http.serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        // A client that went away or timed out; nothing the daemon must act on.
        tracing::debug!(%error, "connection closed");
    }
}

/// Where signed upload URLs point (their bodies get a per-stall deadline).
const UPLOAD_PATH_PREFIX: &str = "/iac/v2/uploads/";

/// The API as hyper calls it: each request's body gets its deadline on the way in.
#[derive(Clone)]
struct AppService {
    app: Router,
    body_read: Duration,
    /// The client's address, for authentication's failure limiting and the audit trail, and
    /// handed to handlers as `ConnectInfo` (admin routes are loopback-only without tenants).
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for AppService {
    type Response = Response;
    type Error = Infallible;
    type Future = Oneshot<Router, hyper::Request<BodyDeadline<Incoming>>>;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        // An upload (up to `uploads.max_upload_bytes`) takes as long as the client's link
        // needs: its deadline is on each stall, not on the whole body. Its URL is a signed,
        // single-use credential, so a slow drip there is not an anonymous resource hold.
        let upload = request.uri().path().starts_with(UPLOAD_PATH_PREFIX);
        let body_read = self.body_read;
        let mut request = request.map(|body| {
            if upload {
                BodyDeadline::per_stall(body, body_read)
            } else {
                BodyDeadline::new(body, body_read)
            }
        });
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        self.app.clone().oneshot(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_503_with_retry_after_and_a_json_body() {
        let response = String::from_utf8(refusal_response(7)).expect("utf-8");
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("retry-after: {RETRY_AFTER_SECS}\r\n")),
            "{head}"
        );
        assert!(head.contains("connection: close"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|error| error.contains("at most 7 at once")),
            "{json}"
        );
    }
}
