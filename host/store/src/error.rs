//! Why a store operation failed: the backend failed ([`StoreError`]), or a scan transition was
//! refused because the scan is not where the transition starts ([`Refused`]); the API maps the
//! latter to 403/404/409 without reading any message.

use std::path::PathBuf;

use toolgate_model::{ScanId, ScanState};

/// A scan transition the scan's current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no scan with id {0}")]
    UnknownScan(ScanId),
    #[error("a scan with id {0} already exists")]
    DuplicateScan(ScanId),
    #[error("this upload URL was already used; create a new scan to upload again")]
    NonceReused,
    #[error("scan {id} is {state}, not awaiting an upload")]
    NotAwaitingUpload { id: ScanId, state: &'static str },
    #[error("scan {id} has no upload yet; upload the file to the scan's URL before initiating it")]
    NotUploaded { id: ScanId },
    #[error("scan {id} was already initiated (it is {state})")]
    AlreadyInitiated { id: ScanId, state: &'static str },
    #[error("scan {id} is {state}, not running")]
    NotRunning { id: ScanId, state: &'static str },
    #[error(
        "tenant {tenant} already has {max} scan(s) queued (quotas.max_queued_scans); retry once \
         one has started"
    )]
    TenantQueueFull { tenant: String, max: u32 },
    #[error("{0} is not a state a scan can end in; allowed: passed, failed, error")]
    NotAnEnding(&'static str),
    /// The scan runs under another daemon's claim: this daemon's lease ran out and the scan
    /// was taken over, so this daemon must stop it and write nothing (shared stores only).
    #[error("scan {id} is no longer this daemon's: its lease ran out and {holder} took it over")]
    LeaseLost { id: ScanId, holder: String },
}

impl Refused {
    pub(crate) fn state(state: ScanState) -> &'static str {
        state.as_str()
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this daemon supports ({supported})")]
    SchemaTooNew { found: usize, supported: usize },
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a stored value is invalid: {0}")]
    Corrupt(String),
    #[error("database worker thread failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    #[error("cannot start the database writer thread: {0}")]
    WriterThread(std::io::Error),
    #[error("the database writer thread is gone")]
    WriterGone,
    #[error("the transaction holding this write failed: {0}")]
    Batch(String),
    /// A bug: the writer thread caught a panic in a scan transition and failed it alone.
    #[error("a scan transition panicked (a bug; the scan is unchanged)")]
    TransitionPanicked,
    /// Shown with its causes (tokio-postgres says only "db error" or "error performing TLS
    /// handshake" itself; the server's message or the certificate problem is the cause).
    #[error("PostgreSQL error: {}", with_causes(.0))]
    Postgres(tokio_postgres::Error),
    #[error("no PostgreSQL connection: {}", with_causes(.0))]
    PostgresPool(deadpool_postgres::PoolError),
    #[error("invalid PostgreSQL store settings: {0}")]
    PostgresSettings(String),
    /// A write the PostgreSQL writer could not apply because the server cannot be reached
    /// (each write of the batch gets its own copy of the reason).
    #[error("the PostgreSQL server cannot be reached: {0}")]
    Unreachable(String),
    /// An audit row that would not extend the stored chain: its id is taken, or the stored row
    /// before it is not the one it was sealed on (another daemon appended first, or that row
    /// was itself refused).
    #[error("audit record {id} does not follow the stored audit chain")]
    AuditChain { id: u64 },
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        StoreError::Postgres(error)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        StoreError::PostgresPool(error)
    }
}

/// `error` and each of its causes, joined by ": ", leaving out a cause its error already
/// repeats. The causes are in the message rather than behind `source()`, so that a log line
/// (`%error`) says why too.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let said = current.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = current.source();
    }
    text
}

impl From<toolgate_model::UnknownJobStatus> for StoreError {
    fn from(error: toolgate_model::UnknownJobStatus) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

impl StoreError {
    /// Whether the store cannot be reached right now (a PostgreSQL server down or cut off):
    /// the condition passes by itself once it is back, so callers answer 503 with Retry-After
    /// rather than 500. The pool reconnects by itself.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::PostgresPool(_) | StoreError::Unreachable(_) => true,
            StoreError::Postgres(error) => is_unreachable(error),
            _ => false,
        }
    }

    /// The refusal, when this is one (for callers that map refusals to their own answers).
    pub fn refused(&self) -> Option<&Refused> {
        match self {
            StoreError::Refused(refused) => Some(refused),
            _ => None,
        }
    }
}

/// Whether a PostgreSQL error means the server cannot be reached: the connection closed, or
/// its socket failed.
pub(crate) fn is_unreachable(error: &tokio_postgres::Error) -> bool {
    error.is_closed()
        || std::error::Error::source(error)
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some())
}
