//! Store tests: status transitions, crash recovery, listing, retention, schema versions.

use super::*;

fn new_job(id: &str, tool: &str) -> NewJob {
    NewJob {
        id: id.to_string(),
        tool: tool.to_string(),
        params: serde_json::json!({"iac_dir": "."}),
        argv: vec!["terrascan".into(), "scan".into()],
        command: "terrascan scan".into(),
        output_dir: None,
        created_at: super::now_text(),
        tenant: "local".into(),
    }
}

fn finished(status: JobStatus) -> FinishedJob {
    FinishedJob {
        status: Some(status),
        finished_at: super::now_text(),
        exit_code: Some(3),
        success: true,
        stdout: Some(std::sync::Arc::new("out".into())),
        stderr: Some(std::sync::Arc::new("err".into())),
        summary: Some(r#"{"total": 0}"#.into()),
        ..FinishedJob::default()
    }
}

#[tokio::test]
async fn a_job_moves_from_queued_to_its_terminal_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, interrupted) = SqliteStore::open(&dir.path().join("db.sqlite3"), 10).expect("open");
    assert_eq!(interrupted, 0);
    store
        .insert(new_job("a", "terrascan"), None)
        .await
        .expect("insert");
    let queued = store.get("a".into()).await.expect("get").expect("exists");
    assert_eq!(queued.status, JobStatus::Queued);
    store
        .mark_running("a".into(), super::now_text())
        .await
        .expect("running");
    store
        .finish("a".into(), finished(JobStatus::Succeeded))
        .await
        .expect("finish");
    let done = store.get("a".into()).await.expect("get").expect("exists");
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.exit_code, Some(3));
    assert_eq!(done.stdout.as_deref(), Some("out"));
    assert_eq!(done.params["iac_dir"], ".");
    assert!(store.get("missing".into()).await.expect("get").is_none());
}

/// Outputs on both sides of the size where they are written in place instead of bound come
/// back as they were (multi-byte UTF-8 across the write included); a missing one stays missing.
#[tokio::test]
async fn outputs_of_every_size_come_back_as_they_were_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), 10).expect("open");
    let large = "é-x".repeat(100_000);
    // (stdout, stderr)
    let table: &[(Option<&str>, Option<&str>)] = &[
        (Some("small"), Some("")),
        (Some(&large), Some("small beside large")),
        (Some(""), Some(&large)),
        (Some(&large), None),
        (None, None),
    ];
    for (index, (stdout, stderr)) in table.iter().enumerate() {
        let id = format!("job-{index}");
        store
            .insert(new_job(&id, "terrascan"), None)
            .await
            .expect("insert");
        let done = FinishedJob {
            stdout: stdout.map(|text| std::sync::Arc::new(text.to_string())),
            stderr: stderr.map(|text| std::sync::Arc::new(text.to_string())),
            ..finished(JobStatus::Succeeded)
        };
        store.finish(id.clone(), done).await.expect("finish");
        let record = store.get(id).await.expect("get").expect("exists");
        assert_eq!(record.stdout.as_deref(), *stdout, "row {index} stdout");
        assert_eq!(record.stderr.as_deref(), *stderr, "row {index} stderr");
    }
}

#[tokio::test]
async fn reopening_marks_jobs_of_a_dead_daemon_interrupted_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    {
        let (store, _) = SqliteStore::open(&path, 10).expect("open");
        store
            .insert(new_job("queued", "t"), None)
            .await
            .expect("insert");
        store
            .insert(new_job("running", "t"), None)
            .await
            .expect("insert");
        store
            .mark_running("running".into(), super::now_text())
            .await
            .expect("run");
        store
            .insert(new_job("started", "t"), Some(super::now_text()))
            .await
            .expect("insert running");
        store
            .insert(new_job("done", "t"), None)
            .await
            .expect("insert");
        store
            .finish("done".into(), finished(JobStatus::Failed))
            .await
            .expect("finish");
    }
    let (store, interrupted) = SqliteStore::open(&path, 10).expect("reopen");
    assert_eq!(interrupted, 3);
    let table = [
        ("queued", JobStatus::Interrupted),
        ("running", JobStatus::Interrupted),
        ("started", JobStatus::Interrupted),
        ("done", JobStatus::Failed),
    ];
    for (id, expected) in table {
        let job = store.get(id.into()).await.expect("get").expect("exists");
        assert_eq!(job.status, expected, "{id}");
        assert_eq!(
            job.started_at.is_some(),
            matches!(id, "running" | "started"),
            "{id}"
        );
    }
}

#[tokio::test]
async fn listing_is_newest_first_filtered_and_without_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), 10).expect("open");
    for (id, tool) in [("1", "terrascan"), ("2", "prowler"), ("3", "terrascan")] {
        store.insert(new_job(id, tool), None).await.expect("insert");
        store
            .finish(id.into(), finished(JobStatus::Succeeded))
            .await
            .expect("finish");
    }
    let all = store
        .list(JobFilter {
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("list");
    let ids: Vec<_> = all.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["3", "2", "1"]);
    assert!(all.iter().all(|j| j.stdout.is_none()));
    let filter = JobFilter {
        tool: Some("terrascan".into()),
        limit: 1,
        ..JobFilter::default()
    };
    let ids: Vec<_> = store
        .list(filter)
        .await
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, ["3"]);
    let filter = JobFilter {
        status: Some(JobStatus::Running),
        limit: 10,
        ..JobFilter::default()
    };
    assert!(store.list(filter).await.expect("list").is_empty());
}

#[tokio::test]
async fn a_listing_for_one_tenant_shows_only_its_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), 10).expect("open");
    for (id, tenant) in [("a1", "acme"), ("b1", "beta"), ("a2", "acme")] {
        let job = NewJob {
            tenant: tenant.into(),
            ..new_job(id, "terrascan")
        };
        store.insert(job, None).await.expect("insert");
    }
    let table: &[(Option<&str>, &[&str])] = &[
        (Some("acme"), &["a2", "a1"]),
        (Some("beta"), &["b1"]),
        (Some("nobody"), &[]),
        (None, &["a2", "b1", "a1"]),
    ];
    for (tenant, expected) in table {
        let filter = JobFilter {
            tenant: tenant.map(str::to_string),
            limit: 10,
            ..JobFilter::default()
        };
        let listed = store.list(filter).await.expect("list");
        let ids: Vec<_> = listed.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(&ids, expected, "{tenant:?}");
        assert!(listed.iter().all(|j| tenant.is_none_or(|t| j.tenant == t)));
    }
    let one = store.get("b1".into()).await.expect("get").expect("exists");
    assert_eq!(one.tenant, "beta");
}

#[tokio::test]
async fn output_beyond_the_retention_limit_is_dropped_but_the_record_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), 2).expect("open");
    for id in ["1", "2", "3"] {
        store.insert(new_job(id, "t"), None).await.expect("insert");
        store
            .finish(id.into(), finished(JobStatus::Succeeded))
            .await
            .expect("finish");
    }
    let table = [("1", false), ("2", true), ("3", true)];
    for (id, keeps_output) in table {
        let job = store.get(id.into()).await.expect("get").expect("exists");
        assert_eq!(job.stdout.is_some(), keeps_output, "{id}");
        assert_eq!(job.output_dropped, !keeps_output, "{id}");
        assert_eq!(job.exit_code, Some(3), "{id}");
    }
}

#[tokio::test]
async fn a_retention_of_zero_keeps_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), 0).expect("open");
    store.insert(new_job("1", "t"), None).await.expect("insert");
    store
        .finish("1".into(), finished(JobStatus::Succeeded))
        .await
        .expect("finish");
    let job = store.get("1".into()).await.expect("get").expect("exists");
    assert!(job.stdout.is_none() && job.output_dropped);
}

/// A database as a daemon of schema `version` left it: the first `version` migrations applied.
fn database_at_version(path: &std::path::Path, version: usize) -> Connection {
    let conn = Connection::open(path).expect("open");
    for migration in &crate::schema::MIGRATIONS[..version] {
        conn.execute_batch(migration).expect("migration");
    }
    conn.pragma_update(None, "user_version", version)
        .expect("version");
    conn
}

/// A database written by a schema-1 daemon is upgraded in place: its jobs stay, its unfinished
/// ones are found through the new partial index, and the write-only indexes are gone.
#[test]
fn a_schema_1_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let conn = database_at_version(&path, 1);
    for (id, status) in [("old-running", "running"), ("old-done", "succeeded")] {
        conn.execute(
            "INSERT INTO jobs (id, tool, status, params, argv, command, created_at) \
             VALUES (?1, 't', ?2, '{}', '[]', 't', '2026-11-01T00:00:00Z')",
            rusqlite::params![id, status],
        )
        .expect("row");
    }
    drop(conn);

    let (store, interrupted) = SqliteStore::open(&path, 10).expect("upgrade");
    assert_eq!(interrupted, 1);
    drop(store);
    let conn = Connection::open(&path).expect("reopen");
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, SqliteStore::schema_version());
    let mut indexes: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('jobs', 'job_output')",
        )
        .expect("indexes")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    indexes.sort();
    assert_eq!(indexes, ["jobs_unfinished"]);
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN UPDATE jobs SET status = 'interrupted' \
             WHERE status IN ('queued', 'running')",
            [],
            |row| row.get(3),
        )
        .expect("plan");
    assert!(plan.contains("jobs_unfinished"), "{plan}");
    let statuses: Vec<(String, String)> = conn
        .prepare("SELECT id, status FROM jobs ORDER BY rowid")
        .expect("select")
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        statuses,
        [
            ("old-running".to_string(), "interrupted".to_string()),
            ("old-done".to_string(), "succeeded".to_string())
        ]
    );
}

/// A schema-2 database keeps its retained output through the move to `job_output`, and a job
/// whose output was already dropped still reads as dropped.
#[test]
fn a_schema_2_database_keeps_its_output_in_the_new_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let conn = database_at_version(&path, 2);
    for (id, stdout, dropped) in [("dropped", None, 1), ("kept", Some("out"), 0)] {
        conn.execute(
            "INSERT INTO jobs (id, tool, status, params, argv, command, created_at, stdout, \
             output_dropped) VALUES (?1, 't', 'succeeded', '{}', '[]', 't', \
             '2026-11-01T00:00:00Z', ?2, ?3)",
            rusqlite::params![id, stdout, dropped],
        )
        .expect("row");
    }
    drop(conn);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (store, _) = SqliteStore::open(&path, 1).expect("upgrade");
    let table = [("dropped", None, true), ("kept", Some("out"), false)];
    for (id, stdout, dropped) in table {
        let job = runtime
            .block_on(store.get(id.into()))
            .expect("get")
            .expect("exists");
        assert_eq!(job.stdout.as_deref(), stdout, "{id}");
        assert_eq!(job.output_dropped, dropped, "{id}");
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    let conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "user_version", SqliteStore::schema_version() + 1)
        .expect("pragma");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path, 1),
        Err(StoreError::SchemaTooNew { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_committed() {
    const JOBS: usize = 200;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), JOBS).expect("open");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..JOBS {
        let store = store.clone();
        tasks.spawn(async move {
            let id = format!("job-{i}");
            let started = (i % 2 == 0).then(super::now_text);
            store.insert(new_job(&id, "t"), started).await?;
            if i % 2 == 1 {
                store.mark_running(id.clone(), super::now_text()).await?;
            }
            let status = if i % 3 == 0 {
                JobStatus::Failed
            } else {
                JobStatus::Succeeded
            };
            store.finish(id, finished(status)).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("write");
    }
    for i in 0..JOBS {
        let job = store
            .get(format!("job-{i}"))
            .await
            .expect("get")
            .expect("exists");
        let expected = if i % 3 == 0 {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        assert_eq!(job.status, expected, "job-{i}");
        assert!(job.started_at.is_some(), "job-{i}");
        assert_eq!(job.stdout.as_deref(), Some("out"), "job-{i}");
    }
}

/// Denial inside a batch: a write that fails (a duplicate id) fails alone; the others of the
/// same transaction are committed.
#[test]
fn a_failing_write_fails_alone_in_its_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    drop(SqliteStore::open(&path, 10).expect("create"));
    let mut conn = connect(&path).expect("connect");
    let insert = |id: &str| crate::writer::Write::Insert {
        job: new_job(id, "t"),
        started_at: None,
    };
    let batch = [
        insert("a"),
        insert("a"),
        insert("b"),
        crate::writer::Write::Finish {
            id: "b".into(),
            done: Box::new(finished(JobStatus::Succeeded)),
        },
    ];
    let results = crate::writer::commit_batch(&mut conn, 10, &batch);
    let ok: Vec<bool> = results.iter().map(Result::is_ok).collect();
    assert_eq!(ok, [true, false, true, true]);
    let status: String = conn
        .query_row("SELECT status FROM jobs WHERE id = 'b'", [], |row| {
            row.get(0)
        })
        .expect("b");
    assert_eq!(status, "succeeded");
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get(0))
        .expect("count");
    assert_eq!(count, 2);
}
