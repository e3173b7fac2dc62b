//! One worker of the scan pool: claims a queued scan, runs its job through the executor, judges
//! the result and finishes the scan; sleeps until woken (or the poll interval) when the queue
//! is empty.
//!
//! Invariants: a claimed scan always leaves `running` through this worker (finished, or
//! re-queued when the daemon stops or has no slot); when the store fails to take that last
//! write (a database restarting, a network cut), the worker writes it again every [`BACKOFF`]
//! until the store answers, the store refuses it (the scan is no longer this daemon's: its
//! lease ran out and it was taken over), or the daemon stops (then recovery re-runs the scan:
//! start-up recovery on a daemon's own store, a lapsed lease on a shared one). Without that, a
//! shared store's scan would stay `running` for ever, since its daemon keeps renewing the
//! lease. The worker never holds a scan while it sleeps.

use chrono::Utc;
use toolgate_model::{ErrorDetail, Scan, ScanOutcome, ScanState};

use super::executor::{ScanJobEnd, ScanJobInput, StartError};
use super::{BACKOFF, POLL_INTERVAL, ScanService, judge};

/// What became of one claimed scan.
enum Handled {
    Finished,
    /// Back in the queue; `backoff` when the worker should wait before claiming again.
    Requeued {
        backoff: bool,
    },
}

pub(super) async fn run(service: ScanService, index: usize) {
    let inner = &service.inner;
    loop {
        if inner.stopping.is_cancelled() {
            break;
        }
        let pause = match inner.store.claim_next(Utc::now()).await {
            Ok(Some(scan)) => match handle(&service, scan).await {
                Handled::Finished | Handled::Requeued { backoff: false } => continue,
                Handled::Requeued { backoff: true } => BACKOFF,
            },
            Ok(None) => POLL_INTERVAL,
            Err(error) => {
                tracing::error!(worker = index, %error, "cannot claim a queued scan");
                BACKOFF
            }
        };
        tokio::select! {
            () = inner.stopping.cancelled() => break,
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

async fn handle(service: &ScanService, scan: Scan) -> Handled {
    let inner = &service.inner;
    let id = scan.id.clone();
    let Some(request) = scan.request.clone() else {
        // `initiate` writes the request with the queued state; a queued scan without one was
        // written by something else.
        finish(
            service,
            &scan,
            ScanState::Error,
            failed_outcome("invalid_scan", "the scan was queued without a request"),
        )
        .await;
        return Handled::Finished;
    };
    let input = ScanJobInput {
        scan_id: id.clone(),
        tree: service.tree(&id),
        request: request.clone(),
        owner: scan.tenant.clone(),
    };
    let running = match inner.executor.start(input).await {
        Ok(running) => running,
        // With a pause: the job service may stop before this service is told to.
        Err(StartError::ShuttingDown) => return requeue(service, &scan, true).await,
        Err(StartError::Busy(reason)) => {
            tracing::debug!(scan_id = %id, %reason, "no job slot for a scan; re-queued");
            return requeue(service, &scan, true).await;
        }
        Err(StartError::Refused { code, detail }) => {
            finish(
                service,
                &scan,
                ScanState::Error,
                failed_outcome(&code, &detail),
            )
            .await;
            return Handled::Finished;
        }
    };
    tracing::info!(
        target: "toolgate::scan",
        scan_id = %id,
        job_id = running.job_id,
        tool = request.tool,
        attempt = scan.attempts,
        "scan running"
    );
    if let Err(error) = inner
        .store
        .attach_job(id.clone(), running.job_id.clone())
        .await
    {
        tracing::warn!(scan_id = %id, %error, "cannot record the job of a running scan");
    }
    let mut end = running.end;
    let ended = tokio::select! {
        ended = &mut end => ended,
        () = inner.stopping.cancelled() => {
            running.cancel.cancel();
            end.await
        }
    };
    if ended == ScanJobEnd::Cancelled && inner.stopping.is_cancelled() {
        return requeue(service, &scan, false).await;
    }
    let parameters = &request.parameters;
    let (state, outcome, findings) = judge(&scan.failure_criteria, parameters, ended);
    finish_with(service, &scan, state, outcome, findings).await;
    Handled::Finished
}

fn failed_outcome(code: &str, detail: &str) -> ScanOutcome {
    ScanOutcome {
        error_details: vec![ErrorDetail {
            code: code.to_string(),
            detail: detail.to_string(),
        }],
        ..ScanOutcome::default()
    }
}

async fn finish(service: &ScanService, scan: &Scan, state: ScanState, outcome: ScanOutcome) {
    finish_with(service, scan, state, outcome, Vec::new()).await;
}

async fn finish_with(
    service: &ScanService,
    scan: &Scan,
    state: ScanState,
    outcome: ScanOutcome,
    findings: Vec<toolgate_model::Finding>,
) {
    let counts = outcome.counts;
    let store = &service.inner.store;
    let finished = until_stored(service, scan, "record a finished scan", || {
        store.finish_scan(
            scan.id.clone(),
            state,
            outcome.clone(),
            findings.clone(),
            Utc::now(),
        )
    })
    .await;
    if finished {
        tracing::info!(
            target: "toolgate::scan",
            scan_id = %scan.id,
            status = state.status().as_str(),
            high = counts.bucket(toolgate_model::severity::Bucket::High),
            medium = counts.medium,
            low = counts.low,
            "scan finished"
        );
    }
}

async fn requeue(service: &ScanService, scan: &Scan, backoff: bool) -> Handled {
    let store = &service.inner.store;
    until_stored(service, scan, "put a scan back in the queue", || {
        store.requeue_scan(scan.id.clone())
    })
    .await;
    Handled::Requeued { backoff }
}

/// Runs `write`, the last write of a claimed scan, until the store takes it; true when it did.
/// Gives up when the store refuses it or the daemon stops (see the module doc).
async fn until_stored<T>(
    service: &ScanService,
    scan: &Scan,
    doing: &str,
    mut write: impl FnMut() -> toolgate_store::StoreFuture<T>,
) -> bool {
    let mut failures = 0_u32;
    loop {
        match write().await {
            Ok(_) => {
                if failures > 0 {
                    tracing::info!(scan_id = %scan.id, failures, "the store took the scan's write again: {doing}");
                }
                return true;
            }
            Err(toolgate_store::StoreError::Refused(refused)) => {
                tracing::warn!(scan_id = %scan.id, %refused, "cannot {doing}: the store refused it");
                return false;
            }
            Err(error) => {
                if failures == 0 {
                    tracing::error!(scan_id = %scan.id, %error,
                        "cannot {doing}; retrying every {BACKOFF:?} until the store answers");
                }
                failures += 1;
                tokio::select! {
                    () = service.inner.stopping.cancelled() => {
                        tracing::error!(scan_id = %scan.id,
                            "the daemon stops before the store answered: the scan stays running until recovery re-runs it");
                        return false;
                    }
                    () = tokio::time::sleep(BACKOFF) => {}
                }
            }
        }
    }
}
