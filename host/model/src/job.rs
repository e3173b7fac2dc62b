//! A job: one run of one tool, synchronous (a caller waits for it) or on behalf of a scan.
//!
//! Invariant: a status only moves forward: queued -> running -> one terminal status, or to
//! `interrupted` when the daemon that owned a synchronous job died (its caller is gone, so it
//! is not re-run; a scan's job is re-run by the scan queue instead).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    /// Ran to completion and the plugin classified the result clean or findings.
    Succeeded,
    /// Ran but the tool failed (plugin classification tool-error), or the daemon could not run it.
    Failed,
    Cancelled,
    TimedOut,
    /// The daemon stopped (crash, kill -9) while the job was queued or running.
    Interrupted,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::TimedOut,
        JobStatus::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Interrupted => "interrupted",
        }
    }

    /// Whether the job has ended (every status but queued and running).
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`JobStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown job status {0:?}; allowed: queued, running, succeeded, failed, cancelled, timed_out, interrupted"
)]
pub struct UnknownJobStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownJobStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownJobStatus(crate::echo(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_others_are_refused() {
        for status in JobStatus::ALL {
            assert_eq!(status.as_str().parse::<JobStatus>(), Ok(status));
        }
        for refused in ["", "Queued", "done", "timed-out"] {
            assert!(refused.parse::<JobStatus>().is_err(), "{refused:?}");
        }
    }
}
