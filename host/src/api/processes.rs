//! HexStrike's process endpoints, over toolgate's live jobs. A process is named by its job id or,
//! as HexStrike's MCP client sends it (`terminate_process(pid: int)`), by the process id of a
//! running job's tool; a pid that is not a live job's tool names nothing, so callers can never
//! signal an arbitrary process.

use axum::Extension;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::path_segment::PathSegment;
use crate::audit::AuditEvent;
use crate::jobs::ActiveJobInfo;
use toolgate_auth::audit::Action;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_processes))
        .routes(routes!(process_status))
        .routes(routes!(terminate_process))
}

/// `GET /api/processes/list` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessList {
    pub success: bool,
    /// Live jobs by job id.
    pub active_processes: BTreeMap<String, ActiveJobInfo>,
    pub total_count: usize,
}

/// `GET /api/processes/status/{id}` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessStatus {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ActiveJobInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `POST /api/processes/terminate/{id}` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct TerminateResult {
    pub success: bool,
    pub message: String,
}

#[utoipa::path(get, path = "/api/processes/list", tag = "processes",
    responses((status = 200, description = "Live (queued or running) jobs", body = ProcessList)))]
async fn list_processes(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<ProcessList> {
    let active_processes: BTreeMap<_, _> = state
        .jobs
        .live_jobs(caller.owner())
        .into_iter()
        .map(|job| (job.job_id.clone(), job))
        .collect();
    Json(ProcessList {
        success: true,
        total_count: active_processes.len(),
        active_processes,
    })
}

#[utoipa::path(get, path = "/api/processes/status/{id}", tag = "processes",
    params(("id" = String, Path, description = "Job id, or the pid of a running job's tool")),
    responses(
        (status = 200, description = "The live job", body = ProcessStatus),
        (status = 404, description = "No live job with this id", body = ProcessStatus)))]
async fn process_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathSegment(id): PathSegment,
) -> (StatusCode, Json<ProcessStatus>) {
    match state.jobs.live_job(&id, caller.owner()) {
        Some(process) => (
            StatusCode::OK,
            Json(ProcessStatus {
                success: true,
                process: Some(process),
                error: None,
            }),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(ProcessStatus {
                success: false,
                process: None,
                error: Some(not_live(&id)),
            }),
        ),
    }
}

#[utoipa::path(post, path = "/api/processes/terminate/{id}", tag = "processes",
    params(("id" = String, Path, description = "Job id, or the pid of a running job's tool")),
    responses(
        (status = 200, description = "Termination requested", body = TerminateResult),
        (status = 404, description = "No live job with this id", body = TerminateResult)))]
async fn terminate_process(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathSegment(id): PathSegment,
) -> (StatusCode, Json<TerminateResult>) {
    let owner = caller.owner();
    let live = state.jobs.live_job(&id, owner);
    let terminated = live.filter(|job| state.jobs.cancel(&job.job_id, owner));
    let event = match &terminated {
        Some(job) => {
            AuditEvent::allowed(Action::Terminate, format!("job {}", job.job_id)).tool(&job.tool)
        }
        None => AuditEvent::denied(Action::Terminate, not_live(&id)),
    };
    state.audit.record(&caller, event).await;
    if let Some(job) = terminated {
        (
            StatusCode::OK,
            Json(TerminateResult {
                success: true,
                message: format!("job {} is being terminated", job.job_id),
            }),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(TerminateResult {
                success: false,
                message: not_live(&id),
            }),
        )
    }
}

fn not_live(id: &str) -> String {
    format!(
        "no queued or running job with id or tool pid {:?}",
        id.chars().take(64).collect::<String>()
    )
}
