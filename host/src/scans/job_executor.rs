//! The daemon's scan executor: a scan's job is a job like any synchronous call, started through
//! [`JobService::start`] with a [`JobInput::Scan`], so it is planned (`plan-scan`), checked by
//! the host and the sandbox, run, parsed and recorded by the same code, and shows in
//! `/api/jobs`, `/api/processes` and the logs while it runs.
//!
//! Invariant: every way a job can end maps to exactly one [`ScanJobEnd`]; a refusal that a
//! retry cannot fix (unknown tool, invalid request, refused plan, tool not installed) ends the
//! scan in `error` with the reason, while a full daemon or a failing store re-queues it.

use toolgate_model::{Finding, Severity};
use toolgate_plugin_runtime as runtime;

use super::executor::{
    BoxFuture, RunningScanJob, ScanExecutor, ScanJobEnd, ScanJobInput, StartError,
};
use crate::jobs::{JobError, JobInput, JobService, ScanInput, ToolRunResponse};
use toolgate_model::JobStatus;

/// Runs scans' jobs through the job service.
pub struct JobScanExecutor {
    jobs: JobService,
}

impl JobScanExecutor {
    pub fn new(jobs: JobService) -> Self {
        Self { jobs }
    }
}

impl ScanExecutor for JobScanExecutor {
    fn start(&self, input: ScanJobInput) -> BoxFuture<Result<RunningScanJob, StartError>> {
        let jobs = self.jobs.clone();
        Box::pin(async move {
            let tool = input.request.tool.clone();
            let owner = input.owner.clone();
            let scan = ScanInput {
                scan_id: input.scan_id,
                request: input.request,
                tree: input.tree,
            };
            let started = jobs
                .start(&tool, JobInput::Scan(scan), &owner)
                .await
                .map_err(start_error)?;
            let not_applied = started.not_applied.clone();
            let job_id = started.id.clone();
            let cancel = started.cancel.clone();
            let end: BoxFuture<ScanJobEnd> = Box::pin(async move {
                match started.outcome().await {
                    Ok(response) => job_end(response, not_applied),
                    Err(error) => ScanJobEnd::Failed {
                        code: "job_failed".into(),
                        detail: job_failure(&error),
                    },
                }
            });
            Ok(RunningScanJob {
                job_id,
                cancel,
                end,
            })
        })
    }
}

/// What a job that could not start means for its scan.
fn start_error(error: JobError) -> StartError {
    let refused = |code: &str, detail: String| StartError::Refused {
        code: code.to_string(),
        detail,
    };
    match error {
        JobError::ShuttingDown => StartError::ShuttingDown,
        JobError::QueueFull { .. } | JobError::Store(_) | JobError::Task(_) => {
            StartError::Busy(error.to_string())
        }
        JobError::UnknownTool { .. } => refused("unknown_tool", error.to_string()),
        JobError::BinaryMissing { .. } | JobError::CannotStart { .. } => {
            refused("tool_unavailable", error.to_string())
        }
        JobError::PlanRejected { .. } => refused("plan_rejected", error.to_string()),
        JobError::Plugin(_) => refused("plugin_error", error.to_string()),
        JobError::Sandbox(_) => refused("sandbox_error", error.to_string()),
        JobError::InvalidParams { tool, errors } => {
            let fields: Vec<String> = errors
                .iter()
                .map(|field| format!("{}: {}", field.field, field.message))
                .collect();
            refused(
                "invalid_request",
                format!("{tool} refused the scan request: {}", fields.join("; ")),
            )
        }
    }
}

/// The reason a started job failed, for the scan's error details: the sandbox's is the
/// caller's to read; the daemon's own failures stay in its log.
fn job_failure(error: &JobError) -> String {
    match error {
        JobError::Sandbox(sandbox) => sandbox.to_string(),
        JobError::CannotStart { .. } => error.to_string(),
        _ => "the daemon could not finish this scan's job; see its log".to_string(),
    }
}

/// How a finished job ends its scan.
fn job_end(response: ToolRunResponse, not_applied: Vec<String>) -> ScanJobEnd {
    match response.status {
        JobStatus::Succeeded => ScanJobEnd::Completed {
            findings: response.findings.iter().map(model_finding).collect(),
            not_applied,
        },
        JobStatus::Cancelled => ScanJobEnd::Cancelled,
        JobStatus::TimedOut => ScanJobEnd::Failed {
            code: "timed_out".into(),
            detail: format!(
                "the tool did not finish within its time limit ({:.0} s)",
                response.execution_time
            ),
        },
        JobStatus::Failed | JobStatus::Interrupted | JobStatus::Queued | JobStatus::Running => {
            ScanJobEnd::Failed {
                code: "tool_error".into(),
                detail: response
                    .message
                    .or(response.error)
                    .unwrap_or_else(|| format!("the tool failed (exit {})", response.return_code)),
            }
        }
    }
}

/// The model's finding for a plugin's.
pub fn model_finding(finding: &runtime::Finding) -> Finding {
    Finding {
        rule_id: finding.rule_id.clone(),
        title: finding.title.clone(),
        severity: match finding.severity {
            runtime::Severity::Critical => Severity::Critical,
            runtime::Severity::High => Severity::High,
            runtime::Severity::Medium => Severity::Medium,
            runtime::Severity::Low => Severity::Low,
            runtime::Severity::Info => Severity::Info,
        },
        description: finding.description.clone(),
        resource_type: finding.resource_type.clone(),
        resource_name: finding.resource_name.clone(),
        file: finding.file.clone(),
        line: finding.line,
        category: finding.category.clone(),
        documentation_url: finding.documentation_url.clone(),
    }
}
