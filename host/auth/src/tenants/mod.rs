//! Tenants: the `[[tenants]]` configuration ([`config`]) and its validated form ([`Tenants`]).
//!
//! Invariants: a [`Tenants`] value exists only through [`Tenants::validate`], so every id, key id
//! and hash in it is well formed, ids and key ids are unique, no two keys share a secret, no two
//! tenants share an output root, a read directory overlapping another's output root, or a uid,
//! and every per-tool limit is at most the global one. Validation reports every problem at once,
//! each naming its key (`tenants[1].tools.prowler.timeout_secs`), the value (never a secret) and
//! what is allowed.

pub mod config;
mod paths;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;

pub use config::{AccessKeyConfig, QuotasConfig, Role, RunAs, TenantConfig, ToolLimitsConfig};

use crate::ids::{KEY_ID_PREFIX, KeyId, TenantId};
use crate::secret::{SHA256_HEX_CHARS, SecretHash};

/// Longest `display_name`: a line in a listing, not a description.
pub const MAX_DISPLAY_NAME_CHARS: usize = 128;

/// The daemon-wide limits a tenant's own limits are checked against (the daemon fills this from
/// its `[sandbox]`, `[limits]` and `[tools]` sections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalLimits {
    /// The longest a tool may run, in seconds.
    pub timeout_secs: u64,
    /// The most memory a tool may use, in bytes; `None` when the daemon sets no memory cap.
    pub memory_bytes: Option<u64>,
    /// The most output kept from one run, in bytes.
    pub max_output_bytes: u64,
    /// The most jobs running at once, daemon-wide.
    pub max_concurrent_jobs: u32,
    /// The names of the configured tools (the keys of `[tools]`).
    pub tools: BTreeSet<String>,
}

/// One thing wrong with `[[tenants]]`, tied to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantProblem {
    /// Dotted key path, e.g. `tenants[1].tools.prowler.timeout_secs`.
    pub key: String,
    /// What is wrong, quoting the value (never a secret) and saying what is allowed.
    pub message: String,
}

impl fmt::Display for TenantProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.message)
    }
}

/// Every problem found in `[[tenants]]`, in the order of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct TenantsError {
    /// The problems, at least one.
    pub problems: Vec<TenantProblem>,
}

/// A validated access key: its id and the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The key's public identifier.
    pub id: KeyId,
    /// The SHA-256 of the key's secret.
    pub secret_sha256: SecretHash,
}

/// A tenant's validated quotas; `None` means only the global limit applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quotas {
    /// Jobs running at once (at most the global `max_concurrent_jobs`).
    pub max_concurrent_jobs: Option<NonZeroU32>,
    /// Scans waiting to run.
    pub max_queued_scans: Option<NonZeroU32>,
    /// Sustained requests per second (bursts of as many).
    pub requests_per_second: Option<NonZeroU32>,
}

/// A tenant's validated limits for one tool; each present value is at most the global one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolLimits {
    /// Wall-clock limit of one run, in seconds.
    pub timeout_secs: Option<u64>,
    /// Memory limit of one run, in bytes.
    pub memory_bytes: Option<u64>,
    /// Output kept from one run, in bytes.
    pub max_output_bytes: Option<u64>,
}

/// One validated tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The tenant's identifier.
    pub id: TenantId,
    /// Its human-readable name.
    pub display_name: String,
    /// Its access keys.
    pub access_keys: Vec<AccessKey>,
    /// The tools it may run (each one configured daemon-wide).
    pub allowed_tools: BTreeSet<String>,
    /// The directories its scans may read, as written.
    pub allowed_dirs: Vec<PathBuf>,
    /// Where its outputs go, as written.
    pub output_root: PathBuf,
    /// Its quotas.
    pub quotas: Quotas,
    /// Its per-tool limits, only for tools in `allowed_tools`.
    pub tool_limits: BTreeMap<String, ToolLimits>,
    /// Its role.
    pub role: Role,
    /// The identity its tools run as when the daemon runs as root.
    pub run_as: Option<RunAs>,
}

impl Tenant {
    /// This tenant's limits for `tool` (all `None` when it sets none).
    pub fn limits_for(&self, tool: &str) -> ToolLimits {
        self.tool_limits.get(tool).copied().unwrap_or_default()
    }
}

/// The validated `[[tenants]]`: empty means "no authentication, loopback only" (see
/// [`crate::check_listen`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenants {
    list: Vec<Tenant>,
}

impl Tenants {
    /// Checks every `[[tenants]]` entry against the rules in the module doc and `globals`,
    /// returning every problem at once.
    pub fn validate(
        configs: &[TenantConfig],
        globals: &GlobalLimits,
    ) -> Result<Self, TenantsError> {
        let mut checker = Checker::default();
        let list: Vec<Tenant> = configs
            .iter()
            .enumerate()
            .filter_map(|(index, config)| checker.tenant(index, config, globals))
            .collect();
        checker.cross_tenant(configs);
        if checker.problems.is_empty() {
            Ok(Self { list })
        } else {
            Err(TenantsError {
                problems: checker.problems,
            })
        }
    }

    /// Whether no tenant is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many tenants are configured.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The tenants, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Tenant> {
        self.list.iter()
    }

    /// The tenant with this id, if configured.
    pub fn get(&self, id: &TenantId) -> Option<&Tenant> {
        self.list.iter().find(|tenant| &tenant.id == id)
    }
}

/// Collects problems while validating; remembers what earlier tenants claimed, so a duplicate
/// names the entry it repeats.
#[derive(Default)]
struct Checker {
    problems: Vec<TenantProblem>,
    tenant_ids: HashMap<String, usize>,
    key_ids: HashMap<String, String>,
    secret_hashes: HashMap<SecretHash, String>,
    uids: HashMap<u32, usize>,
}

impl Checker {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(TenantProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Checks one entry; returns the validated tenant when this entry alone is valid.
    fn tenant(
        &mut self,
        index: usize,
        config: &TenantConfig,
        globals: &GlobalLimits,
    ) -> Option<Tenant> {
        let before = self.problems.len();
        let at = format!("tenants[{index}]");

        let id = match TenantId::parse(&config.id) {
            Ok(id) => Some(id),
            Err(error) => {
                self.problem(format!("{at}.id"), format!("= {error}"));
                None
            }
        };
        if let Some(first) = self.tenant_ids.get(&config.id) {
            let first = *first;
            self.problem(
                format!("{at}.id"),
                format!(
                    "= {:?} is also tenants[{first}]'s id; tenant ids must be unique",
                    config.id
                ),
            );
        } else {
            self.tenant_ids.insert(config.id.clone(), index);
        }

        self.display_name(&at, &config.display_name);
        let access_keys = self.access_keys(&at, &config.access_keys);
        let allowed_tools = self.allowed_tools(&at, &config.allowed_tools, globals);
        for (d, dir) in config.allowed_dirs.iter().enumerate() {
            if let Some(reason) = paths::refuse_directory(dir) {
                self.problem(
                    format!("{at}.allowed_dirs[{d}]"),
                    format!("= {dir:?} {reason}"),
                );
            }
        }
        if let Some(reason) = paths::refuse_directory(&config.output_root) {
            self.problem(
                format!("{at}.output_root"),
                format!("= {:?} {reason}", config.output_root),
            );
        }
        let quotas = self.quotas(&at, &config.quotas, globals);
        let tool_limits = self.tool_limits(&at, &config.tools, &allowed_tools, globals);
        if let Some(run_as) = config.run_as {
            self.run_as(index, &at, run_as);
        }

        let valid = self.problems.len() == before;
        Some(Tenant {
            id: id.filter(|_| valid)?,
            display_name: config.display_name.clone(),
            access_keys,
            allowed_tools,
            allowed_dirs: config.allowed_dirs.clone(),
            output_root: config.output_root.clone(),
            quotas,
            tool_limits,
            role: config.role,
            run_as: config.run_as,
        })
    }

    fn display_name(&mut self, at: &str, name: &str) {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
            self.problem(
                format!("{at}.display_name"),
                format!("= {name:?} must be 1 to {MAX_DISPLAY_NAME_CHARS} characters without control characters"),
            );
        }
    }

    fn access_keys(&mut self, at: &str, keys: &[AccessKeyConfig]) -> Vec<AccessKey> {
        let mut valid = Vec::with_capacity(keys.len());
        for (k, key) in keys.iter().enumerate() {
            let here = format!("{at}.access_keys[{k}]");
            let id = match KeyId::parse(&key.id) {
                Ok(id) => Some(id),
                Err(error) => {
                    self.problem(format!("{here}.id"), format!("= {error}"));
                    None
                }
            };
            if let Some(first) = self.key_ids.get(&key.id) {
                let message = format!(
                    "= {:?} is also {first}'s id; key ids must be unique across all tenants",
                    key.id
                );
                self.problem(format!("{here}.id"), message);
            } else {
                self.key_ids.insert(key.id.clone(), here.clone());
            }
            let hash = self.secret_hash(&here, &key.secret_sha256);
            if let (Some(id), Some(secret_sha256)) = (id, hash) {
                valid.push(AccessKey { id, secret_sha256 });
            }
        }
        valid
    }

    /// The value is never quoted: an operator who pastes the secret itself here must not find it
    /// in the logs.
    fn secret_hash(&mut self, here: &str, text: &str) -> Option<SecretHash> {
        let key = format!("{here}.secret_sha256");
        if text.starts_with(crate::keygen::SECRET_PREFIX) || text.starts_with(KEY_ID_PREFIX) {
            self.problem(
                key,
                "holds a secret or a key id, not a digest: write the SHA-256 of the secret \
                 (toolgate token new prints the line), and make a new key, since this secret is now in the file",
            );
            return None;
        }
        let hash = match SecretHash::from_hex(text) {
            Ok(hash) => hash,
            Err(_) => {
                let message = format!(
                    "must be {SHA256_HEX_CHARS} hex characters (the SHA-256 of the secret); this value has {} characters{}",
                    text.chars().count(),
                    if text.bytes().all(|b| b.is_ascii_hexdigit()) {
                        ""
                    } else {
                        ", some not hex"
                    },
                );
                self.problem(key, message);
                return None;
            }
        };
        if let Some(first) = self.secret_hashes.get(&hash) {
            let message = format!(
                "is the same as {first}'s: two keys sharing one secret cannot be told apart or revoked one at a time; \
                 make a new key with toolgate token new"
            );
            self.problem(key, message);
            return None;
        }
        self.secret_hashes.insert(hash.clone(), here.to_owned());
        Some(hash)
    }

    fn allowed_tools(
        &mut self,
        at: &str,
        tools: &[String],
        globals: &GlobalLimits,
    ) -> BTreeSet<String> {
        let mut allowed = BTreeSet::new();
        for (t, tool) in tools.iter().enumerate() {
            if globals.tools.contains(tool) {
                allowed.insert(tool.clone());
            } else {
                let configured = globals.tools.iter().cloned().collect::<Vec<_>>().join(", ");
                self.problem(
                    format!("{at}.allowed_tools[{t}]"),
                    format!("= {tool:?} is not a configured tool (configured: {configured})"),
                );
            }
        }
        allowed
    }

    fn quotas(&mut self, at: &str, quotas: &QuotasConfig, globals: &GlobalLimits) -> Quotas {
        let mut nonzero = |name: &str, value: Option<u32>| -> Option<NonZeroU32> {
            let value = value?;
            let checked = NonZeroU32::new(value);
            if checked.is_none() {
                self.problem(
                    format!("{at}.quotas.{name}"),
                    "= 0 would refuse everything; remove the key to apply only the global limit",
                );
            }
            checked
        };
        let checked = Quotas {
            max_concurrent_jobs: nonzero("max_concurrent_jobs", quotas.max_concurrent_jobs),
            max_queued_scans: nonzero("max_queued_scans", quotas.max_queued_scans),
            requests_per_second: nonzero("requests_per_second", quotas.requests_per_second),
        };
        if let Some(jobs) = checked.max_concurrent_jobs
            && jobs.get() > globals.max_concurrent_jobs
        {
            self.problem(
                format!("{at}.quotas.max_concurrent_jobs"),
                format!("= {jobs} exceeds the global {}; a tenant's limits can only tighten the global ones", globals.max_concurrent_jobs),
            );
        }
        checked
    }

    fn tool_limits(
        &mut self,
        at: &str,
        tools: &BTreeMap<String, ToolLimitsConfig>,
        allowed: &BTreeSet<String>,
        globals: &GlobalLimits,
    ) -> BTreeMap<String, ToolLimits> {
        let mut checked = BTreeMap::new();
        for (tool, limits) in tools {
            let here = format!("{at}.tools.{tool}");
            if !allowed.contains(tool) {
                self.problem(
                    &here,
                    format!("sets limits for {tool:?}, which is not in {at}.allowed_tools"),
                );
                continue;
            }
            self.tighter(
                &format!("{here}.timeout_secs"),
                limits.timeout_secs,
                Some(globals.timeout_secs),
            );
            if limits.memory_bytes.is_some() && globals.memory_bytes.is_none() {
                // A per-tool memory limit is a cgroup `memory.max`: without the daemon's own
                // there is no cgroup memory controller to apply it with.
                self.problem(
                    format!("{here}.memory_bytes"),
                    "needs sandbox.memory_max_bytes (a cgroup memory limit, with \
                     sandbox.cgroup_root): a tenant's memory limit tightens that one",
                );
            }
            self.tighter(
                &format!("{here}.memory_bytes"),
                limits.memory_bytes,
                globals.memory_bytes,
            );
            self.tighter(
                &format!("{here}.max_output_bytes"),
                limits.max_output_bytes,
                Some(globals.max_output_bytes),
            );
            checked.insert(
                tool.clone(),
                ToolLimits {
                    timeout_secs: limits.timeout_secs,
                    memory_bytes: limits.memory_bytes,
                    max_output_bytes: limits.max_output_bytes,
                },
            );
        }
        checked
    }

    /// A per-tool value must be positive and at most the global one (when there is one).
    fn tighter(&mut self, key: &str, value: Option<u64>, global: Option<u64>) {
        match (value, global) {
            (Some(0), _) => self.problem(key, "= 0 would refuse every run; remove the key to apply the global limit"),
            (Some(value), Some(global)) if value > global => self.problem(
                key,
                format!("= {value} exceeds the global {global}; a tenant's limits can only tighten the global ones"),
            ),
            _ => {}
        }
    }

    fn run_as(&mut self, index: usize, at: &str, run_as: RunAs) {
        if run_as.uid == 0 {
            self.problem(
                format!("{at}.run_as.uid"),
                "= 0: a tenant's tools never run as root",
            );
        }
        if run_as.gid == 0 {
            self.problem(
                format!("{at}.run_as.gid"),
                "= 0: a tenant's tools never run in the root group",
            );
        }
        if let Some(first) = self.uids.get(&run_as.uid) {
            let message = format!(
                "= {} is also tenants[{first}]'s; tenants are kept apart by uid, so each needs its own",
                run_as.uid
            );
            self.problem(format!("{at}.run_as.uid"), message);
        } else {
            self.uids.insert(run_as.uid, index);
        }
    }

    /// Checks between tenants that need all entries: a tenant's output root must not overlap
    /// another's output root or read directories (it could read or overwrite their outputs).
    fn cross_tenant(&mut self, configs: &[TenantConfig]) {
        for (i, tenant) in configs.iter().enumerate() {
            for (j, other) in configs.iter().enumerate() {
                if i == j {
                    continue;
                }
                if j < i && paths::overlap(&tenant.output_root, &other.output_root) {
                    self.problem(
                        format!("tenants[{i}].output_root"),
                        format!(
                            "= {:?} overlaps tenants[{j}].output_root {:?}; each tenant's outputs need their own directory",
                            tenant.output_root, other.output_root
                        ),
                    );
                }
                for (d, dir) in other.allowed_dirs.iter().enumerate() {
                    if paths::overlap(&tenant.output_root, dir) {
                        self.problem(
                            format!("tenants[{i}].output_root"),
                            format!(
                                "= {:?} overlaps tenants[{j}].allowed_dirs[{d}] {dir:?}; the other tenant could read this one's outputs",
                                tenant.output_root
                            ),
                        );
                    }
                }
            }
        }
    }
}
