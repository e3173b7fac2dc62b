//! The runtime's public data types: plain Rust, no wasmtime in sight, so the daemon can store,
//! serialize and map them without knowing how plugins run.
//!
//! Invariant: these mirror the newest WIT contract (`toolgate:plugin@0.2.0`) field for field, and
//! say which version a plugin implements (`ContractVersion`); a 0.1.0 plugin's answers are
//! expressed in them (with no scan template types and no version arguments). Values here have
//! already passed the runtime's size bounds (see `limits`).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// What a plugin says about its tool (validated at load: name, executable, env var names and
/// params-schema).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDescription {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// Executable NAME (a plain file name); the operator maps it to a path.
    pub executable: String,
    pub default_timeout_secs: u32,
    pub needs_network: bool,
    pub env_vars: Vec<String>,
    /// JSON Schema of the params object, parsed.
    pub params_schema: serde_json::Value,
    /// The contract version the plugin implements (read from the component at load).
    pub contract: ContractVersion,
    /// Template types `plan_scan` accepts, without duplicates; empty: the tool cannot scan a
    /// directory (always empty for a 0.1.0 plugin).
    pub scan_template_types: Vec<TemplateType>,
    /// Arguments that make the tool print its version and exit 0, which the host runs once under
    /// the sandbox to check the tool can start (checked at load: see
    /// `loader::MAX_VERSION_ARGS`). Empty for a 0.1.0 plugin: the tool is not probed.
    pub version_args: Vec<String>,
}

/// A plugin contract version this runtime implements, i.e. `toolgate:plugin@<version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ContractVersion {
    /// describe, plan, parse.
    #[serde(rename = "0.1.0")]
    V0_1_0,
    /// 0.1.0 plus plan-scan, scan template types and version arguments.
    #[serde(rename = "0.2.0")]
    V0_2_0,
}

impl ContractVersion {
    /// Every version, oldest first.
    pub const ALL: [ContractVersion; 2] = [ContractVersion::V0_1_0, ContractVersion::V0_2_0];

    /// The semver of the WIT package, e.g. "0.2.0".
    pub fn semver(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => "0.1.0",
            ContractVersion::V0_2_0 => "0.2.0",
        }
    }

    /// Whether plugins of this version answer `plan_scan`.
    pub fn has_plan_scan(self) -> bool {
        self >= ContractVersion::V0_2_0
    }
}

impl fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "toolgate:plugin@{}", self.semver())
    }
}

/// A kind of infrastructure-as-code template a directory scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateType {
    /// Terraform (HCL).
    Tf,
    /// AWS CloudFormation.
    Cft,
    /// Kubernetes manifests.
    K8s,
}

/// "Scan this directory as this template type", asked of a 0.2.0 plugin by `plan_scan`. The
/// daemon validates every part before asking; the runtime passes it through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanRequest {
    /// Absolute path of the scan's extracted upload: the job's workspace and its only input root.
    pub directory: PathBuf,
    pub template_type: TemplateType,
    pub template_version: Option<String>,
    /// Relative to `directory`; the daemon has checked that each lies inside it.
    pub files: Vec<String>,
    /// Relative to `directory`; the daemon has checked that each lies inside it.
    pub folders: Vec<String>,
    /// (name, value) pairs, in the caller's order.
    pub variables: Vec<(String, String)>,
    /// Relative to `directory`; the daemon has checked that each lies inside it.
    pub variable_files: Vec<String>,
}

/// `plan_scan`'s answer: the invocation and one sentence per request part not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanPlan {
    pub plan: Plan,
    /// E.g. "variables: terrascan has no option for Terraform variables; not applied".
    pub not_applied: Vec<String>,
}

/// What the host decided for a call before asking for a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanContext {
    pub output_dir: PathBuf,
    pub workspace: PathBuf,
    pub output_root: PathBuf,
}

/// One typed argv token. The runtime passes paths through unchanged: the sandbox checks them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arg {
    Literal(String),
    InputPath(String),
    OutputDir,
    RequestedOutputDir(String),
}

/// A plugin's proposed invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub args: Vec<Arg>,
}

/// One problem with one parameter, as reported by the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A file the tool left in its output directory, size-bounded by the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputFile {
    pub name: String,
    pub content: Vec<u8>,
    pub truncated: bool,
}

/// How a run ended, handed to `parse`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub output_truncated: bool,
    pub files: Vec<OutputFile>,
}

/// The plugin's reading of an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Clean,
    Findings,
    ToolError,
}

/// Normalized severity, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

/// One normalized finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// `parse`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseResult {
    pub classification: Classification,
    pub findings: Vec<Finding>,
    pub message: Option<String>,
}

/// A plugin call that did not produce an answer. The plugin stays loaded: the next call gets a
/// fresh instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("plugin `{plugin}` {call}() failed: {reason}")]
pub struct CallError {
    pub plugin: String,
    /// "describe", "plan", "plan-scan" or "parse".
    pub call: &'static str,
    pub reason: CallFailure,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallFailure {
    /// No loaded plugin has this tool name.
    UnknownTool,
    /// The call ran past its deadline and was interrupted.
    Deadline { ms: u64 },
    /// The plugin tried to grow its memory past the cap.
    MemoryLimit { bytes: u64 },
    /// The plugin used up its instruction budget.
    FuelExhausted,
    /// The plugin trapped (panic, `unreachable`, bad memory access, ...).
    Trap(String),
    /// The plugin answered, but with more than the host accepts.
    ResultTooLarge(String),
    /// No instance could be created (e.g. every pool slot is busy).
    Instantiate(String),
    /// The plugin implements a contract version without this call (e.g. `plan-scan` of a
    /// 0.1.0 plugin). Nothing ran.
    NotInContract { contract: ContractVersion },
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallFailure::UnknownTool => write!(f, "no such tool is loaded"),
            CallFailure::Deadline { ms } => write!(f, "exceeded its {ms} ms deadline"),
            CallFailure::MemoryLimit { bytes } => {
                write!(f, "exceeded its memory limit of {bytes} bytes")
            }
            CallFailure::FuelExhausted => write!(f, "exhausted its fuel budget"),
            CallFailure::Trap(reason) => write!(f, "trapped: {reason}"),
            CallFailure::ResultTooLarge(what) => write!(f, "returned too large a result: {what}"),
            CallFailure::Instantiate(reason) => write!(f, "could not be instantiated: {reason}"),
            CallFailure::NotInContract { contract } => write!(
                f,
                "is not implemented: the plugin implements {contract}, which has no such call \
                 (directory scans need toolgate:plugin@0.2.0 or later)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_error_display_names_plugin_call_and_reason() {
        let cases = [
            (
                CallFailure::Deadline { ms: 1000 },
                "plugin `terrascan` plan() failed: exceeded its 1000 ms deadline",
            ),
            (
                CallFailure::MemoryLimit { bytes: 64 },
                "plugin `terrascan` plan() failed: exceeded its memory limit of 64 bytes",
            ),
            (
                CallFailure::UnknownTool,
                "plugin `terrascan` plan() failed: no such tool is loaded",
            ),
            (
                CallFailure::Trap("unreachable".into()),
                "plugin `terrascan` plan() failed: trapped: unreachable",
            ),
        ];
        for (reason, expected) in cases {
            let error = CallError {
                plugin: "terrascan".into(),
                call: "plan",
                reason,
            };
            assert_eq!(error.to_string(), expected);
        }
        let error = CallError {
            plugin: "old".into(),
            call: "plan-scan",
            reason: CallFailure::NotInContract {
                contract: ContractVersion::V0_1_0,
            },
        };
        assert_eq!(
            error.to_string(),
            "plugin `old` plan-scan() failed: is not implemented: the plugin implements \
             toolgate:plugin@0.1.0, which has no such call (directory scans need \
             toolgate:plugin@0.2.0 or later)"
        );
    }

    #[test]
    fn contract_versions_and_template_types_serialize_as_their_names() {
        let cases = [
            (
                serde_json::to_value(ContractVersion::V0_1_0).unwrap(),
                "0.1.0",
            ),
            (
                serde_json::to_value(ContractVersion::V0_2_0).unwrap(),
                "0.2.0",
            ),
            (serde_json::to_value(TemplateType::Tf).unwrap(), "tf"),
            (serde_json::to_value(TemplateType::Cft).unwrap(), "cft"),
            (serde_json::to_value(TemplateType::K8s).unwrap(), "k8s"),
        ];
        for (value, expected) in cases {
            assert_eq!(value, serde_json::json!(expected));
        }
        assert!(!ContractVersion::V0_1_0.has_plan_scan());
        assert!(ContractVersion::V0_2_0.has_plan_scan());
        assert_eq!(ContractVersion::V0_2_0.to_string(), "toolgate:plugin@0.2.0");
    }

    #[test]
    fn enums_serialize_as_snake_case_words() {
        let cases = [
            (
                serde_json::to_value(Severity::Critical).unwrap(),
                "critical",
            ),
            (serde_json::to_value(Severity::Info).unwrap(), "info"),
            (
                serde_json::to_value(Classification::ToolError).unwrap(),
                "tool_error",
            ),
            (
                serde_json::to_value(Classification::Clean).unwrap(),
                "clean",
            ),
            (
                serde_json::to_value(CallFailure::FuelExhausted).unwrap(),
                "fuel_exhausted",
            ),
            (serde_json::to_value(Arg::OutputDir).unwrap(), "output_dir"),
        ];
        for (value, expected) in cases {
            assert_eq!(value, serde_json::json!(expected));
        }
        assert_eq!(
            serde_json::to_value(Arg::InputPath("a".into())).unwrap(),
            serde_json::json!({"input_path": "a"})
        );
    }
}
