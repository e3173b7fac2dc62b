//! Claiming a queued scan with 10,000 scans queued, on SQLite and on PostgreSQL in the same
//! run (issue #19's target: at most 2 ms median per claim). Each backend gets 10,000 + CLAIMS
//! queued scans, then CLAIMS claims are timed one by one, so the queue never holds fewer than
//! 10,000; prints each backend's median and p90.
//!
//! PostgreSQL is `TOOLGATE_TEST_DATABASE_URL`, else a throwaway cluster with PostgreSQL's
//! durable defaults (fsync and synchronous commit on); without PostgreSQL only SQLite runs.
//!
//! Run: `cargo bench -p toolgate-store --bench claim [-- QUEUED [CLAIMS]]`.

#[path = "../testing/pg_cluster.rs"]
mod pg_cluster;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use toolgate_model::{
    AssetType, NewScan, ScanId, ScanRequest, TemplateParameters, TemplateType, UploadInfo,
};
use toolgate_store::{PgStore, ScanStore, SqliteStore};

/// Scans left queued however many claims ran, unless given on the command line.
const DEFAULT_QUEUED: u32 = 10_000;
/// Claims timed unless given.
const DEFAULT_CLAIMS: u32 = 1_000;
/// Scans created at once while seeding: enough to keep PostgreSQL's pool busy.
const SEEDERS: u32 = 8;

fn main() {
    let numbers: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let queued = numbers.first().copied().unwrap_or(DEFAULT_QUEUED);
    let claims = numbers.get(1).copied().unwrap_or(DEFAULT_CLAIMS);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sqlite, _) = SqliteStore::open(&dir.path().join("bench.sqlite3"), 100).expect("open");
        measure("SQLite", &sqlite, queued, claims).await;
        pg_cluster::make_durable();
        match pg_cluster::test_database().await {
            Some(database) => {
                let (postgres, _) = PgStore::connect(database.url(), "bench", 100)
                    .await
                    .expect("connect");
                measure("PostgreSQL", &postgres, queued, claims).await;
            }
            None => println!("PostgreSQL: skipped (no server; see above)"),
        }
    });
}

async fn measure<S: ScanStore + Clone + 'static>(name: &str, store: &S, queued: u32, claims: u32) {
    let seeding = Instant::now();
    let mut seeders = tokio::task::JoinSet::new();
    for seeder in 0..SEEDERS {
        let store = store.clone();
        seeders.spawn(async move {
            for n in (seeder..queued + claims).step_by(SEEDERS as usize) {
                queue(&store, n).await;
            }
        });
    }
    while let Some(done) = seeders.join_next().await {
        done.expect("seeder");
    }
    println!(
        "{name}: {} scans queued in {:.1} s",
        queued + claims,
        seeding.elapsed().as_secs_f64()
    );
    let mut times: Vec<Duration> = Vec::with_capacity(claims as usize);
    for _ in 0..claims {
        let started = Instant::now();
        let claimed = store.claim_next(Utc::now()).await.expect("claim");
        times.push(started.elapsed());
        assert!(claimed.is_some(), "the queue ran dry");
    }
    times.sort();
    let at = |share: f64| times[((times.len() - 1) as f64 * share) as usize];
    println!(
        "{name}: claim with >= {queued} queued: median {:.3} ms, p90 {:.3} ms ({claims} claims)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
    );
}

/// Creates scan `n`, uploads it and queues it.
async fn queue<S: ScanStore>(store: &S, n: u32) {
    let id = ScanId::parse(&format!("00000000-0000-7000-8000-{n:012x}")).expect("id");
    let created_at = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        + chrono::Duration::seconds(i64::from(n));
    store
        .create_scan(NewScan {
            id: id.clone(),
            asset_name: format!("asset-{}", n % 100),
            asset_type: AssetType::GitHub,
            tags: Default::default(),
            scan_attributes: Default::default(),
            failure_criteria: Default::default(),
            user: format!("user-{}", n % 10),
            tenant: format!("tenant-{}", n % 4),
            created_at,
        })
        .await
        .expect("create");
    let upload = UploadInfo {
        bytes: 100,
        sha256: "00".repeat(32),
        files: 1,
        uploaded_at: created_at,
    };
    store
        .record_upload(id.clone(), format!("nonce-{n}"), upload)
        .await
        .expect("upload");
    let request = ScanRequest {
        template_type: TemplateType::Tf,
        template_version: None,
        parameters: TemplateParameters::default(),
        tool: "terrascan".into(),
    };
    store
        .initiate(id, request, created_at)
        .await
        .expect("initiate");
}
