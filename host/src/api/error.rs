//! The API's one error type: maps every failure to a status and a JSON body
//! `{"error": "..."}` (plus `"errors": [{field, message}]` for field errors), and logs the cause.
//!
//! Invariant: internal details (database, sandbox, task errors) are logged, not returned; the
//! caller gets a clear, safe message. Caller mistakes are returned verbatim because they only
//! echo (truncated) caller input and what is allowed.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use toolgate_plugin_runtime::FieldError;
use utoipa::ToSchema;

use crate::jobs::JobError;
use crate::store::StoreError;

/// Seconds a caller refused for a full queue should wait: about one short scan.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Error body of every non-2xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// One entry per invalid parameter (400 on field errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorBody>>,
}

/// One invalid parameter.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub message: String,
}

impl From<FieldError> for FieldErrorBody {
    fn from(error: FieldError) -> Self {
        Self {
            field: error.field,
            message: error.message,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON body: {0}")]
    MalformedJson(String),
    #[error("the request body must be a JSON object of parameters")]
    BodyNotAnObject,
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("cannot read the request body: {0}")]
    BodyUnreadable(String),
    #[error("invalid query: {0}")]
    BadQuery(String),
    /// A path parameter that cannot be decoded; axum's message names the parameter.
    #[error("{0}")]
    BadPath(String),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "method {method} is not allowed here; the Allow header lists the methods this endpoint takes (see /openapi.json)"
    )]
    MethodNotAllowed { method: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::BodyNotAnObject
            | ApiError::BadQuery(_)
            | ApiError::BadPath(_)
            | ApiError::BodyUnreadable(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Job(job) => match job {
                JobError::UnknownTool { .. } => StatusCode::NOT_FOUND,
                JobError::InvalidParams { .. } | JobError::PlanRejected { .. } => {
                    StatusCode::BAD_REQUEST
                }
                JobError::BinaryMissing { .. } | JobError::ShuttingDown => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                JobError::QueueFull { .. } => StatusCode::TOO_MANY_REQUESTS,
                JobError::Plugin(_) => StatusCode::BAD_GATEWAY,
                JobError::Sandbox(_) | JobError::Store(_) | JobError::Task(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }

    /// The message the caller sees.
    fn public_message(&self) -> String {
        match self {
            ApiError::Store(_) => {
                "Server error: the job database failed; see the daemon log".into()
            }
            ApiError::Job(JobError::Store(_) | JobError::Task(_)) => {
                "Server error: job bookkeeping failed; see the daemon log".into()
            }
            ApiError::Job(JobError::Sandbox(_)) => {
                "Server error: the sandbox could not run the tool; see the daemon log".into()
            }
            ApiError::Job(JobError::Plugin(error)) => format!("Server error: {error}"),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A missing tool or a shutdown is the operator's state, not a failure of the daemon.
        let unavailable = matches!(
            self,
            ApiError::Job(JobError::BinaryMissing { .. } | JobError::ShuttingDown)
        );
        if unavailable {
            tracing::warn!(status = status.as_u16(), error = %self, "request refused");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let message = self.public_message();
        let retry_after = matches!(self, ApiError::Job(JobError::QueueFull { .. }));
        let errors = match self {
            ApiError::Job(job) => Some(job.field_errors())
                .filter(|errors| !errors.is_empty())
                .map(|errors| errors.into_iter().map(FieldErrorBody::from).collect()),
            _ => None,
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: message,
                errors,
            }),
        )
            .into_response();
        if retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
