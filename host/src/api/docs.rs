//! Self-description: the OpenAPI 3.1 document generated from the handlers, and the Prometheus
//! metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "toolgate",
        description = "Runs security scanners for HTTP callers without trusting their input. HexStrike-compatible tool API."
    ),
    paths(
        super::health::health,
        metrics,
        openapi_json,
        super::tools::list_tools,
        super::tools::describe_tool,
        super::tools::run_tool,
        super::jobs::list_jobs,
        super::jobs::get_job,
        super::jobs::cancel_job,
        super::processes::list_processes,
        super::processes::process_status,
        super::processes::terminate_process,
    ),
    components(schemas(
        super::error::ErrorBody,
        super::error::FieldErrorBody,
        crate::jobs::ToolRunResponse,
        crate::jobs::FindingSummary,
        crate::jobs::ActiveJobInfo,
        crate::store::JobRecord,
        crate::store::JobStatus,
    ))
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics))
}

#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
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
