//! The HTTP API: one router per resource, merged here, sharing one cloneable [`AppState`].
//!
//! Invariants: every route is registered with its OpenAPI operation (`utoipa_axum::routes!`), so
//! the document served at `/openapi.json` is generated from the routes themselves; every error is
//! an [`ApiError`] rendered as JSON; request bodies are bounded by `limits.max_body_bytes`; every
//! request is counted by method, matched route and status (never by raw path or an unknown
//! method, which would let callers create unbounded metric series).

mod admin;
mod audit;
pub mod auth;
mod docs;
mod error;
mod health;
mod iac;
mod job_view;
mod jobs;
mod path_segment;
mod processes;
pub mod tenant_rates;
mod tools;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

pub use docs::ApiDoc;
pub use error::{ApiError, ErrorBody, FieldErrorBody, RETRY_AFTER_SECS};
pub use iac::IacSettings;
pub(crate) use iac::default_scan_tool;
pub use job_view::JobView;
pub(crate) use tools::CancelOnDrop;
pub use tools::ToolInfo;

use crate::jobs::JobService;
use crate::metrics::Metrics;

/// A loaded plugin, as `/health` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
}

/// A plugin file that was not loaded, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkippedPluginInfo {
    pub path: String,
    pub reason: String,
}

/// Facts computed once at start-up so `/health` answers without I/O.
#[derive(Debug)]
pub struct StartupFacts {
    pub started: Instant,
    pub plugins: Vec<PluginInfo>,
    pub skipped_plugins: Vec<SkippedPluginInfo>,
    /// What the sandbox can enforce on this host.
    pub sandbox: serde_json::Value,
    /// The store's backend: `sqlite`, or `postgresql` (shared with other daemons).
    pub store_backend: &'static str,
}

/// Request-handling settings from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ApiSettings {
    pub cancel_on_disconnect: bool,
    pub max_body_bytes: usize,
}

/// Shared state of every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub jobs: JobService,
    /// The asynchronous scan queue (its workers are started by `daemon::serve`).
    pub scans: crate::scans::ScanService,
    /// The IaC scan API's settings and upload URL signer.
    pub iac: Arc<IacSettings>,
    pub metrics: Arc<Metrics>,
    pub facts: Arc<StartupFacts>,
    pub settings: ApiSettings,
    /// Who may call (`[[tenants]]`), checked by the [`auth::authenticate`] middleware.
    pub auth: Arc<auth::AuthState>,
    /// The audit trail: handlers append what each authenticated action did.
    pub audit: crate::audit::AuditTrail,
}

/// Every route, each registered together with its OpenAPI operation, so that the document
/// covers exactly the routes served.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(docs::router())
        .merge(tools::router())
        .merge(jobs::router())
        .merge(processes::router())
        .merge(auth::router())
        .merge(audit::router())
        .merge(iac::router())
        .merge(admin::router())
}

/// The OpenAPI 3.1 document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The whole HTTP application: the API, and the MCP endpoint (`/mcp`, whose sessions end when
/// `shutdown` is cancelled).
pub fn app(state: AppState, shutdown: CancellationToken) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let max_body_bytes = state.settings.max_body_bytes;
    let auth = Arc::clone(&state.auth);
    let (router, _) = routes().split_for_parts();
    router
        .route_service(
            crate::mcp::MCP_PATH,
            crate::mcp::http_service(state.clone(), shutdown),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        // Inside the metrics layer, so refused requests are counted too.
        .layer(middleware::from_fn_with_state(auth, auth::authenticate))
        .layer(middleware::from_fn_with_state(metrics, count_request))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /openapi.json".into())
}

/// A known path with a method it does not take; axum adds the `Allow` header.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.as_str().chars().take(32).collect(),
    }
}

/// Counts each request by method, matched route template and status.
async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    metrics.record_request(method, &route, response.status().as_u16());
    response
}

/// The method as a metric label: a caller can send any token as a method, and each new label
/// value would be a new series kept for the daemon's life, so only the standard ones are named.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
