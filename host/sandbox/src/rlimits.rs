//! Resource limits of a job, computed in the parent (allocation allowed here) and applied in
//! the child with `setrlimit` only (async-signal-safe).
//!
//! Invariants: RLIMIT_CPU is the job's timeout (rounded up) plus the policy's grace, so the
//! wall-clock timeout normally fires first; RLIMIT_CORE is always 0 (a core dump could write a
//! tool's memory, credentials included, into the workspace); RLIMIT_NPROC is only set with a
//! dedicated uid, because it counts every process of the real uid system-wide and does not bind
//! root at all.

use std::time::Duration;

use serde::Serialize;

use crate::policy::Rlimits;

/// Number of limits a job can carry; sized for a fixed array (no allocation in the child).
pub const MAX_LIMITS: usize = 6;

/// One limit: soft and hard are set to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limit {
    #[serde(skip)]
    pub resource: libc::__rlimit_resource_t,
    pub name: &'static str,
    pub value: u64,
}

/// The limits of one job, in the order they are applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobLimits {
    pub limits: Vec<Limit>,
}

impl JobLimits {
    pub fn compute(policy: &Rlimits, timeout: Duration, dedicated_uid: bool) -> Self {
        let timeout_secs = timeout
            .as_secs()
            .saturating_add(u64::from(timeout.subsec_nanos() > 0));
        let mut limits = vec![
            limit(
                libc::RLIMIT_CPU,
                "cpu_secs",
                timeout_secs.saturating_add(policy.cpu_grace_secs),
            ),
            limit(
                libc::RLIMIT_AS,
                "address_space_bytes",
                policy.address_space_bytes,
            ),
            limit(
                libc::RLIMIT_FSIZE,
                "file_size_bytes",
                policy.file_size_bytes,
            ),
            limit(libc::RLIMIT_NOFILE, "open_files", policy.open_files),
            limit(libc::RLIMIT_CORE, "core_bytes", 0),
        ];
        if dedicated_uid {
            limits.push(limit(libc::RLIMIT_NPROC, "processes", policy.processes));
        }
        debug_assert!(limits.len() <= MAX_LIMITS);
        Self { limits }
    }

    /// The fixed-size form the child applies.
    pub fn as_array(
        &self,
    ) -> (
        [(libc::__rlimit_resource_t, libc::rlim_t); MAX_LIMITS],
        usize,
    ) {
        let mut out = [(0, 0); MAX_LIMITS];
        let count = self.limits.len().min(MAX_LIMITS);
        for (slot, l) in out.iter_mut().zip(&self.limits) {
            *slot = (l.resource, l.value as libc::rlim_t);
        }
        (out, count)
    }
}

fn limit(resource: libc::__rlimit_resource_t, name: &'static str, value: u64) -> Limit {
    Limit {
        resource,
        name,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(limits: &JobLimits, name: &str) -> Option<u64> {
        limits
            .limits
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value)
    }

    #[test]
    fn computation_table() {
        let policy = Rlimits {
            address_space_bytes: 1 << 30,
            file_size_bytes: 1 << 20,
            open_files: 64,
            processes: 32,
            cpu_grace_secs: 10,
        };
        // (timeout, dedicated uid, expected cpu, expected nproc)
        let cases: &[(Duration, bool, u64, Option<u64>)] = &[
            (Duration::from_secs(300), false, 310, None),
            (Duration::from_millis(1500), false, 12, None),
            (Duration::from_millis(1), true, 11, Some(32)),
            (Duration::ZERO, true, 10, Some(32)),
            (Duration::MAX, false, u64::MAX, None),
        ];
        for (timeout, uid, cpu, nproc) in cases {
            let l = JobLimits::compute(&policy, *timeout, *uid);
            assert_eq!(value(&l, "cpu_secs"), Some(*cpu), "{timeout:?}");
            assert_eq!(value(&l, "processes"), *nproc, "{timeout:?}");
            assert_eq!(value(&l, "core_bytes"), Some(0));
            assert_eq!(value(&l, "address_space_bytes"), Some(1 << 30));
            assert_eq!(value(&l, "file_size_bytes"), Some(1 << 20));
            assert_eq!(value(&l, "open_files"), Some(64));
            let (array, count) = l.as_array();
            assert_eq!(count, l.limits.len());
            assert_eq!(array[0], (libc::RLIMIT_CPU, *cpu as libc::rlim_t));
        }
    }
}
