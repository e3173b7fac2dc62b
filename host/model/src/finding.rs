//! A finding: one rule a scanner says one resource breaks.
//!
//! Invariant: `file` is relative to what was scanned (the scan's upload root, or the job's
//! workspace) and `line` is 1-based; both are absent when the tool does not say, never guessed.

use serde::{Deserialize, Serialize};

use crate::Severity;

/// One normalized finding, as a plugin's `parse` reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The tool's rule id, e.g. `CKV_AWS_24` or `AC_AWS_0319`.
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub resource_type: String,
    pub resource_name: String,
    pub file: Option<String>,
    /// 1-based line of the resource in `file`.
    pub line: Option<u32>,
    pub category: String,
    pub documentation_url: Option<String>,
}
