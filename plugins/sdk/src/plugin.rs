//! The `Plugin` trait: the exports of the WIT world (`toolgate:plugin@0.2.0`), in plain Rust.
//!
//! A plugin is a type (usually a unit struct) implementing this trait; `export_plugin!` turns it
//! into the component's exports. Invariant: implementations are pure functions of their inputs
//! (the guest has no files, clock or environment) and never panic on input.

use crate::types::{
    Arg, FieldError, Outcome, ParseResult, PlanContext, ScanPlan, ScanRequest, ToolDescription,
};

/// The field a refused scan request's error names when the tool scans no templates at all.
///
/// A plugin that scans only some template types uses it too, so callers see one field name
/// for "wrong template type" whatever the plugin.
///
/// ```
/// use toolgate_plugin_sdk::{FieldError, TEMPLATE_TYPE_FIELD, TemplateType};
/// let refuse = |template_type: TemplateType| {
///     FieldError::new(TEMPLATE_TYPE_FIELD, format!("{}: terrascan scans tf and k8s only", template_type.name()))
/// };
/// assert_eq!(refuse(TemplateType::Cft).to_string(), "template-type: cft: terrascan scans tf and k8s only");
/// ```
pub const TEMPLATE_TYPE_FIELD: &str = "template-type";

/// A tool plugin: describes its tool, turns parameters into a typed argv, and reads a run.
///
/// Every method is an associated function of a unit type, with no `self` and no I/O, so the
/// whole plugin is a set of pure functions that native unit tests call directly; the same type
/// becomes the component's exports through `export_plugin!`.
///
/// ```
/// use serde::Deserialize;
/// use toolgate_plugin_sdk::output::{Quote, json_stdout, tool_error};
/// use toolgate_plugin_sdk::testing::{render_args, sample_context};
/// use toolgate_plugin_sdk::{
///     Arg, Argv, FieldError, Finding, Outcome, Params, ParseResult, PlanContext, Plugin, Severity,
///     ToolDescription, ValueRule,
/// };
///
/// struct Checkov;
///
/// const FIELDS: &[&str] = &["directory", "framework"];
/// const FRAMEWORKS: ValueRule = ValueRule::OneOf(&["terraform", "kubernetes"]);
///
/// #[derive(Deserialize)]
/// struct Report { results: Results }
/// #[derive(Deserialize)]
/// struct Results { failed_checks: Vec<Check> }
/// #[derive(Deserialize)]
/// struct Check { check_id: String, check_name: String }
///
/// impl Plugin for Checkov {
///     fn describe() -> ToolDescription {
///         ToolDescription {
///             name: "checkov".into(),
///             version: "0.1.0".into(),
///             summary: "Static analysis of Terraform and Kubernetes templates.".into(),
///             executable: "checkov".into(),
///             default_timeout_secs: 600,
///             needs_network: false,
///             env_vars: Vec::new(),
///             params_schema: r#"{"type":"object","additionalProperties":false,"properties":
///                 {"directory":{"type":"string"},"framework":{"type":"string"}}}"#.into(),
///             scan_template_types: Vec::new(), // plan_scan keeps its refusing default
///             version_args: vec!["--version".into()],
///         }
///     }
///
///     fn plan(params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
///         let mut params = Params::parse(params, FIELDS)?;
///         let directory = params.path("directory").unwrap_or_else(|| ".".into());
///         let framework = params.one("framework", &FRAMEWORKS);
///         let argv = Argv::new()
///             .input_path("-d", &directory)
///             .option_if("--framework", framework.as_deref())
///             .option("-o", "json");
///         params.finish(argv.build())
///     }
///
///     fn parse(outcome: &Outcome) -> ParseResult {
///         // checkov exits 0 when clean and 1 when a check failed; anything else is an error
///         if outcome.timed_out || !matches!(outcome.exit_code, Some(0 | 1)) {
///             return tool_error(outcome, "checkov did not finish", Quote::Stderr);
///         }
///         match json_stdout::<Report>(outcome, "checkov") {
///             Ok(report) => ParseResult::from_findings(
///                 report.results.failed_checks.into_iter()
///                     .map(|check| Finding::new(check.check_id, check.check_name, Severity::Medium))
///                     .collect(),
///             ),
///             Err(error) => ParseResult::tool_error(error.to_string()),
///         }
///     }
/// }
/// toolgate_plugin_sdk::export_plugin!(Checkov); // the wasm exports; nothing on native targets
///
/// // Natively, the plugin is plain Rust:
/// let args = Checkov::plan(r#"{"framework":"terraform"}"#, &sample_context()).unwrap();
/// assert_eq!(render_args(args), ["-d", "<in:.>", "--framework", "terraform", "-o", "json"]);
/// let outcome = Outcome {
///     exit_code: Some(1),
///     stdout: br#"{"results":{"failed_checks":[{"check_id":"CKV_AWS_20","check_name":"S3 bucket is public"}]}}"#.to_vec(),
///     ..Outcome::default()
/// };
/// assert_eq!(Checkov::parse(&outcome).findings[0].rule_id, "CKV_AWS_20");
/// ```
pub trait Plugin {
    /// Describe the tool. Called once at load time; must depend on nothing but the plugin.
    ///
    /// ```
    /// # use serde::Deserialize;
    /// # use toolgate_plugin_sdk::output::{Quote, json_stdout, tool_error};
    /// # use toolgate_plugin_sdk::testing::{render_args, sample_context};
    /// # use toolgate_plugin_sdk::{
    /// #     Arg, Argv, FieldError, Finding, Outcome, Params, ParseResult, PlanContext, Plugin, Severity,
    /// #     ToolDescription, ValueRule,
    /// # };
    /// #
    /// # struct Checkov;
    /// #
    /// # const FIELDS: &[&str] = &["directory", "framework"];
    /// # const FRAMEWORKS: ValueRule = ValueRule::OneOf(&["terraform", "kubernetes"]);
    /// #
    /// # #[derive(Deserialize)]
    /// # struct Report { results: Results }
    /// # #[derive(Deserialize)]
    /// # struct Results { failed_checks: Vec<Check> }
    /// # #[derive(Deserialize)]
    /// # struct Check { check_id: String, check_name: String }
    /// #
    /// # impl Plugin for Checkov {
    /// #     fn describe() -> ToolDescription {
    /// #         ToolDescription {
    /// #             name: "checkov".into(),
    /// #             version: "0.1.0".into(),
    /// #             summary: "Static analysis of Terraform and Kubernetes templates.".into(),
    /// #             executable: "checkov".into(),
    /// #             default_timeout_secs: 600,
    /// #             needs_network: false,
    /// #             env_vars: Vec::new(),
    /// #             params_schema: r#"{"type":"object","additionalProperties":false,"properties":
    /// #                 {"directory":{"type":"string"},"framework":{"type":"string"}}}"#.into(),
    /// #             scan_template_types: Vec::new(), // plan_scan keeps its refusing default
    /// #             version_args: vec!["--version".into()],
    /// #         }
    /// #     }
    /// #
    /// #     fn plan(params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    /// #         let mut params = Params::parse(params, FIELDS)?;
    /// #         let directory = params.path("directory").unwrap_or_else(|| ".".into());
    /// #         let framework = params.one("framework", &FRAMEWORKS);
    /// #         let argv = Argv::new()
    /// #             .input_path("-d", &directory)
    /// #             .option_if("--framework", framework.as_deref())
    /// #             .option("-o", "json");
    /// #         params.finish(argv.build())
    /// #     }
    /// #
    /// #     fn parse(outcome: &Outcome) -> ParseResult {
    /// #         // checkov exits 0 when clean and 1 when a check failed; anything else is an error
    /// #         if outcome.timed_out || !matches!(outcome.exit_code, Some(0 | 1)) {
    /// #             return tool_error(outcome, "checkov did not finish", Quote::Stderr);
    /// #         }
    /// #         match json_stdout::<Report>(outcome, "checkov") {
    /// #             Ok(report) => ParseResult::from_findings(
    /// #                 report.results.failed_checks.into_iter()
    /// #                     .map(|check| Finding::new(check.check_id, check.check_name, Severity::Medium))
    /// #                     .collect(),
    /// #             ),
    /// #             Err(error) => ParseResult::tool_error(error.to_string()),
    /// #         }
    /// #     }
    /// # }
    /// use toolgate_plugin_sdk::testing::assert_schema_lists_exactly;
    /// let description = Checkov::describe();
    /// // the schema agents read must list exactly what `plan` accepts
    /// assert_schema_lists_exactly(&description.params_schema, FIELDS);
    /// assert_eq!(description.version_args, ["--version"]);
    /// ```
    fn describe() -> ToolDescription;

    /// Validate `params` (a JSON object) and turn it into a typed argv (after `argv[0]`).
    /// On invalid input return EVERY field error, not just the first.
    ///
    /// ```
    /// # use serde::Deserialize;
    /// # use toolgate_plugin_sdk::output::{Quote, json_stdout, tool_error};
    /// # use toolgate_plugin_sdk::testing::{render_args, sample_context};
    /// # use toolgate_plugin_sdk::{
    /// #     Arg, Argv, FieldError, Finding, Outcome, Params, ParseResult, PlanContext, Plugin, Severity,
    /// #     ToolDescription, ValueRule,
    /// # };
    /// #
    /// # struct Checkov;
    /// #
    /// # const FIELDS: &[&str] = &["directory", "framework"];
    /// # const FRAMEWORKS: ValueRule = ValueRule::OneOf(&["terraform", "kubernetes"]);
    /// #
    /// # #[derive(Deserialize)]
    /// # struct Report { results: Results }
    /// # #[derive(Deserialize)]
    /// # struct Results { failed_checks: Vec<Check> }
    /// # #[derive(Deserialize)]
    /// # struct Check { check_id: String, check_name: String }
    /// #
    /// # impl Plugin for Checkov {
    /// #     fn describe() -> ToolDescription {
    /// #         ToolDescription {
    /// #             name: "checkov".into(),
    /// #             version: "0.1.0".into(),
    /// #             summary: "Static analysis of Terraform and Kubernetes templates.".into(),
    /// #             executable: "checkov".into(),
    /// #             default_timeout_secs: 600,
    /// #             needs_network: false,
    /// #             env_vars: Vec::new(),
    /// #             params_schema: r#"{"type":"object","additionalProperties":false,"properties":
    /// #                 {"directory":{"type":"string"},"framework":{"type":"string"}}}"#.into(),
    /// #             scan_template_types: Vec::new(), // plan_scan keeps its refusing default
    /// #             version_args: vec!["--version".into()],
    /// #         }
    /// #     }
    /// #
    /// #     fn plan(params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    /// #         let mut params = Params::parse(params, FIELDS)?;
    /// #         let directory = params.path("directory").unwrap_or_else(|| ".".into());
    /// #         let framework = params.one("framework", &FRAMEWORKS);
    /// #         let argv = Argv::new()
    /// #             .input_path("-d", &directory)
    /// #             .option_if("--framework", framework.as_deref())
    /// #             .option("-o", "json");
    /// #         params.finish(argv.build())
    /// #     }
    /// #
    /// #     fn parse(outcome: &Outcome) -> ParseResult {
    /// #         // checkov exits 0 when clean and 1 when a check failed; anything else is an error
    /// #         if outcome.timed_out || !matches!(outcome.exit_code, Some(0 | 1)) {
    /// #             return tool_error(outcome, "checkov did not finish", Quote::Stderr);
    /// #         }
    /// #         match json_stdout::<Report>(outcome, "checkov") {
    /// #             Ok(report) => ParseResult::from_findings(
    /// #                 report.results.failed_checks.into_iter()
    /// #                     .map(|check| Finding::new(check.check_id, check.check_name, Severity::Medium))
    /// #                     .collect(),
    /// #             ),
    /// #             Err(error) => ParseResult::tool_error(error.to_string()),
    /// #         }
    /// #     }
    /// # }
    /// let errors = Checkov::plan(r#"{"directory":"../../etc","framework":"helm"}"#, &sample_context()).unwrap_err();
    /// let fields: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
    /// assert_eq!(fields, ["directory", "framework"]); // both problems, in one answer
    /// ```
    fn plan(params: &str, ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>>;

    /// Plan a scan of `request.directory` as `request.template_type`: the argv, and a
    /// `not_applied` sentence for every request part the tool cannot honour. Field errors (named
    /// after the request's fields: "template-type", "files", ...) when it cannot run at all.
    ///
    /// The default refuses every request: right for a tool whose description lists no
    /// `scan_template_types`.
    ///
    /// ```
    /// # use serde::Deserialize;
    /// # use toolgate_plugin_sdk::output::{Quote, json_stdout, tool_error};
    /// # use toolgate_plugin_sdk::testing::{render_args, sample_context};
    /// # use toolgate_plugin_sdk::{
    /// #     Arg, Argv, FieldError, Finding, Outcome, Params, ParseResult, PlanContext, Plugin, Severity,
    /// #     ToolDescription, ValueRule,
    /// # };
    /// #
    /// # struct Checkov;
    /// #
    /// # const FIELDS: &[&str] = &["directory", "framework"];
    /// # const FRAMEWORKS: ValueRule = ValueRule::OneOf(&["terraform", "kubernetes"]);
    /// #
    /// # #[derive(Deserialize)]
    /// # struct Report { results: Results }
    /// # #[derive(Deserialize)]
    /// # struct Results { failed_checks: Vec<Check> }
    /// # #[derive(Deserialize)]
    /// # struct Check { check_id: String, check_name: String }
    /// #
    /// # impl Plugin for Checkov {
    /// #     fn describe() -> ToolDescription {
    /// #         ToolDescription {
    /// #             name: "checkov".into(),
    /// #             version: "0.1.0".into(),
    /// #             summary: "Static analysis of Terraform and Kubernetes templates.".into(),
    /// #             executable: "checkov".into(),
    /// #             default_timeout_secs: 600,
    /// #             needs_network: false,
    /// #             env_vars: Vec::new(),
    /// #             params_schema: r#"{"type":"object","additionalProperties":false,"properties":
    /// #                 {"directory":{"type":"string"},"framework":{"type":"string"}}}"#.into(),
    /// #             scan_template_types: Vec::new(), // plan_scan keeps its refusing default
    /// #             version_args: vec!["--version".into()],
    /// #         }
    /// #     }
    /// #
    /// #     fn plan(params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    /// #         let mut params = Params::parse(params, FIELDS)?;
    /// #         let directory = params.path("directory").unwrap_or_else(|| ".".into());
    /// #         let framework = params.one("framework", &FRAMEWORKS);
    /// #         let argv = Argv::new()
    /// #             .input_path("-d", &directory)
    /// #             .option_if("--framework", framework.as_deref())
    /// #             .option("-o", "json");
    /// #         params.finish(argv.build())
    /// #     }
    /// #
    /// #     fn parse(outcome: &Outcome) -> ParseResult {
    /// #         // checkov exits 0 when clean and 1 when a check failed; anything else is an error
    /// #         if outcome.timed_out || !matches!(outcome.exit_code, Some(0 | 1)) {
    /// #             return tool_error(outcome, "checkov did not finish", Quote::Stderr);
    /// #         }
    /// #         match json_stdout::<Report>(outcome, "checkov") {
    /// #             Ok(report) => ParseResult::from_findings(
    /// #                 report.results.failed_checks.into_iter()
    /// #                     .map(|check| Finding::new(check.check_id, check.check_name, Severity::Medium))
    /// #                     .collect(),
    /// #             ),
    /// #             Err(error) => ParseResult::tool_error(error.to_string()),
    /// #         }
    /// #     }
    /// # }
    /// use toolgate_plugin_sdk::{ScanRequest, TEMPLATE_TYPE_FIELD, TemplateType};
    /// let request = ScanRequest { directory: "/scans/7".into(), template_type: TemplateType::Tf, template_version: None,
    ///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
    /// // Checkov above keeps the default: every scan request is refused, naming the template type.
    /// let errors = Checkov::plan_scan(&request, &sample_context()).unwrap_err();
    /// assert_eq!(errors[0].field, TEMPLATE_TYPE_FIELD);
    /// assert_eq!(errors[0].message, "tf: this tool cannot scan a directory of templates");
    /// ```
    fn plan_scan(request: &ScanRequest, _ctx: &PlanContext) -> Result<ScanPlan, Vec<FieldError>> {
        Err(vec![FieldError::new(
            TEMPLATE_TYPE_FIELD,
            format!(
                "{}: this tool cannot scan a directory of templates",
                request.template_type.name()
            ),
        )])
    }

    /// Classify a finished run and extract normalized findings.
    ///
    /// It must never mistake a failed run for a clean one: an unexpected exit code or an
    /// unreadable report is a tool error quoting the tool's own words.
    ///
    /// ```
    /// # use serde::Deserialize;
    /// # use toolgate_plugin_sdk::output::{Quote, json_stdout, tool_error};
    /// # use toolgate_plugin_sdk::testing::{render_args, sample_context};
    /// # use toolgate_plugin_sdk::{
    /// #     Arg, Argv, FieldError, Finding, Outcome, Params, ParseResult, PlanContext, Plugin, Severity,
    /// #     ToolDescription, ValueRule,
    /// # };
    /// #
    /// # struct Checkov;
    /// #
    /// # const FIELDS: &[&str] = &["directory", "framework"];
    /// # const FRAMEWORKS: ValueRule = ValueRule::OneOf(&["terraform", "kubernetes"]);
    /// #
    /// # #[derive(Deserialize)]
    /// # struct Report { results: Results }
    /// # #[derive(Deserialize)]
    /// # struct Results { failed_checks: Vec<Check> }
    /// # #[derive(Deserialize)]
    /// # struct Check { check_id: String, check_name: String }
    /// #
    /// # impl Plugin for Checkov {
    /// #     fn describe() -> ToolDescription {
    /// #         ToolDescription {
    /// #             name: "checkov".into(),
    /// #             version: "0.1.0".into(),
    /// #             summary: "Static analysis of Terraform and Kubernetes templates.".into(),
    /// #             executable: "checkov".into(),
    /// #             default_timeout_secs: 600,
    /// #             needs_network: false,
    /// #             env_vars: Vec::new(),
    /// #             params_schema: r#"{"type":"object","additionalProperties":false,"properties":
    /// #                 {"directory":{"type":"string"},"framework":{"type":"string"}}}"#.into(),
    /// #             scan_template_types: Vec::new(), // plan_scan keeps its refusing default
    /// #             version_args: vec!["--version".into()],
    /// #         }
    /// #     }
    /// #
    /// #     fn plan(params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    /// #         let mut params = Params::parse(params, FIELDS)?;
    /// #         let directory = params.path("directory").unwrap_or_else(|| ".".into());
    /// #         let framework = params.one("framework", &FRAMEWORKS);
    /// #         let argv = Argv::new()
    /// #             .input_path("-d", &directory)
    /// #             .option_if("--framework", framework.as_deref())
    /// #             .option("-o", "json");
    /// #         params.finish(argv.build())
    /// #     }
    /// #
    /// #     fn parse(outcome: &Outcome) -> ParseResult {
    /// #         // checkov exits 0 when clean and 1 when a check failed; anything else is an error
    /// #         if outcome.timed_out || !matches!(outcome.exit_code, Some(0 | 1)) {
    /// #             return tool_error(outcome, "checkov did not finish", Quote::Stderr);
    /// #         }
    /// #         match json_stdout::<Report>(outcome, "checkov") {
    /// #             Ok(report) => ParseResult::from_findings(
    /// #                 report.results.failed_checks.into_iter()
    /// #                     .map(|check| Finding::new(check.check_id, check.check_name, Severity::Medium))
    /// #                     .collect(),
    /// #             ),
    /// #             Err(error) => ParseResult::tool_error(error.to_string()),
    /// #         }
    /// #     }
    /// # }
    /// use toolgate_plugin_sdk::Classification;
    /// let crashed = Outcome { exit_code: Some(2), stderr: b"Error: No such file: main.tf".to_vec(), ..Outcome::default() };
    /// let result = Checkov::parse(&crashed);
    /// assert_eq!(result.classification, Classification::ToolError);
    /// assert_eq!(result.message.as_deref(), Some("checkov did not finish: Error: No such file: main.tf"));
    /// let clean = Outcome { exit_code: Some(0), stdout: br#"{"results":{"failed_checks":[]}}"#.to_vec(), ..Outcome::default() };
    /// assert_eq!(Checkov::parse(&clean).classification, Classification::Clean);
    /// ```
    fn parse(outcome: &Outcome) -> ParseResult;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Classification, TemplateType};

    /// A plugin that implements only the 0.1.0-era calls.
    struct NoScans;

    impl Plugin for NoScans {
        fn describe() -> ToolDescription {
            unreachable!("not called by this test")
        }
        fn plan(_params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
            Ok(Vec::new())
        }
        fn parse(_outcome: &Outcome) -> ParseResult {
            ParseResult {
                classification: Classification::Clean,
                findings: Vec::new(),
                message: None,
            }
        }
    }

    #[test]
    fn the_default_plan_scan_refuses_every_template_type_naming_it() {
        for template_type in [TemplateType::Tf, TemplateType::Cft, TemplateType::K8s] {
            let request = ScanRequest {
                directory: "/scans/1".into(),
                template_type,
                template_version: None,
                files: Vec::new(),
                folders: Vec::new(),
                variables: Vec::new(),
                variable_files: Vec::new(),
            };
            let errors = NoScans::plan_scan(&request, &PlanContext::default()).unwrap_err();
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].field, TEMPLATE_TYPE_FIELD);
            assert_eq!(
                errors[0].message,
                format!(
                    "{}: this tool cannot scan a directory of templates",
                    template_type.name()
                )
            );
        }
    }
}
