//! `GET /iac/v2/scans/{id}/results/sarif`: a scan's findings as a SARIF 2.1.0 log.
//!
//! Typed structs of our own rather than the `serde-sarif` crate: serde-sarif (0.8) generates
//! its types in a build script from the schema (pulling schemafy, syn and prettyplease into
//! every build) and wraps them in builders, for the dozen members used here; these structs
//! are checked against the official schema instead (`tests/sarif_schema.rs`).
//!
//! Invariants: one run whose `tool.driver.name` is `toolgate/<tool>`; `rules` holds each rule
//! id once, in the order first seen, and every result's `ruleIndex` points at its rule;
//! `level` is `error` for critical and high, `warning` for medium, `note` for low and info;
//! `message.text` is never empty; `artifactLocation.uri` is the finding's file as a relative
//! URI reference (percent-encoded, so a space or a `:` cannot turn it into something else);
//! `region.startLine` is written only for a known line of 1 or more; `helpUri` only for an
//! absolute http(s) URL (the schema requires a URI); upstream's properties (severity, rule,
//! docUrl) are on each result, and `matchedPoliciesSummary` on the run.

use std::collections::HashMap;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;
use toolgate_model::{Finding, Severity, SeverityCounts};

use crate::MatchedPoliciesSummary;
use crate::results::upstream_severity;

/// Where the SARIF 2.1.0 schema is published (the log's `$schema`).
pub const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";

/// Bytes escaped in an artifact URI: controls, space, and every character with a meaning in a
/// URI reference except `/` (paths keep their folders). `:` is escaped so that `c:/x` stays a
/// relative path rather than a URI with scheme `c`.
const URI_PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A SARIF log (`sarifLog`): one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SarifLog {
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    pub version: &'static str,
    pub runs: Vec<Run>,
}

/// The run of one tool over one scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub tool: Tool,
    pub results: Vec<SarifResult>,
    pub properties: RunProperties,
}

/// The run's property bag: upstream's `matchedPoliciesSummary`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProperties {
    pub matched_policies_summary: MatchedPoliciesSummary,
}

/// The tool of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub driver: Driver,
}

/// The tool's driver: `toolgate/<tool>`, its version, its rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub rules: Vec<Rule>,
}

/// A rule (`reportingDescriptor`), listed once per rule id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub short_description: Text,
    pub full_description: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
    pub default_configuration: Configuration,
    pub properties: RuleProperties,
}

/// A message or description (`{"text"}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Text {
    pub text: String,
}

/// A rule's default configuration: its level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Configuration {
    pub level: Level,
}

/// A rule's property bag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleProperties {
    /// The tool's severity of the rule (as first seen).
    pub severity: Severity,
    pub category: String,
    /// GitHub code scanning's 0.0-10.0 score, as a string (its documented form).
    #[serde(rename = "security-severity")]
    pub security_severity: &'static str,
}

/// A SARIF result level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Level {
    /// error for critical and high, warning for medium, note for low and info.
    pub fn of(severity: Severity) -> Level {
        match severity {
            Severity::Critical | Severity::High => Level::Error,
            Severity::Medium => Level::Warning,
            Severity::Low | Severity::Info => Level::Note,
        }
    }
}

fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// One result: a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: String,
    pub rule_index: usize,
    pub level: Level,
    pub message: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    pub properties: ResultProperties,
}

/// Where a result is: the file and line, and the resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_location: Option<PhysicalLocation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logical_locations: Vec<LogicalLocation>,
}

/// A file and, when known, a region in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    pub artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
}

/// A file as a relative URI reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArtifactLocation {
    pub uri: String,
}

/// A 1-based line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub start_line: u32,
}

/// The resource a finding is about (`aws_s3_bucket.logs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogicalLocation {
    pub name: String,
    pub fully_qualified_name: String,
    pub kind: &'static str,
}

/// A result's property bag: upstream's properties and the resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultProperties {
    /// Upstream's bucket name (high, medium, low; info).
    pub severity: &'static str,
    pub tool_severity: Severity,
    /// Upstream's `rule`: the rule id.
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_url: Option<String>,
    pub resource_type: String,
    pub resource_name: String,
}

/// The SARIF log of `findings` reported by the plugin `tool` (its version when known).
pub fn sarif_log(tool: &str, tool_version: Option<&str>, findings: &[Finding]) -> SarifLog {
    let mut rules: Vec<Rule> = Vec::new();
    let mut rule_index: HashMap<&str, usize> = HashMap::new();
    let mut results = Vec::with_capacity(findings.len());
    for finding in findings {
        let index = *rule_index
            .entry(finding.rule_id.as_str())
            .or_insert_with(|| {
                rules.push(rule(finding));
                rules.len() - 1
            });
        results.push(result(finding, index));
    }
    let counts = SeverityCounts::of(findings.iter().map(|finding| &finding.severity));
    SarifLog {
        schema: SARIF_SCHEMA_URI,
        version: SARIF_VERSION,
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: format!("toolgate/{tool}"),
                    version: tool_version.map(str::to_string),
                    rules,
                },
            },
            results,
            properties: RunProperties {
                matched_policies_summary: MatchedPoliciesSummary::from(&counts),
            },
        }],
    }
}

impl SarifLog {
    /// The document as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::json_body::to_bytes(self)
    }
}

/// The first non-empty of `texts`, else `fallback`.
fn first_text(texts: &[&str], fallback: &str) -> String {
    texts
        .iter()
        .find(|text| !text.trim().is_empty())
        .copied()
        .unwrap_or(fallback)
        .to_string()
}

fn rule(finding: &Finding) -> Rule {
    let title = first_text(&[&finding.title], &finding.rule_id);
    Rule {
        id: finding.rule_id.clone(),
        name: title.clone(),
        short_description: Text {
            text: title.clone(),
        },
        full_description: Text {
            text: first_text(&[&finding.description], &title),
        },
        help_uri: finding
            .documentation_url
            .as_deref()
            .filter(|url| is_http_url(url))
            .map(str::to_string),
        default_configuration: Configuration {
            level: Level::of(finding.severity),
        },
        properties: RuleProperties {
            severity: finding.severity,
            category: finding.category.clone(),
            security_severity: security_severity(finding.severity),
        },
    }
}

/// An absolute http(s) URL without spaces or controls: what the schema's `format: uri` takes.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !url.chars().any(|c| {
                c.is_whitespace() || c.is_control() || c == '"' || c == '<' || c == '>' || c == '\\'
            })
    })
}

fn result(finding: &Finding, rule_index: usize) -> SarifResult {
    let physical_location = finding
        .file
        .as_deref()
        .map(relative_uri)
        .filter(|uri| !uri.is_empty())
        .map(|uri| PhysicalLocation {
            artifact_location: ArtifactLocation { uri },
            region: finding
                .line
                .filter(|line| *line >= 1)
                .map(|start_line| Region { start_line }),
        });
    let logical_locations = if finding.resource_name.is_empty() {
        Vec::new()
    } else {
        vec![LogicalLocation {
            name: finding.resource_name.clone(),
            fully_qualified_name: if finding.resource_type.is_empty() {
                finding.resource_name.clone()
            } else {
                format!("{}.{}", finding.resource_type, finding.resource_name)
            },
            kind: "resource",
        }]
    };
    let locations = if physical_location.is_none() && logical_locations.is_empty() {
        Vec::new()
    } else {
        vec![Location {
            physical_location,
            logical_locations,
        }]
    };
    SarifResult {
        rule_id: finding.rule_id.clone(),
        rule_index,
        level: Level::of(finding.severity),
        message: Text {
            text: first_text(&[&finding.description, &finding.title], &finding.rule_id),
        },
        locations,
        properties: ResultProperties {
            severity: upstream_severity(finding.severity),
            tool_severity: finding.severity,
            rule: finding.rule_id.clone(),
            doc_url: finding.documentation_url.clone(),
            resource_type: finding.resource_type.clone(),
            resource_name: finding.resource_name.clone(),
        },
    }
}

/// `file` as a relative URI reference: leading `/` and `./` dropped (files are relative to the
/// upload's root), backslashes read as separators, the rest percent-encoded.
fn relative_uri(file: &str) -> String {
    let normalized = file.replace('\\', "/");
    let parts: Vec<String> = normalized
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .map(|part| utf8_percent_encode(part, URI_PATH_ESCAPES).to_string())
        .collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::finding;
    use serde_json::json;

    fn render(log: &SarifLog) -> serde_json::Value {
        serde_json::from_slice(&log.to_bytes()).expect("JSON")
    }

    #[test]
    fn no_findings_is_an_exact_empty_run() {
        assert_eq!(
            render(&sarif_log("terrascan", Some("1.19.9"), &[])),
            json!({"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
                "runs": [{"tool": {"driver": {"name": "toolgate/terrascan", "version": "1.19.9",
                    "rules": []}}, "results": [],
                    "properties": {"matchedPoliciesSummary": {"high": 0, "medium": 0, "low": 0}}}]})
        );
    }

    #[test]
    fn one_finding_has_the_exact_shape() {
        let found = finding(
            "AC_AWS_0207",
            Severity::High,
            Some("./dev/main.tf"),
            Some(12),
        );
        let value = render(&sarif_log("terrascan", None, &[found]));
        assert_eq!(
            value["runs"][0]["tool"],
            json!({"driver": {"name": "toolgate/terrascan", "rules": [{
                "id": "AC_AWS_0207", "name": "Rule AC_AWS_0207",
                "shortDescription": {"text": "Rule AC_AWS_0207"},
                "fullDescription": {"text": "AC_AWS_0207 is broken"},
                "helpUri": "https://docs.example/AC_AWS_0207",
                "defaultConfiguration": {"level": "error"},
                "properties": {"severity": "high", "category": "Data Protection",
                    "security-severity": "8.0"}}]}})
        );
        assert_eq!(
            value["runs"][0]["results"],
            json!([{"ruleId": "AC_AWS_0207", "ruleIndex": 0, "level": "error",
                "message": {"text": "AC_AWS_0207 is broken"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": "dev/main.tf"},
                        "region": {"startLine": 12}},
                    "logicalLocations": [{"name": "logs",
                        "fullyQualifiedName": "aws_s3_bucket.logs", "kind": "resource"}]}],
                "properties": {"severity": "high", "toolSeverity": "high", "rule": "AC_AWS_0207",
                    "docUrl": "https://docs.example/AC_AWS_0207",
                    "resourceType": "aws_s3_bucket", "resourceName": "logs"}}])
        );
    }

    #[test]
    fn levels_table() {
        let table = [
            (Severity::Critical, Level::Error),
            (Severity::High, Level::Error),
            (Severity::Medium, Level::Warning),
            (Severity::Low, Level::Note),
            (Severity::Info, Level::Note),
        ];
        for (severity, level) in table {
            assert_eq!(Level::of(severity), level, "{severity:?}");
        }
    }

    #[test]
    fn rules_are_listed_once_and_indexed() {
        let findings = [
            finding("B", Severity::Low, Some("a.tf"), Some(1)),
            finding("A", Severity::Medium, Some("a.tf"), Some(2)),
            finding("B", Severity::Low, Some("b.tf"), Some(3)),
        ];
        let log = sarif_log("checkov", None, &findings);
        let run = &log.runs[0];
        let ids: Vec<&str> = run
            .tool
            .driver
            .rules
            .iter()
            .map(|rule| rule.id.as_str())
            .collect();
        assert_eq!(ids, ["B", "A"]);
        let indexes: Vec<usize> = run.results.iter().map(|result| result.rule_index).collect();
        assert_eq!(indexes, [0, 1, 0]);
        assert_eq!(
            run.properties.matched_policies_summary,
            MatchedPoliciesSummary {
                high: 0,
                medium: 1,
                low: 2
            }
        );
    }

    #[test]
    fn locations_table() {
        // (file, line, uri written, startLine written)
        let table = [
            (Some("main.tf"), Some(3), Some("main.tf"), Some(3)),
            (Some("/dev/app.tf"), Some(1), Some("dev/app.tf"), Some(1)),
            (
                Some("dir with space/a#b.tf"),
                None,
                Some("dir%20with%20space/a%23b.tf"),
                None,
            ),
            (Some("c:/x.tf"), Some(0), Some("c%3A/x.tf"), None),
            (Some("dev\\win.tf"), Some(9), Some("dev/win.tf"), Some(9)),
            (Some("./"), Some(2), None, None),
            (None, Some(4), None, None),
        ];
        for (file, line, uri, start_line) in table {
            let log = sarif_log("t", None, &[finding("R", Severity::Low, file, line)]);
            let physical = log.runs[0].results[0].locations[0]
                .physical_location
                .as_ref();
            assert_eq!(
                physical.map(|p| p.artifact_location.uri.as_str()),
                uri,
                "{file:?}"
            );
            assert_eq!(
                physical
                    .and_then(|p| p.region.as_ref())
                    .map(|r| r.start_line),
                start_line,
                "{file:?} {line:?}"
            );
        }
    }

    #[test]
    fn help_uris_are_absolute_http_urls_only() {
        let table = [
            ("https://docs.example/x", true),
            ("http://docs.example", true),
            ("docs.example/x", false),
            ("https://", false),
            ("https:///path", false),
            ("https://a b", false),
            ("javascript:alert(1)", false),
        ];
        for (url, kept) in table {
            assert_eq!(is_http_url(url), kept, "{url}");
        }
    }

    #[test]
    fn empty_texts_fall_back_so_messages_are_never_empty() {
        let mut bare = finding("R9", Severity::Info, None, None);
        bare.title = String::new();
        bare.description = " ".to_string();
        bare.resource_name = String::new();
        let log = sarif_log("t", None, &[bare]);
        let run = &log.runs[0];
        assert_eq!(run.results[0].message.text, "R9");
        assert_eq!(run.tool.driver.rules[0].name, "R9");
        assert!(run.results[0].locations.is_empty());
    }
}
