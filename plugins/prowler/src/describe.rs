//! prowler's tool description and the JSON Schema (draft 2020-12) of its parameters.
//!
//! Invariant: the schema lists exactly the fields `plan` accepts (`plan::FIELDS`), all strings,
//! with `additionalProperties: false`; each description says the allowed values and the default.

use serde_json::json;
use toolgate_plugin_sdk::ToolDescription;

/// A full AWS account scan runs hundreds of checks across every region: half an hour is normal.
const DEFAULT_TIMEOUT_SECS: u32 = 1800;

/// Credentials and endpoints the cloud SDKs read. The operator decides which are really passed.
const ENV_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

pub fn description() -> ToolDescription {
    ToolDescription {
        name: "prowler".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        summary: "Cloud security posture assessment of AWS, Azure, GCP, Kubernetes, Microsoft \
                  365 and GitHub accounts against hundreds of best-practice checks."
            .to_string(),
        executable: "prowler".to_string(),
        default_timeout_secs: DEFAULT_TIMEOUT_SECS,
        // prowler calls the cloud providers' APIs.
        needs_network: true,
        env_vars: ENV_VARS.iter().map(|name| name.to_string()).collect(),
        params_schema: params_schema(),
        // Cloud accounts, not templates: `plan_scan` refuses every request (`scan.rs`).
        scan_template_types: Vec::new(),
        // `prowler --version` prints "Prowler 5.x.y" and exits 0.
        version_args: vec!["--version".to_string()],
    }
}

fn params_schema() -> String {
    let string = |description: &str| json!({"type": "string", "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "prowler parameters",
        "description": "All fields are optional strings; an empty string means the default.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "provider": string("Cloud provider: aws (default), azure, gcp, kubernetes, m365, \
                github. Case-insensitive."),
            "profile": string("AWS profile name (aws only). Default \"default\", which passes no \
                --profile so the operator's credentials decide."),
            "region": string("AWS regions to scan (aws only), separated by commas or spaces, \
                e.g. \"us-east-1,eu-west-1\". Default: all regions."),
            "checks": string("Check ids to run, separated by commas or spaces, e.g. \
                \"s3_bucket_default_encryption\". Default: all checks."),
            "output_dir": string("Output directory. Default \"/tmp/prowler_output\" (and empty) \
                mean the job's own directory; any other value must be an absolute path inside \
                the server's output root."),
            "output_format": string("Report formats, separated by commas or spaces: json \
                (default; = json-ocsf), json-ocsf, csv, html, json-asff (aws only). json-ocsf \
                is always written because findings are read from it."),
            "additional_args": string("Extra flags, shell-quoted, from this list only: \
                --services/-s LIST, --severity LIST (critical, high, medium, low, \
                informational), --status LIST (PASS, FAIL, MANUAL), --excluded-checks/-e LIST, \
                --excluded-services LIST, --compliance LIST (e.g. cis_2.0_aws), --category LIST, \
                --ignore-exit-code-3/-z, --verbose, --log-level LEVEL (DEBUG, INFO, WARNING, \
                ERROR, CRITICAL), --sp-env-auth and --az-cli-auth (azure, m365), \
                --managed-identity-auth (azure). Lists are space- or comma-separated. Default: \
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
        assert_eq!(description.name, "prowler");
        assert_eq!(description.default_timeout_secs, 1800);
        assert!(description.needs_network);
        assert_eq!(description.env_vars.len(), 13);
        assert!(description.scan_template_types.is_empty());
        assert_eq!(description.version_args, ["--version"]);
    }
}
