//! A finished job's findings become a scan's outcome: `policyIdFilters` keep only the rules
//! asked for, the rest are counted by severity, and the scan's `failureCriteria` judge the
//! counts (passed or failed); a job without a usable result makes the scan `error`.
//!
//! Invariants: counts, resources and the stored findings are computed from the same filtered
//! list; every request part the tool did not apply is an error detail (`not_applied`).

use std::collections::BTreeSet;

use toolgate_model::{
    ErrorDetail, FailureCriteria, Finding, ScanOutcome, ScanState, SeverityCounts,
    TemplateParameters,
};

use super::executor::ScanJobEnd;

/// The error-detail code of a request part the tool did not apply.
pub const NOT_APPLIED: &str = "not_applied";

/// The scan's ending state, outcome and findings for a job that ended `end`. The queue requeues
/// the scan of a job the daemon cancelled instead of judging it; a `Cancelled` judged here (a
/// job cancelled by someone else, e.g. through /api/jobs) ends the scan in `error`.
pub fn judge(
    criteria: &FailureCriteria,
    parameters: &TemplateParameters,
    end: ScanJobEnd,
) -> (ScanState, ScanOutcome, Vec<Finding>) {
    match end {
        ScanJobEnd::Completed {
            findings,
            not_applied,
        } => {
            let kept: Vec<Finding> = if parameters.policy_id_filters.is_empty() {
                findings
            } else {
                findings
                    .into_iter()
                    .filter(|finding| parameters.policy_id_filters.contains(&finding.rule_id))
                    .collect()
            };
            let counts = SeverityCounts::of(kept.iter().map(|finding| &finding.severity));
            let resources: BTreeSet<String> = kept
                .iter()
                .map(|finding| format!("{}.{}", finding.resource_type, finding.resource_name))
                .collect();
            let error_details = not_applied
                .into_iter()
                .map(|part| ErrorDetail {
                    code: NOT_APPLIED.to_string(),
                    detail: format!("{part} was not applied: the tool does not support it"),
                })
                .collect();
            let state = if criteria.fails(&counts) {
                ScanState::Failed
            } else {
                ScanState::Passed
            };
            let outcome = ScanOutcome {
                counts,
                error_details,
                resources: resources.into_iter().collect(),
            };
            (state, outcome, kept)
        }
        ScanJobEnd::Failed { code, detail } => (
            ScanState::Error,
            ScanOutcome {
                error_details: vec![ErrorDetail { code, detail }],
                ..ScanOutcome::default()
            },
            Vec::new(),
        ),
        ScanJobEnd::Cancelled => (
            ScanState::Error,
            ScanOutcome {
                error_details: vec![ErrorDetail {
                    code: "cancelled".to_string(),
                    detail: "the scan's job was cancelled".to_string(),
                }],
                ..ScanOutcome::default()
            },
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use toolgate_model::{Operator, Severity};

    use super::*;

    fn finding(rule: &str, severity: Severity, resource: &str) -> Finding {
        Finding {
            rule_id: rule.into(),
            title: rule.into(),
            severity,
            description: String::new(),
            resource_type: "aws_s3_bucket".into(),
            resource_name: resource.into(),
            file: Some("main.tf".into()),
            line: Some(1),
            category: String::new(),
            documentation_url: None,
        }
    }

    fn completed(findings: Vec<Finding>) -> ScanJobEnd {
        ScanJobEnd::Completed {
            findings,
            not_applied: Vec::new(),
        }
    }

    #[test]
    fn verdicts_table() {
        let only_high = FailureCriteria {
            high: 1,
            medium: 0,
            low: 0,
            operator: Operator::Or,
        };
        let low = || finding("L", Severity::Low, "a");
        let high = || finding("H", Severity::High, "b");
        let filter = |rules: &[&str]| TemplateParameters {
            policy_id_filters: rules.iter().map(|rule| rule.to_string()).collect(),
            ..TemplateParameters::default()
        };
        // (criteria, filters, findings, state, kept)
        let table = [
            (
                FailureCriteria::default(),
                filter(&[]),
                vec![],
                ScanState::Passed,
                0,
            ),
            (
                FailureCriteria::default(),
                filter(&[]),
                vec![low()],
                ScanState::Failed,
                1,
            ),
            (
                only_high,
                filter(&[]),
                vec![low(), low()],
                ScanState::Passed,
                2,
            ),
            (
                only_high,
                filter(&[]),
                vec![low(), high()],
                ScanState::Failed,
                2,
            ),
            // The filter drops the high finding before it is counted.
            (
                only_high,
                filter(&["L"]),
                vec![low(), high()],
                ScanState::Passed,
                1,
            ),
            (
                FailureCriteria::default(),
                filter(&["X"]),
                vec![low(), high()],
                ScanState::Passed,
                0,
            ),
        ];
        for (criteria, parameters, findings, state, kept) in table {
            let (judged, outcome, stored) = judge(&criteria, &parameters, completed(findings));
            assert_eq!(judged, state, "{criteria:?} {parameters:?}");
            assert_eq!(stored.len(), kept);
            assert_eq!(outcome.counts.total(), kept as u64);
        }
    }

    #[test]
    fn resources_are_distinct_and_not_applied_parts_are_reported() {
        let end = ScanJobEnd::Completed {
            findings: vec![
                finding("A", Severity::Low, "x"),
                finding("B", Severity::Low, "x"),
                finding("C", Severity::Info, "y"),
            ],
            not_applied: vec!["variables".into(), "variableFiles".into()],
        };
        let (_, outcome, _) = judge(
            &FailureCriteria::default(),
            &TemplateParameters::default(),
            end,
        );
        assert_eq!(outcome.resources, ["aws_s3_bucket.x", "aws_s3_bucket.y"]);
        let codes: Vec<&str> = outcome
            .error_details
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(codes, [NOT_APPLIED, NOT_APPLIED]);
        assert!(outcome.error_details[0].detail.starts_with("variables "));
    }

    #[test]
    fn a_job_without_a_result_is_an_error_with_its_reason() {
        for (end, code) in [
            (
                ScanJobEnd::Failed {
                    code: "timed_out".into(),
                    detail: "the tool ran out of time".into(),
                },
                "timed_out",
            ),
            (ScanJobEnd::Cancelled, "cancelled"),
        ] {
            let (state, outcome, findings) = judge(
                &FailureCriteria::default(),
                &TemplateParameters::default(),
                end,
            );
            assert_eq!(state, ScanState::Error);
            assert_eq!(outcome.error_details[0].code, code);
            assert!(findings.is_empty());
        }
    }
}
