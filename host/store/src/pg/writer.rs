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
//! write fails only itself (a statement whose parameters cannot be encoded is never sent, and
//! its writes fail while the rest commit); a finished job's outcome and output row are one
//! statement, and so are they and the audit record queued right after them (a synchronous
//! run's end and its record); the output retention sweep runs once per batch that finished a
//! job (after the writes, when the batch had to be applied one at a time) and deletes only
//! above its previous cutoff, while a finish stores its output only above the cutoff it sees
//! (`SWEEP_OUTPUT`); an audit row is written only if the stored row before it has the hash it
//! was sealed on (refused otherwise, like a taken id), so a row chained to a refused one is
//! refused too and the stored chain never has a gap or a fork. The connection commits without
//! waiting for the WAL flush (`synchronous_commit = off`, see `PgStore`), as these rows did
//! before the writer; a batch without an answer within `BATCH_TIMEOUT` fails as unreachable
//! and its connection is dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::Poll;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;
use toolgate_model::{FinishedJob, JobStatus, NewJob};

use crate::error::{is_unreachable, with_causes};
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

/// The statements a batch prepares, built once (their texts share parts, see the functions).
static SQL: LazyLock<Sql> = LazyLock::new(|| Sql {
    finish: format!("WITH {} {}", finished_job(), store_output()),
    audit: append_audit(1),
    finish_and_audit: format!(
        "WITH {}, stored AS ({}), appended AS ({} RETURNING 1) \
         SELECT count(*) FROM appended",
        finished_job(),
        store_output(),
        append_audit(FINISH_PARAMETERS + 1),
    ),
});

/// The texts of the statements built from parts.
struct Sql {
    /// A job's outcome and its output row in one statement (so in one transaction even when
    /// it is applied alone); an unknown id updates nothing and stores no output.
    finish: String,
    /// One audit row (see [`append_audit`]).
    audit: String,
    /// A job's end and the audit record queued right after it in one statement: on the
    /// synchronous path every run's end is followed by its record (the daemon's
    /// `AuditTrail::record_after`), and one statement fewer per call is one Bind, Execute and
    /// Sync fewer for the server to answer and flush. Answers the audit rows inserted (0:
    /// refused; a finish affecting no row is no error).
    finish_and_audit: String,
}

/// How many parameters the finish takes (`$1` to `$18`); a record sharing its statement
/// numbers its own from `$19`.
const FINISH_PARAMETERS: usize = 18;

/// The CTE `finished`: the job's outcome (`$1` its id, `$2` to `$15`), answering its `seq`.
fn finished_job() -> &'static str {
    "finished AS (\
    UPDATE jobs SET status = $2, finished_at = $3, duration_secs = $4, exit_code = $5, \
    signal = $6, timed_out = $7, success = $8, classification = $9, message = $10, \
    summary = $11, findings = $12, truncated = $13, protections = $14, error = $15 \
    WHERE id = $1 RETURNING seq)"
}

/// The output row of the job in `finished` (`$16`, `$17`), stored only when it is within the
/// newest `$18` jobs (see `SWEEP_OUTPUT`).
fn store_output() -> &'static str {
    "INSERT INTO job_output (job, stdout, stderr) SELECT seq, $16::bytea, $17::bytea FROM finished \
    WHERE seq > (SELECT MAX(seq) FROM jobs) - $18 \
    ON CONFLICT (job) DO UPDATE SET stdout = excluded.stdout, stderr = excluded.stderr"
}

/// Deletes the output rows at or below the retention cutoff (`MAX(seq) - $1`) and above `$2`,
/// the cutoff of this writer's previous sweep, and answers the new cutoff. Why the lower bound:
/// PostgreSQL keeps a deleted row until vacuum, and an unbounded sweep visits every row deleted
/// since the last vacuum (measured: 5 ms per sweep after 5,000 jobs, a third of the server's
/// time on the synchronous path). Nothing below `$2` is left behind: a finish stores its output
/// only above the cutoff it sees (`store_output`), so every output row a writer stores lies above
/// its own previous sweep's cutoff, and its next sweep covers it.
const SWEEP_OUTPUT: &str = "WITH cutoff AS (SELECT GREATEST(COALESCE(MAX(seq), 0) - $1, 0) AS below FROM jobs), \
    swept AS (DELETE FROM job_output WHERE job > $2 AND job <= (SELECT below FROM cutoff)) \
    SELECT below FROM cutoff";

/// Inserts an audit row (its twelve parameters numbered from `$first`) only after the row it
/// was sealed on: id 1 starts the chain; any other id needs the stored row before it to have
/// the hash given last. A taken id inserts nothing either.
fn append_audit(first: usize) -> String {
    let [
        id,
        time,
        tenant,
        key_id,
        action,
        tool,
        argv,
        decision,
        outcome,
        client,
        hash,
        previous,
    ] = std::array::from_fn(|n| format!("${}", first + n));
    format!(
        "INSERT INTO audit (id, time, tenant, key_id, action, tool, argv, decision, outcome, \
         client, hash) \
         SELECT {id}::bigint, {time}::text, {tenant}::text, {key_id}::text, {action}::text, \
         {tool}::text, {argv}::text, {decision}::text, {outcome}::text, {client}::text, \
         {hash}::text \
         WHERE {id}::bigint = 1 OR EXISTS \
         (SELECT 1 FROM audit WHERE id = {id}::bigint - 1 AND hash = {previous}::text) \
         ON CONFLICT (id) DO NOTHING"
    )
}

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
    Audit(AuditWrite),
}

/// An audit row (its id as stored, its argv as JSON) and the hash of the row it chains to.
pub(super) struct AuditWrite {
    pub(super) row: AuditRow,
    pub(super) id: i64,
    pub(super) argv: String,
    pub(super) previous: String,
}

/// How many parameters an audit append takes (see [`append_audit`]).
const AUDIT_PARAMETERS: usize = 12;

impl AuditWrite {
    /// The append's parameters, in [`append_audit`]'s order.
    fn parameters(&self) -> [&(dyn ToSql + Sync); AUDIT_PARAMETERS] {
        let row = &self.row;
        [
            &self.id,
            &row.time,
            &row.tenant,
            &row.key_id,
            &row.action,
            &row.tool,
            &self.argv,
            &row.decision,
            &row.outcome,
            &row.client,
            &row.hash,
            &self.previous,
        ]
    }

    /// The append's result from the rows it inserted: none means it was refused (its id is
    /// taken, or it does not follow the stored chain).
    fn result(&self, rows: u64) -> Result<(), StoreError> {
        if rows == 0 {
            Err(StoreError::AuditChain { id: self.row.id })
        } else {
            Ok(())
        }
    }
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
    finish_and_audit: Statement,
}

/// The writes one statement of a batch carries: one, or a job's end and the audit record
/// queued right after it (`Sql::finish_and_audit`).
enum Unit<'a> {
    Alone(&'a Write),
    FinishThenAudit {
        id: &'a String,
        done: &'a FinishedJob,
        audit: &'a AuditWrite,
    },
}

impl<'a> Unit<'a> {
    /// `writes` as statements, in order.
    fn of(writes: &'a [Write]) -> Vec<Unit<'a>> {
        let mut units = Vec::with_capacity(writes.len());
        let mut rest = writes;
        while let Some((write, after)) = rest.split_first() {
            match (write, after.first()) {
                (Write::Finish { id, done }, Some(Write::Audit(audit))) => {
                    units.push(Unit::FinishThenAudit { id, done, audit });
                    rest = &after[1..];
                }
                _ => {
                    units.push(Unit::Alone(write));
                    rest = after;
                }
            }
        }
        units
    }
}

/// What each statement of a batch came to: rows affected (for a job's end and its record, the
/// record's; an audit row that inserted nothing was refused), or its error.
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
            Err(error) => return unreachable(with_causes(&error)),
        };
        let statements = match prepare(&client).await {
            Ok(statements) => statements,
            Err(error) if is_unreachable(&error) => return unreachable(with_causes(&error)),
            Err(error) => {
                let reason = with_causes(&error);
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
        let units = Unit::of(writes);
        let mut steps = self.pipeline(client, statements, &units, finishes).await;
        let errors = || steps.iter().filter_map(|step| step.as_ref().err());
        if let Some(error) = errors().find(|error| is_unreachable(error)) {
            let reason = with_causes(error);
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
        if finishes && let Some(Ok(below)) = steps.get(units.len() + 1) {
            self.swept(*below);
        }
        // Any other error happened before its statement was sent (its parameters could not be
        // encoded): the server never saw that statement's writes, and the rest committed.
        let mut results = Vec::with_capacity(writes.len());
        for (unit, step) in units.iter().zip(steps.drain(1..=units.len())) {
            match (unit, step) {
                (Unit::Alone(write), Ok(rows)) => results.push(refusal(write, rows)),
                (Unit::FinishThenAudit { audit, .. }, Ok(appended)) => {
                    // A finish affecting no row is no error (see `refusal`).
                    results.push(Ok(()));
                    results.push(audit.result(appended));
                }
                (Unit::FinishThenAudit { .. }, Err(error)) => {
                    let reason = with_causes(&error);
                    results.push(Err(error.into()));
                    results.push(Err(StoreError::Batch(reason)));
                }
                (Unit::Alone(_), Err(error)) => results.push(Err(error.into())),
            }
        }
        results
    }

    /// BEGIN, every write, the sweep and COMMIT, sent without waiting for any answer; one result
    /// per statement, in that order.
    async fn pipeline(
        &self,
        client: &Object,
        statements: &Statements,
        units: &[Unit<'_>],
        finishes: bool,
    ) -> Applied {
        let mut steps: Vec<Step<'_>> = Vec::with_capacity(units.len() + 3);
        steps.push(Box::pin(async move {
            client.batch_execute("BEGIN").await.map(|()| 0)
        }));
        for unit in units {
            steps.push(match unit {
                Unit::Alone(write) => self.apply(client, statements, write),
                Unit::FinishThenAudit { id, done, audit } => {
                    self.finish_then_audit(client, statements, id, done, audit)
                }
            });
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
                    Err(StoreError::Unreachable(with_causes(&error)))
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
                let values = FinishValues::of(done);
                let parameters = values.parameters(id, done, &self.retention);
                client.execute(&statements.finish, &parameters).await
            }),
            Write::Audit(audit) => {
                Box::pin(
                    async move { client.execute(&statements.audit, &audit.parameters()).await },
                )
            }
        }
    }

    /// The statement of a job's end and the audit record queued after it
    /// (`Sql::finish_and_audit`); its future sends it when first polled.
    fn finish_then_audit<'a>(
        &'a self,
        client: &'a Object,
        statements: &'a Statements,
        id: &'a String,
        done: &'a FinishedJob,
        audit: &'a AuditWrite,
    ) -> Step<'a> {
        Box::pin(async move {
            let values = FinishValues::of(done);
            let mut parameters: Vec<&(dyn ToSql + Sync)> =
                Vec::with_capacity(FINISH_PARAMETERS + AUDIT_PARAMETERS);
            parameters.extend(values.parameters(id, done, &self.retention));
            parameters.extend(audit.parameters());
            let row = client
                .query_one(&statements.finish_and_audit, &parameters)
                .await?;
            Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
        })
    }
}

/// A finish's values that are not fields of the finished job as they are.
struct FinishValues<'a> {
    status: &'static str,
    stdout: Option<&'a [u8]>,
    stderr: Option<&'a [u8]>,
}

impl<'a> FinishValues<'a> {
    fn of(done: &'a FinishedJob) -> Self {
        Self {
            status: done.status.unwrap_or(JobStatus::Failed).as_str(),
            stdout: done.stdout.as_deref().map(String::as_bytes),
            stderr: done.stderr.as_deref().map(String::as_bytes),
        }
    }

    /// The finish's parameters, `$1` to `$18` (see [`finished_job`] and [`store_output`]).
    fn parameters(
        &'a self,
        id: &'a String,
        done: &'a FinishedJob,
        retention: &'a i64,
    ) -> [&'a (dyn ToSql + Sync); FINISH_PARAMETERS] {
        [
            id,
            &self.status,
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
            &self.stdout,
            &self.stderr,
            retention,
        ]
    }
}

/// One statement of a batch, answering how many rows it affected.
type Step<'a> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;

/// The batch's statements, prepared on `client` once per connection (`prepare_cached`).
async fn prepare(client: &Object) -> Result<Statements, tokio_postgres::Error> {
    Ok(Statements {
        insert: client.prepare_cached(INSERT_JOB).await?,
        mark_running: client.prepare_cached(MARK_RUNNING).await?,
        finish: client.prepare_cached(&SQL.finish).await?,
        sweep: client.prepare_cached(SWEEP_OUTPUT).await?,
        audit: client.prepare_cached(&SQL.audit).await?,
        finish_and_audit: client.prepare_cached(&SQL.finish_and_audit).await?,
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
        Write::Audit(audit) => audit.result(rows),
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
