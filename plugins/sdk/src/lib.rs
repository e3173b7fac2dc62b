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
/// ```text
/// struct MyTool;
/// impl toolgate_plugin_sdk::Plugin for MyTool { /* ... */ }
/// toolgate_plugin_sdk::export_plugin!(MyTool);
/// ```
///
/// Expands to nothing on non-wasm targets.
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
