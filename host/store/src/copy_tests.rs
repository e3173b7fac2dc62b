//! Tests of `copy`: a SQLite store filled through its public API reads back the same through
//! `PgStore` after the copy (jobs, scans, findings, audit rows), unfinished work is handed to
//! the PostgreSQL daemons, and every refusal and failure leaves the target empty. The tests
//! that need PostgreSQL skip like the rest of the PostgreSQL tests (`testing/pg_cluster.rs`);
//! the refusals of a source need none.

use std::path::Path;

use toolgate_model::{
    Finding, GroupBy, JobFilter, JobRecord, JobStatus, Page, ScanOutcome, ScanQuery, ScanState,
    Severity, SeverityCounts,
};

use super::{COPIED_TABLES, CopyError, copy_sqlite_to_postgres};
use crate::conformance::audit::{GENESIS_TEST_HASH, row as audit_row};
use crate::conformance::jobs::{finished, new_job};
use crate::conformance::scans::{at, finding, id as scan_id, scan_in};
use crate::pg_cluster::{TestDatabase, test_database};
use crate::{AuditFilter, AuditRow, AuditStore, JobStore, PgStore, ScanStore, SqliteStore, Store};

/// The PostgreSQL daemon that opens the copy.
const PG_DAEMON: &str = "pg-daemon-1";

/// The tables of either schema deliberately not copied.
const NOT_COPIED: &[&str] = &[
    // Heartbeats of the daemons running on a store: the copy's target has its own.
    "daemons",
    // Tenants' request counts: a moment's state, and always empty in a SQLite store.
    "tenant_rates",
    // PostgreSQL's migration record: the target's own, written by its migrations.
    "toolgate_schema_version",
];

/// A URL no test may reach: the source is refused before the target is opened.
const UNREACHABLE_URL: &str = "postgres://nobody@127.0.0.1:1/none";

/// A SQLite store at `path` holding a bit of everything, filled through its public API: jobs
/// finished (with output, in two tenants), one queued and one running; scans awaiting upload,
/// uploaded, queued, failed with findings and resources, and running with its job; three
/// audit records. Returns what the store showed; it is closed when this returns.
async fn fill_sqlite(path: &Path) -> Seen {
    let (store, _) = SqliteStore::open(path, 10).expect("open SQLite");
    store
        .insert_job(new_job("done-1", "terrascan"), None)
        .await
        .expect("insert");
    let mut done = finished(JobStatus::Succeeded);
    done.stdout = Some(std::sync::Arc::new("héllo\nwörld".into()));
    done.duration_secs = Some(1.25);
    store
        .finish_job("done-1".into(), done)
        .await
        .expect("finish");
    let mut other_tenant = new_job("done-2", "checkov");
    other_tenant.tenant = "acme".into();
    store
        .insert_job(other_tenant, Some(at(1).to_rfc3339()))
        .await
        .expect("insert");
    let mut killed = finished(JobStatus::Failed);
    killed.signal = Some(9);
    killed.exit_code = None;
    killed.timed_out = true;
    killed.success = false;
    store
        .finish_job("done-2".into(), killed)
        .await
        .expect("finish");
    store
        .insert_job(new_job("queued-1", "terrascan"), None)
        .await
        .expect("insert");
    store
        .insert_job(new_job("running-1", "terrascan"), Some(at(2).to_rfc3339()))
        .await
        .expect("insert");

    scan_in(&store, 1, ScanState::AwaitingUpload).await;
    scan_in(&store, 2, ScanState::Uploaded).await;
    scan_in(&store, 4, ScanState::Queued).await;
    let claimed = store
        .claim_next(at(101))
        .await
        .expect("claim")
        .expect("one");
    assert_eq!(claimed.id, scan_id(4));
    let findings = vec![
        finding("R1", Severity::High, "a"),
        finding("R2", Severity::Medium, "b"),
        finding("R3", Severity::Medium, "a"),
    ];
    let outcome = ScanOutcome {
        counts: SeverityCounts {
            high: 1,
            medium: 2,
            ..SeverityCounts::default()
        },
        error_details: Vec::new(),
        resources: vec!["aws_s3_bucket.a".into(), "aws_s3_bucket.b".into()],
    };
    store
        .finish_scan(scan_id(4), ScanState::Failed, outcome, findings, at(102))
        .await
        .expect("finish scan");
    scan_in(&store, 5, ScanState::Queued).await;
    let claimed = store
        .claim_next(at(103))
        .await
        .expect("claim")
        .expect("one");
    assert_eq!(claimed.id, scan_id(5));
    store
        .attach_job(scan_id(5), "running-1".into())
        .await
        .expect("attach");
    scan_in(&store, 3, ScanState::Queued).await;

    for (id, tenant, action) in [
        (1, "acme", "run"),
        (2, "beta", "login"),
        (3, "acme", "cancel"),
    ] {
        store
            .append_audit(audit_row(id, tenant, action), GENESIS_TEST_HASH.into())
            .await
            .expect("append audit");
    }
    seen(&store).await
}

/// Everything a user of `store` sees of what `fill_sqlite` wrote.
#[derive(Debug, PartialEq)]
struct Seen {
    jobs: Vec<JobRecord>,
    listed_jobs: Vec<JobRecord>,
    scans: Vec<Option<toolgate_model::Scan>>,
    scan_page: toolgate_model::ScanPage,
    by_resource: toolgate_model::ScanPage,
    by_tag: toolgate_model::ScanPage,
    findings: Vec<Option<Vec<Finding>>>,
    audit: Vec<AuditRow>,
}

async fn seen(store: &impl Store) -> Seen {
    let mut jobs = Vec::new();
    for id in ["done-1", "done-2", "queued-1", "running-1"] {
        jobs.push(store.job(id.into()).await.expect("job").expect("exists"));
    }
    let mut scans = Vec::new();
    let mut findings = Vec::new();
    for n in 1..=5 {
        scans.push(store.scan(scan_id(n)).await.expect("scan"));
        findings.push(store.findings(scan_id(n)).await.expect("findings"));
    }
    let listing = |edit: fn(&mut ScanQuery)| {
        let mut query = ScanQuery {
            page: Page::new(1, 100).expect("page"),
            ..ScanQuery::default()
        };
        edit(&mut query);
        store.list_scans(query)
    };
    Seen {
        jobs,
        listed_jobs: store
            .list_jobs(JobFilter {
                limit: 100,
                ..JobFilter::default()
            })
            .await
            .expect("list jobs"),
        scans,
        scan_page: listing(|_| {}).await.expect("list"),
        by_resource: listing(|query| query.group_by = Some(GroupBy::ResourceList))
            .await
            .expect("list"),
        by_tag: listing(|query| query.tags = vec![("team".into(), Some("t4".into()))])
            .await
            .expect("list"),
        findings,
        audit: store
            .audit_rows(AuditFilter {
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .expect("audit"),
    }
}

/// What `seen` shows after the copy: the same, but the jobs the SQLite daemon left unfinished
/// are interrupted.
fn interrupted(mut before: Seen, after: &Seen) -> Seen {
    for (job, copied) in before
        .jobs
        .iter_mut()
        .chain(before.listed_jobs.iter_mut())
        .zip(after.jobs.iter().chain(after.listed_jobs.iter()))
    {
        if matches!(job.status, JobStatus::Queued | JobStatus::Running) {
            job.status = JobStatus::Interrupted;
            job.finished_at = copied.finished_at.clone();
            job.error = Some(super::INTERRUPTED_BY_MOVE.into());
        }
    }
    before
}

/// A SQLite store filled by `fill_sqlite` and what it showed, in a directory the caller holds.
async fn filled_source() -> (tempfile::TempDir, std::path::PathBuf, Seen) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("toolgate.sqlite3");
    let seen_before = fill_sqlite(&path).await;
    (dir, path, seen_before)
}

async fn open_pg(database: &TestDatabase) -> PgStore {
    PgStore::connect(database.url(), PG_DAEMON, 10)
        .await
        .expect("connect")
        .0
}

/// Rows in each copied table of `database`, by a connection of its own.
async fn row_counts(database: &TestDatabase) -> Vec<(&'static str, i64)> {
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let mut counts = Vec::new();
    for &table in COPIED_TABLES {
        let rows: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0);
        counts.push((table, rows));
    }
    counts
}

fn all_empty() -> Vec<(&'static str, i64)> {
    COPIED_TABLES.iter().map(|&table| (table, 0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_reads_back_through_postgres_as_the_sqlite_store_showed_it() {
    let Some(database) = test_database().await else {
        return;
    };
    let (_dir, path, before) = filled_source().await;
    let report = copy_sqlite_to_postgres(&path, database.url())
        .await
        .expect("copy");
    let expected_rows = [
        ("jobs", 4),
        ("job_output", 2),
        ("scans", 5),
        ("scan_tags", 5),
        ("scan_resources", 2),
        ("scan_findings", 3),
        ("upload_nonces", 4),
        ("audit", 3),
    ];
    for (table, rows) in expected_rows {
        assert_eq!(report.rows(table), rows, "{table}: {report:?}");
    }
    assert_eq!((report.interrupted_jobs, report.released_scans), (2, 1));

    let store = open_pg(&database).await;
    let after = seen(&store).await;
    assert_eq!(after, interrupted(before, &after));
    assert_eq!(after.jobs[0].stdout.as_deref(), Some("héllo\nwörld"));
    assert_eq!(after.jobs[1].signal, Some(9));
    assert_eq!(after.findings[3].as_ref().map(Vec::len), Some(3));
    assert_eq!(after.by_resource.groups.len(), 2);
    assert_eq!(after.audit.len(), 3);

    // The identity sequence is past the copied jobs: a new job is the newest, with its output.
    store
        .insert_job(new_job("after-copy", "terrascan"), None)
        .await
        .expect("a new job after the copy");
    store
        .finish_job("after-copy".into(), finished(JobStatus::Succeeded))
        .await
        .expect("finish");
    let newest = store
        .list_jobs(JobFilter {
            limit: 1,
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(newest[0].id, "after-copy");
    let job = store.job("after-copy".into()).await.expect("job");
    assert_eq!(job.and_then(|job| job.stdout).as_deref(), Some("out"));
    // The audit chain goes on from the copied last row.
    store
        .append_audit(audit_row(4, "acme", "run"), GENESIS_TEST_HASH.into())
        .await
        .expect("append after the copy");
    assert!(
        store
            .append_audit(audit_row(3, "acme", "run"), GENESIS_TEST_HASH.into())
            .await
            .is_err(),
        "a copied id is taken"
    );
}

/// The SQLite daemon's running scan had a lease; the copy ends it, so the first PostgreSQL
/// daemon's recovery requeues the scan (its attempt counted) and another claim runs it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_left_running_is_requeued_by_the_first_postgres_daemon() {
    let Some(database) = test_database().await else {
        return;
    };
    let (_dir, path, _) = filled_source().await;
    copy_sqlite_to_postgres(&path, database.url())
        .await
        .expect("copy");
    let store = open_pg(&database).await;
    // Long before the SQLite lease would have run out (it was taken at minute 72).
    let recovered = store.recover_scans(3, at(72)).await.expect("recover");
    assert_eq!(recovered.requeued, vec![scan_id(5)]);
    assert!(recovered.failed.is_empty());
    let job = store.job("running-1".into()).await.expect("job");
    assert_eq!(job.map(|job| job.status), Some(JobStatus::Interrupted));
    // Requeued, it keeps its place in the queue (behind scan 3, initiated earlier) and its
    // counted attempt.
    let first = store.claim_next(at(80)).await.expect("claim").expect("one");
    let second = store.claim_next(at(80)).await.expect("claim").expect("one");
    assert_eq!(
        [(first.id, first.attempts), (second.id, second.attempts)],
        [(scan_id(3), 1), (scan_id(5), 2)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_not_empty_is_refused_and_left_as_it_was() {
    let Some(database) = test_database().await else {
        return;
    };
    let store = open_pg(&database).await;
    store
        .insert_job(new_job("already-here", "terrascan"), None)
        .await
        .expect("insert");
    store
        .append_audit(audit_row(1, "acme", "run"), GENESIS_TEST_HASH.into())
        .await
        .expect("append");
    let (_dir, path, _) = filled_source().await;
    let refused = copy_sqlite_to_postgres(&path, database.url()).await;
    match refused {
        Err(CopyError::TargetNotEmpty { holding }) => {
            assert_eq!(holding, "jobs: 1 row(s), audit: 1 row(s)")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut expected = all_empty();
    expected[0].1 = 1;
    expected[7].1 = 1;
    assert_eq!(row_counts(&database).await, expected);
    let jobs = store
        .list_jobs(JobFilter {
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("list");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, "already-here");
}

/// A value PostgreSQL's column cannot take, in a table copied after several others, fails the
/// copy naming where it is, and the rows copied before it are gone with the transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_copy_leaves_the_target_empty() {
    let Some(database) = test_database().await else {
        return;
    };
    let (_dir, path, _) = filled_source().await;
    // As an operator's sqlite3 or a damaged file could leave it: text in an INTEGER column.
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute(
            "UPDATE scan_findings SET line = 'seven' WHERE position = 2",
            [],
        )
        .expect("damage");
    let failed = copy_sqlite_to_postgres(&path, database.url()).await;
    match failed {
        Err(error @ CopyError::Value { .. }) => assert_eq!(
            error.to_string(),
            "row 3 of scan_findings, column line: SQLite holds text, which PostgreSQL's BIGINT \
             column cannot take"
        ),
        other => panic!("expected a value error, got {other:?}"),
    }
    assert_eq!(row_counts(&database).await, all_empty());
    // PostgreSQL refusing a row (a NUL byte, which its text cannot hold) ends the same way.
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute(
            "UPDATE scan_findings SET line = 7, title = CAST(x'61006200' AS TEXT) \
             WHERE position = 2",
            [],
        )
        .expect("damage");
    let failed = copy_sqlite_to_postgres(&path, database.url()).await;
    assert!(
        matches!(
            failed,
            Err(CopyError::Write {
                table: "scan_findings",
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(row_counts(&database).await, all_empty());
    // Repaired, the same file copies into the same database.
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute(
            "UPDATE scan_findings SET title = 'R3 title' WHERE position = 2",
            [],
        )
        .expect("repair");
    copy_sqlite_to_postgres(&path, database.url())
        .await
        .expect("copy after the repair");
}

#[tokio::test]
async fn a_missing_sqlite_file_is_refused_and_not_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nothing-here.sqlite3");
    let refused = copy_sqlite_to_postgres(&path, UNREACHABLE_URL).await;
    match refused {
        Err(error @ CopyError::SourceMissing(_)) => assert_eq!(
            error.to_string(),
            format!("there is no SQLite store at {}", path.display())
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!path.exists(), "no empty database was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_a_daemon_still_has_open_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("toolgate.sqlite3");
    let (open_store, _) = SqliteStore::open(&path, 10).expect("open");
    let refused = copy_sqlite_to_postgres(&path, UNREACHABLE_URL).await;
    assert!(
        matches!(&refused, Err(CopyError::SourceInUse(refused_path)) if refused_path == &path),
        "{refused:?}"
    );
    drop(open_store);
}

/// A table added by a later migration must be copied or deliberately skipped, on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_of_both_schemas_is_copied_or_deliberately_skipped() {
    let known = |table: &str| COPIED_TABLES.contains(&table) || NOT_COPIED.contains(&table);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("toolgate.sqlite3");
    drop(SqliteStore::open(&path, 10).expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("open");
    let mut statement = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .expect("prepare");
    let sqlite_tables: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let unknown: Vec<&String> = sqlite_tables.iter().filter(|t| !known(t)).collect();
    assert!(
        unknown.is_empty(),
        "SQLite tables nobody decided on: {unknown:?}"
    );
    assert!(
        COPIED_TABLES
            .iter()
            .all(|table| sqlite_tables.iter().any(|t| t == table))
    );

    let Some(database) = test_database().await else {
        return;
    };
    drop(open_pg(&database).await);
    let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let pg_tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let unknown: Vec<&String> = pg_tables.iter().filter(|t| !known(t)).collect();
    assert!(
        unknown.is_empty(),
        "PostgreSQL tables nobody decided on: {unknown:?}"
    );
}
