//! `/api/jobs`: the job history and cancellation, through the job service's public operations.

use axum::Extension;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use toolgate_model::{JobFilter, JobStatus};

use super::auth::Caller;
use super::job_view::JobView;
use super::path_segment::PathSegment;
use super::{ApiError, AppState, ErrorBody};
use crate::audit::AuditEvent;
use crate::jobs::Cancel;
use toolgate_auth::audit::Action;

/// Jobs listed when the caller gives no limit.
const DEFAULT_LIST_LIMIT: usize = 50;
/// Most jobs listed at once: keeps one response (and one query) small.
const MAX_LIST_LIMIT: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(cancel_job))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Most jobs returned (1..=1000, default 50).
    limit: Option<usize>,
    /// Only this tool's jobs.
    tool: Option<String>,
    /// Only jobs in this status (queued, running, succeeded, failed, cancelled, timed_out, interrupted).
    status: Option<String>,
}

/// `GET /api/jobs` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    pub count: usize,
}

/// `POST /api/jobs/{id}/cancel` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelAccepted {
    pub job_id: String,
    /// Always `cancelling`: the job ends (and is recorded) shortly after.
    pub status: String,
}

#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(JobsQuery),
    responses(
        (status = 200, description = "Jobs, newest first, without stdout/stderr", body = JobList),
        (status = 400, description = "Invalid query", body = ErrorBody)))]
async fn list_jobs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::BadQuery(format!(
            "{}; allowed: limit (1..={MAX_LIST_LIMIT}), tool (a tool name), status ({})",
            rejection.body_text(),
            JobStatus::ALL.map(JobStatus::as_str).join(", ")
        ))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::BadQuery(format!(
            "limit {limit} is out of range; allowed: 1..={MAX_LIST_LIMIT}"
        )));
    }
    let status = query
        .status
        .as_deref()
        .map(str::parse::<JobStatus>)
        .transpose()
        .map_err(|error| ApiError::BadQuery(error.to_string()))?;
    let jobs: Vec<JobView> = state
        .jobs
        .list_jobs(
            JobFilter {
                tool: query.tool,
                status,
                limit,
                ..JobFilter::default()
            },
            caller.owner(),
        )
        .await?
        .into_iter()
        .map(JobView::from)
        .collect();
    Ok(Json(JobList {
        count: jobs.len(),
        jobs,
    }))
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job, with stdout/stderr unless dropped by retention", body = JobView),
        (status = 404, description = "No such job", body = ErrorBody)))]
async fn get_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathSegment(id): PathSegment,
) -> Result<Json<JobView>, ApiError> {
    let job = state.jobs.job(&id, caller.owner()).await?;
    let event = match &job {
        Some(job) => AuditEvent::allowed(Action::ReadResults, format!("job {id}"))
            .tool(&job.tool)
            .argv(job.argv.clone()),
        None => AuditEvent::denied(Action::ReadResults, job_not_found(&id).to_string()),
    };
    state.audit.record(&caller, event).await;
    job.map(|job| Json(JobView::from(job)))
        .ok_or_else(|| job_not_found(&id))
}

#[utoipa::path(post, path = "/api/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 202, description = "Cancellation requested", body = CancelAccepted),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job already ended", body = ErrorBody)))]
async fn cancel_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathSegment(id): PathSegment,
) -> Result<(StatusCode, Json<CancelAccepted>), ApiError> {
    let audit = |event: AuditEvent| state.audit.record(&caller, event);
    // Here, or on a shared store through the daemon that runs it.
    let refusal = match state.jobs.cancel_anywhere(&id, caller.owner()).await? {
        Cancel::Requested => {
            audit(AuditEvent::allowed(
                Action::Cancel,
                format!("cancelling job {id}"),
            ))
            .await;
            return Ok((
                StatusCode::ACCEPTED,
                Json(CancelAccepted {
                    job_id: id,
                    status: "cancelling".into(),
                }),
            ));
        }
        Cancel::Ended(status) => {
            ApiError::Conflict(format!("job {id} already ended with status {status}"))
        }
        Cancel::NotFound => job_not_found(&id),
    };
    audit(AuditEvent::denied(Action::Cancel, refusal.to_string())).await;
    Err(refusal)
}

pub(super) fn job_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no job with id {:?}",
        id.chars().take(64).collect::<String>()
    ))
}
