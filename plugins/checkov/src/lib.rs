//! toolgate plugin for checkov (IaC static analysis, Python), built as a `wasm32-wasip2`
//! component.
//!
//! - `plan`: parameters -> a typed `checkov --director <dir> -o json --skip-download ...` argv
//!   (`plan.rs`; why `--director` and not `--directory` is explained there).
//! - `parse`: checkov's JSON on stdout (one report, a list of reports, or a bare summary) ->
//!   classification and findings (`parse.rs`).
//! - `describe`: the tool description and the parameters' JSON Schema (`describe.rs`).
//!
//! Invariant: plain Rust on top of the SDK; the logic is unit-tested natively and exported to the
//! component by `export_plugin!`. Nothing here panics on input.

mod describe;
mod parse;
mod plan;

use toolgate_plugin_sdk::{
    Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ToolDescription,
};

/// The checkov plugin.
pub struct Checkov;

impl Plugin for Checkov {
    fn describe() -> ToolDescription {
        describe::description()
    }

    fn plan(params: &str, ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
        plan::plan(params, ctx)
    }

    fn parse(outcome: &Outcome) -> ParseResult {
        parse::parse(outcome)
    }
}

toolgate_plugin_sdk::export_plugin!(Checkov);
