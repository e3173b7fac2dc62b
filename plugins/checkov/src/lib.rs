//! toolgate plugin for checkov (IaC static analysis, Python), built as a `wasm32-wasip2`
//! component.
//!
//! - `plan`: parameters -> a typed `checkov --director <dir> -o json --skip-download ...` argv
//!   (`plan.rs`; why `--director` and not `--directory` is explained there).
//! - `plan_scan`: a directory scan request -> the same safe argv shape with `--framework` from
//!   the template type, and the parts not applied (`scan.rs`).
//! - `parse`: checkov's JSON on stdout (one report, a list of reports, or a bare summary) ->
//!   classification and findings (`parse.rs`).
//! - `describe`: the tool description and the parameters' JSON Schema (`describe.rs`).
//!
//! Invariant: plain Rust on top of the SDK; the logic is unit-tested natively and exported to the
//! component by `export_plugin!`. Nothing here panics on input.

mod describe;
mod parse;
mod plan;
mod scan;

use toolgate_plugin_sdk::{
    Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ScanPlan, ScanRequest,
    ToolDescription,
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

    fn plan_scan(request: &ScanRequest, _ctx: &PlanContext) -> Result<ScanPlan, Vec<FieldError>> {
        scan::plan_scan(request)
    }

    fn parse(outcome: &Outcome) -> ParseResult {
        parse::parse(outcome)
    }
}

toolgate_plugin_sdk::export_plugin!(Checkov);
