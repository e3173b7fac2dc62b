//! A job as `/api/jobs` and the MCP job tools show it: a view of the model's [`JobRecord`],
//! so that the wire shape and the stored row can change apart.

use serde::Serialize;
use toolgate_model::{JobRecord, JobStatus};
use utoipa::ToSchema;

use crate::jobs::JobStatusSchema;

/// A stored job.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = JobRecord)]
pub struct JobView {
    pub id: String,
    pub tool: String,
    #[schema(value_type = JobStatusSchema)]
    pub status: JobStatus,
    /// The caller's parameters as received.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// The argv executed (argv[0] is the binary).
    pub argv: Vec<String>,
    /// `argv` shell-quoted, for display only: nothing is run through a shell.
    pub command: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Wall-clock seconds the tool ran.
    pub execution_time: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub success: bool,
    /// The plugin's reading: clean, findings or tool_error.
    pub classification: Option<String>,
    pub message: Option<String>,
    /// Finding counts by severity.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub findings: Option<serde_json::Value>,
    /// Absent in lists, and for jobs older than the retention limit.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// True when stdout/stderr were dropped by the retention limit.
    pub output_dropped: bool,
    pub truncated: bool,
    /// Which sandbox protections were applied to this run.
    #[schema(value_type = Option<Object>)]
    pub sandbox: Option<serde_json::Value>,
    pub output_dir: Option<String>,
    /// Why the daemon could not run or finish the job.
    pub error: Option<String>,
}

impl From<JobRecord> for JobView {
    fn from(record: JobRecord) -> Self {
        let JobRecord {
            id,
            // Not shown: a caller only ever reads its own jobs.
            tenant: _,
            tool,
            status,
            params,
            argv,
            command,
            created_at,
            started_at,
            finished_at,
            execution_time,
            exit_code,
            signal,
            timed_out,
            success,
            classification,
            message,
            summary,
            findings,
            stdout,
            stderr,
            output_dropped,
            truncated,
            sandbox,
            output_dir,
            error,
        } = record;
        Self {
            id,
            tool,
            status,
            params,
            argv,
            command,
            created_at,
            started_at,
            finished_at,
            execution_time,
            exit_code,
            signal,
            timed_out,
            success,
            classification,
            message,
            summary,
            findings,
            stdout,
            stderr,
            output_dropped,
            truncated,
            sandbox,
            output_dir,
            error,
        }
    }
}
