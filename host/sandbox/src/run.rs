//! Supervising one running job: wall-clock timeout, cancellation, the SIGTERM → grace →
//! SIGKILL escalation, the straggler and orphan sweep, and reaping.
//!
//! Sequence (after the leader has exited, for whatever reason):
//!  1. SIGKILL the leader's process group (stragglers), while the unreaped leader pins the pgid
//!  2. `cgroup.kill` the job cgroup, when there is one (catches members that left the group)
//!  3. sweep orphans reparented to the daemon (subreaper): kill and reap, until none is left
//!  4. reap the leader, last
//!
//! Invariant: when `supervise` returns, every process of the job is dead and reaped, within the
//! limits stated in GUARANTEES.md.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cgroup::JobCgroup;
use crate::error::SandboxError;
use crate::reaper::{ExitStatus, Leader, orphans_present, sweep_orphans};

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: ExitStatus,
    pub timed_out: bool,
    pub cancelled: bool,
}

pub async fn supervise(
    leader: Leader,
    cgroup: Option<&JobCgroup>,
    timeout: Duration,
    grace: Duration,
    cancel: CancellationToken,
) -> Result<Outcome, SandboxError> {
    let mut timed_out = false;
    let mut cancelled = false;
    tokio::select! {
        () = leader.exited() => {}
        () = tokio::time::sleep(timeout) => timed_out = true,
        () = cancel.cancelled() => cancelled = true,
    }
    if timed_out || cancelled {
        leader.signal_group(libc::SIGTERM);
        if tokio::time::timeout(grace, leader.exited()).await.is_err() {
            leader.signal_group(libc::SIGKILL);
            if let Some(cgroup) = cgroup {
                cgroup.kill_all();
            }
            leader.exited().await;
        }
    }
    // 1. Stragglers in the group.
    leader.signal_group(libc::SIGKILL);
    // 2. Members that left the group but not the cgroup.
    if let Some(cgroup) = cgroup {
        cgroup.kill_all();
    }
    // 3. Orphans (blocking waits on SIGKILLed processes: run off the async workers).
    if orphans_present() {
        let swept = tokio::task::spawn_blocking(sweep_orphans)
            .await
            .unwrap_or(0);
        tracing::debug!(
            pid = leader.pid,
            swept,
            "killed and reaped orphaned descendants"
        );
    }
    // 4. The leader.
    let status = leader.reap()?;
    Ok(Outcome {
        status,
        timed_out,
        cancelled,
    })
}
