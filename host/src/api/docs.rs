//! Self-description: the OpenAPI 3.1 document generated from the handlers, and the Prometheus
//! metrics.

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "toolgate",
        description = "Runs security scanners for HTTP callers without trusting their input. HexStrike-compatible tool API."
    ),
    components(schemas(
        super::error::ErrorBody,
        super::error::FieldErrorBody,
        crate::jobs::ToolRunResponse,
        crate::jobs::FindingSummary,
        crate::jobs::ActiveJobInfo,
        super::job_view::JobView,
        crate::jobs::JobStatusSchema,
    ))
)]
pub struct ApiDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(metrics))
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    /// Built on first use: the routers are the document's only source.
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_string(&super::openapi()).unwrap_or_else(|error| {
            // Unreachable with utoipa's own types; logged, and the caller gets an empty object.
            tracing::error!(%error, "cannot serialize the OpenAPI document");
            "{}".to_string()
        })
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
