//! toolgate's domain model: what a job, a scan, a finding and a verdict ARE, independent of how
//! they travel (HexStrike JSON, JSON:API, SARIF, CSV, MCP) or rest (SQLite, PostgreSQL rows).
//!
//! Invariants: this crate has no I/O, no SQL, no HTTP and no wasm; every value here is valid by
//! construction (the parsers return typed errors naming the field, the value and what is
//! allowed), so views and stores never re-validate; wire names that several views share (a
//! severity's, a status's) are defined once here.
#![forbid(unsafe_code)]

pub mod finding;
pub mod job;
pub mod query;
pub mod scan;
pub mod severity;

pub use finding::Finding;
pub use job::{FinishedJob, JobFilter, JobRecord, JobStatus, NewJob, UnknownJobStatus};
pub use query::{
    CriteriaFilter, Direction, GroupBy, Page, ScanGroup, ScanPage, ScanQuery, ScanTotals,
    SortField, TimeWindow,
};
pub use scan::{
    AssetType, ErrorDetail, FailureCriteria, NewScan, Operator, Scan, ScanId, ScanOutcome,
    ScanRequest, ScanSpec, ScanState, ScanStatus, TemplateParameters, TemplateType, UploadInfo,
};
pub use severity::{Bucket, Severity, SeverityCounts};

/// A value a caller sent that the model does not accept. Every view turns it into its own error
/// shape (a JSON:API `errors[]` entry, a HexStrike field error) without rewording it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    /// The caller's name for the field, e.g. `assetType` or `failureCriteria.operator`.
    pub field: String,
    /// Names the (truncated) value and what is allowed.
    pub message: String,
}

/// Longest piece of a caller's value repeated in an error message: enough to recognise it,
/// too short to turn error messages into an echo channel.
pub const ECHO_MAX_CHARS: usize = 64;

impl InvalidValue {
    /// An error for `field` whose `value` is not among `allowed`.
    pub fn not_allowed(field: &str, value: &str, allowed: &[&str]) -> Self {
        Self {
            field: field.to_string(),
            message: format!(
                "{:?} is not allowed; allowed: {}",
                echo(value),
                allowed.join(", ")
            ),
        }
    }

    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// `value` cut to [`ECHO_MAX_CHARS`] characters, for error messages.
pub fn echo(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(ECHO_MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}
