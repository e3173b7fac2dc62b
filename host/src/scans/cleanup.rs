//! Retention of scans: a task that deletes finished scans (record, findings, folder with the
//! extracted upload) `scans.retention_days` after they ended, and scans never initiated
//! `scans.abandoned_after_hours` after they were created.
//!
//! Invariants: deletion goes through [`ScanService::delete_expired`], so the store decides what
//! expired (a scan queued or running never does) and a scan's folder goes with its record; a
//! failed round is logged and retried at the next interval, never fatal; the task ends when the
//! daemon stops.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::ScanService;

/// How long scans are kept (`[scans]` retention keys).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub finished: Duration,
    pub abandoned: Duration,
    pub interval: Duration,
}

/// Deletes expired scans every `retention.interval` until `stop` is cancelled.
pub async fn run(service: ScanService, retention: Retention, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retention.interval) => {}
        }
        sweep(&service, retention).await;
    }
}

/// One round: what expired before now.
pub async fn sweep(service: &ScanService, retention: Retention) -> usize {
    let now = Utc::now();
    let before = |age: Duration| {
        chrono::Duration::from_std(age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
    };
    match service
        .delete_expired(before(retention.finished), before(retention.abandoned))
        .await
    {
        Ok(expired) => {
            if !expired.is_empty() {
                tracing::info!(deleted = expired.len(), "expired scans deleted");
            }
            expired.len()
        }
        Err(error) => {
            tracing::warn!(error = %error, "deleting expired scans failed; retrying next round");
            0
        }
    }
}
