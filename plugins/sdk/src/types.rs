//! Plain-Rust mirrors of the WIT contract types (`toolgate:plugin@0.2.0`, interface `types`).
//!
//! Plugins are written and tested against these types natively; the wasm glue (`crate::wasm`)
//! converts them one to one to and from the generated WIT bindings. Invariant: every type here
//! has exactly the fields and cases of its WIT counterpart, nothing more, so the conversion is
//! total and lossless. Doc comments summarise the contract; the WIT file is authoritative.

/// Normalized severity of a finding, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

/// What a plugin tells the host about its tool (`describe`).
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// Absolute path of the scan's extracted upload: the job's only input root.
    pub directory: String,
    pub template_type: TemplateType,
    pub template_version: Option<String>,
    pub files: Vec<String>,
    pub folders: Vec<String>,
    /// (name, value) pairs.
    pub variables: Vec<(String, String)>,
    pub variable_files: Vec<String>,
}

/// `plan-scan`'s answer: the argv (after argv[0]) and one sentence per request part not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    pub args: Vec<Arg>,
    /// E.g. "variables: terrascan has no option for Terraform variables; not applied".
    pub not_applied: Vec<String>,
}

/// What the host decided for this call before asking for a plan.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The parameter name, e.g. `iac_dir` or `additional_args`.
    pub field: String,
    /// What is wrong: names the (truncated) bad value and what is allowed.
    pub message: String,
}

impl FieldError {
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path relative to the output directory.
    pub name: String,
    pub content: Vec<u8>,
    /// True when the host cut the content at its size limit.
    pub truncated: bool,
}

/// How a run ended, as handed to `parse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Exit code; `None` when the tool was killed by a signal.
    pub exit_code: Option<i32>,
    /// Whether the host killed the tool at its timeout.
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// True when stdout or stderr was cut at the host's limit.
    pub output_truncated: bool,
    /// Files found in the job's output directory.
    pub files: Vec<OutputFile>,
}

/// The plugin's reading of an outcome.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub description: String,
    pub resource_type: String,
    pub resource_name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub category: String,
    pub documentation_url: Option<String>,
}

/// The plugin's reading of an outcome: classification, findings and a short message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseResult {
    pub classification: Classification,
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
