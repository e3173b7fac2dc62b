//! Plain-Rust mirrors of the WIT contract types (`toolgate:plugin@0.2.0`, interface `types`).
//!
//! Plugins are written and tested against these types natively; the wasm glue (`crate::wasm`)
//! converts them one to one to and from the generated WIT bindings. Invariant: every type here
//! has exactly the fields and cases of its WIT counterpart, nothing more, so the conversion is
//! total and lossless. Doc comments summarise the contract; the WIT file is authoritative.

/// Normalized severity of a finding, highest first.
///
/// Every tool's own scale is mapped onto these five levels so callers can filter and sort
/// findings from different scanners alike. The order is "most severe first", so sorting puts
/// the critical findings at the top and `min` finds the worst one.
///
/// ```
/// use toolgate_plugin_sdk::Severity;
/// let mut seen = vec![Severity::Low, Severity::Critical, Severity::Medium];
/// seen.sort();
/// assert_eq!(seen, [Severity::Critical, Severity::Medium, Severity::Low]);
/// assert_eq!(seen.iter().min(), Some(&Severity::Critical));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A tool's `critical`, its most severe level.
    Critical,
    /// A tool's `high`; SARIF `error`.
    High,
    /// A tool's `medium` or `moderate`; SARIF `warning` (SARIF's default level, hence the
    /// usual fallback).
    Medium,
    /// A tool's `low`; SARIF `note`.
    Low,
    /// A tool's `info` or `informational`; SARIF `none`.
    Info,
}

/// What a plugin tells the host about its tool (`describe`).
///
/// The host reads it once at load time to route requests, probe the executable and publish
/// the parameters schema to agents, so it must be a constant of the plugin.
///
/// ```
/// use toolgate_plugin_sdk::{TemplateType, ToolDescription};
/// use toolgate_plugin_sdk::testing::assert_schema_lists_exactly;
/// let description = ToolDescription {
///     name: "terrascan".into(),
///     version: "0.1.0".into(),
///     summary: "Scans Terraform and Kubernetes templates for policy violations.".into(),
///     executable: "terrascan".into(),
///     default_timeout_secs: 300,
///     needs_network: false,
///     env_vars: Vec::new(),
///     params_schema: r#"{"type":"object","additionalProperties":false,
///         "properties":{"iac_dir":{"type":"string"},"severity":{"type":"string"}}}"#.into(),
///     scan_template_types: vec![TemplateType::Tf, TemplateType::K8s],
///     version_args: vec!["version".into()],
/// };
/// // The schema agents read lists exactly the fields `plan` accepts.
/// assert_schema_lists_exactly(&description.params_schema, &["iac_dir", "severity"]);
/// assert!(!description.scan_template_types.contains(&TemplateType::Cft));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolDescription {
    /// Tool name as it appears in URLs: lower case, `[a-z0-9_-]+`.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// One sentence for humans and AI agents.
    pub summary: String,
    /// The executable NAME; the operator maps it to a file.
    pub executable: String,
    /// Wall-clock timeout the tool normally needs; the operator may override it.
    pub default_timeout_secs: u32,
    /// Whether the tool needs network access; when false the host may cut it.
    pub needs_network: bool,
    /// Environment variables the tool may receive (the operator filters them again).
    pub env_vars: Vec<String>,
    /// JSON Schema (draft 2020-12) of the parameters object accepted by `plan`.
    pub params_schema: String,
    /// Template types `plan_scan` accepts; empty: the tool cannot scan a directory of templates.
    pub scan_template_types: Vec<TemplateType>,
    /// Arguments that make the tool print its version and exit 0 (the host's start-up probe).
    pub version_args: Vec<String>,
}

/// A kind of infrastructure-as-code template a directory scan reads.
///
/// Tools spell these their own way; an exhaustive `match` in the plugin makes a new contract
/// type a compile error instead of a silently wrong flag.
///
/// ```
/// use toolgate_plugin_sdk::TemplateType;
/// // terrascan's `-i` values
/// fn iac_type(template_type: TemplateType) -> &'static str {
///     match template_type {
///         TemplateType::Tf => "terraform",
///         TemplateType::Cft => "cft",
///         TemplateType::K8s => "k8s",
///     }
/// }
/// assert_eq!(iac_type(TemplateType::Tf), "terraform");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateType {
    /// Terraform (HCL).
    Tf,
    /// AWS CloudFormation.
    Cft,
    /// Kubernetes manifests.
    K8s,
}

impl TemplateType {
    /// The contract's spelling, for messages: `tf`, `cft`, `k8s`.
    ///
    /// ```
    /// use toolgate_plugin_sdk::TemplateType;
    /// assert_eq!(TemplateType::K8s.name(), "k8s");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            TemplateType::Tf => "tf",
            TemplateType::Cft => "cft",
            TemplateType::K8s => "k8s",
        }
    }
}

/// "Scan this directory as this template type" (`plan-scan`). The host has validated every
/// part; paths are relative to `directory` and were checked to lie inside it.
///
/// A plugin still turns the paths into input paths with `scan::ScanPaths`, so a path it
/// hands back can never name anything outside the upload, even if the host had a bug.
///
/// ```
/// use toolgate_plugin_sdk::{Arg, ScanRequest, TemplateType};
/// use toolgate_plugin_sdk::scan::ScanPaths;
/// let request = ScanRequest {
///     directory: "/scans/7".into(),
///     template_type: TemplateType::Tf,
///     template_version: None,
///     files: vec!["/network/main.tf".into()],
///     folders: Vec::new(),
///     variables: vec![("region".into(), "eu-west-1".into())],
///     variable_files: Vec::new(),
/// };
/// let mut paths = ScanPaths::new(&request);
/// let files = paths.paths("files", &request.files);
/// assert_eq!(files, [Arg::InputPath("/scans/7/network/main.tf".into())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Absolute path of the scan's extracted upload: the job's only input root.
    pub directory: String,
    /// How to read the templates; one of the description's `scan_template_types`.
    pub template_type: TemplateType,
    /// The template language's version (e.g. a Terraform version), when the caller gave one.
    pub template_version: Option<String>,
    /// Files to scan, relative to `directory`; empty: the whole directory.
    pub files: Vec<String>,
    /// Folders to scan, relative to `directory`; empty: the whole directory.
    pub folders: Vec<String>,
    /// (name, value) pairs.
    pub variables: Vec<(String, String)>,
    /// Variable files (`.tfvars`), relative to `directory`.
    pub variable_files: Vec<String>,
}

/// `plan-scan`'s answer: the argv (after `argv[0]`) and one sentence per request part not
/// applied.
///
/// `not_applied` exists so a caller learns that, say, its variables were ignored, instead of
/// trusting a clean result that never looked at them.
///
/// ```
/// use toolgate_plugin_sdk::{Argv, ScanPlan};
/// let variables = vec![("region".to_string(), "eu-west-1".to_string())];
/// let mut not_applied = Vec::new();
/// if !variables.is_empty() {
///     not_applied.push("variables: terrascan has no option for Terraform variables; not applied".to_string());
/// }
/// let plan = ScanPlan {
///     args: Argv::new().literal("scan").option("-i", "terraform").positional_path("/scans/7").build(),
///     not_applied,
/// };
/// assert_eq!(plan.args.len(), 4);
/// assert!(plan.not_applied[0].starts_with("variables:"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    /// The argv after `argv[0]`, typed like `plan`'s.
    pub args: Vec<Arg>,
    /// E.g. "variables: terrascan has no option for Terraform variables; not applied".
    pub not_applied: Vec<String>,
}

/// What the host decided for this call before asking for a plan.
///
/// The guest has no file system, so these paths are all it knows about where the job runs;
/// a plan refers to the output directory through `Arg::OutputDir` rather than copying
/// `output_dir` into a literal, so the host can still check it.
///
/// ```
/// use toolgate_plugin_sdk::PlanContext;
/// let ctx = PlanContext {
///     output_dir: "/srv/out/job-42".into(),
///     workspace: "/srv/work".into(),
///     output_root: "/srv/out".into(),
/// };
/// assert!(ctx.output_dir.starts_with(&ctx.output_root));
/// assert_eq!(PlanContext::default().workspace, "");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanContext {
    /// Absolute path of the job's fresh output directory.
    pub output_dir: String,
    /// Absolute path of the workspace; relative input paths resolve against it.
    pub workspace: String,
    /// Absolute path under which a caller-requested output directory must lie.
    pub output_root: String,
}

/// One argv token, typed so the host can check every path itself.
///
/// Keeping paths out of `Literal` is what lets the host canonicalize and allowlist every file
/// a tool will read or write; `Argv` builds these so the typed form is the easy one.
///
/// ```
/// use toolgate_plugin_sdk::{Arg, Argv};
/// let argv = Argv::new().literal("scan").input_path("-d", "infra").output_dir("-o").build();
/// let inputs: Vec<&str> = argv
///     .iter()
///     .filter_map(|arg| match arg {
///         Arg::InputPath(path) => Some(path.as_str()),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(inputs, ["infra"]);
/// assert_eq!(argv.last(), Some(&Arg::OutputDir));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A literal token passed as is (a flag or a validated value). Never a path.
    Literal(String),
    /// A path the tool will READ; the host canonicalizes and allowlists it.
    InputPath(String),
    /// The job's host-assigned output directory.
    OutputDir,
    /// A caller-requested output directory; the host refuses it outside the output root.
    RequestedOutputDir(String),
}

impl Arg {
    /// A literal token.
    ///
    /// ```
    /// use toolgate_plugin_sdk::Arg;
    /// assert_eq!(Arg::literal("--quiet"), Arg::Literal("--quiet".into()));
    /// ```
    pub fn literal(token: impl Into<String>) -> Self {
        Arg::Literal(token.into())
    }
}

/// One problem with one parameter.
///
/// Errors name their field so a caller (often an AI agent) can fix exactly that parameter;
/// `plan` returns all of them at once so one retry can fix everything.
///
/// ```
/// use toolgate_plugin_sdk::{Params, ValueRule};
/// const SEVERITIES: ValueRule = ValueRule::OneOfIgnoreCase(&["low", "medium", "high"]);
/// let mut params = Params::parse(r#"{"severity":"extreme"}"#, &["severity"]).unwrap();
/// params.one("severity", &SEVERITIES);
/// let errors = params.finish(()).unwrap_err();
/// assert_eq!(errors[0].field, "severity");
/// assert_eq!(errors[0].to_string(), r#"severity: "extreme" is not allowed; allowed: low, medium, high"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The parameter name, e.g. `iac_dir` or `additional_args`.
    pub field: String,
    /// What is wrong: names the (truncated) bad value and what is allowed.
    pub message: String,
}

impl FieldError {
    /// A field error from anything string-like, for plugin-specific checks
    /// (`Params::error` records one directly).
    ///
    /// ```
    /// use toolgate_plugin_sdk::FieldError;
    /// assert_eq!(FieldError::new("dir", "must not be empty").to_string(), "dir: must not be empty");
    /// ```
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A file the tool left in the output directory, size-bounded by the host.
///
/// `truncated` must be passed on to the reader (`output::json_file` does), so a report cut at
/// the limit is an error, never a shorter list of findings.
///
/// ```
/// use toolgate_plugin_sdk::OutputFile;
/// use toolgate_plugin_sdk::output::{ReportError, json_file};
/// let cut = OutputFile { name: "results.json".into(), content: br#"{"results": ["#.to_vec(), truncated: true };
/// let read = json_file::<serde_json::Value>(&cut, "checkov");
/// assert!(matches!(read, Err(ReportError::Truncated { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path relative to the output directory.
    pub name: String,
    /// The file's bytes (maybe cut: see `truncated`).
    pub content: Vec<u8>,
    /// True when the host cut the content at its size limit.
    pub truncated: bool,
}

/// How a run ended, as handed to `parse`.
///
/// `Default` is a run with no exit code and no output, handy as a base in tests.
///
/// ```
/// use toolgate_plugin_sdk::Outcome;
/// use toolgate_plugin_sdk::output::json_stdout;
/// // checkov exits 1 when it found something and prints its report on stdout
/// let outcome = Outcome {
///     exit_code: Some(1),
///     stdout: br#"{"summary": {"failed": 3}}"#.to_vec(),
///     ..Outcome::default()
/// };
/// let report: serde_json::Value = json_stdout(&outcome, "checkov").unwrap();
/// assert_eq!(report["summary"]["failed"], 3);
/// assert!(!outcome.timed_out);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Exit code; `None` when the tool was killed by a signal.
    pub exit_code: Option<i32>,
    /// Whether the host killed the tool at its timeout.
    pub timed_out: bool,
    /// What the tool printed on stdout (maybe cut: see `output_truncated`).
    pub stdout: Vec<u8>,
    /// What the tool printed on stderr (maybe cut: see `output_truncated`).
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was cut at the host's limit.
    pub output_truncated: bool,
    /// Files found in the job's output directory.
    pub files: Vec<OutputFile>,
}

/// The plugin's reading of an outcome.
///
/// Only the plugin knows its tool's exit-code convention; a run that did not finish (killed,
/// or an unexpected code) must be a `ToolError`, never `Clean`.
///
/// ```
/// use toolgate_plugin_sdk::{Classification, Outcome};
/// // a tool that exits 0 when clean and 3 when it found something
/// fn classify(outcome: &Outcome) -> Classification {
///     match (outcome.timed_out, outcome.exit_code) {
///         (false, Some(0)) => Classification::Clean,
///         (false, Some(3)) => Classification::Findings,
///         _ => Classification::ToolError,
///     }
/// }
/// let killed = Outcome { exit_code: None, ..Outcome::default() };
/// assert_eq!(classify(&killed), Classification::ToolError);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// The tool completed and found nothing.
    Clean,
    /// The tool completed and reported findings.
    Findings,
    /// The tool did not complete its work.
    ToolError,
}

/// One normalized finding. Optional fields are `None` when the tool does not report them.
///
/// Build it with `Finding::new` and its setters, which normalize lines, files and URLs on the
/// way in; a struct literal skips those checks.
///
/// ```
/// use toolgate_plugin_sdk::{Finding, Severity};
/// let finding = Finding::new("CKV_AWS_20", "S3 bucket is publicly readable", Severity::High)
///     .resource("aws_s3_bucket", "logs")
///     .location(Some("/storage.tf"), Some(0));
/// assert_eq!(finding.file.as_deref(), Some("/storage.tf"));
/// assert_eq!(finding.line, None); // 0 means "no line" for most tools
/// assert_eq!(finding.documentation_url, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The tool's id of the rule or check, e.g. `CKV_AWS_20`.
    pub rule_id: String,
    /// A short human title of the rule.
    pub title: String,
    /// The normalized severity.
    pub severity: Severity,
    /// What is wrong here; empty when the tool says nothing more than the title.
    pub description: String,
    /// The type of the affected resource, e.g. `aws_s3_bucket`; may be empty.
    pub resource_type: String,
    /// The name of the affected resource, e.g. `logs`; may be empty.
    pub resource_name: String,
    /// The file, as the tool names it (relative to the scanned directory when possible).
    pub file: Option<String>,
    /// The 1-based line in `file`.
    pub line: Option<u32>,
    /// The tool's category (e.g. `networking`); may be empty.
    pub category: String,
    /// An `http(s)` page explaining the rule; never another scheme.
    pub documentation_url: Option<String>,
}

/// The plugin's reading of an outcome: classification, findings and a short message.
///
/// Usually built with `ParseResult::from_findings` or `output::tool_error`; the message
/// carries what a human needs when the classification alone does not say it.
///
/// ```
/// use toolgate_plugin_sdk::{Classification, Finding, ParseResult, Severity};
/// let result = ParseResult::from_findings(vec![Finding::new("AC_AWS_0214", "Open SSH", Severity::High)])
///     .with_note("2 files could not be parsed");
/// assert_eq!(result.classification, Classification::Findings);
/// assert_eq!(result.message.as_deref(), Some("2 files could not be parsed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseResult {
    /// Whether the run was clean, found something, or failed.
    pub classification: Classification,
    /// The normalized findings; none when the run is `Clean`.
    pub findings: Vec<Finding>,
    /// A short explanation for humans, e.g. the tool's error message on tool-error.
    pub message: Option<String>,
}

impl ParseResult {
    /// A tool error without findings.
    ///
    /// ```
    /// use toolgate_plugin_sdk::{Classification, ParseResult};
    /// let result = ParseResult::tool_error("mytool exited with code 2");
    /// assert_eq!(result.classification, Classification::ToolError);
    /// ```
    pub fn tool_error(message: impl Into<String>) -> Self {
        ParseResult {
            classification: Classification::ToolError,
            findings: Vec::new(),
            message: Some(message.into()),
        }
    }
}
