//! What an MCP client reads: tool descriptions built from the catalog, a finished job as
//! structured content plus a one-line summary, and a refused call as an `isError` result that
//! lists every field error.
//!
//! Invariants: a refused call's text comes from the same rendering as the HTTP API's error body
//! (`ApiError::into_public_parts`), so both surfaces say the same thing and neither leaks
//! daemon internals; the structured content of a run always matches [`run_output_schema`].

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde::Serialize;
use serde_json::json;
use toolgate_plugin_runtime::Finding;

use crate::api::ApiError;
use crate::jobs::{FindingSummary, JobError, ToolEntry, ToolRunResponse};

/// A finished job as `structuredContent` (the run response without stdout/stderr, which stay
/// in the job resource: an agent gets the findings, not the tool's raw output).
#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub job_id: &'a str,
    pub tool: &'a str,
    pub status: &'static str,
    pub success: bool,
    pub return_code: i32,
    pub timed_out: bool,
    pub cancelled: bool,
    pub truncated: bool,
    pub execution_time: f64,
    pub classification: Option<toolgate_plugin_runtime::Classification>,
    pub message: Option<&'a str>,
    pub error: Option<&'a str>,
    pub summary: FindingSummary,
    pub findings: &'a [Finding],
    /// The job's record, readable with `resources/read`.
    pub resource: String,
}

/// The resource URI of a job.
pub fn job_uri(id: &str) -> String {
    format!("{JOB_URI_PREFIX}{id}")
}

/// Prefix of every job resource URI.
pub const JOB_URI_PREFIX: &str = "toolgate://jobs/";
/// Where a scan's status, then results, are read as an MCP resource.
pub const SCAN_URI_PREFIX: &str = "toolgate://scans/";

/// The MCP tool of a catalog entry: its name, summary and parameter schema.
pub fn plugin_tool(entry: &ToolEntry) -> Tool {
    let description = &entry.description;
    Tool::new(
        description.name.clone(),
        description.summary.clone(),
        Arc::new(schema_object(&description.params_schema)),
    )
    .with_raw_output_schema(Arc::new(run_output_schema()))
}

/// A JSON Schema as the object MCP requires; a plugin's non-object schema (never produced by
/// the bundled plugins) becomes the schema of "any object".
pub fn schema_object(schema: &serde_json::Value) -> JsonObject {
    match schema {
        serde_json::Value::Object(object) => object.clone(),
        _ => object(json!({"type": "object"})),
    }
}

/// `value` as a JSON object; only called on `json!` object literals.
pub fn object(value: serde_json::Value) -> JsonObject {
    match value {
        serde_json::Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

/// The output schema of every plugin tool: the shape of [`RunReport`].
pub fn run_output_schema() -> JsonObject {
    let count = json!({"type": "integer", "minimum": 0});
    object(json!({
        "type": "object",
        "properties": {
            "job_id": {"type": "string"},
            "tool": {"type": "string"},
            "status": {"type": "string"},
            "success": {"type": "boolean"},
            "return_code": {"type": "integer"},
            "timed_out": {"type": "boolean"},
            "cancelled": {"type": "boolean"},
            "truncated": {"type": "boolean"},
            "execution_time": {"type": "number"},
            "classification": {"type": ["string", "null"]},
            "message": {"type": ["string", "null"]},
            "error": {"type": ["string", "null"]},
            "summary": {
                "type": "object",
                "properties": {
                    "critical": count, "high": count, "medium": count,
                    "low": count, "info": count, "total": count
                },
                "required": ["critical", "high", "medium", "low", "info", "total"]
            },
            "findings": {"type": "array", "items": {"type": "object"}},
            "resource": {"type": "string"}
        },
        "required": ["job_id", "tool", "status", "success", "return_code", "summary", "findings", "resource"]
    }))
}

/// A finished job: findings as structured content, a summary line as text; `isError` when the
/// tool did not succeed (failed, timed out, cancelled), so an agent does not mistake it for clean.
pub fn finished(tool: &str, response: &ToolRunResponse) -> CallToolResult {
    let report = RunReport {
        job_id: &response.job_id,
        tool,
        status: response.status.as_str(),
        success: response.success,
        return_code: response.return_code,
        timed_out: response.timed_out,
        cancelled: response.cancelled,
        truncated: response.truncated,
        execution_time: response.execution_time,
        classification: response.classification,
        message: response.message.as_deref(),
        error: response.error.as_deref(),
        summary: response.summary,
        findings: &response.findings,
        resource: job_uri(&response.job_id),
    };
    let text = summary_line(tool, response);
    let mut result = if response.success {
        CallToolResult::success(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::error(vec![ContentBlock::text(text)])
    };
    result.structured_content = serde_json::to_value(&report).ok();
    result
}

/// E.g. `terrascan: 1 finding (1 medium); job <id>; exit 3`.
pub fn summary_line(tool: &str, response: &ToolRunResponse) -> String {
    let summary = &response.summary;
    let findings = if summary.total == 0 {
        "no findings".to_string()
    } else {
        let by_severity: Vec<String> = [
            (summary.critical, "critical"),
            (summary.high, "high"),
            (summary.medium, "medium"),
            (summary.low, "low"),
            (summary.info, "info"),
        ]
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, severity)| format!("{count} {severity}"))
        .collect();
        let plural = if summary.total == 1 { "" } else { "s" };
        format!(
            "{} finding{plural} ({})",
            summary.total,
            by_severity.join(", ")
        )
    };
    let ending = if response.timed_out {
        "timed out".to_string()
    } else if response.cancelled {
        "cancelled".to_string()
    } else if let Some(signal) = response.signal {
        format!("killed by signal {signal}")
    } else {
        format!("exit {}", response.return_code)
    };
    let mut line = format!("{tool}: {findings}; job {}; {ending}", response.job_id);
    if !response.success {
        line.push_str(&format!("; status {}", response.status.as_str()));
    }
    for note in [&response.message, &response.error].into_iter().flatten() {
        line.push_str("; ");
        line.push_str(note);
    }
    line
}

/// A call the daemon refused (bad parameters, a refused plan, a missing binary, a full queue):
/// the API's message, then one line per field error, `- <field>: <message>` (the message echoes
/// the bad value and says what is allowed).
pub fn refused(error: JobError) -> CallToolResult {
    let (message, field_errors, retry_after) = ApiError::Job(error).into_public_parts();
    let mut text = message;
    for field_error in field_errors {
        text.push_str(&format!(
            "\n- {}: {}",
            field_error.field, field_error.message
        ));
    }
    if let Some(secs) = retry_after {
        text.push_str(&format!("\nRetry after {secs} seconds."));
    }
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// A caller mistake in a built-in tool's arguments, as an `isError` result the agent can act on.
pub fn caller_error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}
