//! PostgreSQL-only tests: what only a store shared by several daemons does (claims across
//! daemons, leases, take-over, per-daemon interruption) and the schema-version table. What
//! both backends do is in the conformance suite (`conformance/`).

use chrono::{DateTime, Duration, TimeZone, Utc};
use toolgate_model::{
    FinishedJob, JobFilter, JobStatus, NewScan, ScanId, ScanOutcome, ScanRequest, ScanState,
};

use super::PgStore;
use crate::conformance::audit::stored_ids;
use crate::conformance::audit::{GENESIS_TEST_HASH, row};
use crate::conformance::jobs::{finished, new_job, run_to_success};
use crate::pg_cluster::{PrivateCluster, TestDatabase, test_database};
use crate::{AuditStore, JobStore, Refused, ScanStore, StoreError};

fn id(n: u32) -> ScanId {
    ScanId::parse(&format!("00000000-0000-7000-8000-{n:012x}")).expect("id")
}

fn at(second: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        + Duration::seconds(second)
}

async fn daemon(database: &TestDatabase, name: &str) -> PgStore {
    PgStore::connect(database.url(), name, 10)
        .await
        .expect("connect")
        .0
}

/// Queues scans `numbers` through `store`, in order (initiated at second `n`).
async fn queue(store: &PgStore, numbers: impl IntoIterator<Item = u32>) {
    for n in numbers {
        store
            .create_scan(NewScan {
                id: id(n),
                asset_name: "asset".into(),
                asset_type: toolgate_model::AssetType::GitHub,
                tags: Default::default(),
                scan_attributes: Default::default(),
                failure_criteria: Default::default(),
                user: "user".into(),
                tenant: "tenant".into(),
                created_at: at(0),
            })
            .await
            .expect("create");
        let upload = toolgate_model::UploadInfo {
            bytes: 1,
            sha256: "00".repeat(32),
            files: 1,
            uploaded_at: at(0),
        };
        store
            .record_upload(id(n), format!("nonce-{n}"), upload)
            .await
            .expect("upload");
        let request = ScanRequest {
            template_type: toolgate_model::TemplateType::Tf,
            template_version: None,
            parameters: Default::default(),
            tool: "terrascan".into(),
        };
        store
            .initiate(id(n), request, at(i64::from(n)))
            .await
            .expect("initiate");
    }
}

/// Three daemons, four workers each, draining one queue: every scan is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemons_sharing_a_queue_never_claim_the_same_scan() {
    const SCANS: u32 = 60;
    let Some(database) = test_database().await else {
        return;
    };
    let daemons = [
        daemon(&database, "a").await,
        daemon(&database, "b").await,
        daemon(&database, "c").await,
    ];
    queue(&daemons[0], 0..SCANS).await;
    let mut workers = tokio::task::JoinSet::new();
    for store in &daemons {
        for _ in 0..4 {
            let store = store.clone();
            workers.spawn(async move {
                let mut claimed = Vec::new();
                while let Some(scan) = store.claim_next(at(100)).await.expect("claim") {
                    claimed.push(scan.id);
                }
                claimed
            });
        }
    }
    let mut all = Vec::new();
    while let Some(claimed) = workers.join_next().await {
        all.extend(claimed.expect("worker"));
    }
    let claims = all.len();
    all.sort();
    all.dedup();
    assert_eq!((claims, all.len()), (SCANS as usize, SCANS as usize));
}

/// A daemon that stops renewing loses its scan to another once the lease ran out; the old
/// holder can then neither finish, requeue nor attach to it, and the new holder finishes it.
#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_the_old_holder_is_refused() {
    let Some(database) = test_database().await else {
        return;
    };
    let a = daemon(&database, "a")
        .await
        .with_scan_lease(std::time::Duration::from_secs(30));
    let b = daemon(&database, "b").await;
    queue(&a, [1]).await;
    let claimed = a.claim_next(at(100)).await.expect("claim").expect("queued");
    assert_eq!(claimed.attempts, 1);
    // Within the lease (renewed once), b sees a live claim.
    assert_eq!(a.renew_leases(at(150)).await.expect("renew"), 1);
    assert_eq!(
        b.recover_scans(3, at(140)).await.expect("recover"),
        Default::default()
    );
    // Past it, b takes the scan back to the queue and claims it.
    let recovered = b.recover_scans(3, at(151)).await.expect("recover");
    assert_eq!(recovered.requeued, vec![id(1)]);
    let taken = b.claim_next(at(152)).await.expect("claim").expect("queued");
    assert_eq!(taken.attempts, 2);
    assert_eq!(
        a.renew_leases(at(200)).await.expect("renew"),
        0,
        "not a's any more"
    );
    let lost = |result: Result<_, StoreError>| {
        matches!(
            result.err().as_ref().and_then(StoreError::refused),
            Some(Refused::LeaseLost { holder, .. }) if holder == "b"
        )
    };
    let outcome = ScanOutcome::default;
    assert!(lost(
        a.finish_scan(id(1), ScanState::Passed, outcome(), Vec::new(), at(160))
            .await
            .map(|_| ())
    ));
    assert!(lost(a.requeue_scan(id(1)).await));
    assert!(lost(a.attach_job(id(1), "job-a".into()).await));
    let done = b
        .finish_scan(id(1), ScanState::Passed, outcome(), Vec::new(), at(170))
        .await
        .expect("the holder finishes");
    assert_eq!((done.state, done.job_id), (ScanState::Passed, None));
}

/// Leases are compared on the server's clock: a daemon whose clock is a minute behind keeps
/// its scan for the whole lease as a daemon whose clock is a minute ahead sees it, and loses
/// it once the lease ran out. Compared on their own clocks, the other would have taken the
/// scan two minutes early, while its holder still ran it.
#[tokio::test]
async fn leases_hold_on_the_servers_clock_when_the_daemons_clocks_disagree() {
    let Some(database) = test_database().await else {
        return;
    };
    let minute = chrono::TimeDelta::seconds(60);
    let behind = daemon(&database, "behind")
        .await
        .with_scan_lease(std::time::Duration::from_secs(30))
        .with_clock_behind(minute);
    let ahead = daemon(&database, "ahead").await.with_clock_behind(-minute);
    queue(&behind, [1]).await;
    // At the server's second 1000 each reads its own clock.
    let (behind_reads, ahead_reads) = (|t: i64| at(t - 60), |t: i64| at(t + 60));
    behind
        .claim_next(behind_reads(1000))
        .await
        .expect("claim")
        .expect("queued");
    assert_eq!(
        ahead
            .recover_scans(3, ahead_reads(1029))
            .await
            .expect("recover"),
        Default::default(),
        "within the lease on the server's clock"
    );
    assert_eq!(
        behind
            .renew_leases(behind_reads(1025) + Duration::seconds(30))
            .await
            .expect("renew"),
        1
    );
    assert_eq!(
        ahead
            .recover_scans(3, ahead_reads(1054))
            .await
            .expect("recover"),
        Default::default(),
        "within the renewed lease"
    );
    let recovered = ahead
        .recover_scans(3, ahead_reads(1056))
        .await
        .expect("recover");
    assert_eq!(recovered.requeued, vec![id(1)], "the renewed lease ran out");
}

/// A daemon restarting under its identity gets its dead self's scans back at once (their
/// leases end when it connects) and interrupts only its own jobs, not another live daemon's.
#[tokio::test]
async fn a_restarting_daemon_recovers_its_own_work_and_leaves_others_alone() {
    let Some(database) = test_database().await else {
        return;
    };
    let a = daemon(&database, "a").await;
    let b = daemon(&database, "b").await;
    queue(&a, [1, 2]).await;
    a.claim_next(at(100)).await.expect("claim").expect("1");
    b.claim_next(at(100)).await.expect("claim").expect("2");
    a.insert_job(new_job("job-a", "t"), Some(at(100).to_rfc3339()))
        .await
        .expect("job a");
    b.insert_job(new_job("job-b", "t"), Some(at(100).to_rfc3339()))
        .await
        .expect("job b");
    // b is alive: its heartbeat (renewed with its leases) is current.
    b.renew_leases(at(130)).await.expect("heartbeat");
    drop(a);
    let (a, interrupted) = PgStore::connect(database.url(), "a", 10)
        .await
        .expect("restart");
    assert_eq!(interrupted, 1);
    // Well within both leases: only a's own old claim is recovered.
    let recovered = a.recover_scans(3, at(101)).await.expect("recover");
    assert_eq!(recovered.requeued, vec![id(1)]);
    let running = JobFilter {
        status: Some(JobStatus::Running),
        limit: 10,
        ..JobFilter::default()
    };
    let still_running: Vec<String> = a
        .list_jobs(running)
        .await
        .expect("list")
        .into_iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(still_running, ["job-b"]);
    let scan = b.scan(id(2)).await.expect("get").expect("exists");
    assert_eq!(scan.state, ScanState::Running);
}

#[tokio::test]
async fn the_schema_version_is_recorded_and_a_newer_one_is_refused() {
    let Some(database) = test_database().await else {
        return;
    };
    assert_eq!(
        PgStore::probe(database.url())
            .await
            .expect("probe")
            .schema_version,
        0,
        "an empty database, and probing does not migrate it"
    );
    let store = daemon(&database, "a").await;
    assert_eq!(
        store.schema_version().await.expect("version"),
        PgStore::latest_schema_version()
    );
    assert_eq!(
        PgStore::probe(database.url())
            .await
            .expect("probe")
            .schema_version,
        PgStore::latest_schema_version()
    );
    assert_eq!(
        PgStore::latest_schema_version(),
        crate::SqliteStore::schema_version(),
        "both backends are at the same version"
    );
    let client = store.pool.get().await.expect("client");
    client
        .execute(
            "INSERT INTO toolgate_schema_version (version) VALUES ($1)",
            &[&i32::try_from(PgStore::latest_schema_version() + 1).expect("small")],
        )
        .await
        .expect("a newer daemon's version");
    drop(client);
    assert!(matches!(
        PgStore::connect(database.url(), "b", 10).await,
        Err(StoreError::SchemaTooNew { .. })
    ));
}

#[tokio::test]
async fn the_database_refuses_to_change_an_audit_row() {
    let Some(database) = test_database().await else {
        return;
    };
    let store = daemon(&database, "a").await;
    crate::AuditStore::append_audit(
        &store,
        crate::conformance::audit::row(1, "acme", "run"),
        crate::conformance::audit::GENESIS_TEST_HASH.into(),
    )
    .await
    .expect("append");
    let client = store.pool.get().await.expect("client");
    for sql in [
        "UPDATE audit SET outcome = 'x' WHERE id = 1",
        "DELETE FROM audit WHERE id = 1",
        "TRUNCATE audit",
    ] {
        assert!(client.batch_execute(sql).await.is_err(), "{sql} is refused");
    }
}

#[tokio::test]
async fn a_daemon_identity_must_be_given_and_short() {
    let Some(database) = test_database().await else {
        return;
    };
    for name in [String::new(), "x".repeat(201)] {
        assert!(matches!(
            PgStore::connect(database.url(), &name, 10).await,
            Err(StoreError::PostgresSettings(_))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_request_reaches_the_daemon_running_the_job_and_only_a_live_one() {
    let Some(database) = test_database().await else {
        return;
    };
    let runner = daemon(&database, "runner").await;
    let asker = daemon(&database, "asker").await;
    let mut requests = runner
        .cancel_requests()
        .expect("a shared store relays cancels");
    runner
        .insert_job(new_job("job-live", "terrascan"), Some(at(1).to_rfc3339()))
        .await
        .expect("insert");
    // The relay listens once its connection is up; ask until the request arrives.
    let arrived = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            assert!(
                asker
                    .request_cancel("job-live".into())
                    .await
                    .expect("request"),
                "a running job is worth a request"
            );
            if let Ok(Ok(id)) =
                tokio::time::timeout(std::time::Duration::from_millis(500), requests.recv()).await
            {
                return id;
            }
        }
    })
    .await
    .expect("the request crosses daemons");
    assert_eq!(arrived, "job-live");
    assert!(
        !asker
            .request_cancel("no-such-job".into())
            .await
            .expect("request"),
        "no request for a job that is not live"
    );
    // The request is also kept on the job, for the runner only, until the job ends.
    assert_eq!(
        runner.pending_cancels().await.expect("pending"),
        ["job-live"]
    );
    assert!(asker.pending_cancels().await.expect("pending").is_empty());
    runner
        .finish_job(
            "job-live".into(),
            crate::conformance::jobs::finished(JobStatus::Cancelled),
        )
        .await
        .expect("finish");
    assert!(runner.pending_cancels().await.expect("pending").is_empty());
}

/// A cancel asked while the runner's listener is away (a reconnecting notification
/// connection) is not lost: the runner finds it on the job.
#[tokio::test]
async fn a_cancel_asked_while_no_one_listens_is_found_on_the_job() {
    let Some(database) = test_database().await else {
        return;
    };
    let runner = daemon(&database, "runner").await;
    let asker = daemon(&database, "asker").await;
    runner
        .insert_job(new_job("job-queued", "terrascan"), None)
        .await
        .expect("insert");
    assert!(runner.pending_cancels().await.expect("pending").is_empty());
    assert!(
        asker
            .request_cancel("job-queued".into())
            .await
            .expect("ask")
    );
    assert_eq!(
        runner.pending_cancels().await.expect("pending"),
        ["job-queued"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_limit_holds_across_daemons_while_their_heartbeats_are_current() {
    let Some(database) = test_database().await else {
        return;
    };
    let first = daemon(&database, "first").await;
    let second = daemon(&database, "second").await;
    let tenant_job = |n: u32| {
        let mut job = new_job(&format!("job-{n}"), "terrascan");
        job.tenant = "acme".into();
        job
    };
    for (store, n) in [(&first, 1), (&first, 2), (&second, 3)] {
        store.insert_job(tenant_job(n), None).await.expect("insert");
    }
    // first's heartbeat is current until second 100.
    first.renew_leases(at(100)).await.expect("heartbeat");
    let start = |store: &PgStore, n: u32, second: i64| {
        let now = at(second).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        store.start_job_within(format!("job-{n}"), "acme".into(), 2, now)
    };
    assert!(start(&first, 1, 10).await.expect("start"));
    assert!(start(&first, 2, 10).await.expect("start"));
    assert!(
        !start(&second, 3, 20).await.expect("start"),
        "two of acme's jobs run on first: the third waits, on any daemon"
    );
    assert!(
        start(&second, 3, 200).await.expect("start"),
        "once first's heartbeat lapsed, its jobs no longer count"
    );
}

/// Two daemons counting one tenant's requests share its burst: five a second means five in
/// all, not five each; the refusal says how long to wait; another tenant is counted apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_rate_holds_across_daemons() {
    use crate::{RateDecision, RateStore};
    let Some(database) = test_database().await else {
        return;
    };
    let (a, b) = (daemon(&database, "a").await, daemon(&database, "b").await);
    let five = std::num::NonZeroU32::new(5).expect("non-zero");
    let mut allowed = 0;
    let mut waits = Vec::new();
    for request in 0..20 {
        let store = if request % 2 == 0 { &a } else { &b };
        match store.take_request("acme".into(), five).await.expect("take") {
            RateDecision::Allowed => allowed += 1,
            RateDecision::RetryAfter(wait) => waits.push(wait),
            RateDecision::Local => panic!("a shared store counts in the database"),
        }
    }
    // Twenty requests take far less than the 200 ms one more would need; allow one for a slow
    // machine crossing an emission interval.
    assert!((5..=6).contains(&allowed), "allowed {allowed} of 20");
    assert!(
        waits.iter().all(|wait| *wait > std::time::Duration::ZERO
            && *wait <= std::time::Duration::from_millis(200)),
        "{waits:?}"
    );
    assert_eq!(
        b.take_request("beta".into(), five).await.expect("take"),
        RateDecision::Allowed,
        "another tenant has its own count"
    );
    let wait = waits.last().copied().expect("refusals");
    tokio::time::sleep(wait).await;
    assert_eq!(
        a.take_request("acme".into(), five).await.expect("take"),
        RateDecision::Allowed,
        "let through again after the wait it was told"
    );
}

/// A daemon that dies with synchronous calls running leaves jobs no lease covers: once its
/// heartbeat lapses, any daemon's recovery marks them interrupted; a live daemon's stay.
#[tokio::test]
async fn the_jobs_of_a_daemon_whose_heartbeat_lapsed_are_interrupted() {
    let Some(database) = test_database().await else {
        return;
    };
    let (dead, live) = (
        daemon(&database, "dead").await,
        daemon(&database, "live").await,
    );
    dead.renew_leases(at(30)).await.expect("heartbeat");
    live.renew_leases(at(130)).await.expect("heartbeat");
    dead.insert_job(new_job("job-dead", "t"), Some(at(1).to_rfc3339()))
        .await
        .expect("job");
    dead.insert_job(new_job("job-dead-queued", "t"), None)
        .await
        .expect("job");
    live.insert_job(new_job("job-live", "t"), Some(at(1).to_rfc3339()))
        .await
        .expect("job");
    let early = live.recover_scans(3, at(29)).await.expect("recover");
    assert_eq!(early.interrupted_jobs, 0, "the heartbeat is still current");
    let recovered = live.recover_scans(3, at(100)).await.expect("recover");
    assert_eq!(recovered.interrupted_jobs, 2);
    for (id, status) in [
        ("job-dead", JobStatus::Interrupted),
        ("job-dead-queued", JobStatus::Interrupted),
        ("job-live", JobStatus::Running),
    ] {
        let job = live.job(id.into()).await.expect("read").expect("exists");
        assert_eq!(job.status, status, "{id}");
    }
}

/// A scan queued through one daemon wakes the others' workers: its id arrives on every
/// daemon's `queue_wakeups` as the transaction commits, and again when it is re-queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_queued_on_one_daemon_is_announced_to_the_others() {
    use std::time::Duration as StdDuration;
    let Some(database) = test_database().await else {
        return;
    };
    let (a, b) = (daemon(&database, "a").await, daemon(&database, "b").await);
    let mut wakeups = b
        .queue_wakeups()
        .expect("a shared store announces queued scans");
    // b's listener connects in the background: probe the channel until it hears.
    let (probe, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let channel = super::notifications::QUEUE_CHANNEL;
    loop {
        probe
            .execute("SELECT pg_notify($1, 'probe')", &[&channel])
            .await
            .expect("notify");
        if let Ok(heard) = tokio::time::timeout(StdDuration::from_millis(200), wakeups.recv()).await
        {
            assert_eq!(heard.expect("received"), "probe");
            break;
        }
    }
    while let Ok(Ok(_)) = tokio::time::timeout(StdDuration::from_millis(200), wakeups.recv()).await
    {
    }
    queue(&a, [1]).await;
    assert_eq!(next_wakeup(&mut wakeups).await, id(1).as_str(), "initiated");
    a.claim_next(at(100)).await.expect("claim").expect("scan 1");
    a.requeue_scan(id(1)).await.expect("requeue");
    assert_eq!(next_wakeup(&mut wakeups).await, id(1).as_str(), "re-queued");
}

async fn next_wakeup(wakeups: &mut tokio::sync::broadcast::Receiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(5), wakeups.recv())
        .await
        .expect("announced within 5 s")
        .expect("received")
}

/// Two daemons finishing jobs in turn, each sweeping only above its own previous cutoff,
/// leave exactly the newest `retention` jobs' output rows, and a daemon started afterwards
/// sweeps from the start (clearing what one that died before its next sweep left).
#[tokio::test]
async fn sweeps_from_several_daemons_keep_exactly_the_retained_output() {
    let Some(database) = test_database().await else {
        return;
    };
    let daemons = [daemon(&database, "a").await, daemon(&database, "b").await];
    for n in 0..40 {
        let store = &daemons[n % 2];
        run_to_success(store, &format!("job-{n:02}"), "t").await;
    }
    let outputs = |store: &PgStore| {
        let pool = store.pool.clone();
        async move {
            let client = pool.get().await.expect("connection");
            let rows = client
                .query(
                    "SELECT jobs.id FROM job_output JOIN jobs ON jobs.seq = job_output.job \
                     ORDER BY jobs.seq",
                    &[],
                )
                .await
                .expect("outputs");
            rows.iter()
                .map(|row| row.get::<_, String>(0))
                .collect::<Vec<_>>()
        }
    };
    let newest: Vec<String> = (30..40).map(|n| format!("job-{n:02}")).collect();
    assert_eq!(outputs(&daemons[0]).await, newest);
    // A row a dead daemon left below every live writer's cutoff: the next daemon to start
    // sweeps it with its first batch.
    {
        let client = daemons[0].pool.get().await.expect("connection");
        client
            .execute(
                "INSERT INTO job_output (job, stdout, stderr) \
                 SELECT seq, 'left'::bytea, NULL FROM jobs WHERE id = 'job-00'",
                &[],
            )
            .await
            .expect("a left-over row");
    }
    let restarted = daemon(&database, "c").await;
    run_to_success(&restarted, "job-40", "t").await;
    let newest: Vec<String> = (31..41).map(|n| format!("job-{n:02}")).collect();
    assert_eq!(outputs(&restarted).await, newest);
}

/// The transaction id that wrote `table`'s row matching `filter`: two rows with the same one
/// were committed together.
async fn written_by(store: &PgStore, table: &str, filter: &str) -> String {
    let client = store.pool.get().await.expect("connection");
    client
        .query_one(
            &format!("SELECT xmin::text FROM {table} WHERE {filter}"),
            &[],
        )
        .await
        .expect("the row")
        .get(0)
}

/// A job's end and the audit record queued right after it (what the daemon's trail does for
/// a synchronous run, `AuditTrail::record_after`) are committed by one transaction; a record
/// refused in such a batch refuses only itself and the record chained to it, and the end
/// queued before them stands.
#[tokio::test]
async fn a_finish_and_the_audit_records_queued_after_it_commit_in_one_batch() {
    let Some(database) = test_database().await else {
        return;
    };
    let store = daemon(&database, "a").await;
    for id in ["one", "two"] {
        store
            .insert_job(new_job(id, "t"), Some(at(1).to_rfc3339()))
            .await
            .expect("insert");
    }
    // Queued back to back: this test's runtime has one thread, so the writer takes its next
    // batch only once the test awaits, and finds both there.
    let finishing = store.finish_job("one".into(), finished(JobStatus::Succeeded));
    let appending = store.append_audit(row(1, "acme", "run"), GENESIS_TEST_HASH.into());
    finishing.await.expect("finish");
    appending.await.expect("append");
    assert_eq!(
        written_by(&store, "jobs", "id = 'one'").await,
        written_by(&store, "audit", "id = 1").await,
        "one commit stored the end and the record"
    );

    let finishing = store.finish_job("two".into(), finished(JobStatus::Failed));
    let refused = store.append_audit(row(2, "acme", "run"), "11".repeat(32));
    let chained = store.append_audit(row(3, "acme", "run"), GENESIS_TEST_HASH.into());
    finishing
        .await
        .expect("the end does not depend on the records");
    assert!(
        matches!(refused.await, Err(StoreError::AuditChain { id: 2 })),
        "a record sealed on another end is refused"
    );
    assert!(
        matches!(chained.await, Err(StoreError::AuditChain { id: 3 })),
        "a record chained to a refused one is refused"
    );
    let two = store
        .job("two".into())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(two.status, JobStatus::Failed);
    assert_eq!(two.stdout.as_deref(), Some("out"));
    assert_eq!(stored_ids(&store).await, [1]);
    store
        .append_audit(row(2, "acme", "run"), GENESIS_TEST_HASH.into())
        .await
        .expect("sealed again on the stored end");
    assert_eq!(stored_ids(&store).await, [1, 2]);

    // The end of a job this store does not have changes nothing, and the record queued after
    // it (in the same statement) is stored all the same.
    let finishing = store.finish_job("unknown".into(), finished(JobStatus::Succeeded));
    let appending = store.append_audit(row(3, "acme", "run"), GENESIS_TEST_HASH.into());
    finishing.await.expect("an unknown job's end is no error");
    appending.await.expect("the record after it");
    assert_eq!(stored_ids(&store).await, [1, 2, 3]);
    assert!(store.job("unknown".into()).await.expect("read").is_none());
}

/// Several inserts, then several finishes, queued at once commit in one transaction each, and
/// every column comes back as it was written, NULLs included.
#[tokio::test]
async fn inserts_and_finishes_queued_together_commit_together_and_keep_every_column() {
    let Some(database) = test_database().await else {
        return;
    };
    let store = daemon(&database, "a").await;
    let mut with_dir = new_job("with-dir", "terrascan");
    with_dir.output_dir = Some("/out/with-dir".into());
    // An insert is queued when first polled: `join!` polls all three before the writer (on
    // this test's one runtime thread) takes its next batch.
    let inserted = tokio::join!(
        store.insert_job(new_job("queued", "t"), None),
        store.insert_job(new_job("plain", "t"), Some(at(1).to_rfc3339())),
        store.insert_job(with_dir, Some(at(2).to_rfc3339())),
    );
    for insert in [inserted.0, inserted.1, inserted.2] {
        insert.expect("insert");
    }
    assert_eq!(
        written_by(&store, "jobs", "id = 'queued'").await,
        written_by(&store, "jobs", "id = 'with-dir'").await,
        "one commit stored the three"
    );
    let mut bare = FinishedJob {
        status: Some(JobStatus::TimedOut),
        finished_at: at(9).to_rfc3339(),
        duration_secs: Some(7.5),
        signal: Some(9),
        timed_out: true,
        ..FinishedJob::default()
    };
    bare.error = Some("killed after 7.5 s".into());
    let finishing = [
        store.finish_job("plain".into(), finished(JobStatus::Succeeded)),
        store.finish_job("with-dir".into(), bare),
    ];
    for finish in finishing {
        finish.await.expect("finish");
    }
    assert_eq!(
        written_by(&store, "jobs", "id = 'plain'").await,
        written_by(&store, "jobs", "id = 'with-dir'").await,
        "one commit stored both ends"
    );
    let job = |id: &'static str| {
        let store = &store;
        async move { store.job(id.into()).await.expect("read").expect("exists") }
    };
    let queued = job("queued").await;
    assert_eq!(queued.status, JobStatus::Queued);
    assert_eq!(queued.started_at, None);
    let plain = job("plain").await;
    assert_eq!(
        (plain.status, plain.exit_code, plain.success),
        (JobStatus::Succeeded, Some(3), true)
    );
    assert_eq!(plain.stdout.as_deref(), Some("out"));
    assert_eq!(plain.stderr.as_deref(), Some("err"));
    assert_eq!(plain.summary, Some(serde_json::json!({"total": 0})));
    assert_eq!(plain.started_at, Some(at(1).to_rfc3339()));
    let ended = job("with-dir").await;
    assert_eq!(ended.status, JobStatus::TimedOut);
    assert_eq!(ended.tool, "terrascan");
    assert_eq!(ended.output_dir.as_deref(), Some("/out/with-dir"));
    assert_eq!((ended.signal, ended.exit_code), (Some(9), None));
    assert!(ended.timed_out && !ended.success);
    assert_eq!(ended.execution_time, Some(7.5));
    assert_eq!(ended.error.as_deref(), Some("killed after 7.5 s"));
    assert_eq!((ended.stdout, ended.summary), (None, None));
}

/// A statement the server refuses aborts its batch's transaction: the writer applies that
/// batch again one write at a time, so only the refused write fails, and the end and the
/// audit record queued around it are stored.
#[tokio::test]
async fn a_batch_failing_midway_fails_only_the_failing_write() {
    let Some(database) = test_database().await else {
        return;
    };
    let store = daemon(&database, "a").await;
    store
        .insert_job(new_job("one", "t"), Some(at(1).to_rfc3339()))
        .await
        .expect("insert");
    let finishing = store.finish_job("one".into(), finished(JobStatus::Succeeded));
    let taken = store.insert_job(new_job("one", "t"), None);
    let appending = store.append_audit(row(1, "acme", "run"), GENESIS_TEST_HASH.into());
    let queued = store.insert_job(new_job("after", "t"), None);
    finishing.await.expect("finish");
    assert!(taken.await.is_err(), "a taken job id is refused");
    appending.await.expect("append");
    queued.await.expect("the write after the refused one");
    let one = store
        .job("one".into())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(one.status, JobStatus::Succeeded);
    let after = store
        .job("after".into())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after.status, JobStatus::Queued);
    assert_eq!(stored_ids(&store).await, [1]);
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and a second CA that signed nothing,
/// made with the `openssl` command in `directory` (readable by `cluster`'s server).
fn certificates(directory: &std::path::Path, cluster: &PrivateCluster) {
    let openssl = |arguments: &str| {
        let status = std::process::Command::new("openssl")
            .args(arguments.split_whitespace())
            .current_dir(directory)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl (install it: the TLS test makes its certificates with it)");
        assert!(status.success(), "openssl {arguments}");
    };
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "other-ca"] {
        openssl(&format!(
            "req -x509 {new_key} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=toolgate-test-{ca}"
        ));
    }
    openssl(&format!(
        "req {new_key} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(directory.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("write");
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 2 -extfile san.ext",
    );
    // The server must own its key, mode 0600.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let key = directory.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    for file in ["server.key", "server.pem"] {
        cluster
            .give_to_server(&directory.join(file))
            .expect("hand the server its key and certificate");
    }
}

/// `sslmode=verify-full` with `sslrootcert`: every connection of the store (pool, writer,
/// notification relay) uses TLS; a server whose certificate another CA signed, or that is
/// reached under a name its certificate does not carry, is refused.
#[tokio::test]
async fn a_verifying_tls_connection_is_encrypted_and_refuses_an_unknown_server() {
    let Some(cluster) = PrivateCluster::start() else {
        return;
    };
    let directory = tempfile::tempdir().expect("directory");
    certificates(directory.path(), &cluster);
    let plain = cluster.postgres_url();
    {
        let (admin, connection) = tokio_postgres::connect(&plain, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let file = |name: &str| directory.path().join(name).display().to_string();
        for statement in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", file("server.pem")),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", file("server.key")),
            "ALTER SYSTEM SET ssl = on".to_string(),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            admin.batch_execute(&statement).await.expect(&statement);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let row = admin.query_one("SHOW ssl", &[]).await.expect("show ssl");
            if row.get::<_, String>(0) == "on" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not turn TLS on"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let ca = directory.path().join("ca.pem").display().to_string();
    let verified = format!("{plain}?sslmode=verify-full&sslrootcert={ca}");
    let store = PgStore::connect(&verified, "tls", 10)
        .await
        .expect("a verified TLS connection")
        .0;
    run_to_success(&store, "over-tls", "t").await;
    let client = store.pool.get().await.expect("connection");
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE NOT ssl), count(*) FROM pg_stat_ssl \
             JOIN pg_stat_activity USING (pid) WHERE backend_type = 'client backend'",
            &[],
        )
        .await
        .expect("pg_stat_ssl");
    let (plain_connections, connections): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        plain_connections, 0,
        "every connection of the store uses TLS"
    );
    assert!(connections >= 3, "pool, writer and relay: {connections}");

    let other_ca = directory.path().join("other-ca.pem").display().to_string();
    let refused = [
        (
            format!("{plain}?sslmode=verify-full&sslrootcert={other_ca}"),
            "invalid peer certificate: UnknownIssuer",
        ),
        (
            format!(
                "{}?sslmode=verify-full&sslrootcert={ca}",
                plain.replace("127.0.0.1", "localhost")
            ),
            "certificate not valid for name \"localhost\"",
        ),
    ];
    for (url, why) in refused {
        let error = match PgStore::connect(&url, "tls-refused", 10).await {
            Ok(_) => panic!("{url} connected"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(why), "{url}: {error}");
    }
}
