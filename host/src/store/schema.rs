//! The database schema and its migrations.
//!
//! Invariant: `PRAGMA user_version` equals the number of migrations applied; migrations only
//! ever append, so a database written by an older daemon is upgraded in place and a newer one is
//! refused rather than misread.

use rusqlite::Connection;

use super::StoreError;

/// Migrations in order; index + 1 is the schema version they produce.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    tool            TEXT NOT NULL,
    status          TEXT NOT NULL,
    params          TEXT NOT NULL,
    argv            TEXT NOT NULL,
    command         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    duration_secs   REAL,
    exit_code       INTEGER,
    signal          INTEGER,
    timed_out       INTEGER NOT NULL DEFAULT 0,
    success         INTEGER NOT NULL DEFAULT 0,
    classification  TEXT,
    message         TEXT,
    summary         TEXT,
    findings        TEXT,
    stdout          TEXT,
    stderr          TEXT,
    output_dropped  INTEGER NOT NULL DEFAULT 0,
    truncated       INTEGER NOT NULL DEFAULT 0,
    protections     TEXT,
    output_dir      TEXT,
    error           TEXT
);
CREATE INDEX jobs_by_tool ON jobs(tool);
CREATE INDEX jobs_by_status ON jobs(status);
-- The retention sweep only visits jobs that still hold their output (about `job_retention`).
CREATE INDEX jobs_keeping_output ON jobs(output_dropped) WHERE output_dropped = 0;
"#,
    r#"
-- Every index is written for every job. The job listing filters while it walks rowids
-- downwards (its optional filters make any index unusable), so indexes by tool and by status
-- only cost writes; the start-up sweep needs the unfinished jobs alone.
DROP INDEX jobs_by_tool;
DROP INDEX jobs_by_status;
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
"#,
    r#"
-- Output lives beside the job, keyed by its rowid, so that the retention limit deletes whole
-- rows from the oldest end of a table of their own (a few shared pages per commit) instead of
-- rewriting one old job row per finished job (a page of its own each) and keeping an index of
-- the jobs that still hold output. A finished job within the limit has exactly one row here;
-- `output_dropped` is now read off the missing row.
CREATE TABLE job_output (
    job     INTEGER PRIMARY KEY NOT NULL,
    stdout  TEXT,
    stderr  TEXT
);
INSERT INTO job_output (job, stdout, stderr)
    SELECT rowid, stdout, stderr FROM jobs
    WHERE output_dropped = 0 AND status NOT IN ('queued', 'running');
DROP INDEX jobs_keeping_output;
ALTER TABLE jobs DROP COLUMN stdout;
ALTER TABLE jobs DROP COLUMN stderr;
ALTER TABLE jobs DROP COLUMN output_dropped;
"#,
];

/// Brings the schema up to the newest version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: MIGRATIONS.len(),
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version this build writes.
pub(super) fn latest_version() -> usize {
    MIGRATIONS.len()
}
