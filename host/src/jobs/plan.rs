//! Turning a caller's parameters into a checked, prepared invocation: plugin `plan`, mapping of
//! the runtime's typed argv onto the sandbox's, and the sandbox's own check (`prepare`).
//!
//! Invariants: nothing runs and nothing is created here (the job's directories are provided by
//! `PlannedJob::provide_dirs` once the job is admitted, so a refused call leaves none behind);
//! the plugin's proposal is only ever executed after the sandbox accepted every argument (this
//! is what stops a hostile plugin asking for `/etc/shadow`); the two crates' `Arg` types are
//! mapped one to one, with no interpretation in between.

use std::path::{Path, PathBuf};
use std::time::Instant;

use toolgate_model::{ScanRequest, TemplateType};

use toolgate_plugin_runtime::{self as runtime, PlanContext, PluginRuntime};
use toolgate_sandbox::{self as sandbox, PlanCheck, PreparedJob, Sandbox};

use super::catalog::ToolEntry;
use super::error::JobError;
use crate::metrics::Metrics;

/// A job ready to run.
#[derive(Debug)]
pub struct PlannedJob {
    pub prepared: PreparedJob,
    /// The full argv for display and records (argv[0] is the binary, or the executable name
    /// when the binary is not installed).
    pub argv: Vec<String>,
    /// `argv` shell-quoted for display; nothing is ever run through a shell.
    pub command: String,
    /// The output directory the caller should know about (when the plan has one); it exists
    /// once `provide_dirs` succeeded.
    pub output_directory: Option<PathBuf>,
    /// The plugin's name, for a refusal at `provide_dirs`.
    tool_name: String,
    /// The caller's parameter a requested output directory came from: the only argument a
    /// refusal at `provide_dirs` can name.
    output_dir_field: Option<String>,
    /// For a scan: the parts of its request the tool does not apply (from `plan-scan`).
    pub not_applied: Vec<String>,
}

impl PlannedJob {
    /// Creates the job's directories, for a job the daemon admitted. A requested output
    /// directory whose name was taken since planning is refused like a refused plan, naming the
    /// caller's parameter; nothing of this job is left behind then.
    pub fn provide_dirs(&mut self, jail: &Sandbox) -> Result<(), JobError> {
        jail.provide_dirs(&mut self.prepared)
            .map_err(|rejection| JobError::PlanRejected {
                tool: self.tool_name.clone(),
                field: rejection
                    .arg_index
                    .and_then(|_| self.output_dir_field.clone()),
                rejection,
            })
    }
}

/// Maps the runtime's argument onto the sandbox's.
pub fn map_arg(arg: &runtime::Arg) -> sandbox::Arg {
    match arg {
        runtime::Arg::Literal(value) => sandbox::Arg::Literal(value.clone()),
        runtime::Arg::InputPath(path) => sandbox::Arg::InputPath(path.clone()),
        runtime::Arg::OutputDir => sandbox::Arg::OutputDir,
        runtime::Arg::RequestedOutputDir(path) => sandbox::Arg::RequestedOutputDir(path.clone()),
    }
}

/// The caller-given text of an argument (none for the host's own output directory).
fn arg_value(arg: &runtime::Arg) -> Option<&str> {
    match arg {
        runtime::Arg::Literal(value)
        | runtime::Arg::InputPath(value)
        | runtime::Arg::RequestedOutputDir(value) => Some(value),
        runtime::Arg::OutputDir => None,
    }
}

/// The caller's parameter a refused argument came from: the one top-level string parameter that
/// is that value or has it among its whitespace-separated words (as `additional_args` does). A
/// plan (WIT 0.1.0) does not say where an argument came from, so the host looks, to name the
/// field the caller must fix; `None` when no parameter, or more than one, matches.
fn source_field(params_json: &str, value: &str) -> Option<String> {
    let params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(params_json).ok()?;
    let mut matching = params.iter().filter(|(_, given)| {
        given.as_str().is_some_and(|given| {
            given == value || given.split_whitespace().any(|word| word == value)
        })
    });
    let (field, _) = matching.next()?;
    matching
        .next()
        .is_none()
        .then(|| field.chars().take(64).collect())
}

/// What a plugin is told about where a job under `policy` runs: the host's output directory
/// for `job_id` (unless the plan requests one), the workspace and the output root.
fn plan_context(policy: &sandbox::SandboxPolicy, job_id: &str) -> PlanContext {
    PlanContext {
        output_dir: policy.output_root.join(job_id),
        workspace: policy.allowed_dirs.first().cloned().unwrap_or_default(),
        output_root: policy.output_root.clone(),
    }
}

/// The plugin's plan for `params_json`, or its field errors as `InvalidParams`.
fn plugin_plan(
    plugins: &PluginRuntime,
    metrics: Option<&Metrics>,
    tool: &ToolEntry,
    context: &PlanContext,
    params_json: &str,
) -> Result<runtime::Plan, JobError> {
    let name = &tool.description.name;
    let started = Instant::now();
    let planned = plugins.plan(name, params_json, context);
    if let Some(metrics) = metrics {
        metrics.record_plugin_call(name, "plan", started.elapsed());
    }
    planned?.map_err(|errors| JobError::InvalidParams {
        tool: name.clone(),
        errors,
    })
}

/// The sandbox's refusal of `plan`, traced to the caller's parameter that carries the refused
/// argument when there is exactly one.
fn plan_rejected(
    tool: &ToolEntry,
    plan: &runtime::Plan,
    params_json: &str,
    rejection: sandbox::PlanRejected,
) -> JobError {
    let field = rejection
        .arg_index
        .and_then(|index| plan.args.get(index))
        .and_then(|arg| source_field(params_json, arg_value(arg)?));
    JobError::PlanRejected {
        tool: tool.description.name.clone(),
        rejection,
        field,
    }
}

/// The full argv: the resolved binary (or, for a tool not installed, its executable's name)
/// and the checked arguments.
fn full_argv(tool: &ToolEntry, args: impl IntoIterator<Item = String>) -> Vec<String> {
    let program = match &tool.binary {
        Ok(path) => path.display().to_string(),
        Err(_) => tool.description.executable.clone(),
    };
    std::iter::once(program).chain(args).collect()
}

/// Asks the plugin for a plan and has the sandbox check and prepare it under `job_id`.
pub fn plan_job(
    plugins: &PluginRuntime,
    jail: &Sandbox,
    metrics: &Metrics,
    tool: &ToolEntry,
    job_id: &str,
    params_json: &str,
) -> Result<PlannedJob, JobError> {
    let context = plan_context(jail.policy(), job_id);
    let plan = plugin_plan(plugins, Some(metrics), tool, &context, params_json)?;
    let args: Vec<sandbox::Arg> = plan.args.iter().map(map_arg).collect();
    // Checks only: the output directory (for plans that pass one to the tool) is created by
    // `provide_dirs`.
    let prepared = jail
        .prepare_planned(job_id, &args)
        .map_err(|rejection| plan_rejected(tool, &plan, params_json, rejection))?;
    let argv = full_argv(tool, prepared.argv.iter().cloned());
    let output_dir_field = plan
        .args
        .iter()
        .find(|arg| matches!(arg, runtime::Arg::RequestedOutputDir(_)))
        .and_then(|arg| source_field(params_json, arg_value(arg)?));
    Ok(PlannedJob {
        command: sandbox::shell_quote(&argv),
        output_directory: prepared
            .has_output_dir()
            .then(|| prepared.output_dir.clone()),
        argv,
        prepared,
        tool_name: tool.description.name.clone(),
        output_dir_field,
        not_applied: Vec::new(),
    })
}

/// The runtime's name for a template type.
pub fn runtime_template_type(kind: TemplateType) -> runtime::TemplateType {
    match kind {
        TemplateType::Tf => runtime::TemplateType::Tf,
        TemplateType::Cft => runtime::TemplateType::Cft,
        TemplateType::K8s => runtime::TemplateType::K8s,
    }
}

/// The runtime's form of a scan request for the directory `tree` (already checked by the
/// model: every path is relative to the upload and has no `..`).
fn runtime_scan_request(request: &ScanRequest, tree: &Path) -> runtime::ScanRequest {
    let parameters = &request.parameters;
    runtime::ScanRequest {
        directory: tree.to_path_buf(),
        template_type: runtime_template_type(request.template_type),
        template_version: request.template_version.clone(),
        files: parameters.files.clone(),
        folders: parameters.folders.clone(),
        variables: parameters
            .variables
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        variable_files: parameters.variable_files.clone(),
    }
}

/// Asks the plugin to plan a scan of `tree` (contract 0.2.0's `plan-scan`) and has the sandbox
/// check and prepare it under `job_id` with `tree` as the job's only input root: its
/// workspace, working directory and the one directory it may read besides its own.
pub fn plan_scan_job(
    plugins: &PluginRuntime,
    jail: &Sandbox,
    metrics: &Metrics,
    tool: &ToolEntry,
    job_id: &str,
    request: &ScanRequest,
    tree: &Path,
) -> Result<PlannedJob, JobError> {
    let name = &tool.description.name;
    let policy = jail.policy();
    let context = PlanContext {
        output_dir: policy.output_root.join(job_id),
        workspace: tree.to_path_buf(),
        output_root: policy.output_root.clone(),
    };
    let started = Instant::now();
    let planned = plugins.plan_scan(name, &runtime_scan_request(request, tree), &context);
    metrics.record_plugin_call(name, "plan-scan", started.elapsed());
    let runtime::ScanPlan { plan, not_applied } =
        planned?.map_err(|errors| JobError::InvalidParams {
            tool: name.clone(),
            errors,
        })?;
    let args: Vec<sandbox::Arg> = plan.args.iter().map(map_arg).collect();
    let prepared = jail
        .prepare_planned_in(job_id, &args, tree)
        // A scan's arguments come from its request's checked paths, not from free-form
        // parameters: no field to trace a refusal to.
        .map_err(|rejection| plan_rejected(tool, &plan, "{}", rejection))?;
    let argv = full_argv(tool, prepared.argv.iter().cloned());
    Ok(PlannedJob {
        command: sandbox::shell_quote(&argv),
        output_directory: prepared
            .has_output_dir()
            .then(|| prepared.output_dir.clone()),
        argv,
        prepared,
        tool_name: name.clone(),
        output_dir_field: None,
        not_applied,
    })
}

/// What `plugin dry-run` prints: the invocation `plan_job` would prepare.
#[derive(Debug)]
pub struct DryRunJob {
    /// The full argv (argv[0] is the binary, or the executable name when it is not installed).
    pub argv: Vec<String>,
    /// `argv` shell-quoted for display.
    pub command: String,
    /// The output directory a run would create (when the plan has one).
    pub output_directory: Option<PathBuf>,
}

/// `plan_job` for `plugin dry-run`: the same plugin call and the sandbox's same checks, through
/// `PlanCheck`, which creates nothing (no output directory, no private directory, no root).
pub fn dry_run_job(
    plugins: &PluginRuntime,
    check: &PlanCheck,
    tool: &ToolEntry,
    job_id: &str,
    params_json: &str,
) -> Result<DryRunJob, JobError> {
    let context = plan_context(check.policy(), job_id);
    let plan = plugin_plan(plugins, None, tool, &context, params_json)?;
    let args: Vec<sandbox::Arg> = plan.args.iter().map(map_arg).collect();
    let checked = check
        .check_planned(job_id, &args)
        .map_err(|rejection| plan_rejected(tool, &plan, params_json, rejection))?;
    let argv = full_argv(tool, checked.argv);
    Ok(DryRunJob {
        command: sandbox::shell_quote(&argv),
        output_directory: checked.has_output_dir.then_some(checked.output_dir),
        argv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_value_is_traced_to_the_one_parameter_that_carries_it() {
        let table: &[(&str, &str, Option<&str>)] = &[
            (
                r#"{"iac_dir": "/etc", "scan_type": "all"}"#,
                "/etc",
                Some("iac_dir"),
            ),
            (
                r#"{"additional_args": "-d /etc --verbose"}"#,
                "/etc",
                Some("additional_args"),
            ),
            // Two parameters carry it: naming either could mislead.
            (
                r#"{"iac_dir": "/etc", "additional_args": "-d /etc"}"#,
                "/etc",
                None,
            ),
            // Only part of a word: not this parameter's value.
            (r#"{"iac_dir": "/etc/x"}"#, "/etc", None),
            (r#"{"iac_dir": "terraform"}"#, "/etc", None),
            (r#"{"n": 5}"#, "5", None),
            ("not json", "/etc", None),
        ];
        for (params, value, field) in table {
            assert_eq!(
                source_field(params, value).as_deref(),
                *field,
                "{params} {value}"
            );
        }
    }

    #[test]
    fn every_runtime_arg_maps_to_its_sandbox_twin() {
        let table = [
            (
                runtime::Arg::Literal("-t".into()),
                sandbox::Arg::Literal("-t".into()),
            ),
            (
                runtime::Arg::InputPath("/etc/shadow".into()),
                sandbox::Arg::InputPath("/etc/shadow".into()),
            ),
            (runtime::Arg::OutputDir, sandbox::Arg::OutputDir),
            (
                runtime::Arg::RequestedOutputDir("out".into()),
                sandbox::Arg::RequestedOutputDir("out".into()),
            ),
        ];
        for (from, expected) in table {
            assert_eq!(map_arg(&from), expected, "{from:?}");
        }
    }
}
