//! checkov `plan`: parameters -> `--director <in:DIR> -o json --skip-download [--framework F]
//! [--check IDS] [--skip-check IDS] [extra flags]`.
//!
//! Invariants:
//! - Every field is validated against an allowlist; every problem becomes a field error naming
//!   the field, the value and what is allowed, and all of them are returned together.
//! - `directory` is emitted as `Arg::InputPath` (the host canonicalizes and allowlists it).
//! - The directory option is spelled `--director`, never `-d` nor `--directory`: checkov
//!   (3.2.445, `common/util/config_utils.py`) scans argv for the exact tokens `-d` and
//!   `--directory` and loads `.checkov.yaml`/`.checkov.yml` from the directory after them, a file
//!   that can set `external-checks-dir` and so run Python from the scanned tree. The safe
//!   one-token `--directory=<path>` cannot be emitted because the path must be its own typed
//!   `InputPath` token; `--director` is argparse's unique abbreviation of `--directory` (no other
//!   checkov option starts with `--dir`), which argparse expands while the config lookup does
//!   not match it. Should checkov ever add a second `--director...` option, argparse refuses the
//!   ambiguous abbreviation (exit 2, a tool error): it fails closed.
//! - `-o json` and `--skip-download` (no Prisma Cloud calls, no downloaded policies) are always
//!   emitted, and `additional_args` only ever yields flags from `EXTRA_FLAGS`: everything that
//!   reads or writes files, touches the network, loads code or overrides a flag set here is
//!   refused.

use toolgate_plugin_sdk::{
    Arg, Argv, FieldError, FlagSpec, Params, Pattern, PlanContext, Takes, ValueRule,
};

/// The accepted parameter names.
pub const FIELDS: &[&str] = &[
    "directory",
    "framework",
    "check",
    "skip_check",
    "additional_args",
];

/// checkov frameworks (`CheckType` in checkov 3.2.445) that scan local files only. Left out on
/// purpose: `sca_package`, `sca_image`, `sast*`, `cdk` and `3d_policy` (they need the Prisma Cloud
/// API), and `github_configuration`, `gitlab_configuration`, `bitbucket_configuration` (they
/// fetch a VCS organisation's settings over the network with a token).
pub const FRAMEWORKS: &[&str] = &[
    "all",
    "ansible",
    "argo_workflows",
    "arm",
    "azure_pipelines",
    "bicep",
    "bitbucket_pipelines",
    "circleci_pipelines",
    "cloudformation",
    "dockerfile",
    "github_actions",
    "gitlab_ci",
    "helm",
    "json",
    "kubernetes",
    "kustomize",
    "openapi",
    "secrets",
    "serverless",
    "terraform",
    "terraform_json",
    "terraform_plan",
    "yaml",
];
/// `--skip-framework` takes the same names except `all`.
const SKIPPABLE_FRAMEWORKS: &[&str] = FRAMEWORKS.split_at(1).1;
const DEFAULT_DIRECTORY: &str = ".";
/// Lists may be separated by commas or spaces; checkov receives them comma-joined in one token.
const LIST_SEPARATORS: &[char] = &[',', ' '];

/// checkov's own check ids, e.g. `CKV_AWS_24`, `CKV2_AWS_6`, `CKV_K8S_16`, `CKV_SECRET_6`. Platform
/// ids (`BC_...`) and severities need an API key, so they are not accepted.
pub const CHECK_ID: ValueRule = ValueRule::Pattern(Pattern {
    expected: "a checkov check id (CKV_ or CKV2_, an upper-case group, '_', a number; e.g. \
               CKV_AWS_24, CKV2_AWS_6)",
    max_bytes: 64,
    matches: is_check_id,
});

/// `CKV` + optional digits + `_` + `[A-Z0-9]+` + `_` + `[0-9]+`, ASCII only.
fn is_check_id(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("CKV") else {
        return false;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix('_') else {
        return false;
    };
    let Some((group, number)) = rest.rsplit_once('_') else {
        return false;
    };
    !group.is_empty()
        && group
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The only flags `additional_args` may contain, each harmless for an offline JSON scan:
/// `--compact` and `--quiet` only trim the report (`--quiet` drops passed checks), `--soft-fail`
/// only turns exit 1 into 0 (`parse` reads the report, not the exit code, for findings),
/// `--skip-framework` narrows the scan, `--skip-resources-without-violations` trims the report.
///
/// Refused on purpose (not listed): `--external-checks-dir`, `--external-checks-git` (load
/// Python), `--download-external-modules`, `--external-modules-download-path` (network, writes),
/// `--bc-api-key`, `--prisma-api-url`, `--support`, `--docker-image`, `--use-enforcement-rules`,
/// `--policy-metadata-filter*` (Prisma Cloud API), `--output-file-path`, `--create-config`,
/// `--create-baseline` (write files), `--config-file`, `--var-file`, `--baseline`,
/// `--ca-certificate`, `-f/--file`, `-d/--directory`, `--repo-root-for-plan-enrichment`,
/// `--skip-path` (read files or widen the scan), `--no-cert-verify`, `--no-fail-on-crash` (hides a
/// crash), `--add-check` (interactive), `-o/--output`, `--framework`, `-c/--check`,
/// `--skip-check`, `--skip-download` (set here or by their own field), `--scan-secrets-history`
/// (reads git history), and anything unknown or abbreviated.
pub const EXTRA_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "--compact",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--quiet",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--soft-fail",
        aliases: &["-s"],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--skip-framework",
        aliases: &[],
        takes: Takes::CommaList(ValueRule::OneOfIgnoreCase(SKIPPABLE_FRAMEWORKS)),
    },
    FlagSpec {
        name: "--skip-resources-without-violations",
        aliases: &[],
        takes: Takes::Nothing,
    },
];

pub fn plan(params_json: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    let mut params = Params::parse(params_json, FIELDS)?;
    let directory = params
        .path("directory")
        .unwrap_or_else(|| DEFAULT_DIRECTORY.to_string());
    let frameworks = params.list(
        "framework",
        &ValueRule::OneOfIgnoreCase(FRAMEWORKS),
        LIST_SEPARATORS,
    );
    let checks = params.list("check", &CHECK_ID, LIST_SEPARATORS);
    let skipped_checks = params.list("skip_check", &CHECK_ID, LIST_SEPARATORS);
    let extra_flags = params.flags("additional_args", EXTRA_FLAGS);

    if let Some(frameworks) = &frameworks {
        check_all_is_alone(&mut params, frameworks);
    }
    check_disjoint(
        &mut params,
        "skip_check",
        checks.as_deref(),
        skipped_checks.as_deref(),
        "check",
    );
    let skipped_frameworks = extra_flags
        .iter()
        .find(|flag| flag.name == "--skip-framework")
        .map(|flag| flag.values.as_slice());
    check_disjoint(
        &mut params,
        "additional_args",
        frameworks.as_deref(),
        skipped_frameworks,
        "framework",
    );

    let args = Argv::new()
        .input_path("--director", &directory)
        .option("-o", "json")
        .literal("--skip-download")
        .list_if("--framework", frameworks.as_deref(), ",")
        .list_if("--check", checks.as_deref(), ",")
        .list_if("--skip-check", skipped_checks.as_deref(), ",")
        .flags(&extra_flags)
        .build();
    params.finish(args)
}

/// checkov ignores every other framework when `all` is listed; saying so beats a silent surprise.
fn check_all_is_alone(params: &mut Params, frameworks: &[String]) {
    if frameworks.len() > 1 && frameworks.iter().any(|f| f == "all") {
        params.error(
            "framework",
            format!(
                "{:?} mixes \"all\" with other frameworks; give \"all\" alone or list the \
                 frameworks",
                frameworks.join(",")
            ),
        );
    }
}

/// checkov exits 2 (a usage error) when a value is both selected and skipped; refuse it here
/// with a message instead.
fn check_disjoint(
    params: &mut Params,
    field: &str,
    selected: Option<&[String]>,
    skipped: Option<&[String]>,
    selected_field: &str,
) {
    let (Some(selected), Some(skipped)) = (selected, skipped) else {
        return;
    };
    for value in skipped.iter().filter(|value| selected.contains(value)) {
        params.error(
            field,
            format!("{value:?} is both selected by {selected_field} and skipped; choose one"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::testing::{render_args, sample_context};

    /// Renders a plan as words: literals as is, paths as `<in:PATH>`; errors as their fields.
    fn words(json: &str) -> Result<Vec<String>, Vec<String>> {
        plan(json, &sample_context())
            .map(render_args)
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    fn split(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    const BASE: &str = "--director <in:.> -o json --skip-download";

    #[test]
    fn argv_table() {
        let table: &[(&str, &str)] = &[
            ("{}", BASE),
            (
                r#"{"directory":"","framework":"","check":"","skip_check":"","additional_args":""}"#,
                BASE,
            ),
            (r#"{"directory":null,"framework":null}"#, BASE),
            (
                r#"{"directory":"terraform/public_bucket_open_ssh"}"#,
                "--director <in:terraform/public_bucket_open_ssh> -o json --skip-download",
            ),
            // Absolute paths pass through typed: the host's allowlist decides.
            (
                r#"{"directory":"/etc"}"#,
                "--director <in:/etc> -o json --skip-download",
            ),
            (
                r#"{"framework":"terraform"}"#,
                "--director <in:.> -o json --skip-download --framework terraform",
            ),
            (
                r#"{"framework":"Terraform,KUBERNETES secrets"}"#,
                "--director <in:.> -o json --skip-download --framework terraform,kubernetes,secrets",
            ),
            (
                r#"{"framework":"all"}"#,
                "--director <in:.> -o json --skip-download --framework all",
            ),
            (
                r#"{"check":"CKV_AWS_24"}"#,
                "--director <in:.> -o json --skip-download --check CKV_AWS_24",
            ),
            (
                r#"{"check":"CKV_AWS_24, CKV2_AWS_6,CKV_K8S_16 CKV_SECRET_6"}"#,
                "--director <in:.> -o json --skip-download --check CKV_AWS_24,CKV2_AWS_6,CKV_K8S_16,CKV_SECRET_6",
            ),
            (
                r#"{"skip_check":"CKV_AWS_23,CKV2_AWS_62"}"#,
                "--director <in:.> -o json --skip-download --skip-check CKV_AWS_23,CKV2_AWS_62",
            ),
            (
                r#"{"check":"CKV_AWS_24","skip_check":"CKV_AWS_23"}"#,
                "--director <in:.> -o json --skip-download --check CKV_AWS_24 --skip-check CKV_AWS_23",
            ),
            (
                r#"{"additional_args":"--compact --quiet"}"#,
                "--director <in:.> -o json --skip-download --compact --quiet",
            ),
            (
                r#"{"additional_args":"-s"}"#,
                "--director <in:.> -o json --skip-download --soft-fail",
            ),
            (
                r#"{"additional_args":"--skip-framework secrets,Dockerfile"}"#,
                "--director <in:.> -o json --skip-download --skip-framework secrets,dockerfile",
            ),
            (
                r#"{"additional_args":"--skip-framework=secrets --skip-resources-without-violations"}"#,
                "--director <in:.> -o json --skip-download --skip-framework secrets --skip-resources-without-violations",
            ),
            (
                r#"{"directory":"k8s/ingress","framework":"kubernetes","check":"CKV_K8S_16","skip_check":"CKV_K8S_21","additional_args":"--quiet --skip-framework secrets"}"#,
                "--director <in:k8s/ingress> -o json --skip-download --framework kubernetes --check CKV_K8S_16 --skip-check CKV_K8S_21 --quiet --skip-framework secrets",
            ),
        ];
        for (json, expected) in table {
            assert_eq!(words(json), Ok(split(expected)), "params {json}");
        }
    }

    /// The plan never contains the exact tokens checkov's config lookup matches.
    #[test]
    fn directory_never_uses_the_config_loading_spellings() {
        for json in [
            "{}",
            r#"{"directory":"terraform"}"#,
            r#"{"framework":"terraform","additional_args":"--quiet"}"#,
        ] {
            let argv = words(json).unwrap_or_default();
            assert!(!argv.is_empty(), "{json}");
            assert!(
                !argv.iter().any(|t| t == "-d" || t == "--directory"),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn refused_table_names_every_bad_field() {
        let table: &[(&str, &[&str])] = &[
            (r#"{"directory":"../secrets"}"#, &["directory"]),
            (r#"{"directory":"a/../../etc"}"#, &["directory"]),
            (r#"{"directory":"-d"}"#, &["directory"]),
            (r#"{"directory":3}"#, &["directory"]),
            (r#"{"framework":"nmap"}"#, &["framework"]),
            (r#"{"framework":"sca_package"}"#, &["framework"]),
            (r#"{"framework":"github_configuration"}"#, &["framework"]),
            (r#"{"framework":"terraform,helm,cobol"}"#, &["framework"]),
            (r#"{"framework":"all,terraform"}"#, &["framework"]),
            (r#"{"check":"CKV_AWS_"}"#, &["check"]),
            (r#"{"check":"ckv_aws_24"}"#, &["check"]),
            (r#"{"check":"BC_AWS_GENERAL_1"}"#, &["check"]),
            (r#"{"check":"HIGH"}"#, &["check"]),
            (r#"{"check":"CKV_AWS_24*"}"#, &["check"]),
            (r#"{"check":"CKV__24"}"#, &["check"]),
            (r#"{"skip_check":"CKV_AWS_x"}"#, &["skip_check"]),
            (
                r#"{"check":"CKV_AWS_24","skip_check":"CKV_AWS_24"}"#,
                &["skip_check"],
            ),
            (
                r#"{"framework":"terraform","additional_args":"--skip-framework terraform"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--skip-framework all"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--quiet --quiet"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--compact=yes"}"#,
                &["additional_args"],
            ),
            (r#"{"target":"x"}"#, &["target"]),
            (
                r#"{"directory":"..","framework":"x","check":"y","skip_check":"z","additional_args":"-q","other":"w"}"#,
                &[
                    "other",
                    "directory",
                    "framework",
                    "check",
                    "skip_check",
                    "additional_args",
                ],
            ),
        ];
        for (json, fields) in table {
            let expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            assert_eq!(words(json), Err(expected), "params {json}");
        }
    }

    /// Every flag that reads or writes files, touches the network, loads code, hides a crash or
    /// overrides a flag the plugin sets is refused, with prefixes and short forms.
    #[test]
    fn dangerous_flags_are_refused() {
        let dangerous = [
            "--external-checks-dir /tmp/checks",
            "--external-checks-dir=/tmp/checks",
            "--external-checks-git https://example.invalid/x.git",
            "--download-external-modules true",
            "--download-external-modules=true",
            "--external-modules-download-path /tmp",
            "--bc-api-key k",
            "--bc-api-key=k",
            "--prisma-api-url https://x",
            "--support",
            "--docker-image alpine",
            "--use-enforcement-rules",
            "--policy-metadata-filter a:b",
            "--output-file-path /tmp/x",
            "--config-file /tmp/.checkov.yaml",
            "--create-config /tmp/c.yaml",
            "--show-config",
            "--create-baseline",
            "--baseline /tmp/b",
            "--var-file /etc/passwd",
            "-ca /tmp/ca.pem",
            "--ca-certificate /tmp/ca.pem",
            "--no-cert-verify",
            "--no-fail-on-crash",
            "--repo-root-for-plan-enrichment /",
            "--openai-api-key k",
            "--add-check",
            "--scan-secrets-history",
            "--skip-path x",
            "-d /",
            "--directory /",
            "--directory=/",
            "--director /",
            "-f /etc/passwd",
            "--file=/etc/passwd",
            "-o cli",
            "--output=sarif",
            "--framework terraform",
            "-c CKV_AWS_1",
            "--check CKV_AWS_1",
            "--skip-check CKV_AWS_1",
            "--skip-download",
            "-l",
            "--list",
            "--soft-fail-on CKV_AWS_1",
            "--hard-fail-on HIGH",
            "--mask x",
            // Abbreviations argparse would expand to a flag that was never checked.
            "--ext /tmp",
            "--extern=/tmp",
            "--soft",
            "--comp",
            "--quie",
            "-sq",
        ];
        for flags in dangerous {
            let json = serde_json::json!({ "additional_args": flags }).to_string();
            let fields = words(&json).err().unwrap_or_default();
            assert!(!fields.is_empty(), "accepted {flags:?}");
            assert!(
                fields.iter().all(|f| f == "additional_args"),
                "{flags:?}: {fields:?}"
            );
        }
    }

    #[test]
    fn hostile_values_in_every_field_are_refused() {
        let hostile = [
            "; rm -rf /",
            "$(id)",
            "`id`",
            "a | nc x 1",
            "a && id",
            "a\nb",
            "x\u{0}y",
            "-d /etc",
            "--external-checks-dir=/tmp",
            "\u{2014}quiet",
            "ｔｅｒｒａｆｏｒｍ",
            "t\u{435}rraform",
            "CKV_AWS_2\u{0664}",
        ];
        let huge = "a".repeat(10 * 1024);
        for field in FIELDS {
            for value in hostile.iter().copied().chain([huge.as_str()]) {
                let json = serde_json::json!({ *field: value }).to_string();
                let mut fields = words(&json).err().unwrap_or_default();
                fields.dedup();
                assert_eq!(
                    fields,
                    vec![field.to_string()],
                    "field {field} value {value:?}"
                );
            }
        }
    }

    #[test]
    fn messages_name_value_and_allowed() {
        let errors = plan(
            r#"{"framework":"cobol","check":"CKV_AWS_1;id","additional_args":"--external-checks-dir=/x"}"#,
            &sample_context(),
        )
        .err()
        .unwrap_or_default();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].field, "framework");
        assert!(
            errors[0]
                .message
                .starts_with("\"cobol\" is not allowed; allowed: all, ansible,"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[1].field, "check");
        assert!(
            errors[1]
                .message
                .starts_with("\"CKV_AWS_1;id\" is not a checkov check id"),
            "{}",
            errors[1].message
        );
        assert_eq!(errors[2].field, "additional_args");
        assert!(
            errors[2].message.starts_with(
                "\"--external-checks-dir=/x\" is not an allowed flag; allowed flags: --compact"
            ),
            "{}",
            errors[2].message
        );
    }
}
