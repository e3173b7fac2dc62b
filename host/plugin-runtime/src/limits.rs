//! Bounds on what a plugin may hand back, and the conversions between the WIT types and the
//! public ones that enforce them.
//!
//! Invariant: a value of a public type produced here satisfies every bound below; an answer over
//! a bound is refused whole (a `CallFailure::ResultTooLarge` naming the bound), never truncated,
//! because a silently shortened argv or findings list would be wrong rather than smaller.

use crate::bindings::wit;
use crate::types::{
    Arg, Classification, FieldError, Finding, Outcome, OutputFile, ParseResult, Plan, PlanContext,
    ScanPlan, ScanRequest, Severity, TemplateType,
};

/// Most argv tokens a plan may have: far above any real tool invocation, far below what would
/// strain `execve` or the job store.
pub const MAX_PLAN_ARGS: usize = 4096;
/// Most argv bytes a plan may have: Linux refuses an argv much past 2 MiB anyway (ARG_MAX).
pub const MAX_PLAN_ARGV_BYTES: usize = 1 << 20;
/// Most field errors one plan may report: a params object with more bad fields is an attack.
pub const MAX_FIELD_ERRORS: usize = 1000;
/// Most bytes of field-error text: each error is returned to the HTTP caller.
pub const MAX_FIELD_ERROR_BYTES: usize = 1 << 20;
/// Most findings one parse may report: real scans of large accounts stay well below this.
pub const MAX_FINDINGS: usize = 100_000;
/// Most bytes of finding text (all string fields of all findings): findings go to the job store.
pub const MAX_FINDINGS_BYTES: usize = 64 << 20;
/// Most bytes of the parse message: it is a short explanation for humans.
pub const MAX_PARSE_MESSAGE_BYTES: usize = 64 << 10;
/// Most not-applied sentences one scan plan may carry: one per request part (files, folders,
/// variables, ...) or per value at worst; each is reported to the caller.
pub const MAX_NOT_APPLIED: usize = 1000;
/// Most bytes of not-applied text: it goes into the scan's results as `errorDetails`.
pub const MAX_NOT_APPLIED_BYTES: usize = 64 << 10;

/// Checks a plugin's plan against the argv bounds and converts it.
pub(crate) fn checked_plan(plan: wit::Plan) -> Result<Plan, String> {
    if plan.args.len() > MAX_PLAN_ARGS {
        return Err(format!(
            "{} argv tokens; at most {MAX_PLAN_ARGS} allowed",
            plan.args.len()
        ));
    }
    let argv_bytes: usize = plan.args.iter().map(arg_bytes).sum();
    if argv_bytes > MAX_PLAN_ARGV_BYTES {
        return Err(format!(
            "{argv_bytes} argv bytes; at most {MAX_PLAN_ARGV_BYTES} allowed"
        ));
    }
    Ok(Plan {
        args: plan.args.into_iter().map(public_arg).collect(),
    })
}

/// Checks a plugin's scan plan: its plan against the argv bounds (as `checked_plan`), its
/// not-applied sentences against theirs.
pub(crate) fn checked_scan_plan(scan: wit::ScanPlan) -> Result<ScanPlan, String> {
    if scan.not_applied.len() > MAX_NOT_APPLIED {
        return Err(format!(
            "{} not-applied sentences; at most {MAX_NOT_APPLIED} allowed",
            scan.not_applied.len()
        ));
    }
    let text_bytes: usize = scan.not_applied.iter().map(String::len).sum();
    if text_bytes > MAX_NOT_APPLIED_BYTES {
        return Err(format!(
            "{text_bytes} bytes of not-applied sentences; at most {MAX_NOT_APPLIED_BYTES} allowed"
        ));
    }
    Ok(ScanPlan {
        plan: checked_plan(scan.plan)?,
        not_applied: scan.not_applied,
    })
}

/// Checks a plugin's field errors against their bounds and converts them.
pub(crate) fn checked_field_errors(
    errors: Vec<wit::FieldError>,
) -> Result<Vec<FieldError>, String> {
    if errors.len() > MAX_FIELD_ERRORS {
        return Err(format!(
            "{} field errors; at most {MAX_FIELD_ERRORS} allowed",
            errors.len()
        ));
    }
    let text_bytes: usize = errors.iter().map(|e| e.field.len() + e.message.len()).sum();
    if text_bytes > MAX_FIELD_ERROR_BYTES {
        return Err(format!(
            "{text_bytes} bytes of field errors; at most {MAX_FIELD_ERROR_BYTES} allowed"
        ));
    }
    Ok(errors
        .into_iter()
        .map(|e| FieldError {
            field: e.field,
            message: e.message,
        })
        .collect())
}

/// Checks a plugin's parse result against the findings bounds and converts it.
pub(crate) fn checked_parse_result(result: wit::ParseResult) -> Result<ParseResult, String> {
    if result.findings.len() > MAX_FINDINGS {
        return Err(format!(
            "{} findings; at most {MAX_FINDINGS} allowed",
            result.findings.len()
        ));
    }
    let text_bytes: usize = result.findings.iter().map(finding_bytes).sum();
    if text_bytes > MAX_FINDINGS_BYTES {
        return Err(format!(
            "{text_bytes} bytes of findings; at most {MAX_FINDINGS_BYTES} allowed"
        ));
    }
    let message_bytes = result.message.as_ref().map_or(0, String::len);
    if message_bytes > MAX_PARSE_MESSAGE_BYTES {
        return Err(format!(
            "a {message_bytes}-byte message; at most {MAX_PARSE_MESSAGE_BYTES} allowed"
        ));
    }
    Ok(ParseResult {
        classification: match result.classification {
            wit::Classification::Clean => Classification::Clean,
            wit::Classification::Findings => Classification::Findings,
            wit::Classification::ToolError => Classification::ToolError,
        },
        findings: result.findings.into_iter().map(public_finding).collect(),
        message: result.message,
    })
}

/// The WIT plan context. Paths that are not UTF-8 are passed lossily: the host created them.
pub(crate) fn wit_plan_context(context: &PlanContext) -> wit::PlanContext {
    wit::PlanContext {
        output_dir: context.output_dir.to_string_lossy().into_owned(),
        workspace: context.workspace.to_string_lossy().into_owned(),
        output_root: context.output_root.to_string_lossy().into_owned(),
    }
}

/// The WIT scan request. The directory is passed lossily when not UTF-8: the host created it.
pub(crate) fn wit_scan_request(request: &ScanRequest) -> wit::ScanRequest {
    wit::ScanRequest {
        directory: request.directory.to_string_lossy().into_owned(),
        template_type: wit_template_type(request.template_type),
        template_version: request.template_version.clone(),
        files: request.files.clone(),
        folders: request.folders.clone(),
        variables: request.variables.clone(),
        variable_files: request.variable_files.clone(),
    }
}

pub(crate) fn wit_template_type(template_type: TemplateType) -> wit::TemplateType {
    match template_type {
        TemplateType::Tf => wit::TemplateType::Tf,
        TemplateType::Cft => wit::TemplateType::Cft,
        TemplateType::K8s => wit::TemplateType::K8s,
    }
}

pub(crate) fn public_template_type(template_type: wit::TemplateType) -> TemplateType {
    match template_type {
        wit::TemplateType::Tf => TemplateType::Tf,
        wit::TemplateType::Cft => TemplateType::Cft,
        wit::TemplateType::K8s => TemplateType::K8s,
    }
}

/// The WIT outcome; a copy, since the guest receives its own.
pub(crate) fn wit_outcome(outcome: &Outcome) -> wit::Outcome {
    wit::Outcome {
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        stdout: outcome.stdout.clone(),
        stderr: outcome.stderr.clone(),
        output_truncated: outcome.output_truncated,
        files: outcome
            .files
            .iter()
            .map(|file| wit::OutputFile {
                name: file.name.clone(),
                content: file.content.clone(),
                truncated: file.truncated,
            })
            .collect(),
    }
}

/// The WIT outcome, moved: nothing is copied.
pub(crate) fn into_wit_outcome(outcome: Outcome) -> wit::Outcome {
    wit::Outcome {
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        output_truncated: outcome.output_truncated,
        files: outcome
            .files
            .into_iter()
            .map(|file| wit::OutputFile {
                name: file.name,
                content: file.content,
                truncated: file.truncated,
            })
            .collect(),
    }
}

/// The outcome lent to a call by [`into_wit_outcome`], moved back.
pub(crate) fn from_wit_outcome(outcome: wit::Outcome) -> Outcome {
    Outcome {
        exit_code: outcome.exit_code,
        timed_out: outcome.timed_out,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        output_truncated: outcome.output_truncated,
        files: outcome
            .files
            .into_iter()
            .map(|file| OutputFile {
                name: file.name,
                content: file.content,
                truncated: file.truncated,
            })
            .collect(),
    }
}

fn arg_bytes(arg: &wit::Arg) -> usize {
    match arg {
        wit::Arg::Literal(s) | wit::Arg::InputPath(s) | wit::Arg::RequestedOutputDir(s) => s.len(),
        wit::Arg::OutputDir => 0,
    }
}

fn public_arg(arg: wit::Arg) -> Arg {
    match arg {
        wit::Arg::Literal(s) => Arg::Literal(s),
        wit::Arg::InputPath(s) => Arg::InputPath(s),
        wit::Arg::OutputDir => Arg::OutputDir,
        wit::Arg::RequestedOutputDir(s) => Arg::RequestedOutputDir(s),
    }
}

fn finding_bytes(finding: &wit::Finding) -> usize {
    [
        &finding.rule_id,
        &finding.title,
        &finding.description,
        &finding.resource_type,
        &finding.resource_name,
        &finding.category,
    ]
    .iter()
    .map(|s| s.len())
    .sum::<usize>()
        + finding.file.as_ref().map_or(0, String::len)
        + finding.documentation_url.as_ref().map_or(0, String::len)
}

fn public_finding(finding: wit::Finding) -> Finding {
    Finding {
        rule_id: finding.rule_id,
        title: finding.title,
        severity: match finding.severity {
            wit::Severity::Critical => Severity::Critical,
            wit::Severity::High => Severity::High,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::Low => Severity::Low,
            wit::Severity::Info => Severity::Info,
        },
        description: finding.description,
        resource_type: finding.resource_type,
        resource_name: finding.resource_name,
        file: finding.file,
        line: finding.line,
        category: finding.category,
        documentation_url: finding.documentation_url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literals(count: usize, each: usize) -> wit::Plan {
        wit::Plan {
            args: (0..count)
                .map(|_| wit::Arg::Literal("a".repeat(each)))
                .collect(),
        }
    }

    fn findings(count: usize, description_bytes: usize) -> wit::ParseResult {
        let finding = wit::Finding {
            rule_id: "R1".into(),
            title: String::new(),
            severity: wit::Severity::High,
            description: "d".repeat(description_bytes),
            resource_type: String::new(),
            resource_name: String::new(),
            file: None,
            line: None,
            category: String::new(),
            documentation_url: None,
        };
        wit::ParseResult {
            classification: wit::Classification::Findings,
            findings: vec![finding; count],
            message: None,
        }
    }

    #[test]
    fn plan_bounds_table() {
        let cases = [
            ("empty", literals(0, 0), true),
            ("at the token limit", literals(MAX_PLAN_ARGS, 1), true),
            ("one token too many", literals(MAX_PLAN_ARGS + 1, 1), false),
            ("at the byte limit", literals(1, MAX_PLAN_ARGV_BYTES), true),
            (
                "one byte too many",
                literals(2, MAX_PLAN_ARGV_BYTES / 2 + 1),
                false,
            ),
        ];
        for (name, plan, allowed) in cases {
            assert_eq!(checked_plan(plan).is_ok(), allowed, "{name}");
        }
    }

    #[test]
    fn field_error_bounds_table() {
        let error = |message_bytes: usize| wit::FieldError {
            field: "f".into(),
            message: "m".repeat(message_bytes),
        };
        let cases = [
            ("at the count limit", vec![error(1); MAX_FIELD_ERRORS], true),
            ("one too many", vec![error(1); MAX_FIELD_ERRORS + 1], false),
            ("too much text", vec![error(MAX_FIELD_ERROR_BYTES)], false),
        ];
        for (name, errors, allowed) in cases {
            assert_eq!(checked_field_errors(errors).is_ok(), allowed, "{name}");
        }
    }

    #[test]
    fn parse_result_bounds_table() {
        let mut long_message = findings(0, 0);
        long_message.message = Some("m".repeat(MAX_PARSE_MESSAGE_BYTES + 1));
        let cases = [
            ("at the count limit", findings(MAX_FINDINGS, 0), true),
            ("one too many", findings(MAX_FINDINGS + 1, 0), false),
            ("too much text", findings(2, MAX_FINDINGS_BYTES / 2), false),
            ("long message", long_message, false),
        ];
        for (name, result, allowed) in cases {
            assert_eq!(checked_parse_result(result).is_ok(), allowed, "{name}");
        }
    }

    #[test]
    fn scan_plan_bounds_table() {
        let scan = |plan: wit::Plan, sentences: usize, each: usize| wit::ScanPlan {
            plan,
            not_applied: vec!["n".repeat(each); sentences],
        };
        let cases = [
            ("nothing left out", scan(literals(2, 2), 0, 0), true),
            (
                "at the sentence limit",
                scan(literals(1, 1), MAX_NOT_APPLIED, 1),
                true,
            ),
            (
                "one sentence too many",
                scan(literals(1, 1), MAX_NOT_APPLIED + 1, 1),
                false,
            ),
            (
                "too much text",
                scan(literals(1, 1), 2, MAX_NOT_APPLIED_BYTES / 2 + 1),
                false,
            ),
            (
                "a plan over the token limit",
                scan(literals(MAX_PLAN_ARGS + 1, 1), 0, 0),
                false,
            ),
        ];
        for (name, scan_plan, allowed) in cases {
            assert_eq!(checked_scan_plan(scan_plan).is_ok(), allowed, "{name}");
        }
    }

    #[test]
    fn scan_request_conversion_keeps_every_field() {
        let request = ScanRequest {
            directory: "/var/lib/toolgate/scans/7/tree".into(),
            template_type: TemplateType::Cft,
            template_version: Some("1".into()),
            files: vec!["a.yaml".into()],
            folders: vec!["stacks".into()],
            variables: vec![("region".into(), "eu-west-1".into())],
            variable_files: vec!["vars.tfvars".into()],
        };
        let converted = wit_scan_request(&request);
        assert_eq!(converted.directory, "/var/lib/toolgate/scans/7/tree");
        assert_eq!(
            public_template_type(converted.template_type),
            TemplateType::Cft
        );
        assert_eq!(converted.template_version.as_deref(), Some("1"));
        assert_eq!(converted.files, request.files);
        assert_eq!(converted.folders, request.folders);
        assert_eq!(converted.variables, request.variables);
        assert_eq!(converted.variable_files, request.variable_files);
        for template_type in [TemplateType::Tf, TemplateType::Cft, TemplateType::K8s] {
            assert_eq!(
                public_template_type(wit_template_type(template_type)),
                template_type
            );
        }
    }

    #[test]
    fn conversion_keeps_every_field() {
        let plan = wit::Plan {
            args: vec![
                wit::Arg::Literal("-d".into()),
                wit::Arg::InputPath("/etc/shadow".into()),
                wit::Arg::OutputDir,
                wit::Arg::RequestedOutputDir("out".into()),
            ],
        };
        assert_eq!(
            checked_plan(plan).unwrap().args,
            vec![
                Arg::Literal("-d".into()),
                Arg::InputPath("/etc/shadow".into()),
                Arg::OutputDir,
                Arg::RequestedOutputDir("out".into()),
            ]
        );
        let parsed = checked_parse_result(findings(1, 3)).unwrap();
        assert_eq!(parsed.classification, Classification::Findings);
        assert_eq!(parsed.findings[0].severity, Severity::High);
        assert_eq!(parsed.findings[0].description, "ddd");
    }
}
