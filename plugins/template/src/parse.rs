//! `parse`: a finished run -> classification and findings from the SARIF report on stdout.
//!
//! Invariants: only exit 0 (nothing found) and 1 (findings) are a completed scan; any other code,
//! a signal or a timeout is a tool error quoting the end of stderr; stdout that is empty, not
//! JSON or cut at the host's limit is a tool error, never "clean".

use toolgate_plugin_sdk::output::{json_stdout, tool_error};
use toolgate_plugin_sdk::sarif::Log;
use toolgate_plugin_sdk::{Outcome, ParseResult, Quote};

use crate::TOOL;

/// The tool's exit codes for a completed scan.
const EXIT_CLEAN: i32 = 0;
const EXIT_FINDINGS: i32 = 1;

pub fn parse(outcome: &Outcome) -> ParseResult {
    if outcome.timed_out {
        return tool_error(outcome, &format!("{TOOL} timed out"), Quote::Stderr);
    }
    match outcome.exit_code {
        Some(EXIT_CLEAN | EXIT_FINDINGS) => {}
        Some(code) => {
            return tool_error(
                outcome,
                &format!("{TOOL} exited with code {code}"),
                Quote::Stderr,
            );
        }
        None => {
            return tool_error(
                outcome,
                &format!("{TOOL} was killed by a signal"),
                Quote::Stderr,
            );
        }
    }
    match json_stdout::<Log>(outcome, TOOL) {
        Ok(log) => ParseResult::from_findings(log.findings()),
        Err(error) => tool_error(outcome, &error.to_string(), Quote::Stderr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::{Classification, Severity};

    const REPORT: &str = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"rules":[
        {"id":"T001","name":"openPort","properties":{"severity":"HIGH"}}]}},
        "results":[{"ruleId":"T001","level":"error","message":{"text":"port 22 is open"},
        "locations":[{"physicalLocation":{"artifactLocation":{"uri":"main.tf"},"region":{"startLine":3}}}]}]}]}"#;

    fn run(exit_code: Option<i32>, stdout: &str) -> ParseResult {
        parse(&Outcome {
            exit_code,
            stdout: stdout.as_bytes().to_vec(),
            stderr: b"fatal: boom".to_vec(),
            ..Outcome::default()
        })
    }

    #[test]
    fn classifications() {
        let table: &[(Option<i32>, &str, Classification, usize)] = &[
            (Some(1), REPORT, Classification::Findings, 1),
            (
                Some(0),
                r#"{"runs":[{"results":[]}]}"#,
                Classification::Clean,
                0,
            ),
            (Some(0), "", Classification::ToolError, 0),
            (Some(0), "Scanning...", Classification::ToolError, 0),
            (Some(1), r#"{"runs":"#, Classification::ToolError, 0),
            (Some(2), REPORT, Classification::ToolError, 0),
            (None, REPORT, Classification::ToolError, 0),
        ];
        for (exit_code, stdout, classification, findings) in table {
            let result = run(*exit_code, stdout);
            assert_eq!(
                result.classification, *classification,
                "{exit_code:?} {stdout}"
            );
            assert_eq!(result.findings.len(), *findings, "{exit_code:?} {stdout}");
        }
    }

    #[test]
    fn a_finding_keeps_rule_severity_file_and_line() {
        let finding = &run(Some(1), REPORT).findings[0];
        assert_eq!(finding.rule_id, "T001");
        assert_eq!(finding.severity, Severity::High);
        assert_eq!(
            (finding.file.as_deref(), finding.line),
            (Some("main.tf"), Some(3))
        );
    }

    #[test]
    fn a_tool_error_quotes_stderr() {
        let result = run(Some(2), "");
        let expected = format!("{TOOL} exited with code 2: fatal: boom");
        assert_eq!(result.message.as_deref(), Some(expected.as_str()));
    }
}
