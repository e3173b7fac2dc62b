//! The wasm glue: WIT bindings for `toolgate:plugin@0.2.0` and the conversions between the
//! generated types and the plain types of `crate::types`.
//!
//! Compiled only for `target_arch = "wasm32"`. `export_plugin!` (defined in `lib.rs`) implements
//! the generated `Guest` trait for a hidden type by calling `describe`, `plan`, `plan_scan` and
//! `parse` below,
//! which convert and delegate to a `Plugin`. Invariant: conversions are total and move buffers
//! (stdout, files) instead of copying them.

use crate::plugin::Plugin;
use crate::types;

/// The generated bindings. `export_world!` is the generated export macro; plugins use it only
/// through `export_plugin!`. The generated ABI shims take one parameter per flattened WIT value;
/// the generated items carry the WIT file's own comments, which do not cover every field.
#[allow(clippy::too_many_arguments, missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../../wit/toolgate-plugin-0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "toolgate_plugin_sdk::wasm::bindings",
    });
}

use bindings::toolgate::plugin::types as wit;

pub use bindings::Guest;
pub use wit::{
    FieldError, Outcome, ParseResult, Plan, PlanContext, ScanPlan, ScanRequest, ToolDescription,
};

/// `describe` for `P`, converted to the WIT type.
///
/// Called by the component's `describe` export (see `export_plugin!`); a plugin never calls it
/// itself.
///
/// ```no_run
/// // `no_run`: this module exists only on wasm32, where doctests have no runner.
/// # use toolgate_plugin_sdk::{Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ToolDescription};
/// # struct Semgrep;
/// # impl Plugin for Semgrep {
/// #     fn describe() -> ToolDescription {
/// #         ToolDescription { name: "semgrep".into(), version: "0.1.0".into(), summary: String::new(),
/// #             executable: "semgrep".into(), default_timeout_secs: 300, needs_network: false,
/// #             env_vars: Vec::new(), params_schema: "{}".into(), scan_template_types: Vec::new(),
/// #             version_args: vec!["--version".into()] }
/// #     }
/// #     fn plan(_params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
/// #         Ok(vec![Arg::literal("scan"), Arg::OutputDir])
/// #     }
/// #     fn parse(_outcome: &Outcome) -> ParseResult { ParseResult::from_findings(Vec::new()) }
/// # }
/// let description = toolgate_plugin_sdk::wasm::describe::<Semgrep>();
/// assert_eq!(description.version_args, ["--version"]);
/// ```
pub fn describe<P: Plugin>() -> wit::ToolDescription {
    let d = P::describe();
    wit::ToolDescription {
        name: d.name,
        version: d.version,
        summary: d.summary,
        executable: d.executable,
        default_timeout_secs: d.default_timeout_secs,
        needs_network: d.needs_network,
        env_vars: d.env_vars,
        params_schema: d.params_schema,
        scan_template_types: d
            .scan_template_types
            .into_iter()
            .map(template_type_to_wit)
            .collect(),
        version_args: d.version_args,
    }
}

/// `plan-scan` for `P`, converted to and from the WIT types.
///
/// Called by the component's `plan-scan` export; a plugin implements `Plugin::plan_scan`.
///
/// ```no_run
/// // `no_run`: this module exists only on wasm32, where doctests have no runner.
/// # use toolgate_plugin_sdk::{Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ToolDescription};
/// # struct Semgrep;
/// # impl Plugin for Semgrep {
/// #     fn describe() -> ToolDescription {
/// #         ToolDescription { name: "semgrep".into(), version: "0.1.0".into(), summary: String::new(),
/// #             executable: "semgrep".into(), default_timeout_secs: 300, needs_network: false,
/// #             env_vars: Vec::new(), params_schema: "{}".into(), scan_template_types: Vec::new(),
/// #             version_args: vec!["--version".into()] }
/// #     }
/// #     fn plan(_params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
/// #         Ok(vec![Arg::literal("scan"), Arg::OutputDir])
/// #     }
/// #     fn parse(_outcome: &Outcome) -> ParseResult { ParseResult::from_findings(Vec::new()) }
/// # }
/// use toolgate_plugin_sdk::wasm::{PlanContext as WitContext, ScanRequest as WitRequest};
/// use toolgate_plugin_sdk::wasm::bindings::toolgate::plugin::types::TemplateType;
/// let request = WitRequest { directory: "/scans/7".into(), template_type: TemplateType::Cft, template_version: None,
///     files: vec![], folders: vec![], variables: vec![], variable_files: vec![] };
/// let context = WitContext { output_dir: "/srv/out/job-1".into(), workspace: "/scans/7".into(), output_root: "/srv/out".into() };
/// // Semgrep keeps the default `plan_scan`, which refuses every template type.
/// let errors = toolgate_plugin_sdk::wasm::plan_scan::<Semgrep>(request, context).unwrap_err();
/// assert_eq!(errors[0].field, "template-type");
/// ```
pub fn plan_scan<P: Plugin>(
    request: wit::ScanRequest,
    context: wit::PlanContext,
) -> Result<wit::ScanPlan, Vec<wit::FieldError>> {
    let request = types::ScanRequest {
        directory: request.directory,
        template_type: match request.template_type {
            wit::TemplateType::Tf => types::TemplateType::Tf,
            wit::TemplateType::Cft => types::TemplateType::Cft,
            wit::TemplateType::K8s => types::TemplateType::K8s,
        },
        template_version: request.template_version,
        files: request.files,
        folders: request.folders,
        variables: request.variables,
        variable_files: request.variable_files,
    };
    match P::plan_scan(&request, &plan_context(context)) {
        Ok(scan) => Ok(wit::ScanPlan {
            plan: wit::Plan {
                args: scan.args.into_iter().map(arg_to_wit).collect(),
            },
            not_applied: scan.not_applied,
        }),
        Err(errors) => Err(field_errors_to_wit(errors)),
    }
}

fn plan_context(context: wit::PlanContext) -> types::PlanContext {
    types::PlanContext {
        output_dir: context.output_dir,
        workspace: context.workspace,
        output_root: context.output_root,
    }
}

fn field_errors_to_wit(errors: Vec<types::FieldError>) -> Vec<wit::FieldError> {
    errors
        .into_iter()
        .map(|e| wit::FieldError {
            field: e.field,
            message: e.message,
        })
        .collect()
}

fn template_type_to_wit(template_type: types::TemplateType) -> wit::TemplateType {
    match template_type {
        types::TemplateType::Tf => wit::TemplateType::Tf,
        types::TemplateType::Cft => wit::TemplateType::Cft,
        types::TemplateType::K8s => wit::TemplateType::K8s,
    }
}

/// `plan` for `P`, converted to and from the WIT types.
///
/// Called by the component's `plan` export; a plugin implements `Plugin::plan`.
///
/// ```no_run
/// // `no_run`: this module exists only on wasm32, where doctests have no runner.
/// # use toolgate_plugin_sdk::{Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ToolDescription};
/// # struct Semgrep;
/// # impl Plugin for Semgrep {
/// #     fn describe() -> ToolDescription {
/// #         ToolDescription { name: "semgrep".into(), version: "0.1.0".into(), summary: String::new(),
/// #             executable: "semgrep".into(), default_timeout_secs: 300, needs_network: false,
/// #             env_vars: Vec::new(), params_schema: "{}".into(), scan_template_types: Vec::new(),
/// #             version_args: vec!["--version".into()] }
/// #     }
/// #     fn plan(_params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
/// #         Ok(vec![Arg::literal("scan"), Arg::OutputDir])
/// #     }
/// #     fn parse(_outcome: &Outcome) -> ParseResult { ParseResult::from_findings(Vec::new()) }
/// # }
/// use toolgate_plugin_sdk::wasm::PlanContext as WitContext;
/// use toolgate_plugin_sdk::wasm::bindings::toolgate::plugin::types::Arg as WitArg;
/// let context = WitContext { output_dir: "/srv/out/job-1".into(), workspace: "/srv/work".into(), output_root: "/srv/out".into() };
/// let plan = toolgate_plugin_sdk::wasm::plan::<Semgrep>("{}".into(), context).unwrap();
/// assert!(matches!(plan.args[1], WitArg::OutputDir));
/// ```
pub fn plan<P: Plugin>(
    params_json: String,
    context: wit::PlanContext,
) -> Result<wit::Plan, Vec<wit::FieldError>> {
    match P::plan(&params_json, &plan_context(context)) {
        Ok(args) => Ok(wit::Plan {
            args: args.into_iter().map(arg_to_wit).collect(),
        }),
        Err(errors) => Err(field_errors_to_wit(errors)),
    }
}

/// `parse` for `P`, converted to and from the WIT types.
///
/// Called by the component's `parse` export; the outcome's buffers are moved, not copied.
///
/// ```no_run
/// // `no_run`: this module exists only on wasm32, where doctests have no runner.
/// # use toolgate_plugin_sdk::{Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ToolDescription};
/// # struct Semgrep;
/// # impl Plugin for Semgrep {
/// #     fn describe() -> ToolDescription {
/// #         ToolDescription { name: "semgrep".into(), version: "0.1.0".into(), summary: String::new(),
/// #             executable: "semgrep".into(), default_timeout_secs: 300, needs_network: false,
/// #             env_vars: Vec::new(), params_schema: "{}".into(), scan_template_types: Vec::new(),
/// #             version_args: vec!["--version".into()] }
/// #     }
/// #     fn plan(_params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
/// #         Ok(vec![Arg::literal("scan"), Arg::OutputDir])
/// #     }
/// #     fn parse(_outcome: &Outcome) -> ParseResult { ParseResult::from_findings(Vec::new()) }
/// # }
/// use toolgate_plugin_sdk::wasm::Outcome as WitOutcome;
/// use toolgate_plugin_sdk::wasm::bindings::toolgate::plugin::types::Classification;
/// let outcome = WitOutcome { exit_code: Some(0), timed_out: false, stdout: b"{}".to_vec(), stderr: Vec::new(),
///     output_truncated: false, files: Vec::new() };
/// let result = toolgate_plugin_sdk::wasm::parse::<Semgrep>(outcome);
/// assert!(matches!(result.classification, Classification::Clean));
/// ```
pub fn parse<P: Plugin>(outcome: wit::Outcome) -> wit::ParseResult {
    let outcome = types::Outcome {
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        output_truncated: outcome.output_truncated,
        files: outcome
            .files
            .into_iter()
            .map(|f| types::OutputFile {
                name: f.name,
                content: f.content,
                truncated: f.truncated,
            })
            .collect(),
    };
    let result = P::parse(&outcome);
    wit::ParseResult {
        classification: match result.classification {
            types::Classification::Clean => wit::Classification::Clean,
            types::Classification::Findings => wit::Classification::Findings,
            types::Classification::ToolError => wit::Classification::ToolError,
        },
        findings: result.findings.into_iter().map(finding_to_wit).collect(),
        message: result.message,
    }
}

fn arg_to_wit(arg: types::Arg) -> wit::Arg {
    match arg {
        types::Arg::Literal(token) => wit::Arg::Literal(token),
        types::Arg::InputPath(path) => wit::Arg::InputPath(path),
        types::Arg::OutputDir => wit::Arg::OutputDir,
        types::Arg::RequestedOutputDir(path) => wit::Arg::RequestedOutputDir(path),
    }
}

fn finding_to_wit(f: types::Finding) -> wit::Finding {
    wit::Finding {
        rule_id: f.rule_id,
        title: f.title,
        severity: match f.severity {
            types::Severity::Critical => wit::Severity::Critical,
            types::Severity::High => wit::Severity::High,
            types::Severity::Medium => wit::Severity::Medium,
            types::Severity::Low => wit::Severity::Low,
            types::Severity::Info => wit::Severity::Info,
        },
        description: f.description,
        resource_type: f.resource_type,
        resource_name: f.resource_name,
        file: f.file,
        line: f.line,
        category: f.category,
        documentation_url: f.documentation_url,
    }
}
