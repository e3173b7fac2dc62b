//! Plugins of both contract versions side by side: a 0.1.0 component (the hostile test plugin,
//! built against the released contract and never changed) and the real 0.2.0 plugins load into
//! one runtime, each answers plan and parse, `plan_scan` answers for 0.2.0 and refuses cleanly
//! for 0.1.0, and the artefact cache serves both versions after a restart.

mod common;

use std::path::Path;

use common::{plan_context, quick_config, real_plugin, test_plugin};
use toolgate_plugin_runtime::{
    Arg, CallFailure, Classification, ContractVersion, Outcome, OutputFile, PluginRuntime,
    ScanRequest, TemplateType,
};

/// A directory holding the 0.1.0 hostile plugin and the three real 0.2.0 plugins.
fn mixed_plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(test_plugin("hostile.wasm"), dir.path().join("hostile.wasm")).unwrap();
    for tool in ["terrascan", "checkov", "prowler"] {
        let file = format!("{tool}.wasm");
        std::fs::copy(real_plugin(&file), dir.path().join(&file)).unwrap();
    }
    dir
}

fn load(dir: &Path, cache: Option<&Path>) -> (PluginRuntime, usize, usize) {
    let mut runtime = PluginRuntime::new(quick_config(), cache.map(Path::to_owned)).unwrap();
    let report = runtime.load_dir(dir);
    assert!(report.skipped.is_empty(), "{report:#?}");
    assert_eq!(report.loaded.len(), 4, "{report:#?}");
    (runtime, report.compiled, report.from_cache)
}

fn scan_request(template_type: TemplateType) -> ScanRequest {
    ScanRequest {
        directory: "/var/lib/toolgate/scans/7/tree".into(),
        template_type,
        template_version: Some("0.13".into()),
        files: Vec::new(),
        folders: vec!["dev".into()],
        variables: vec![("region".into(), "us-east-1".into())],
        variable_files: vec!["dev.tfvars".into()],
    }
}

#[test]
fn each_plugin_reports_the_contract_it_implements() {
    let dir = mixed_plugin_dir();
    let (runtime, _, _) = load(dir.path(), None);
    // (tool, contract, scan template types, version args)
    let table: &[(&str, ContractVersion, &[TemplateType], &[&str])] = &[
        ("hostile", ContractVersion::V0_1_0, &[], &[]),
        (
            "terrascan",
            ContractVersion::V0_2_0,
            &[TemplateType::Tf, TemplateType::Cft, TemplateType::K8s],
            &["version"],
        ),
        (
            "checkov",
            ContractVersion::V0_2_0,
            &[TemplateType::Tf, TemplateType::Cft, TemplateType::K8s],
            &["--version"],
        ),
        ("prowler", ContractVersion::V0_2_0, &[], &["--version"]),
    ];
    for (tool, contract, template_types, version_args) in table {
        let description = runtime.describe(tool).unwrap();
        assert_eq!(description.contract, *contract, "{tool}");
        assert_eq!(description.scan_template_types, *template_types, "{tool}");
        assert_eq!(description.version_args, *version_args, "{tool}");
    }
}

#[test]
fn both_versions_answer_plan_and_parse_side_by_side() {
    let dir = mixed_plugin_dir();
    let (runtime, _, _) = load(dir.path(), None);
    let plan = runtime
        .plan("hostile", r#"{"mode":"ok"}"#, &plan_context())
        .unwrap()
        .unwrap();
    assert_eq!(plan.args.len(), 3);
    let plan = runtime
        .plan("terrascan", r#"{"scan_type":"terraform"}"#, &plan_context())
        .unwrap()
        .unwrap();
    assert_eq!(
        plan.args[..3],
        [
            Arg::Literal("scan".into()),
            Arg::Literal("-i".into()),
            Arg::Literal("terraform".into())
        ]
    );
    let refused = runtime
        .plan("terrascan", r#"{"scan_type":"nope"}"#, &plan_context())
        .unwrap()
        .unwrap_err();
    assert_eq!(refused[0].field, "scan_type");

    // The 0.1.0 plugin's outcome is lent through the old types and comes back whole.
    let outcome = Outcome {
        exit_code: Some(0),
        stdout: b"ok".to_vec(),
        files: vec![OutputFile {
            name: "report.json".into(),
            content: vec![7; 1000],
            truncated: false,
        }],
        ..Outcome::default()
    };
    let (parsed, returned) = runtime.parse_owned("hostile", outcome.clone());
    assert_eq!(returned, outcome);
    let parsed = parsed.unwrap();
    assert_eq!(parsed.classification, Classification::Findings);
    assert_eq!(
        parsed.findings[0].description,
        "stdout 2 bytes, 1 files, 1000 file bytes"
    );
    assert_eq!(parsed.findings[0].file.as_deref(), Some("report.json"));
    let parsed = runtime
        .parse(
            "terrascan",
            &Outcome {
                exit_code: Some(0),
                stdout: br#"{"results":{"violations":null,"scan_summary":{}}}"#.to_vec(),
                ..Outcome::default()
            },
        )
        .unwrap();
    assert_eq!(parsed.classification, Classification::Clean, "{parsed:?}");
}

#[test]
fn plan_scan_answers_for_0_2_0_and_refuses_0_1_0_cleanly() {
    let dir = mixed_plugin_dir();
    let (runtime, _, _) = load(dir.path(), None);

    let scan = runtime
        .plan_scan(
            "terrascan",
            &scan_request(TemplateType::Tf),
            &plan_context(),
        )
        .unwrap()
        .unwrap();
    let tree = "/var/lib/toolgate/scans/7/tree";
    let literal = |s: &str| Arg::Literal(s.into());
    assert_eq!(
        scan.plan.args,
        [
            literal("scan"),
            literal("-i"),
            literal("terraform"),
            literal("--iac-version"),
            literal("v13"),
            literal("-d"),
            Arg::InputPath(format!("{tree}/dev")),
            literal("-o"),
            literal("json"),
        ]
    );
    assert_eq!(scan.not_applied.len(), 2, "{:?}", scan.not_applied);
    assert!(
        scan.not_applied[0].starts_with("variables: "),
        "{:?}",
        scan.not_applied
    );
    assert!(
        scan.not_applied[1].starts_with("variable-files: "),
        "{:?}",
        scan.not_applied
    );

    let scan = runtime
        .plan_scan("checkov", &scan_request(TemplateType::Tf), &plan_context())
        .unwrap()
        .unwrap();
    assert!(
        scan.plan
            .args
            .contains(&Arg::InputPath(format!("{tree}/dev.tfvars")))
    );
    assert!(scan.plan.args.contains(&literal("--director")));
    assert!(!scan.plan.args.contains(&literal("--directory")));

    let refused = runtime
        .plan_scan("prowler", &scan_request(TemplateType::K8s), &plan_context())
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].field, "template-type");
    assert!(
        refused[0]
            .message
            .contains("prowler scans cloud accounts, not templates")
    );

    let error = runtime
        .plan_scan("hostile", &scan_request(TemplateType::Tf), &plan_context())
        .unwrap_err();
    assert_eq!(error.call, "plan-scan");
    assert_eq!(
        error.reason,
        CallFailure::NotInContract {
            contract: ContractVersion::V0_1_0
        }
    );
    assert!(
        error.to_string().contains("toolgate:plugin@0.1.0"),
        "{error}"
    );
    // Refusing ran no guest code, and the plugin still answers.
    common::assert_ok_plan(&runtime);

    let unknown = runtime
        .plan_scan("nope", &scan_request(TemplateType::Tf), &plan_context())
        .unwrap_err();
    assert_eq!(unknown.reason, CallFailure::UnknownTool);
}

#[test]
fn the_cache_serves_both_versions_after_a_restart() {
    let dir = mixed_plugin_dir();
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("plugins");
    let (_, compiled, from_cache) = load(dir.path(), Some(&cache));
    assert_eq!((compiled, from_cache), (4, 0));
    let (runtime, compiled, from_cache) = load(dir.path(), Some(&cache));
    assert_eq!((compiled, from_cache), (0, 4));
    assert_eq!(
        runtime.describe("hostile").unwrap().contract,
        ContractVersion::V0_1_0
    );
    assert_eq!(
        runtime.describe("terrascan").unwrap().contract,
        ContractVersion::V0_2_0
    );
    common::assert_ok_plan(&runtime);
    assert!(
        runtime
            .plan_scan(
                "terrascan",
                &scan_request(TemplateType::K8s),
                &plan_context()
            )
            .unwrap()
            .is_ok()
    );
}
