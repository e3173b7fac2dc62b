//! The real tool plugins (`just build-plugins`) load through the runtime and answer plan/parse.

mod common;

use common::{fixture, plan_context, real_plugin};
use toolgate_plugin_runtime::{Classification, Outcome, PluginRuntime, RuntimeConfig};

fn runtime_with_real_plugins() -> PluginRuntime {
    let dir = real_plugin("terrascan.wasm")
        .parent()
        .expect("a plugin file has a directory")
        .to_owned();
    real_plugin("prowler.wasm");
    real_plugin("checkov.wasm");
    let mut runtime = PluginRuntime::new(RuntimeConfig::default(), None).unwrap();
    let report = runtime.load_dir(&dir);
    for tool in ["checkov", "prowler", "terrascan"] {
        assert!(
            report.loaded.iter().any(|t| t == tool),
            "{tool} not loaded: {report:#?}"
        );
    }
    runtime
}

#[test]
fn real_plugins_load_and_plan_an_empty_params_object() {
    let runtime = runtime_with_real_plugins();
    let names: Vec<_> = runtime.tools().into_iter().map(|t| t.name).collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "tools() sorted: {names:?}"
    );
    for tool in ["checkov", "prowler", "terrascan"] {
        let description = runtime.describe(tool).unwrap();
        assert_eq!(description.executable, tool);
        let answer = runtime.plan(tool, "{}", &plan_context());
        let plan = answer
            .unwrap_or_else(|e| panic!("{tool}: {e}"))
            .unwrap_or_else(|errors| panic!("{tool}: {{}} refused: {errors:?}"));
        assert!(!plan.args.is_empty(), "{tool}");
    }
}

#[test]
fn real_terrascan_parses_its_golden_output() {
    let runtime = runtime_with_real_plugins();
    let outcome = Outcome {
        exit_code: Some(3),
        stdout: std::fs::read(fixture("terrascan/aws_db_instance_json.json")).unwrap(),
        ..Outcome::default()
    };
    let result = runtime.parse("terrascan", &outcome).unwrap();
    assert_eq!(result.classification, Classification::Findings);
    assert!(!result.findings.is_empty());
}

/// checkov's component plans with the config-safe directory spelling and reads all three report
/// shapes (one object, a list of reports, the bare summary) across the WIT boundary.
#[test]
fn real_checkov_plans_and_parses_every_report_shape() {
    let runtime = runtime_with_real_plugins();
    let plan = runtime
        .plan(
            "checkov",
            r#"{"directory":"terraform/public_bucket_open_ssh","framework":"terraform"}"#,
            &plan_context(),
        )
        .unwrap()
        .unwrap();
    let rendered = format!("{:?}", plan.args);
    assert!(rendered.contains("\"--director\""), "{rendered}");
    assert!(!rendered.contains("\"--directory\""), "{rendered}");
    assert!(
        rendered.contains("terraform/public_bucket_open_ssh"),
        "{rendered}"
    );
    let refused = runtime
        .plan(
            "checkov",
            r#"{"additional_args":"--external-checks-dir /tmp"}"#,
            &plan_context(),
        )
        .unwrap();
    assert!(refused.is_err(), "{refused:?}");
    // (fixture, exit code, classification, findings)
    let table = [
        (
            "checkov/public_bucket_open_ssh_quiet.json",
            1,
            Classification::Findings,
            11,
        ),
        (
            "checkov/aws_db_instance_full.json",
            1,
            Classification::Findings,
            71,
        ),
        ("checkov/nothing_scanned.json", 0, Classification::Clean, 0),
    ];
    for (name, exit_code, classification, findings) in table {
        let outcome = Outcome {
            exit_code: Some(exit_code),
            stdout: std::fs::read(fixture(name)).unwrap(),
            ..Outcome::default()
        };
        let result = runtime.parse("checkov", &outcome).unwrap();
        assert_eq!(result.classification, classification, "{name}");
        assert_eq!(result.findings.len(), findings, "{name}");
    }
}

/// A prowler OCSF report of at least `min_bytes`, made by repeating the real fixture's entries.
fn prowler_report(min_bytes: usize) -> Vec<u8> {
    let fixture = std::fs::read(fixture("prowler/aws_s3_iam.ocsf.json")).unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&fixture).unwrap();
    let copies = min_bytes.div_ceil(fixture.len());
    let repeated: Vec<_> = (0..copies).flat_map(|_| entries.iter().cloned()).collect();
    serde_json::to_vec(&repeated).unwrap()
}

#[test]
fn real_prowler_parses_a_19_mb_report_under_the_default_limits() {
    let runtime = runtime_with_real_plugins();
    let report = prowler_report(19 << 20);
    let one_copy = runtime
        .parse("prowler", &prowler_outcome(prowler_report(1)))
        .unwrap();
    let big = runtime.parse("prowler", &prowler_outcome(report)).unwrap();
    assert_eq!(big.classification, Classification::Findings);
    assert!(!one_copy.findings.is_empty());
    assert_eq!(big.findings.len() % one_copy.findings.len(), 0);
    assert!(big.findings.len() >= 20 * one_copy.findings.len());
}

fn prowler_outcome(report: Vec<u8>) -> Outcome {
    Outcome {
        exit_code: Some(3),
        files: vec![toolgate_plugin_runtime::OutputFile {
            name: "prowler-output-123456789012-20261122141813.ocsf.json".into(),
            content: report,
            truncated: false,
        }],
        ..Outcome::default()
    }
}
