//! `GET /iac/v2/scans/{id}/results`: a scan's violations with upstream's attributes plus where
//! they are (file, line, resource) and the tool's rule id.
//!
//! Invariants: `meta.matchedPoliciesSummary` is counted from the very findings listed in
//! `data` (so the two never disagree), with high, medium and low always numbers; `data` and
//! `meta.errorDetails` are always arrays; `severity` is the upstream bucket (`high` for a
//! critical finding, `info` for one in no bucket) and `toolSeverity` the tool's own; a fact a
//! tool did not report (`line`, `file`, `docUrl`) is `null`, never guessed.

use serde::Serialize;
use toolgate_model::{ErrorDetail, Finding, ScanId, Severity, SeverityCounts};

use crate::MatchedPoliciesSummary;

/// The JSON:API resource type of one violation.
pub const VIOLATION_TYPE: &str = "violation";

/// The results body: `meta` and `data[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultsDocument {
    pub meta: ResultsMeta,
    pub data: Vec<Violation>,
}

/// `meta` of the results: the summary by bucket and the error details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultsMeta {
    pub matched_policies_summary: MatchedPoliciesSummary,
    pub error_details: Vec<ErrorDetail>,
}

/// One violation of `data[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// `<scan id>-<n>`, n counting from 1 in the order findings were stored.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: ViolationAttributes,
}

/// Upstream's violation attributes, then toolgate's extensions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViolationAttributes {
    /// Upstream's bucket: high (critical and high), medium, low; `info` outside the buckets.
    pub severity: &'static str,
    pub name: String,
    /// Upstream's policy rule; toolgate's tools name rules by id, so this is the rule id.
    pub rule: String,
    pub desc: String,
    /// Upstream's list of files: the finding's file, or empty when the tool gave none.
    pub files: Vec<String>,
    pub policy_id: String,
    pub doc_url: Option<String>,
    /// Upstream marks built-in policies; every rule a tool ships is built in.
    pub system_default: bool,
    /// Extension: the tool's severity (critical, high, medium, low, info).
    pub tool_severity: Severity,
    /// Extension: the file relative to the upload's root.
    pub file: Option<String>,
    /// Extension: the 1-based line of the resource in `file`.
    pub line: Option<u32>,
    pub resource_type: String,
    pub resource_name: String,
    pub rule_id: String,
    pub category: String,
}

/// The severity name upstream clients compare: the bucket's, or `info`.
pub fn upstream_severity(severity: Severity) -> &'static str {
    severity.bucket().map_or("info", |bucket| bucket.as_str())
}

/// The results document of the scan `scan_id`, from its stored findings (after
/// `policyIdFilters`) and its outcome's error details.
pub fn results_document(
    scan_id: &ScanId,
    findings: &[Finding],
    error_details: &[ErrorDetail],
) -> ResultsDocument {
    let counts = SeverityCounts::of(findings.iter().map(|finding| &finding.severity));
    ResultsDocument {
        meta: ResultsMeta {
            matched_policies_summary: MatchedPoliciesSummary::from(&counts),
            error_details: error_details.to_vec(),
        },
        data: findings
            .iter()
            .enumerate()
            .map(|(index, finding)| violation(scan_id, index, finding))
            .collect(),
    }
}

fn violation(scan_id: &ScanId, index: usize, finding: &Finding) -> Violation {
    Violation {
        id: format!("{scan_id}-{}", index + 1),
        kind: VIOLATION_TYPE,
        attributes: ViolationAttributes {
            severity: upstream_severity(finding.severity),
            name: finding.title.clone(),
            rule: finding.rule_id.clone(),
            desc: finding.description.clone(),
            files: finding.file.iter().cloned().collect(),
            policy_id: finding.rule_id.clone(),
            doc_url: finding.documentation_url.clone(),
            system_default: true,
            tool_severity: finding.severity,
            file: finding.file.clone(),
            line: finding.line,
            resource_type: finding.resource_type.clone(),
            resource_name: finding.resource_name.clone(),
            rule_id: finding.rule_id.clone(),
            category: finding.category.clone(),
        },
    }
}

impl ResultsDocument {
    /// The document as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::json_body::to_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{SCAN_ID, finding};
    use serde_json::json;

    fn render(findings: &[Finding], details: &[ErrorDetail]) -> serde_json::Value {
        let id = ScanId::parse(SCAN_ID).expect("canonical");
        serde_json::from_slice(&results_document(&id, findings, details).to_bytes()).expect("JSON")
    }

    #[test]
    fn no_findings_still_has_numbers_and_arrays() {
        assert_eq!(
            render(&[], &[]),
            json!({"meta": {"matchedPoliciesSummary": {"high": 0, "medium": 0, "low": 0},
                "errorDetails": []}, "data": []})
        );
    }

    #[test]
    fn one_violation_has_the_exact_shape() {
        let found = finding(
            "AC_AWS_0207",
            Severity::Critical,
            Some("dev/main.tf"),
            Some(12),
        );
        let details = [ErrorDetail {
            code: "not_applied".to_string(),
            detail: "templateParameters.variables: terrascan takes no variables".to_string(),
        }];
        assert_eq!(
            render(&[found], &details),
            json!({
                "meta": {"matchedPoliciesSummary": {"high": 1, "medium": 0, "low": 0},
                    "errorDetails": [{"code": "not_applied",
                        "detail": "templateParameters.variables: terrascan takes no variables"}]},
                "data": [{"id": "0190a5b2-7c3e-7def-8a12-3456789abcde-1", "type": "violation",
                    "attributes": {"severity": "high", "name": "Rule AC_AWS_0207",
                        "rule": "AC_AWS_0207", "desc": "AC_AWS_0207 is broken",
                        "files": ["dev/main.tf"], "policyId": "AC_AWS_0207",
                        "docUrl": "https://docs.example/AC_AWS_0207", "systemDefault": true,
                        "toolSeverity": "critical", "file": "dev/main.tf", "line": 12,
                        "resourceType": "aws_s3_bucket", "resourceName": "logs",
                        "ruleId": "AC_AWS_0207", "category": "Data Protection"}}]
            })
        );
    }

    #[test]
    fn unknown_facts_are_null_and_severities_fall_in_buckets() {
        let mut no_place = finding("R1", Severity::Info, None, None);
        no_place.documentation_url = None;
        let findings = [
            no_place,
            finding("R2", Severity::Medium, Some("a.tf"), None),
            finding("R3", Severity::Low, Some("a.tf"), Some(1)),
            finding("R4", Severity::High, Some("b.tf"), Some(3)),
        ];
        let value = render(&findings, &[]);
        assert_eq!(
            value["meta"]["matchedPoliciesSummary"],
            json!({"high": 1, "medium": 1, "low": 1})
        );
        let first = &value["data"][0]["attributes"];
        assert_eq!(first["severity"], json!("info"));
        assert_eq!(first["files"], json!([]));
        assert_eq!(first["file"], json!(null));
        assert_eq!(first["line"], json!(null));
        assert_eq!(first["docUrl"], json!(null));
        let severities: Vec<&str> = (0..4)
            .filter_map(|i| value["data"][i]["attributes"]["severity"].as_str())
            .collect();
        assert_eq!(severities, ["info", "medium", "low", "high"]);
    }
}
