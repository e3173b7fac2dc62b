//! The store's writer: one thread owns the only write connection and commits the writes (job
//! inserts, transitions and finishes, audit rows, scan transitions) that queued up while the
//! previous commit ran in one transaction (group commit).
//!
//! Why: at 32 concurrent jobs, two transactions per job through the blocking pool cost a
//! thread wake-up, a contended mutex and a WAL commit each; batching shares the commit (and the
//! pages it writes) between the jobs of a batch and needs no lock, while a lone write still
//! commits at once. Scan transitions had a connection of their own and took turns with this
//! thread; each then cost a blocking-pool trip and a commit of its own, and at 32 scan workers
//! six of them per scan queued behind each other.
//!
//! Invariants: a write is acknowledged only after the transaction holding it committed (or
//! with the error that stopped it); one failing write fails only itself (SQLite undoes a failed
//! statement, and a scan transition runs in a savepoint rolled back when it fails), a failed
//! commit fails every write of the batch; a batch's transaction is immediate, so a scan
//! transition's read and write cannot interleave with another process's write; the output
//! retention sweep runs once per batch that finished a job; a finished job's output row is
//! written in the same transaction as its outcome; writes are applied in the order they were
//! submitted (the audit trail queues a row before the one it sealed before it is stored).

use std::io::Write as _;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::{AuditRow, StoreError};
use toolgate_model::{FinishedJob, JobStatus, NewJob};

/// Most writes committed in one transaction: bounds how long the first write of a batch waits
/// for the others.
const MAX_BATCH: usize = 64;

/// A scan transition: reads and writes in the batch's transaction, hands its typed answer to
/// its caller itself (see `SqliteStore::transition`), and fails with the error that refused it.
pub(crate) type Transition = Box<dyn FnOnce(&Transaction<'_>) -> Result<(), StoreError> + Send>;

/// One change to the jobs table, the audit trail or the scan queue.
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
    Scan(Transition),
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
    /// Starts the writer thread on `conn`.
    pub(crate) fn start(conn: Connection, retention: usize) -> Result<Self, StoreError> {
        let (queue, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("toolgate-store".into())
            .spawn(move || serve(conn, retention, &requests))
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

fn serve(mut conn: Connection, retention: usize, requests: &mpsc::Receiver<Request>) {
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
        let results = commit_batch(&mut conn, retention, writes);
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
    writes: Vec<Write>,
) -> Vec<Result<(), StoreError>> {
    let count = writes.len();
    let failed_batch = |error: rusqlite::Error| {
        let reason = error.to_string();
        (0..count)
            .map(|_| Err(StoreError::Batch(reason.clone())))
            .collect()
    };
    let finishes = writes.iter().any(|w| matches!(w, Write::Finish { .. }));
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => return failed_batch(error),
    };
    let results: Vec<_> = writes.into_iter().map(|write| apply(&tx, write)).collect();
    if finishes && let Err(error) = drop_old_output(&tx, retention) {
        tracing::warn!(%error, "dropping the output of jobs beyond the retention limit");
    }
    match tx.commit() {
        Ok(()) => results,
        Err(error) => failed_batch(error),
    }
}

fn apply(tx: &Transaction<'_>, write: Write) -> Result<(), StoreError> {
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
        Write::Audit { row, previous } => crate::audit::insert(tx, &row, &previous)?,
        Write::Scan(transition) => apply_transition(tx, transition)?,
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

/// Runs `transition` in a savepoint of the batch's transaction, so a transition that fails
/// (a refusal after a write, say) undoes all of its own writes and nothing of the others'. A
/// panic is caught and fails the transition alone: the thread serves every other write.
fn apply_transition(tx: &Transaction<'_>, transition: Transition) -> Result<(), StoreError> {
    tx.execute_batch("SAVEPOINT scan_transition")?;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transition(tx)))
        .unwrap_or_else(|_| Err(StoreError::TransitionPanicked));
    match outcome {
        Ok(()) => {
            tx.execute_batch("RELEASE scan_transition")?;
            Ok(())
        }
        Err(error) => {
            tx.execute_batch("ROLLBACK TO scan_transition; RELEASE scan_transition")?;
            Err(error)
        }
    }
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
