//! What a configured tenant's jobs may use: its tools, its running limit, its sandbox (its
//! read directories, output root, private directories and tool identity) and its per-tool
//! limits. A job of the implicit tenant (no `[[tenants]]`) has none of these and gets the
//! daemon-wide ones.
//!
//! Invariant: a tenant's per-tool limits were validated to be at most the global ones, and are
//! applied as the lower of the two anyway (`RunLimits` only tightens, the timeout is a `min`),
//! so a job never gets more than the daemon-wide maximum.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use toolgate_auth::ToolLimits;
use toolgate_sandbox::{RunLimits, Sandbox};

/// One tenant's rules.
pub struct TenantRules {
    /// The tools it may run (`tenants[].allowed_tools`).
    pub tools: BTreeSet<String>,
    /// Its running slots when it has `quotas.max_concurrent_jobs`: its jobs beyond that wait
    /// queued (holding a place of the global queue, not a global running slot).
    pub slots: Option<Arc<tokio::sync::Semaphore>>,
    /// The same limit across every daemon sharing the store (PostgreSQL): a job starts only
    /// when the store counts fewer of the tenant's jobs running anywhere. `None` on a store
    /// one daemon uses, where `slots` is the whole truth.
    pub max_across_daemons: Option<u32>,
    /// The sandbox scoped to its directories and identity (`Sandbox::scoped`).
    pub sandbox: Arc<Sandbox>,
    /// Its per-tool limits (`tenants[].tools.<tool>`).
    pub tool_limits: BTreeMap<String, ToolLimits>,
}

impl TenantRules {
    /// The timeout and run limits of `tool` for this tenant, given the tool's own timeout.
    pub fn limits_for(&self, tool: &str, tool_timeout: Duration) -> (Duration, RunLimits) {
        let Some(limits) = self.tool_limits.get(tool) else {
            return (tool_timeout, RunLimits::default());
        };
        let timeout = limits.timeout_secs.map_or(tool_timeout, |secs| {
            tool_timeout.min(Duration::from_secs(secs))
        });
        let run = RunLimits {
            memory_max_bytes: limits.memory_bytes,
            max_output_bytes: limits
                .max_output_bytes
                .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX)),
        };
        (timeout, run)
    }
}
