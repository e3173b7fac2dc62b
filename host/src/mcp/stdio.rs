//! `toolgate mcp`: an MCP server on stdin/stdout for agent hosts that only launch stdio
//! servers, relaying to a running daemon's `/mcp`.
//!
//! Design: a transparent relay between rmcp's stdio transport (the agent's side) and rmcp's
//! Streamable HTTP client transport (the daemon's side). Both carry the same JSON-RPC message
//! types (client-to-server one way, server-to-client the other), so every message is forwarded
//! unchanged: `initialize` and its protocol-version negotiation, tool calls, progress
//! notifications and cancellations, resource reads. The alternative, a second `ServerHandler`
//! that re-issues each request to the daemon, would have to re-implement progress forwarding,
//! cancellation mapping and error translation, and could drift from what `/mcp` says; the relay
//! cannot, and it holds no configuration, tools or state of its own.
//!
//! Invariants: nothing is read from disk and no configuration is needed (only the daemon's URL,
//! and its credential when it has `[[tenants]]`, sent as a bearer on every request and never
//! printed);
//! the relay ends when the agent closes stdin (then closes its session with the daemon) or the
//! daemon's side ends (then it exits with an error naming the URL); stdout carries only
//! JSON-RPC, diagnostics go to stderr.

use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig,
};
use rmcp::transport::{Transport, io::stdio};
use rmcp::{RoleClient, RoleServer};

use super::MCP_PATH;

/// Why the relay stopped before the agent closed stdin.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(
        "the toolgate daemon at {url} closed the MCP connection or cannot be reached; is `toolgate serve` running there?"
    )]
    DaemonGone { url: String },
    #[error(
        "cannot send to the toolgate daemon at {url}: {reason}{}",
        if *.credential_missing { " (a daemon with [[tenants]] needs an access key: set TOOLGATE_KEY)" } else { "" }
    )]
    DaemonSend {
        url: String,
        reason: String,
        credential_missing: bool,
    },
    #[error("cannot write to the agent (stdout): {0}")]
    AgentWrite(std::io::Error),
}

/// The `/mcp` endpoint of the daemon at `base_url` (e.g. `http://127.0.0.1:8888`).
pub fn endpoint(base_url: &str) -> String {
    format!("{}{MCP_PATH}", base_url.trim_end_matches('/'))
}

/// Relays between stdin/stdout and the daemon at `base_url` until the agent closes stdin,
/// sending `key` (an access key or a login token) as a bearer credential when given.
pub async fn relay(base_url: &str, key: Option<String>) -> Result<(), RelayError> {
    let url = endpoint(base_url);
    let (stdin, stdout) = stdio();
    let mut agent = AsyncRwTransport::<RoleServer, _, _>::new_server(stdin, stdout);
    let credential_missing = key.is_none();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
    if let Some(key) = key {
        config = config.auth_header(key);
    }
    let mut daemon: StreamableHttpClientTransport<_> =
        StreamableHttpClientTransport::from_config(config);
    let ended = loop {
        tokio::select! {
            from_agent = Transport::<RoleServer>::receive(&mut agent) => {
                let Some(message) = from_agent else { break Ok(()) };
                if let Err(error) = Transport::<RoleClient>::send(&mut daemon, message).await {
                    break Err(RelayError::DaemonSend {
                        url: url.clone(),
                        reason: error.to_string(),
                        credential_missing,
                    });
                }
            }
            from_daemon = Transport::<RoleClient>::receive(&mut daemon) => {
                let Some(message) = from_daemon else {
                    break Err(RelayError::DaemonGone { url: url.clone() });
                };
                Transport::<RoleServer>::send(&mut agent, message)
                    .await
                    .map_err(RelayError::AgentWrite)?;
            }
        }
    };
    if let Err(error) = Transport::<RoleClient>::close(&mut daemon).await {
        tracing::debug!(%error, "closing the MCP session with the daemon failed");
    }
    ended
}
