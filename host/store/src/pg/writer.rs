//! The PostgreSQL store's group-commit writer: one task owns one connection and commits the
//! job writes and audit appends that queued up while its previous commit ran, in one
//! transaction sent as one pipeline (one round trip for the whole batch).
//!
//! Why: on the synchronous path every job is an insert, a finish and an audit append. Written
//! one by one from the callers' tasks, each was at least one round trip on a pooled connection,
//! a finish was five (BEGIN, update, output, retention sweep, COMMIT), concurrent sweeps waited
//! on each other's row locks, and the audit trail, which must append in chain order, held its
//! lock across a round trip per record. Under load those round trips, not the work, set the
//! rate (0.65x SQLite's, whose writer thread batches the same writes). Here a batch of N writes
//! costs one round trip and one commit, and audit appends are queued in order without waiting
//! for each other.
//!
//! Invariants: a write is queued when [`Writer::submit`] is called, before its future is
//! polled, and batches are applied in queue order on one connection, one batch at a time, so
//! writes are applied in the order they were submitted; a write is acknowledged only after the
//! transaction holding it committed (or with the error that stopped it); when a statement of a
//! batch fails, PostgreSQL aborts the whole transaction, and the writer applies that batch's
//! writes again one at a time (each a single statement, so its own transaction), so one failing
//! write fails only itself (a write whose parameters cannot be encoded is never sent, and fails
//! alone while the rest commit); a finished job's outcome and output row are one statement; the
//! output retention sweep runs once per batch that finished a job (after the writes, when the
//! batch had to be applied one at a time) and deletes only above its previous cutoff, while a
//! finish stores its output only above the cutoff it sees (`SWEEP_OUTPUT`); an audit row is
//! written only if the stored row before it has the hash it was sealed on (refused otherwise,
//! like a taken id), so a row chained to a refused one is refused too and the stored chain
//! never has a gap or a fork. The
//! connection commits without waiting for the WAL flush (`synchronous_commit = off`, see
//! `PgStore`), as these rows did before the writer; a batch without an answer within
//! `BATCH_TIMEOUT` fails as unreachable and its connection is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::Poll;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Statement;
use toolgate_model::{FinishedJob, JobStatus, NewJob};

use crate::error::is_unreachable;
use crate::{AuditRow, StoreError};

/// Most writes committed in one transaction: bounds the pipeline's size and how long the first
/// write of a batch waits for the others. At 32 concurrent jobs about three writes per job can
/// be waiting, so a batch rarely fills.
const MAX_BATCH: usize = 128;

/// Longest a batch may take before its connection is given up on: a batch of small writes
/// takes milliseconds, and one that takes this long is on a connection that went away without
/// closing (a cut network), behind which every write of the daemon would wait. Its writes fail
/// as unreachable and the next batch opens a new connection.
const BATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

const INSERT_JOB: &str = "INSERT INTO jobs (id, tool, status, params, argv, command, created_at, \
    output_dir, started_at, tenant, daemon) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const MARK_RUNNING: &str =
    "UPDATE jobs SET status = 'running', started_at = $2 WHERE id = $1 AND status = 'queued'";

/// A job's outcome and its output row in one statement (so in one transaction even when it is
/// applied alone); an unknown id updates nothing and stores no output.
const FINISH_JOB: &str = "WITH finished AS (\
    UPDATE jobs SET status = $2, finished_at = $3, duration_secs = $4, exit_code = $5, \
    signal = $6, timed_out = $7, success = $8, classification = $9, message = $10, \
    summary = $11, findings = $12, truncated = $13, protections = $14, error = $15 \
    WHERE id = $1 RETURNING seq) \
    INSERT INTO job_output (job, stdout, stderr) SELECT seq, $16::bytea, $17::bytea FROM finished \
    WHERE seq > (SELECT MAX(seq) FROM jobs) - $18 \
    ON CONFLICT (job) DO UPDATE SET stdout = excluded.stdout, stderr = excluded.stderr";

/// Deletes the output rows at or below the retention cutoff (`MAX(seq) - $1`) and above `$2`,
/// the cutoff of this writer's previous sweep, and answers the new cutoff. Why the lower bound:
/// PostgreSQL keeps a deleted row until vacuum, and an unbounded sweep visits every row deleted
/// since the last vacuum (measured: 5 ms per sweep after 5,000 jobs, a third of the server's
/// time on the synchronous path). Nothing below `$2` is left behind: a finish stores its output
/// only above the cutoff it sees (`FINISH_JOB`), so every output row a writer stores lies above
/// its own previous sweep's cutoff, and its next sweep covers it.
const SWEEP_OUTPUT: &str = "WITH cutoff AS (SELECT GREATEST(COALESCE(MAX(seq), 0) - $1, 0) AS below FROM jobs), \
    swept AS (DELETE FROM job_output WHERE job > $2 AND job <= (SELECT below FROM cutoff)) \
    SELECT below FROM cutoff";

/// Inserts the row only after the row it was sealed on: id 1 starts the chain; any other id
/// needs the stored row before it to have hash `$12`. A taken id inserts nothing either.
const APPEND_AUDIT: &str = "INSERT INTO audit (id, time, tenant, key_id, action, tool, argv, \
    decision, outcome, client, hash) \
    SELECT $1::bigint, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, \
    $9::text, $10::text, $11::text \
    WHERE $1::bigint = 1 OR EXISTS (SELECT 1 FROM audit WHERE id = $1::bigint - 1 AND hash = $12::text) \
    ON CONFLICT (id) DO NOTHING";

/// One write the writer applies.
pub(super) enum Write {
    /// A new job, with its argv already as JSON.
    Insert {
        job: NewJob,
        argv: String,
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
    /// An audit row (its id as stored, its argv as JSON) and the hash of the row it chains to.
    Audit {
        row: AuditRow,
        id: i64,
        argv: String,
        previous: String,
    },
}

struct Request {
    write: Write,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Handle to the writer task; cheap to clone. The task ends when the last handle is gone.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Request>,
}

impl Writer {
    /// Starts the writer task on connections from `pool` (one at a time), writing jobs as run
    /// by `daemon` and keeping the output of the newest `retention` jobs.
    pub(super) fn start(pool: Pool, daemon: Arc<str>, retention: i64) -> Self {
        let (queue, requests) = mpsc::unbounded_channel();
        let writer = Serve {
            pool,
            daemon,
            retention,
            swept_below: AtomicI64::new(0),
        };
        tokio::spawn(writer.serve(requests));
        Self { queue }
    }

    /// Queues `write` now and returns the wait until it is committed.
    pub(super) fn submit(
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

/// The writer task's state.
struct Serve {
    pool: Pool,
    daemon: Arc<str>,
    retention: i64,
    /// The cutoff of this writer's last committed sweep: output rows at or below it are gone,
    /// except rows another daemon stored concurrently with that sweep, which its own writer
    /// sweeps. Starts at 0, so a daemon's first sweep covers every row (and so clears what a
    /// daemon that died before its next sweep left).
    swept_below: AtomicI64,
}

/// The prepared statements a batch uses, on the batch's connection.
struct Statements {
    insert: Statement,
    mark_running: Statement,
    finish: Statement,
    sweep: Statement,
    audit: Statement,
}

/// What each statement of a batch came to: rows affected (an audit row that inserted nothing
/// was refused), or its error.
type Applied = Vec<Result<u64, tokio_postgres::Error>>;

impl Serve {
    async fn serve(self, mut requests: mpsc::UnboundedReceiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let (writes, replies): (Vec<Write>, Vec<_>) = batch
                .drain(..)
                .map(|request| (request.write, request.reply))
                .unzip();
            let results = self.commit(&writes).await;
            for (reply, result) in replies.into_iter().zip(results) {
                // The caller may have gone away (its job task was dropped); the write stands.
                let _ = reply.send(result);
            }
        }
    }

    /// Applies `writes` in one transaction, or one at a time when a statement of it failed;
    /// one result per write, in order.
    async fn commit(&self, writes: &[Write]) -> Vec<Result<(), StoreError>> {
        let unreachable =
            |reason: String| every(writes, || StoreError::Unreachable(reason.clone()));
        let client = match self.pool.get().await {
            Ok(client) => client,
            Err(error) => return unreachable(error.to_string()),
        };
        let statements = match prepare(&client).await {
            Ok(statements) => statements,
            Err(error) if is_unreachable(&error) => return unreachable(error.to_string()),
            Err(error) => {
                let reason = error.to_string();
                return every(writes, || StoreError::Batch(reason.clone()));
            }
        };
        let applied = tokio::time::timeout(
            BATCH_TIMEOUT,
            self.apply_batch(&client, &statements, writes),
        )
        .await;
        match applied {
            Ok(results) => results,
            Err(_) => {
                // Not back in the pool: the next batch connects again.
                drop(deadpool_postgres::Object::take(client));
                unreachable(format!("no answer within {} s", BATCH_TIMEOUT.as_secs()))
            }
        }
    }

    /// [`Serve::commit`] on a connection with its statements prepared.
    async fn apply_batch(
        &self,
        client: &Object,
        statements: &Statements,
        writes: &[Write],
    ) -> Vec<Result<(), StoreError>> {
        let finishes = writes.iter().any(|w| matches!(w, Write::Finish { .. }));
        let mut steps = self.pipeline(client, statements, writes, finishes).await;
        let errors = || steps.iter().filter_map(|step| step.as_ref().err());
        if let Some(error) = errors().find(|error| is_unreachable(error)) {
            let reason = error.to_string();
            return every(writes, || StoreError::Unreachable(reason.clone()));
        }
        if let Some(error) = errors().find(|error| error.as_db_error().is_some()) {
            // The server refused a statement, so it rolled the whole transaction back.
            tracing::debug!(%error, writes = writes.len(),
                "a statement failed the batch; applying its writes one at a time");
            return self
                .one_at_a_time(client, statements, writes, finishes)
                .await;
        }
        if finishes && let Some(Ok(below)) = steps.get(writes.len() + 1) {
            self.swept(*below);
        }
        // Any other error happened before its statement was sent (its parameters could not be
        // encoded): the server never saw that write, and the rest committed.
        writes
            .iter()
            .zip(steps.drain(1..=writes.len()))
            .map(|(write, step)| match step {
                Ok(rows) => refusal(write, rows),
                Err(error) => Err(error.into()),
            })
            .collect()
    }

    /// BEGIN, every write, the sweep and COMMIT, sent without waiting for any answer; one result
    /// per statement, in that order.
    async fn pipeline(
        &self,
        client: &Object,
        statements: &Statements,
        writes: &[Write],
        finishes: bool,
    ) -> Applied {
        let mut steps: Vec<Step<'_>> = Vec::with_capacity(writes.len() + 3);
        steps.push(Box::pin(async move {
            client.batch_execute("BEGIN").await.map(|()| 0)
        }));
        for write in writes {
            steps.push(self.apply(client, statements, write));
        }
        if finishes {
            steps.push(self.sweep(client, statements));
        }
        // COMMIT ends the transaction however it went: after a failed statement PostgreSQL
        // answers it with a rollback, which the failed step already reports.
        steps.push(Box::pin(async move {
            client.batch_execute("COMMIT").await.map(|()| 0)
        }));
        in_order(steps).await
    }

    /// Each write as its own statement (its own transaction), then the sweep: the path after a
    /// batch failed, so that only the failing write fails.
    async fn one_at_a_time(
        &self,
        client: &Object,
        statements: &Statements,
        writes: &[Write],
        finishes: bool,
    ) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(writes.len());
        for write in writes {
            let applied = self.apply(client, statements, write).await;
            results.push(match applied {
                Ok(rows) => refusal(write, rows),
                Err(error) if is_unreachable(&error) => {
                    Err(StoreError::Unreachable(error.to_string()))
                }
                Err(error) => Err(error.into()),
            });
        }
        if finishes {
            match self.sweep(client, statements).await {
                Ok(below) => self.swept(below),
                Err(error) => {
                    tracing::warn!(%error, "dropping the output of jobs beyond the retention limit");
                }
            }
        }
        results
    }

    /// The retention sweep above this writer's last cutoff; answers its new cutoff (never
    /// negative). Its future sends the statement when first polled.
    fn sweep<'a>(&'a self, client: &'a Object, statements: &'a Statements) -> Step<'a> {
        Box::pin(async move {
            let from = self.swept_below.load(Ordering::Relaxed);
            let row = client
                .query_one(&statements.sweep, &[&self.retention, &from])
                .await?;
            let below: i64 = row.try_get(0)?;
            Ok(u64::try_from(below).unwrap_or(0))
        })
    }

    /// Records that a sweep up to `below` committed.
    fn swept(&self, below: u64) {
        let below = i64::try_from(below).unwrap_or(i64::MAX);
        self.swept_below.fetch_max(below, Ordering::Relaxed);
    }

    /// The statement of one write; its future sends the statement when first polled.
    fn apply<'a>(
        &'a self,
        client: &'a Object,
        statements: &'a Statements,
        write: &'a Write,
    ) -> Step<'a> {
        match write {
            Write::Insert {
                job,
                argv,
                started_at,
            } => Box::pin(async move {
                let status = if started_at.is_some() {
                    JobStatus::Running
                } else {
                    JobStatus::Queued
                };
                client
                    .execute(
                        &statements.insert,
                        &[
                            &job.id,
                            &job.tool,
                            &status.as_str(),
                            &job.params.to_string(),
                            argv,
                            &job.command,
                            &job.created_at,
                            &job.output_dir,
                            started_at,
                            &job.tenant,
                            &&*self.daemon,
                        ],
                    )
                    .await
            }),
            Write::MarkRunning { id, started_at } => Box::pin(async move {
                client
                    .execute(&statements.mark_running, &[id, started_at])
                    .await
            }),
            Write::Finish { id, done } => Box::pin(async move {
                let status = done.status.unwrap_or(JobStatus::Failed);
                let stdout = done.stdout.as_deref().map(String::as_bytes);
                let stderr = done.stderr.as_deref().map(String::as_bytes);
                client
                    .execute(
                        &statements.finish,
                        &[
                            id,
                            &status.as_str(),
                            &done.finished_at,
                            &done.duration_secs,
                            &done.exit_code,
                            &done.signal,
                            &done.timed_out,
                            &done.success,
                            &done.classification,
                            &done.message,
                            &done.summary,
                            &done.findings,
                            &done.truncated,
                            &done.protections,
                            &done.error,
                            &stdout,
                            &stderr,
                            &self.retention,
                        ],
                    )
                    .await
            }),
            Write::Audit {
                row,
                id,
                argv,
                previous,
            } => Box::pin(async move {
                client
                    .execute(
                        &statements.audit,
                        &[
                            id,
                            &row.time,
                            &row.tenant,
                            &row.key_id,
                            &row.action,
                            &row.tool,
                            argv,
                            &row.decision,
                            &row.outcome,
                            &row.client,
                            &row.hash,
                            previous,
                        ],
                    )
                    .await
            }),
        }
    }
}

/// One statement of a batch, answering how many rows it affected.
type Step<'a> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;

/// The batch's statements, prepared on `client` once per connection (`prepare_cached`).
async fn prepare(client: &Object) -> Result<Statements, tokio_postgres::Error> {
    Ok(Statements {
        insert: client.prepare_cached(INSERT_JOB).await?,
        mark_running: client.prepare_cached(MARK_RUNNING).await?,
        finish: client.prepare_cached(FINISH_JOB).await?,
        sweep: client.prepare_cached(SWEEP_OUTPUT).await?,
        audit: client.prepare_cached(APPEND_AUDIT).await?,
    })
}

/// The same failure for each of `writes`.
fn every(writes: &[Write], error: impl Fn() -> StoreError) -> Vec<Result<(), StoreError>> {
    writes.iter().map(|_| Err(error())).collect()
}

/// A write's result from the rows it affected: an audit row that inserted nothing was refused
/// (its id is taken, or it does not follow the stored chain); other writes affecting no row
/// are no error (an unknown id, a job no longer queued), as in the SQLite store.
fn refusal(write: &Write, rows: u64) -> Result<(), StoreError> {
    match write {
        Write::Audit { row, .. } if rows == 0 => Err(StoreError::AuditChain { id: row.id }),
        _ => Ok(()),
    }
}

/// Polls every step, always in index order, until all are done: a step sends its statement
/// when first polled, so the statements go out in the order of `steps` and all of them before
/// the first answer is awaited (tokio-postgres pipelines them on the connection).
async fn in_order<T>(mut steps: Vec<Pin<Box<dyn Future<Output = T> + Send + '_>>>) -> Vec<T> {
    let mut results: Vec<Option<T>> = steps.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (step, result) in steps.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match step.as_mut().poll(cx) {
                    Poll::Ready(value) => *result = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}
