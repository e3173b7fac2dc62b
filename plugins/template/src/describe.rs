//! The tool's description and the JSON Schema (draft 2020-12) of its parameters.
//!
//! Invariant: the schema lists exactly `plan::FIELDS`, all strings, with
//! `additionalProperties: false`, and says each field's allowed values and default.

use serde_json::json;
use toolgate_plugin_sdk::ToolDescription;

use crate::TOOL;
use crate::plan::SEVERITIES;

/// How long a scan normally needs; the operator may override it per tool.
const DEFAULT_TIMEOUT_SECS: u32 = 120;

pub fn description() -> ToolDescription {
    ToolDescription {
        name: TOOL.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        summary: "Scans a directory and reports findings (replace with one sentence about your \
                  tool for humans and AI agents)."
            .to_string(),
        executable: TOOL.to_string(),
        default_timeout_secs: DEFAULT_TIMEOUT_SECS,
        // Ask for the network only when the tool cannot work without it.
        needs_network: false,
        // Name only the variables the tool needs (credentials); the operator filters them again.
        env_vars: Vec::new(),
        params_schema: params_schema(),
        scan_template_types: Vec::new(),
        version_args: vec!["--version".to_string()],
    }
}

fn params_schema() -> String {
    let string = |description: String| json!({"type": "string", "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("{TOOL} parameters"),
        "description": "All fields are optional strings; an empty string means the default.",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "target": string("Directory to scan, relative to the workspace or absolute inside an \
                allowed directory. Default \".\". No '..' components.".to_string()),
            "severity": string(format!("Lowest severity to report: {}. Default: the tool's.",
                SEVERITIES.join(", "))),
            "additional_args": string("Extra flags, shell-quoted, from this list only: \
                -q/--quiet. Default: none.".to_string()),
        }
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::testing::assert_schema_lists_exactly;

    #[test]
    fn the_schema_lists_exactly_the_fields_plan_accepts() {
        assert_schema_lists_exactly(&description().params_schema, crate::plan::FIELDS);
    }
}
