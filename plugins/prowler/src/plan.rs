//! prowler `plan`: HexStrike-compatible parameters -> `PROVIDER [--profile P] [--region R...]
//! [--checks C...] --output-directory DIR --output-formats json-ocsf [F...] --no-banner
//! --no-color [extra flags]`.
//!
//! Invariants:
//! - Every field is validated against an allowlist; all problems are returned together.
//! - prowler uses argparse: PREFIX matching is on (`--checks-fo` = `--checks-folder`) and
//!   `nargs="+"` options swallow following tokens. So every emitted flag is a full, declared
//!   option name, `additional_args` is matched token by token against `EXTRA_FLAGS` (exact
//!   spellings only), and no value ever starts with `-`.
//! - The output directory is always typed: `Arg::OutputDir` (the job's directory) or
//!   `Arg::RequestedOutputDir` (checked here lexically against the output root, and by the host).
//! - `json-ocsf` is always among the output formats because `parse` reads it.

use toolgate_plugin_sdk::value::check_path;
use toolgate_plugin_sdk::{
    AcceptedFlag, Arg, FieldError, FlagSpec, Params, Pattern, PlanContext, Shown, Takes, ValueRule,
    ascii_token,
};

/// The accepted parameter names: exactly HexStrike's.
pub const FIELDS: &[&str] = &[
    "provider",
    "profile",
    "region",
    "checks",
    "output_dir",
    "output_format",
    "additional_args",
];

const PROVIDERS: &[&str] = &["aws", "azure", "gcp", "kubernetes", "m365", "github"];
const DEFAULT_PROVIDER: &str = "aws";
/// The HexStrike default profile: "no preference", so the operator's AWS_PROFILE (if passed)
/// or the SDK's default chain decides.
const DEFAULT_PROFILE: &str = "default";
/// The HexStrike default output directory. Every unchanged MCP client sends it; it means "no
/// preference" and gets the job's own directory.
const REFERENCE_DEFAULT_OUTPUT_DIR: &str = "/tmp/prowler_output";
/// `output_format` words; `json` is prowler v4's name for today's `json-ocsf`.
const OUTPUT_FORMATS: &[&str] = &["json", "json-ocsf", "csv", "html", "json-asff"];
/// What `parse` reads; always requested.
const OCSF_FORMAT: &str = "json-ocsf";
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low", "informational"];
const STATUSES: &[&str] = &["PASS", "FAIL", "MANUAL"];
/// `--log-level` words. DEBUG is refused: prowler sets the root logger to it, so botocore logs
/// request headers (`x-amz-security-token`) and response bodies (STS answers carrying
/// `SecretAccessKey` and `SessionToken`) to stderr, which the caller reads. INFO and above log
/// no credential values (botocore says only where it found them).
const LOG_LEVELS: &[&str] = &["INFO", "WARNING", "ERROR", "CRITICAL"];
/// Lists in fields may be separated by commas or spaces (prowler takes separate tokens).
const LIST_SEPARATORS: &[char] = &[',', ' '];

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Check ids: `s3_bucket_default_encryption`.
const CHECK_ID: ValueRule = ValueRule::Pattern(Pattern {
    expected: "a check id (lower-case letters, digits and '_', e.g. s3_bucket_default_encryption)",
    max_bytes: 128,
    matches: |s| ascii_token(s, is_lower_alnum, |b| is_lower_alnum(b) || b == b'_'),
});
/// Service names: `s3`, `iam`, `cloudwatch`, `defender`.
const SERVICE: ValueRule = ValueRule::Pattern(Pattern {
    expected: "a service name (lower-case letters, digits and '_', e.g. s3)",
    max_bytes: 64,
    matches: |s| ascii_token(s, is_lower_alnum, |b| is_lower_alnum(b) || b == b'_'),
});
/// Compliance frameworks: `cis_2.0_aws`, `ens_rd2022_aws`.
const COMPLIANCE: ValueRule = ValueRule::Pattern(Pattern {
    expected: "a compliance framework (lower-case letters, digits, '_' and '.', e.g. cis_2.0_aws)",
    max_bytes: 128,
    matches: |s| {
        ascii_token(s, is_lower_alnum, |b| {
            is_lower_alnum(b) || b == b'_' || b == b'.'
        })
    },
});
/// Check categories: `internet-exposed`, `encryption`.
const CATEGORY: ValueRule = ValueRule::Pattern(Pattern {
    expected: "a category (lower-case letters, digits, '-' and '_', e.g. internet-exposed)",
    max_bytes: 64,
    matches: |s| {
        ascii_token(s, is_lower_alnum, |b| {
            is_lower_alnum(b) || b == b'-' || b == b'_'
        })
    },
});
/// AWS profile names as written in `~/.aws/config`.
const PROFILE: ValueRule = ValueRule::Pattern(Pattern {
    expected: "an AWS profile name (ASCII letters, digits and _ . + @ -, not starting with '-')",
    max_bytes: 64,
    matches: |s| {
        ascii_token(
            s,
            |b| b.is_ascii_alphanumeric(),
            |b| b.is_ascii_alphanumeric() || b"_.+@-".contains(&b),
        )
    },
});
/// AWS region names: `^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$`.
const REGION: ValueRule = ValueRule::Pattern(Pattern {
    expected: "an AWS region (like us-east-1, us-gov-west-1, us-isob-east-1)",
    max_bytes: 32,
    matches: is_aws_region,
});

fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let (country, partition, area, number) = match parts.as_slice() {
        [country, area, number] => (*country, None, *area, *number),
        [country, partition, area, number] => (*country, Some(*partition), *area, *number),
        _ => return false,
    };
    let partition_ok = match partition {
        None => true,
        Some(p) => {
            p == "gov" || (p.starts_with("iso") && p[3..].bytes().all(|b| b.is_ascii_lowercase()))
        }
    };
    country.len() == 2
        && lower(country)
        && partition_ok
        && lower(area)
        && number.len() == 1
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// The only flags `additional_args` may contain, matched as exact tokens. Refused on purpose
/// (not listed): -x/--checks-folder (imports Python = code execution), -w/--mutelist-file (file,
/// S3 or a Lambda it invokes), --config-file, --fixer (modifies cloud resources),
/// -S/--security-hub, -B/-D (S3 writes), --push-to-cloud, --slack, -N/--shodan,
/// --scan-secrets-validate (network), --mfa (reads stdin), -F/--output-filename (path
/// traversal), --log-file (writes), -C/--checks-file (reads), -o/--output-directory and
/// -M/--output-formats (set by their fields), -c/--checks, -f/--region, -p/--profile (set by
/// their fields), every prefix of a long flag, and anything unknown.
const EXTRA_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "--services",
        aliases: &["-s"],
        takes: Takes::OneOrMore(SERVICE),
    },
    FlagSpec {
        name: "--severity",
        aliases: &[],
        takes: Takes::OneOrMore(ValueRule::OneOfIgnoreCase(SEVERITIES)),
    },
    FlagSpec {
        name: "--status",
        aliases: &[],
        takes: Takes::OneOrMore(ValueRule::OneOfIgnoreCase(STATUSES)),
    },
    FlagSpec {
        name: "--excluded-checks",
        aliases: &["-e"],
        takes: Takes::OneOrMore(CHECK_ID),
    },
    FlagSpec {
        name: "--excluded-services",
        aliases: &[],
        takes: Takes::OneOrMore(SERVICE),
    },
    FlagSpec {
        name: "--compliance",
        aliases: &[],
        takes: Takes::OneOrMore(COMPLIANCE),
    },
    FlagSpec {
        name: "--category",
        aliases: &[],
        takes: Takes::OneOrMore(CATEGORY),
    },
    FlagSpec {
        name: "--ignore-exit-code-3",
        aliases: &["-z"],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--verbose",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--log-level",
        aliases: &[],
        takes: Takes::One(ValueRule::OneOfIgnoreCase(LOG_LEVELS)),
    },
    FlagSpec {
        name: "--sp-env-auth",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--az-cli-auth",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--managed-identity-auth",
        aliases: &[],
        takes: Takes::Nothing,
    },
];

/// Flags that exist only for some providers: (flag, providers).
const PROVIDER_FLAGS: &[(&str, &[&str])] = &[
    ("--sp-env-auth", &["azure", "m365"]),
    ("--az-cli-auth", &["azure", "m365"]),
    ("--managed-identity-auth", &["azure"]),
];

/// The validated parameters, ready to become argv.
struct Validated {
    provider: String,
    profile: Option<String>,
    regions: Option<Vec<String>>,
    checks: Option<Vec<String>>,
    output_dir: Arg,
    formats: Vec<String>,
    extra_flags: Vec<AcceptedFlag>,
}

pub fn plan(params_json: &str, ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    let mut params = Params::parse(params_json, FIELDS)?;
    let errors_before_provider = params.error_count();
    let provider = params.one("provider", &ValueRule::OneOfIgnoreCase(PROVIDERS));
    let provider_valid = params.error_count() == errors_before_provider;
    let validated = Validated {
        provider: provider.unwrap_or_else(|| DEFAULT_PROVIDER.to_string()),
        profile: params
            .one("profile", &PROFILE)
            .filter(|p| p != DEFAULT_PROFILE),
        regions: params.list("region", &REGION, LIST_SEPARATORS),
        checks: params.list("checks", &CHECK_ID, LIST_SEPARATORS),
        output_dir: output_dir_arg(&mut params, ctx),
        formats: params
            .list(
                "output_format",
                &ValueRule::OneOfIgnoreCase(OUTPUT_FORMATS),
                LIST_SEPARATORS,
            )
            .unwrap_or_default(),
        extra_flags: params.flags("additional_args", EXTRA_FLAGS),
    };
    // An invalid provider already has its error; checking the rest against it adds only noise.
    if provider_valid {
        check_provider_specific(&mut params, &validated);
    }
    let argv = validated.argv();
    params.finish(argv)
}

/// Refuses what only makes sense for another provider.
fn check_provider_specific(params: &mut Params, v: &Validated) {
    let provider = v.provider.as_str();
    if provider == "aws" {
        return;
    }
    if let Some(profile) = &v.profile {
        params.error(
            "profile",
            format!(
                "{} applies to provider aws only, not {provider}",
                Shown::new(profile)
            ),
        );
    }
    if v.regions.is_some() {
        params.error(
            "region",
            format!("applies to provider aws only, not {provider}"),
        );
    }
    if v.formats.iter().any(|f| f == "json-asff") {
        params.error(
            "output_format",
            format!("json-asff applies to provider aws only, not {provider}"),
        );
    }
    for flag in &v.extra_flags {
        let Some((_, providers)) = PROVIDER_FLAGS.iter().find(|(name, _)| *name == flag.name)
        else {
            continue;
        };
        if !providers.contains(&provider) {
            params.error(
                "additional_args",
                format!(
                    "{} applies to provider {} only, not {provider}",
                    flag.name,
                    providers.join(", ")
                ),
            );
        }
    }
}

impl Validated {
    fn argv(self) -> Vec<Arg> {
        let mut args = vec![Arg::Literal(self.provider)];
        if let Some(profile) = self.profile {
            args.extend([Arg::literal("--profile"), Arg::Literal(profile)]);
        }
        if let Some(regions) = self.regions {
            args.push(Arg::literal("--region"));
            args.extend(regions.into_iter().map(Arg::Literal));
        }
        if let Some(checks) = self.checks {
            args.push(Arg::literal("--checks"));
            args.extend(checks.into_iter().map(Arg::Literal));
        }
        args.extend([Arg::literal("--output-directory"), self.output_dir]);
        args.push(Arg::literal("--output-formats"));
        args.extend(output_formats(&self.formats).into_iter().map(Arg::Literal));
        args.extend([Arg::literal("--no-banner"), Arg::literal("--no-color")]);
        args.extend(self.extra_flags.iter().flat_map(AcceptedFlag::to_args));
        args
    }
}

/// `json-ocsf` first (always), then the other requested formats, without duplicates.
fn output_formats(requested: &[String]) -> Vec<String> {
    let mut formats = vec![OCSF_FORMAT.to_string()];
    for format in requested {
        let format = if format == "json" {
            OCSF_FORMAT
        } else {
            format.as_str()
        };
        if !formats.iter().any(|f| f == format) {
            formats.push(format.to_string());
        }
    }
    formats
}

/// `Arg::OutputDir` for no preference (absent, empty or the HexStrike default), else a
/// `RequestedOutputDir` that must be absolute and lexically inside the output root.
fn output_dir_arg(params: &mut Params, ctx: &PlanContext) -> Arg {
    let Some(raw) = params.text("output_dir") else {
        return Arg::OutputDir;
    };
    if raw == REFERENCE_DEFAULT_OUTPUT_DIR {
        return Arg::OutputDir;
    }
    let path = match check_path(&raw) {
        Ok(path) => path,
        Err(error) => {
            params.error("output_dir", error.to_string());
            return Arg::OutputDir;
        }
    };
    let root = ctx.output_root.trim_end_matches('/');
    let inside = !root.is_empty()
        && (path.trim_end_matches('/') == root
            || path
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/')));
    if !inside {
        params.error(
            "output_dir",
            format!(
                "{} is not inside the output root {:?}; give an absolute path under it, or \
                 leave output_dir empty for the job's own directory",
                Shown::new(&path),
                ctx.output_root
            ),
        );
        return Arg::OutputDir;
    }
    Arg::RequestedOutputDir(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::testing::{render_args, sample_context};

    fn ctx() -> PlanContext {
        sample_context()
    }

    fn words(json: &str) -> Result<Vec<String>, Vec<String>> {
        plan(json, &ctx())
            .map(render_args)
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    fn split(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    const TAIL: &str = "--output-directory <out> --output-formats json-ocsf --no-banner --no-color";

    #[test]
    fn argv_table() {
        let table: &[(&str, String)] = &[
            ("{}", format!("aws {TAIL}")),
            (
                r#"{"provider":"aws","profile":"default","region":"","checks":"","output_dir":"/tmp/prowler_output","output_format":"json","additional_args":""}"#,
                format!("aws {TAIL}"),
            ),
            (
                r#"{"provider":"","profile":"","region":"","checks":"","output_dir":"","output_format":"","additional_args":""}"#,
                format!("aws {TAIL}"),
            ),
            (r#"{"provider":"AZURE"}"#, format!("azure {TAIL}")),
            (r#"{"provider":"gcp","profile":"default"}"#, format!("gcp {TAIL}")),
            (r#"{"provider":"kubernetes"}"#, format!("kubernetes {TAIL}")),
            (r#"{"provider":"m365"}"#, format!("m365 {TAIL}")),
            (r#"{"provider":"github"}"#, format!("github {TAIL}")),
            (r#"{"profile":"audit-ro"}"#, format!("aws --profile audit-ro {TAIL}")),
            (r#"{"region":"us-east-1"}"#, format!("aws --region us-east-1 {TAIL}")),
            (
                r#"{"region":"us-east-1,eu-west-3 us-gov-west-1"}"#,
                format!("aws --region us-east-1 eu-west-3 us-gov-west-1 {TAIL}"),
            ),
            (r#"{"region":"us-isob-east-1"}"#, format!("aws --region us-isob-east-1 {TAIL}")),
            // Spaces separate too, so ", " and ",," are just separators.
            (r#"{"region":"us-east-1, eu-west-1,,"}"#, format!("aws --region us-east-1 eu-west-1 {TAIL}")),
            (
                r#"{"checks":"s3_bucket_default_encryption,iam_root_mfa_enabled"}"#,
                format!("aws --checks s3_bucket_default_encryption iam_root_mfa_enabled {TAIL}"),
            ),
            (r#"{"provider":"gcp","checks":"iam_sa_no_administrative_privileges"}"#, format!("gcp --checks iam_sa_no_administrative_privileges {TAIL}")),
            (r#"{"output_dir":"/srv/out/mine"}"#, format!("aws {}", TAIL.replace("<out>", "<req:/srv/out/mine>"))),
            (r#"{"output_dir":"/srv/out"}"#, format!("aws {}", TAIL.replace("<out>", "<req:/srv/out>"))),
            (r#"{"output_format":"csv"}"#, format!("aws {TAIL}").replace("json-ocsf", "json-ocsf csv")),
            (
                r#"{"output_format":"json,csv html"}"#,
                format!("aws {TAIL}").replace("json-ocsf", "json-ocsf csv html"),
            ),
            (r#"{"output_format":"json-ocsf,json"}"#, format!("aws {TAIL}")),
            (r#"{"output_format":"json-asff"}"#, format!("aws {TAIL}").replace("json-ocsf", "json-ocsf json-asff")),
            (
                r#"{"additional_args":"--services s3 iam --severity critical,HIGH -z"}"#,
                format!("aws {TAIL} --services s3 iam --severity critical high --ignore-exit-code-3"),
            ),
            (
                r#"{"additional_args":"--status fail,manual --excluded-services cloudtrail --compliance cis_2.0_aws --category internet-exposed --log-level error --verbose"}"#,
                format!("aws {TAIL} --status FAIL MANUAL --excluded-services cloudtrail --compliance cis_2.0_aws --category internet-exposed --log-level ERROR --verbose"),
            ),
            (
                r#"{"provider":"azure","additional_args":"--sp-env-auth"}"#,
                format!("azure {TAIL} --sp-env-auth"),
            ),
            (
                r#"{"provider":"aws","profile":"prod","region":"eu-west-1","checks":"iam_root_mfa_enabled","output_dir":"/srv/out/x","output_format":"html","additional_args":"--services=iam"}"#,
                "aws --profile prod --region eu-west-1 --checks iam_root_mfa_enabled --output-directory <req:/srv/out/x> --output-formats json-ocsf html --no-banner --no-color --services iam".to_string(),
            ),
        ];
        for (json, expected) in table {
            assert_eq!(words(json), Ok(split(expected)), "params {json}");
        }
    }

    #[test]
    fn refused_table_names_every_bad_field() {
        let table: &[(&str, &[&str])] = &[
            (r#"{"provider":"oraclecloud"}"#, &["provider"]),
            (r#"{"provider":"iac"}"#, &["provider"]),
            // DEBUG makes botocore print session tokens and STS secrets on stderr.
            (
                r#"{"additional_args":"--log-level DEBUG"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--log-level=debug"}"#,
                &["additional_args"],
            ),
            (r#"{"provider":"azure","profile":"prod"}"#, &["profile"]),
            (r#"{"provider":"gcp","region":"us-east-1"}"#, &["region"]),
            (
                r#"{"provider":"azure","output_format":"json-asff"}"#,
                &["output_format"],
            ),
            (
                r#"{"provider":"gcp","additional_args":"--sp-env-auth"}"#,
                &["additional_args"],
            ),
            (
                r#"{"provider":"m365","additional_args":"--managed-identity-auth"}"#,
                &["additional_args"],
            ),
            (r#"{"region":"us-east-1a"}"#, &["region"]),
            (r#"{"region":"useast1"}"#, &["region"]),
            (r#"{"region":"us-east-12"}"#, &["region"]),
            (r#"{"region":"US-EAST-1"}"#, &["region"]),
            (r#"{"checks":"S3_bucket"}"#, &["checks"]),
            (r#"{"checks":"s3-bucket"}"#, &["checks"]),
            (r#"{"output_format":"sarif"}"#, &["output_format"]),
            (r#"{"output_format":"pdf"}"#, &["output_format"]),
            (r#"{"output_dir":"/tmp/elsewhere"}"#, &["output_dir"]),
            (r#"{"output_dir":"/srv/outside"}"#, &["output_dir"]),
            (r#"{"output_dir":"/srv/out/../etc"}"#, &["output_dir"]),
            (r#"{"output_dir":"relative/dir"}"#, &["output_dir"]),
            (r#"{"output_dir":"/etc"}"#, &["output_dir"]),
            (r#"{"profile":"-p"}"#, &["profile"]),
            (r#"{"additional_args":"--services"}"#, &["additional_args"]),
            (
                r#"{"additional_args":"--services s3 --services iam"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--severity extreme"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--status MUTED"}"#,
                &["additional_args"],
            ),
            (r#"{"additional_args":"-zb"}"#, &["additional_args"]),
            // '=' forms exist for long flags only.
            (
                r#"{"additional_args":"-s=ec2 --status FAIL -e=x"}"#,
                &["additional_args", "additional_args"],
            ),
            (r#"{"scan_type":"all"}"#, &["scan_type"]),
            (
                r#"{"provider":"x","profile":"-x","region":"x","checks":"X","output_dir":"/x","output_format":"x","additional_args":"-x"}"#,
                &[
                    "provider",
                    "profile",
                    "region",
                    "checks",
                    "output_dir",
                    "output_format",
                    "additional_args",
                ],
            ),
        ];
        for (json, fields) in table {
            let expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            assert_eq!(words(json), Err(expected), "params {json}");
        }
    }

    #[test]
    fn dangerous_flags_and_prefixes_are_refused() {
        let dangerous = [
            "-x /tmp/checks",
            "--checks-folder /tmp/checks",
            "--checks-fo /tmp/checks",
            "--checks-folder=/tmp/checks",
            "-w /tmp/m.yaml",
            "--mutelist-file /tmp/m.yaml",
            "--mutelist /tmp/m.yaml",
            "--config-file /tmp/c.yaml",
            "--config /tmp/c.yaml",
            "--fixer",
            "--fix",
            "-S",
            "--security-hub",
            "--security",
            "-B bucket",
            "--output-bucket bucket",
            "-D bucket",
            "--output-bucket-no-assume bucket",
            "--push-to-cloud",
            "--slack",
            "-N key",
            "--shodan key",
            "--scan-secrets-validate",
            "--mfa",
            "-F ../../x",
            "--output-filename ../../x",
            "--output-file x",
            "--log-file /tmp/log",
            "--log /tmp/log",
            "-C /tmp/checks.json",
            "--checks-file /tmp/checks.json",
            "-c s3_bucket_object_lock",
            "--checks s3_bucket_object_lock",
            "--check s3_bucket_object_lock",
            "-o /tmp",
            "--output-directory /tmp",
            "--output-dir /tmp",
            "-M csv",
            "--output-formats csv",
            "--output-format json",
            "--output-modes csv",
            "-f us-east-1",
            "--region us-east-1",
            "--filter-region us-east-1",
            "-p prod",
            "--profile prod",
            "-R arn:aws:iam::1:role/x",
            "--role arn",
            "--serv s3",
            "--service s3",
            "--sev high",
            "--ignore-exit-code",
            "--list-checks-json",
            "--browser-auth",
            "--quiet",
            "-q",
            "--categories internet-exposed",
            "--no-banner",
            "-b",
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
            "-x /tmp",
            "--checks-folder=/tmp",
            "\u{2014}severity",
            "ａｗｓ",
            "\u{430}ws",
            "us-e\u{430}st-1",
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
            r#"{"provider":"aws","region":"mars-1","output_dir":"/etc"}"#,
            &ctx(),
        )
        .err()
        .unwrap_or_default();
        let messages: Vec<(String, String)> =
            errors.into_iter().map(|e| (e.field, e.message)).collect();
        assert_eq!(
            messages,
            vec![
                (
                    "region".to_string(),
                    "\"mars-1\" is not an AWS region (like us-east-1, us-gov-west-1, us-isob-east-1)"
                        .to_string()
                ),
                (
                    "output_dir".to_string(),
                    "\"/etc\" is not inside the output root \"/srv/out\"; give an absolute path \
                     under it, or leave output_dir empty for the job's own directory"
                        .to_string()
                ),
            ]
        );
    }
}
