//! terrascan's tool description and the JSON Schema (draft 2020-12) of its parameters.
//!
//! Invariant: the schema lists exactly the fields `plan` accepts (`plan::FIELDS`), all strings,
//! with `additionalProperties: false`; each description says the allowed values and the default.

use serde_json::json;
use toolgate_plugin_sdk::ToolDescription;

/// terrascan scans a directory tree locally; five minutes covers large monorepos.
const DEFAULT_TIMEOUT_SECS: u32 = 300;

pub fn description() -> ToolDescription {
    ToolDescription {
        name: "terrascan".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        summary: "Static analysis of infrastructure as code (Terraform, Kubernetes, Helm, \
                  Dockerfile, CloudFormation, ARM, Kustomize) for security misconfigurations."
            .to_string(),
        executable: "terrascan".to_string(),
        default_timeout_secs: DEFAULT_TIMEOUT_SECS,
        // Scanning reads local files; without network terrascan uses the policies already under
        // its home directory (downloaded at install time) and cannot fetch Terraform modules.
        needs_network: false,
        env_vars: Vec::new(),
        params_schema: params_schema(),
        scan_template_types: crate::scan::SCAN_TEMPLATE_TYPES.to_vec(),
        // `terrascan version` prints "version: v1.19.9" and exits 0.
        version_args: vec!["version".to_string()],
    }
}

fn params_schema() -> String {
    let string = |description: &str| json!({"type": "string", "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "terrascan parameters",
        "description": "All fields are optional strings; an empty string means the default.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "scan_type": string("What to scan. \"all\" (default) scans every IaC type with every \
                policy type. An IaC type (arm, cft, docker, helm, k8s, kustomize, terraform, \
                tfplan) becomes -i TYPE; a cloud policy type (aws, azure, gcp, github) becomes -t \
                TYPE. docker and k8s are read as IaC types. Case-insensitive."),
            "iac_dir": string("Directory to scan, relative to the workspace or absolute inside \
                an allowed directory. Default \".\". No '..' components; letters, digits, space \
                and / . _ - + @ , = : ~ only."),
            "policy_type": string("Comma-separated policy types for -t: all, aws, azure, docker, \
                gcp, github, k8s. Default: none (terrascan's default, all)."),
            "output_format": string("Report format for -o: json (default), yaml, xml, junit-xml, \
                sarif, human. Findings are extracted from json and sarif only."),
            "severity": string("Minimum severity to report: low, medium, high \
                (case-insensitive). Default: none (all)."),
            "iac_type": string("IaC type for -i: arm, cft, docker, helm, k8s, kustomize, \
                terraform, tfplan. Default: none. Must agree with scan_type."),
            "iac_version": string("IaC version for --iac-version; requires an IaC type. \
                terraform: v12, v13, v14, v15; helm: v3; kustomize: v2, v3, v4; others: v1. \
                Default: none."),
            "additional_args": string("Extra flags, shell-quoted, from this list only: \
                --show-passed, --non-recursive, --config-only, --config-with-error (both need \
                output_format json or yaml), -v/--verbose, --scan-rules IDS, --skip-rules IDS \
                (comma-separated rule ids like AC_AWS_0214), --categories LIST (comma-separated, \
                from: LOGGING AND MONITORING, COMPLIANCE VALIDATION, RESILIENCE, SECURITY BEST \
                PRACTICES, INFRASTRUCTURE SECURITY, IDENTITY AND ACCESS MANAGEMENT, CONFIGURATION \
                AND VULNERABILITY ANALYSIS, DATA PROTECTION), -l/--log-level LEVEL (debug, info, \
                warn, error, panic, fatal). Both --flag value and --flag=value work. Default: \
                none."),
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
        assert_eq!(description.name, "terrascan");
        assert_eq!(description.default_timeout_secs, 300);
        assert!(!description.needs_network);
        assert_eq!(description.version_args, ["version"]);
        assert_eq!(description.scan_template_types.len(), 3);
    }
}
