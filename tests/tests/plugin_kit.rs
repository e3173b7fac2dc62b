//! Black-box tests of the plugin author's kit: `toolgate plugin check` on the real plugins, the
//! template and the hostile test plugins, and `toolgate plugin parse` on captured real output.

use std::process::{Command, Output};

use serde_json::Value;
use toolgate_tests::{built_component, repo_root, toolgate_binary};

fn toolgate(args: &[&str]) -> Output {
    Command::new(toolgate_binary())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run toolgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// (component, recipe, passes, a line the report must contain)
#[test]
fn check_passes_real_plugins_and_fails_hostile_ones_with_reasons() {
    let table: &[(&str, &str, bool, &str)] = &[
        (
            "target/plugins/terrascan.wasm",
            "just build-plugins",
            true,
            "tool terrascan, contract 0.2.0",
        ),
        (
            "target/plugins/prowler.wasm",
            "just build-plugins",
            true,
            "tool prowler, contract 0.2.0",
        ),
        (
            "target/plugins/checkov.wasm",
            "just build-plugins",
            true,
            "tool checkov, contract 0.2.0",
        ),
        (
            "target/test-plugins/template.wasm",
            "just build-test-plugins",
            true,
            "tool template, contract 0.2.0",
        ),
        (
            "target/test-plugins/hostile.wasm",
            "just build-test-plugins",
            false,
            "problem: plan accepted the unknown parameter",
        ),
        (
            "target/test-plugins/trap-at-load.wasm",
            "just build-test-plugins",
            false,
            "problem: does not load:",
        ),
    ];
    for (relative, recipe, passes, expected) in table {
        let path = built_component(relative, recipe);
        let output = toolgate(&["plugin", "check", path.to_str().expect("utf-8")]);
        let stdout = text(&output.stdout);
        assert_eq!(output.status.success(), *passes, "{relative}: {stdout}");
        assert_eq!(
            output.status.code(),
            Some(if *passes { 0 } else { 1 }),
            "{relative}"
        );
        assert!(
            stdout.starts_with(if *passes { "PASS" } else { "FAIL" }),
            "{stdout}"
        );
        assert!(stdout.contains(expected), "{relative}: {stdout}");
    }
}

#[test]
fn check_json_reports_figures_and_refuses_a_file_that_is_not_a_component() {
    let path = built_component("target/plugins/checkov.wasm", "just build-plugins");
    let output = toolgate(&["plugin", "check", "--json", path.to_str().expect("utf-8")]);
    assert!(output.status.success(), "{}", text(&output.stdout));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["tool"], "checkov");
    assert!(report["load_ms"].as_u64().is_some());
    assert!(report["plan_us"].as_u64().is_some());
    assert_eq!(report["problems"], serde_json::json!([]));

    let not_wasm = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(not_wasm.path(), b"#!/bin/sh\necho hi\n").expect("write");
    let output = toolgate(&["plugin", "check", not_wasm.path().to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("problem: does not load"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn parse_runs_the_plugin_on_captured_output() {
    built_component("target/plugins/checkov.wasm", "just build-plugins");
    let output = toolgate(&[
        "plugin",
        "parse",
        "checkov",
        "--exit-code",
        "1",
        "--stdout",
        "tests/fixtures/checkov/public_bucket_open_ssh_quiet.json",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON result");
    assert_eq!(result["classification"], "findings");
    let open_ssh = result["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule_id"] == "CKV_AWS_24")
        .expect("CKV_AWS_24");
    assert_eq!(open_ssh["file"], "main.tf");
    assert_eq!(open_ssh["severity"], "high");

    // prowler's findings come from its output directory, not stdout.
    let out = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo_root().join("tests/fixtures/prowler/aws_s3_iam.ocsf.json"),
        out.path().join("aws_s3_iam.ocsf.json"),
    )
    .expect("copy");
    let output = toolgate(&[
        "plugin",
        "parse",
        "prowler",
        "--exit-code",
        "3",
        "--stdout",
        "tests/fixtures/prowler/aws_s3_iam.stdout.txt",
        "--output-dir",
        out.path().to_str().expect("utf-8"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON result");
    assert_eq!(result["classification"], "findings");
    assert!(!result["findings"].as_array().expect("findings").is_empty());

    // A crash is a tool error quoting stderr, and an unknown tool is an error.
    let stderr = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(stderr.path(), b"Traceback\nValueError: boom\n").expect("write");
    let output = toolgate(&[
        "plugin",
        "parse",
        "checkov",
        "--exit-code",
        "2",
        "--stdout",
        "/dev/null",
        "--stderr",
        stderr.path().to_str().expect("utf-8"),
    ]);
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON result");
    assert_eq!(result["classification"], "tool_error");
    assert!(
        result["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ValueError: boom")
    );
    let output = toolgate(&[
        "plugin",
        "parse",
        "nosuchtool",
        "--exit-code",
        "0",
        "--stdout",
        "/dev/null",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("unknown tool \"nosuchtool\""),
        "{}",
        text(&output.stderr)
    );
}
