//! toolgate plugin for prowler v5 (cloud security posture), built as a `wasm32-wasip2` component.
//!
//! - `plan`: HexStrike-compatible parameters -> a typed `prowler PROVIDER ...` argv (`plan.rs`).
//! - `parse`: the OCSF report prowler writes into the job's output directory -> classification
//!   and findings (`parse.rs`).
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

/// The prowler plugin.
pub struct Prowler;

impl Plugin for Prowler {
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

toolgate_plugin_sdk::export_plugin!(Prowler);
