//! Administration routes: `POST /admin/plugins/reload`.
//!
//! Invariants: with `[[tenants]]`, an admin route answers only a caller whose tenant has
//! `role = "admin"` (the authentication middleware has already refused anyone without a
//! credential); without tenants, only a client connected from a loopback address (the daemon adds
//! the peer address to every request as `ConnectInfo`); a request without a known peer is
//! refused, never assumed local.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use crate::jobs::reload::ReloadError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reload_plugins))
}

/// Loads the plugin directory again and swaps the plugin set atomically: in-flight jobs finish
/// on the plugins that planned them; a file that no longer loads leaves its tool on the previous
/// plugin, and the answer says why, per plugin.
#[utoipa::path(post, path = "/admin/plugins/reload", tag = "admin",
    responses(
        (status = 200, description = "The new plugin set is in force; `plugins` says what became of each file (kept_previous and skipped with the reason)", body = Object),
        (status = 403, description = "Not an admin-role tenant (with [[tenants]]), or not from a loopback address (without)", body = Object),
        (status = 503, description = "The plugin directory (key plugins_dir) cannot be read; the previous plugins keep serving", body = Object),
        (status = 500, description = "The reload could not run; the previous plugins keep serving", body = Object)))]
async fn reload_plugins(
    State(state): State<AppState>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let refusal = if state.auth.tenants().is_some() {
        let admin = caller.is_some_and(|axum::Extension(caller)| caller.is_admin());
        (!admin).then_some("admin routes answer only tenants with role = \"admin\"")
    } else {
        let local = peer.is_some_and(|axum::Extension(ConnectInfo(addr))| addr.ip().is_loopback());
        (!local).then_some("admin routes answer only loopback clients (127.0.0.1, ::1)")
    };
    if let Some(message) = refusal {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": message })),
        )
            .into_response();
    }
    match state.jobs.reload_plugins().await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        // The operator can fix a missing plugin directory: 503 naming the key, not a 500.
        Err(error @ ReloadError::Directory { .. }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": error.to_string(), "key": "plugins_dir" })),
        )
            .into_response(),
        Err(error @ (ReloadError::NotEnabled | ReloadError::Runtime(_) | ReloadError::Job(_))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}
