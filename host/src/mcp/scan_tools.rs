//! The MCP scan tools: `start_scan` scans a directory inside the allowed directories as an
//! asynchronous IaC scan (the same queue, workers and judging as `/iac/v2`), and `get_scan`
//! reads its status, then its results in the IaC Scan API's shape.
//!
//! Invariants: the directory is resolved against the workspace (the first allowed directory)
//! when relative, and copied by `ScanService::create_from_directory`, which refuses a real path
//! outside the caller's read directories (its tenant's `allowed_dirs`, else
//! `sandbox.allowed_dirs`) and every link; the tool and template type are checked as
//! `/iac/v2` initiate checks them, each refusal a tool error naming the argument, the value and
//! what is allowed.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use rmcp::ErrorData as McpError;
use rmcp::model::{CallToolResult, Tool};
use serde::Deserialize;
use serde_json::json;
use toolgate_iac_api::{results, status};
use toolgate_model::{
    AssetType, FailureCriteria, NewScan, ScanId, ScanRequest, TemplateParameters, TemplateType,
};

use super::handler::json_result;
use super::render::{self, object};
use crate::api::AppState;
use crate::scans::ScanError;

pub const START_SCAN: &str = "start_scan";
pub const GET_SCAN: &str = "get_scan";
/// Owner recorded on scans started over MCP until tenants exist.
const MCP_USER: &str = "mcp";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartScanArgs {
    directory: String,
    template_type: String,
    tool: Option<String>,
    template_version: Option<String>,
    #[serde(default)]
    policy_id_filters: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanIdArgs {
    id: String,
}

/// The two tools as `tools/list` shows them.
pub fn tools() -> Vec<Tool> {
    let types: Vec<&str> = TemplateType::ALL.map(TemplateType::as_str).to_vec();
    vec![
        Tool::new(
            START_SCAN,
            "Scan a directory of IaC templates (inside the allowed directories) asynchronously; \
             returns a scan id for get_scan",
            Arc::new(object(json!({
                "type": "object",
                "properties": {
                    "directory": {"type": "string", "description": "A directory inside the allowed directories; relative paths are taken from the workspace (the first allowed directory)"},
                    "template_type": {"type": "string", "enum": types},
                    "tool": {"type": "string", "description": "The scanner plugin (default: scans.default_tool, else the first installed template scanner)"},
                    "template_version": {"type": "string"},
                    "policy_id_filters": {"type": "array", "items": {"type": "string"}, "description": "Keep only findings of these rule ids"}
                },
                "required": ["directory", "template_type"],
                "additionalProperties": false
            }))),
        ),
        Tool::new(
            GET_SCAN,
            "A scan's status (processing, passed, failed, error) and, once it ended, its \
             findings with file and line",
            Arc::new(object(json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The scan id start_scan returned"}},
                "required": ["id"],
                "additionalProperties": false
            }))),
        ),
    ]
}

/// `start_scan`: copies the directory into a new scan and queues it.
pub async fn start_scan(
    state: &AppState,
    arguments: serde_json::Value,
    owner: &str,
) -> Result<CallToolResult, McpError> {
    let args: StartScanArgs = match serde_json::from_value(arguments) {
        Ok(args) => args,
        Err(error) => return Ok(render::caller_error(start_usage(&error.to_string()))),
    };
    let template_type = match TemplateType::parse("template_type", &args.template_type) {
        Ok(kind) => kind,
        Err(invalid) => return Ok(render::caller_error(invalid.to_string())),
    };
    let default_tool = crate::api::default_scan_tool(state);
    let request = ScanRequest {
        template_type,
        template_version: args.template_version,
        parameters: TemplateParameters {
            policy_id_filters: args.policy_id_filters,
            ..TemplateParameters::default()
        },
        tool: args.tool.unwrap_or(default_tool),
    };
    if let Err(invalid) = state.jobs.check_scan_tool(&request) {
        return Ok(render::caller_error(invalid.to_string()));
    }
    // The caller's own read directories: a tenant's `allowed_dirs`, else `sandbox.allowed_dirs`.
    let allowed_dirs = state.jobs.read_dirs(owner);
    let Some(workspace) = allowed_dirs.first() else {
        return Ok(render::caller_error(
            "no allowed directories are configured",
        ));
    };
    let requested = PathBuf::from(&args.directory);
    let source = if requested.is_absolute() {
        requested
    } else {
        workspace.join(requested)
    };
    let id = ScanId::parse(&uuid::Uuid::now_v7().to_string())
        .map_err(|error| McpError::internal_error(error.to_string(), None))?;
    let asset_name = source.file_name().map_or_else(
        || args.directory.clone(),
        |n| n.to_string_lossy().into_owned(),
    );
    let new = NewScan {
        id: id.clone(),
        asset_name,
        asset_type: AssetType::IacApi,
        tags: Default::default(),
        scan_attributes: Default::default(),
        failure_criteria: FailureCriteria::default(),
        user: MCP_USER.to_string(),
        tenant: owner.to_string(),
        created_at: Utc::now(),
    };
    let created = state
        .scans
        .create_from_directory(
            new,
            source,
            allowed_dirs.clone(),
            state.iac.uploads.extract.clone(),
        )
        .await;
    match created {
        Ok(_) => {}
        Err(ScanError::Copy(reason)) => {
            return Ok(render::caller_error(format!(
                "directory {:?} cannot be scanned: {reason}",
                toolgate_model::echo(&args.directory)
            )));
        }
        Err(other) => return Err(scan_failed(&other)),
    }
    let scan = state
        .scans
        .initiate(id.clone(), request, owner)
        .await
        .map_err(|error| scan_failed(&error))?;
    tracing::info!(scan = %id, "scan started over MCP");
    json_result(
        &json!({ "scan_id": id.as_str(), "status": scan.state.status().as_str(), "state": scan.state.as_str() }),
        format!("scan {id} queued; poll get_scan with this id"),
    )
}

/// `get_scan`: the status document while the scan runs, then its results document; only one of
/// `owner`'s scans (another tenant's reads as unknown, like a missing one).
pub async fn get_scan(
    state: &AppState,
    arguments: serde_json::Value,
    owner: &str,
) -> Result<CallToolResult, McpError> {
    let raw = match serde_json::from_value::<ScanIdArgs>(arguments) {
        Ok(args) => args.id,
        Err(error) => {
            return Ok(render::caller_error(format!(
                "invalid arguments: {error}; allowed: {{\"id\": \"<scan id>\"}}"
            )));
        }
    };
    match scan_document(state, &raw, owner).await? {
        Some((document, summary)) => json_result(&document, summary),
        None => Ok(render::caller_error(no_such_scan(&raw))),
    }
}

/// What `get_scan` and the resource `toolgate://scans/{id}` show of `owner`'s scan `raw_id`:
/// its results document once it has ended, its status document before, with a one-line
/// summary; `None` when `owner` has no such scan.
pub async fn scan_document(
    state: &AppState,
    raw_id: &str,
    owner: &str,
) -> Result<Option<(serde_json::Value, String)>, McpError> {
    let Ok(id) = ScanId::parse(raw_id) else {
        return Ok(None);
    };
    let (scan, findings) = match state.scans.results(id, owner).await {
        Ok(found) => found,
        Err(ScanError::Refused(toolgate_store::Refused::UnknownScan(_))) => return Ok(None),
        Err(other) => return Err(scan_failed(&other)),
    };
    let status_word = scan.state.status().as_str();
    if !scan.state.is_terminal() {
        let summary = format!(
            "scan {}: {status_word} ({}); poll again",
            scan.id,
            scan.state.as_str()
        );
        return Ok(Some((to_value(&status::status_document(&scan))?, summary)));
    }
    let details = scan
        .outcome
        .as_ref()
        .map(|outcome| outcome.error_details.clone())
        .unwrap_or_default();
    let document = results::results_document(&scan.id, &findings, &details);
    let summary = &document.meta.matched_policies_summary;
    let summary = format!(
        "scan {}: {status_word}; {} findings (high {}, medium {}, low {})",
        scan.id,
        findings.len(),
        summary.high,
        summary.medium,
        summary.low
    );
    Ok(Some((to_value(&document)?, summary)))
}

fn to_value(document: &impl serde::Serialize) -> Result<serde_json::Value, McpError> {
    serde_json::to_value(document)
        .map_err(|error| McpError::internal_error(error.to_string(), None))
}

/// The answer for a scan id `owner` has no scan with.
pub fn no_such_scan(raw_id: &str) -> String {
    format!("no scan with id {:?}", toolgate_model::echo(raw_id))
}

fn start_usage(problem: &str) -> String {
    format!(
        "invalid arguments: {problem}; allowed: directory (a directory inside the allowed \
         directories), template_type ({}), tool, template_version, policy_id_filters",
        TemplateType::ALL.map(TemplateType::as_str).join(", ")
    )
}

fn scan_failed(error: &ScanError) -> McpError {
    tracing::error!(%error, "scan service failed during an MCP request");
    McpError::internal_error("the scan store failed; see the daemon log", None)
}
