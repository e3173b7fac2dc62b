//! `/api/tools`: list and describe tools, and run one (HexStrike's `POST /api/tools/{tool}`).
//!
//! Invariants: the body is parsed here (so malformed JSON is a JSON 400, not axum's text); an
//! empty body means "all defaults"; a caller that disconnects from a running call cancels its
//! job when `limits.cancel_on_disconnect` is set (a drop guard on the handler future).

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::path_segment::PathSegment;
use super::{ApiError, AppState, ErrorBody};
use crate::audit::AuditEvent;
use crate::jobs::{RunAudit, ToolEntry, ToolRunResponse};
use crate::metrics::Rejection;
use toolgate_auth::audit::Action;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tools))
        .routes(routes!(describe_tool, run_tool))
}

/// A tool as the daemon would run it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// The executable name the plugin asks for.
    pub executable: String,
    /// Whether the binary was found.
    pub available: bool,
    /// The binary that runs (absolute), when available.
    pub binary: Option<String>,
    /// Why the binary is unavailable, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
    /// Effective timeout in seconds.
    pub timeout_secs: u64,
    pub needs_network: bool,
    /// Environment variable names the tool receives.
    pub env_passthrough: Vec<String>,
    /// The operator-provided home the tool reads (`tools.<name>.home`), when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// What the tool may read and execute beyond the system paths, each with why:
    /// `granted` (its install, worked out from the binary, and `tools.<name>.read_paths`) and
    /// `skipped` (found, but never granted: the daemon's state, a directory right below `/`).
    #[schema(value_type = Object)]
    pub read_paths: serde_json::Value,
    /// The start-up probe: `{"status": "passed", "command", "version", "duration_ms"}`,
    /// `{"status": "failed", "command", "reason"}` or `{"status": "not_probed", "reason"}`.
    #[schema(value_type = Object)]
    pub probe: serde_json::Value,
    /// JSON Schema of the parameters object.
    #[schema(value_type = Object)]
    pub params_schema: serde_json::Value,
}

impl From<&ToolEntry> for ToolInfo {
    fn from(entry: &ToolEntry) -> Self {
        let description = &entry.description;
        Self {
            name: description.name.clone(),
            version: description.version.clone(),
            summary: description.summary.clone(),
            executable: description.executable.clone(),
            available: entry.binary.is_ok(),
            binary: entry.binary.as_ref().ok().map(|p| p.display().to_string()),
            unavailable_reason: entry.binary.as_ref().err().cloned(),
            timeout_secs: entry.timeout.as_secs(),
            needs_network: description.needs_network,
            env_passthrough: entry.env.iter().map(|(name, _)| name.clone()).collect(),
            home: entry.home.as_ref().map(|home| home.display().to_string()),
            read_paths: serde_json::to_value(&entry.reads).unwrap_or_default(),
            probe: serde_json::to_value(&entry.probe).unwrap_or_default(),
            params_schema: description.params_schema.clone(),
        }
    }
}

/// `GET /api/tools` body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ToolList {
    pub tools: Vec<ToolInfo>,
    pub count: usize,
}

#[utoipa::path(get, path = "/api/tools", tag = "tools",
    responses((status = 200, description = "Loaded tools", body = ToolList)))]
async fn list_tools(State(state): State<AppState>) -> Json<ToolList> {
    let tools: Vec<ToolInfo> = state.jobs.catalog().iter().map(ToolInfo::from).collect();
    Json(ToolList {
        count: tools.len(),
        tools,
    })
}

#[utoipa::path(get, path = "/api/tools/{tool}", tag = "tools",
    params(("tool" = String, Path, description = "Tool name")),
    responses(
        (status = 200, description = "The tool", body = ToolInfo),
        (status = 404, description = "Unknown tool", body = ErrorBody)))]
async fn describe_tool(
    State(state): State<AppState>,
    PathSegment(tool): PathSegment,
) -> Result<Json<ToolInfo>, ApiError> {
    state
        .jobs
        .catalog()
        .get(&tool)
        .map(|entry| Json(ToolInfo::from(entry)))
        .ok_or_else(|| ApiError::NotFound(format!("unknown tool {:?}", truncate(&tool))))
}

/// Runs a tool and waits for its result (HexStrike-compatible).
#[utoipa::path(post, path = "/api/tools/{tool}", tag = "tools",
    params(("tool" = String, Path, description = "Tool name, e.g. terrascan or prowler")),
    request_body(content = Object, description = "The tool's parameters (see its params_schema); empty strings mean the default"),
    responses(
        (status = 200, description = "The job ran (also when the tool failed: see success)", body = ToolRunResponse),
        (status = 400, description = "Malformed JSON, invalid parameters or a refused plan", body = ErrorBody),
        (status = 404, description = "Unknown tool", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 429, description = "Too many jobs", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
        (status = 502, description = "The plugin failed", body = ErrorBody),
        (status = 503, description = "Tool binary not installed or cannot be executed (the error names what was denied and the key to set), shutting down, or out of file descriptors (then with Retry-After)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying (out of file descriptors)")))))]
async fn run_tool(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathSegment(tool): PathSegment,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = read_params(&state, body)?;
    // The job writes the run's audit record with its end (one commit on PostgreSQL instead of
    // two in turn), so an answer comes back with its record stored.
    let audit = RunAudit {
        trail: state.audit.clone(),
        caller: caller.clone(),
    };
    let started = match state
        .jobs
        .start_audited(
            &tool,
            crate::jobs::JobInput::Params(params),
            caller.owner(),
            audit,
        )
        .await
    {
        Ok(started) => started,
        Err(error) => {
            let event = AuditEvent::denied(Action::Run, error.to_string()).tool(&tool);
            state.audit.record(&caller, event).await;
            return Err(error.into());
        }
    };
    let argv = started.argv.clone();
    let guard = CancelOnDrop {
        token: state
            .settings
            .cancel_on_disconnect
            .then(|| started.cancel.clone()),
    };
    let outcome = started.outcome().await;
    guard.disarm();
    match outcome {
        Ok(answer) => Ok(sized_json(&answer)),
        // A job that ends in an error has not written the run's record.
        Err(error) => {
            let event = AuditEvent::allowed(Action::Run, format!("failed: {error}"))
                .tool(&tool)
                .argv(argv);
            state.audit.record(&caller, event).await;
            Err(error.into())
        }
    }
}

/// Room for everything of a tool run's answer besides its two streams: findings, the command,
/// the sandbox record. A larger answer still works; its buffer then grows.
const ANSWER_BESIDES_STREAMS_BYTES: usize = 16 << 10;

/// The answer as JSON in a buffer sized for it up front. `Json` starts small and doubles, and
/// below glibc's mmap threshold each doubling copies: a 16 MiB stdout would then be held a
/// third time while its encoding grows past it.
fn sized_json(answer: &ToolRunResponse) -> Response {
    let estimate = answer.stdout.len() + answer.stderr.len() + ANSWER_BESIDES_STREAMS_BYTES;
    let mut body = Vec::with_capacity(estimate);
    match serde_json::to_writer(&mut body, answer) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        // Serializing plain strings, numbers and maps cannot fail; answered as axum's `Json`
        // would answer it.
        Err(error) => {
            tracing::error!(%error, "cannot encode a tool run's answer");
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

fn read_params(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Value, ApiError> {
    let refuse = |reason: Rejection, error: ApiError| {
        state.metrics.record_rejection(reason);
        error
    };
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                Rejection::BodyTooLarge,
                ApiError::BodyTooLarge {
                    limit: state.settings.max_body_bytes,
                },
            )
        } else {
            refuse(
                Rejection::MalformedBody,
                ApiError::BodyUnreadable(rejection.body_text()),
            )
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    let params: serde_json::Value = serde_json::from_slice(&body).map_err(|error| {
        refuse(
            Rejection::MalformedBody,
            ApiError::MalformedJson(error.to_string()),
        )
    })?;
    if !params.is_object() {
        return Err(refuse(Rejection::MalformedBody, ApiError::BodyNotAnObject));
    }
    Ok(params)
}

/// Cancels the job if the handler future is dropped before the job ended (client went away).
/// Shared with the MCP endpoint, whose dropped requests follow the same setting.
pub(crate) struct CancelOnDrop {
    pub(crate) token: Option<CancellationToken>,
}

impl CancelOnDrop {
    pub(crate) fn disarm(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            tracing::info!("client went away; cancelling its job");
            token.cancel();
        }
    }
}

fn truncate(value: &str) -> String {
    value.chars().take(64).collect()
}
