//! The MCP `ServerHandler`: `tools/list`, `tools/call`, and the job and scan resources, over the same
//! `AppState` as the HTTP API; each session is told `notifications/tools/list_changed` when a
//! plugin reload changes the tool set.
//!
//! Invariants: a plugin tool is listed only while its binary is available, and called only
//! through `JobService::start` (so a call of an unavailable tool is refused with the config key
//! to set, as `POST /api/tools/{tool}` refuses it); the built-in job tools (`list_jobs`,
//! `get_job`, `cancel_job`, and the scan tools `start_scan`, `get_scan`) take precedence over
//! a plugin of the same name; an MCP
//! cancellation always cancels the job, a dropped request only when
//! `limits.cancel_on_disconnect` is set; progress is reported only when the request carries a
//! `progressToken`, and at most once per step (queued, running, done). Every call that runs,
//! cancels, starts a scan or reads a result (job, scan, job or scan resource) leaves one audit record,
//! as its HTTP counterpart does; `list_jobs` and `tools/list` read no result and leave none.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ProgressToken, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

use super::render::{self, JOB_URI_PREFIX, SCAN_URI_PREFIX, object};
use super::scan_tools::{self, GET_SCAN, START_SCAN};
use crate::api::auth::Caller;
use crate::api::{AppState, CancelOnDrop};
use crate::audit::AuditEvent;
use crate::jobs::RunAudit;
use toolgate_auth::audit::Action;
use toolgate_model::{JobFilter, JobStatus};

use crate::api::JobView;

/// How often a waiting call looks whether its queued job has started running.
const RUNNING_POLL: Duration = Duration::from_millis(100);
/// Jobs `list_jobs` returns when the caller gives no limit, and the most it returns.
const DEFAULT_LIST_LIMIT: usize = 20;
const MAX_LIST_LIMIT: usize = 1000;
/// Progress steps of a tool call: queued, running, done.
const PROGRESS_STEPS: f64 = 3.0;

/// The built-in tools, which are not plugins.
const LIST_JOBS: &str = "list_jobs";
const GET_JOB: &str = "get_job";
const CANCEL_JOB: &str = "cancel_job";

/// One MCP session's handler; cheap to clone (the state is shared).
#[derive(Clone)]
pub struct McpHandler {
    state: AppState,
}

impl McpHandler {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// Every tool `tools/list` shows: the available plugin tools, then the job tools.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = self
            .state
            .jobs
            .catalog()
            .iter()
            .filter(|entry| entry.binary.is_ok() && !is_builtin(&entry.description.name))
            .map(render::plugin_tool)
            .collect();
        tools.extend(builtin_tools());
        tools.extend(scan_tools::tools());
        tools
    }

    /// Runs a plugin tool as a job and waits for it, reporting progress and honouring
    /// cancellation.
    async fn call_plugin(
        &self,
        tool: &str,
        params: serde_json::Value,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let refused_run = |result: &CallToolResult| audit_event(Action::Run, result).tool(tool);
        let owner = match owner(context) {
            Ok(owner) => owner,
            Err(refused) => {
                self.audit(context, refused_run(&refused)).await;
                return refused;
            }
        };
        let input = crate::jobs::JobInput::Params(params);
        // As `POST /api/tools/{tool}` does, the job writes the run's record with its end (one
        // commit instead of two in turn); errors are recorded here.
        let started = match caller(context) {
            Some(caller) => {
                let audit = RunAudit {
                    trail: self.state.audit.clone(),
                    caller,
                };
                let jobs = &self.state.jobs;
                jobs.start_audited(tool, input, &owner, audit).await
            }
            None => self.state.jobs.start(tool, input, &owner).await,
        };
        let started = match started {
            Ok(started) => started,
            Err(error) => {
                let refused = render::refused(error);
                self.audit(context, refused_run(&refused)).await;
                return refused;
            }
        };
        let argv = started.argv.clone();
        let progress = Progress {
            token: context.meta.get_progress_token(),
            context,
        };
        progress
            .report(1.0, format!("queued: job {}", started.id))
            .await;
        let id = started.id.clone();
        let cancel = started.cancel.clone();
        let guard = CancelOnDrop {
            token: self
                .state
                .settings
                .cancel_on_disconnect
                .then(|| cancel.clone()),
        };
        let outcome = started.outcome();
        tokio::pin!(outcome);
        let mut poll = tokio::time::interval(RUNNING_POLL);
        let mut running_reported = progress.token.is_none();
        let outcome = loop {
            tokio::select! {
                outcome = &mut outcome => break outcome,
                () = context.ct.cancelled(), if !cancel.is_cancelled() => {
                    tracing::info!(job_id = id, "MCP request cancelled; cancelling its job");
                    cancel.cancel();
                }
                _ = poll.tick(), if !running_reported => {
                    let running = self
                        .state
                        .jobs
                        .live_job(&id, &owner)
                        .is_some_and(|job| job.status == JobStatus::Running);
                    if running {
                        running_reported = true;
                        progress.report(2.0, format!("running: job {id}")).await;
                    }
                }
            }
        };
        guard.disarm();
        match outcome {
            Ok(response) => {
                progress
                    .report(PROGRESS_STEPS, format!("done: job {id}"))
                    .await;
                render::finished(tool, &response)
            }
            // A job that ends in an error has not written the run's record.
            Err(error) => {
                let result = render::refused(error);
                self.audit(context, refused_run(&result).argv(argv)).await;
                result
            }
        }
    }

    /// Appends one audit record for a call by the caller of `context` (none without a caller:
    /// such a call was refused before it did anything).
    /// The resource `toolgate://scans/{id}` of `owner`'s scan `id` (see
    /// `scan_tools::scan_document`), audited as `get_scan` is.
    async fn read_scan(
        &self,
        id: &str,
        uri: &str,
        owner: &str,
        context: &RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let found = scan_tools::scan_document(&self.state, id, owner).await?;
        let event = match &found {
            Some(_) => AuditEvent::allowed(Action::ReadResults, format!("scan {id}")),
            None => AuditEvent::denied(Action::ReadResults, scan_tools::no_such_scan(id)),
        };
        self.audit(context, event.tool(format!("mcp:{SCAN_URI_PREFIX}")))
            .await;
        let (document, _) = found
            .ok_or_else(|| McpError::resource_not_found(scan_tools::no_such_scan(id), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(document.to_string(), uri.to_string())
                .with_mime_type("application/json"),
        ])
        .into())
    }

    async fn audit(&self, context: &RequestContext<RoleServer>, event: AuditEvent) {
        if let Some(caller) = caller(context) {
            self.state.audit.record(&caller, event).await;
        }
    }

    async fn list_jobs(
        &self,
        arguments: serde_json::Value,
        owner: &str,
    ) -> Result<CallToolResult, McpError> {
        let query: ListJobsArgs = match serde_json::from_value(arguments) {
            Ok(query) => query,
            Err(error) => return Ok(render::caller_error(list_jobs_usage(&error.to_string()))),
        };
        let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if !(1..=MAX_LIST_LIMIT).contains(&limit) {
            return Ok(render::caller_error(list_jobs_usage(&format!(
                "limit {limit} is out of range"
            ))));
        }
        let status = match query.status.as_deref().map(str::parse::<JobStatus>) {
            None => None,
            Some(Ok(status)) => Some(status),
            Some(Err(error)) => return Ok(render::caller_error(error.to_string())),
        };
        let jobs = self
            .state
            .jobs
            .list_jobs(
                JobFilter {
                    tool: query.tool,
                    status,
                    limit,
                    ..JobFilter::default()
                },
                owner,
            )
            .await
            .map_err(store_failed)?;
        let jobs: Vec<JobView> = jobs.into_iter().map(JobView::from).collect();
        let count = jobs.len();
        json_result(
            &json!({ "jobs": jobs, "count": count }),
            format!("{count} jobs, newest first"),
        )
    }

    async fn get_job(
        &self,
        arguments: serde_json::Value,
        owner: &str,
    ) -> Result<CallToolResult, McpError> {
        let id = match job_id(arguments) {
            Ok(id) => id,
            Err(result) => return Ok(result),
        };
        match self
            .state
            .jobs
            .job(&id, owner)
            .await
            .map_err(store_failed)?
        {
            Some(job) => json_result(
                &JobView::from(job.clone()),
                format!("job {id}: {}", job.status.as_str()),
            ),
            None => Ok(render::caller_error(no_such_job(&id))),
        }
    }

    async fn cancel_job(
        &self,
        arguments: serde_json::Value,
        owner: &str,
    ) -> Result<CallToolResult, McpError> {
        let id = match job_id(arguments) {
            Ok(id) => id,
            Err(result) => return Ok(result),
        };
        match self
            .state
            .jobs
            .cancel_anywhere(&id, owner)
            .await
            .map_err(|error| McpError::internal_error(error.to_string(), None))?
        {
            crate::jobs::Cancel::Requested => json_result(
                &json!({ "job_id": id, "status": "cancelling" }),
                format!("job {id}: cancelling"),
            ),
            crate::jobs::Cancel::Ended(status) => Ok(render::caller_error(format!(
                "job {id} already ended with status {}",
                status.as_str()
            ))),
            crate::jobs::Cancel::NotFound => Ok(render::caller_error(no_such_job(&id))),
        }
    }
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("toolgate", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Each tool runs a security scanner in toolgate's sandbox as a job and returns its \
             findings. A refused call lists every invalid field with what is allowed. Jobs are \
             resources toolgate://jobs/{id}, scans toolgate://scans/{id}.",
        )
    }

    /// Tells this session `notifications/tools/list_changed` after every plugin reload. The
    /// watcher ends at the first notification that cannot be sent (the session is gone) or when
    /// the job service is dropped.
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        let mut generations = self.state.jobs.plugin_generation();
        generations.borrow_and_update();
        let peer = context.peer;
        tokio::spawn(async move {
            while generations.changed().await.is_ok() {
                if peer.is_transport_closed() || peer.notify_tool_list_changed().await.is_err() {
                    break;
                }
            }
        });
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let result = match request.name.as_ref() {
            LIST_JOBS | GET_JOB | CANCEL_JOB | START_SCAN | GET_SCAN => {
                let owner = match owner(&context) {
                    Ok(owner) => owner,
                    Err(refused) => return Ok(refused.into()),
                };
                let name = request.name.as_ref();
                let (result, action) = match name {
                    LIST_JOBS => (self.list_jobs(arguments, &owner).await?, None),
                    GET_JOB => (
                        self.get_job(arguments, &owner).await?,
                        Some(Action::ReadResults),
                    ),
                    CANCEL_JOB => (
                        self.cancel_job(arguments, &owner).await?,
                        Some(Action::Cancel),
                    ),
                    START_SCAN => (
                        scan_tools::start_scan(&self.state, arguments, &owner).await?,
                        Some(Action::Initiate),
                    ),
                    _ => (
                        scan_tools::get_scan(&self.state, arguments, &owner).await?,
                        Some(Action::ReadResults),
                    ),
                };
                if let Some(action) = action {
                    let event = audit_event(action, &result).tool(format!("mcp:{name}"));
                    self.audit(&context, event).await;
                }
                result
            }
            tool if self.state.jobs.catalog().get(tool).is_some() => {
                self.call_plugin(tool, arguments, &context).await
            }
            unknown => {
                return Err(McpError::invalid_params(
                    format!(
                        "unknown tool {:?}; tools/list shows the tools",
                        unknown.chars().take(64).collect::<String>()
                    ),
                    None,
                ));
            }
        };
        Ok(result.into())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{JOB_URI_PREFIX}{{id}}"), "job")
                .with_title("A toolgate job")
                .with_description(
                    "A job's record: tool, parameters, argv, status, findings, stdout and stderr",
                )
                .with_mime_type("application/json"),
            ResourceTemplate::new(format!("{SCAN_URI_PREFIX}{{id}}"), "scan")
                .with_title("A toolgate scan")
                .with_description(
                    "An asynchronous scan's status while it runs, then its results: findings \
                     with file and line, the summary by severity and error details",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let owner = owner(&context).map_err(|_| {
            McpError::invalid_request("no authenticated caller on this request", None)
        })?;
        let uri = request.uri;
        if let Some(id) = uri.strip_prefix(SCAN_URI_PREFIX) {
            return self.read_scan(id, &uri, &owner, &context).await;
        }
        let Some(id) = uri.strip_prefix(JOB_URI_PREFIX) else {
            return Err(McpError::resource_not_found(
                format!(
                    "no resource {:?}; jobs are {JOB_URI_PREFIX}{{id}}, scans {SCAN_URI_PREFIX}{{id}}",
                    uri.chars().take(128).collect::<String>()
                ),
                None,
            ));
        };
        let record = self
            .state
            .jobs
            .job(id, &owner)
            .await
            .map_err(store_failed)?;
        let event = match &record {
            Some(job) => AuditEvent::allowed(Action::ReadResults, format!("job {id}"))
                .tool(&job.tool)
                .argv(job.argv.clone()),
            None => AuditEvent::denied(Action::ReadResults, no_such_job(id)),
        };
        self.audit(&context, event).await;
        let job = record
            .map(JobView::from)
            .ok_or_else(|| McpError::resource_not_found(no_such_job(id), None))?;
        let text = serde_json::to_string(&job)
            .map_err(|error| McpError::internal_error(error.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, uri.clone()).with_mime_type("application/json"),
        ])
        .into())
    }
}

/// Progress notifications of one request; silent without a progress token.
struct Progress<'a> {
    token: Option<ProgressToken>,
    context: &'a RequestContext<RoleServer>,
}

impl Progress<'_> {
    async fn report(&self, step: f64, message: String) {
        let Some(token) = &self.token else { return };
        let notification = ProgressNotificationParam::new(token.clone(), step)
            .with_total(PROGRESS_STEPS)
            .with_message(message);
        if let Err(error) = self.context.peer.notify_progress(notification).await {
            tracing::debug!(%error, "cannot send an MCP progress notification");
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListJobsArgs {
    limit: Option<usize>,
    tool: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobIdArgs {
    id: String,
}

fn is_builtin(name: &str) -> bool {
    matches!(
        name,
        LIST_JOBS | GET_JOB | CANCEL_JOB | START_SCAN | GET_SCAN
    )
}

fn builtin_tools() -> Vec<Tool> {
    let statuses: Vec<&str> = JobStatus::ALL.map(JobStatus::as_str).to_vec();
    let id_schema = || {
        Arc::new(object(json!({
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The job id"}},
            "required": ["id"],
            "additionalProperties": false
        })))
    };
    vec![
        Tool::new(
            LIST_JOBS,
            "List recent jobs, newest first (without stdout/stderr)",
            Arc::new(object(json!({
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT,
                              "description": format!("Most jobs returned (default {DEFAULT_LIST_LIMIT})")},
                    "tool": {"type": "string", "description": "Only this tool's jobs"},
                    "status": {"type": "string", "enum": statuses}
                },
                "additionalProperties": false
            }))),
        ),
        Tool::new(
            GET_JOB,
            "A job's record, with stdout and stderr",
            id_schema(),
        ),
        Tool::new(
            CANCEL_JOB,
            "Cancel a queued or running job (the sandbox kills its tool)",
            id_schema(),
        ),
    ]
}

fn job_id(arguments: serde_json::Value) -> Result<String, CallToolResult> {
    serde_json::from_value::<JobIdArgs>(arguments)
        .map(|args| args.id)
        .map_err(|error| {
            render::caller_error(format!(
                "invalid arguments: {error}; allowed: {{\"id\": \"<job id>\"}}"
            ))
        })
}

fn list_jobs_usage(problem: &str) -> String {
    format!(
        "invalid arguments: {problem}; allowed: limit (1..={MAX_LIST_LIMIT}), tool (a tool \
         name), status ({})",
        JobStatus::ALL.map(JobStatus::as_str).join(", ")
    )
}

fn no_such_job(id: &str) -> String {
    format!(
        "no job with id {:?}",
        id.chars().take(64).collect::<String>()
    )
}

fn store_failed(error: crate::jobs::JobError) -> McpError {
    tracing::error!(%error, "job store failed during an MCP request");
    McpError::internal_error("the job database failed; see the daemon log", None)
}

/// A built-in tool's answer: the JSON as structured content and as text, with a summary.
pub(super) fn json_result(
    value: &impl serde::Serialize,
    summary: String,
) -> Result<CallToolResult, McpError> {
    let value = serde_json::to_value(value)
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    let mut result = CallToolResult::success(vec![
        ContentBlock::text(summary),
        ContentBlock::text(value.to_string()),
    ]);
    result.structured_content = Some(value);
    Ok(result)
}

/// Longest outcome text an MCP call's audit record keeps (a summary, not the output).
const AUDIT_OUTCOME_CHARS: usize = 200;

/// The audit record of a finished MCP call: allowed unless the result is a tool error, with the
/// start of its text as the outcome.
fn audit_event(action: Action, result: &CallToolResult) -> AuditEvent {
    let text: String = result
        .content
        .iter()
        .find_map(|content| content.as_text().map(|text| text.text.clone()))
        .unwrap_or_default()
        .chars()
        .take(AUDIT_OUTCOME_CHARS)
        .collect();
    if result.is_error == Some(true) {
        AuditEvent::denied(action, text)
    } else {
        AuditEvent::allowed(action, text)
    }
}

/// The caller of the HTTP request carrying this MCP message, if the middleware placed one.
fn caller(context: &RequestContext<RoleServer>) -> Option<Caller> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
}

/// The tenant of the HTTP request carrying this MCP message: the authentication middleware
/// placed its [`Caller`](crate::api::auth::Caller) in the request, which rmcp hands on as
/// `http::request::Parts`. A message without one is refused (it did not come through the
/// middleware), never run as anyone.
fn owner(context: &RequestContext<RoleServer>) -> Result<String, CallToolResult> {
    caller(context)
        .map(|caller| caller.owner().to_string())
        .ok_or_else(|| render::caller_error("no authenticated caller on this request"))
}
