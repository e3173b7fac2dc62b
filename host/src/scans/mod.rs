//! The asynchronous scan queue's service: the public operations the IaC Scan API calls
//! (create, record_upload, initiate, status, results, list, delete_expired) and the bounded
//! worker pool that runs initiated scans.
//!
//! Invariants: the queue lives in the store, not in memory: an initiated scan is written as
//! `queued` before its caller is answered, workers take scans only by the store's atomic
//! `claim_next`, and a `Notify` merely wakes them early (a slow poll picks up scans another
//! daemon initiated, or a wake-up that was missed); at start-up scans a dead daemon left
//! `running` are recovered (re-queued, or `error` past `max_attempts`) before any worker runs;
//! at shutdown running scans are cancelled and re-queued without using up an attempt (the
//! daemon chose to stop them), so no scan is left `running` by a graceful stop; a scan's files
//! live in `<scans_dir>/<id>/`, its extracted upload in `<scans_dir>/<id>/tree/`.

pub mod cleanup;
mod executor;
mod from_directory;
mod job_executor;
mod judge;
pub mod placing;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use toolgate_model::{
    Finding, NewScan, Scan, ScanId, ScanPage, ScanQuery, ScanRequest, UploadInfo,
};
use toolgate_store::{Recovered, Refused, ScanStore, StoreError};

pub use executor::{BoxFuture, RunningScanJob, ScanExecutor, ScanJobEnd, ScanJobInput, StartError};
pub use job_executor::{JobScanExecutor, model_finding};
pub use judge::{NOT_APPLIED, judge};

/// How often an idle worker looks for queued scans without being woken: picks up scans that
/// another daemon sharing the store initiated. Slow, because a local initiate wakes a worker at
/// once.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// How long a worker waits after the store failed or no job slot was free, so that a failing
/// database or a full daemon is not hammered.
pub const BACKOFF: Duration = Duration::from_millis(500);

/// Why a scan operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The scan is not in a state this operation starts from, or the nonce was used (the API
    /// maps each kind to 403/404/409).
    #[error(transparent)]
    Refused(Refused),
    #[error("the scan store failed: {0}")]
    Store(StoreError),
    /// A directory to scan could not be copied (outside the allowed directories, a link, a
    /// limit): the message names what and why.
    #[error("{0}")]
    Copy(String),
    #[error("cannot remove scan folder {path}: {source}")]
    RemoveFolder {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl From<StoreError> for ScanError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Refused(refused) => ScanError::Refused(refused),
            other => ScanError::Store(other),
        }
    }
}

/// The queue's settings (`[scans]`).
#[derive(Debug, Clone, Copy)]
pub struct ScanSettings {
    pub workers: usize,
    pub max_attempts: u32,
    /// Whether other daemons share the store (PostgreSQL): then the scans a dead daemon held
    /// are taken over once their leases run out, not only at start-up.
    pub shared_store: bool,
    /// How long a claimed scan stays this daemon's without a renewal (`store.lease_secs`);
    /// renewed every third of it, so two renewals can be late before another daemon may take
    /// a scan over.
    pub lease: std::time::Duration,
}

/// The scan queue; cheap to clone.
#[derive(Clone)]
pub struct ScanService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ScanStore>,
    executor: Arc<dyn ScanExecutor>,
    settings: ScanSettings,
    scans_dir: PathBuf,
    /// Woken on every initiate (one worker per wake-up).
    wake: Notify,
    /// Cancelled by `shutdown`: workers stop claiming and cancel what they run.
    stopping: CancellationToken,
    workers: TaskTracker,
    /// `tenants[].quotas.max_queued_scans` (issue #16): tenant id -> scans it may have queued.
    tenant_queues: HashMap<String, u32>,
    /// Places uploaded and copied trees, sharing their syncs.
    placer: placing::Placer,
}

impl ScanService {
    pub fn new(
        store: Arc<dyn ScanStore>,
        executor: Arc<dyn ScanExecutor>,
        settings: ScanSettings,
        scans_dir: PathBuf,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                executor,
                settings,
                scans_dir,
                wake: Notify::new(),
                stopping: CancellationToken::new(),
                workers: TaskTracker::new(),
                tenant_queues: HashMap::new(),
                placer: placing::Placer::default(),
            }),
        }
    }

    /// The same service with per-tenant queue limits (`quotas.max_queued_scans`: tenant id ->
    /// scans it may have queued; one more initiate is `Refused::TenantQueueFull`). Only before
    /// the service is shared.
    pub fn with_tenant_queues(mut self, limits: HashMap<String, u32>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.tenant_queues = limits,
            None => tracing::error!("tenant queue limits set on a shared scan service; ignored"),
        }
        self
    }

    /// Recovers the scans a dead daemon left running, then starts the workers (which run what
    /// is queued). Returns what recovery did.
    pub async fn start(&self) -> Result<Recovered, ScanError> {
        let inner = &self.inner;
        let recovered = inner
            .store
            .recover_scans(inner.settings.max_attempts, Utc::now())
            .await?;
        if recovered != Recovered::default() {
            tracing::warn!(
                requeued = recovered.requeued.len(),
                failed = recovered.failed.len(),
                interrupted_jobs = recovered.interrupted_jobs,
                max_attempts = inner.settings.max_attempts,
                "scans and jobs left running by a previous daemon were recovered"
            );
        }
        // Before the daemon serves: on a shared store this announces it (its heartbeat), so its
        // first job already counts against a tenant's limit on other daemons.
        self.keep_leases_once().await;
        for index in 0..inner.settings.workers {
            let service = self.clone();
            inner
                .workers
                .spawn(async move { worker::run(service, index).await });
        }
        let service = self.clone();
        inner
            .workers
            .spawn(async move { keep_leases(service).await });
        if let Some(queued) = inner.store.queue_wakeups() {
            let service = self.clone();
            inner
                .workers
                .spawn(async move { wake_on_queued(service, queued).await });
        }
        Ok(recovered)
    }

    /// Renews the leases of this daemon's running scans every `LEASE_RENEWAL` until the service
    /// stops; on a shared store, also takes over the scans whose leases ran out (their daemon
    /// died) and wakes a worker for each.
    async fn keep_leases_once(&self) {
        let inner = &self.inner;
        let now = Utc::now();
        let until = chrono::Duration::from_std(inner.settings.lease)
            .ok()
            .and_then(|lease| now.checked_add_signed(lease));
        if let Some(until) = until
            && let Err(error) = inner.store.renew_leases(until).await
        {
            tracing::error!(%error, "cannot renew the leases of running scans");
        }
        if inner.settings.shared_store {
            match inner
                .store
                .recover_scans(inner.settings.max_attempts, now)
                .await
            {
                Ok(recovered) if recovered != Recovered::default() => {
                    tracing::warn!(
                        requeued = recovered.requeued.len(),
                        failed = recovered.failed.len(),
                        interrupted_jobs = recovered.interrupted_jobs,
                        "took over the scans and jobs of daemons that stopped renewing their leases"
                    );
                    for _ in &recovered.requeued {
                        inner.wake.notify_one();
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "cannot look for scans to take over"),
            }
        }
    }

    /// Stops the workers: running scans' jobs are cancelled and the scans re-queued; returns
    /// once every worker has ended.
    pub async fn shutdown(&self) {
        self.inner.stopping.cancel();
        self.inner.workers.close();
        self.inner.workers.wait().await;
    }

    /// The folder of scan `id` (uploads, the extracted tree).
    pub fn folder(&self, id: &ScanId) -> PathBuf {
        // A ScanId is a canonical UUID, so it is one plain path segment.
        self.inner.scans_dir.join(id.as_str())
    }

    /// Where scan `id`'s upload is extracted: its job's workspace and only input root.
    pub fn tree(&self, id: &ScanId) -> PathBuf {
        self.folder(id).join("tree")
    }

    /// Stores a new scan, awaiting its upload.
    pub async fn create(&self, scan: NewScan) -> Result<Scan, ScanError> {
        Ok(self.inner.store.create_scan(scan).await?)
    }

    /// Records a received upload, consuming the URL's single-use `nonce`.
    pub async fn record_upload(
        &self,
        id: ScanId,
        nonce: String,
        upload: UploadInfo,
    ) -> Result<Scan, ScanError> {
        Ok(self.inner.store.record_upload(id, nonce, upload).await?)
    }

    /// Queues one of `owner`'s uploaded scans and wakes a worker (another tenant's scan is
    /// `UnknownScan`, as one that does not exist).
    pub async fn initiate(
        &self,
        id: ScanId,
        request: ScanRequest,
        owner: &str,
    ) -> Result<Scan, ScanError> {
        self.status(id.clone(), owner).await?;
        let store = &self.inner.store;
        let scan = match self.inner.tenant_queues.get(owner) {
            Some(max) => store.initiate_within(id, request, Utc::now(), *max).await?,
            None => store.initiate(id, request, Utc::now()).await?,
        };
        self.inner.wake.notify_one();
        Ok(scan)
    }

    /// Any tenant's scan, for the signed upload route alone: its URL is the credential, and
    /// its signature covers the scan's tenant, which the caller reads from here.
    pub async fn scan_for_upload(&self, id: ScanId) -> Result<Scan, ScanError> {
        self.inner
            .store
            .scan(id.clone())
            .await?
            .ok_or(ScanError::Refused(Refused::UnknownScan(id)))
    }

    /// One of `owner`'s scans (its state, outcome and job); `Refused::UnknownScan` when there
    /// is none or it is another tenant's (404, never 403).
    pub async fn status(&self, id: ScanId, owner: &str) -> Result<Scan, ScanError> {
        self.inner
            .store
            .scan(id.clone())
            .await?
            .filter(|scan| scan.tenant == owner)
            .ok_or(ScanError::Refused(Refused::UnknownScan(id)))
    }

    /// One of `owner`'s scans with its findings.
    pub async fn results(
        &self,
        id: ScanId,
        owner: &str,
    ) -> Result<(Scan, Vec<Finding>), ScanError> {
        let scan = self.status(id.clone(), owner).await?;
        let findings = self
            .inner
            .store
            .findings(id.clone())
            .await?
            .ok_or(ScanError::Refused(Refused::UnknownScan(id)))?;
        Ok((scan, findings))
    }

    /// A page of `owner`'s scans with the counts `meta` reports (`query.owner` is replaced by
    /// `owner`).
    pub async fn list(&self, mut query: ScanQuery, owner: &str) -> Result<ScanPage, ScanError> {
        query.owner = Some(owner.to_string());
        Ok(self.inner.store.list_scans(query).await?)
    }

    /// Deletes scans finished before `finished_before` and scans never initiated that were
    /// created before `abandoned_before`, with their folders; returns their ids.
    pub async fn delete_expired(
        &self,
        finished_before: DateTime<Utc>,
        abandoned_before: DateTime<Utc>,
    ) -> Result<Vec<ScanId>, ScanError> {
        let expired = self
            .inner
            .store
            .expire_scans(finished_before, abandoned_before)
            .await?;
        let folders: Vec<PathBuf> = expired.iter().map(|id| self.folder(id)).collect();
        let removed = tokio::task::spawn_blocking(move || {
            for path in folders {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(ScanError::RemoveFolder { path, source }),
                }
            }
            Ok(())
        })
        .await;
        match removed {
            Ok(result) => result?,
            Err(join) => tracing::error!(error = %join, "removing expired scan folders failed"),
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod job_executor_tests;

/// The lease keeper's loop (see `ScanService::keep_leases_once`).
async fn keep_leases(service: ScanService) {
    loop {
        tokio::select! {
            () = service.inner.stopping.cancelled() => break,
            () = tokio::time::sleep(service.inner.settings.lease / 3) => {}
        }
        service.keep_leases_once().await;
    }
}

/// Wakes a worker for each scan queued on any daemon sharing the store (see
/// `ScanStore::queue_wakeups`), until the service stops.
async fn wake_on_queued(
    service: ScanService,
    mut queued: tokio::sync::broadcast::Receiver<String>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let received = tokio::select! {
            () = service.inner.stopping.cancelled() => break,
            received = queued.recv() => received,
        };
        match received {
            Ok(_) => service.inner.wake.notify_one(),
            // Missed wake-ups: every worker looks; the scans are in the store either way.
            Err(RecvError::Lagged(_)) => service.inner.wake.notify_waiters(),
            Err(RecvError::Closed) => break,
        }
    }
}
