//! toolgate's persistence: jobs (the history of every tool run), scans (the asynchronous scan
//! queue with its findings), the audit trail and tenants' request rates, behind four narrow
//! traits, [`JobStore`], [`ScanStore`], [`AuditStore`] and [`RateStore`], and their two
//! implementations: [`SqliteStore`] (the embedded default, one daemon per database file) and
//! [`PgStore`] (PostgreSQL, shared by several daemons), and [`copy_sqlite_to_postgres`], which
//! moves a SQLite store into an empty PostgreSQL one. This is the only crate that speaks SQL or
//! depends on a SQL driver; the daemon sees model types ([`toolgate_model`]) and these traits
//! only.
//!
//! Why traits of boxed futures: the backend is chosen by configuration at run time (SQLite for
//! one daemon, PostgreSQL next, for several daemons sharing one queue), so the daemon holds an
//! `Arc<dyn Store>`; `async fn` in traits is not object-safe, and an enum of backends would make
//! every backend a dependency of every build. A boxed future costs one allocation per call,
//! nothing beside a database round trip.
//!
//! Invariants: every state a second daemon would need lives in the store, not in memory (the
//! queue, the consumed upload nonces, attempts); every scan transition is one atomic
//! compare-and-set on the scan's state, refused with a typed [`Refused`] when the scan is not in
//! the state the transition starts from; a running scan is held, under a lease, by the daemon
//! that claimed it; schema changes are appended migrations (`schema.rs`, and `pg/schema.rs`
//! with the same versions), never edits.
#![forbid(unsafe_code)]

mod audit;
#[cfg(test)]
mod conformance;
mod copy;
mod error;
mod fair_claim;
mod jobs;
mod pg;
#[cfg(test)]
#[path = "../testing/pg_cluster.rs"]
mod pg_cluster;
mod rates;
mod scan_list;
mod scan_rows;
mod scans;
mod schema;
mod writer;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use toolgate_model::{
    Finding, FinishedJob, JobFilter, JobRecord, NewJob, NewScan, Scan, ScanId, ScanOutcome,
    ScanPage, ScanQuery, ScanRequest, ScanState, UploadInfo,
};

pub use audit::{AuditFile, AuditFilter, AuditRow, MAX_AUDIT_PAGE};
pub use copy::{COPIED_TABLES, CopyError, CopyReport, TableCount, copy_sqlite_to_postgres};
pub use error::{Refused, StoreError};
pub use jobs::SqliteStore;
pub use pg::{PgProbe, PgStore};
pub use rates::{RateDecision, RateStore};

/// How long a claim on a scan holds before another daemon may take the scan over, unless the
/// running daemon renews it: long enough that a daemon renewing every third of it survives two
/// missed renewals (a slow database, a pause), short enough that a dead daemon's scans restart
/// within half a minute.
pub const DEFAULT_SCAN_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The daemon identity of a SQLite store: one daemon per database file, so one name.
pub(crate) const SQLITE_DAEMON: &str = "local";

/// What every store operation returns: a future that owns what it needs (`'static`), so a
/// caller can hold `Arc<dyn Store>` and spawn the call.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// The job history: every tool run, synchronous or on behalf of a scan.
pub trait JobStore: Send + Sync {
    /// Records a newly admitted job: queued, or already running from `started_at` when it got a
    /// running slot at once (one write instead of two).
    fn insert_job(&self, job: NewJob, started_at: Option<String>) -> StoreFuture<()>;
    /// Marks a queued job as running.
    fn mark_job_running(&self, id: String, started_at: String) -> StoreFuture<()>;
    /// Records a job's end (and drops the output of jobs beyond the output retention limit).
    fn finish_job(&self, id: String, done: FinishedJob) -> StoreFuture<()>;
    /// One job with its output (unless retention dropped it).
    fn job(&self, id: String) -> StoreFuture<Option<JobRecord>>;
    /// Jobs newest first, without stdout/stderr.
    fn list_jobs(&self, filter: JobFilter) -> StoreFuture<Vec<JobRecord>>;
    /// Marks queued job `id` of `tenant` running if fewer than `max` of the tenant's jobs run
    /// on all the daemons sharing the store (whose heartbeat is current); false when the
    /// tenant is at its limit, and the job stays queued. A store only one daemon uses has its
    /// limit kept in memory by that daemon, and simply marks the job running.
    fn start_job_within(
        &self,
        id: String,
        tenant: String,
        max: u32,
        started_at: String,
    ) -> StoreFuture<bool>;
    /// Asks whichever daemon runs job `id` to cancel it (a store shared by several daemons);
    /// true when the request went out. A store only one daemon uses has no one to ask: false.
    fn request_cancel(&self, id: String) -> StoreFuture<bool>;
    /// The ids of jobs other daemons asked this one to cancel, as they arrive; `None` for a
    /// store only one daemon uses.
    fn cancel_requests(&self) -> Option<tokio::sync::broadcast::Receiver<String>>;
    /// The ids of this daemon's unfinished jobs a cancel was asked for ([`JobStore::request_cancel`]
    /// keeps the request on the job): what the daemon looks at now and then, in case a
    /// notification did not reach it. Empty for a store only one daemon uses.
    fn pending_cancels(&self) -> StoreFuture<Vec<String>>;
}

/// What [`ScanStore::recover_scans`] did with the scans a dead daemon left running.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Back to `queued`: they run again.
    pub requeued: Vec<ScanId>,
    /// Out of attempts: now `error`, with the reason in their error details.
    pub failed: Vec<ScanId>,
    /// Jobs (synchronous calls among them) that daemons without a current heartbeat left
    /// queued or running, now `interrupted` (a store shared by several daemons; a SQLite
    /// store interrupts its one daemon's jobs when it opens).
    pub interrupted_jobs: u64,
}

/// The asynchronous scan queue. Each transition is atomic and checks the state it starts from:
/// awaiting_upload -(record_upload)-> uploaded -(initiate)-> queued -(claim_next)-> running
/// -(finish_scan)-> passed | failed | error; running -(requeue_scan, recover_scans)-> queued.
pub trait ScanStore: Send + Sync {
    /// Stores a new scan (state awaiting_upload).
    fn create_scan(&self, scan: NewScan) -> StoreFuture<Scan>;
    /// One scan, if it exists.
    fn scan(&self, id: ScanId) -> StoreFuture<Option<Scan>>;
    /// Consumes the single-use upload `nonce` and moves the scan awaiting_upload -> uploaded, in
    /// one transaction. Refused: unknown scan, a nonce already used, a scan not awaiting upload.
    fn record_upload(&self, id: ScanId, nonce: String, upload: UploadInfo) -> StoreFuture<Scan>;
    /// Moves uploaded -> queued with the request. Refused: unknown scan, not uploaded yet,
    /// already initiated.
    fn initiate(&self, id: ScanId, request: ScanRequest, now: DateTime<Utc>) -> StoreFuture<Scan>;
    /// [`ScanStore::initiate`], refused with `Refused::TenantQueueFull` when the scan's tenant
    /// already has `max_queued` scans queued (checked and queued in one transaction).
    fn initiate_within(
        &self,
        id: ScanId,
        request: ScanRequest,
        now: DateTime<Utc>,
        max_queued: u32,
    ) -> StoreFuture<Scan>;
    /// Takes the oldest queued scan: queued -> running, attempts + 1, atomically, so two
    /// workers (or daemons) never take the same scan; the claim is held by this store's daemon
    /// under a lease until `now` plus the store's lease length. `None` when nothing is queued.
    fn claim_next(&self, now: DateTime<Utc>) -> StoreFuture<Option<Scan>>;
    /// Names the job that runs a running scan (so its progress can be followed in /api/jobs).
    fn attach_job(&self, id: ScanId, job_id: String) -> StoreFuture<()>;
    /// Ends a running scan in `state` (passed, failed or error) with its outcome and findings.
    fn finish_scan(
        &self,
        id: ScanId,
        state: ScanState,
        outcome: ScanOutcome,
        findings: Vec<Finding>,
        now: DateTime<Utc>,
    ) -> StoreFuture<Scan>;
    /// Puts a running scan back in the queue without counting the attempt (the daemon chose
    /// to stop it, e.g. at shutdown: the scan did nothing wrong).
    fn requeue_scan(&self, id: ScanId) -> StoreFuture<()>;
    /// Scans left running by a dead daemon go back to queued while they have attempts left
    /// (`attempts < max_attempts`), else to error with the reason. With one daemon per store
    /// (SQLite, called at start-up) every running scan is a dead daemon's. In a store shared by
    /// several daemons (PostgreSQL) a dead daemon's scans are those whose lease ran out before
    /// `now` (each claim takes a lease that the running daemon renews with
    /// [`ScanStore::renew_leases`]); opening the store ends the leases its own daemon identity
    /// held before, so this is safe to call at start-up and periodically.
    fn recover_scans(&self, max_attempts: u32, now: DateTime<Utc>) -> StoreFuture<Recovered>;
    /// The ids of scans queued on any daemon sharing the store (initiated, re-queued or
    /// recovered), as they are queued, so an idle worker claims them at once; `None` for a
    /// store only one daemon uses (its scan service wakes its own workers).
    fn queue_wakeups(&self) -> Option<tokio::sync::broadcast::Receiver<String>>;
    /// A page of scans matching `query`, with counts over every match.
    fn list_scans(&self, query: ScanQuery) -> StoreFuture<ScanPage>;
    /// Extends the lease on every scan this daemon holds running to `until` (the daemon renews
    /// while their jobs run, well before the lease runs out); returns how many it renewed. A
    /// scan whose lease already ran out and that another daemon took over is not renewed.
    fn renew_leases(&self, until: DateTime<Utc>) -> StoreFuture<u64>;
    /// A scan's findings in the order the tool reported them; `None` for an unknown scan.
    fn findings(&self, id: ScanId) -> StoreFuture<Option<Vec<Finding>>>;
    /// Deletes, with their findings, scans that finished before `finished_before` and scans
    /// never initiated that were created before `abandoned_before`; returns their ids (so the
    /// daemon deletes their folders).
    fn expire_scans(
        &self,
        finished_before: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> StoreFuture<Vec<ScanId>>;
}

/// The audit trail's rows (issue #16): appended in chain order, read back by filter. The chain
/// hashes are the daemon's (`toolgate_auth::audit`); the store keeps rows as written.
pub trait AuditStore: Send + Sync {
    /// Appends one sealed row after the row whose hash is `previous` (ignored for id 1, the
    /// chain's first row): refused when its id is taken, or when the stored row before it
    /// does not have the hash `previous`. So two daemons appending after the same row cannot
    /// both succeed, and a row sealed on a row that was never stored is never stored either.
    ///
    /// The row is queued when this is called (before the future is polled), and queued rows
    /// are written in that order, after the job writes queued before them: the trail seals and
    /// queues the next row without waiting for this one to be stored. A refused row makes
    /// every row queued after it on the same chain refused too, and the trail seals them again.
    fn append_audit(&self, row: AuditRow, previous: String) -> StoreFuture<()>;
    /// The newest row, whose id and hash the next row chains to.
    fn last_audit(&self) -> StoreFuture<Option<AuditRow>>;
    /// Rows matching `filter`, oldest first.
    fn audit_rows(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditRow>>;
}

/// A complete store: what the daemon is given (as `Arc<dyn Store>`).
pub trait Store: JobStore + ScanStore + AuditStore + RateStore {}

impl<T: JobStore + ScanStore + AuditStore + RateStore> Store for T {}
