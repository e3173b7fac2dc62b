//! toolgate plugin for `template`, built as a `wasm32-wasip2` component.
//!
//! Scaffolded by `toolgate plugin new`: it wraps a tool that scans a directory and prints a SARIF
//! report on stdout (`template --format sarif [--severity LEVEL] [--quiet] <DIR>`). Change the
//! flags, fields and parsing to your tool's; keep the shape:
//! - `plan` (`plan.rs`): every field checked against an allowlist, paths as typed input paths,
//!   extra flags only from an exact-token allowlist, all errors returned together.
//! - `parse` (`parse.rs`): exit codes read strictly, findings from the report, never "clean"
//!   from output that cannot be read.
//! - `describe` (`describe.rs`): the tool and a closed JSON Schema of exactly the fields `plan`
//!   accepts.
//!
//! Build: `just build-plugin template`; test natively: `cargo test -p toolgate-plugin-template`;
//! judge the component: `toolgate plugin check target/plugins/template.wasm`.

mod describe;
mod parse;
mod plan;

use toolgate_plugin_sdk::{
    Arg, FieldError, Outcome, ParseResult, PlanContext, Plugin, ToolDescription,
};

/// The tool's name in URLs and the executable's name.
pub const TOOL: &str = "template";

/// The plugin.
pub struct TemplatePlugin;

impl Plugin for TemplatePlugin {
    fn describe() -> ToolDescription {
        describe::description()
    }

    fn plan(params: &str, ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
        plan::plan(params, ctx)
    }

    // `plan_scan` keeps the SDK's default (refuse every template type): list
    // `scan_template_types` in `describe` and implement it to serve IaC directory scans.

    fn parse(outcome: &Outcome) -> ParseResult {
        parse::parse(outcome)
    }
}

toolgate_plugin_sdk::export_plugin!(TemplatePlugin);
