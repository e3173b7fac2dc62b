//! Helpers for plugins' native unit tests: a fixed plan context and a readable rendering of a
//! typed argv, so argv tables read as words (`<in:PATH>`, `<out>`, `<req:PATH>` for the typed
//! arguments the host resolves).

use crate::{Arg, PlanContext};

/// A plan context with fixed, recognisable paths.
///
/// ```
/// use toolgate_plugin_sdk::testing::sample_context;
/// assert_eq!(sample_context().output_dir, "/srv/out/job-1");
/// ```
pub fn sample_context() -> PlanContext {
    PlanContext {
        output_dir: "/srv/out/job-1".to_string(),
        workspace: "/srv/work".to_string(),
        output_root: "/srv/out".to_string(),
    }
}

/// Renders a plan as words: literals as they are, typed paths in angle brackets.
///
/// ```
/// use toolgate_plugin_sdk::Argv;
/// use toolgate_plugin_sdk::testing::render_args;
/// let argv = Argv::new().input_path("-d", "src").output_dir("-o").build();
/// assert_eq!(render_args(argv), ["-d", "<in:src>", "-o", "<out>"]);
/// ```
pub fn render_args(args: Vec<Arg>) -> Vec<String> {
    args.into_iter()
        .map(|arg| match arg {
            Arg::Literal(s) => s,
            Arg::InputPath(p) => format!("<in:{p}>"),
            Arg::OutputDir => "<out>".to_string(),
            Arg::RequestedOutputDir(p) => format!("<req:{p}>"),
        })
        .collect()
}

/// Asserts that a `params_schema` is a closed JSON object schema whose properties are exactly
/// `fields`, each a string: the schema agents read must match what `plan` accepts.
///
/// ```
/// use toolgate_plugin_sdk::testing::assert_schema_lists_exactly;
/// let schema = r#"{"type":"object","additionalProperties":false,
///                  "properties":{"dir":{"type":"string"}}}"#;
/// assert_schema_lists_exactly(schema, &["dir"]);
/// ```
pub fn assert_schema_lists_exactly(params_schema: &str, fields: &[&str]) {
    let schema: serde_json::Value = serde_json::from_str(params_schema).expect("schema is JSON");
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    let mut properties: Vec<&str> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    properties.sort_unstable();
    let mut expected = fields.to_vec();
    expected.sort_unstable();
    assert_eq!(properties, expected);
    for field in fields {
        assert_eq!(
            schema["properties"][field]["type"],
            serde_json::json!("string"),
            "{field}"
        );
    }
}
