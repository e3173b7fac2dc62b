//! The `Plugin` trait: the three exports of the WIT world, in plain Rust.
//!
//! A plugin is a type (usually a unit struct) implementing this trait; `export_plugin!` turns it
//! into the component's exports. Invariant: implementations are pure functions of their inputs
//! (the guest has no files, clock or environment) and never panic on input.

use crate::types::{Arg, FieldError, Outcome, ParseResult, PlanContext, ToolDescription};

pub trait Plugin {
    /// Describe the tool. Called once at load time; must depend on nothing but the plugin.
    fn describe() -> ToolDescription;

    /// Validate `params` (a JSON object) and turn it into a typed argv (after argv[0]).
    /// On invalid input return EVERY field error, not just the first.
    fn plan(params: &str, ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>>;

    /// Classify a finished run and extract normalized findings.
    fn parse(outcome: &Outcome) -> ParseResult;
}
