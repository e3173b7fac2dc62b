//! The MCP server (issue #18): every available plugin tool is an MCP tool that AI agents call
//! directly, served at `/mcp` on the daemon's own listener with the official Rust SDK (`rmcp`,
//! Streamable HTTP transport), and relayed over stdio by `toolgate mcp` (see [`stdio`]).
//!
//! Invariants:
//! - a `tools/call` runs through `JobService::start`, exactly like `POST /api/tools/{tool}`: the
//!   same checks, sandbox, limits, queue and job record; nothing here runs or plans a tool;
//! - a refused call is a tool result with `isError: true` whose text names every field error
//!   (field, the bad value, what is allowed), rendered from the same `JobError` the API renders;
//! - a cancelled MCP request cancels its job (the sandbox kills the tool); a dropped request
//!   (client gone, session closed) does so when `limits.cancel_on_disconnect` is set;
//! - requests carrying an `Origin` that is not a loopback origin are refused with 403
//!   (DNS-rebinding protection), as are `Host`s that are not loopback; POST bodies are bounded by
//!   `limits.max_body_bytes` (413); malformed JSON-RPC, unknown methods, unsupported protocol
//!   versions and unknown session ids get the SDK's spec errors.
//!
//! Not done here (conditional on unfinished issues): tenants or isolation between MCP clients,
//! `notifications/tools/list_changed` on plugin reload (there is no reload yet), and the
//! asynchronous (task-based) scan tools.

mod handler;
mod render;
mod scan_tools;
pub mod stdio;

use std::sync::Arc;
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

pub use handler::McpHandler;

use crate::api::AppState;

/// The path the MCP endpoint is served at.
pub const MCP_PATH: &str = "/mcp";

/// Origins a browser may send to `/mcp`: loopback only, any port (the daemon listens on
/// loopback only, so these are the only origins that can be "the listen address").
const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// How often an idle SSE stream carries a keep-alive, so a vanished client is noticed.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `/mcp` service: one [`McpHandler`] per session over the shared application state.
/// Sessions end when `shutdown` is cancelled.
pub fn http_service(
    state: AppState,
    shutdown: CancellationToken,
) -> StreamableHttpService<McpHandler, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(LOOPBACK_ORIGINS)
        .enforce_origin_validation()
        .with_max_request_body_bytes(state.settings.max_body_bytes)
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        .with_cancellation_token(shutdown);
    let handler = McpHandler::new(state);
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

#[cfg(test)]
mod tests;
