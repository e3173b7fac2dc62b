//! toolgate plugin SDK: write a toolgate tool plugin in plain Rust.
//!
//! - `types`: plain mirrors of the WIT contract types (`toolgate:plugin@0.2.0`).
//! - `Plugin`: the trait a plugin implements (`describe`, `plan`, `plan_scan`, `parse`).
//! - `scan`: helpers for `plan_scan` (request paths as typed input paths).
//! - `Params`: reads the parameters object and collects every field error.
//! - `value`: allowlist validators (word sets, ASCII patterns, paths) with bounded, escaped
//!   error messages.
//! - `args`: `additional_args` splitting (shell-like, no shell) and the exact-token flag
//!   allowlist.
//! - `argv`: `Argv`, a typed argv builder (input paths and output directories as typed tokens).
//! - `finding`: `Finding` builders and normalizers (line numbers, relative files, safe URLs).
//! - `severity`: severity words and SARIF levels -> `Severity`.
//! - `output`: reading a run (JSON from stdout or files, tool errors quoting stderr, notes).
//! - `sarif`: SARIF 2.1.0 reports -> findings.
//! - `export_plugin!`: on `wasm32`, exports a `Plugin` as the component's `describe`/`plan`/
//!   `plan-scan`/`parse`; on native targets it expands to nothing, so the same crate is unit-tested natively.
//!
//! Invariant: nothing here panics on input; every rejection is a value, never a trap.

#![warn(missing_docs)]

pub mod args;
pub mod argv;
pub mod finding;
pub mod output;
pub mod params;
pub mod plugin;
pub mod sarif;
pub mod scan;
mod severity;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod text;
pub mod types;
pub mod value;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use args::{AcceptedFlag, FlagSpec, Takes};
pub use argv::Argv;
pub use output::Quote;
pub use params::Params;
pub use plugin::{Plugin, TEMPLATE_TYPE_FIELD};
pub use text::{Shown, output_tail};
pub use types::{
    Arg, Classification, FieldError, Finding, Outcome, OutputFile, ParseResult, PlanContext,
    ScanPlan, ScanRequest, Severity, TemplateType, ToolDescription,
};
pub use value::{Pattern, ValueError, ValueRule, ascii_token};

/// Exports a `Plugin` implementation as the component's WIT exports.
///
/// Use it once, at the top level of the plugin crate's `lib.rs`. It expands to nothing on
/// non-wasm targets, so the plugin's native unit tests (and this example) call the trait's
/// functions directly and the same code is what the component exports.
///
/// ```
/// use toolgate_plugin_sdk::output::{Quote, tool_error};
/// use toolgate_plugin_sdk::testing::render_args;
/// use toolgate_plugin_sdk::{
///     Arg, Argv, Classification, FieldError, Outcome, Params, ParseResult, PlanContext, Plugin,
///     ToolDescription,
/// };
///
/// struct Tfsec;
///
/// impl Plugin for Tfsec {
///     fn describe() -> ToolDescription {
///         ToolDescription {
///             name: "tfsec".into(),
///             version: "0.1.0".into(),
///             summary: "Security scanner for Terraform code.".into(),
///             executable: "tfsec".into(),
///             default_timeout_secs: 120,
///             needs_network: false,
///             env_vars: Vec::new(),
///             params_schema: r#"{"type":"object","additionalProperties":false,
///                 "properties":{"directory":{"type":"string"}}}"#.into(),
///             scan_template_types: Vec::new(),
///             version_args: vec!["--version".into()],
///         }
///     }
///     fn plan(params: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
///         let mut params = Params::parse(params, &["directory"])?;
///         let directory = params.path("directory").unwrap_or_else(|| ".".into());
///         params.finish(Argv::new().positional_path(&directory).option("--format", "sarif").build())
///     }
///     fn parse(outcome: &Outcome) -> ParseResult {
///         tool_error(outcome, "not implemented in this example", Quote::Stderr)
///     }
/// }
///
/// toolgate_plugin_sdk::export_plugin!(Tfsec);
///
/// let args = Tfsec::plan(r#"{"directory":"modules"}"#, &PlanContext::default()).unwrap();
/// assert_eq!(render_args(args), ["<in:modules>", "--format", "sarif"]);
/// let result = Tfsec::parse(&Outcome::default());
/// assert_eq!(result.classification, Classification::ToolError);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct ToolgateGuest;
            impl $crate::wasm::Guest for ToolgateGuest {
                fn describe() -> $crate::wasm::ToolDescription {
                    $crate::wasm::describe::<$plugin>()
                }
                fn plan(
                    params_json: ::std::string::String,
                    context: $crate::wasm::PlanContext,
                ) -> ::core::result::Result<
                    $crate::wasm::Plan,
                    ::std::vec::Vec<$crate::wasm::FieldError>,
                > {
                    $crate::wasm::plan::<$plugin>(params_json, context)
                }
                fn plan_scan(
                    request: $crate::wasm::ScanRequest,
                    context: $crate::wasm::PlanContext,
                ) -> ::core::result::Result<
                    $crate::wasm::ScanPlan,
                    ::std::vec::Vec<$crate::wasm::FieldError>,
                > {
                    $crate::wasm::plan_scan::<$plugin>(request, context)
                }
                fn parse(outcome: $crate::wasm::Outcome) -> $crate::wasm::ParseResult {
                    $crate::wasm::parse::<$plugin>(outcome)
                }
            }
            $crate::wasm::bindings::export_world!(ToolgateGuest with_types_in $crate::wasm::bindings);
        };
    };
}
