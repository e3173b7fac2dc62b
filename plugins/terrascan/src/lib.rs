//! toolgate plugin for terrascan (IaC static analysis), built as a `wasm32-wasip2` component.
//!
//! - `plan`: HexStrike-compatible parameters -> a typed `terrascan scan ...` argv (`plan.rs`).
//! - `plan_scan`: a directory scan request (template type, version, files, folders) -> a typed
//!   `terrascan scan -i TYPE ...` argv and the parts not applied (`scan.rs`).
//! - `parse`: terrascan's JSON (or SARIF) report -> classification and findings (`parse.rs`).
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

/// The terrascan plugin.
pub struct Terrascan;

impl Plugin for Terrascan {
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

toolgate_plugin_sdk::export_plugin!(Terrascan);
