//! Listing stored scans: 10,000 scans in the SQLite store (a third finished with findings, the
//! rest awaiting upload, uploaded or queued), then filtered, sorted pages of 50 as
//! `GET /iac/v2/scans` asks for them, each query repeated; prints each query's median and p90
//! (issue #15's target: a filtered, sorted page of 50 out of 10,000 in at most 20 ms median).
//!
//! Run: `cargo bench -p toolgate-store --bench scans [-- SCANS [REPEATS]]`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use toolgate_model::{
    AssetType, CriteriaFilter, Direction, FailureCriteria, Finding, NewScan, Operator, Page,
    ScanId, ScanOutcome, ScanQuery, ScanRequest, ScanState, ScanStatus, Severity, SeverityCounts,
    SortField, TemplateParameters, TemplateType, TimeWindow, UploadInfo,
};
use toolgate_store::{ScanStore, SqliteStore};

/// Scans stored unless given on the command line.
const DEFAULT_SCANS: u32 = 10_000;
/// Times each query runs unless given.
const DEFAULT_REPEATS: usize = 200;
/// The page size of the target.
const PAGE_SIZE: u32 = 50;

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let scans = numbers.first().map_or(DEFAULT_SCANS, |&n| n as u32);
    let repeats = numbers.get(1).map_or(DEFAULT_REPEATS, |&n| n as usize);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("bench.sqlite3"), 100).expect("open");
    let seeding = Instant::now();
    runtime.block_on(seed(&store, scans));
    println!(
        "{scans} scans stored in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let page = |number| Page::new(PAGE_SIZE, number).expect("page");
    let queries: Vec<(&str, ScanQuery)> = vec![
        (
            "no filter, newest first, page 1",
            ScanQuery {
                page: page(1),
                ..ScanQuery::default()
            },
        ),
        (
            "status failed, newest first, page 2",
            ScanQuery {
                statuses: vec![ScanStatus::Failed],
                page: page(2),
                ..ScanQuery::default()
            },
        ),
        (
            "asset type + user, by asset name, page 3",
            ScanQuery {
                asset_types: vec![AssetType::GitHub],
                users: vec!["user-3".into()],
                sort: vec![(SortField::AssetName, Direction::Ascending)],
                page: page(3),
                ..ScanQuery::default()
            },
        ),
        (
            "tag + time window, oldest first, page 1",
            ScanQuery {
                tags: vec![("team".into(), Some("team-7".into()))],
                window: TimeWindow {
                    from: Some(minute(1_000)),
                    to: Some(minute(8_000)),
                },
                sort: vec![(SortField::ScanTime, Direction::Ascending)],
                page: page(1),
                ..ScanQuery::default()
            },
        ),
        (
            "resource + failure criteria, by status, page 1",
            ScanQuery {
                resources: vec!["aws_s3_bucket.bucket_3".into()],
                failure_criteria: Some(CriteriaFilter {
                    high: Some(1),
                    medium: Some(1),
                    low: Some(1),
                    operator: Some(Operator::Or),
                }),
                sort: vec![(SortField::Status, Direction::Descending)],
                page: page(1),
                ..ScanQuery::default()
            },
        ),
        (
            "last page of everything, by user",
            ScanQuery {
                sort: vec![(SortField::User, Direction::Descending)],
                page: page(scans.div_ceil(PAGE_SIZE)),
                ..ScanQuery::default()
            },
        ),
    ];
    for (name, query) in queries {
        let mut times: Vec<Duration> = Vec::with_capacity(repeats);
        let mut found = 0;
        for _ in 0..repeats {
            let started = Instant::now();
            let listed = runtime
                .block_on(store.list_scans(query.clone()))
                .expect("list");
            times.push(started.elapsed());
            found = listed.totals.all;
        }
        times.sort();
        let at = |share: f64| times[((times.len() - 1) as f64 * share) as usize];
        println!(
            "{name}: {found} match; page of {PAGE_SIZE}: median {:.2} ms, p90 {:.2} ms",
            at(0.5).as_secs_f64() * 1e3,
            at(0.9).as_secs_f64() * 1e3,
        );
    }
}

fn minute(n: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        + chrono::Duration::minutes(i64::from(n))
}

fn id(n: u32) -> ScanId {
    ScanId::parse(&format!("00000000-0000-7000-8000-{n:012x}")).expect("id")
}

/// Stores `scans` scans; every third one runs and finishes with findings (failed when one is
/// high), the rest stop at a state before running.
async fn seed(store: &SqliteStore, scans: u32) {
    const ASSET_TYPES: [AssetType; 4] = [
        AssetType::GitHub,
        AssetType::Jenkins,
        AssetType::GitLabCicd,
        AssetType::IacApi,
    ];
    for n in 0..scans {
        store
            .create_scan(NewScan {
                id: id(n),
                asset_name: format!("repo-{}", n % 97),
                asset_type: ASSET_TYPES[(n % 4) as usize],
                tags: BTreeMap::from([("team".to_string(), format!("team-{}", n % 13))]),
                scan_attributes: BTreeMap::from([("build".to_string(), n.to_string())]),
                failure_criteria: FailureCriteria::default(),
                user: format!("user-{}", n % 11),
                tenant: "local".into(),
                created_at: minute(n),
            })
            .await
            .expect("create");
        if n % 3 == 1 {
            continue;
        }
        let upload = UploadInfo {
            bytes: 1_000,
            sha256: "ab".repeat(32),
            files: 3,
            uploaded_at: minute(n),
        };
        store
            .record_upload(id(n), format!("nonce-{n}"), upload)
            .await
            .expect("upload");
        if n % 3 == 2 {
            continue;
        }
        let request = ScanRequest {
            template_type: TemplateType::Tf,
            template_version: None,
            parameters: TemplateParameters::default(),
            tool: "terrascan".into(),
        };
        store
            .initiate(id(n), request, minute(n))
            .await
            .expect("initiate");
        let claimed = store
            .claim_next(minute(n))
            .await
            .expect("claim")
            .expect("queued");
        let severity = if n % 2 == 0 {
            Severity::High
        } else {
            Severity::Info
        };
        let findings: Vec<Finding> = (0..4)
            .map(|k| Finding {
                rule_id: format!("AC_AWS_{k:04}"),
                title: "S3 bucket without server-side encryption".into(),
                severity,
                description: "Ensure S3 buckets are encrypted at rest".into(),
                resource_type: "aws_s3_bucket".into(),
                resource_name: format!("bucket_{}", (n + k) % 50),
                file: Some("main.tf".into()),
                line: Some(12),
                category: "Data Protection".into(),
                documentation_url: None,
            })
            .collect();
        let counts = SeverityCounts::of(findings.iter().map(|finding| &finding.severity));
        let state = if FailureCriteria::default().fails(&counts) {
            ScanState::Failed
        } else {
            ScanState::Passed
        };
        let outcome = ScanOutcome {
            counts,
            error_details: Vec::new(),
            resources: findings
                .iter()
                .map(|finding| format!("{}.{}", finding.resource_type, finding.resource_name))
                .collect(),
        };
        store
            .finish_scan(claimed.id, state, outcome, findings, minute(n))
            .await
            .expect("finish");
    }
}
