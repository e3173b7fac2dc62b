//! prowler `parse`: a finished run -> classification, findings and a short message.
//!
//! Reads every `*.ocsf.json` in the job's output directory: a JSON array of OCSF Detection
//! Findings. The array is streamed element by element into small typed records holding only the
//! fields used (never a `serde_json::Value` of the whole array: real reports reach 19 MB).
//!
//! Only `status_code == "FAIL"` records are findings; PASS and MANUAL are not (MANUAL means
//! "check it yourself", not a detected problem). Muted FAILs (`status == "Suppressed"`) are
//! counted in the message, not reported, because the operator's mutelist silenced them.
//!
//! Classification: exit 0 -> clean, or findings when FAILs are present (`-z`); exit 3 -> findings;
//! anything else (1 fatal, 2 bad arguments, a signal, a timeout) -> tool error with the end of
//! stderr. A missing report with exit 0 is clean (prowler writes no file without findings); an
//! unreadable or host-truncated report is a tool error.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use toolgate_plugin_sdk::finding::http_url;
use toolgate_plugin_sdk::output;
use toolgate_plugin_sdk::{Classification, Finding, Outcome, ParseResult, Quote, Severity};

const OCSF_SUFFIX: &str = ".ocsf.json";
/// prowler's exit code for "at least one check failed".
const EXIT_FAILED_CHECKS: i32 = 3;

/// `null` in prowler's output reads as the field's default.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize, Default)]
struct OcsfRecord {
    #[serde(default, deserialize_with = "null_as_default")]
    status_code: String,
    #[serde(default, deserialize_with = "null_as_default")]
    status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    severity: String,
    #[serde(default, deserialize_with = "null_as_default")]
    message: String,
    #[serde(default, deserialize_with = "null_as_default")]
    status_detail: String,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    finding_info: FindingInfo,
    #[serde(default, deserialize_with = "null_as_default")]
    resources: Vec<Resource>,
    #[serde(default, deserialize_with = "null_as_default")]
    remediation: Remediation,
    #[serde(default, deserialize_with = "null_as_default")]
    unmapped: Unmapped,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default, deserialize_with = "null_as_default")]
    event_code: String,
}

#[derive(Deserialize, Default)]
struct FindingInfo {
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    #[serde(default, deserialize_with = "null_as_default")]
    desc: String,
    #[serde(default, deserialize_with = "null_as_default")]
    types: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Resource {
    #[serde(default, rename = "type", deserialize_with = "null_as_default")]
    kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    uid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    group: Group,
}

#[derive(Deserialize, Default)]
struct Group {
    #[serde(default, deserialize_with = "null_as_default")]
    name: String,
}

#[derive(Deserialize, Default)]
struct Remediation {
    #[serde(default, deserialize_with = "null_as_default")]
    references: Vec<String>,
}

#[derive(Deserialize, Default)]
struct Unmapped {
    #[serde(default, deserialize_with = "null_as_default")]
    related_url: String,
}

/// The FAIL findings of one report, collected while the array streams by.
#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
    muted: usize,
}

impl<'de> Deserialize<'de> for Report {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReportVisitor;
        impl<'de> Visitor<'de> for ReportVisitor {
            type Value = Report;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON array of OCSF findings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Report, A::Error> {
                let mut report = Report::default();
                while let Some(record) = seq.next_element::<OcsfRecord>()? {
                    if record.status_code != "FAIL" {
                        continue;
                    }
                    if record.status == "Suppressed" {
                        report.muted += 1;
                    } else {
                        report.findings.push(record_to_finding(record));
                    }
                }
                Ok(report)
            }
        }
        deserializer.deserialize_seq(ReportVisitor)
    }
}

fn record_to_finding(record: OcsfRecord) -> Finding {
    let OcsfRecord {
        severity,
        message,
        status_detail,
        metadata,
        finding_info,
        resources,
        remediation,
        unmapped,
        ..
    } = record;
    let resource = resources.into_iter().next().unwrap_or_default();
    let description = [finding_info.desc, status_detail, message]
        .into_iter()
        .find(|text| !text.is_empty())
        .unwrap_or_default();
    let category = if resource.group.name.is_empty() {
        finding_info.types.into_iter().next().unwrap_or_default()
    } else {
        resource.group.name
    };
    let documentation_url = remediation
        .references
        .into_iter()
        .chain(std::iter::once(unmapped.related_url))
        .find_map(|url| http_url(&url));
    Finding {
        rule_id: metadata.event_code,
        title: finding_info.title,
        severity: severity_from(&severity),
        description,
        resource_type: resource.kind,
        resource_name: if resource.name.is_empty() {
            resource.uid
        } else {
            resource.name
        },
        file: None,
        line: None,
        category,
        documentation_url,
    }
}

/// prowler's OCSF severities are the contract's words ("Informational" included); anything
/// else is info rather than a guessed higher rank.
fn severity_from(text: &str) -> Severity {
    Severity::from_word(text).unwrap_or(Severity::Info)
}

/// All reports in the output directory, merged. `Ok(None)` when there is none.
fn read_reports(outcome: &Outcome) -> Result<Option<Report>, String> {
    let mut merged: Option<Report> = None;
    for file in outcome
        .files
        .iter()
        .filter(|f| f.name.ends_with(OCSF_SUFFIX))
    {
        if file.truncated {
            return Err(format!(
                "prowler's report {:?} was cut at the host's file size limit and cannot be read",
                file.name
            ));
        }
        let report: Report = serde_json::from_slice(&file.content).map_err(|error| {
            format!(
                "prowler's report {:?} is not a valid OCSF array ({error})",
                file.name
            )
        })?;
        let total = merged.get_or_insert_with(Report::default);
        total.findings.extend(report.findings);
        total.muted += report.muted;
    }
    Ok(merged)
}

pub fn parse(outcome: &Outcome) -> ParseResult {
    let failure = match (outcome.timed_out, outcome.exit_code) {
        (true, _) => Some("prowler timed out".to_string()),
        (false, None) => Some("prowler was killed by a signal".to_string()),
        (false, Some(0 | EXIT_FAILED_CHECKS)) => None,
        (false, Some(code)) => Some(format!("prowler exited with code {code}")),
    };
    if let Some(summary) = failure {
        return tool_error(outcome, &summary);
    }
    let report = match read_reports(outcome) {
        Ok(report) => report,
        Err(message) => return ParseResult::tool_error(message),
    };
    let failed_checks_exit = outcome.exit_code == Some(EXIT_FAILED_CHECKS);
    let Some(report) = report else {
        return if failed_checks_exit {
            ParseResult {
                classification: Classification::Findings,
                findings: Vec::new(),
                message: Some(
                    "prowler reported failed checks (exit 3) but wrote no OCSF report".to_string(),
                ),
            }
        } else {
            ParseResult {
                classification: Classification::Clean,
                findings: Vec::new(),
                message: None,
            }
        };
    };
    let message =
        (report.muted > 0).then(|| format!("{} muted failed check(s) not reported", report.muted));
    let classification = if report.findings.is_empty() && !failed_checks_exit {
        Classification::Clean
    } else {
        Classification::Findings
    };
    ParseResult {
        classification,
        findings: report.findings,
        message,
    }
}

/// prowler logs to stdout as well; with an empty stderr the end of stdout says what went wrong.
fn tool_error(outcome: &Outcome, summary: &str) -> ParseResult {
    output::tool_error(outcome, summary, Quote::StderrOrStdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::OutputFile;

    const FIXTURE_NAME: &str = "prowler-output-123456789012-20261122141813.ocsf.json";

    fn fixture() -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/prowler/aws_s3_iam.ocsf.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    fn outcome(exit_code: Option<i32>, files: Vec<File>) -> Outcome {
        Outcome {
            exit_code,
            files: files
                .into_iter()
                .map(|(name, content, truncated)| OutputFile {
                    name: name.to_string(),
                    content,
                    truncated,
                })
                .collect(),
            ..Outcome::default()
        }
    }

    fn severity_counts(result: &ParseResult) -> [usize; 5] {
        let mut counts = [0; 5];
        for finding in &result.findings {
            counts[finding.severity as usize] += 1;
        }
        counts
    }

    /// Counted with python3 from the fixture: 54 records, 35 FAIL (3 High, 20 Medium, 12 Low),
    /// 19 PASS; matches prowler's own summary table in aws_s3_iam.stdout.txt.
    #[test]
    fn fixture_fail_counts() {
        let result = parse(&outcome(Some(3), vec![(FIXTURE_NAME, fixture(), false)]));
        assert_eq!(result.classification, Classification::Findings);
        assert_eq!(result.findings.len(), 35);
        assert_eq!(severity_counts(&result), [0, 3, 20, 12, 0]);
        assert_eq!(result.message, None);
        let s3 = result
            .findings
            .iter()
            .filter(|f| f.category == "s3")
            .count();
        let iam = result
            .findings
            .iter()
            .filter(|f| f.category == "iam")
            .count();
        assert_eq!((s3, iam), (24, 11));
    }

    #[test]
    fn fixture_first_finding_fields() {
        let result = parse(&outcome(Some(3), vec![(FIXTURE_NAME, fixture(), false)]));
        let first = result.findings.first().cloned();
        assert_eq!(
            first,
            Some(Finding {
                rule_id: "iam_check_saml_providers_sts".to_string(),
                title: "IAM SAML provider exists in the account".to_string(),
                severity: Severity::Low,
                description: "**IAM SAML providers** enable **federated role assumption** via \
                              STS `AssumeRoleWithSAML`.\n\nThis evaluates whether such providers \
                              exist in the account."
                    .to_string(),
                resource_type: "Other".to_string(),
                resource_name: "123456789012".to_string(),
                file: None,
                line: None,
                category: "iam".to_string(),
                documentation_url: Some(
                    "https://hub.prowler.com/check/iam_check_saml_providers_sts".to_string()
                ),
            })
        );
        let bucket = result
            .findings
            .iter()
            .find(|f| f.rule_id == "s3_bucket_level_public_access_block")
            .map(|f| {
                (
                    f.severity,
                    f.resource_type.as_str(),
                    f.resource_name.as_str(),
                )
            });
        assert_eq!(
            bucket,
            Some((Severity::High, "AwsS3Bucket", "toolgate-demo-public"))
        );
    }

    /// (file name, content, truncated by the host)
    type File = (&'static str, Vec<u8>, bool);
    /// (exit code, files, expected classification, expected finding count)
    type FileCase = (Option<i32>, Vec<File>, Classification, usize);

    #[test]
    fn exit_codes_and_files() {
        let fail_only =
            br#"[{"status_code":"FAIL","severity":"Critical","metadata":{"event_code":"c"}}]"#;
        let pass_only = br#"[{"status_code":"PASS"},{"status_code":"MANUAL"}]"#;
        let muted = br#"[{"status_code":"FAIL","status":"Suppressed"}]"#;
        let nulls = br#"[{"status_code":"FAIL","severity":null,"resources":null,"finding_info":null,"remediation":{"references":null}}]"#;
        let table: &[FileCase] = &[
            (Some(0), vec![], Classification::Clean, 0),
            (Some(3), vec![], Classification::Findings, 0),
            (
                Some(0),
                vec![("r.ocsf.json", pass_only.to_vec(), false)],
                Classification::Clean,
                0,
            ),
            (
                Some(0),
                vec![("r.ocsf.json", fail_only.to_vec(), false)],
                Classification::Findings,
                1,
            ),
            (
                Some(3),
                vec![("r.ocsf.json", fail_only.to_vec(), false)],
                Classification::Findings,
                1,
            ),
            (
                Some(0),
                vec![("r.ocsf.json", muted.to_vec(), false)],
                Classification::Clean,
                0,
            ),
            (
                Some(3),
                vec![("r.ocsf.json", nulls.to_vec(), false)],
                Classification::Findings,
                1,
            ),
            (
                Some(3),
                vec![
                    ("a.ocsf.json", fail_only.to_vec(), false),
                    ("b.ocsf.json", fail_only.to_vec(), false),
                ],
                Classification::Findings,
                2,
            ),
            (
                Some(0),
                vec![("r.csv", b"not json".to_vec(), false)],
                Classification::Clean,
                0,
            ),
            (
                Some(3),
                vec![("r.ocsf.json", b"[{\"status_code\":".to_vec(), false)],
                Classification::ToolError,
                0,
            ),
            (
                Some(3),
                vec![("r.ocsf.json", fail_only.to_vec(), true)],
                Classification::ToolError,
                0,
            ),
            (
                Some(3),
                vec![("r.ocsf.json", b"{}".to_vec(), false)],
                Classification::ToolError,
                0,
            ),
            (
                Some(1),
                vec![("r.ocsf.json", fail_only.to_vec(), false)],
                Classification::ToolError,
                0,
            ),
            (Some(2), vec![], Classification::ToolError, 0),
            (None, vec![], Classification::ToolError, 0),
        ];
        for (exit, files, classification, findings) in table {
            let names: Vec<&str> = files.iter().map(|f| f.0).collect();
            let result = parse(&outcome(*exit, files.clone()));
            assert_eq!(
                result.classification, *classification,
                "exit {exit:?} files {names:?}"
            );
            assert_eq!(
                result.findings.len(),
                *findings,
                "exit {exit:?} files {names:?}"
            );
        }
        let muted_result = parse(&outcome(
            Some(0),
            vec![("r.ocsf.json", muted.to_vec(), false)],
        ));
        assert_eq!(
            muted_result.message.as_deref(),
            Some("1 muted failed check(s) not reported")
        );
    }

    #[test]
    fn tool_errors_quote_stderr() {
        let result = parse(&Outcome {
            exit_code: Some(2),
            stderr: b"usage: prowler ...\nprowler: error: unrecognized arguments: --bogus\n"
                .to_vec(),
            ..Outcome::default()
        });
        assert_eq!(result.classification, Classification::ToolError);
        assert_eq!(
            result.message.as_deref(),
            Some(
                "prowler exited with code 2: usage: prowler ...\nprowler: error: unrecognized arguments: --bogus"
            )
        );
        let timed_out = parse(&Outcome {
            exit_code: None,
            timed_out: true,
            ..Outcome::default()
        });
        assert_eq!(timed_out.message.as_deref(), Some("prowler timed out"));
    }

    /// A report the size of a real EC2 scan (19 MB) parses natively; the time is printed for
    /// the record (`cargo test -- --nocapture`), never asserted.
    #[test]
    fn large_report_parses() {
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&fixture()).expect("fixture is a JSON array");
        let one_copy = serde_json::to_vec(&records).expect("serialize").len();
        let copies = 19 * 1024 * 1024 / one_copy + 1;
        let mut large = Vec::new();
        for _ in 0..copies {
            large.extend(records.iter().cloned());
        }
        let content = serde_json::to_vec(&large).expect("serialize");
        assert!(content.len() >= 19 * 1024 * 1024, "{} bytes", content.len());
        let started = std::time::Instant::now();
        let result = parse(&outcome(
            Some(3),
            vec![(FIXTURE_NAME, content.clone(), false)],
        ));
        println!(
            "parsed {} bytes ({} records) into {} findings in {:?}",
            content.len(),
            large.len(),
            result.findings.len(),
            started.elapsed()
        );
        assert_eq!(result.classification, Classification::Findings);
        assert_eq!(result.findings.len(), 35 * copies);
    }
}
