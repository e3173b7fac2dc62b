//! The queue at the service level, with a fake executor and a real SQLite store: many scans
//! all finish, scans a dead daemon left running are re-run (or `error` past the retry limit),
//! a graceful shutdown leaves none running, refusals and full slots are handled.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use toolgate_model::{
    AssetType, FailureCriteria, ScanState, Severity, TemplateParameters, TemplateType,
};
use toolgate_store::{ScanStore, SqliteStore};

use super::*;

/// How the fake runs a scan, chosen by the scan's tool name.
#[derive(Default)]
struct FakeExecutor {
    started: AtomicUsize,
    /// Tool `busy-once`: the first start of each scan is refused as busy.
    busy_seen: Mutex<Vec<ScanId>>,
}

fn finding(rule: &str, severity: Severity) -> Finding {
    Finding {
        rule_id: rule.into(),
        title: rule.into(),
        severity,
        description: String::new(),
        resource_type: "aws_s3_bucket".into(),
        resource_name: "b".into(),
        file: Some("main.tf".into()),
        line: Some(2),
        category: String::new(),
        documentation_url: None,
    }
}

impl ScanExecutor for FakeExecutor {
    fn start(&self, input: ScanJobInput) -> BoxFuture<Result<RunningScanJob, StartError>> {
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        let job_id = format!("job-{n}");
        let cancel = CancellationToken::new();
        let tool = input.request.tool.clone();
        if tool == "busy-once" {
            let mut seen = self.busy_seen.lock().unwrap_or_else(|p| p.into_inner());
            if !seen.contains(&input.scan_id) {
                seen.push(input.scan_id.clone());
                return Box::pin(async { Err(StartError::Busy("all slots taken".into())) });
            }
        }
        let end: BoxFuture<ScanJobEnd> = match tool.as_str() {
            "refused" => {
                return Box::pin(async {
                    Err(StartError::Refused {
                        code: "unknown_tool".into(),
                        detail: "no tool named refused".into(),
                    })
                });
            }
            "blocks" => {
                let cancelled = cancel.clone();
                Box::pin(async move {
                    cancelled.cancelled().await;
                    ScanJobEnd::Cancelled
                })
            }
            "fails" => Box::pin(async {
                ScanJobEnd::Failed {
                    code: "timed_out".into(),
                    detail: "the tool ran out of time".into(),
                }
            }),
            _ => {
                // Even-numbered scans (the id's last group is the number) get a high finding.
                let number = u64::from_str_radix(&input.scan_id.as_str()[24..], 16);
                let high = number.is_ok_and(|number| number % 2 == 0);
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    ScanJobEnd::Completed {
                        findings: if high {
                            vec![finding("H", Severity::High), finding("I", Severity::Info)]
                        } else {
                            vec![finding("I", Severity::Info)]
                        },
                        not_applied: Vec::new(),
                    }
                })
            }
        };
        Box::pin(async move {
            Ok(RunningScanJob {
                job_id,
                cancel,
                end,
            })
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    store: Arc<SqliteStore>,
    executor: Arc<FakeExecutor>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let (store, _) = SqliteStore::open(&path, 10).expect("open");
    Fixture {
        path,
        _dir: dir,
        store: Arc::new(store),
        executor: Arc::new(FakeExecutor::default()),
    }
}

impl Fixture {
    fn service(&self, workers: usize, max_attempts: u32) -> ScanService {
        ScanService::new(
            Arc::clone(&self.store) as Arc<dyn ScanStore>,
            Arc::clone(&self.executor) as Arc<dyn ScanExecutor>,
            ScanSettings {
                shared_store: false,
                lease: toolgate_store::DEFAULT_SCAN_LEASE,
                workers,
                max_attempts,
            },
            self.path.with_file_name("scans"),
        )
    }
}

fn id(n: u32) -> ScanId {
    ScanId::parse(&format!("00000000-0000-7000-8000-{n:012x}")).expect("id")
}

fn new_scan(n: u32) -> NewScan {
    NewScan {
        id: id(n),
        asset_name: "repo".into(),
        asset_type: AssetType::GitHub,
        tags: BTreeMap::new(),
        scan_attributes: BTreeMap::new(),
        failure_criteria: FailureCriteria::default(),
        user: "ci".into(),
        tenant: OWNER.into(),
        created_at: Utc::now(),
    }
}

/// The tenant every scan here belongs to.
const OWNER: &str = "acme";

fn request(tool: &str) -> ScanRequest {
    ScanRequest {
        template_type: TemplateType::Tf,
        template_version: None,
        parameters: TemplateParameters::default(),
        tool: tool.into(),
    }
}

fn upload() -> UploadInfo {
    UploadInfo {
        bytes: 1,
        sha256: "00".repeat(32),
        files: 1,
        uploaded_at: Utc::now(),
    }
}

/// Creates, uploads and initiates scan `n` for `tool` through the service.
async fn queue(service: &ScanService, n: u32, tool: &str) {
    service.create(new_scan(n)).await.expect("create");
    service
        .record_upload(id(n), format!("nonce-{n}"), upload())
        .await
        .expect("upload");
    service
        .initiate(id(n), request(tool), OWNER)
        .await
        .expect("initiate");
}

/// Waits until scan `n` is in one of `states`.
async fn until(service: &ScanService, n: u32, states: &[ScanState]) -> Scan {
    let wait = async {
        loop {
            let scan = service.status(id(n), OWNER).await.expect("status");
            if states.contains(&scan.state) {
                return scan;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("scan {n} never reached {states:?}"))
}

const ENDINGS: [ScanState; 3] = [ScanState::Passed, ScanState::Failed, ScanState::Error];

#[tokio::test]
async fn fifty_queued_scans_all_finish_and_are_judged() {
    let fx = fixture();
    let service = fx.service(4, 3);
    service.start().await.expect("start");
    const SCANS: u32 = 50;
    for n in 0..SCANS {
        queue(&service, n, "fake").await;
    }
    for n in 0..SCANS {
        let scan = until(&service, n, &ENDINGS).await;
        // Even scans have a high finding: the default criteria fail them.
        let expected = if n % 2 == 0 {
            ScanState::Failed
        } else {
            ScanState::Passed
        };
        assert_eq!(scan.state, expected, "scan {n}");
        assert_eq!(scan.attempts, 1);
        assert!(scan.job_id.is_some(), "scan {n} names its job");
        let (_, findings) = service.results(id(n), OWNER).await.expect("results");
        assert_eq!(findings.len(), if n % 2 == 0 { 2 } else { 1 });
    }
    assert_eq!(fx.executor.started.load(Ordering::SeqCst), SCANS as usize);
    service.shutdown().await;
}

#[tokio::test]
async fn scans_left_running_are_rerun_and_past_the_limit_end_in_error() {
    let fx = fixture();
    // Two daemons died while scans 1 and 2 were running: each scan was started twice.
    let before = fx.service(1, 2);
    queue(&before, 1, "fake").await;
    queue(&before, 2, "fake").await;
    for crash in 0..2 {
        for _scan in 0..2 {
            fx.store
                .claim_next(Utc::now())
                .await
                .expect("claim")
                .expect("queued");
        }
        if crash == 0 {
            let recovered = fx
                .store
                .recover_scans(3, Utc::now())
                .await
                .expect("recover");
            assert_eq!(recovered.requeued.len(), 2);
        }
    }
    assert_eq!(
        before.status(id(1), OWNER).await.expect("status").attempts,
        2
    );
    // Scan 3 was queued and never started.
    queue(&before, 3, "fake").await;
    // The daemon restarts with max_attempts 3: both are re-run (their third attempt), and
    // scan 3 runs.
    let service = fx.service(2, 3);
    let recovered = service.start().await.expect("start");
    assert_eq!(recovered.requeued.len(), 2);
    assert!(recovered.failed.is_empty());
    for n in 1..=3 {
        let scan = until(&service, n, &ENDINGS).await;
        assert_ne!(scan.state, ScanState::Error, "scan {n}");
        assert_eq!(scan.attempts, if n == 3 { 1 } else { 3 }, "scan {n}");
    }
    service.shutdown().await;
}

#[tokio::test]
async fn a_scan_out_of_attempts_ends_in_error_with_the_reason() {
    let fx = fixture();
    let before = fx.service(1, 1);
    queue(&before, 1, "fake").await;
    fx.store
        .claim_next(Utc::now())
        .await
        .expect("claim")
        .expect("1");
    let service = fx.service(1, 1);
    let recovered = service.start().await.expect("start");
    assert_eq!(recovered.failed, vec![id(1)]);
    let scan = service.status(id(1), OWNER).await.expect("status");
    assert_eq!(scan.state, ScanState::Error);
    let details = scan.outcome.expect("outcome").error_details;
    assert_eq!(details[0].code, "retries_exhausted");
    assert!(
        details[0].detail.contains("at most 1 times"),
        "{}",
        details[0].detail
    );
    assert_eq!(
        fx.executor.started.load(Ordering::SeqCst),
        0,
        "never re-run"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_graceful_shutdown_leaves_no_scan_running_and_uses_no_attempt() {
    let fx = fixture();
    let service = fx.service(2, 3);
    service.start().await.expect("start");
    for n in 0..3 {
        queue(&service, n, "blocks").await;
    }
    // Two workers: two scans run (and block), the third waits.
    let wait_running = async {
        loop {
            let page = service
                .list(ScanQuery::default(), OWNER)
                .await
                .expect("list");
            let running = page
                .scans
                .iter()
                .filter(|scan| scan.state == ScanState::Running && scan.job_id.is_some())
                .count();
            if running == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait_running)
        .await
        .expect("two scans run");
    tokio::time::timeout(Duration::from_secs(20), service.shutdown())
        .await
        .expect("shutdown ends");
    for n in 0..3 {
        let scan = service.status(id(n), OWNER).await.expect("status");
        assert_eq!(scan.state, ScanState::Queued, "scan {n}");
        assert_eq!(scan.attempts, 0, "scan {n}");
        assert_eq!(scan.job_id, None);
    }
}

#[tokio::test]
async fn refused_and_failed_jobs_end_in_error_and_a_busy_daemon_retries() {
    let fx = fixture();
    let service = fx.service(1, 3);
    service.start().await.expect("start");
    queue(&service, 1, "refused").await;
    queue(&service, 2, "fails").await;
    queue(&service, 3, "busy-once").await;
    let refused = until(&service, 1, &ENDINGS).await;
    assert_eq!(refused.state, ScanState::Error);
    assert_eq!(
        refused.outcome.expect("outcome").error_details[0].code,
        "unknown_tool"
    );
    let failed = until(&service, 2, &ENDINGS).await;
    assert_eq!(failed.state, ScanState::Error);
    assert_eq!(
        failed.outcome.expect("outcome").error_details[0].code,
        "timed_out"
    );
    let retried = until(&service, 3, &ENDINGS).await;
    assert_eq!(retried.state, ScanState::Passed);
    assert_eq!(
        retried.attempts, 1,
        "a busy daemon's refusal uses no attempt"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn operations_refuse_unknown_scans_and_wrong_states() {
    let fx = fixture();
    let service = fx.service(1, 3);
    assert!(matches!(
        service.status(id(9), OWNER).await,
        Err(ScanError::Refused(Refused::UnknownScan(_)))
    ));
    assert!(matches!(
        service.results(id(9), OWNER).await,
        Err(ScanError::Refused(Refused::UnknownScan(_)))
    ));
    service.create(new_scan(1)).await.expect("create");
    assert!(matches!(
        service.initiate(id(1), request("fake"), OWNER).await,
        Err(ScanError::Refused(Refused::NotUploaded { .. }))
    ));
}

#[tokio::test]
async fn expired_scans_lose_their_folders() {
    let fx = fixture();
    let service = fx.service(1, 3);
    service.create(new_scan(1)).await.expect("create");
    service.create(new_scan(2)).await.expect("create");
    std::fs::create_dir_all(service.tree(&id(1)).join("dev")).expect("mkdir");
    std::fs::write(service.tree(&id(1)).join("dev/main.tf"), "x").expect("write");
    let now = Utc::now();
    let expired = service
        .delete_expired(now, now + chrono::Duration::seconds(1))
        .await
        .expect("expire");
    assert_eq!(expired.len(), 2);
    assert!(!service.folder(&id(1)).exists());
    assert!(matches!(
        service.status(id(1), OWNER).await,
        Err(ScanError::Refused(Refused::UnknownScan(_)))
    ));
}
