//! checkov's tool description and the JSON Schema (draft 2020-12) of its parameters.
//!
//! Invariants: the schema lists exactly the fields `plan` accepts (`plan::FIELDS`), all strings,
//! with `additionalProperties: false`; each description says the allowed values and the default.
//! The tool asks for no network and no environment variable: checkov scans local files offline
//! (`--skip-download`), and the variables it would read (`BC_API_KEY`, `PRISMA_API_URL`,
//! `DOWNLOAD_EXTERNAL_MODULES`, `CKV_*`, ...) could only add network calls or change the scan
//! behind the caller's back.

use serde_json::json;
use toolgate_plugin_sdk::ToolDescription;

use crate::plan::FRAMEWORKS;

/// checkov starts slowly (a Python interpreter importing hundreds of checks: ~5-10 s on a small
/// directory) and runs every framework by default; five minutes covers a large repository.
const DEFAULT_TIMEOUT_SECS: u32 = 300;

pub fn description() -> ToolDescription {
    ToolDescription {
        name: "checkov".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        summary: "Static analysis of infrastructure as code (Terraform, CloudFormation, \
                  Kubernetes, Helm, Dockerfile, ARM, Bicep, CI pipelines, ...) and of committed \
                  secrets, with checkov's built-in checks, offline."
            .to_string(),
        executable: "checkov".to_string(),
        default_timeout_secs: DEFAULT_TIMEOUT_SECS,
        // Offline: `--skip-download` is always passed and no API key is ever given.
        needs_network: false,
        env_vars: Vec::new(),
        params_schema: params_schema(),
        scan_template_types: crate::scan::SCAN_TEMPLATE_TYPES.to_vec(),
        // `checkov --version` prints the version ("3.2.445") and exits 0.
        version_args: vec!["--version".to_string()],
    }
}

fn params_schema() -> String {
    let string = |description: String| json!({"type": "string", "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "checkov parameters",
        "description": "All fields are optional strings; an empty string means the default.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "directory": string("Directory to scan, relative to the workspace or absolute inside \
                an allowed directory. Default \".\" (the workspace). No '..' components; letters, \
                digits, space and / . _ - + @ , = : ~ only.".to_string()),
            "framework": string(format!("Frameworks to scan, separated by commas or spaces \
                (case-insensitive): {}. \"all\" must be alone. Default: none (checkov scans \
                every framework).", FRAMEWORKS.join(", "))),
            "check": string("Only run these checks: checkov check ids separated by commas or \
                spaces, e.g. \"CKV_AWS_24,CKV2_AWS_6\". Default: none (all checks).".to_string()),
            "skip_check": string("Skip these checks: checkov check ids separated by commas or \
                spaces. None may also be in check. Default: none.".to_string()),
            "additional_args": string("Extra flags, shell-quoted, from this list only: --compact, \
                --quiet (report failed checks only), -s/--soft-fail, --skip-framework LIST \
                (comma-separated frameworks, not \"all\", none of those in framework), \
                --skip-resources-without-violations. --flag=value works too. Default: none."
                .to_string()),
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FIELDS;
    use toolgate_plugin_sdk::testing::assert_schema_lists_exactly;

    #[test]
    fn schema_lists_exactly_the_plan_fields() {
        let description = description();
        assert_schema_lists_exactly(&description.params_schema, FIELDS);
        assert_eq!(description.name, "checkov");
        assert_eq!(description.executable, "checkov");
        assert_eq!(description.default_timeout_secs, 300);
        assert!(!description.needs_network);
        assert!(description.env_vars.is_empty());
        assert_eq!(description.version_args, ["--version"]);
        assert_eq!(description.scan_template_types.len(), 3);
    }
}
