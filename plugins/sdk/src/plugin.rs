//! The `Plugin` trait: the exports of the WIT world (`toolgate:plugin@0.2.0`), in plain Rust.
//!
//! A plugin is a type (usually a unit struct) implementing this trait; `export_plugin!` turns it
//! into the component's exports. Invariant: implementations are pure functions of their inputs
//! (the guest has no files, clock or environment) and never panic on input.

use crate::types::{
    Arg, FieldError, Outcome, ParseResult, PlanContext, ScanPlan, ScanRequest, ToolDescription,
};

/// The field a refused scan request's error names when the tool scans no templates at all.
pub const TEMPLATE_TYPE_FIELD: &str = "template-type";

pub trait Plugin {
    /// Describe the tool. Called once at load time; must depend on nothing but the plugin.
    fn describe() -> ToolDescription;

    /// Validate `params` (a JSON object) and turn it into a typed argv (after argv[0]).
    /// On invalid input return EVERY field error, not just the first.
    fn plan(params: &str, ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>>;

    /// Plan a scan of `request.directory` as `request.template_type`: the argv, and a
    /// `not_applied` sentence for every request part the tool cannot honour. Field errors (named
    /// after the request's fields: "template-type", "files", ...) when it cannot run at all.
    ///
    /// The default refuses every request: right for a tool whose description lists no
    /// `scan_template_types`.
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
