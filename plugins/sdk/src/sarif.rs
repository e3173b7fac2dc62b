//! SARIF 2.1.0 reports -> findings: typed structs holding only the fields a finding uses
//! (every field optional, unknown fields ignored) and one conversion.
//!
//! Invariants: a result's severity comes from its rule's `properties.severity` word when the
//! tool gives one (scanners put their own scale there), else from the result's `level`, else
//! `medium` (SARIF's default level is `warning`); file and line go through
//! `finding::file_path` and `finding::line_number`; the help URL through
//! `finding::http_url`.

use serde::{Deserialize, Deserializer};

use crate::finding::http_url;
use crate::types::{Finding, Severity};

/// `null` reads as the field's default: some tools print `"results": null` for an empty run.
fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A SARIF log: `{"version": "2.1.0", "runs": [...]}`.
///
/// Read it with `output::read_json` (or `json_file`), then turn it into findings with
/// `Log::findings`.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Log;
/// // Some tools print `"runs": null` for an empty scan: that reads as no runs, not an error.
/// let log: Log = serde_json::from_str(r#"{"version":"2.1.0","runs":null}"#).unwrap();
/// assert!(log.findings().is_empty());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Log {
    /// The runs; most tools write one.
    #[serde(default, deserialize_with = "null_as_default")]
    pub runs: Vec<Run>,
}

/// One run of one tool.
///
/// A rule id in `results` is looked up in this run's own `tool.driver.rules` only.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Run;
/// let run: Run = serde_json::from_str(r#"{"results":[{"ruleId":"AC_AWS_0214"}],"invocations":[]}"#).unwrap();
/// assert_eq!(run.results[0].rule_id, "AC_AWS_0214"); // unknown fields are ignored
/// assert!(run.tool.driver.rules.is_empty());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Run {
    /// The tool that ran and its rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tool: Tool,
    /// What the tool reported, one entry per finding.
    #[serde(default, deserialize_with = "null_as_default")]
    pub results: Vec<SarifResult>,
}

/// `run.tool`.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Tool;
/// let tool: Tool = serde_json::from_str(r#"{"driver":{"name":"terrascan","rules":[{"id":"R1"}]}}"#).unwrap();
/// assert_eq!(tool.driver.rules[0].id, "R1");
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tool {
    /// The tool's main component, which holds the rules.
    #[serde(default, deserialize_with = "null_as_default")]
    pub driver: Driver,
}

/// `run.tool.driver`: the rules results refer to.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Driver;
/// let driver: Driver = serde_json::from_str(r#"{"name":"tfsec","rules":null}"#).unwrap();
/// assert!(driver.rules.is_empty());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Driver {
    /// The rules results refer to by `ruleId`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rules: Vec<Rule>,
}

/// One rule (`reportingDescriptor`).
///
/// The rule gives a finding its title (`name`, else `shortDescription`), documentation URL
/// and, through `properties`, the tool's own severity.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Rule;
/// let rule: Rule = serde_json::from_str(r#"{"id":"CKV_AWS_20","name":"S3 bucket is public",
///     "helpUri":"https://docs.example/ckv_aws_20","properties":{"severity":"HIGH"}}"#).unwrap();
/// assert_eq!(rule.name.as_deref(), Some("S3 bucket is public"));
/// assert!(rule.short_description.is_none());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Rule {
    /// The rule id results refer to, e.g. `CKV_AWS_20`.
    #[serde(default)]
    pub id: String,
    /// A short name; the finding's title when not empty.
    #[serde(default)]
    pub name: Option<String>,
    /// A one-line description; the title when the rule has no name.
    #[serde(default, rename = "shortDescription")]
    pub short_description: Option<Text>,
    /// The rule's documentation; kept only when it is a safe `http(s)` URL.
    #[serde(default, rename = "helpUri")]
    pub help_uri: Option<String>,
    /// The tool's own severity and category.
    #[serde(default)]
    pub properties: Option<RuleProperties>,
}

/// The rule's property bag fields scanners use for their own scale.
///
/// SARIF's `level` has only three steps; scanners' own `severity` word is finer, so it wins
/// when present.
///
/// ```
/// use toolgate_plugin_sdk::Severity;
/// use toolgate_plugin_sdk::sarif::RuleProperties;
/// let properties: RuleProperties = serde_json::from_str(r#"{"severity":"MEDIUM","category":"Encryption","tags":["s3"]}"#).unwrap();
/// let severity = properties.severity.as_deref().and_then(Severity::from_word);
/// assert_eq!(severity, Some(Severity::Medium));
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuleProperties {
    /// The tool's severity word (`HIGH`, `moderate`, ...), read by `Severity::from_word`.
    #[serde(default)]
    pub severity: Option<String>,
    /// The tool's category, copied to the finding.
    #[serde(default)]
    pub category: Option<String>,
}

/// A `message` or description: `{"text": ...}`.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Text;
/// let text: Text = serde_json::from_str(r#"{"text":"Port 22 is open","markdown":"Port **22**"}"#).unwrap();
/// assert_eq!(text.text, "Port 22 is open"); // plain text only; markdown is ignored
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Text {
    /// The plain text (other renderings are ignored).
    #[serde(default)]
    pub text: String,
}

/// One result.
///
/// ```
/// use toolgate_plugin_sdk::sarif::SarifResult;
/// let result: SarifResult = serde_json::from_str(r#"{"ruleId":"R1","message":{"text":"open"},"locations":null}"#).unwrap();
/// assert_eq!(result.level, None); // absent: the conversion falls back to medium
/// assert!(result.locations.is_empty());
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SarifResult {
    /// The id of the rule this result violates.
    #[serde(default, rename = "ruleId")]
    pub rule_id: String,
    /// SARIF's `error`/`warning`/`note`/`none`; used when the rule has no severity word.
    #[serde(default)]
    pub level: Option<String>,
    /// What is wrong in this place; the finding's description.
    #[serde(default)]
    pub message: Option<Text>,
    /// Where; only the first one is used.
    #[serde(default, deserialize_with = "null_as_default")]
    pub locations: Vec<Location>,
}

/// Where a result is.
///
/// Only the first location of a result becomes the finding's file, line and resource.
///
/// ```
/// use toolgate_plugin_sdk::sarif::Location;
/// let location: Location = serde_json::from_str(r#"{"logicalLocations":[{"name":"web","kind":"aws_security_group"}]}"#).unwrap();
/// assert!(location.physical.is_none());
/// assert_eq!(location.logical[0].kind, "aws_security_group");
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Location {
    /// The file and line.
    #[serde(default, rename = "physicalLocation")]
    pub physical: Option<PhysicalLocation>,
    /// The resource; only the first one is used.
    #[serde(
        default,
        rename = "logicalLocations",
        deserialize_with = "null_as_default"
    )]
    pub logical: Vec<LogicalLocation>,
}

/// File and region.
///
/// ```
/// use toolgate_plugin_sdk::sarif::PhysicalLocation;
/// let physical: PhysicalLocation = serde_json::from_str(
///     r#"{"artifactLocation":{"uri":"file:///scans/7/main.tf"},"region":{"startLine":12,"endLine":14}}"#).unwrap();
/// assert_eq!(physical.artifact.unwrap().uri, "file:///scans/7/main.tf");
/// assert_eq!(physical.region.unwrap().start_line, Some(12));
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PhysicalLocation {
    /// The file.
    #[serde(default, rename = "artifactLocation")]
    pub artifact: Option<ArtifactLocation>,
    /// The place in the file.
    #[serde(default)]
    pub region: Option<Region>,
}

/// `artifactLocation.uri`.
///
/// ```
/// use toolgate_plugin_sdk::finding::file_path;
/// use toolgate_plugin_sdk::sarif::ArtifactLocation;
/// let artifact: ArtifactLocation = serde_json::from_str(r#"{"uri":"file://modules/vpc/main.tf"}"#).unwrap();
/// // kept raw here; the conversion strips the scheme
/// assert_eq!(file_path(&artifact.uri).as_deref(), Some("modules/vpc/main.tf"));
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArtifactLocation {
    /// The file's URI, often `file://` or relative to the scanned directory.
    #[serde(default)]
    pub uri: String,
}

/// `region.startLine`.
///
/// ```
/// use toolgate_plugin_sdk::finding::line_number;
/// use toolgate_plugin_sdk::sarif::Region;
/// let region: Region = serde_json::from_str(r#"{"startLine":0}"#).unwrap();
/// // an `i64`, so odd values still parse; the conversion then drops them
/// assert_eq!(region.start_line.and_then(line_number), None);
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Region {
    /// The first line, 1-based; other values mean "no line".
    #[serde(default, rename = "startLine")]
    pub start_line: Option<i64>,
}

/// A logical location: the resource (`name`) and its type (`kind`).
///
/// ```
/// use toolgate_plugin_sdk::sarif::LogicalLocation;
/// let logical: LogicalLocation = serde_json::from_str(r#"{"name":"logs","kind":"aws_s3_bucket"}"#).unwrap();
/// assert_eq!((logical.kind.as_str(), logical.name.as_str()), ("aws_s3_bucket", "logs"));
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogicalLocation {
    /// The resource's name, e.g. `web`.
    #[serde(default)]
    pub name: String,
    /// The resource's type, e.g. `aws_security_group`.
    #[serde(default)]
    pub kind: String,
}

impl Log {
    /// Every result of every run as a finding.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Severity;
    /// use toolgate_plugin_sdk::output::read_json;
    /// use toolgate_plugin_sdk::sarif::Log;
    /// let sarif = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"rules":[
    ///   {"id":"R1","name":"openPort","properties":{"severity":"HIGH","category":"Network"}}]}},
    ///   "results":[{"ruleId":"R1","level":"warning","message":{"text":"port 22 open"},
    ///   "locations":[{"physicalLocation":{"artifactLocation":{"uri":"file://main.tf"},
    ///   "region":{"startLine":4}}}]}]}]}"#;
    /// let log: Log = read_json(sarif, false, "mytool").unwrap();
    /// let findings = log.findings();
    /// assert_eq!(findings[0].severity, Severity::High);
    /// assert_eq!(findings[0].title, "openPort");
    /// assert_eq!((findings[0].file.as_deref(), findings[0].line), (Some("main.tf"), Some(4)));
    /// ```
    pub fn findings(self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for run in self.runs {
            let rules = run.tool.driver.rules;
            findings.extend(
                run.results
                    .into_iter()
                    .map(|result| result_to_finding(result, &rules)),
            );
        }
        findings
    }
}

fn result_to_finding(result: SarifResult, rules: &[Rule]) -> Finding {
    let rule = rules.iter().find(|rule| rule.id == result.rule_id);
    let properties = rule.and_then(|rule| rule.properties.as_ref());
    let severity = properties
        .and_then(|p| p.severity.as_deref())
        .and_then(Severity::from_word)
        .or_else(|| result.level.as_deref().and_then(Severity::from_sarif_level))
        .unwrap_or(Severity::Medium);
    let title = rule
        .and_then(|rule| rule.name.clone())
        .filter(|name| !name.is_empty())
        .or_else(|| rule.and_then(|rule| rule.short_description.as_ref().map(|t| t.text.clone())))
        .unwrap_or_default();
    let location = result.locations.into_iter().next().unwrap_or_default();
    let physical = location.physical.unwrap_or_default();
    let logical = location.logical.into_iter().next().unwrap_or_default();
    Finding::new(result.rule_id, title, severity)
        .description(result.message.map(|m| m.text).unwrap_or_default())
        .resource(logical.kind, logical.name)
        .location(
            physical.artifact.as_ref().map(|a| a.uri.as_str()),
            physical.region.and_then(|r| r.start_line),
        )
        .category(
            properties
                .and_then(|p| p.category.clone())
                .unwrap_or_default(),
        )
        .documentation_url(
            rule.and_then(|rule| rule.help_uri.as_deref())
                .and_then(http_url)
                .as_deref(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::read_json;

    fn findings(json: &str) -> Vec<Finding> {
        read_json::<Log>(json.as_bytes(), false, "t")
            .map(Log::findings)
            .unwrap_or_default()
    }

    #[test]
    fn severity_sources_in_order() {
        let table: &[(&str, &str, Severity)] = &[
            (r#"{"severity":"LOW"}"#, r#""error""#, Severity::Low),
            (r#"{"severity":"odd"}"#, r#""error""#, Severity::High),
            ("null", r#""note""#, Severity::Low),
            ("null", "null", Severity::Medium),
            ("null", r#""fatal""#, Severity::Medium),
        ];
        for (properties, level, expected) in table {
            let json = format!(
                r#"{{"runs":[{{"tool":{{"driver":{{"rules":[{{"id":"R","properties":{properties}}}]}}}},
                "results":[{{"ruleId":"R","level":{level}}}]}}]}}"#
            );
            let got = findings(&json);
            assert_eq!(got.len(), 1, "{json}");
            assert_eq!(got[0].severity, *expected, "{properties} {level}");
        }
    }

    #[test]
    fn a_minimal_result_has_empty_fields_not_a_panic() {
        let got = findings(r#"{"runs":[{"results":[{}]},{}]}"#);
        assert_eq!(got, vec![Finding::new("", "", Severity::Medium)]);
        assert!(findings(r#"{"runs":[]}"#).is_empty());
        assert!(findings(r#"{"runs":[{"tool":null,"results":null}]}"#).is_empty());
    }

    #[test]
    fn unsafe_help_uri_and_bad_lines_are_dropped() {
        let got = findings(
            r#"{"runs":[{"tool":{"driver":{"rules":[{"id":"R","helpUri":"javascript:x"}]}},
            "results":[{"ruleId":"R","locations":[{"physicalLocation":{"region":{"startLine":0}}}]}]}]}"#,
        );
        assert_eq!(got[0].documentation_url, None);
        assert_eq!(got[0].line, None);
    }
}
