//! The scan queue in PostgreSQL: every transition is one transaction that locks the scan's row
//! (`SELECT ... FOR UPDATE`), refuses with [`Refused`] when the transition does not start from
//! the scan's state, and writes the new state with the old one in its `WHERE`.
//!
//! Invariants: `claim_next` takes the oldest queued scan with `FOR UPDATE SKIP LOCKED`, so
//! daemons sharing the queue each take a different scan without waiting on each other, and
//! records the claiming daemon and its lease; only the daemon holding a running scan attaches
//! its job, finishes or requeues it (another gets [`Refused::LeaseLost`], so a scan taken over
//! after its lease ran out has its results written once, by its new holder); recovery takes
//! only running scans whose lease ran out, skipping rows another daemon has locked; a tenant's
//! queue limit is checked under a per-tenant advisory lock, so daemons initiating at once
//! cannot overshoot it together.

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use toolgate_model::{
    Finding, NewScan, Scan, ScanId, ScanOutcome, ScanPage, ScanQuery, ScanRequest, ScanState,
    UploadInfo,
};

use super::PgStore;
use super::notifications::QUEUE_CHANNEL;
use super::rows::{finding_row, scan_id, scan_row};
use super::scan_writes::{insert_findings, insert_scan, write_ending};
use crate::jobs::time_text;
use crate::scan_rows::{FINDING_COLUMNS, SCAN_COLUMNS, state_of};
use crate::scans::{lease_end_after, retries_exhausted};
use crate::{Recovered, Refused, ScanStore, StoreError, StoreFuture};

/// Runs `$work` (an expression that may `.await` and use `$store` and `$tx`) in one transaction
/// on a pooled connection: committed when it succeeds, rolled back (dropped) when it fails.
macro_rules! transition {
    ($self:expr, $tx:ident => $work:expr) => {{
        let pool = $self.pool.clone();
        Box::pin(async move {
            let mut client = pool.get().await?;
            let $tx = client.transaction().await?;
            let result = $work;
            $tx.commit().await?;
            Ok::<_, StoreError>(result)
        })
    }};
    ($self:expr, $store:ident, $tx:ident => $work:expr) => {{
        let $store = $self.clone();
        Box::pin(async move {
            let mut client = $store.pool.get().await?;
            let $tx = client.transaction().await?;
            let result = $work;
            $tx.commit().await?;
            Ok::<_, StoreError>(result)
        })
    }};
}

/// The scan's state and holder, with its row locked until the transaction ends; or
/// [`Refused::UnknownScan`].
async fn lock_scan(
    tx: &Transaction<'_>,
    id: &ScanId,
) -> Result<(ScanState, Option<String>), StoreError> {
    let statement = tx
        .prepare_cached("SELECT state, claimed_by FROM scans WHERE id = $1 FOR UPDATE")
        .await?;
    let row = tx
        .query_opt(&statement, &[&id.as_str()])
        .await?
        .ok_or_else(|| Refused::UnknownScan(id.clone()))?;
    let state: String = row.try_get(0)?;
    let state = state_of(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("scan {id}: state {state:?}")))?;
    Ok((state, row.try_get(1)?))
}

/// One scan, read with `client` (a transaction or a pooled connection).
async fn read_scan(client: &impl GenericClient, id: &ScanId) -> Result<Option<Scan>, StoreError> {
    let statement = client
        .prepare_cached(&format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = $1"))
        .await?;
    client
        .query_opt(&statement, &[&id.as_str()])
        .await?
        .map(|row| scan_row(&row)?.into_scan())
        .transpose()
}

/// The scan just written in `tx`.
async fn written_scan(tx: &Transaction<'_>, id: &ScanId) -> Result<Scan, StoreError> {
    read_scan(tx, id)
        .await?
        .ok_or_else(|| Refused::UnknownScan(id.clone()).into())
}

impl PgStore {
    /// Refuses unless the scan is running under this daemon's claim.
    async fn lock_own_running(&self, tx: &Transaction<'_>, id: &ScanId) -> Result<(), StoreError> {
        match lock_scan(tx, id).await? {
            (ScanState::Running, Some(holder)) if holder != *self.daemon => {
                Err(Refused::LeaseLost {
                    id: id.clone(),
                    holder,
                }
                .into())
            }
            (ScanState::Running, _) => Ok(()),
            (state, _) => Err(Refused::NotRunning {
                id: id.clone(),
                state: Refused::state(state),
            }
            .into()),
        }
    }

    /// Ends the leases this daemon held in its previous life (see the module doc of `pg`), so
    /// that recovery takes its scans at once rather than when their leases would have run out.
    pub(super) async fn end_own_leases(
        &self,
        client: &deadpool_postgres::Client,
    ) -> Result<(), StoreError> {
        client
            .execute(
                "UPDATE scans SET lease_until = NULL WHERE state = 'running' AND claimed_by = $1",
                &[&&*self.daemon],
            )
            .await?;
        Ok(())
    }

    /// The next queued scan, now running, held by this daemon under a lease: the tenant
    /// `fair_claim` serves first when several have scans queued (its oldest scan not held by
    /// another daemon's claim), else the oldest queued scan.
    async fn claim_in(
        &self,
        tx: &Transaction<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Scan>, StoreError> {
        let lease_until = time_text(lease_end_after(
            self.clock.on_database_clock(now),
            self.lease,
        )?);
        let started_at = time_text(now);
        // One round trip: the tenants with queued scans (a loose index scan), each with its
        // running count and oldest queued scan; `fair_claim` orders them.
        let weigh = tx
            .prepare_cached(&format!(
                "WITH RECURSIVE t(tenant) AS ( \
                   (SELECT tenant FROM scans WHERE state = 'queued' ORDER BY tenant LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT s.tenant FROM scans s WHERE s.state = 'queued' \
                           AND s.tenant > t.tenant ORDER BY s.tenant LIMIT 1) \
                   FROM t WHERE t.tenant IS NOT NULL) \
                 SELECT w.tenant, \
                   (SELECT count(*) FROM scans r WHERE r.state = 'running' AND r.tenant = w.tenant), \
                   h.queued_at, h.id \
                 FROM (SELECT tenant FROM t WHERE tenant IS NOT NULL LIMIT {max}) w \
                 CROSS JOIN LATERAL (SELECT queued_at, id FROM scans q \
                   WHERE q.state = 'queued' AND q.tenant = w.tenant \
                   ORDER BY queued_at, id LIMIT 1) h",
                max = crate::fair_claim::MAX_TENANTS_WEIGHED
            ))
            .await?;
        let candidates = tx
            .query(&weigh, &[])
            .await?
            .iter()
            .map(|row| {
                Ok(crate::fair_claim::Candidate {
                    tenant: row.try_get(0)?,
                    running: row.try_get(1)?,
                    head_queued_at: row.try_get(2)?,
                    head_id: row.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        if candidates.len() > 1 {
            let by_tenant = tx.prepare_cached(&claim_sql("AND tenant = $4")).await?;
            for candidate in crate::fair_claim::in_turn(candidates) {
                let claimed = tx
                    .query_opt(
                        &by_tenant,
                        &[&started_at, &&*self.daemon, &lease_until, &candidate.tenant],
                    )
                    .await?;
                if let Some(row) = claimed {
                    return scan_row(&row)?.into_scan().map(Some);
                }
            }
        }
        let statement = tx.prepare_cached(&claim_sql("")).await?;
        tx.query_opt(&statement, &[&started_at, &&*self.daemon, &lease_until])
            .await?
            .map(|row| scan_row(&row)?.into_scan())
            .transpose()
    }

    async fn finish_scan_in(
        &self,
        tx: &Transaction<'_>,
        id: &ScanId,
        state: ScanState,
        outcome: &ScanOutcome,
        findings: &[Finding],
        now: DateTime<Utc>,
    ) -> Result<Scan, StoreError> {
        if !state.is_terminal() {
            return Err(Refused::NotAnEnding(Refused::state(state)).into());
        }
        self.lock_own_running(tx, id).await?;
        write_ending(tx, id, state, outcome, now).await?;
        insert_findings(tx, id, findings, &outcome.resources).await?;
        written_scan(tx, id).await
    }
}

/// The claim of the oldest queued scan (`and` narrows which: e.g. one tenant's) that no other
/// daemon is claiming: running, one more attempt, held by `$2` until `$3`, from `$1`.
fn claim_sql(and: &str) -> String {
    format!(
        "UPDATE scans SET state = 'running', attempts = attempts + 1, started_at = $1, \
         job_id = NULL, claimed_by = $2, lease_until = $3 \
         WHERE id = (SELECT id FROM scans WHERE state = 'queued' {and} \
         ORDER BY queued_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         AND state = 'queued' RETURNING {SCAN_COLUMNS}"
    )
}

async fn record_upload(
    tx: &Transaction<'_>,
    id: &ScanId,
    nonce: &str,
    upload: &UploadInfo,
) -> Result<Scan, StoreError> {
    let (state, _) = lock_scan(tx, id).await?;
    let consume = tx
        .prepare_cached(
            "INSERT INTO upload_nonces (nonce, scan, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .await?;
    let consumed = tx
        .execute(
            &consume,
            &[&nonce, &id.as_str(), &time_text(upload.uploaded_at)],
        )
        .await?;
    if consumed == 0 {
        return Err(Refused::NonceReused.into());
    }
    if state != ScanState::AwaitingUpload {
        return Err(Refused::NotAwaitingUpload {
            id: id.clone(),
            state: Refused::state(state),
        }
        .into());
    }
    let update = tx
        .prepare_cached(
            "UPDATE scans SET state = 'uploaded', upload = $2 \
             WHERE id = $1 AND state = 'awaiting_upload'",
        )
        .await?;
    tx.execute(&update, &[&id.as_str(), &serde_json::to_string(upload)?])
        .await?;
    written_scan(tx, id).await
}

/// `update`, a statement that moves one scan to `queued`, announced to every daemon's workers
/// in the same statement: the notification leaves with the transaction's commit.
fn announcing(update: &str) -> String {
    format!(
        "WITH queued AS ({update} RETURNING id) SELECT pg_notify('{QUEUE_CHANNEL}', id) FROM queued"
    )
}

async fn initiate(
    tx: &Transaction<'_>,
    id: &ScanId,
    request: &ScanRequest,
    now: DateTime<Utc>,
) -> Result<Scan, StoreError> {
    match lock_scan(tx, id).await?.0 {
        ScanState::Uploaded => {}
        ScanState::AwaitingUpload => return Err(Refused::NotUploaded { id: id.clone() }.into()),
        state => {
            return Err(Refused::AlreadyInitiated {
                id: id.clone(),
                state: Refused::state(state),
            }
            .into());
        }
    }
    let update = tx
        .prepare_cached(&announcing(
            "UPDATE scans SET state = 'queued', request = $2, queued_at = $3 \
             WHERE id = $1 AND state = 'uploaded'",
        ))
        .await?;
    tx.execute(
        &update,
        &[
            &id.as_str(),
            &serde_json::to_string(request)?,
            &time_text(now),
        ],
    )
    .await?;
    written_scan(tx, id).await
}

/// [`initiate`] within the tenant's queue limit, checked under the tenant's advisory lock.
async fn initiate_within(
    tx: &Transaction<'_>,
    id: &ScanId,
    request: &ScanRequest,
    now: DateTime<Utc>,
    max_queued: u32,
) -> Result<Scan, StoreError> {
    let tenant: String = tx
        .query_opt("SELECT tenant FROM scans WHERE id = $1", &[&id.as_str()])
        .await?
        .ok_or_else(|| Refused::UnknownScan(id.clone()))?
        .try_get(0)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('toolgate tenant queue ' || $1))",
        &[&tenant],
    )
    .await?;
    let queued: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM scans WHERE tenant = $1 AND state = 'queued'",
            &[&tenant],
        )
        .await?
        .try_get(0)?;
    if queued >= i64::from(max_queued) {
        return Err(Refused::TenantQueueFull {
            tenant,
            max: max_queued,
        }
        .into());
    }
    initiate(tx, id, request, now).await
}

async fn requeue(tx: &Transaction<'_>, id: &ScanId) -> Result<(), StoreError> {
    let update = tx
        .prepare_cached(&announcing(
            "UPDATE scans SET state = 'queued', attempts = GREATEST(attempts - 1, 0), \
             started_at = NULL, job_id = NULL, claimed_by = NULL, lease_until = NULL \
             WHERE id = $1 AND state = 'running'",
        ))
        .await?;
    tx.execute(&update, &[&id.as_str()]).await?;
    Ok(())
}

async fn recover(
    tx: &Transaction<'_>,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Recovered, StoreError> {
    let expired = tx
        .prepare_cached(
            "SELECT id, attempts FROM scans WHERE state = 'running' \
             AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY queued_at, id FOR UPDATE SKIP LOCKED",
        )
        .await?;
    let rows = tx.query(&expired, &[&time_text(now)]).await?;
    let requeue = tx
        .prepare_cached(&announcing(
            "UPDATE scans SET state = 'queued', started_at = NULL, job_id = NULL, \
             claimed_by = NULL, lease_until = NULL WHERE id = $1 AND state = 'running'",
        ))
        .await?;
    // The job of a scan taken over ran on a daemon that stopped renewing its lease (it died or
    // lost the store): it is recorded as interrupted, so no job stays `running` forever.
    let interrupt_job = tx
        .prepare_cached(
            "UPDATE jobs SET status = 'interrupted', finished_at = COALESCE(finished_at, $2), \
             error = COALESCE(error, 'its daemon stopped renewing the scan''s lease; another \
             daemon took the scan over') \
             WHERE id = (SELECT job_id FROM scans WHERE id = $1) \
             AND status IN ('queued', 'running')",
        )
        .await?;
    // Jobs no lease covers (synchronous calls) left by a daemon that died: their daemon's
    // heartbeat lapsed, or never was (a store copied from SQLite), so nothing will end them.
    let orphans = tx
        .prepare_cached(
            "UPDATE jobs SET status = 'interrupted', finished_at = COALESCE(finished_at, $1), \
             error = COALESCE(error, 'its daemon stopped while this job was queued or running') \
             WHERE status IN ('queued', 'running') \
             AND daemon NOT IN (SELECT id FROM daemons WHERE alive_until >= $1)",
        )
        .await?;
    let mut recovered = Recovered {
        interrupted_jobs: tx.execute(&orphans, &[&time_text(now)]).await?,
        ..Recovered::default()
    };
    for row in rows {
        let id = scan_id(row.try_get(0)?)?;
        let attempts: i64 = row.try_get(1)?;
        tx.execute(&interrupt_job, &[&id.as_str(), &time_text(now)])
            .await?;
        if attempts < i64::from(max_attempts) {
            tx.execute(&requeue, &[&id.as_str()]).await?;
            recovered.requeued.push(id);
        } else {
            let outcome = retries_exhausted(attempts, max_attempts);
            write_ending(tx, &id, ScanState::Error, &outcome, now).await?;
            recovered.failed.push(id);
        }
    }
    Ok(recovered)
}

async fn expire(
    tx: &Transaction<'_>,
    finished_before: DateTime<Utc>,
    abandoned_before: DateTime<Utc>,
) -> Result<Vec<ScanId>, StoreError> {
    let rows = tx
        .query(
            "SELECT id FROM scans WHERE finished_at < $1 \
             OR (state IN ('awaiting_upload', 'uploaded') AND created_at < $2) FOR UPDATE",
            &[&time_text(finished_before), &time_text(abandoned_before)],
        )
        .await?;
    let ids: Vec<String> = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    for table in [
        "scan_findings",
        "scan_tags",
        "scan_resources",
        "upload_nonces",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE scan = ANY($1)"),
            &[&ids],
        )
        .await?;
    }
    tx.execute("DELETE FROM scans WHERE id = ANY($1)", &[&ids])
        .await?;
    ids.iter().map(|id| scan_id(id)).collect()
}

async fn read_findings(
    client: &impl GenericClient,
    id: &ScanId,
) -> Result<Option<Vec<Finding>>, StoreError> {
    let exists = client
        .query_opt("SELECT 1 FROM scans WHERE id = $1", &[&id.as_str()])
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let statement = client
        .prepare_cached(&format!(
            "SELECT {FINDING_COLUMNS} FROM scan_findings WHERE scan = $1 ORDER BY position"
        ))
        .await?;
    let rows = client.query(&statement, &[&id.as_str()]).await?;
    rows.iter()
        .map(finding_row)
        .collect::<Result<_, _>>()
        .map(Some)
}

impl ScanStore for PgStore {
    fn create_scan(&self, new: NewScan) -> StoreFuture<Scan> {
        let scan = Scan::created(new);
        transition!(self, tx => {
            if !insert_scan(&tx, &scan).await? {
                return Err(Refused::DuplicateScan(scan.id.clone()).into());
            }
            scan
        })
    }

    fn scan(&self, id: ScanId) -> StoreFuture<Option<Scan>> {
        let store = self.clone();
        Box::pin(async move {
            let client = store.pool.get().await?;
            read_scan(&client, &id).await
        })
    }

    fn record_upload(&self, id: ScanId, nonce: String, upload: UploadInfo) -> StoreFuture<Scan> {
        transition!(self, tx => record_upload(&tx, &id, &nonce, &upload).await?)
    }

    fn initiate(&self, id: ScanId, request: ScanRequest, now: DateTime<Utc>) -> StoreFuture<Scan> {
        transition!(self, tx => initiate(&tx, &id, &request, now).await?)
    }

    fn initiate_within(
        &self,
        id: ScanId,
        request: ScanRequest,
        now: DateTime<Utc>,
        max_queued: u32,
    ) -> StoreFuture<Scan> {
        transition!(self, tx => initiate_within(&tx, &id, &request, now, max_queued).await?)
    }

    fn claim_next(&self, now: DateTime<Utc>) -> StoreFuture<Option<Scan>> {
        transition!(self, store, tx => store.claim_in(&tx, now).await?)
    }

    fn attach_job(&self, id: ScanId, job_id: String) -> StoreFuture<()> {
        transition!(self, store, tx => {
            store.lock_own_running(&tx, &id).await?;
            tx.execute(
                "UPDATE scans SET job_id = $2 WHERE id = $1 AND state = 'running'",
                &[&id.as_str(), &job_id],
            )
            .await?;
        })
    }

    fn finish_scan(
        &self,
        id: ScanId,
        state: ScanState,
        outcome: ScanOutcome,
        findings: Vec<Finding>,
        now: DateTime<Utc>,
    ) -> StoreFuture<Scan> {
        transition!(self, store, tx => {
            store.finish_scan_in(&tx, &id, state, &outcome, &findings, now).await?
        })
    }

    fn requeue_scan(&self, id: ScanId) -> StoreFuture<()> {
        transition!(self, store, tx => {
            store.lock_own_running(&tx, &id).await?;
            requeue(&tx, &id).await?
        })
    }

    fn recover_scans(&self, max_attempts: u32, now: DateTime<Utc>) -> StoreFuture<Recovered> {
        // Compared with lease ends and heartbeats, which are on the server's clock.
        let now = self.clock.on_database_clock(now);
        transition!(self, tx => recover(&tx, max_attempts, now).await?)
    }

    fn renew_leases(&self, until: DateTime<Utc>) -> StoreFuture<u64> {
        let store = self.clone();
        Box::pin(async move {
            let client = store.pool.get().await?;
            // Renewals come every third of a lease: often enough to follow a clock that drifts.
            store.clock.measure(&client).await?;
            let until = store.clock.on_database_clock(until);
            // The daemon's heartbeat rides with its leases: its running jobs count against
            // their tenants' limits until it lapses (`start_job_within`).
            client
                .execute(
                    "INSERT INTO daemons (id, alive_until) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET alive_until = EXCLUDED.alive_until",
                    &[&&*store.daemon, &time_text(until)],
                )
                .await?;
            let renew = client
                .prepare_cached(
                    "UPDATE scans SET lease_until = $1 WHERE state = 'running' AND claimed_by = $2",
                )
                .await?;
            Ok(client
                .execute(&renew, &[&time_text(until), &&*store.daemon])
                .await?)
        })
    }

    fn queue_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        Some(self.notifications.queued.subscribe())
    }

    fn list_scans(&self, query: ScanQuery) -> StoreFuture<ScanPage> {
        let store = self.clone();
        Box::pin(async move {
            let client = store.pool.get().await?;
            super::scan_list::list(&client, &query).await
        })
    }

    fn findings(&self, id: ScanId) -> StoreFuture<Option<Vec<Finding>>> {
        let store = self.clone();
        Box::pin(async move {
            let client = store.pool.get().await?;
            read_findings(&client, &id).await
        })
    }

    fn expire_scans(
        &self,
        finished_before: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> StoreFuture<Vec<ScanId>> {
        transition!(self, tx => expire(&tx, finished_before, abandoned_before).await?)
    }
}
