//! `toolgate plugin check FILE.wasm`: loads one component the way the daemon would and judges
//! what an author can get wrong: size, contract version and exports, `describe` output, the
//! parameters schema, and whether each call answers (and answers fast) on ordinary and odd input.
//!
//! Invariants: every problem is a sentence naming what is wrong and what is expected; a file
//! with any problem fails (`CheckReport::passed` is false); notes never fail a file. The
//! component is compiled in memory with the runtime's default limits, so a plugin that passes
//! here loads under the daemon's defaults.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use toolgate_plugin_runtime::{
    ContractVersion, MAX_PLUGIN_BYTES, Outcome, PlanContext, PluginRuntime, RuntimeConfig,
    ScanRequest, ToolDescription,
};

/// Above this a component is flagged as a note: every daemon start compiles it (or reads its
/// cached artefact), and the shipped plugins are 0.3-0.6 MB.
pub const LARGE_PLUGIN_BYTES: u64 = 16 << 20;
/// Longest acceptable compile-and-describe: the daemon loads every plugin before it listens.
pub const SLOW_LOAD: Duration = Duration::from_secs(20);
/// Longest acceptable `plan`: it runs on every request before anything else; the shipped
/// plugins plan in tens of microseconds, so 50 ms means something is badly wrong.
pub const SLOW_PLAN: Duration = Duration::from_millis(50);
/// Longest acceptable `parse` of an empty run: real reports take longer, an empty one should not.
pub const SLOW_PARSE: Duration = Duration::from_millis(200);
/// A parameter name no plugin declares: `plan` must refuse it with a field error.
const UNKNOWN_FIELD: &str = "toolgate_check_unknown_field";
/// The newest contract; an older one still loads but lacks plan-scan and the version probe.
const NEWEST_CONTRACT: ContractVersion = ContractVersion::V0_2_0;

/// The verdict on one component.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub file: PathBuf,
    pub size_bytes: u64,
    pub tool: Option<String>,
    pub contract: Option<ContractVersion>,
    pub load_ms: Option<u64>,
    pub plan_us: Option<u64>,
    pub parse_us: Option<u64>,
    /// Each makes the verdict FAIL.
    pub problems: Vec<String>,
    /// Worth knowing; never fails the verdict.
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The human verdict: `PASS`/`FAIL`, the figures, then one line per problem and note.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} {} ({} bytes{}{}{}{})\n",
            if self.passed() { "PASS" } else { "FAIL" },
            self.file.display(),
            self.size_bytes,
            self.tool
                .as_ref()
                .map(|t| format!(", tool {t}"))
                .unwrap_or_default(),
            self.contract
                .map(|c| format!(", contract {}", c.semver()))
                .unwrap_or_default(),
            self.load_ms
                .map(|ms| format!(", load {ms} ms"))
                .unwrap_or_default(),
            match (self.plan_us, self.parse_us) {
                (Some(plan), Some(parse)) => format!(", plan {plan} us, parse {parse} us"),
                _ => String::new(),
            }
        );
        for problem in &self.problems {
            out.push_str(&format!("problem: {problem}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}

/// Loads `path` and runs every check; see the module docs.
pub fn check_plugin(path: &Path) -> CheckReport {
    let mut report = CheckReport {
        file: path.to_owned(),
        size_bytes: 0,
        tool: None,
        contract: None,
        load_ms: None,
        plan_us: None,
        parse_us: None,
        problems: Vec::new(),
        notes: Vec::new(),
    };
    match std::fs::metadata(path) {
        Ok(meta) => report.size_bytes = meta.len(),
        Err(error) => {
            report
                .problems
                .push(format!("cannot read the file: {error}"));
            return report;
        }
    }
    if report.size_bytes > MAX_PLUGIN_BYTES {
        report.problems.push(format!(
            "the component is {} bytes; the runtime loads at most {MAX_PLUGIN_BYTES}",
            report.size_bytes
        ));
        return report;
    } else if report.size_bytes > LARGE_PLUGIN_BYTES {
        report.notes.push(format!(
            "the component is {} bytes (over {LARGE_PLUGIN_BYTES}); build with --release and \
             opt-level 3, and check what pulls in so much code",
            report.size_bytes
        ));
    }
    let mut runtime = match PluginRuntime::new(RuntimeConfig::default(), None) {
        Ok(runtime) => runtime,
        Err(error) => {
            report
                .problems
                .push(format!("cannot start the plugin runtime: {error}"));
            return report;
        }
    };
    let started = Instant::now();
    let tool = match runtime.load_file(path) {
        Ok(tool) => tool,
        Err(error) => {
            report.problems.push(format!("does not load: {error}"));
            return report;
        }
    };
    let load = started.elapsed();
    report.load_ms = Some(millis(load));
    if load > SLOW_LOAD {
        report.problems.push(format!(
            "loading took {} ms; at most {} ms allowed (the daemon loads every plugin before it listens)",
            millis(load),
            millis(SLOW_LOAD)
        ));
    }
    let Some(description) = runtime.describe(&tool) else {
        report
            .problems
            .push("loaded but has no description".to_string());
        return report;
    };
    report.tool = Some(tool.clone());
    report.contract = Some(description.contract);
    check_description(&description, &mut report);
    check_calls(&runtime, &description, &mut report);
    report
}

fn check_description(description: &ToolDescription, report: &mut CheckReport) {
    if description.contract < NEWEST_CONTRACT {
        report.notes.push(format!(
            "implements toolgate:plugin@{}; @{} adds plan-scan (IaC directory scans) and \
             version-args (the start-up probe)",
            description.contract.semver(),
            NEWEST_CONTRACT.semver()
        ));
    } else if description.version_args.is_empty() {
        report.problems.push(
            "describe: version-args is empty; name the arguments that make the tool print its \
             version and exit 0 (e.g. [\"--version\"]) so the host can probe it at start-up"
                .to_string(),
        );
    }
    report
        .problems
        .extend(schema_problems(&description.params_schema));
}

/// The schema must be a valid JSON Schema and a CLOSED object: agents read it to learn the
/// parameters, and `plan` must refuse anything it does not list.
pub fn schema_problems(schema: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(error) = jsonschema::meta::validate(schema) {
        problems.push(format!("params-schema is not a valid JSON Schema: {error}"));
        return problems;
    }
    if let Err(error) = jsonschema::validator_for(schema) {
        problems.push(format!("params-schema cannot be compiled: {error}"));
    }
    if schema.get("type") != Some(&serde_json::json!("object")) {
        problems.push("params-schema: \"type\" must be \"object\"".to_string());
    }
    if schema.get("additionalProperties") != Some(&serde_json::json!(false)) {
        problems.push(
            "params-schema: \"additionalProperties\" must be false (list every parameter; plan \
             refuses the rest)"
                .to_string(),
        );
    }
    if !schema.get("properties").is_some_and(|p| p.is_object()) {
        problems.push("params-schema: \"properties\" must be an object".to_string());
    }
    problems
}

fn check_calls(runtime: &PluginRuntime, description: &ToolDescription, report: &mut CheckReport) {
    let tool = description.name.as_str();
    let context = PlanContext {
        output_dir: PathBuf::from("/toolgate-check/out/job"),
        workspace: PathBuf::from("/toolgate-check/work"),
        output_root: PathBuf::from("/toolgate-check/out"),
    };
    let started = Instant::now();
    match runtime.plan(tool, "{}", &context) {
        Ok(_) => {}
        Err(error) => report.problems.push(format!("plan({{}}): {error}")),
    }
    let plan = started.elapsed();
    report.plan_us = Some(micros(plan));
    if plan > SLOW_PLAN {
        report.problems.push(format!(
            "plan({{}}) took {} us; at most {} us allowed (plan runs on every request)",
            micros(plan),
            micros(SLOW_PLAN)
        ));
    }
    let unknown = serde_json::json!({ UNKNOWN_FIELD: "x" }).to_string();
    match runtime.plan(tool, &unknown, &context) {
        Ok(Ok(_)) => report.problems.push(format!(
            "plan accepted the unknown parameter {UNKNOWN_FIELD:?}; refuse every field the \
             schema does not list (Params::parse does)"
        )),
        Ok(Err(_)) => {}
        Err(error) => report
            .problems
            .push(format!("plan(unknown field): {error}")),
    }
    let empty_run = Outcome {
        exit_code: Some(0),
        ..Outcome::default()
    };
    let started = Instant::now();
    if let Err(error) = runtime.parse(tool, &empty_run) {
        report.problems.push(format!("parse(empty run): {error}"));
    }
    let parse = started.elapsed();
    report.parse_us = Some(micros(parse));
    if parse > SLOW_PARSE {
        report.problems.push(format!(
            "parse(empty run) took {} us; at most {} us allowed",
            micros(parse),
            micros(SLOW_PARSE)
        ));
    }
    let garbage = Outcome {
        exit_code: Some(1),
        stdout: b"\x00\xff{not json".to_vec(),
        stderr: b"Traceback (most recent call last):".to_vec(),
        ..Outcome::default()
    };
    if let Err(error) = runtime.parse(tool, &garbage) {
        report
            .problems
            .push(format!("parse(garbage output): {error}"));
    }
    for template_type in &description.scan_template_types {
        let request = ScanRequest {
            directory: PathBuf::from("/toolgate-check/scan"),
            template_type: *template_type,
            template_version: None,
            files: Vec::new(),
            folders: Vec::new(),
            variables: Vec::new(),
            variable_files: Vec::new(),
        };
        match runtime.plan_scan(tool, &request, &context) {
            Ok(Ok(_)) => {}
            Ok(Err(errors)) => report.problems.push(format!(
                "describe lists scan template type {template_type:?} but plan-scan refuses a plain \
                 request for it: {}",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Err(error) => report.problems.push(format!("plan-scan: {error}")),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_rules() {
        let closed = json!({"type":"object","additionalProperties":false,"properties":{"a":{"type":"string"}}});
        let table: &[(serde_json::Value, usize)] = &[
            (closed, 0),
            (json!({"type":"object","properties":{}}), 1),
            (
                json!({"type":"array","additionalProperties":false,"properties":{}}),
                1,
            ),
            (json!({"type":"object","additionalProperties":false}), 1),
            (json!({"type":"nonsense"}), 1),
            (
                json!({"type":"object","additionalProperties":false,"properties":{"a":{"minLength":-1}}}),
                1,
            ),
        ];
        for (schema, problems) in table {
            assert_eq!(
                schema_problems(schema).len(),
                *problems,
                "{schema}: {:?}",
                schema_problems(schema)
            );
        }
    }

    #[test]
    fn a_missing_file_fails_with_the_reason() {
        let report = check_plugin(Path::new("/nonexistent/x.wasm"));
        assert!(!report.passed());
        assert!(
            report.problems[0].starts_with("cannot read the file"),
            "{:?}",
            report.problems
        );
        assert!(report.render().starts_with("FAIL /nonexistent/x.wasm"));
    }
}
