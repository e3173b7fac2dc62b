//! The API's one error type: maps every failure to a status and a JSON body
//! `{"error": "..."}` (plus `"errors": [{field, message}]` for field errors), and logs the cause.
//!
//! Invariant: internal details (database, sandbox, task errors) are logged, not returned; the
//! caller gets a clear, safe message. Caller mistakes are returned verbatim because they only
//! echo (truncated) caller input and what is allowed. A job that failed because the daemon ran
//! out of file descriptors (EMFILE, ENFILE) is answered 503 with `Retry-After`, never 500 or
//! 400: the condition passes as connections and jobs end, and the caller's input is not at fault.
//! A tool that cannot be executed (its `execve` refused) is answered 503 naming the tool, what
//! was denied and the key to set: the operator's to fix, never a 500 pointing at the log.

use std::io;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use toolgate_plugin_runtime::FieldError;
use toolgate_sandbox::{RejectReason, SandboxError};
use utoipa::ToSchema;

use crate::jobs::JobError;
use toolgate_store::StoreError;

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
    /// True when the store cannot be reached (a shared PostgreSQL down): 503, retry later.
    fn store_unavailable(&self) -> bool {
        matches!(self, ApiError::Store(error) | ApiError::Job(JobError::Store(error)) if error.is_unavailable())
    }

    /// True when the daemon ran out of file descriptors on the way (see [`out_of_descriptors`]).
    fn out_of_descriptors(&self) -> bool {
        matches!(self, ApiError::Job(job) if out_of_descriptors(job))
    }

    fn status(&self) -> StatusCode {
        if self.out_of_descriptors() || self.store_unavailable() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
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
                JobError::BinaryMissing { .. }
                | JobError::CannotStart { .. }
                | JobError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
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
        if self.out_of_descriptors() {
            return "Service unavailable: the daemon is out of file descriptors (too many open \
                    connections or running tools); retry later"
                .into();
        }
        if self.store_unavailable() {
            return "Service unavailable: the job store (store.url) cannot be reached; retry \
                    later"
                .into();
        }
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

impl ApiError {
    /// Logs the error as its status deserves and returns what the caller sees: the message,
    /// the field errors (empty when the error is not about parameters) and the seconds to wait
    /// before retrying, when the condition passes by itself. The JSON body of the HTTP API and
    /// the text of a refused MCP call are both built from this.
    pub(crate) fn into_public_parts(self) -> (String, Vec<FieldErrorBody>, Option<u64>) {
        let status = self.status();
        // A missing tool or a shutdown is the operator's state, not a failure of the daemon.
        let unavailable = matches!(
            self,
            ApiError::Job(
                JobError::BinaryMissing { .. }
                    | JobError::CannotStart { .. }
                    | JobError::ShuttingDown
            )
        );
        if unavailable {
            tracing::warn!(status = status.as_u16(), error = %self, "request refused");
        } else if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request refused");
        }
        let message = self.public_message();
        let out_of_descriptors = self.out_of_descriptors();
        let retry_after = (out_of_descriptors
            || self.store_unavailable()
            || matches!(self, ApiError::Job(JobError::QueueFull { .. })))
        .then_some(RETRY_AFTER_SECS);
        let errors = match self {
            // A refused path that could not be opened for want of a descriptor is no fault of
            // the parameter that named it.
            ApiError::Job(_) if out_of_descriptors => Vec::new(),
            ApiError::Job(job) => job
                .field_errors()
                .into_iter()
                .map(FieldErrorBody::from)
                .collect(),
            _ => Vec::new(),
        };
        (message, errors, retry_after)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, errors, retry_after) = self.into_public_parts();
        let mut response = (
            status,
            Json(ErrorBody {
                error: message,
                errors: Some(errors).filter(|errors| !errors.is_empty()),
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Whether `job` failed because this process (EMFILE) or the system (ENFILE) ran out of file
/// descriptors: an I/O error of the sandbox with either code, or a plan refused because a path
/// could not be opened for that reason (the sandbox keeps only the error's text there, which
/// std renders as `... (os error N)`).
fn out_of_descriptors(job: &JobError) -> bool {
    match job {
        JobError::Sandbox(error) => sandbox_io_error(error)
            .is_some_and(|error| matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))),
        JobError::PlanRejected { rejection, .. } => match &rejection.reason {
            RejectReason::NotFound(detail) | RejectReason::Internal(detail) => {
                [libc::EMFILE, libc::ENFILE].iter().any(|code| {
                    detail
                        .strip_suffix(')')
                        .and_then(|rest| rest.rsplit_once("(os error "))
                        .is_some_and(|(_, number)| number == code.to_string())
                })
            }
            _ => false,
        },
        _ => false,
    }
}

/// The I/O error a sandbox error carries: the variants that hold one bare, or the `source` of
/// the others (so a new variant with a `source` is covered without a change here).
fn sandbox_io_error(error: &SandboxError) -> Option<&io::Error> {
    match error {
        SandboxError::Spawn(error)
        | SandboxError::SpawnerThread(error)
        | SandboxError::Subreaper(error)
        | SandboxError::Dumpable(error)
        | SandboxError::LastCapability(error)
        | SandboxError::BoundingSet(error) => Some(error),
        other => std::error::Error::source(other)?.downcast_ref::<io::Error>(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use toolgate_sandbox::PlanRejected;

    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(libc::EMFILE)
    }

    /// Status, `Retry-After` and message of the answer to `error`.
    async fn answer(error: JobError) -> (StatusCode, Option<String>, String) {
        let response = ApiError::Job(error).into_response();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let body = to_bytes(response.into_body(), 64 * 1024)
            .await
            .expect("body");
        (
            status,
            retry_after,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn running_out_of_descriptors_is_503_with_retry_after_never_500_or_400() {
        let plan_refused = |reason: RejectReason| JobError::PlanRejected {
            tool: "terrascan".into(),
            rejection: PlanRejected::arg(2, "terraform", reason),
            field: Some("iac_dir".into()),
        };
        let out_of_fds = [
            JobError::Sandbox(SandboxError::Pipe {
                what: "stderr",
                source: emfile(),
            }),
            JobError::Sandbox(SandboxError::Pipe {
                what: "stdout",
                source: io::Error::from_raw_os_error(libc::ENFILE),
            }),
            JobError::Sandbox(SandboxError::Spawn(emfile())),
            JobError::Sandbox(SandboxError::Pidfd {
                pid: 1,
                source: emfile(),
            }),
            plan_refused(RejectReason::NotFound(emfile().to_string())),
            plan_refused(RejectReason::Internal(emfile().to_string())),
        ];
        for error in out_of_fds {
            let shown = error.to_string();
            let (status, retry_after, body) = answer(error).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{shown}: {body}");
            assert_eq!(
                retry_after.as_deref(),
                Some(RETRY_AFTER_SECS.to_string().as_str()),
                "{shown}"
            );
            assert!(
                body.contains("out of file descriptors") && !body.contains("\"errors\""),
                "{shown}: {body}"
            );
        }
        // Other I/O failures keep their status and have no Retry-After.
        let others = [
            (
                JobError::Sandbox(SandboxError::Pipe {
                    what: "stderr",
                    source: io::Error::from_raw_os_error(libc::EIO),
                }),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                plan_refused(RejectReason::NotFound(
                    io::Error::from_raw_os_error(libc::ENOENT).to_string(),
                )),
                StatusCode::BAD_REQUEST,
            ),
            (
                plan_refused(RejectReason::NotFound(
                    "an EMFILE look-alike (os error 240)".into(),
                )),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (error, expected) in others {
            let shown = error.to_string();
            let (status, retry_after, body) = answer(error).await;
            assert_eq!(status, expected, "{shown}: {body}");
            assert_eq!(retry_after, None, "{shown}");
            assert!(!body.contains("file descriptors"), "{shown}: {body}");
        }
    }
}
