//! The audit trail (issue #16): every authenticated run, cancel, terminate, login, upload,
//! initiate and results read is appended to the store's `audit` table, sealed with
//! `toolgate_auth::audit::chain_hash` to the record before it, and emitted as a structured log
//! event (target `audit`) carrying the same hash, which anchors the chain outside the database.
//!
//! Invariants: records are sealed and queued one at a time under one lock, so ids are
//! consecutive and each hash covers the previous one; the store refuses a record whose id is
//! taken or whose predecessor is not stored as it was sealed on (`AuditStore::append_audit`),
//! so on a store shared by several daemons (PostgreSQL) an append after a row another daemon
//! wrote first is refused, as is every record queued after it on this daemon, and each is
//! sealed again on the new end of the chain (`MAX_APPEND_ATTEMPTS`); a record's time is
//! truncated to the microsecond the store keeps and the hash covers, so what is stored is
//! exactly what was hashed; a record that cannot be written is logged as an error with the
//! whole record (the request it describes has already happened). [`verify`] recomputes the chain and names the first record that does
//! not match.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use tokio::sync::Mutex;
use toolgate_auth::audit::{
    Action, AuditRecord, BrokenAt, ChainHash, Decision, GENESIS, SealedRecord, UnknownName, seal,
    verify_chain_from,
};
use toolgate_auth::{InvalidId, KeyId, TenantId};
use toolgate_store::{
    AuditFile, AuditFilter, AuditRow, AuditStore, MAX_AUDIT_PAGE, StoreError, StoreFuture,
};

use crate::api::auth::Caller;

/// Why the trail could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit record {id} has an unreadable {field}: {reason}")]
    Corrupt {
        id: u64,
        field: &'static str,
        reason: String,
    },
    #[error(transparent)]
    Broken(#[from] BrokenAt),
}

/// What one audited request did, before the trail numbers, times and seals it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub tool: Option<String>,
    pub argv: Vec<String>,
    pub decision: Decision,
    pub outcome: String,
}

impl AuditEvent {
    /// An allowed action with its outcome.
    pub fn allowed(action: Action, outcome: impl Into<String>) -> Self {
        Self {
            action,
            tool: None,
            argv: Vec::new(),
            decision: Decision::Allowed,
            outcome: outcome.into(),
        }
    }

    /// A refused action with the reason.
    pub fn denied(action: Action, outcome: impl Into<String>) -> Self {
        Self {
            decision: Decision::Denied,
            ..Self::allowed(action, outcome)
        }
    }

    /// The same event about `tool`.
    pub fn tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    /// The same event with the argv the host ran.
    pub fn argv(mut self, argv: Vec<String>) -> Self {
        self.argv = argv;
        self
    }
}

/// Most times one record is sealed and appended when other daemons sharing the store keep
/// appending first: each retry reads the chain's new end.
const MAX_APPEND_ATTEMPTS: usize = 8;

/// The appending end of the trail; cheap to clone.
#[derive(Clone)]
pub struct AuditTrail {
    store: Arc<dyn AuditStore>,
    tail: Arc<Mutex<Tail>>,
}

/// Where the next record chains to.
#[derive(Default)]
struct Tail {
    /// The last record's id and hash, stored or queued (read from the store at the first
    /// append, and again after a refusal).
    end: Option<(u64, ChainHash)>,
    /// How many times `end` was read from the store: a refused record forgets `end` only if
    /// no newer read happened since it was sealed, because the records queued after it were
    /// sealed on it and are refused in turn, and their refusals must not throw away an end
    /// read after them.
    reads: u64,
}

impl AuditTrail {
    /// The trail of `store`, continuing after its newest record.
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        Self {
            store,
            tail: Arc::new(Mutex::new(Tail::default())),
        }
    }

    async fn load_tail(&self) -> Result<(u64, ChainHash), AuditError> {
        Ok(match self.store.last_audit().await? {
            Some(row) => (row.id, parse_hash(&row)?),
            None => (0, GENESIS),
        })
    }

    /// Appends `event` by `caller`, and logs it.
    ///
    /// The lock is held while the record is sealed and queued, and released before it is
    /// stored (both stores queue appends in the order asked), so the next record is sealed on
    /// this one at once and many records are stored in one commit. The store refuses a record
    /// whose predecessor was not stored as sealed, so the stored chain stays whole.
    pub async fn record(&self, caller: &Caller, event: AuditEvent) {
        // Without a write before it, there is no write result to report.
        let _ = self.append(caller, event, None).await;
    }

    /// [`AuditTrail::record`] of an event that follows a store write, `write` (a job's end,
    /// recorded before the run's record), and that write's result.
    ///
    /// `write` must be one the store queues when it is called (both stores' `finish_job`): it
    /// is called under the trail's lock right before the record is sealed and queued, with
    /// nothing awaited between the two, so both go out in one batch and the caller waits for
    /// one commit instead of two in turn. The two rows do not depend on each other: a refused
    /// record is sealed again and appended alone, and a failed write fails only itself.
    pub async fn record_after(
        &self,
        caller: &Caller,
        event: AuditEvent,
        write: impl FnOnce() -> StoreFuture<()> + Send,
    ) -> Result<(), StoreError> {
        self.append(caller, event, Some(Box::new(write)))
            .await
            .unwrap_or(Ok(()))
    }

    /// [`AuditTrail::record`], queueing `write` first under the lock when it is given (see
    /// [`AuditTrail::record_after`]); `write`'s result, when it was given.
    async fn append(
        &self,
        caller: &Caller,
        event: AuditEvent,
        mut write: Option<Box<dyn FnOnce() -> StoreFuture<()> + Send + '_>>,
    ) -> Option<Result<(), StoreError>> {
        let time = now_micros();
        let mut written = None;
        let mut last_error = None;
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let mut guard = self.tail.lock().await;
            let end = match guard.end {
                Some(end) => end,
                None => match self.load_tail().await {
                    Ok(end) => end,
                    Err(error) => {
                        drop(guard);
                        tracing::error!(target: "audit", %error, action = event.action.as_str(),
                            tenant = %caller.tenant, "cannot read the audit trail's end; record lost");
                        // The write does not depend on the record: it is made all the same.
                        return match write {
                            Some(write) => Some(write().await),
                            None => written,
                        };
                    }
                },
            };
            let reads = guard.reads;
            let record = AuditRecord {
                id: end.0 + 1,
                time,
                tenant: caller.tenant.clone(),
                key_id: caller.key_id.clone(),
                action: event.action,
                tool: event.tool.clone(),
                argv: event.argv.clone(),
                decision: event.decision,
                outcome: event.outcome.clone(),
                client: caller.client,
            };
            let sealed = seal(&end.1, record);
            // Queued right before the record, so the store's writer takes both in one batch.
            let writing = write.take().map(|write| write());
            let appending = self.store.append_audit(to_row(&sealed), end.1.to_string());
            // Both are queued: the next record may be sealed on this one before it is stored.
            guard.end = Some((sealed.record.id, sealed.hash));
            drop(guard);
            if let Some(writing) = writing {
                written = Some(writing.await);
            }
            match appending.await {
                Ok(()) => {
                    log_event(&sealed, "audit record");
                    return written;
                }
                Err(error) => {
                    // Another daemon may have appended first, or a record this one chained
                    // to was refused: read the end again and reseal.
                    let mut guard = self.tail.lock().await;
                    if guard.reads == reads {
                        guard.end = None;
                        guard.reads += 1;
                    }
                    last_error = Some((sealed, error));
                }
            }
        }
        if let Some((sealed, error)) = last_error {
            log_event(&sealed, "audit record NOT STORED");
            tracing::error!(target: "audit", %error, "cannot append to the audit trail");
        }
        written
    }

    /// A page of records matching `filter`, oldest first.
    pub async fn page(&self, filter: AuditFilter) -> Result<Vec<SealedRecord>, AuditError> {
        self.store
            .audit_rows(filter)
            .await?
            .iter()
            .map(from_row)
            .collect()
    }
}

/// Checks the whole trail of the database `file` from its first record; returns how many
/// records were checked and the last hash, or the first record that breaks the chain (an
/// unreadable record, an id out of sequence, or a hash that does not match).
pub fn verify(file: &AuditFile) -> Result<(u64, ChainHash), AuditError> {
    let mut check = ChainCheck::default();
    loop {
        let rows = file.rows(&check.next_page())?;
        if !check.page(&rows)? {
            return Ok((check.checked, check.previous));
        }
    }
}

/// [`verify`] on a store that several daemons may share (PostgreSQL), read page by page.
pub async fn verify_store(store: &dyn AuditStore) -> Result<(u64, ChainHash), AuditError> {
    let mut check = ChainCheck::default();
    loop {
        let rows = store.audit_rows(check.next_page()).await?;
        if !check.page(&rows)? {
            return Ok((check.checked, check.previous));
        }
    }
}

/// Where a chain check has got to, page after page.
struct ChainCheck {
    previous: ChainHash,
    after_id: u64,
    checked: u64,
    expected_id: u64,
}

impl Default for ChainCheck {
    fn default() -> Self {
        Self {
            previous: GENESIS,
            after_id: 0,
            checked: 0,
            expected_id: 1,
        }
    }
}

impl ChainCheck {
    fn next_page(&self) -> AuditFilter {
        AuditFilter {
            after_id: self.after_id,
            limit: MAX_AUDIT_PAGE,
            ..AuditFilter::default()
        }
    }

    /// Checks one page; false when it is empty (the end of the trail).
    fn page(&mut self, rows: &[AuditRow]) -> Result<bool, AuditError> {
        let Some(last) = rows.last() else {
            return Ok(false);
        };
        self.after_id = last.id;
        let offset = usize::try_from(self.checked).unwrap_or(usize::MAX);
        let mut page = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let broken = BrokenAt {
                index: offset.saturating_add(index),
                id: row.id,
            };
            // A record that cannot even be read is as broken as one that does not match; a
            // removed record leaves a gap in the ids, which the next hash also covers, but
            // naming the gap's place is clearer.
            if row.id != self.expected_id {
                return Err(broken.into());
            }
            page.push(from_row(row).map_err(|_| broken)?);
            self.expected_id += 1;
        }
        self.previous = verify_chain_from(&self.previous, &page).map_err(|broken| BrokenAt {
            index: offset.saturating_add(broken.index),
            id: broken.id,
        })?;
        self.checked += page.len() as u64;
        Ok(true)
    }
}

fn log_event(sealed: &SealedRecord, message: &str) {
    let record = &sealed.record;
    tracing::info!(
        target: "audit",
        id = record.id,
        time = %record.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        tenant = %record.tenant,
        key_id = record.key_id.as_ref().map(KeyId::as_str),
        action = record.action.as_str(),
        tool = record.tool.as_deref(),
        argv = ?record.argv,
        decision = record.decision.as_str(),
        outcome = %record.outcome,
        client = record.client.map(|ip| ip.to_string()),
        hash = %sealed.hash,
        "{message}"
    );
}

/// Now, at the microsecond precision the store keeps and the hash covers.
fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn to_row(sealed: &SealedRecord) -> AuditRow {
    let record = &sealed.record;
    AuditRow {
        id: record.id,
        time: record
            .time
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        tenant: record.tenant.to_string(),
        key_id: record.key_id.as_ref().map(ToString::to_string),
        action: record.action.as_str().to_string(),
        tool: record.tool.clone(),
        argv: record.argv.clone(),
        decision: record.decision.as_str().to_string(),
        outcome: record.outcome.clone(),
        client: record.client.map(|ip| ip.to_string()),
        hash: sealed.hash.to_string(),
    }
}

fn corrupt(row: &AuditRow, field: &'static str) -> impl FnOnce(String) -> AuditError {
    let id = row.id;
    move |reason| AuditError::Corrupt { id, field, reason }
}

fn parse_hash(row: &AuditRow) -> Result<ChainHash, AuditError> {
    ChainHash::from_hex(&row.hash).map_err(|e| corrupt(row, "hash")(e.to_string()))
}

fn from_row(row: &AuditRow) -> Result<SealedRecord, AuditError> {
    let id_error = |field| move |error: InvalidId| corrupt(row, field)(error.to_string());
    let name_error = |field| move |error: UnknownName| corrupt(row, field)(error.to_string());
    let record = AuditRecord {
        id: row.id,
        time: DateTime::parse_from_rfc3339(&row.time)
            .map_err(|e| corrupt(row, "time")(e.to_string()))?
            .with_timezone(&Utc),
        tenant: TenantId::parse(&row.tenant).map_err(id_error("tenant"))?,
        key_id: row
            .key_id
            .as_deref()
            .map(KeyId::parse)
            .transpose()
            .map_err(id_error("key_id"))?,
        action: row.action.parse().map_err(name_error("action"))?,
        tool: row.tool.clone(),
        argv: row.argv.clone(),
        decision: row.decision.parse().map_err(name_error("decision"))?,
        outcome: row.outcome.clone(),
        client: row
            .client
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: std::net::AddrParseError| corrupt(row, "client")(e.to_string()))?,
    };
    Ok(SealedRecord {
        record,
        hash: parse_hash(row)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_store::SqliteStore;

    fn caller(tenant: &str) -> Caller {
        Caller {
            tenant: TenantId::parse(tenant).expect("tenant"),
            key_id: KeyId::parse("tgk_0123456789abcdef").ok(),
            role: toolgate_auth::Role::User,
            client: "127.0.0.1".parse().ok(),
        }
    }

    /// The store under test, noting in `order` when an append is queued.
    struct NotingAppends {
        store: Arc<SqliteStore>,
        order: Arc<std::sync::Mutex<Vec<&'static str>>>,
    }

    impl AuditStore for NotingAppends {
        fn append_audit(&self, row: AuditRow, previous: String) -> StoreFuture<()> {
            note(&self.order, "record queued");
            AuditStore::append_audit(&*self.store, row, previous)
        }
        fn last_audit(&self) -> StoreFuture<Option<AuditRow>> {
            AuditStore::last_audit(&*self.store)
        }
        fn audit_rows(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditRow>> {
            AuditStore::audit_rows(&*self.store, filter)
        }
    }

    fn note(order: &std::sync::Mutex<Vec<&'static str>>, what: &'static str) {
        order.lock().expect("order").push(what);
    }

    /// The write a record follows is queued first (called before the record is sealed and
    /// queued, so both stores' writers take it first); a write that fails returns its error
    /// and the record is stored all the same.
    #[tokio::test]
    async fn a_record_after_a_write_is_appended_once_the_write_is_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, _) = SqliteStore::open(&dir.path().join("db.sqlite3"), 10).expect("open");
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let trail = AuditTrail::new(Arc::new(NotingAppends {
            store: Arc::new(store),
            order: Arc::clone(&order),
        }));
        let run = || {
            AuditEvent::allowed(Action::Run, "succeeded")
                .tool("terrascan")
                .argv(vec!["terrascan".into()])
        };
        let noted = Arc::clone(&order);
        let written = trail
            .record_after(&caller("acme"), run(), move || {
                note(&noted, "write queued");
                Box::pin(std::future::ready(Ok(())))
            })
            .await;
        assert_eq!(
            *order.lock().expect("order"),
            ["write queued", "record queued"],
            "the write is queued before the record"
        );
        assert!(written.is_ok(), "{written:?}");
        let failed = trail
            .record_after(&caller("acme"), run(), || {
                Box::pin(std::future::ready(Err(StoreError::WriterGone)))
            })
            .await;
        assert!(matches!(failed, Err(StoreError::WriterGone)), "{failed:?}");
        let ids: Vec<u64> = trail
            .page(AuditFilter {
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .expect("page")
            .iter()
            .map(|sealed| sealed.record.id)
            .collect();
        assert_eq!(ids, [1, 2], "both records are stored");
    }

    #[tokio::test]
    async fn records_chain_across_restarts_and_pages_filter_by_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite3");
        {
            let (store, _) = SqliteStore::open(&path, 10).expect("open");
            let trail = AuditTrail::new(Arc::new(store));
            let run = AuditEvent::allowed(Action::Run, "succeeded")
                .tool("terrascan")
                .argv(vec!["terrascan".into(), "scan".into()]);
            trail.record(&caller("acme"), run).await;
            trail
                .record(&caller("beta"), AuditEvent::denied(Action::Cancel, "404"))
                .await;
        }
        let (store, _) = SqliteStore::open(&path, 10).expect("reopen");
        let trail = AuditTrail::new(Arc::new(store));
        trail
            .record(
                &caller("acme"),
                AuditEvent::allowed(Action::Login, "token issued"),
            )
            .await;
        let file = AuditFile::open(&path).expect("read-only");
        let (count, _) = verify(&file).expect("an untouched trail verifies");
        assert_eq!(count, 3);
        let page = trail
            .page(AuditFilter {
                tenant: Some("acme".into()),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .expect("page");
        let ids: Vec<u64> = page.iter().map(|sealed| sealed.record.id).collect();
        assert_eq!(ids, [1, 3]);
        drop(file);

        // An edit made around the triggers (as someone with the file could) is named.
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET outcome = 'forged' WHERE id = 2;",
        )
        .expect("tamper");
        let file = AuditFile::open(&path).expect("read-only");
        match verify(&file) {
            Err(AuditError::Broken(broken)) => assert_eq!(broken.id, 2, "{broken}"),
            other => panic!("a forged record must break the chain, got {other:?}"),
        }
    }
}
