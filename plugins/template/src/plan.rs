//! `plan`: parameters -> `--format sarif [--severity LEVEL] [extra flags] <in:DIR>`.
//!
//! Invariants: every field is validated (`Params` collects every error, naming the field, the
//! value and what is allowed); the directory is an `Arg::InputPath` the host checks; the report
//! format is fixed (parse reads SARIF only); `additional_args` yields only flags of `EXTRA_FLAGS`.

use toolgate_plugin_sdk::{Arg, Argv, FieldError, FlagSpec, Params, PlanContext, Takes, ValueRule};

/// The accepted parameter names; `describe` lists exactly these.
pub const FIELDS: &[&str] = &["target", "severity", "additional_args"];
/// The tool's severity threshold words.
pub const SEVERITIES: &[&str] = &["low", "medium", "high"];
const DEFAULT_TARGET: &str = ".";

/// The only extra flags a caller may pass. List a flag here only when it cannot read or write a
/// file, reach the network, load code or override a flag `plan` sets.
pub const EXTRA_FLAGS: &[FlagSpec] = &[FlagSpec {
    name: "--quiet",
    aliases: &["-q"],
    takes: Takes::Nothing,
}];

pub fn plan(params_json: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    let mut params = Params::parse(params_json, FIELDS)?;
    let target = params
        .path("target")
        .unwrap_or_else(|| DEFAULT_TARGET.to_string());
    let severity = params.one("severity", &ValueRule::OneOfIgnoreCase(SEVERITIES));
    let extra = params.flags("additional_args", EXTRA_FLAGS);
    let args = Argv::new()
        .option("--format", "sarif")
        .option_if("--severity", severity.as_deref())
        .flags(&extra)
        .positional_path(&target)
        .build();
    params.finish(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::testing::{render_args, sample_context};

    fn words(json: &str) -> Result<Vec<String>, Vec<String>> {
        plan(json, &sample_context())
            .map(render_args)
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    #[test]
    fn accepted() {
        let table: &[(&str, &[&str])] = &[
            ("{}", &["--format", "sarif", "<in:.>"]),
            (
                r#"{"target":"src","severity":"HIGH","additional_args":"-q"}"#,
                &[
                    "--format",
                    "sarif",
                    "--severity",
                    "high",
                    "--quiet",
                    "<in:src>",
                ],
            ),
        ];
        for (json, expected) in table {
            assert_eq!(
                words(json),
                Ok(expected.iter().map(|s| s.to_string()).collect()),
                "{json}"
            );
        }
    }

    #[test]
    fn refused_with_every_field_named() {
        let table: &[(&str, &[&str])] = &[
            (r#"{"target":"../etc"}"#, &["target"]),
            (r#"{"target":"-rf"}"#, &["target"]),
            (r#"{"severity":"extreme"}"#, &["severity"]),
            (
                r#"{"additional_args":"--config /tmp/x"}"#,
                &["additional_args", "additional_args"],
            ),
            (
                r#"{"additional_args":"-q; id"}"#,
                &["additional_args", "additional_args"],
            ),
            (r#"{"format":"json"}"#, &["format"]),
            (
                r#"{"target":"$(id)","severity":"x"}"#,
                &["target", "severity"],
            ),
        ];
        for (json, fields) in table {
            let expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            assert_eq!(words(json), Err(expected), "{json}");
        }
    }
}
