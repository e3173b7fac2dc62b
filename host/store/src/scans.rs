//! The scan queue in SQLite: every transition runs on the store's writer thread, in its own
//! savepoint of a batch's immediate transaction (`writer`); it reads the scan's state, refuses
//! with [`Refused`] when the transition does not start there, and writes the new state with the
//! old one in its `WHERE` (so it stays correct when a second connection or daemon races it).
//!
//! Why an immediate transaction: it takes SQLite's write lock at `BEGIN`, so the state read and
//! the write cannot interleave with another process's write; the PostgreSQL equivalent is a
//! row lock (`SELECT ... FOR UPDATE`, and `FOR UPDATE SKIP LOCKED` in `claim_next`).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use toolgate_model::{
    ErrorDetail, Finding, NewScan, Scan, ScanId, ScanOutcome, ScanPage, ScanQuery, ScanRequest,
    ScanState, UploadInfo,
};

use crate::jobs::{SqliteStore, time_text};
use crate::scan_rows::{
    FINDING_COLUMNS, RawScan, SCAN_COLUMNS, checked_finding, insert_findings, insert_scan,
    read_finding, state_of,
};
use crate::{Recovered, Refused, SQLITE_DAEMON, ScanStore, StoreError, StoreFuture};

/// The `code` of the error detail a scan gets when it ran out of attempts.
pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";

/// The ending of a scan whose daemon died under it `attempts` times, at the limit of
/// `max_attempts` (both backends' recovery writes it).
pub(crate) fn retries_exhausted(
    attempts: impl std::fmt::Display,
    max_attempts: u32,
) -> ScanOutcome {
    ScanOutcome {
        error_details: vec![ErrorDetail {
            code: RETRIES_EXHAUSTED.to_string(),
            detail: format!(
                "the daemon stopped while this scan was running, {attempts} times; \
                 scans are started at most {max_attempts} times"
            ),
        }],
        ..ScanOutcome::default()
    }
}

impl SqliteStore {
    /// Runs `work` as one scan transition on the writer thread (in a savepoint of its batch's
    /// immediate transaction): its writes are undone when it fails, and its answer is handed
    /// over once the batch has committed.
    fn transition<T, F>(&self, work: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let committed = self.queue_transition(Box::new(move |tx: &Transaction<'_>| {
            let _ = answer.send(work(tx)?);
            Ok(())
        }));
        Box::pin(async move {
            committed.await?;
            answered.await.map_err(|_| StoreError::WriterGone)
        })
    }
}

/// The scan's state, or [`Refused::UnknownScan`].
fn state_of_scan(tx: &Transaction<'_>, id: &ScanId) -> Result<ScanState, StoreError> {
    let state: Option<String> = tx
        .prepare_cached("SELECT state FROM scans WHERE id = ?1")?
        .query_row(params![id.as_str()], |row| row.get(0))
        .optional()?;
    let state = state.ok_or_else(|| Refused::UnknownScan(id.clone()))?;
    state_of(&state).ok_or_else(|| StoreError::Corrupt(format!("scan {id}: state {state:?}")))
}

/// One scan, read with `conn` (a transaction or the reader).
fn read_scan(conn: &Connection, id: &ScanId) -> Result<Option<Scan>, StoreError> {
    let sql = format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row(params![id.as_str()], RawScan::read)
        .optional()?
        .map(RawScan::into_scan)
        .transpose()
}

/// The scan just written in `tx`.
fn written_scan(tx: &Transaction<'_>, id: &ScanId) -> Result<Scan, StoreError> {
    read_scan(tx, id)?.ok_or_else(|| Refused::UnknownScan(id.clone()).into())
}

fn record_upload(
    tx: &Transaction<'_>,
    id: &ScanId,
    nonce: &str,
    upload: &UploadInfo,
) -> Result<Scan, StoreError> {
    let state = state_of_scan(tx, id)?;
    let consumed = tx
        .prepare_cached(
            "INSERT INTO upload_nonces (nonce, scan, used_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (nonce) DO NOTHING",
        )?
        .execute(params![nonce, id.as_str(), time_text(upload.uploaded_at)])?;
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
    tx.prepare_cached(
        "UPDATE scans SET state = 'uploaded', upload = ?2 WHERE id = ?1 AND state = 'awaiting_upload'",
    )?
    .execute(params![id.as_str(), serde_json::to_string(upload)?])?;
    written_scan(tx, id)
}

fn initiate(
    tx: &Transaction<'_>,
    id: &ScanId,
    request: &ScanRequest,
    now: DateTime<Utc>,
) -> Result<Scan, StoreError> {
    match state_of_scan(tx, id)? {
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
    tx.prepare_cached(
        "UPDATE scans SET state = 'queued', request = ?2, queued_at = ?3 \
         WHERE id = ?1 AND state = 'uploaded'",
    )?
    .execute(params![
        id.as_str(),
        serde_json::to_string(request)?,
        time_text(now)
    ])?;
    written_scan(tx, id)
}

/// The next queued scan, now running: with one tenant queued, its oldest; with several, the
/// oldest of the tenant `fair_claim` serves first. The sub-select picks it and the outer `WHERE`
/// re-checks the state; in PostgreSQL the sub-select is `... LIMIT 1 FOR UPDATE SKIP LOCKED`,
/// so daemons sharing the queue each take a different scan without waiting on each other.
/// Indexes are named because SQLite's planner, without statistics, prefers `scans_by_state`
/// and sorts every queued scan (6.3 ms median per claim with 10,000 queued).
fn claim_next(tx: &Transaction<'_>, now: DateTime<Utc>) -> Result<Option<Scan>, StoreError> {
    let mut tenants: Vec<String> = Vec::new();
    let mut next_tenant = tx.prepare_cached(
        "SELECT tenant FROM scans INDEXED BY scans_queued_by_tenant \
         WHERE state = 'queued' AND tenant > ?1 ORDER BY tenant LIMIT 1",
    )?;
    while tenants.len() < crate::fair_claim::MAX_TENANTS_WEIGHED {
        let after = tenants.last().map_or("", String::as_str);
        match next_tenant
            .query_row(params![after], |row| row.get::<_, String>(0))
            .optional()?
        {
            Some(tenant) => tenants.push(tenant),
            None => break,
        }
    }
    drop(next_tenant);
    let chosen = if tenants.len() > 1 {
        let mut candidates = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            let running: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM scans INDEXED BY scans_running_by_tenant \
                     WHERE state = 'running' AND tenant = ?1",
                )?
                .query_row(params![tenant], |row| row.get(0))?;
            let head: Option<(String, String)> = tx
                .prepare_cached(
                    "SELECT queued_at, id FROM scans INDEXED BY scans_queued_by_tenant \
                     WHERE state = 'queued' AND tenant = ?1 ORDER BY queued_at, id LIMIT 1",
                )?
                .query_row(params![tenant], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            if let Some((head_queued_at, head_id)) = head {
                candidates.push(crate::fair_claim::Candidate {
                    tenant,
                    running,
                    head_queued_at,
                    head_id,
                });
            }
        }
        crate::fair_claim::in_turn(candidates)
            .into_iter()
            .next()
            .map(|first| first.head_id)
    } else {
        None
    };
    let lease_until = time_text(lease_end_after(now, crate::DEFAULT_SCAN_LEASE)?);
    let claimed = match chosen {
        Some(id) => tx
            .prepare_cached(&claim_sql("?4"))?
            .query_row(
                params![time_text(now), SQLITE_DAEMON, lease_until, id],
                RawScan::read,
            )
            .optional()?,
        None => tx
            .prepare_cached(&claim_sql(
                "(SELECT id FROM scans INDEXED BY scans_queued WHERE state = 'queued' \
                 ORDER BY queued_at, id LIMIT 1)",
            ))?
            .query_row(
                params![time_text(now), SQLITE_DAEMON, lease_until],
                RawScan::read,
            )
            .optional()?,
    };
    claimed.map(RawScan::into_scan).transpose()
}

/// The claim of the queued scan whose id `target` is (a parameter or a sub-select): running,
/// one more attempt, held by `?2` until `?3`, from `?1`.
fn claim_sql(target: &str) -> String {
    format!(
        "UPDATE scans SET state = 'running', attempts = attempts + 1, started_at = ?1, \
         job_id = NULL, claimed_by = ?2, lease_until = ?3 \
         WHERE id = {target} AND state = 'queued' RETURNING {SCAN_COLUMNS}"
    )
}

/// `now` plus `lease`, refused when it leaves the calendar.
pub(crate) fn lease_end_after(
    now: DateTime<Utc>,
    lease: std::time::Duration,
) -> Result<DateTime<Utc>, StoreError> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| StoreError::Corrupt(format!("a lease of {lease:?} from {now}")))
}

fn refuse_unless_running(tx: &Transaction<'_>, id: &ScanId) -> Result<(), StoreError> {
    match state_of_scan(tx, id)? {
        ScanState::Running => Ok(()),
        state => Err(Refused::NotRunning {
            id: id.clone(),
            state: Refused::state(state),
        }
        .into()),
    }
}

fn finish_scan(
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
    refuse_unless_running(tx, id)?;
    write_ending(tx, id, state, outcome, now)?;
    insert_findings(tx, id, findings, &outcome.resources)?;
    written_scan(tx, id)
}

/// Writes a running scan's ending (its findings are the caller's).
fn write_ending(
    tx: &Transaction<'_>,
    id: &ScanId,
    state: ScanState,
    outcome: &ScanOutcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use toolgate_model::severity::Bucket;
    let counts = &outcome.counts;
    let as_sql = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    tx.prepare_cached(
        "UPDATE scans SET state = ?2, outcome = ?3, finished_at = ?4, found_high = ?5, \
         found_medium = ?6, found_low = ?7 WHERE id = ?1 AND state = 'running'",
    )?
    .execute(params![
        id.as_str(),
        state.as_str(),
        serde_json::to_string(outcome)?,
        time_text(now),
        as_sql(counts.bucket(Bucket::High)),
        as_sql(counts.bucket(Bucket::Medium)),
        as_sql(counts.bucket(Bucket::Low)),
    ])?;
    Ok(())
}

fn requeue(tx: &Transaction<'_>, id: &ScanId) -> Result<(), StoreError> {
    refuse_unless_running(tx, id)?;
    tx.prepare_cached(
        "UPDATE scans SET state = 'queued', attempts = MAX(attempts - 1, 0), started_at = NULL, \
         job_id = NULL, claimed_by = NULL, lease_until = NULL WHERE id = ?1 AND state = 'running'",
    )?
    .execute(params![id.as_str()])?;
    Ok(())
}

fn recover(
    tx: &Transaction<'_>,
    max_attempts: u32,
    now: DateTime<Utc>,
) -> Result<Recovered, StoreError> {
    let running: Vec<(String, u32)> = tx
        .prepare_cached(
            "SELECT id, attempts FROM scans WHERE state = 'running' ORDER BY queued_at",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut recovered = Recovered::default();
    for (id, attempts) in running {
        let id = ScanId::parse(&id).map_err(|_| StoreError::Corrupt(format!("scan id {id:?}")))?;
        if attempts < max_attempts {
            tx.prepare_cached(
                "UPDATE scans SET state = 'queued', started_at = NULL, job_id = NULL, \
                 claimed_by = NULL, lease_until = NULL WHERE id = ?1 AND state = 'running'",
            )?
            .execute(params![id.as_str()])?;
            recovered.requeued.push(id);
        } else {
            let outcome = retries_exhausted(attempts, max_attempts);
            write_ending(tx, &id, ScanState::Error, &outcome, now)?;
            recovered.failed.push(id);
        }
    }
    Ok(recovered)
}

fn expire(
    tx: &Transaction<'_>,
    finished_before: DateTime<Utc>,
    abandoned_before: DateTime<Utc>,
) -> Result<Vec<ScanId>, StoreError> {
    let ids: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM scans WHERE finished_at < ?1 \
             UNION SELECT id FROM scans WHERE state IN ('awaiting_upload', 'uploaded') \
             AND created_at < ?2",
        )?
        .query_map(
            params![time_text(finished_before), time_text(abandoned_before)],
            |row| row.get(0),
        )?
        .collect::<Result<_, _>>()?;
    for table in [
        "scan_findings",
        "scan_tags",
        "scan_resources",
        "upload_nonces",
    ] {
        let mut delete = tx.prepare_cached(&format!("DELETE FROM {table} WHERE scan = ?1"))?;
        for id in &ids {
            delete.execute(params![id])?;
        }
    }
    let mut delete = tx.prepare_cached("DELETE FROM scans WHERE id = ?1")?;
    for id in &ids {
        delete.execute(params![id])?;
    }
    ids.into_iter()
        .map(|id| ScanId::parse(&id).map_err(|_| StoreError::Corrupt(format!("scan id {id:?}"))))
        .collect()
}

fn read_findings(conn: &Connection, id: &ScanId) -> Result<Option<Vec<Finding>>, StoreError> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM scans WHERE id = ?1")?
        .query_row(params![id.as_str()], |row| row.get(0))
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let sql =
        format!("SELECT {FINDING_COLUMNS} FROM scan_findings WHERE scan = ?1 ORDER BY position");
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![id.as_str()], read_finding)?;
    let mut findings = Vec::new();
    for row in rows {
        findings.push(checked_finding(row?)?);
    }
    Ok(Some(findings))
}

impl ScanStore for SqliteStore {
    fn create_scan(&self, new: NewScan) -> StoreFuture<Scan> {
        let scan = Scan::created(new);
        self.transition(move |tx| {
            if read_scan(tx, &scan.id)?.is_some() {
                return Err(Refused::DuplicateScan(scan.id.clone()).into());
            }
            insert_scan(tx, &scan)?;
            Ok(scan)
        })
    }

    fn scan(&self, id: ScanId) -> StoreFuture<Option<Scan>> {
        let store = self.clone();
        Box::pin(async move { store.with_reader(move |conn| read_scan(conn, &id)).await })
    }

    fn record_upload(&self, id: ScanId, nonce: String, upload: UploadInfo) -> StoreFuture<Scan> {
        self.transition(move |tx| record_upload(tx, &id, &nonce, &upload))
    }

    fn initiate(&self, id: ScanId, request: ScanRequest, now: DateTime<Utc>) -> StoreFuture<Scan> {
        self.transition(move |tx| initiate(tx, &id, &request, now))
    }

    fn initiate_within(
        &self,
        id: ScanId,
        request: ScanRequest,
        now: DateTime<Utc>,
        max_queued: u32,
    ) -> StoreFuture<Scan> {
        self.transition(move |tx| {
            let (tenant, queued): (String, u32) = tx.query_row(
                "SELECT s.tenant, (SELECT COUNT(*) FROM scans q WHERE q.tenant = s.tenant \
                 AND q.state = 'queued') FROM scans s WHERE s.id = ?1",
                params![id.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            if queued >= max_queued {
                return Err(Refused::TenantQueueFull {
                    tenant,
                    max: max_queued,
                }
                .into());
            }
            initiate(tx, &id, &request, now)
        })
    }

    fn claim_next(&self, now: DateTime<Utc>) -> StoreFuture<Option<Scan>> {
        self.transition(move |tx| claim_next(tx, now))
    }

    fn attach_job(&self, id: ScanId, job_id: String) -> StoreFuture<()> {
        self.transition(move |tx| {
            refuse_unless_running(tx, &id)?;
            tx.prepare_cached("UPDATE scans SET job_id = ?2 WHERE id = ?1 AND state = 'running'")?
                .execute(params![id.as_str(), job_id])?;
            Ok(())
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
        self.transition(move |tx| finish_scan(tx, &id, state, &outcome, &findings, now))
    }

    fn requeue_scan(&self, id: ScanId) -> StoreFuture<()> {
        self.transition(move |tx| requeue(tx, &id))
    }

    fn recover_scans(&self, max_attempts: u32, now: DateTime<Utc>) -> StoreFuture<Recovered> {
        self.transition(move |tx| recover(tx, max_attempts, now))
    }

    fn renew_leases(&self, until: DateTime<Utc>) -> StoreFuture<u64> {
        self.transition(move |tx| {
            let renewed = tx
                .prepare_cached(
                    "UPDATE scans SET lease_until = ?1 WHERE state = 'running' AND claimed_by = ?2",
                )?
                .execute(params![time_text(until), SQLITE_DAEMON])?;
            Ok(u64::try_from(renewed).unwrap_or(u64::MAX))
        })
    }

    fn queue_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }

    fn list_scans(&self, query: ScanQuery) -> StoreFuture<ScanPage> {
        let store = self.clone();
        Box::pin(async move {
            store
                .with_reader(move |conn| crate::scan_list::list(conn, &query))
                .await
        })
    }

    fn findings(&self, id: ScanId) -> StoreFuture<Option<Vec<Finding>>> {
        let store = self.clone();
        Box::pin(async move {
            store
                .with_reader(move |conn| read_findings(conn, &id))
                .await
        })
    }

    fn expire_scans(
        &self,
        finished_before: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> StoreFuture<Vec<ScanId>> {
        self.transition(move |tx| expire(tx, finished_before, abandoned_before))
    }
}
