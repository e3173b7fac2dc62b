//! The store's job and audit writer: one thread owns the write connection and commits the
//! writes (job inserts, transitions and finishes, audit rows) that queued up while the previous
//! commit ran in one transaction (group commit). Scan transitions keep their own connection
//! (each reads before it writes, in an immediate transaction) and take turns with this thread.
//!
//! Why: at 32 concurrent jobs, two transactions per job through the blocking pool cost a
//! thread wake-up, a contended mutex and a WAL commit each; batching shares the commit (and the
//! pages it writes) between the jobs of a batch and needs no lock, while a lone write still
//! commits at once.
//!
//! Invariants: a write is acknowledged only after the transaction holding it committed (or
//! with the error that stopped it); one failing statement fails only its own write (SQLite
//! undoes just that statement), a failed commit fails every write of the batch; the output
//! retention sweep runs once per batch that finished a job; a finished job's output row is
//! written in the same transaction as its outcome; writes are applied in the order they were
//! submitted (the audit trail queues a row before the one it sealed before it is stored).

use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::oneshot;

use crate::{AuditRow, StoreError};
use toolgate_model::{FinishedJob, JobStatus, NewJob};

/// Most writes committed in one transaction: bounds how long the first write of a batch waits
/// for the others.
const MAX_BATCH: usize = 64;

/// Takes turns between this process's SQLite write transactions: the writer thread's batches,
/// and the scan transitions and audit appends of the scan connection.
///
/// Why: two connections that meet on SQLite's write lock wait in its busy handler, which
/// sleeps 1 to 100 ms between tries whether or not the lock was freed meanwhile; at 32 scan
/// workers the writer thread spent a seventh of its time asleep there (`perf trace -s`: 122
/// `clock_nanosleep`, 567 ms in 4 s). A turn at this mutex starts as soon as the other commits.
/// Other processes (an operator's sqlite3, `store copy`) still meet the busy timeout.
#[derive(Clone, Default)]
pub(crate) struct WriteTurns(Arc<Mutex<()>>);

impl WriteTurns {
    /// Waits for this process's turn to write; the turn ends when the guard drops.
    pub(crate) fn take(&self) -> MutexGuard<'_, ()> {
        // Nothing is guarded but the turn itself, so a panic in another turn changes nothing.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// One change to the jobs table or the audit trail.
pub(crate) enum Write {
    Insert {
        job: NewJob,
        started_at: Option<String>,
    },
    MarkRunning {
        id: String,
        started_at: String,
    },
    Finish {
        id: String,
        done: Box<FinishedJob>,
    },
    /// An audit row, after the row whose hash is `previous` (see `crate::audit::insert`).
    Audit {
        row: Box<AuditRow>,
        previous: String,
    },
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the writer thread; cheap to clone. The thread ends when the last handle is gone.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Request>,
}

impl Writer {
    /// Starts the writer thread on `conn`; each batch's transaction waits for its turn.
    pub(crate) fn start(
        conn: Connection,
        retention: usize,
        turns: WriteTurns,
    ) -> Result<Self, StoreError> {
        let (queue, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("toolgate-store".into())
            .spawn(move || serve(conn, retention, &turns, &requests))
            .map_err(StoreError::WriterThread)?;
        Ok(Self { queue })
    }

    /// Queues `write` at once (so writes are applied in the order of these calls, not of the
    /// futures' first polls) and returns a future that waits until it is committed.
    pub(crate) fn submit(
        &self,
        write: Write,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (reply, committed) = oneshot::channel();
        let queued = self.queue.send(Request { write, reply });
        async move {
            queued.map_err(|_| StoreError::WriterGone)?;
            committed.await.map_err(|_| StoreError::WriterGone)?
        }
    }
}

fn serve(
    mut conn: Connection,
    retention: usize,
    turns: &WriteTurns,
    requests: &mpsc::Receiver<Request>,
) {
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<_>) = batch
            .into_iter()
            .map(|request| (request.write, request.reply))
            .unzip();
        let results = {
            let _turn = turns.take();
            commit_batch(&mut conn, retention, &writes)
        };
        for (reply, result) in replies.into_iter().zip(results) {
            // The caller may have gone away (its job task was dropped); the write stands.
            let _ = reply.send(result);
        }
    }
}

/// Applies `writes` in one transaction; one result per write, in order.
pub(crate) fn commit_batch(
    conn: &mut Connection,
    retention: usize,
    writes: &[Write],
) -> Vec<Result<(), StoreError>> {
    let failed_batch = |error: rusqlite::Error| {
        let reason = error.to_string();
        writes
            .iter()
            .map(|_| Err(StoreError::Batch(reason.clone())))
            .collect()
    };
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(error) => return failed_batch(error),
    };
    let results: Vec<_> = writes.iter().map(|write| apply(&tx, write)).collect();
    if writes.iter().any(|w| matches!(w, Write::Finish { .. }))
        && let Err(error) = drop_old_output(&tx, retention)
    {
        tracing::warn!(%error, "dropping the output of jobs beyond the retention limit");
    }
    match tx.commit() {
        Ok(()) => results,
        Err(error) => failed_batch(error),
    }
}

fn apply(tx: &Transaction<'_>, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Insert { job, started_at } => {
            let status = if started_at.is_some() {
                JobStatus::Running
            } else {
                JobStatus::Queued
            };
            tx.prepare_cached(
                "INSERT INTO jobs (id, tool, status, params, argv, command, created_at, output_dir, \
                 started_at, tenant) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                job.id,
                job.tool,
                status.as_str(),
                job.params.to_string(),
                serde_json::to_string(&job.argv)?,
                job.command,
                job.created_at,
                job.output_dir,
                started_at,
                job.tenant,
            ])?;
        }
        Write::MarkRunning { id, started_at } => {
            tx.prepare_cached(
                "UPDATE jobs SET status = 'running', started_at = ?2 WHERE id = ?1 AND status = 'queued'",
            )?
            .execute(params![id, started_at])?;
        }
        Write::Audit { row, previous } => crate::audit::insert(tx, row, previous)?,
        Write::Finish { id, done } => {
            let status = done.status.unwrap_or(JobStatus::Failed);
            let job: Option<i64> = tx
                .prepare_cached(
                    "UPDATE jobs SET status = ?2, finished_at = ?3, duration_secs = ?4, \
                     exit_code = ?5, signal = ?6, timed_out = ?7, success = ?8, \
                     classification = ?9, message = ?10, summary = ?11, findings = ?12, \
                     truncated = ?13, protections = ?14, error = ?15 WHERE id = ?1 \
                     RETURNING rowid",
                )?
                .query_row(
                    params![
                        id,
                        status.as_str(),
                        done.finished_at,
                        done.duration_secs,
                        done.exit_code,
                        done.signal,
                        done.timed_out,
                        done.success,
                        done.classification,
                        done.message,
                        done.summary,
                        done.findings,
                        done.truncated,
                        done.protections,
                        done.error,
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            // An unknown id updates nothing and has no output to keep.
            if let Some(job) = job {
                write_output(tx, job, done.stdout.as_deref(), done.stderr.as_deref())?;
            }
        }
    }
    Ok(())
}

/// Outputs up to this size are bound as text, the cheapest way for the small outputs most
/// tools print; a larger one is written in place (see `write_output`).
const STREAMED_OUTPUT_BYTES: usize = 64 << 10;

/// Stores a finished job's stdout and stderr. A large output is stored as a BLOB of its UTF-8
/// bytes: its room is reserved with `zeroblob` and the bytes are written into the row through
/// SQLite's incremental blob I/O. Bound as text, SQLite would copy it twice (the bound value,
/// then the record it builds), so a flood of output cut at 16 MiB would cost the daemon 48 MiB
/// while it is stored instead of 16. Readers `CAST` the columns to text, which reads both kinds.
fn write_output(
    tx: &Transaction<'_>,
    job: i64,
    stdout: Option<&String>,
    stderr: Option<&String>,
) -> rusqlite::Result<()> {
    let large = |text: Option<&String>| text.is_some_and(|text| text.len() > STREAMED_OUTPUT_BYTES);
    if !large(stdout) && !large(stderr) {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO job_output (job, stdout, stderr) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![job, stdout, stderr])?;
        return Ok(());
    }
    let length = |text: Option<&String>| text.map(|text| text.len() as i64);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO job_output (job, stdout, stderr) VALUES (?1, \
         CASE WHEN ?2 IS NULL THEN NULL ELSE zeroblob(?2) END, \
         CASE WHEN ?3 IS NULL THEN NULL ELSE zeroblob(?3) END)",
    )?
    .execute(params![job, length(stdout), length(stderr)])?;
    for (column, text) in [("stdout", stdout), ("stderr", stderr)] {
        if let Some(text) = text.filter(|text| !text.is_empty()) {
            let mut blob = tx.blob_open(rusqlite::MAIN_DB, "job_output", column, job, false)?;
            blob.write_all(text.as_bytes())
                .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        }
    }
    Ok(())
}

/// Drops stdout/stderr of jobs older than the newest `retention`. Jobs are never deleted, so
/// rowids are dense and the newest `retention` jobs are exactly those above
/// MAX(rowid) - retention: the rows to drop are the oldest end of `job_output`, found by its
/// primary key.
fn drop_old_output(tx: &Transaction<'_>, retention: usize) -> rusqlite::Result<usize> {
    tx.prepare_cached("DELETE FROM job_output WHERE job <= (SELECT MAX(rowid) FROM jobs) - ?1")?
        .execute(params![i64::try_from(retention).unwrap_or(i64::MAX)])
}
