//! Validates the SARIF this crate writes against the official SARIF 2.1.0 JSON schema
//! (`tests/fixtures/sarif-schema-2.1.0.json`, provenance in `tests/fixtures/README.md`),
//! offline: the schema is compiled into the test, and its `$ref`s are all internal.
//!
//! A negative control proves the validator rejects what the schema forbids, so a pass means
//! something.

use serde_json::{Value, json};
use toolgate_iac_api::sarif::sarif_log;
use toolgate_model::{Finding, Severity};

const SCHEMA: &str = include_str!("fixtures/sarif-schema-2.1.0.json");

/// The official schema's two `language` patterns (of `run` and `toolComponent`),
/// `^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`, have a stray `]`. ECMA-262 (Annex B) reads it as a literal `]`, but `jsonschema` checks every
/// `pattern` against the draft-07 meta-schema's `format: regex` strictly and refuses to compile
/// the schema. So the test escapes that `]` in memory (`\]`: the same language under
/// ECMA-262) and leaves the fixture file byte-for-byte official. Nothing else is changed, and
/// our logs write no `language`.
const STRAY_BRACKET_PATTERN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
const ESCAPED_BRACKET_PATTERN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#;

fn validator() -> jsonschema::Validator {
    assert_eq!(
        SCHEMA.matches(STRAY_BRACKET_PATTERN).count(),
        2,
        "the official schema's two `language` patterns with a stray `]`"
    );
    let patched = SCHEMA.replace(STRAY_BRACKET_PATTERN, ESCAPED_BRACKET_PATTERN);
    let schema: Value = serde_json::from_str(&patched).expect("the schema is JSON");
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

fn errors(validator: &jsonschema::Validator, log: &Value) -> Vec<String> {
    validator
        .iter_errors(log)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

fn finding(
    rule_id: &str,
    severity: Severity,
    file: Option<&str>,
    line: Option<u32>,
    documentation_url: Option<&str>,
) -> Finding {
    Finding {
        rule_id: rule_id.to_string(),
        title: format!("{rule_id} title"),
        severity,
        description: format!("{rule_id} description"),
        resource_type: "aws_s3_bucket".to_string(),
        resource_name: "logs".to_string(),
        file: file.map(str::to_string),
        line,
        category: "Data Protection".to_string(),
        documentation_url: documentation_url.map(str::to_string),
    }
}

#[test]
fn every_kind_of_output_validates_against_the_official_schema() {
    let validator = validator();
    let cases: Vec<(&str, Vec<Finding>)> = vec![
        ("no findings", vec![]),
        (
            "findings with lines",
            vec![
                finding(
                    "AC_AWS_0207",
                    Severity::Critical,
                    Some("main.tf"),
                    Some(12),
                    Some("https://docs.example/a"),
                ),
                finding(
                    "AC_AWS_0214",
                    Severity::Medium,
                    Some("dev/app.tf"),
                    Some(1),
                    None,
                ),
            ],
        ),
        (
            "findings without lines or files",
            vec![
                finding(
                    "CKV_AWS_18",
                    Severity::Low,
                    Some("modules/s3 bucket/main.tf"),
                    None,
                    None,
                ),
                finding("CKV_AWS_19", Severity::Info, None, None, Some("not a url")),
                finding(
                    "CKV_AWS_20",
                    Severity::High,
                    Some("c:/odd#name?.tf"),
                    Some(0),
                    Some("https://"),
                ),
            ],
        ),
    ];
    for (name, findings) in cases {
        let log = serde_json::from_slice::<Value>(
            &sarif_log("terrascan", Some("1.19.9"), &findings).to_bytes(),
        )
        .expect("the log is JSON");
        assert_eq!(
            errors(&validator, &log),
            Vec::<String>::new(),
            "{name}: {log:#}"
        );
        let results = log["runs"][0]["results"].as_array().map_or(0, Vec::len);
        assert_eq!(results, findings.len(), "{name}");
    }
}

/// A name and a change that makes a valid log invalid.
type Mutation = (&'static str, fn(&mut Value));

#[test]
fn the_validator_rejects_what_the_schema_forbids() {
    let validator = validator();
    let valid = serde_json::from_slice::<Value>(
        &sarif_log(
            "checkov",
            None,
            &[finding(
                "R",
                Severity::High,
                Some("a.tf"),
                Some(3),
                Some("https://docs.example/r"),
            )],
        )
        .to_bytes(),
    )
    .expect("JSON");
    assert!(errors(&validator, &valid).is_empty());
    let mutations: [Mutation; 5] = [
        ("helpUri not a URI", |log| {
            log["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"] = json!("not a uri")
        }),
        ("startLine 0", |log| {
            log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] =
                json!(0)
        }),
        ("unknown level", |log| {
            log["runs"][0]["results"][0]["level"] = json!("fatal")
        }),
        ("wrong version", |log| log["version"] = json!("2.0.0")),
        ("no driver name", |log| {
            if let Some(driver) = log["runs"][0]["tool"]["driver"].as_object_mut() {
                driver.remove("name");
            }
        }),
    ];
    for (name, mutate) in mutations {
        let mut broken = valid.clone();
        mutate(&mut broken);
        assert!(
            !errors(&validator, &broken).is_empty(),
            "{name} should be refused"
        );
    }
}
