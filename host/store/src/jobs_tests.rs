//! SQLite-only job store tests: schema upgrades of old database files, a newer schema refused,
//! and the group-commit writer failing one write alone. Behaviour both backends share is in the
//! conformance suite (`conformance/jobs.rs`).

use super::*;
use crate::conformance::jobs::{finished, new_job};
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
    let results = crate::writer::commit_batch(&mut conn, 10, batch.into());
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

/// Denial inside a batch: a scan transition that writes and then fails (as one refused after
/// consuming a nonce would) undoes its own writes only; one that panics fails alone; the
/// writes around them are committed.
#[test]
fn a_failing_or_panicking_transition_undoes_only_its_own_writes() {
    use crate::writer::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite3");
    drop(SqliteStore::open(&path, 10).expect("create"));
    let mut conn = connect(&path).expect("connect");
    let insert = |id: &str| Write::Insert {
        job: new_job(id, "t"),
        started_at: None,
    };
    let nonce = |nonce: &'static str| {
        move |tx: &rusqlite::Transaction<'_>| {
            tx.execute(
                "INSERT INTO upload_nonces (nonce, scan, used_at) VALUES (?1, 's', 't')",
                [nonce],
            )?;
            Ok(())
        }
    };
    let written_then_refused = move |tx: &rusqlite::Transaction<'_>| {
        nonce("undone")(tx)?;
        Err(StoreError::Refused(crate::Refused::NonceReused))
    };
    let batch = vec![
        insert("before"),
        Write::Scan(Box::new(nonce("kept"))),
        Write::Scan(Box::new(written_then_refused)),
        Write::Scan(Box::new(|_tx: &rusqlite::Transaction<'_>| {
            panic!("a bug in a transition")
        })),
        insert("after"),
    ];
    let results = crate::writer::commit_batch(&mut conn, 10, batch);
    let outcomes: Vec<String> = results
        .iter()
        .map(|result| match result {
            Ok(()) => "ok".to_string(),
            Err(error) => error.to_string(),
        })
        .collect();
    assert_eq!(outcomes[..2], ["ok", "ok"]);
    assert!(outcomes[2].contains("already used"), "{outcomes:?}");
    assert!(outcomes[3].contains("panicked"), "{outcomes:?}");
    assert_eq!(outcomes[4], "ok");
    let nonces: Vec<String> = conn
        .prepare("SELECT nonce FROM upload_nonces ORDER BY nonce")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()
        })
        .expect("nonces");
    assert_eq!(nonces, ["kept"]);
    let jobs: i64 = conn
        .query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get(0))
        .expect("count");
    assert_eq!(jobs, 2);
}
