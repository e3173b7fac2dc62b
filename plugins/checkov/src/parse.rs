//! checkov `parse`: a finished run -> classification, findings and a short message.
//!
//! checkov prints its `-o json` report on stdout (logs and progress go to stderr) in one of three
//! shapes: one report object when one framework produced results, a LIST of report objects when
//! several did (e.g. terraform and secrets), and a bare summary object (`{"passed":0,"failed":0,
//! ...}`) when nothing was scanned. A report is `{"check_type", "results": {"failed_checks",
//! "passed_checks", "skipped_checks", "parsing_errors"}, "summary"}`; only `failed_checks` become
//! findings.
//!
//! Invariants: never panics; only exit 0 (all passed, or `--soft-fail`) and 1 (a check failed)
//! are read as a completed scan, and even then findings come from the report, never from the exit
//! code; exit 2 (a crash or a usage error), any other code or a signal is a tool error quoting the
//! end of stderr; stdout that is empty, not JSON, cut at the host's limit or not a checkov
//! report is a tool error, never "clean"; a timeout is a tool error unless a complete report was
//! printed. Files checkov could not parse are named in the message, and with no failed check
//! they make the result a tool error (those files were not checked).

use serde::Deserialize;
use toolgate_plugin_sdk::finding::{http_url, line_number, relative_file};
use toolgate_plugin_sdk::output::tool_error;
use toolgate_plugin_sdk::{
    Classification, Finding, Outcome, ParseResult, Quote, Severity, output_tail,
};

/// How much of an unparsable file's name a message quotes.
const PARSING_ERROR_EXCERPT_BYTES: usize = 200;

/// checkov's exit codes for a completed scan: 0 all passed (or `--soft-fail`), 1 a check failed.
const EXIT_PASSED: i32 = 0;
const EXIT_FAILED_CHECKS: i32 = 1;

/// Severities for well-known checks, used only when checkov reports none (always without a
/// Prisma Cloud API key, which toolgate never passes). checkov's own metadata is not available
/// offline, so this small table ranks the checks whose failure is an exposure by itself (a port
/// or a bucket open to the world, an admin policy, a hard-coded credential, a privileged
/// container) high, and hygiene checks (descriptions, logging, versioning, replication,
/// monitoring) low. Every other check is medium: the neutral middle neither hides an unknown
/// check as info nor inflates it. Names verified with `checkov -l` (3.2.445).
const KNOWN_SEVERITIES: &[(&str, Severity)] = &[
    // Ensure no security groups allow ingress from 0.0.0.0:0 to port 22
    ("CKV_AWS_24", Severity::High),
    // ... to port 3389
    ("CKV_AWS_25", Severity::High),
    // Ensure the S3 bucket does not allow READ permissions to everyone
    ("CKV_AWS_20", Severity::High),
    // Ensure the S3 bucket does not allow WRITE permissions to everyone
    ("CKV_AWS_57", Severity::High),
    // Ensure all data stored in RDS is not publicly accessible
    ("CKV_AWS_17", Severity::High),
    // Ensure no hard coded AWS access key and secret key exists in provider
    ("CKV_AWS_41", Severity::High),
    // Ensure no hard-coded secrets exist in EC2 user data
    ("CKV_AWS_46", Severity::High),
    // Ensure IAM policies that allow full "*-*" administrative privileges are not created
    ("CKV_AWS_1", Severity::High),
    ("CKV_AWS_62", Severity::High),
    // Container should not be privileged
    ("CKV_K8S_16", Severity::High),
    // Ensure every security groups rule has a description
    ("CKV_AWS_23", Severity::Low),
    // Ensure the S3 bucket has access logging enabled
    ("CKV_AWS_18", Severity::Low),
    // Ensure the S3 bucket has versioning enabled
    ("CKV_AWS_21", Severity::Low),
    // Ensure that S3 bucket has cross-region replication enabled
    ("CKV_AWS_144", Severity::Low),
    // Ensure S3 buckets should have event notifications enabled
    ("CKV2_AWS_62", Severity::Low),
    // Ensure that respective logs of Amazon RDS are enabled
    ("CKV_AWS_129", Severity::Low),
    // Ensure that enhanced monitoring is enabled for Amazon RDS instances
    ("CKV_AWS_118", Severity::Low),
    // Ensure DB instance gets all minor upgrades automatically
    ("CKV_AWS_226", Severity::Low),
];
/// Every secrets check (`CKV_SECRET_*`) found a credential committed in the scanned files.
const SECRET_CHECK_PREFIX: &str = "CKV_SECRET_";

/// One report, or the bare summary checkov prints when nothing was scanned. Every field is
/// optional so that which shape this is can be told from what is present.
#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    check_type: Option<String>,
    #[serde(default)]
    results: Option<Results>,
    // The bare summary's keys (a report carries them under `summary` instead).
    #[serde(default)]
    passed: Option<u64>,
    #[serde(default)]
    failed: Option<u64>,
    #[serde(default)]
    resource_count: Option<u64>,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    failed_checks: Option<Vec<Record>>,
    /// Paths of files checkov could not parse.
    #[serde(default)]
    parsing_errors: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    check_id: Option<String>,
    #[serde(default)]
    check_name: Option<String>,
    #[serde(default)]
    file_path: Option<String>,
    #[serde(default)]
    file_line_range: Option<Vec<i64>>,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    guideline: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    short_description: Option<String>,
    #[serde(default)]
    bc_category: Option<String>,
}

pub fn parse(outcome: &Outcome) -> ParseResult {
    let reports = read_stdout(outcome);
    if outcome.timed_out {
        return match reports {
            Ok(reports) => classify(reports, None)
                .with_note("checkov timed out after printing a complete report"),
            Err(_) => tool_error_from_stderr(
                outcome,
                "checkov timed out before printing a complete report",
            ),
        };
    }
    let exit_code = match outcome.exit_code {
        Some(code @ (EXIT_PASSED | EXIT_FAILED_CHECKS)) => code,
        Some(code) => {
            return tool_error_from_stderr(outcome, &format!("checkov exited with code {code}"));
        }
        None => return tool_error_from_stderr(outcome, "checkov was killed by a signal"),
    };
    match reports {
        Ok(reports) => classify(reports, Some(exit_code)),
        Err(error) => tool_error_from_stderr(outcome, &error),
    }
}

/// The reports on stdout, whichever of the three shapes; `Err` says why there is none.
fn read_stdout(outcome: &Outcome) -> Result<Vec<Report>, String> {
    let text = String::from_utf8_lossy(&outcome.stdout);
    let json = text.trim_start();
    let parsed = match json.as_bytes().first() {
        None => return Err("checkov printed no report".to_string()),
        Some(b'[') => serde_json::from_str::<Vec<Report>>(json),
        Some(b'{') => serde_json::from_str::<Report>(json).map(|report| vec![report]),
        Some(_) => {
            return Err(format!(
                "checkov's stdout is not a JSON report (it starts with {:?})",
                json.chars().take(40).collect::<String>()
            ));
        }
    };
    match parsed {
        Ok(reports) if reports.is_empty() => Err("checkov printed an empty list".to_string()),
        Ok(reports) => match reports.iter().all(is_recognised) {
            true => Ok(reports),
            false => Err("checkov's JSON is not a checkov report".to_string()),
        },
        Err(error) if outcome.output_truncated => Err(format!(
            "checkov's report was cut at the host's output limit and cannot be read ({error})"
        )),
        Err(error) => Err(format!("checkov's report is not valid JSON ({error})")),
    }
}

/// A report with results, or the bare summary (both counters present).
fn is_recognised(report: &Report) -> bool {
    report.results.is_some() || (report.passed.is_some() && report.failed.is_some())
}

/// Findings from every report; `exit_code` is `None` after a timeout.
fn classify(reports: Vec<Report>, exit_code: Option<i32>) -> ParseResult {
    let mut findings = Vec::new();
    let mut unparsable_files: Vec<String> = Vec::new();
    let mut nothing_scanned = true;
    for report in reports {
        let check_type = report.check_type.unwrap_or_default();
        if report.resource_count.unwrap_or(0) > 0 {
            nothing_scanned = false;
        }
        let Some(results) = report.results else {
            continue;
        };
        nothing_scanned = false;
        unparsable_files.extend(results.parsing_errors.unwrap_or_default());
        findings.extend(
            results
                .failed_checks
                .unwrap_or_default()
                .into_iter()
                .map(|record| record_to_finding(record, &check_type)),
        );
    }
    let parsing_note = unparsable_files.first().map(|first| {
        format!(
            "checkov could not parse {} file(s), first: {}",
            unparsable_files.len(),
            output_tail(first.as_bytes(), PARSING_ERROR_EXCERPT_BYTES).unwrap_or_default()
        )
    });
    if !findings.is_empty() {
        return ParseResult {
            classification: Classification::Findings,
            findings,
            message: parsing_note,
        };
    }
    if let Some(note) = parsing_note {
        return ParseResult::tool_error(format!("{note}; no check failed in the other files"));
    }
    if exit_code == Some(EXIT_FAILED_CHECKS) {
        return ParseResult::tool_error(
            "checkov exited with code 1 (a check failed) but its report lists no failed check",
        );
    }
    ParseResult {
        classification: Classification::Clean,
        findings,
        message: nothing_scanned.then(|| {
            "checkov found nothing to scan (no files of the selected frameworks)".to_string()
        }),
    }
}

fn record_to_finding(record: Record, check_type: &str) -> Finding {
    let rule_id = record.check_id.unwrap_or_default();
    let title = record.check_name.unwrap_or_default();
    let (resource_type, resource_name) = split_resource(&record.resource.unwrap_or_default());
    let description = [record.description, record.short_description]
        .into_iter()
        .flatten()
        .find(|text| !text.trim().is_empty())
        .unwrap_or_else(|| title.clone());
    Finding {
        severity: severity_for(&rule_id, record.severity.as_deref()),
        resource_type: if resource_type.is_empty() {
            check_type.to_string()
        } else {
            resource_type
        },
        resource_name,
        file: record.file_path.as_deref().and_then(relative_file),
        line: record
            .file_line_range
            .and_then(|range| range.first().copied())
            .and_then(line_number),
        category: record
            .bc_category
            .filter(|category| !category.is_empty())
            .unwrap_or_else(|| check_type.to_string()),
        // checkov's guideline is null offline; a URL is kept only when checkov gave one.
        documentation_url: record.guideline.as_deref().and_then(http_url),
        rule_id,
        title,
        description,
    }
}

/// checkov's own severity when it reports one, else `KNOWN_SEVERITIES`, else medium.
fn severity_for(check_id: &str, reported: Option<&str>) -> Severity {
    if let Some(severity) = reported.and_then(Severity::from_word) {
        return severity;
    }
    if check_id.starts_with(SECRET_CHECK_PREFIX) {
        return Severity::High;
    }
    KNOWN_SEVERITIES
        .iter()
        .find(|(id, _)| *id == check_id)
        .map(|(_, severity)| *severity)
        .unwrap_or(Severity::Medium)
}

/// `aws_security_group.web` -> (`aws_security_group`, `web`). A Terraform module address keeps
/// its module path in the name: `module.net.aws_vpc.main` -> (`aws_vpc`, `module.net.main`).
/// A resource without a dot (a secret's hash) has no type: (``, resource).
fn split_resource(resource: &str) -> (String, String) {
    let mut local = resource;
    while let Some(after) = local.strip_prefix("module.") {
        match after.split_once('.') {
            Some((module_name, rest)) if !module_name.is_empty() => local = rest,
            _ => break,
        }
    }
    // `local` is a suffix of `resource`, so this never fails; "" is only a fallback.
    let module_path = resource.strip_suffix(local).unwrap_or("");
    match local.split_once('.') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {
            (kind.to_string(), format!("{module_path}{name}"))
        }
        _ => (String::new(), resource.to_string()),
    }
}

fn tool_error_from_stderr(outcome: &Outcome, summary: &str) -> ParseResult {
    tool_error(outcome, summary, Quote::Stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/checkov/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    fn outcome(exit_code: Option<i32>, stdout: Vec<u8>) -> Outcome {
        Outcome {
            exit_code,
            stdout,
            ..Outcome::default()
        }
    }

    fn count(result: &ParseResult, severity: Severity) -> usize {
        result
            .findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// (fixture, checkov's exit code for it, classification, findings, high, medium, low)
    #[test]
    fn every_fixture() {
        type Row = (
            &'static str,
            i32,
            Classification,
            usize,
            usize,
            usize,
            usize,
        );
        let table: &[Row] = &[
            (
                "public_bucket_open_ssh_quiet.json",
                1,
                Classification::Findings,
                11,
                2,
                4,
                5,
            ),
            // 70 terraform + 1 secrets; high: CKV_SECRET_6 and CKV_AWS_17 once.
            (
                "aws_db_instance_full.json",
                1,
                Classification::Findings,
                71,
                2,
                46,
                23,
            ),
            ("nothing_scanned.json", 0, Classification::Clean, 0, 0, 0, 0),
        ];
        for (name, exit, classification, total, high, medium, low) in table {
            let result = parse(&outcome(Some(*exit), fixture(name)));
            assert_eq!(result.classification, *classification, "{name}");
            assert_eq!(result.findings.len(), *total, "{name}");
            assert_eq!(count(&result, Severity::High), *high, "{name}");
            assert_eq!(count(&result, Severity::Medium), *medium, "{name}");
            assert_eq!(count(&result, Severity::Low), *low, "{name}");
            assert_eq!(count(&result, Severity::Critical), 0, "{name}");
            assert_eq!(count(&result, Severity::Info), 0, "{name}");
        }
    }

    #[test]
    fn open_ssh_finding_fields() {
        let result = parse(&outcome(
            Some(1),
            fixture("public_bucket_open_ssh_quiet.json"),
        ));
        assert_eq!(result.message, None);
        let expected = Finding {
            rule_id: "CKV_AWS_24".to_string(),
            title: "Ensure no security groups allow ingress from 0.0.0.0:0 to port 22".to_string(),
            severity: Severity::High,
            description: "Ensure no security groups allow ingress from 0.0.0.0:0 to port 22"
                .to_string(),
            resource_type: "aws_security_group".to_string(),
            resource_name: "web".to_string(),
            file: Some("main.tf".to_string()),
            line: Some(5),
            category: "terraform".to_string(),
            documentation_url: None,
        };
        assert_eq!(result.findings.first(), Some(&expected));
        let mut ids: Vec<&str> = result.findings.iter().map(|f| f.rule_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [
                "CKV2_AWS_5",
                "CKV2_AWS_6",
                "CKV2_AWS_61",
                "CKV2_AWS_62",
                "CKV_AWS_144",
                "CKV_AWS_145",
                "CKV_AWS_18",
                "CKV_AWS_20",
                "CKV_AWS_21",
                "CKV_AWS_23",
                "CKV_AWS_24"
            ]
        );
        let bucket = result
            .findings
            .iter()
            .find(|f| f.rule_id == "CKV_AWS_20")
            .map(|f| (f.resource_type.as_str(), f.resource_name.as_str(), f.line));
        assert_eq!(bucket, Some(("aws_s3_bucket", "data", Some(1))));
    }

    /// The list shape: every report is read, each finding keeps its framework.
    #[test]
    fn list_of_reports() {
        let result = parse(&outcome(Some(1), fixture("aws_db_instance_full.json")));
        let per_framework = |framework: &str| {
            result
                .findings
                .iter()
                .filter(|f| f.category == framework)
                .count()
        };
        assert_eq!(per_framework("terraform"), 70);
        assert_eq!(per_framework("secrets"), 1);
        let secret = result
            .findings
            .iter()
            .find(|f| f.rule_id == "CKV_SECRET_6")
            .cloned();
        assert_eq!(
            secret.map(|f| (f.severity, f.resource_type, f.file, f.line)),
            Some((
                Severity::High,
                "secrets".to_string(),
                Some("main.tf".to_string()),
                Some(21)
            ))
        );
        let first_rds = result
            .findings
            .iter()
            .find(|f| f.rule_id == "CKV_AWS_16")
            .map(|f| (f.resource_type.as_str(), f.resource_name.as_str(), f.line));
        assert_eq!(first_rds, Some(("aws_db_instance", "PtShGgAdi1", Some(10))));
    }

    #[test]
    fn bare_summary_is_clean_with_a_note() {
        let result = parse(&outcome(Some(0), fixture("nothing_scanned.json")));
        assert_eq!(result.classification, Classification::Clean);
        assert_eq!(
            result.message.as_deref(),
            Some("checkov found nothing to scan (no files of the selected frameworks)")
        );
        let passed =
            br#"{"check_type":"terraform","results":{"passed_checks":[{"check_id":"CKV_AWS_1"}],
            "failed_checks":[],"skipped_checks":[],"parsing_errors":[]},
            "summary":{"passed":1,"failed":0,"skipped":0,"parsing_errors":0,"resource_count":1}}"#;
        let result = parse(&outcome(Some(0), passed.to_vec()));
        assert_eq!(result.classification, Classification::Clean);
        assert_eq!(result.message, None);
    }

    #[test]
    fn severities_and_resources() {
        let table: &[(&str, Option<&str>, Severity)] = &[
            ("CKV_AWS_24", None, Severity::High),
            ("CKV_AWS_24", Some("LOW"), Severity::Low),
            ("CKV_AWS_999", Some("critical"), Severity::Critical),
            ("CKV_AWS_999", Some("INFO"), Severity::Info),
            ("CKV_AWS_999", Some("bogus"), Severity::Medium),
            ("CKV_AWS_999", None, Severity::Medium),
            ("CKV_SECRET_2", None, Severity::High),
            ("CKV_AWS_23", None, Severity::Low),
        ];
        for (id, reported, expected) in table {
            assert_eq!(severity_for(id, *reported), *expected, "{id} {reported:?}");
        }
        let resources: &[(&str, (&str, &str))] = &[
            ("aws_security_group.web", ("aws_security_group", "web")),
            ("module.net.aws_vpc.main", ("aws_vpc", "module.net.main")),
            (
                "module.a.module.b.aws_s3_bucket.x",
                ("aws_s3_bucket", "module.a.module.b.x"),
            ),
            ("Deployment.default.nginx", ("Deployment", "default.nginx")),
            ("1af17e73721dbe0c", ("", "1af17e73721dbe0c")),
            ("module.m", ("module", "m")),
            ("module.m.x", ("", "module.m.x")),
            ("module..x", ("module", ".x")),
            (".x", ("", ".x")),
            ("x.", ("", "x.")),
            ("", ("", "")),
            ("é.ü", ("é", "ü")),
        ];
        for (resource, (kind, name)) in resources {
            assert_eq!(
                split_resource(resource),
                (kind.to_string(), name.to_string()),
                "{resource:?}"
            );
        }
    }

    #[test]
    fn parsing_errors_are_reported() {
        let with_findings = br#"{"check_type":"terraform","results":{"failed_checks":[
            {"check_id":"CKV_AWS_24","check_name":"n","file_path":"/a.tf","file_line_range":[0,0],
             "resource":"aws_security_group.x","guideline":"https://docs.example/ckv24"}],
            "parsing_errors":["/broken.tf"]}}"#;
        let result = parse(&outcome(Some(1), with_findings.to_vec()));
        assert_eq!(result.classification, Classification::Findings);
        assert_eq!(
            result.message.as_deref(),
            Some("checkov could not parse 1 file(s), first: /broken.tf")
        );
        assert_eq!(result.findings[0].line, None);
        assert_eq!(
            result.findings[0].documentation_url.as_deref(),
            Some("https://docs.example/ckv24")
        );
        let only_errors = br#"[{"check_type":"terraform","results":{"failed_checks":[],
            "parsing_errors":["/broken.tf","/b2.tf"]}},
            {"check_type":"secrets","results":{"failed_checks":[]}}]"#;
        let result = parse(&outcome(Some(0), only_errors.to_vec()));
        assert_eq!(result.classification, Classification::ToolError);
        assert_eq!(
            result.message.as_deref(),
            Some(
                "checkov could not parse 2 file(s), first: /broken.tf; no check failed in the \
                 other files"
            )
        );
    }

    /// (exit code, stdout, stdout truncated, classification)
    type ExitCase = (Option<i32>, &'static [u8], bool, Classification);

    #[test]
    fn exit_codes_and_broken_output() {
        let one_failed =
            br#"{"check_type":"terraform","results":{"failed_checks":[{"check_id":"CKV_AWS_1"}]}}"#;
        let clean = br#"{"check_type":"terraform","results":{"failed_checks":[]}}"#;
        let table: &[ExitCase] = &[
            (Some(1), one_failed, false, Classification::Findings),
            // --soft-fail: exit 0 with failed checks still gives findings.
            (Some(0), one_failed, false, Classification::Findings),
            (Some(0), clean, false, Classification::Clean),
            (Some(1), clean, false, Classification::ToolError),
            (Some(2), one_failed, false, Classification::ToolError),
            (Some(2), b"", false, Classification::ToolError),
            (Some(127), b"", false, Classification::ToolError),
            (None, one_failed, false, Classification::ToolError),
            (Some(0), b"", false, Classification::ToolError),
            (Some(0), b"   \n", false, Classification::ToolError),
            (
                Some(1),
                b"Traceback (most recent call last):",
                false,
                Classification::ToolError,
            ),
            (
                Some(1),
                b"{\"check_type\":\"terraform\",\"results\":{\"failed_checks\":[{",
                true,
                Classification::ToolError,
            ),
            (
                Some(1),
                b"[{\"check_type\":\"terraform\"",
                false,
                Classification::ToolError,
            ),
            (Some(0), b"{not json", false, Classification::ToolError),
            (Some(0), b"{}", false, Classification::ToolError),
            (Some(0), b"[]", false, Classification::ToolError),
            (Some(0), b"[1,2]", false, Classification::ToolError),
            (Some(0), b"{\"passed\":0}", false, Classification::ToolError),
            (Some(0), b"null", false, Classification::ToolError),
            (
                Some(1),
                br#"{"results":{"failed_checks":[{"check_id":5}]}}"#,
                false,
                Classification::ToolError,
            ),
            (
                Some(1),
                br#"{"results":{"failed_checks":[{"file_line_range":["x"]}]}}"#,
                false,
                Classification::ToolError,
            ),
            (
                Some(1),
                br#"{"results":{"failed_checks":[{"file_line_range":[-3, 99999999999]}]}}"#,
                false,
                Classification::Findings,
            ),
            (
                Some(1),
                br#"{"results":{"failed_checks":[{}]}}"#,
                false,
                Classification::Findings,
            ),
            (
                Some(1),
                b"\xff\xfe{garbage",
                false,
                Classification::ToolError,
            ),
        ];
        for (exit, stdout, truncated, classification) in table {
            let result = parse(&Outcome {
                exit_code: *exit,
                stdout: stdout.to_vec(),
                output_truncated: *truncated,
                ..Outcome::default()
            });
            assert_eq!(
                result.classification,
                *classification,
                "exit {exit:?} stdout {:?}",
                String::from_utf8_lossy(stdout)
            );
            if *classification == Classification::ToolError {
                assert!(
                    result.message.is_some(),
                    "{:?}",
                    String::from_utf8_lossy(stdout)
                );
            }
        }
        let crashed = parse(&Outcome {
            exit_code: Some(2),
            stderr: b"Traceback (most recent call last):\n  ...\nValueError: boom\n".to_vec(),
            ..Outcome::default()
        });
        assert_eq!(
            crashed.message.as_deref(),
            Some(
                "checkov exited with code 2: Traceback (most recent call last):\n  ...\nValueError: boom"
            )
        );
        let cut = parse(&Outcome {
            exit_code: Some(1),
            stdout: fixture("aws_db_instance_full.json")[..4096].to_vec(),
            output_truncated: true,
            ..Outcome::default()
        });
        assert_eq!(cut.classification, Classification::ToolError);
        assert!(
            cut.message
                .unwrap_or_default()
                .starts_with("checkov's report was cut at the host's output limit"),
        );
    }

    #[test]
    fn hostile_output_never_panics() {
        let report = fixture("public_bucket_open_ssh_quiet.json");
        let huge_string = format!(
            r#"{{"results":{{"failed_checks":[{{"check_id":"{}","resource":"{}"}}]}}}}"#,
            "A".repeat(100_000),
            ".".repeat(100_000)
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let mut inputs: Vec<Vec<u8>> = vec![huge_string.into_bytes(), deep.into_bytes()];
        for cut in [1, 2, 100, 1000, report.len() / 2, report.len() - 1] {
            inputs.push(report[..cut].to_vec());
        }
        for stdout in inputs {
            for exit in [Some(0), Some(1), Some(2), None] {
                let _ = parse(&Outcome {
                    exit_code: exit,
                    stdout: stdout.clone(),
                    stderr: vec![0xff, b'\n', 0x1b, b'['],
                    ..Outcome::default()
                });
            }
        }
    }

    #[test]
    fn timeouts() {
        let complete = parse(&Outcome {
            exit_code: None,
            timed_out: true,
            stdout: fixture("public_bucket_open_ssh_quiet.json"),
            ..Outcome::default()
        });
        assert_eq!(complete.classification, Classification::Findings);
        assert_eq!(complete.findings.len(), 11);
        assert_eq!(
            complete.message.as_deref(),
            Some("checkov timed out after printing a complete report")
        );
        let partial = parse(&Outcome {
            exit_code: None,
            timed_out: true,
            stdout: b"{\"check_type\":".to_vec(),
            ..Outcome::default()
        });
        assert_eq!(partial.classification, Classification::ToolError);
    }
}
