//! What the scan queue asks of whatever runs a scan's job: start it (so its job id is known and
//! shown while it runs), then wait for how it ended. The daemon's implementation runs the job
//! through `JobService`, the same path as synchronous calls; tests use a fake.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use tokio_util::sync::CancellationToken;
use toolgate_model::{Finding, ScanId, ScanRequest};

/// A boxed, owned future (the executor is used as `Arc<dyn ScanExecutor>`).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a scan's job is given.
#[derive(Debug, Clone)]
pub struct ScanJobInput {
    pub scan_id: ScanId,
    pub request: ScanRequest,
    /// The scan's extracted upload: the job's workspace and its only input root.
    pub tree: PathBuf,
    /// The scan's tenant, which owns its job.
    pub owner: String,
}

/// How a scan's job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanJobEnd {
    /// It ran and its output was parsed: the findings (before `policyIdFilters`) and the parts
    /// of the request the tool could not apply (reported, never silently dropped).
    Completed {
        findings: Vec<Finding>,
        not_applied: Vec<String>,
    },
    /// Cancelled by the daemon (shutdown): the scan goes back to the queue.
    Cancelled,
    /// No usable result (the tool failed, timed out, or could not be run): the scan ends in
    /// `error` with `code` and `detail` in its error details.
    Failed { code: String, detail: String },
}

/// A started job.
pub struct RunningScanJob {
    pub job_id: String,
    /// Cancels the job (it then ends `Cancelled`).
    pub cancel: CancellationToken,
    pub end: BoxFuture<ScanJobEnd>,
}

/// Why a job could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The daemon is stopping: the scan goes back to the queue.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// No room now (every job slot and queue place is taken): the scan goes back to the queue
    /// and is tried again later.
    #[error("no job slot free: {0}")]
    Busy(String),
    /// This request can never run (unknown tool, refused plan): the scan ends in `error`.
    #[error("{detail}")]
    Refused { code: String, detail: String },
}

/// Starts scans' jobs.
pub trait ScanExecutor: Send + Sync {
    fn start(&self, input: ScanJobInput) -> BoxFuture<Result<RunningScanJob, StartError>>;
}
