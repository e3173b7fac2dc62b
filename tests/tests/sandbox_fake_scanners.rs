//! The fake tool's scanner personalities, run through the sandbox as the daemon will: as
//! `terrascan` it prints a terrascan JSON result and exits 3; as `prowler` it writes an OCSF
//! file into its output directory and exits 3.

mod sandbox_support;

use std::time::Duration;

use sandbox_support::*;
use toolgate_sandbox::{Arg, resolve_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terrascan_and_prowler_personalities() {
    let f = fixture(|_| {});
    let bin = f.tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for name in ["terrascan", "prowler"] {
        std::fs::copy(fake_tool(), bin.join(name)).unwrap();
    }
    let search_path = bin.to_str().unwrap();

    let terrascan = resolve_binary(None, "terrascan", search_path).unwrap();
    let args = [
        Arg::Literal("scan".into()),
        Arg::Literal("-d".into()),
        Arg::InputPath(".".into()),
        Arg::Literal("-o".into()),
        Arg::Literal("json".into()),
    ];
    let result = f
        .run_spec(&args, spec(&terrascan, Duration::from_secs(20)))
        .await;
    assert_eq!(result.exit_code, Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(doc["results"]["violations"][0]["rule_id"], "AC_AWS_0001");

    let prowler = resolve_binary(None, "prowler", search_path).unwrap();
    let args = [
        Arg::Literal("aws".into()),
        Arg::Literal("--output-directory".into()),
        // One new directory directly below the output root (a nested path is refused).
        Arg::RequestedOutputDir("prowler-run1".into()),
    ];
    let result = f
        .run_spec(&args, spec(&prowler, Duration::from_secs(20)))
        .await;
    assert_eq!(
        result.exit_code,
        Some(3),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(result.output_dir.ends_with("prowler-run1"));
    let written: Vec<_> = std::fs::read_dir(&result.output_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ocsf.json"))
        .collect();
    assert_eq!(written.len(), 1);
    let findings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(written[0].path()).unwrap()).unwrap();
    assert_eq!(findings[0]["status_code"], "FAIL");

    assert!(resolve_binary(None, "checkov", search_path).is_err());
}
