//! Helpers for plugins' native unit tests: a fixed plan context and a readable rendering of a
//! typed argv, so argv tables read as words (`<in:PATH>`, `<out>`, `<req:PATH>` for the typed
//! arguments the host resolves).

use crate::{Arg, PlanContext};

/// A plan context with fixed, recognisable paths.
pub fn sample_context() -> PlanContext {
    PlanContext {
        output_dir: "/srv/out/job-1".to_string(),
        workspace: "/srv/work".to_string(),
        output_root: "/srv/out".to_string(),
    }
}

/// Renders a plan as words: literals as they are, typed paths in angle brackets.
pub fn render_args(args: Vec<Arg>) -> Vec<String> {
    args.into_iter()
        .map(|arg| match arg {
            Arg::Literal(s) => s,
            Arg::InputPath(p) => format!("<in:{p}>"),
            Arg::OutputDir => "<out>".to_string(),
            Arg::RequestedOutputDir(p) => format!("<req:{p}>"),
        })
        .collect()
}
