//! Reading a finished run: tool errors that quote the end of the tool's output, notes on a
//! result, JSON reports from stdout or from the output directory, and a result from findings.
//!
//! Invariants: a report cut at the host's size limit is never read as complete (a cut JSON
//! document fails to parse and the error says it was cut); an empty or non-JSON stdout is an
//! error, never "no findings"; quoted output is bounded by `EXCERPT_BYTES` and free of control
//! characters (`crate::text::output_tail`).

use serde::de::DeserializeOwned;

use crate::text::output_tail;
use crate::types::{Classification, Finding, Outcome, OutputFile, ParseResult};

/// How much of a tool's output a tool-error message quotes: the end of it, where Go and Python
/// print their fatal error; a few lines, not a log.
///
/// ```
/// use toolgate_plugin_sdk::{Outcome, Quote};
/// use toolgate_plugin_sdk::output::{EXCERPT_BYTES, tool_error};
/// let mut stderr = "DEBUG loading policy\n".repeat(100).into_bytes();
/// stderr.extend_from_slice(b"Error: failed to read policies");
/// let outcome = Outcome { exit_code: Some(1), stderr, ..Outcome::default() };
/// let message = tool_error(&outcome, "terrascan failed", Quote::Stderr).message.unwrap();
/// assert!(message.ends_with("Error: failed to read policies"));
/// assert!(message.len() < EXCERPT_BYTES + 40);
/// ```
pub const EXCERPT_BYTES: usize = 512;

/// Which of the run's streams a tool error quotes.
///
/// ```
/// use toolgate_plugin_sdk::{Outcome, Quote};
/// use toolgate_plugin_sdk::output::tool_error;
/// let outcome = Outcome { exit_code: Some(1), stdout: b"fatal: no credentials".to_vec(), ..Outcome::default() };
/// let quoted = tool_error(&outcome, "failed", Quote::StderrOrStdout);
/// assert_eq!(quoted.message.as_deref(), Some("failed: fatal: no credentials"));
/// assert_eq!(tool_error(&outcome, "failed", Quote::Stderr).message.as_deref(), Some("failed"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// The end of stderr only (tools that print their report on stdout).
    Stderr,
    /// The end of stderr, or of stdout when stderr is empty (tools that log to stdout).
    StderrOrStdout,
}

/// A tool error: `summary`, then `: ` and the end of the quoted stream when there is one.
///
/// ```
/// use toolgate_plugin_sdk::{Classification, Outcome};
/// use toolgate_plugin_sdk::output::{Quote, tool_error};
/// let outcome = Outcome { exit_code: Some(2), stderr: b"Traceback...\nValueError: bad\n".to_vec(), ..Outcome::default() };
/// let result = tool_error(&outcome, "mytool exited with code 2", Quote::Stderr);
/// assert_eq!(result.classification, Classification::ToolError);
/// assert_eq!(result.message.as_deref(), Some("mytool exited with code 2: Traceback...\nValueError: bad"));
/// ```
pub fn tool_error(outcome: &Outcome, summary: &str, quote: Quote) -> ParseResult {
    let mut detail = output_tail(&outcome.stderr, EXCERPT_BYTES);
    if detail.is_none() && quote == Quote::StderrOrStdout {
        detail = output_tail(&outcome.stdout, EXCERPT_BYTES);
    }
    ParseResult::tool_error(match detail {
        Some(detail) => format!("{summary}: {detail}"),
        None => summary.to_string(),
    })
}

impl ParseResult {
    /// `Clean` without findings when `findings` is empty, else `Findings`; no message.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Classification, Finding, ParseResult, Severity};
    /// assert_eq!(ParseResult::from_findings(Vec::new()).classification, Classification::Clean);
    /// let one = vec![Finding::new("R1", "t", Severity::Low)];
    /// assert_eq!(ParseResult::from_findings(one).classification, Classification::Findings);
    /// ```
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        ParseResult {
            classification: if findings.is_empty() {
                Classification::Clean
            } else {
                Classification::Findings
            },
            findings,
            message: None,
        }
    }

    /// Puts `note` in front of the message (`note; message`), e.g. "timed out after printing a
    /// complete report".
    ///
    /// ```
    /// use toolgate_plugin_sdk::ParseResult;
    /// let result = ParseResult::tool_error("2 scan errors").with_note("timed out");
    /// assert_eq!(result.message.as_deref(), Some("timed out; 2 scan errors"));
    /// ```
    pub fn with_note(mut self, note: &str) -> Self {
        self.message = Some(match self.message {
            Some(message) => format!("{note}; {message}"),
            None => note.to_string(),
        });
        self
    }
}

/// Why a JSON report could not be read; the message names the tool and the cause.
///
/// ```
/// use toolgate_plugin_sdk::output::{ReportError, read_json};
/// let error = read_json::<serde_json::Value>(b"", false, "mytool").unwrap_err();
/// assert_eq!(error, ReportError::Empty { tool: "mytool".into() });
/// assert_eq!(error.to_string(), "mytool printed no report");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Nothing but whitespace: the tool died before printing, or printed elsewhere.
    #[error("{tool} printed no report")]
    Empty {
        /// The tool (and file) named in the message.
        tool: String,
    },
    /// The output does not start with `{` or `[`: a banner, a log line or a usage text.
    #[error("{tool}'s output is not a JSON report (it starts with {start:?})")]
    NotJson {
        /// The tool (and file) named in the message.
        tool: String,
        /// The first characters of the output, to recognise what was printed instead.
        start: String,
    },
    /// The host cut the output at its limit and the JSON is incomplete.
    #[error("{tool}'s report was cut at the host's output limit and cannot be read ({error})")]
    Truncated {
        /// The tool (and file) named in the message.
        tool: String,
        /// The JSON parser's error.
        error: String,
    },
    /// Complete output that is not JSON of the shape the plugin expects.
    #[error("{tool}'s report is not valid JSON of the expected shape ({error})")]
    Invalid {
        /// The tool (and file) named in the message.
        tool: String,
        /// The JSON parser's error (with line and column).
        error: String,
    },
}

/// How many characters of a non-JSON output an error shows: enough to recognise a banner.
const SHOWN_START_CHARS: usize = 40;

/// Parses a JSON document (`{...}` or `[...]`, leading whitespace allowed) into `T`.
/// `truncated` says the host cut the bytes; `tool` names the tool in errors.
///
/// ```
/// use serde::Deserialize;
/// use toolgate_plugin_sdk::output::{ReportError, read_json};
/// #[derive(Deserialize)]
/// struct Report { failed: u32 }
/// let report: Report = read_json(b" {\"failed\": 2}", false, "mytool").unwrap();
/// assert_eq!(report.failed, 2);
/// assert!(matches!(read_json::<Report>(b"{\"failed\":", true, "mytool"), Err(ReportError::Truncated { .. })));
/// assert!(matches!(read_json::<Report>(b"Starting scan...", false, "mytool"), Err(ReportError::NotJson { .. })));
/// ```
pub fn read_json<T: DeserializeOwned>(
    bytes: &[u8],
    truncated: bool,
    tool: &str,
) -> Result<T, ReportError> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let json = &bytes[start..];
    match json.first() {
        None => {
            return Err(ReportError::Empty {
                tool: tool.to_string(),
            });
        }
        Some(b'{' | b'[') => {}
        Some(_) => {
            return Err(ReportError::NotJson {
                tool: tool.to_string(),
                start: String::from_utf8_lossy(json)
                    .chars()
                    .take(SHOWN_START_CHARS)
                    .collect(),
            });
        }
    }
    serde_json::from_slice(json).map_err(|error| {
        let error = error.to_string();
        let tool = tool.to_string();
        if truncated {
            ReportError::Truncated { tool, error }
        } else {
            ReportError::Invalid { tool, error }
        }
    })
}

/// `read_json` on the run's stdout.
///
/// ```
/// use toolgate_plugin_sdk::Outcome;
/// use toolgate_plugin_sdk::output::json_stdout;
/// let outcome = Outcome { exit_code: Some(0), stdout: b"[1, 2]".to_vec(), ..Outcome::default() };
/// assert_eq!(json_stdout::<Vec<u8>>(&outcome, "mytool"), Ok(vec![1, 2]));
/// ```
pub fn json_stdout<T: DeserializeOwned>(outcome: &Outcome, tool: &str) -> Result<T, ReportError> {
    read_json(&outcome.stdout, outcome.output_truncated, tool)
}

/// The files of the output directory whose name ends with `suffix` (e.g. `.ocsf.json`), in the
/// order the host listed them.
///
/// ```
/// use toolgate_plugin_sdk::{Outcome, OutputFile};
/// use toolgate_plugin_sdk::output::files_ending_with;
/// let file = |name: &str| OutputFile { name: name.into(), content: Vec::new(), truncated: false };
/// let outcome = Outcome { files: vec![file("a.ocsf.json"), file("a.csv")], ..Outcome::default() };
/// let names: Vec<&str> = files_ending_with(&outcome, ".ocsf.json").map(|f| f.name.as_str()).collect();
/// assert_eq!(names, ["a.ocsf.json"]);
/// ```
pub fn files_ending_with<'a>(
    outcome: &'a Outcome,
    suffix: &'a str,
) -> impl Iterator<Item = &'a OutputFile> + 'a {
    outcome
        .files
        .iter()
        .filter(move |file| file.name.ends_with(suffix))
}

/// `read_json` on an output file, naming the file in errors.
///
/// ```
/// use toolgate_plugin_sdk::OutputFile;
/// use toolgate_plugin_sdk::output::json_file;
/// let file = OutputFile { name: "r.json".into(), content: b"{\"x\":1}".to_vec(), truncated: false };
/// let value: serde_json::Value = json_file(&file, "mytool").unwrap();
/// assert_eq!(value["x"], 1);
/// ```
pub fn json_file<T: DeserializeOwned>(file: &OutputFile, tool: &str) -> Result<T, ReportError> {
    read_json(
        &file.content,
        file.truncated,
        &format!("{tool} (file {:?})", file.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stdout: &[u8], stderr: &[u8]) -> Outcome {
        Outcome {
            exit_code: Some(1),
            stdout: stdout.to_vec(),
            stderr: stderr.to_vec(),
            ..Outcome::default()
        }
    }

    #[test]
    fn tool_error_quotes_the_right_stream() {
        let table: &[(&[u8], &[u8], Quote, &str)] = &[
            (b"", b"", Quote::Stderr, "failed"),
            (b"out", b"", Quote::Stderr, "failed"),
            (b"out", b"", Quote::StderrOrStdout, "failed: out"),
            (b"out", b"err", Quote::StderrOrStdout, "failed: err"),
            (
                b"",
                b"\x1b[31merr\x1b[0m",
                Quote::Stderr,
                "failed: [31merr [0m",
            ),
        ];
        for (stdout, stderr, quote, expected) in table {
            let result = tool_error(&outcome(stdout, stderr), "failed", *quote);
            assert_eq!(result.classification, Classification::ToolError);
            assert_eq!(result.message.as_deref(), Some(*expected), "{quote:?}");
        }
        let long = vec![b'x'; 10 * EXCERPT_BYTES];
        let message = tool_error(&outcome(b"", &long), "failed", Quote::Stderr)
            .message
            .unwrap_or_default();
        assert!(message.len() < EXCERPT_BYTES + 20, "{}", message.len());
    }

    #[test]
    fn read_json_refuses_what_is_not_a_complete_report() {
        type Doc = serde_json::Map<String, serde_json::Value>;
        let table: &[(&[u8], bool, &str)] = &[
            (b"", false, "mytool printed no report"),
            (b"  \n", false, "mytool printed no report"),
            (
                b"Scanning...",
                false,
                "mytool's output is not a JSON report (it starts with \"Scanning...\")",
            ),
            (b"{\"a\":", true, "mytool's report was cut"),
            (b"{\"a\":", false, "mytool's report is not valid JSON"),
            (b"[1]", false, "mytool's report is not valid JSON"),
        ];
        for (bytes, truncated, start) in table {
            let message = read_json::<Doc>(bytes, *truncated, "mytool")
                .err()
                .map(|error| error.to_string())
                .unwrap_or_default();
            assert!(message.starts_with(start), "{bytes:?}: {message}");
        }
        assert!(read_json::<Doc>(b"\n{\"a\":1}", false, "mytool").is_ok());
    }

    #[test]
    fn with_note_and_from_findings() {
        let clean = ParseResult::from_findings(Vec::new()).with_note("n");
        assert_eq!(clean.classification, Classification::Clean);
        assert_eq!(clean.message.as_deref(), Some("n"));
    }
}
