//! Which contract version a component implements, and one calling surface over all of them.
//!
//! At load the runtime reads the version the component itself names (like Zed's extension
//! host): the `toolgate:plugin/types@<version>` interface it imports, or, for a component that
//! imports none, the shape of its exports (`plan-scan` exists only from 0.2.0). It then builds the
//! typed pre-instance of that version alone, which type-checks every export; nothing is tried
//! version after version, so a component is never half-matched to the wrong contract.
//!
//! Invariants: a `PluginPre`'s variant is the version its component was checked against; every
//! call returns the newest contract's types (`bindings::wit`), converted losslessly from a
//! 0.1.0 plugin's (0.1.0 has no field that 0.2.0 lacks); a 0.1.0 plugin is never asked for a
//! call its contract does not have.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre};
use wasmtime::{Engine, Store};

use crate::bindings::{v0_1_0, v0_2_0, wit, wit_v0_1_0 as old};
use crate::store::CallState;
use crate::types::ContractVersion;

/// Prefix of the contract's interface names, before `types@<version>`.
const CONTRACT_INTERFACE_PREFIX: &str = "toolgate:plugin/";
/// The export that exists only from contract 0.2.0 on.
const PLAN_SCAN_EXPORT: &str = "plan-scan";

/// Why a component matches no contract this host implements.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContractMismatch {
    #[error(
        "it imports `{interface}`, a contract version this host does not implement (allowed: \
         {})",
        ContractVersion::ALL.map(|v| v.to_string()).join(", ")
    )]
    UnknownVersion { interface: String },
    #[error("it does not match the {version} world (describe, plan, parse{}): {reason}",
        if *version == ContractVersion::V0_1_0 { "" } else { ", plan-scan" })]
    Exports {
        version: ContractVersion,
        reason: String,
    },
}

/// The version `component` says it implements (see the module docs).
pub(crate) fn detect(
    engine: &Engine,
    component: &Component,
) -> Result<ContractVersion, ContractMismatch> {
    let ty = component.component_type();
    let exports_plan_scan = ty.exports(engine).any(|(name, item)| {
        name == PLAN_SCAN_EXPORT && matches!(item.ty, ComponentItem::ComponentFunc(_))
    });
    version_named_by(ty.imports(engine).map(|(name, _)| name), exports_plan_scan)
}

/// The version named by the first imported contract interface, else the one the exports'
/// shape says.
fn version_named_by<'a>(
    mut imports: impl Iterator<Item = &'a str>,
    exports_plan_scan: bool,
) -> Result<ContractVersion, ContractMismatch> {
    let Some(interface) = imports.find(|name| name.starts_with(CONTRACT_INTERFACE_PREFIX)) else {
        return Ok(if exports_plan_scan {
            ContractVersion::V0_2_0
        } else {
            ContractVersion::V0_1_0
        });
    };
    let version = interface.rsplit_once('@').map_or("", |(_, v)| v);
    ContractVersion::ALL
        .into_iter()
        .find(|known| known.semver() == version)
        .ok_or_else(|| ContractMismatch::UnknownVersion {
            interface: interface.to_owned(),
        })
}

/// A component checked against one contract version, ready to instantiate per call.
pub(crate) enum PluginPre {
    V0_1_0(v0_1_0::PluginPre<CallState>),
    V0_2_0(v0_2_0::PluginPre<CallState>),
}

/// One call's instance.
pub(crate) enum Plugin {
    V0_1_0(v0_1_0::Plugin),
    V0_2_0(v0_2_0::Plugin),
}

impl PluginPre {
    /// Type-checks `instance_pre`'s exports against the `version` world.
    pub(crate) fn new(
        version: ContractVersion,
        instance_pre: InstancePre<CallState>,
    ) -> Result<Self, ContractMismatch> {
        let mismatch = |e: wasmtime::Error| ContractMismatch::Exports {
            version,
            reason: format!("{e:#}"),
        };
        Ok(match version {
            ContractVersion::V0_1_0 => {
                PluginPre::V0_1_0(v0_1_0::PluginPre::new(instance_pre).map_err(mismatch)?)
            }
            ContractVersion::V0_2_0 => {
                PluginPre::V0_2_0(v0_2_0::PluginPre::new(instance_pre).map_err(mismatch)?)
            }
        })
    }

    pub(crate) fn version(&self) -> ContractVersion {
        match self {
            PluginPre::V0_1_0(_) => ContractVersion::V0_1_0,
            PluginPre::V0_2_0(_) => ContractVersion::V0_2_0,
        }
    }

    pub(crate) fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Plugin> {
        Ok(match self {
            PluginPre::V0_1_0(pre) => Plugin::V0_1_0(pre.instantiate(store)?),
            PluginPre::V0_2_0(pre) => Plugin::V0_2_0(pre.instantiate(store)?),
        })
    }
}

/// A field error or a plan: the shape of `plan` and `plan-scan` answers.
pub(crate) type Planned<T> = Result<T, Vec<wit::FieldError>>;

impl Plugin {
    /// `describe`; a 0.1.0 plugin's answer has no scan template types and no version arguments.
    pub(crate) fn call_describe(
        &self,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<wit::ToolDescription> {
        match self {
            Plugin::V0_2_0(plugin) => plugin.call_describe(store),
            Plugin::V0_1_0(plugin) => plugin.call_describe(store).map(description_from_v0_1_0),
        }
    }

    pub(crate) fn call_plan(
        &self,
        store: &mut Store<CallState>,
        params_json: &str,
        context: &wit::PlanContext,
    ) -> wasmtime::Result<Planned<wit::Plan>> {
        match self {
            Plugin::V0_2_0(plugin) => plugin.call_plan(store, params_json, context),
            Plugin::V0_1_0(plugin) => {
                let context = plan_context_to_v0_1_0(context);
                let answer = plugin.call_plan(store, params_json, &context)?;
                Ok(answer
                    .map(plan_from_v0_1_0)
                    .map_err(|errors| errors.into_iter().map(field_error_from_v0_1_0).collect()))
            }
        }
    }

    /// `plan-scan`. The runtime never asks a 0.1.0 plugin (its contract has no such call); if it
    /// did, the call fails without running guest code.
    pub(crate) fn call_plan_scan(
        &self,
        store: &mut Store<CallState>,
        request: &wit::ScanRequest,
        context: &wit::PlanContext,
    ) -> wasmtime::Result<Planned<wit::ScanPlan>> {
        match self {
            Plugin::V0_2_0(plugin) => plugin.call_plan_scan(store, request, context),
            Plugin::V0_1_0(_) => Err(wasmtime::Error::msg(
                "the toolgate:plugin@0.1.0 contract has no plan-scan",
            )),
        }
    }

    /// `parse`. The outcome is lent to a 0.1.0 plugin's call by moving its buffers into the old
    /// type and back, so a large output is never copied on the host.
    pub(crate) fn call_parse(
        &self,
        store: &mut Store<CallState>,
        outcome: &mut wit::Outcome,
    ) -> wasmtime::Result<wit::ParseResult> {
        match self {
            Plugin::V0_2_0(plugin) => plugin.call_parse(store, outcome),
            Plugin::V0_1_0(plugin) => {
                let lent = lend_outcome_to_v0_1_0(outcome);
                let answer = plugin.call_parse(store, &lent);
                restore_outcome_from_v0_1_0(lent, outcome);
                answer.map(parse_result_from_v0_1_0)
            }
        }
    }
}

fn description_from_v0_1_0(d: old::ToolDescription) -> wit::ToolDescription {
    wit::ToolDescription {
        name: d.name,
        version: d.version,
        summary: d.summary,
        executable: d.executable,
        default_timeout_secs: d.default_timeout_secs,
        needs_network: d.needs_network,
        env_vars: d.env_vars,
        params_schema: d.params_schema,
        scan_template_types: Vec::new(),
        version_args: Vec::new(),
    }
}

fn plan_context_to_v0_1_0(context: &wit::PlanContext) -> old::PlanContext {
    old::PlanContext {
        output_dir: context.output_dir.clone(),
        workspace: context.workspace.clone(),
        output_root: context.output_root.clone(),
    }
}

fn plan_from_v0_1_0(plan: old::Plan) -> wit::Plan {
    wit::Plan {
        args: plan
            .args
            .into_iter()
            .map(|arg| match arg {
                old::Arg::Literal(s) => wit::Arg::Literal(s),
                old::Arg::InputPath(s) => wit::Arg::InputPath(s),
                old::Arg::OutputDir => wit::Arg::OutputDir,
                old::Arg::RequestedOutputDir(s) => wit::Arg::RequestedOutputDir(s),
            })
            .collect(),
    }
}

fn field_error_from_v0_1_0(error: old::FieldError) -> wit::FieldError {
    wit::FieldError {
        field: error.field,
        message: error.message,
    }
}

/// Moves `outcome`'s buffers into a 0.1.0 outcome, leaving empty ones behind until
/// [`restore_outcome_from_v0_1_0`] puts them back.
fn lend_outcome_to_v0_1_0(outcome: &mut wit::Outcome) -> old::Outcome {
    old::Outcome {
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        stdout: std::mem::take(&mut outcome.stdout),
        stderr: std::mem::take(&mut outcome.stderr),
        output_truncated: outcome.output_truncated,
        files: std::mem::take(&mut outcome.files)
            .into_iter()
            .map(|file| old::OutputFile {
                name: file.name,
                content: file.content,
                truncated: file.truncated,
            })
            .collect(),
    }
}

fn restore_outcome_from_v0_1_0(lent: old::Outcome, outcome: &mut wit::Outcome) {
    outcome.stdout = lent.stdout;
    outcome.stderr = lent.stderr;
    outcome.files = lent
        .files
        .into_iter()
        .map(|file| wit::OutputFile {
            name: file.name,
            content: file.content,
            truncated: file.truncated,
        })
        .collect();
}

fn parse_result_from_v0_1_0(result: old::ParseResult) -> wit::ParseResult {
    wit::ParseResult {
        classification: match result.classification {
            old::Classification::Clean => wit::Classification::Clean,
            old::Classification::Findings => wit::Classification::Findings,
            old::Classification::ToolError => wit::Classification::ToolError,
        },
        findings: result
            .findings
            .into_iter()
            .map(|f| wit::Finding {
                rule_id: f.rule_id,
                title: f.title,
                severity: match f.severity {
                    old::Severity::Critical => wit::Severity::Critical,
                    old::Severity::High => wit::Severity::High,
                    old::Severity::Medium => wit::Severity::Medium,
                    old::Severity::Low => wit::Severity::Low,
                    old::Severity::Info => wit::Severity::Info,
                },
                description: f.description,
                resource_type: f.resource_type,
                resource_name: f.resource_name,
                file: f.file,
                line: f.line,
                category: f.category,
                documentation_url: f.documentation_url,
            })
            .collect(),
        message: result.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> wit::Outcome {
        wit::Outcome {
            exit_code: Some(3),
            timed_out: false,
            stdout: b"out".to_vec(),
            stderr: b"err".to_vec(),
            output_truncated: true,
            files: vec![wit::OutputFile {
                name: "report.json".into(),
                content: b"{}".to_vec(),
                truncated: false,
            }],
        }
    }

    #[test]
    fn version_detection_table() {
        const WASI: &str = "wasi:io/poll@0.2.6";
        // (imports, exports plan-scan, Ok(version) | Err(text in the reason))
        let cases: &[(&[&str], bool, Result<ContractVersion, &str>)] = &[
            (
                &["toolgate:plugin/types@0.1.0", WASI],
                false,
                Ok(ContractVersion::V0_1_0),
            ),
            (
                &[WASI, "toolgate:plugin/types@0.2.0"],
                true,
                Ok(ContractVersion::V0_2_0),
            ),
            // The imported interface names the version; the exports' shape does not override it
            // (the typed check that follows refuses a mismatch).
            (
                &["toolgate:plugin/types@0.1.0"],
                true,
                Ok(ContractVersion::V0_1_0),
            ),
            (
                &["toolgate:plugin/types@0.2.0"],
                false,
                Ok(ContractVersion::V0_2_0),
            ),
            (&[WASI], false, Ok(ContractVersion::V0_1_0)),
            (&[], true, Ok(ContractVersion::V0_2_0)),
            (
                &["toolgate:plugin/types@0.3.0"],
                true,
                Err(
                    "`toolgate:plugin/types@0.3.0`, a contract version this host does not \
                     implement (allowed: toolgate:plugin@0.1.0, toolgate:plugin@0.2.0)",
                ),
            ),
            (
                &["toolgate:plugin/types"],
                false,
                Err("`toolgate:plugin/types`"),
            ),
            (&["toolgate:plugin/types@0.2"], false, Err("@0.2`")),
        ];
        for (imports, exports_plan_scan, expected) in cases {
            let got = version_named_by(imports.iter().copied(), *exports_plan_scan);
            match (got, expected) {
                (Ok(version), Ok(want)) => assert_eq!(version, *want, "{imports:?}"),
                (Err(error), Err(needle)) => {
                    let text = error.to_string();
                    assert!(text.contains(needle), "{imports:?}: {text}");
                }
                (got, _) => panic!("{imports:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn an_outcome_lent_to_a_0_1_0_call_comes_back_whole() {
        let mut lent_from = outcome();
        let lent = lend_outcome_to_v0_1_0(&mut lent_from);
        assert!(lent_from.stdout.is_empty() && lent_from.files.is_empty());
        assert_eq!(lent.stdout, b"out");
        assert_eq!(lent.files[0].content, b"{}");
        restore_outcome_from_v0_1_0(lent, &mut lent_from);
        let expected = outcome();
        assert_eq!(lent_from.stdout, expected.stdout);
        assert_eq!(lent_from.stderr, expected.stderr);
        assert_eq!(lent_from.files.len(), 1);
        assert_eq!(lent_from.files[0].name, "report.json");
        assert_eq!(lent_from.exit_code, Some(3));
        assert!(lent_from.output_truncated);
    }

    #[test]
    fn a_0_1_0_description_scans_nothing_and_has_no_version_args() {
        let described = description_from_v0_1_0(old::ToolDescription {
            name: "old".into(),
            version: "1.0.0".into(),
            summary: "An old plugin.".into(),
            executable: "old".into(),
            default_timeout_secs: 60,
            needs_network: false,
            env_vars: vec!["HOME".into()],
            params_schema: "{}".into(),
        });
        assert_eq!(described.name, "old");
        assert_eq!(described.env_vars, ["HOME"]);
        assert!(described.scan_template_types.is_empty());
        assert!(described.version_args.is_empty());
    }
}
