//! The SQLite store and its job half: opening (migrations, marking jobs of a dead daemon
//! `interrupted`), job writes through the group-commit writer, job reads.
//!
//! Invariants: writes go through one writer thread that commits them in batches (`writer`);
//! reads use a second connection behind a mutex, only from blocking threads (`spawn_blocking`),
//! so the async runtime never waits on disk; WAL journaling so readers do not block the writer;
//! a job record is never deleted, only its stdout/stderr (a row of `job_output`) are dropped
//! once it falls out of the newest `retention` jobs; opening the store marks jobs a dead daemon
//! left queued or running as `interrupted`; scan transitions (`scans.rs`) and audit rows go
//! through the same writer, so this process has one write connection and its writes never
//! wait for each other in SQLite's busy handler.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row, params};
use toolgate_model::{FinishedJob, JobFilter, JobRecord, JobStatus, NewJob};

use crate::writer::{Write, Writer};
use crate::{JobStore, StoreError, StoreFuture};

/// How long a writer waits for a lock held by another connection (e.g. an operator's sqlite3).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Handle to the SQLite database; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: Writer,
    pub(crate) reader: Arc<Mutex<Connection>>,
    /// How many of the newest jobs keep their output (for reading `output_dropped`).
    retention: i64,
}

/// The job's own columns, as `raw_row` reads them first.
const JOB_COLUMNS: &str = "jobs.id, tool, status, params, argv, command, created_at, started_at, \
    finished_at, duration_secs, exit_code, signal, timed_out, success, classification, message, \
    summary, findings, truncated, protections, output_dir, error, tenant";

/// Joined after `JOB_COLUMNS`: a job's output row, if retention kept it.
const FROM_JOBS_AND_OUTPUT: &str = "FROM jobs LEFT JOIN job_output ON job_output.job = jobs.rowid";

/// Whether retention dropped a job's output: it has finished, is not among the newest
/// `?1` jobs, and its output row is gone (the sweep deletes exactly those rows).
const OUTPUT_DROPPED: &str = "(job_output.job IS NULL AND jobs.status NOT IN ('queued', 'running') \
    AND jobs.rowid <= (SELECT MAX(rowid) FROM jobs) - ?1)";

impl SqliteStore {
    /// Opens (creating if needed) the database, migrates it and marks jobs of a dead daemon as
    /// interrupted. Returns the store and how many jobs were marked.
    pub fn open(path: &Path, retention: usize) -> Result<(Self, usize), StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let mut conn = connect(path)?;
        crate::schema::migrate(&mut conn)?;
        let interrupted = conn.execute(
            "UPDATE jobs SET status = 'interrupted', finished_at = COALESCE(finished_at, ?1), \
             error = COALESCE(error, 'the daemon stopped while this job was queued or running') \
             WHERE status IN ('queued', 'running')",
            params![now_text()],
        )?;
        let store = Self {
            reader: Arc::new(Mutex::new(connect(path)?)),
            writer: Writer::start(conn, retention)?,
            retention: i64::try_from(retention).unwrap_or(i64::MAX),
        };
        Ok((store, interrupted))
    }

    /// Runs `work` on a blocking thread with the read connection.
    pub(crate) async fn with_reader<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        on_blocking_thread(Arc::clone(&self.reader), work).await
    }

    /// Queues scan transition `transition` to the writer thread now; the future resolves once
    /// it is committed or refused.
    pub(crate) fn queue_transition(
        &self,
        transition: crate::writer::Transition,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        self.writer.submit(Write::Scan(transition))
    }

    /// Queues an audit row to the writer thread now; the future resolves once it is committed
    /// or refused.
    pub(crate) fn queue_audit(
        &self,
        row: crate::AuditRow,
        previous: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        self.writer.submit(Write::Audit {
            row: Box::new(row),
            previous,
        })
    }

    /// Records a newly admitted job: queued, or already running from `started_at` when it got a
    /// running slot at once (one write instead of two).
    pub async fn insert(&self, job: NewJob, started_at: Option<String>) -> Result<(), StoreError> {
        self.writer.submit(Write::Insert { job, started_at }).await
    }

    /// Marks a queued job as running.
    pub async fn mark_running(&self, id: String, started_at: String) -> Result<(), StoreError> {
        self.writer
            .submit(Write::MarkRunning { id, started_at })
            .await
    }

    /// Records a job's end and drops the output of jobs beyond the retention limit.
    pub async fn finish(&self, id: String, done: FinishedJob) -> Result<(), StoreError> {
        JobStore::finish_job(self, id, done).await
    }

    /// One job with its full output, if it exists.
    pub async fn get(&self, id: String) -> Result<Option<JobRecord>, StoreError> {
        let retention = self.retention;
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT {JOB_COLUMNS}, CAST(job_output.stdout AS TEXT), CAST(job_output.stderr AS TEXT), {OUTPUT_DROPPED} \
                 {FROM_JOBS_AND_OUTPUT} WHERE jobs.id = ?2"
            );
            let row = conn
                .prepare_cached(&sql)?
                .query_row(params![retention, id], raw_row)
                .optional()?;
            row.map(|raw| raw.into_record(true)).transpose()
        })
        .await
    }

    /// Jobs newest first, without stdout/stderr.
    pub async fn list(&self, filter: JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let retention = self.retention;
        self.with_reader(move |conn| {
            let sql = format!(
                "SELECT {JOB_COLUMNS}, NULL, NULL, {OUTPUT_DROPPED} {FROM_JOBS_AND_OUTPUT} \
                 WHERE (?2 IS NULL OR tool = ?2) AND (?3 IS NULL OR status = ?3) \
                 AND (?5 IS NULL OR tenant = ?5) \
                 ORDER BY jobs.rowid DESC LIMIT ?4"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![
                    retention,
                    filter.tool,
                    filter.status.map(JobStatus::as_str),
                    i64::try_from(filter.limit).unwrap_or(i64::MAX),
                    filter.tenant,
                ],
                raw_row,
            )?;
            let mut records = Vec::new();
            for row in rows {
                records.push(row?.into_record(false)?);
            }
            Ok(records)
        })
        .await
    }

    /// The schema version of this build (for diagnostics).
    pub fn schema_version() -> usize {
        crate::schema::latest_version()
    }
}

/// Runs `work` with `conn` on a blocking thread, so the async runtime never waits on disk.
pub(crate) async fn on_blocking_thread<T, F>(
    conn: Arc<Mutex<Connection>>,
    work: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        // A panic while holding the lock leaves the connection itself usable.
        let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut guard)
    })
    .await?
}

/// Now in the daemon's one timestamp format (RFC 3339, UTC, microseconds, `Z`), which sorts
/// as text.
pub(crate) fn now_text() -> String {
    time_text(chrono::Utc::now())
}

/// `time` in the daemon's one timestamp format.
pub(crate) fn time_text(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A connection with the store's settings.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// A job row as either backend returns it, before JSON decoding.
pub(crate) struct RawRow {
    pub(crate) id: String,
    pub(crate) tool: String,
    pub(crate) status: String,
    pub(crate) params: String,
    pub(crate) argv: String,
    pub(crate) command: String,
    pub(crate) created_at: String,
    pub(crate) started_at: Option<String>,
    pub(crate) finished_at: Option<String>,
    pub(crate) duration_secs: Option<f64>,
    pub(crate) exit_code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) timed_out: bool,
    pub(crate) success: bool,
    pub(crate) classification: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) summary: Option<String>,
    pub(crate) findings: Option<String>,
    pub(crate) stdout: Option<String>,
    pub(crate) stderr: Option<String>,
    pub(crate) output_dropped: bool,
    pub(crate) truncated: bool,
    pub(crate) protections: Option<String>,
    pub(crate) output_dir: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) tenant: String,
}

fn raw_row(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: row.get(0)?,
        tool: row.get(1)?,
        status: row.get(2)?,
        params: row.get(3)?,
        argv: row.get(4)?,
        command: row.get(5)?,
        created_at: row.get(6)?,
        started_at: row.get(7)?,
        finished_at: row.get(8)?,
        duration_secs: row.get(9)?,
        exit_code: row.get(10)?,
        signal: row.get(11)?,
        timed_out: row.get(12)?,
        success: row.get(13)?,
        classification: row.get(14)?,
        message: row.get(15)?,
        summary: row.get(16)?,
        findings: row.get(17)?,
        truncated: row.get(18)?,
        protections: row.get(19)?,
        output_dir: row.get(20)?,
        error: row.get(21)?,
        tenant: row.get(22)?,
        stdout: row.get(23)?,
        stderr: row.get(24)?,
        output_dropped: row.get(25)?,
    })
}

impl RawRow {
    pub(crate) fn into_record(self, with_output: bool) -> Result<JobRecord, StoreError> {
        let json = |text: Option<String>| -> Result<Option<serde_json::Value>, StoreError> {
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
        };
        Ok(JobRecord {
            status: self.status.parse()?,
            params: serde_json::from_str(&self.params)?,
            argv: serde_json::from_str(&self.argv)?,
            summary: json(self.summary)?,
            findings: json(self.findings)?,
            sandbox: json(self.protections)?,
            stdout: self.stdout.filter(|_| with_output),
            stderr: self.stderr.filter(|_| with_output),
            id: self.id,
            tenant: self.tenant,
            tool: self.tool,
            command: self.command,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            execution_time: self.duration_secs,
            exit_code: self.exit_code,
            signal: self.signal,
            timed_out: self.timed_out,
            success: self.success,
            classification: self.classification,
            message: self.message,
            output_dropped: self.output_dropped,
            truncated: self.truncated,
            output_dir: self.output_dir,
            error: self.error,
        })
    }
}

impl JobStore for SqliteStore {
    fn start_job_within(
        &self,
        id: String,
        _tenant: String,
        _max: u32,
        started_at: String,
    ) -> StoreFuture<bool> {
        // One daemon per database file: its in-memory tenant slots are the whole truth.
        let store = self.clone();
        Box::pin(async move {
            store.mark_job_running(id, started_at).await?;
            Ok(true)
        })
    }

    fn pending_cancels(&self) -> StoreFuture<Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn request_cancel(&self, _id: String) -> StoreFuture<bool> {
        // One daemon per database file: every job it knows of is its own.
        Box::pin(async { Ok(false) })
    }

    fn cancel_requests(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    fn insert_job(&self, job: NewJob, started_at: Option<String>) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move { store.insert(job, started_at).await })
    }

    fn mark_job_running(&self, id: String, started_at: String) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move { store.mark_running(id, started_at).await })
    }

    /// Queued to the writer thread when called (the audit trail queues a run's record right
    /// after it, so both go out in one commit).
    fn finish_job(&self, id: String, done: FinishedJob) -> StoreFuture<()> {
        Box::pin(self.writer.submit(Write::Finish {
            id,
            done: Box::new(done),
        }))
    }

    fn job(&self, id: String) -> StoreFuture<Option<JobRecord>> {
        let store = self.clone();
        Box::pin(async move { store.get(id).await })
    }

    fn list_jobs(&self, filter: JobFilter) -> StoreFuture<Vec<JobRecord>> {
        let store = self.clone();
        Box::pin(async move { store.list(filter).await })
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
