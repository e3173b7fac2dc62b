//! The result of a tool call in HexStrike's response shape, plus toolgate's additions.
//!
//! Invariants: `success` means the tool ran to completion and its plugin classified the result
//! clean or findings (so terrascan's exit 3 is a success, unlike HexStrike); `return_code` is -1
//! when the tool did not exit by itself (signal, timeout, cancel), as HexStrike reports it;
//! `partial_results` is a real boolean.

use std::sync::Arc;

use serde::Serialize;
use toolgate_plugin_runtime::{Classification, Finding, Severity};
use utoipa::ToSchema;

use toolgate_model::JobStatus;

/// The job status names as the OpenAPI document shows them (the values are the model's
/// [`JobStatus`]; the model stays free of HTTP documentation).
#[derive(Serialize, ToSchema)]
#[schema(as = JobStatus)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // Only its schema is used.
pub enum JobStatusSchema {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
    Interrupted,
}

/// `return_code` when the tool was killed or never exited by itself (HexStrike's convention).
pub const KILLED_RETURN_CODE: i32 = -1;

/// Finding counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct FindingSummary {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    pub total: usize,
}

impl FindingSummary {
    pub fn of(findings: &[Finding]) -> Self {
        let mut summary = Self::default();
        for finding in findings {
            let count = match finding.severity {
                Severity::Critical => &mut summary.critical,
                Severity::High => &mut summary.high,
                Severity::Medium => &mut summary.medium,
                Severity::Low => &mut summary.low,
                Severity::Info => &mut summary.info,
            };
            *count += 1;
            summary.total += 1;
        }
        summary
    }
}

/// `POST /api/tools/{tool}` response (HTTP 200, also when the tool failed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ToolRunResponse {
    /// The tool's standard output (lossy UTF-8, size-bounded, secrets redacted). Shared with
    /// the job record's write, so a large output is held once, not once per use.
    #[schema(value_type = String)]
    #[serde(serialize_with = "shared_text")]
    pub stdout: Arc<String>,
    #[schema(value_type = String)]
    #[serde(serialize_with = "shared_text")]
    pub stderr: Arc<String>,
    /// Exit code, or -1 when killed by a signal, timed out or cancelled.
    pub return_code: i32,
    /// The signal that ended the tool, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Ran to completion and the plugin classified the result clean or findings.
    pub success: bool,
    pub timed_out: bool,
    pub cancelled: bool,
    /// Timed out or truncated, with some output kept.
    pub partial_results: bool,
    /// Wall-clock seconds the tool ran.
    pub execution_time: f64,
    /// When the job finished (RFC 3339, UTC).
    pub timestamp: String,
    /// The argv shell-quoted, for display only: nothing is run through a shell.
    pub command: String,
    pub job_id: String,
    #[schema(value_type = JobStatusSchema)]
    pub status: JobStatus,
    /// The plugin's reading: clean, findings or tool_error (absent when parse failed).
    #[schema(value_type = Option<String>, example = "findings")]
    pub classification: Option<Classification>,
    /// The plugin's explanation, e.g. the tool's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<Finding>,
    pub summary: FindingSummary,
    /// stdout, stderr or an output file was cut at its size limit.
    pub truncated: bool,
    /// Sandbox protections applied to this run.
    #[schema(value_type = Object)]
    pub sandbox: Option<toolgate_sandbox::Protections>,
    /// The job's output directory, when the tool writes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_directory: Option<String>,
    /// Why the result could not be interpreted (plugin failure), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Serializes text shared with the job record's write as the string it is.
fn shared_text<S: serde::Serializer>(text: &Arc<String>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

/// How a run ended, as far as status and success are concerned.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub exited: bool,
    pub timed_out: bool,
    pub cancelled: bool,
    pub classification: Option<Classification>,
}

impl Ending {
    pub fn success(self) -> bool {
        self.exited
            && !self.timed_out
            && !self.cancelled
            && matches!(
                self.classification,
                Some(Classification::Clean | Classification::Findings)
            )
    }

    pub fn status(self) -> JobStatus {
        if self.cancelled {
            JobStatus::Cancelled
        } else if self.timed_out {
            JobStatus::TimedOut
        } else if self.success() {
            JobStatus::Succeeded
        } else {
            JobStatus::Failed
        }
    }
}

/// The snake_case name a classification is stored and reported under.
pub fn classification_name(classification: Classification) -> &'static str {
    match classification {
        Classification::Clean => "clean",
        Classification::Findings => "findings",
        Classification::ToolError => "tool_error",
    }
}

/// How a run ended, in the audit trail's words.
pub fn run_outcome(answer: &ToolRunResponse) -> String {
    if answer.cancelled {
        "cancelled".into()
    } else if answer.timed_out {
        "timed_out".into()
    } else if answer.success {
        "succeeded".into()
    } else {
        format!("failed: exit code {}", answer.return_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            rule_id: "r".into(),
            title: "t".into(),
            severity,
            description: "d".into(),
            resource_type: "aws_s3_bucket".into(),
            resource_name: "b".into(),
            file: None,
            line: None,
            category: "c".into(),
            documentation_url: None,
        }
    }

    #[test]
    fn summary_counts_by_severity() {
        let findings: Vec<_> = [
            Severity::High,
            Severity::High,
            Severity::Info,
            Severity::Critical,
        ]
        .into_iter()
        .map(finding)
        .collect();
        let summary = FindingSummary::of(&findings);
        assert_eq!(
            summary,
            FindingSummary {
                critical: 1,
                high: 2,
                medium: 0,
                low: 0,
                info: 1,
                total: 4
            }
        );
    }

    #[test]
    fn ending_table() {
        use Classification::*;
        let table = [
            // exited, timed_out, cancelled, classification => success, status
            (
                true,
                false,
                false,
                Some(Findings),
                true,
                JobStatus::Succeeded,
            ),
            (true, false, false, Some(Clean), true, JobStatus::Succeeded),
            (
                true,
                false,
                false,
                Some(ToolError),
                false,
                JobStatus::Failed,
            ),
            (true, false, false, None, false, JobStatus::Failed),
            (
                false,
                false,
                false,
                Some(Findings),
                false,
                JobStatus::Failed,
            ),
            (
                false,
                true,
                false,
                Some(Findings),
                false,
                JobStatus::TimedOut,
            ),
            (false, false, true, Some(Clean), false, JobStatus::Cancelled),
            (false, true, true, None, false, JobStatus::Cancelled),
        ];
        for (exited, timed_out, cancelled, classification, success, status) in table {
            let ending = Ending {
                exited,
                timed_out,
                cancelled,
                classification,
            };
            assert_eq!(ending.success(), success, "{ending:?}");
            assert_eq!(ending.status(), status, "{ending:?}");
        }
    }
}
