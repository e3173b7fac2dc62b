//! The job half of the PostgreSQL store: job writes and reads, and marking this daemon's
//! unfinished jobs `interrupted` when it starts.
//!
//! Invariants (as in SQLite's `jobs.rs`): a job record is never deleted, only its stdout and
//! stderr (a row of `job_output`) once it falls out of the newest `retention` jobs; a finished
//! job's output row is written in the same transaction as its outcome, with the retention
//! sweep (all three through the writer, `writer.rs`); a job names the daemon that runs it, and
//! a daemon interrupts only its own.

use deadpool_postgres::Client;
use toolgate_model::{FinishedJob, JobFilter, JobRecord, JobStatus, NewJob};

use super::PgStore;
use super::rows::{JOB_COLUMNS, job_row};
use super::writer::Write;
use crate::jobs::now_text;
use crate::{JobStore, StoreError, StoreFuture};

/// Joined after `JOB_COLUMNS`: a job's output row, if retention kept it.
const FROM_JOBS_AND_OUTPUT: &str = "FROM jobs LEFT JOIN job_output ON job_output.job = jobs.seq";

/// Whether retention dropped a job's output: it has finished, is not among the newest `$1`
/// jobs, and its output row is gone (the sweep deletes exactly those rows). A failed insert
/// uses up a `seq`, so after one the newest `retention` jobs by this measure are one fewer
/// jobs; reads and the sweep agree on it.
const OUTPUT_DROPPED: &str = "(job_output.job IS NULL AND jobs.status NOT IN ('queued', 'running') \
    AND jobs.seq <= (SELECT MAX(seq) FROM jobs) - $1)";

impl PgStore {
    /// Marks the jobs this daemon left queued or running in its previous life `interrupted`.
    pub(super) async fn interrupt_own_jobs(&self, client: &Client) -> Result<usize, StoreError> {
        let marked = client
            .execute(
                "UPDATE jobs SET status = 'interrupted', finished_at = COALESCE(finished_at, $1), \
                 error = COALESCE(error, 'the daemon stopped while this job was queued or running') \
                 WHERE status IN ('queued', 'running') AND daemon = $2",
                &[&now_text(), &&*self.daemon],
            )
            .await?;
        Ok(usize::try_from(marked).unwrap_or(usize::MAX))
    }

    async fn insert(&self, job: NewJob, started_at: Option<String>) -> Result<(), StoreError> {
        let argv = serde_json::to_string(&job.argv)?;
        self.writer
            .submit(Write::Insert {
                job,
                argv,
                started_at,
            })
            .await
    }

    /// `start_job_within`: one transaction holding the tenant's advisory lock, so two
    /// daemons never both take the tenant's last slot; jobs of daemons whose heartbeat lapsed
    /// (dead, or cut off from the store) do not count.
    async fn start_within(
        &self,
        id: String,
        tenant: String,
        max: u32,
        started_at: String,
    ) -> Result<bool, StoreError> {
        // Heartbeats are on the server's clock (`clock.rs`); the job keeps the daemon's.
        let alive_after = chrono::DateTime::parse_from_rfc3339(&started_at).map_or_else(
            |_| started_at.clone(),
            |time| crate::jobs::time_text(self.clock.on_database_clock(time.to_utc())),
        );
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("toolgate-tenant-slots:{tenant}")],
        )
        .await?;
        let running: i64 = tx
            .query_one(
                "SELECT count(*) FROM jobs WHERE tenant = $1 AND status = 'running' \
                 AND (daemon = $2 OR daemon IN \
                      (SELECT id FROM daemons WHERE alive_until > $3))",
                &[&tenant, &&*self.daemon, &alive_after],
            )
            .await?
            .try_get(0)?;
        if running >= i64::from(max) {
            return Ok(false);
        }
        tx.execute(
            "UPDATE jobs SET status = 'running', started_at = $2 \
             WHERE id = $1 AND status = 'queued'",
            &[&id, &started_at],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get(&self, id: String) -> Result<Option<JobRecord>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS}, job_output.stdout, job_output.stderr, {OUTPUT_DROPPED} \
                 {FROM_JOBS_AND_OUTPUT} WHERE jobs.id = $2"
            ))
            .await?;
        let row = client
            .query_opt(&statement, &[&self.retention, &id])
            .await?;
        row.map(|row| job_row(&row)?.into_record(true)).transpose()
    }

    async fn list(&self, filter: JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS}, NULL::bytea, NULL::bytea, {OUTPUT_DROPPED} \
                 {FROM_JOBS_AND_OUTPUT} \
                 WHERE ($2::text IS NULL OR tool = $2) AND ($3::text IS NULL OR status = $3) \
                 AND ($5::text IS NULL OR tenant = $5) \
                 ORDER BY jobs.seq DESC LIMIT $4"
            ))
            .await?;
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[
                    &self.retention,
                    &filter.tool,
                    &filter.status.map(JobStatus::as_str),
                    &limit,
                    &filter.tenant,
                ],
            )
            .await?;
        rows.iter()
            .map(|row| job_row(row)?.into_record(false))
            .collect()
    }
}

impl JobStore for PgStore {
    fn start_job_within(
        &self,
        id: String,
        tenant: String,
        max: u32,
        started_at: String,
    ) -> StoreFuture<bool> {
        let store = self.clone();
        Box::pin(async move { store.start_within(id, tenant, max, started_at).await })
    }

    fn request_cancel(&self, id: String) -> StoreFuture<bool> {
        let store = self.clone();
        Box::pin(async move {
            let client = store.pool.get().await?;
            // Only a live job is worth a request; it is kept on the job (the daemon running it
            // looks for such jobs now and then) and announced (it cancels at once).
            let sent = client
                .execute(
                    &format!(
                        "WITH asked AS (UPDATE jobs SET cancel_requested = TRUE \
                         WHERE id = $1 AND status IN ('queued', 'running') RETURNING id) \
                         SELECT pg_notify('{channel}', id) FROM asked",
                        channel = super::notifications::CANCEL_CHANNEL
                    ),
                    &[&id],
                )
                .await?;
            Ok(sent > 0)
        })
    }

    fn pending_cancels(&self) -> StoreFuture<Vec<String>> {
        let store = self.clone();
        Box::pin(async move {
            let client = store.pool.get().await?;
            let pending = client
                .prepare_cached(
                    "SELECT id FROM jobs WHERE daemon = $1 \
                     AND status IN ('queued', 'running') AND cancel_requested",
                )
                .await?;
            client
                .query(&pending, &[&&*store.daemon])
                .await?
                .iter()
                .map(|row| Ok(row.try_get(0)?))
                .collect()
        })
    }

    fn cancel_requests(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.notifications.cancels.subscribe())
    }

    fn insert_job(&self, job: NewJob, started_at: Option<String>) -> StoreFuture<()> {
        let store = self.clone();
        Box::pin(async move { store.insert(job, started_at).await })
    }

    fn mark_job_running(&self, id: String, started_at: String) -> StoreFuture<()> {
        Box::pin(self.writer.submit(Write::MarkRunning { id, started_at }))
    }

    /// Queued on the writer when called, before the future is polled, like an audit append:
    /// a finish and an append called one right after the other go out in the same batch, so
    /// one commit stores both (the daemon's `AuditTrail::record_after` relies on it), in one
    /// statement when nothing was queued between them (`writer.rs`).
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
