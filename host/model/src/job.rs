//! A job: one run of one tool, synchronous (a caller waits for it) or on behalf of a scan.
//!
//! Invariant: a status only moves forward: queued -> running -> one terminal status, or to
//! `interrupted` when the daemon that owned a synchronous job died (its caller is gone, so it
//! is not re-run; a scan's job is re-run by the scan queue instead).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    /// Ran to completion and the plugin classified the result clean or findings.
    Succeeded,
    /// Ran but the tool failed (plugin classification tool-error), or the daemon could not run it.
    Failed,
    Cancelled,
    TimedOut,
    /// The daemon stopped (crash, kill -9) while the job was queued or running.
    Interrupted,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::TimedOut,
        JobStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the job has ended (every status but queued and running).
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`JobStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job status {0:?}; allowed: queued, running, succeeded, failed, cancelled, timed_out, interrupted"
)]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownJobStatus(crate::echo(text)))
    }
}

/// A job as admitted, before it runs: what a store records first.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub tool: String,
    /// The caller's parameters as received (a scan's job: its request).
    pub params: serde_json::Value,
    pub argv: Vec<String>,
    /// `argv` shell-quoted, for display only: nothing is run through a shell.
    pub command: String,
    pub output_dir: Option<String>,
    /// RFC 3339, UTC, microseconds (the daemon's one timestamp format, which sorts as text).
    pub created_at: String,
    /// The tenant that owns the job: only it sees or cancels the job.
    pub tenant: String,
}

/// Everything known when a job ends.
#[derive(Debug, Clone, Default)]
pub struct FinishedJob {
    pub status: Option<JobStatus>,
    pub finished_at: String,
    pub duration_secs: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub success: bool,
    pub classification: Option<String>,
    pub message: Option<String>,
    /// JSON text, serialized by the caller from its typed values (no `Value` tree).
    pub summary: Option<String>,
    /// JSON text, as `summary`.
    pub findings: Option<String>,
    /// Shared with the response being answered, so a large output is not copied to be stored.
    pub stdout: Option<Arc<String>>,
    pub stderr: Option<Arc<String>>,
    pub truncated: bool,
    /// JSON text, as `summary`.
    pub protections: Option<String>,
    pub error: Option<String>,
}

/// A job as a store returns it. Deliberately not `Serialize`: every view (`/api/jobs`, MCP)
/// defines its own shape from it, so changing a view cannot change a table and back.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub id: String,
    /// The tenant that owns the job.
    pub tenant: String,
    pub tool: String,
    pub status: JobStatus,
    pub params: serde_json::Value,
    pub argv: Vec<String>,
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
    pub classification: Option<String>,
    pub message: Option<String>,
    pub summary: Option<serde_json::Value>,
    pub findings: Option<serde_json::Value>,
    /// Absent in lists, and for jobs older than the output retention limit.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// True when stdout/stderr were dropped by the retention limit.
    pub output_dropped: bool,
    pub truncated: bool,
    pub sandbox: Option<serde_json::Value>,
    pub output_dir: Option<String>,
    /// Why the daemon could not run or finish the job.
    pub error: Option<String>,
}

/// Which jobs a listing returns (newest first).
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this tenant's jobs (every caller's listing sets it; `None` only for the operator).
    pub tenant: Option<String>,
    pub tool: Option<String>,
    pub status: Option<JobStatus>,
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_others_are_refused() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        for refused in ["", "Queued", "done", "timed-out"] {
            assert!(refused.parse::<JobStatus>().is_err(), "{refused:?}");
        }
    }
}
