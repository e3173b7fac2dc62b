//! terrascan `parse`: a finished run -> classification, findings and a short message.
//!
//! Reads stdout (terrascan prints its report there and logs on stderr):
//! - JSON `{"results": {...}}`: `violations` (may be null) become findings; `skipped_violations`
//!   and `passed_rules` do not. `scan_errors` are classified here, because terrascan turns
//!   harmless "no files of type X in this directory" messages into exit codes 4/5.
//! - SARIF (`-o sarif`): `runs[].results[]` become findings.
//! - Anything else (yaml, xml, junit-xml, human, `--config-only` JSON): classified from the exit
//!   code alone, without findings.
//!
//! Invariants: never panics; stdout that starts like JSON but does not parse is a tool error
//! (truncated or corrupt), never "clean"; exit 1, a signal or an unknown exit code is a tool
//! error; a timeout is a tool error unless a complete report was produced.

use serde::Deserialize;
use toolgate_plugin_sdk::finding::line_number;
use toolgate_plugin_sdk::output::tool_error;
use toolgate_plugin_sdk::sarif;
use toolgate_plugin_sdk::{
    Classification, Finding, Outcome, ParseResult, Quote, Severity, output_tail,
};
/// How much of a scan error message is quoted.
const SCAN_ERROR_EXCERPT_BYTES: usize = 300;

/// Exit codes documented by terrascan.
const EXIT_CLEAN: i32 = 0;
const EXIT_VIOLATIONS: i32 = 3;
const EXIT_SCAN_ERRORS: i32 = 4;
const EXIT_VIOLATIONS_AND_SCAN_ERRORS: i32 = 5;

/// Either report shape; which one is told by the keys present.
#[derive(Deserialize)]
struct Report {
    results: Option<Results>,
    runs: Option<Vec<sarif::Run>>,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    scan_errors: Option<Vec<ScanError>>,
    #[serde(default)]
    violations: Option<Vec<Violation>>,
}

#[derive(Deserialize)]
struct ScanError {
    #[serde(default, rename = "errMsg")]
    err_msg: String,
}

#[derive(Deserialize)]
struct Violation {
    #[serde(default)]
    rule_name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    rule_id: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    resource_name: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    line: Option<i64>,
}

/// What stdout turned out to be.
enum Stdout {
    Json(Results),
    Sarif(Vec<sarif::Run>),
    /// JSON without a report (e.g. `--config-only`) or a non-JSON format.
    Opaque,
    /// Looked like JSON but did not parse.
    Broken(String),
}

pub fn parse(outcome: &Outcome) -> ParseResult {
    let stdout = read_stdout(outcome);
    if outcome.timed_out {
        return match stdout {
            Stdout::Json(results) => classify_results(results)
                .with_note("terrascan timed out after printing a complete report"),
            Stdout::Sarif(runs) => classify_sarif(runs, EXIT_CLEAN)
                .with_note("terrascan timed out after printing a complete report"),
            Stdout::Opaque | Stdout::Broken(_) => {
                ParseResult::tool_error("terrascan timed out before printing a complete report")
            }
        };
    }
    let exit_code = match outcome.exit_code {
        Some(
            code @ (EXIT_CLEAN
            | EXIT_VIOLATIONS
            | EXIT_SCAN_ERRORS
            | EXIT_VIOLATIONS_AND_SCAN_ERRORS),
        ) => code,
        Some(code) => {
            return tool_error_from_stderr(outcome, &format!("terrascan exited with code {code}"));
        }
        None => return tool_error_from_stderr(outcome, "terrascan was killed by a signal"),
    };
    match stdout {
        Stdout::Json(results) => classify_results(results),
        Stdout::Sarif(runs) => classify_sarif(runs, exit_code),
        Stdout::Opaque => classify_exit_code(exit_code),
        Stdout::Broken(error) => tool_error_from_stderr(outcome, &error),
    }
}

fn read_stdout(outcome: &Outcome) -> Stdout {
    let text = String::from_utf8_lossy(&outcome.stdout);
    if !text.trim_start().starts_with('{') {
        return Stdout::Opaque;
    }
    match serde_json::from_str::<Report>(&text) {
        Ok(Report {
            results: Some(results),
            ..
        }) => Stdout::Json(results),
        Ok(Report {
            runs: Some(runs), ..
        }) => Stdout::Sarif(runs),
        Ok(_) => Stdout::Opaque,
        Err(error) if outcome.output_truncated => Stdout::Broken(format!(
            "terrascan's report was cut at the host's output limit and cannot be read ({error})"
        )),
        Err(error) => Stdout::Broken(format!("terrascan's report is not valid JSON ({error})")),
    }
}

fn classify_results(results: Results) -> ParseResult {
    let findings: Vec<Finding> = results
        .violations
        .unwrap_or_default()
        .into_iter()
        .map(violation_to_finding)
        .collect();
    let harmful: Vec<String> = results
        .scan_errors
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.err_msg)
        .filter(|message| !is_harmless_scan_error(message))
        .collect();
    let scan_error_note = harmful.first().map(|first| {
        format!(
            "{} scan error(s), first: {}",
            harmful.len(),
            output_tail(first.as_bytes(), SCAN_ERROR_EXCERPT_BYTES).unwrap_or_default()
        )
    });
    let classification = if !findings.is_empty() {
        Classification::Findings
    } else if scan_error_note.is_some() {
        Classification::ToolError
    } else {
        Classification::Clean
    };
    ParseResult {
        classification,
        findings,
        message: scan_error_note,
    }
}

/// terrascan reports "there is nothing of this IaC type here" as a scan error for every IaC
/// type it tried; those say nothing about the scan's success.
fn is_harmless_scan_error(message: &str) -> bool {
    message.contains(" not found in the directory ")
        || message.starts_with("no helm charts found in directory ")
        || (message.starts_with("directory '")
            && message.ends_with("' has no terraform config files"))
}

fn violation_to_finding(v: Violation) -> Finding {
    Finding {
        rule_id: v.rule_id,
        title: v.rule_name,
        severity: severity_from(&v.severity),
        description: v.description,
        resource_type: v.resource_type,
        resource_name: v.resource_name,
        file: v.file.filter(|f| !f.is_empty()),
        line: v.line.and_then(line_number),
        category: v.category,
        // terrascan rule ids do not map to a stable per-rule documentation page.
        documentation_url: None,
    }
}

/// terrascan's severities are HIGH, MEDIUM and LOW; anything else is info, never a guessed rank.
fn severity_from(text: &str) -> Severity {
    Severity::from_word(text).unwrap_or(Severity::Info)
}

fn classify_sarif(runs: Vec<sarif::Run>, exit_code: i32) -> ParseResult {
    let findings = sarif::Log { runs }.findings();
    if findings.is_empty() {
        return classify_exit_code(exit_code);
    }
    ParseResult::from_findings(findings)
}

/// For reports the plugin cannot read (yaml, xml, junit-xml, human): the exit code is all there is.
fn classify_exit_code(exit_code: i32) -> ParseResult {
    let (classification, message) = match exit_code {
        EXIT_VIOLATIONS => (
            Classification::Findings,
            Some(
                "terrascan found violations (exit 3); use output_format json or sarif to get them as findings",
            ),
        ),
        EXIT_SCAN_ERRORS => (
            Classification::Clean,
            Some(
                "terrascan found no violations but reported scan errors (exit 4); use output_format json to inspect them",
            ),
        ),
        EXIT_VIOLATIONS_AND_SCAN_ERRORS => (
            Classification::Findings,
            Some(
                "terrascan found violations and reported scan errors (exit 5); use output_format json to inspect them",
            ),
        ),
        _ => (Classification::Clean, None),
    };
    ParseResult {
        classification,
        findings: Vec::new(),
        message: message.map(String::from),
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
            "{}/../../tests/fixtures/terrascan/{name}",
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

    /// (fixture, exit code terrascan gives for it, classification, findings, high, medium, low)
    #[test]
    fn every_fixture() {
        let table: &[(&str, i32, Classification, usize, usize, usize, usize)] = &[
            (
                "aws_ami_violation_json.json",
                3,
                Classification::Findings,
                1,
                0,
                1,
                0,
            ),
            (
                "aws_ami_violation_json_all.json",
                5,
                Classification::Findings,
                1,
                0,
                1,
                0,
            ),
            (
                "aws_ami_violation_sarif.json",
                3,
                Classification::Findings,
                1,
                0,
                1,
                0,
            ),
            (
                "aws_db_instance_json.json",
                3,
                Classification::Findings,
                14,
                14,
                0,
                0,
            ),
            (
                "aws_db_instance_json_show_passed.json",
                3,
                Classification::Findings,
                14,
                14,
                0,
                0,
            ),
        ];
        for (name, exit, classification, total, high, medium, low) in table {
            let result = parse(&outcome(Some(*exit), fixture(name)));
            assert_eq!(result.classification, *classification, "{name}");
            assert_eq!(result.findings.len(), *total, "{name}");
            assert_eq!(count(&result, Severity::High), *high, "{name}");
            assert_eq!(count(&result, Severity::Medium), *medium, "{name}");
            assert_eq!(count(&result, Severity::Low), *low, "{name}");
        }
    }

    #[test]
    fn ami_finding_fields() {
        let expected = Finding {
            rule_id: "AC_AWS_0001".to_string(),
            title: "amiNotEncrypted".to_string(),
            severity: Severity::Medium,
            description: "Enable AWS AMI Encryption".to_string(),
            resource_type: "aws_ami".to_string(),
            resource_name: "awsAmiEncrypted".to_string(),
            file: Some("main.tf".to_string()),
            line: Some(5),
            category: "Encryption & KeyManagement".to_string(),
            documentation_url: None,
        };
        let json = parse(&outcome(Some(3), fixture("aws_ami_violation_json.json")));
        assert_eq!(json.findings, vec![expected.clone()]);
        assert_eq!(json.message, None);
        // The _all fixture's six scan errors are all "no files of this type": harmless.
        let all = parse(&outcome(
            Some(5),
            fixture("aws_ami_violation_json_all.json"),
        ));
        assert_eq!(all.findings, vec![expected.clone()]);
        assert_eq!(all.message, None);
        let sarif = parse(&outcome(Some(3), fixture("aws_ami_violation_sarif.json")));
        let sarif_expected = Finding {
            file: Some(
                "/Users/suvarna/go/src/github.com/rchanger/terrascan/test/e2e/test_data/iac/aws/aws_ami_violation/main.tf"
                    .to_string(),
            ),
            ..expected
        };
        assert_eq!(sarif.findings, vec![sarif_expected]);
    }

    #[test]
    fn scan_errors_are_classified() {
        let harmless = br#"{"results":{"scan_errors":[
            {"iac_type":"k8s","directory":"/w","errMsg":"kubernetes files not found in the directory /w"},
            {"iac_type":"helm","directory":"/w","errMsg":"no helm charts found in directory /w"},
            {"iac_type":"terraform","directory":"/w","errMsg":"directory '/w' has no terraform config files"}],
            "violations":null,"skipped_violations":null}}"#;
        let result = parse(&outcome(Some(4), harmless.to_vec()));
        assert_eq!(result.classification, Classification::Clean);
        assert!(result.findings.is_empty());

        let harmful = br#"{"results":{"scan_errors":[
            {"iac_type":"terraform","directory":"/w","errMsg":"failed to load iac file: syntax error"}],
            "violations":null}}"#;
        let result = parse(&outcome(Some(4), harmful.to_vec()));
        assert_eq!(result.classification, Classification::ToolError);
        assert_eq!(
            result.message.as_deref(),
            Some("1 scan error(s), first: failed to load iac file: syntax error")
        );

        let both = br#"{"results":{"scan_errors":[{"errMsg":"failed to load x"}],
            "violations":[{"rule_id":"R","rule_name":"n","severity":"LOW","line":0}]}}"#;
        let result = parse(&outcome(Some(5), both.to_vec()));
        assert_eq!(result.classification, Classification::Findings);
        assert_eq!(result.findings[0].line, None);
        assert_eq!(result.findings[0].file, None);
        assert_eq!(result.findings[0].severity, Severity::Low);
        assert!(
            result
                .message
                .unwrap_or_default()
                .contains("failed to load x")
        );
    }

    /// (exit code, stdout, stdout truncated, stderr, expected classification)
    type ExitCase = (
        Option<i32>,
        &'static [u8],
        bool,
        &'static [u8],
        Classification,
    );

    #[test]
    fn exit_codes_and_broken_output() {
        let clean =
            br#"{"results":{"violations":null,"skipped_violations":null,"scan_summary":{}}}"#;
        let table: &[ExitCase] = &[
            (Some(0), clean, false, b"", Classification::Clean),
            (
                Some(1),
                b"",
                false,
                b"Error: invalid policy type",
                Classification::ToolError,
            ),
            (Some(1), clean, false, b"", Classification::ToolError),
            (Some(2), clean, false, b"", Classification::ToolError),
            (None, b"", false, b"", Classification::ToolError),
            (
                Some(3),
                b"{\"results\":{\"violations\":[",
                true,
                b"",
                Classification::ToolError,
            ),
            (Some(0), b"{not json", false, b"", Classification::ToolError),
            (
                Some(0),
                b"results:\n  violations: []\n",
                false,
                b"",
                Classification::Clean,
            ),
            (Some(3), b"<xml/>", false, b"", Classification::Findings),
            (Some(4), b"human text", false, b"", Classification::Clean),
            (Some(5), b"human text", false, b"", Classification::Findings),
            (
                Some(0),
                b"{\"Terraform\":{}}",
                false,
                b"",
                Classification::Clean,
            ),
            (Some(0), b"", false, b"", Classification::Clean),
            (
                Some(0),
                br#"{"results":{"violations":[{"severity":5}]}}"#,
                false,
                b"",
                Classification::ToolError,
            ),
        ];
        for (exit, stdout, truncated, stderr, classification) in table {
            let result = parse(&Outcome {
                exit_code: *exit,
                stdout: stdout.to_vec(),
                stderr: stderr.to_vec(),
                output_truncated: *truncated,
                ..Outcome::default()
            });
            assert_eq!(
                result.classification,
                *classification,
                "exit {exit:?} stdout {:?}",
                String::from_utf8_lossy(stdout)
            );
        }
        let failed = parse(&Outcome {
            exit_code: Some(1),
            stderr: b"Error: invalid policy type".to_vec(),
            ..Outcome::default()
        });
        assert_eq!(
            failed.message.as_deref(),
            Some("terrascan exited with code 1: Error: invalid policy type")
        );
    }

    #[test]
    fn timeouts() {
        let complete = Outcome {
            exit_code: None,
            timed_out: true,
            stdout: fixture("aws_db_instance_json.json"),
            ..Outcome::default()
        };
        let result = parse(&complete);
        assert_eq!(result.classification, Classification::Findings);
        assert_eq!(result.findings.len(), 14);
        let partial = Outcome {
            exit_code: None,
            timed_out: true,
            stdout: b"{\"results\":".to_vec(),
            ..Outcome::default()
        };
        assert_eq!(parse(&partial).classification, Classification::ToolError);
    }
}
