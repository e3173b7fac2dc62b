//! Model values the unit tests share.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use toolgate_model::{AssetType, FailureCriteria, Finding, Scan, ScanId, ScanState, Severity};

pub const SCAN_ID: &str = "0190a5b2-7c3e-7def-8a12-3456789abcde";

/// A scan right after create: `my-asset`, IaC-API, tag env=dev, default criteria.
pub fn scan() -> Scan {
    Scan {
        id: ScanId::parse(SCAN_ID).expect("canonical id"),
        asset_name: "my-asset".to_string(),
        asset_type: AssetType::IacApi,
        tags: BTreeMap::from([("env".to_string(), "dev".to_string())]),
        scan_attributes: BTreeMap::from([("buildNumber".to_string(), "7".to_string())]),
        failure_criteria: FailureCriteria::default(),
        user: "ci-bot".to_string(),
        tenant: "local".to_string(),
        state: ScanState::AwaitingUpload,
        created_at: Utc
            .with_ymd_and_hms(2026, 12, 6, 4, 0, 0)
            .single()
            .expect("a valid time"),
        upload: None,
        request: None,
        attempts: 0,
        started_at: None,
        finished_at: None,
        job_id: None,
        outcome: None,
    }
}

/// A finding of `rule_id` at `severity`, in `file` at `line` when given.
pub fn finding(
    rule_id: &str,
    severity: Severity,
    file: Option<&str>,
    line: Option<u32>,
) -> Finding {
    Finding {
        rule_id: rule_id.to_string(),
        title: format!("Rule {rule_id}"),
        severity,
        description: format!("{rule_id} is broken"),
        resource_type: "aws_s3_bucket".to_string(),
        resource_name: "logs".to_string(),
        file: file.map(str::to_string),
        line,
        category: "Data Protection".to_string(),
        documentation_url: Some(format!("https://docs.example/{rule_id}")),
    }
}
