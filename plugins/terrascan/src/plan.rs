//! terrascan `plan`: HexStrike-compatible parameters -> `scan [-i T] [--iac-version V] [-t P]
//! -d DIR -o F [--severity S] [extra flags]`.
//!
//! Invariants:
//! - Every field is validated against an allowlist; every problem becomes a field error and all
//!   of them are returned together.
//! - `iac_dir` is emitted as `Arg::InputPath` (the host canonicalizes and allowlists it); the
//!   plugin additionally refuses `..` components and unusual characters.
//! - `additional_args` only ever yields flags from `EXTRA_FLAGS`; everything that reads or
//!   writes files, touches the network or overrides a flag the plugin sets is refused.
//! - The seed's mistakes are not copied: `-t` is the POLICY type, `-i` the IaC type, and
//!   `policy_type` never becomes `-p` (a rego policy PATH).

use toolgate_plugin_sdk::{
    AcceptedFlag, Arg, FieldError, FlagSpec, Params, Pattern, PlanContext, Takes, ValueRule,
    ascii_token,
};

/// The accepted parameter names (HexStrike's six plus `iac_type` and `iac_version`).
pub const FIELDS: &[&str] = &[
    "scan_type",
    "iac_dir",
    "policy_type",
    "output_format",
    "severity",
    "additional_args",
    "iac_type",
    "iac_version",
];

const IAC_TYPES: &[&str] = &[
    "arm",
    "cft",
    "docker",
    "helm",
    "k8s",
    "kustomize",
    "terraform",
    "tfplan",
];
const POLICY_TYPES: &[&str] = &["all", "aws", "azure", "docker", "gcp", "github", "k8s"];
/// `scan_type` values: "all", the IaC types, and the policy types that are not IaC types.
/// docker and k8s are both; they are read as IaC types (see `ScanType::resolve`).
const SCAN_TYPES: &[&str] = &[
    "all",
    "arm",
    "cft",
    "docker",
    "helm",
    "k8s",
    "kustomize",
    "terraform",
    "tfplan",
    "aws",
    "azure",
    "gcp",
    "github",
];
const OUTPUT_FORMATS: &[&str] = &["json", "yaml", "xml", "junit-xml", "sarif", "human"];
const SEVERITIES: &[&str] = &["low", "medium", "high"];
/// `--log-level` words. `debug` is refused as prowler's DEBUG is: at that level terrascan logs
/// the configuration it loaded and the URLs it fetches, which may carry tokens (a notifier's
/// webhook token in an operator's config, credentials in a module source URL). The host's
/// redaction of passed-through variables is the second line, not the only one.
const LOG_LEVELS: &[&str] = &["info", "warn", "error", "panic", "fatal"];
/// terrascan's fixed category list (`pkg/utils/category.go`, compared upper-cased).
const CATEGORIES: &[&str] = &[
    "LOGGING AND MONITORING",
    "COMPLIANCE VALIDATION",
    "RESILIENCE",
    "SECURITY BEST PRACTICES",
    "INFRASTRUCTURE SECURITY",
    "IDENTITY AND ACCESS MANAGEMENT",
    "CONFIGURATION AND VULNERABILITY ANALYSIS",
    "DATA PROTECTION",
];
const DEFAULT_IAC_DIR: &str = ".";
const DEFAULT_OUTPUT_FORMAT: &str = "json";

/// Rule ids such as `AC_AWS_0214` or `accurics.kubernetes.IAM.109`; 128 bytes is several times
/// the longest real id.
const RULE_ID: ValueRule = ValueRule::Pattern(Pattern {
    expected: "a rule id (an ASCII letter, then letters, digits, '_' or '.', e.g. AC_AWS_0214)",
    max_bytes: 128,
    matches: |s| {
        ascii_token(
            s,
            |b| b.is_ascii_alphabetic(),
            |b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.',
        )
    },
});

/// The only flags `additional_args` may contain. Refused on purpose (not listed): -c/--config-path
/// (reads a TOML that can set policy URLs and webhooks), --temp-dir and --log-output-dir
/// (write), -f/--iac-file, -p/--policy-path and --values-files (read arbitrary files; rego can
/// do network calls), -r/--remote-type, -u/--remote-url, --webhook-url, --webhook-token and
/// --find-vuln (network), -o/-i/-t/-d/--severity/--iac-version (set by their own fields),
/// --use-colors (colour codes would corrupt machine-readable output), and anything unknown.
const EXTRA_FLAGS: &[FlagSpec] = &[
    FlagSpec {
        name: "--show-passed",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--non-recursive",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--config-only",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--config-with-error",
        aliases: &[],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--verbose",
        aliases: &["-v"],
        takes: Takes::Nothing,
    },
    FlagSpec {
        name: "--scan-rules",
        aliases: &[],
        takes: Takes::CommaList(RULE_ID),
    },
    FlagSpec {
        name: "--skip-rules",
        aliases: &[],
        takes: Takes::CommaList(RULE_ID),
    },
    FlagSpec {
        name: "--categories",
        aliases: &[],
        takes: Takes::CommaList(ValueRule::OneOfIgnoreCase(CATEGORIES)),
    },
    FlagSpec {
        name: "--log-level",
        aliases: &["-l"],
        takes: Takes::One(ValueRule::OneOf(LOG_LEVELS)),
    },
];

/// Flags that only make sense with a structured (json or yaml) report.
const STRUCTURED_ONLY_FLAGS: &[&str] = &["--config-only", "--config-with-error"];

/// What `scan_type` selects.
enum ScanType {
    All,
    Iac(String),
    Policy(String),
}

impl ScanType {
    /// docker and k8s are both IaC and policy types. The MCP docstring presents scan_type as
    /// "all, terraform, k8s, etc." (what to scan), so they are read as IaC types: `-i docker`
    /// scans Dockerfiles and terrascan applies the matching policies. Use `policy_type` to pick
    /// policies explicitly.
    fn resolve(canonical: &str) -> ScanType {
        if canonical == "all" {
            ScanType::All
        } else if IAC_TYPES.contains(&canonical) {
            ScanType::Iac(canonical.to_string())
        } else {
            ScanType::Policy(canonical.to_string())
        }
    }
}

pub fn plan(params_json: &str, _ctx: &PlanContext) -> Result<Vec<Arg>, Vec<FieldError>> {
    let mut params = Params::parse(params_json, FIELDS)?;
    let scan_type = params
        .one("scan_type", &ValueRule::OneOfIgnoreCase(SCAN_TYPES))
        .map(|s| ScanType::resolve(&s));
    let explicit_iac_type = params.one("iac_type", &ValueRule::OneOfIgnoreCase(IAC_TYPES));
    let explicit_policy_types = params.list(
        "policy_type",
        &ValueRule::OneOfIgnoreCase(POLICY_TYPES),
        &[','],
    );
    let iac_version = params.text("iac_version");
    let iac_dir = params.path("iac_dir");
    let output_format = params
        .one("output_format", &ValueRule::OneOfIgnoreCase(OUTPUT_FORMATS))
        .unwrap_or_else(|| DEFAULT_OUTPUT_FORMAT.to_string());
    let severity = params.one("severity", &ValueRule::OneOfIgnoreCase(SEVERITIES));
    let extra_flags = params.flags("additional_args", EXTRA_FLAGS);

    let iac_type = match (scan_type.as_ref(), explicit_iac_type) {
        (Some(ScanType::Iac(from_scan)), Some(explicit)) if *from_scan != explicit => {
            params.error(
                "scan_type",
                format!(
                    "{from_scan:?} selects IaC type {from_scan} but iac_type is {explicit:?}; \
                     give one of them or make them agree"
                ),
            );
            None
        }
        (Some(ScanType::Iac(from_scan)), _) => Some(from_scan.clone()),
        (_, explicit) => explicit,
    };
    let policy_types = match (scan_type.as_ref(), explicit_policy_types) {
        (Some(ScanType::Policy(from_scan)), Some(explicit))
            if explicit.as_slice() != std::slice::from_ref(from_scan) =>
        {
            params.error(
                "scan_type",
                format!(
                    "{from_scan:?} selects policy type {from_scan} but policy_type is {:?}; \
                     give one of them or make them agree",
                    explicit.join(",")
                ),
            );
            None
        }
        (Some(ScanType::Policy(from_scan)), _) => Some(vec![from_scan.clone()]),
        (_, explicit) => explicit,
    };
    let iac_version =
        iac_version.and_then(|raw| check_iac_version(&mut params, &raw, iac_type.as_deref()));
    check_structured_only(&mut params, &extra_flags, &output_format);

    let mut args = vec![Arg::literal("scan")];
    if let Some(iac_type) = iac_type {
        args.extend([Arg::literal("-i"), Arg::Literal(iac_type)]);
    }
    if let Some(version) = iac_version {
        args.extend([Arg::literal("--iac-version"), Arg::Literal(version)]);
    }
    if let Some(policy_types) = policy_types {
        args.extend([Arg::literal("-t"), Arg::Literal(policy_types.join(","))]);
    }
    args.extend([
        Arg::literal("-d"),
        Arg::InputPath(iac_dir.unwrap_or_else(|| DEFAULT_IAC_DIR.to_string())),
        Arg::literal("-o"),
        Arg::Literal(output_format),
    ]);
    if let Some(severity) = severity {
        args.extend([Arg::literal("--severity"), Arg::Literal(severity)]);
    }
    args.extend(extra_flags.iter().flat_map(AcceptedFlag::to_args));
    params.finish(args)
}

/// terrascan's supported versions per IaC type (`--iac-version`).
fn versions_for(iac_type: &str) -> &'static [&'static str] {
    match iac_type {
        "terraform" => &["v12", "v13", "v14", "v15"],
        "helm" => &["v3"],
        "kustomize" => &["v2", "v3", "v4"],
        _ => &["v1"],
    }
}

fn check_iac_version(params: &mut Params, raw: &str, iac_type: Option<&str>) -> Option<String> {
    let Some(iac_type) = iac_type else {
        params.error(
            "iac_version",
            "needs an IaC type: set iac_type (or scan_type to an IaC type) as well",
        );
        return None;
    };
    let rule = ValueRule::OneOf(versions_for(iac_type));
    match toolgate_plugin_sdk::value::check_one(raw, &rule) {
        Ok(version) => Some(version),
        Err(error) => {
            params.error("iac_version", format!("for IaC type {iac_type}: {error}"));
            None
        }
    }
}

fn check_structured_only(params: &mut Params, flags: &[AcceptedFlag], output_format: &str) {
    if matches!(output_format, "json" | "yaml") {
        return;
    }
    for flag in flags
        .iter()
        .filter(|f| STRUCTURED_ONLY_FLAGS.contains(&f.name))
    {
        params.error(
            "additional_args",
            format!(
                "{} needs output_format json or yaml, not {output_format:?}",
                flag.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_plugin_sdk::testing::{render_args, sample_context};

    fn ctx() -> PlanContext {
        sample_context()
    }

    /// Renders a plan as words: literals as is, paths as `<in:PATH>`.
    fn words(json: &str) -> Result<Vec<String>, Vec<String>> {
        plan(json, &ctx())
            .map(render_args)
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    fn split(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn argv_table() {
        let table: &[(&str, &str)] = &[
            ("{}", "scan -d <in:.> -o json"),
            (
                r#"{"scan_type":"","iac_dir":"","policy_type":"","output_format":"","severity":"","additional_args":""}"#,
                "scan -d <in:.> -o json",
            ),
            (
                r#"{"scan_type":"all","iac_dir":".","policy_type":"","output_format":"json","severity":"","additional_args":""}"#,
                "scan -d <in:.> -o json",
            ),
            (
                r#"{"scan_type":"terraform"}"#,
                "scan -i terraform -d <in:.> -o json",
            ),
            (
                r#"{"scan_type":"Terraform"}"#,
                "scan -i terraform -d <in:.> -o json",
            ),
            (r#"{"scan_type":"k8s"}"#, "scan -i k8s -d <in:.> -o json"),
            (
                r#"{"scan_type":"docker"}"#,
                "scan -i docker -d <in:.> -o json",
            ),
            (r#"{"scan_type":"aws"}"#, "scan -t aws -d <in:.> -o json"),
            (
                r#"{"scan_type":"aws","policy_type":"aws"}"#,
                "scan -t aws -d <in:.> -o json",
            ),
            (
                r#"{"scan_type":"helm","iac_type":"helm"}"#,
                "scan -i helm -d <in:.> -o json",
            ),
            (
                r#"{"policy_type":"aws,AZURE,k8s"}"#,
                "scan -t aws,azure,k8s -d <in:.> -o json",
            ),
            (
                r#"{"policy_type":"docker"}"#,
                "scan -t docker -d <in:.> -o json",
            ),
            (
                r#"{"iac_dir":"infra/prod"}"#,
                "scan -d <in:infra/prod> -o json",
            ),
            (
                r#"{"iac_dir":"/srv/work/x"}"#,
                "scan -d <in:/srv/work/x> -o json",
            ),
            // Absolute paths pass through typed: the host's allowlist decides.
            (r#"{"iac_dir":"/etc"}"#, "scan -d <in:/etc> -o json"),
            (r#"{"output_format":"yaml"}"#, "scan -d <in:.> -o yaml"),
            (r#"{"output_format":"XML"}"#, "scan -d <in:.> -o xml"),
            (
                r#"{"output_format":"junit-xml"}"#,
                "scan -d <in:.> -o junit-xml",
            ),
            (r#"{"output_format":"sarif"}"#, "scan -d <in:.> -o sarif"),
            (r#"{"output_format":"human"}"#, "scan -d <in:.> -o human"),
            (
                r#"{"severity":"HIGH"}"#,
                "scan -d <in:.> -o json --severity high",
            ),
            (
                r#"{"severity":"low"}"#,
                "scan -d <in:.> -o json --severity low",
            ),
            (
                r#"{"iac_type":"terraform","iac_version":"v14"}"#,
                "scan -i terraform --iac-version v14 -d <in:.> -o json",
            ),
            (
                r#"{"scan_type":"kustomize","iac_version":"v4"}"#,
                "scan -i kustomize --iac-version v4 -d <in:.> -o json",
            ),
            (
                r#"{"iac_type":"arm","iac_version":"v1"}"#,
                "scan -i arm --iac-version v1 -d <in:.> -o json",
            ),
            (
                r#"{"additional_args":"--show-passed --non-recursive -v"}"#,
                "scan -d <in:.> -o json --show-passed --non-recursive --verbose",
            ),
            (
                r#"{"additional_args":"--config-only"}"#,
                "scan -d <in:.> -o json --config-only",
            ),
            (
                r#"{"output_format":"yaml","additional_args":"--config-with-error"}"#,
                "scan -d <in:.> -o yaml --config-with-error",
            ),
            (
                r#"{"additional_args":"--scan-rules AC_AWS_0214,accurics.aws.IAM.1"}"#,
                "scan -d <in:.> -o json --scan-rules AC_AWS_0214,accurics.aws.IAM.1",
            ),
            (
                r#"{"additional_args":"--skip-rules=AC_AWS_0001"}"#,
                "scan -d <in:.> -o json --skip-rules AC_AWS_0001",
            ),
            (
                r#"{"additional_args":"-l info"}"#,
                "scan -d <in:.> -o json --log-level info",
            ),
            (
                r#"{"additional_args":"--log-level=warn"}"#,
                "scan -d <in:.> -o json --log-level warn",
            ),
            (
                r#"{"scan_type":"terraform","iac_dir":"tf","policy_type":"aws","output_format":"sarif","severity":"Medium","additional_args":"--non-recursive"}"#,
                "scan -i terraform -t aws -d <in:tf> -o sarif --severity medium --non-recursive",
            ),
        ];
        for (json, expected) in table {
            assert_eq!(words(json), Ok(split(expected)), "params {json}");
        }
        let categories =
            words(r#"{"additional_args":"--categories 'data protection,Resilience'"}"#);
        let mut expected = split("scan -d <in:.> -o json --categories");
        expected.push("DATA PROTECTION,RESILIENCE".to_string());
        assert_eq!(categories, Ok(expected));
    }

    #[test]
    fn refused_table_names_every_bad_field() {
        let table: &[(&str, &[&str])] = &[
            (r#"{"scan_type":"nmap"}"#, &["scan_type"]),
            (r#"{"scan_type":"k8s","iac_type":"helm"}"#, &["scan_type"]),
            (r#"{"scan_type":"aws","policy_type":"gcp"}"#, &["scan_type"]),
            (
                r#"{"scan_type":"aws","policy_type":"aws,gcp"}"#,
                &["scan_type"],
            ),
            (r#"{"policy_type":"aws,,gcp"}"#, &["policy_type"]),
            (r#"{"policy_type":"/etc/rego"}"#, &["policy_type"]),
            (r#"{"iac_type":"ansible"}"#, &["iac_type"]),
            (r#"{"iac_version":"v14"}"#, &["iac_version"]),
            (
                r#"{"iac_type":"terraform","iac_version":"v3"}"#,
                &["iac_version"],
            ),
            (
                r#"{"scan_type":"helm","iac_version":"v2"}"#,
                &["iac_version"],
            ),
            (r#"{"output_format":"github-sarif"}"#, &["output_format"]),
            (r#"{"severity":"critical"}"#, &["severity"]),
            (r#"{"iac_dir":"../secrets"}"#, &["iac_dir"]),
            (r#"{"iac_dir":"a/../../etc"}"#, &["iac_dir"]),
            (r#"{"iac_dir":"-p"}"#, &["iac_dir"]),
            (
                r#"{"output_format":"xml","additional_args":"--config-only"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--use-colors t"}"#,
                &["additional_args", "additional_args"],
            ),
            (
                r#"{"additional_args":"--categories SECRETS"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--scan-rules AC_AWS_0001;id"}"#,
                &["additional_args"],
            ),
            (r#"{"additional_args":"-v -v"}"#, &["additional_args"]),
            (
                r#"{"additional_args":"--log-level trace"}"#,
                &["additional_args"],
            ),
            // A debug log may print tokens from the configuration or a fetched URL.
            (r#"{"additional_args":"-l debug"}"#, &["additional_args"]),
            (
                r#"{"additional_args":"--log-level=debug"}"#,
                &["additional_args"],
            ),
            (
                r#"{"additional_args":"--show-passed=true"}"#,
                &["additional_args"],
            ),
            (r#"{"iac_file":"main.tf"}"#, &["iac_file"]),
            (r#"{"scan_type":3}"#, &["scan_type"]),
            (
                r#"{"scan_type":"x","iac_dir":"..","policy_type":"y","output_format":"z","severity":"w","additional_args":"-q","iac_type":"v","iac_version":"u"}"#,
                &[
                    "scan_type",
                    "iac_type",
                    "policy_type",
                    "iac_dir",
                    "output_format",
                    "severity",
                    "additional_args",
                    "iac_version",
                ],
            ),
        ];
        for (json, fields) in table {
            let expected: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
            assert_eq!(words(json), Err(expected), "params {json}");
        }
    }

    /// Every dangerous terrascan flag, in both spellings where they exist, is refused.
    #[test]
    fn dangerous_flags_are_refused() {
        let dangerous = [
            "-c /tmp/config.toml",
            "--config-path=/tmp/c.toml",
            "--temp-dir /tmp",
            "--log-output-dir /tmp",
            "-f /etc/passwd",
            "--iac-file=/etc/passwd",
            "-p /etc",
            "--policy-path /etc",
            "--values-files /etc/x",
            "-r git",
            "--remote-type git",
            "-u http://x",
            "--remote-url=http://x",
            "--webhook-url=http://x",
            "--webhook-token t",
            "--find-vuln",
            "-o yaml",
            "--output=yaml",
            "-i k8s",
            "-t aws",
            "-d /",
            "--iac-dir=/",
            "--severity high",
            "--iac-version v12",
            "--repo-url http://x",
            "-x json",
            "--show",
            "--show-passed-x",
            "-vl",
        ];
        for flags in dangerous {
            let json = serde_json::json!({ "additional_args": flags }).to_string();
            let result = words(&json);
            let fields = result.err().unwrap_or_default();
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
            "-p /etc",
            "--webhook-url=http://x",
            "\u{2014}severity",
            "ｈｉｇｈ",
            "\u{430}ws",
            "\u{212a}8s",
        ];
        let huge = "a".repeat(10 * 1024);
        let string_fields = [
            "scan_type",
            "policy_type",
            "output_format",
            "severity",
            "iac_type",
            "iac_dir",
            "additional_args",
        ];
        for field in string_fields {
            for value in hostile.iter().copied().chain([huge.as_str()]) {
                // iac_dir may legitimately contain a space; the hostile values all carry another
                // refused character or a leading '-'.
                let json = serde_json::json!({ field: value }).to_string();
                let mut fields = words(&json).err().unwrap_or_default();
                fields.dedup();
                assert_eq!(
                    fields,
                    vec![field.to_string()],
                    "field {field} value {value:?}"
                );
            }
        }
        for value in hostile.iter().copied().chain([huge.as_str()]) {
            let json =
                serde_json::json!({ "iac_type": "terraform", "iac_version": value }).to_string();
            assert_eq!(
                words(&json),
                Err(vec!["iac_version".to_string()]),
                "{value:?}"
            );
        }
    }

    #[test]
    fn messages_name_value_and_allowed() {
        let errors = plan(
            r#"{"severity":"critical","additional_args":"--webhook-url=http://x"}"#,
            &ctx(),
        )
        .err()
        .unwrap_or_default();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "severity");
        assert_eq!(
            errors[0].message,
            "\"critical\" is not allowed; allowed: low, medium, high"
        );
        assert_eq!(errors[1].field, "additional_args");
        assert!(
            errors[1].message.starts_with(
                "\"--webhook-url=http://x\" is not an allowed flag; allowed flags: --show-passed"
            ),
            "{}",
            errors[1].message
        );
    }
}
