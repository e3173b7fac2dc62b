//! A scan through the real job path: the real terrascan plugin (contract 0.2.0's `plan-scan`),
//! the sandbox with the scan's tree as the job's only input root, the fake terrascan binary and
//! the plugin's `parse`. Needs `just build-plugins` and the fake tool (`just test` builds both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use toolgate_model::{
    AssetType, FailureCriteria, JobStatus, NewScan, ScanId, ScanRequest, ScanState,
    TemplateParameters, TemplateType, UploadInfo,
};

use crate::api::AppState;
use crate::api::auth::IMPLICIT_TENANT;
use crate::config::Config;

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

fn state(dir: &Path) -> AppState {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    assert!(
        plugins.join("terrascan.wasm").is_file(),
        "{}/terrascan.wasm is missing: run `just build-plugins` (`just test` does)",
        plugins.display()
    );
    let fake = profile_dir().join("toolgate-fake-tool");
    assert!(
        fake.is_file(),
        "{} is missing: run `cargo build -p toolgate-tests --bin toolgate-fake-tool`",
        fake.display()
    );
    let workspace = dir.join("workspace");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    std::fs::create_dir_all(dir.join("tools")).expect("mkdir");
    let terrascan = dir.join("tools/terrascan");
    std::fs::copy(&fake, &terrascan).expect("copy fake tool");
    let text = format!(
        "data_dir = \"data\"\n\
         plugins_dir = {plugins:?}\n\
         [sandbox]\n\
         allowed_dirs = [{workspace:?}]\n\
         output_root = \"data/output\"\n\
         [tools.terrascan]\n\
         binary = {terrascan:?}\n\
         [scans]\n\
         workers = 2\n",
        plugins = plugins.display().to_string(),
        workspace = workspace.display().to_string(),
        terrascan = terrascan.display().to_string(),
    );
    let config = Config::from_toml_in(&text, dir).expect("config");
    crate::daemon::build_state(&config).expect("state")
}

fn id(n: u32) -> ScanId {
    ScanId::parse(&format!("00000000-0000-7000-9000-{n:012x}")).expect("id")
}

/// Creates scan `n`, writes its tree, records its upload and initiates it for `tool`.
async fn queue(state: &AppState, n: u32, tool: &str, parameters: TemplateParameters) {
    let scans = &state.scans;
    scans
        .create(NewScan {
            id: id(n),
            asset_name: "repo".into(),
            asset_type: AssetType::IacApi,
            tags: BTreeMap::new(),
            scan_attributes: BTreeMap::new(),
            failure_criteria: FailureCriteria::default(),
            user: "ci".into(),
            tenant: IMPLICIT_TENANT.into(),
            created_at: Utc::now(),
        })
        .await
        .expect("create");
    let tree = scans.tree(&id(n));
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(
        tree.join("main.tf"),
        "resource \"aws_s3_bucket\" \"b\" {}\n",
    )
    .expect("tf");
    scans
        .record_upload(
            id(n),
            format!("nonce-{n}"),
            UploadInfo {
                bytes: 36,
                sha256: "00".repeat(32),
                files: 1,
                uploaded_at: Utc::now(),
            },
        )
        .await
        .expect("upload");
    scans
        .initiate(
            id(n),
            ScanRequest {
                template_type: TemplateType::Tf,
                template_version: None,
                parameters,
                tool: tool.into(),
            },
            IMPLICIT_TENANT,
        )
        .await
        .expect("initiate");
}

async fn ended(state: &AppState, n: u32) -> toolgate_model::Scan {
    let wait = async {
        loop {
            let scan = state
                .scans
                .status(id(n), IMPLICIT_TENANT)
                .await
                .expect("status");
            if scan.state.is_terminal() {
                return scan;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("the scan ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_runs_through_plan_scan_the_sandbox_and_parse_as_a_recorded_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = state(dir.path());
    state.scans.start().await.expect("start");
    let mut variables = BTreeMap::new();
    variables.insert("region".to_string(), "eu-west-1".to_string());
    queue(
        &state,
        1,
        "terrascan",
        TemplateParameters {
            variables,
            ..TemplateParameters::default()
        },
    )
    .await;
    // An unknown tool: refused for good, not retried.
    queue(&state, 2, "nosuchtool", TemplateParameters::default()).await;
    let scan = ended(&state, 1).await;
    // The fake terrascan reports violations: the default criteria fail the scan.
    assert_eq!(scan.state, ScanState::Failed, "{scan:?}");
    let outcome = scan.outcome.clone().expect("outcome");
    assert!(outcome.counts.total() > 0, "{outcome:?}");
    let not_applied: Vec<&str> = outcome
        .error_details
        .iter()
        .filter(|detail| detail.code == super::NOT_APPLIED)
        .map(|detail| detail.detail.as_str())
        .collect();
    assert!(
        not_applied
            .iter()
            .any(|detail| detail.starts_with("variables")),
        "variables are reported as not applied: {not_applied:?}"
    );
    let (_, findings) = state
        .scans
        .results(id(1), IMPLICIT_TENANT)
        .await
        .expect("results");
    assert_eq!(findings.len() as u64, outcome.counts.total());
    // The scan's job is an ordinary recorded job whose input root was the scan's tree.
    let job_id = scan.job_id.expect("the scan names its job");
    let job = state
        .jobs
        .job(&job_id, IMPLICIT_TENANT)
        .await
        .expect("job")
        .expect("recorded");
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.params["scan_id"], id(1).as_str());
    let tree = state.scans.tree(&id(1)).canonicalize().expect("tree");
    assert!(
        job.argv.iter().any(|arg| Path::new(arg) == tree),
        "terrascan scans the tree: {:?}",
        job.argv
    );
    let refused = ended(&state, 2).await;
    assert_eq!(refused.state, ScanState::Error);
    assert_eq!(
        refused.outcome.expect("outcome").error_details[0].code,
        "unknown_tool"
    );
    state.scans.shutdown().await;
}
