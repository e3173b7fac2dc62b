//! The `[[tenants]]` sections of toolgate's configuration, exactly as written (serde types).
//!
//! Invariants: unknown keys are errors (`deny_unknown_fields`), so a misspelt limit is never
//! silently ignored; nothing here is trusted until [`super::Tenants::validate`] has checked it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One `[[tenants]]` entry as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// `id`: the tenant's identifier, `[a-z0-9_-]{1,64}`.
    pub id: String,
    /// `display_name`: a human-readable name (1 to 128 characters, no control characters).
    pub display_name: String,
    /// `access_keys`: the keys this tenant authenticates with; revoking one is removing it.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
    /// `allowed_tools`: the tools this tenant may run, each one configured under `[tools]`.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// `allowed_dirs`: the directories this tenant's scans may read.
    #[serde(default)]
    pub allowed_dirs: Vec<PathBuf>,
    /// `output_root`: where this tenant's outputs go; no other tenant's root or read directory
    /// may overlap it.
    pub output_root: PathBuf,
    /// `quotas`: this tenant's share of the daemon.
    #[serde(default)]
    pub quotas: QuotasConfig,
    /// `tools.<name>`: per-tool limits that can only tighten the global ones.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolLimitsConfig>,
    /// `role`: `user` (the default) or `admin` (may also read the whole audit trail).
    #[serde(default)]
    pub role: Role,
    /// `run_as`: the uid and gid this tenant's tools run as when the daemon runs as root.
    #[serde(default)]
    pub run_as: Option<RunAs>,
}

/// One `access_keys` entry: `{ id = "tgk_...", secret_sha256 = "<64 hex>" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    /// `id`: the key's public identifier, `tgk_` and 16 lowercase hex characters.
    pub id: String,
    /// `secret_sha256`: the SHA-256 of the secret, 64 hex characters; never the secret itself.
    pub secret_sha256: String,
}

/// `[tenants.quotas]`: each key absent means "only the global limit applies".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    /// `max_concurrent_jobs`: this tenant's jobs running at once; more wait in the queue.
    pub max_concurrent_jobs: Option<u32>,
    /// `max_queued_scans`: this tenant's scans waiting to run; more are refused with 429.
    pub max_queued_scans: Option<u32>,
    /// `requests_per_second`: this tenant's sustained request rate (bursts of as many); more are
    /// refused with 429.
    pub requests_per_second: Option<u32>,
}

/// `[tenants.tools.<name>]`: limits that can only be tighter than the global ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimitsConfig {
    /// `timeout_secs`: wall-clock limit of one run.
    pub timeout_secs: Option<u64>,
    /// `memory_bytes`: memory limit of one run.
    pub memory_bytes: Option<u64>,
    /// `max_output_bytes`: output kept from one run.
    pub max_output_bytes: Option<u64>,
}

/// What a tenant may do beyond its own jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and acts on its own jobs, scans and outputs only.
    #[default]
    User,
    /// Also reads the audit trail of every tenant (`GET /api/audit`).
    Admin,
}

impl Role {
    /// The role's name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// `run_as = { uid, gid }`: the identity a tenant's tools run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAs {
    /// The user id (never 0).
    pub uid: u32,
    /// The group id (never 0).
    pub gid: u32,
}
