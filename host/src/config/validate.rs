//! Semantic checks on a parsed configuration.
//!
//! Invariant: every problem names the dotted key it is about, the offending value and what is
//! allowed, and all problems are reported at once (not just the first).

use std::fmt;

use toolgate_plugin_runtime::ToolDescription;
use toolgate_sandbox::SandboxError;

use super::Config;

/// Longest value quoted back in an error message.
const MAX_QUOTED_VALUE_CHARS: usize = 80;

/// Longest wait on a client `[http]` allows: beyond an hour a stalled client holds its
/// connection as good as forever, which is what the three timeouts exist to prevent.
const MAX_CLIENT_WAIT_SECS: u64 = 3600;

/// Most connections `http.max_connections` allows: Linux's default `fs.nr_open`, the most
/// descriptors one process can ever hold (each connection holds one).
const MAX_CONNECTIONS: usize = 1 << 20;

/// One thing wrong with a configuration, tied to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `sandbox.timeout_secs`; `.` for the document itself.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl ConfigProblem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// A TOML syntax error (toml's message carries the line, column and a source excerpt).
    pub(super) fn syntax(error: &toml::de::Error) -> Self {
        Self::new(".", format!("invalid TOML: {error}"))
    }

    /// A schema error (unknown key, wrong type) at `path`.
    pub(super) fn schema(path: &str, error: &toml::de::Error) -> Self {
        let key = if path.is_empty() { "." } else { path };
        Self::new(key, in_plain_words(error.to_string().trim_end()))
    }
}

/// serde names what it expected by Rust type (`expected u64`); an operator reads TOML.
fn in_plain_words(message: &str) -> String {
    const TYPES: &[(&str, &str)] = &[
        ("u8", "a whole number of 0 or more"),
        ("u16", "a whole number of 0 or more"),
        ("u32", "a whole number of 0 or more"),
        ("u64", "a whole number of 0 or more"),
        ("usize", "a whole number of 0 or more"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
        ("f64", "a number"),
    ];
    for (rust, words) in TYPES {
        if let Some(head) = message.strip_suffix(&format!("expected {rust}")) {
            return format!("{head}expected {words}");
        }
    }
    message.to_string()
}

fn quoted(value: &str) -> String {
    let mut shown: String = value.chars().take(MAX_QUOTED_VALUE_CHARS).collect();
    if shown.len() < value.len() {
        shown.push_str("...");
    }
    format!("{shown:?}")
}

/// The daemon-wide limits a tenant's own limits may only tighten.
pub(super) fn global_limits(config: &Config) -> toolgate_auth::GlobalLimits {
    toolgate_auth::GlobalLimits {
        timeout_secs: config.sandbox.timeout_secs,
        memory_bytes: config.sandbox.memory_max_bytes,
        max_output_bytes: u64::try_from(config.sandbox.max_output_bytes).unwrap_or(u64::MAX),
        max_concurrent_jobs: u32::try_from(config.limits.max_concurrent_jobs).unwrap_or(u32::MAX),
        tools: config.tools.keys().cloned().collect(),
    }
}

/// `[[tenants]]` problems (each named by its key, e.g. `tenants[1].quotas.max_concurrent_jobs`)
/// and the listen rule: without tenants, loopback only.
fn tenant_problems(config: &Config) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    if config.tenants.is_empty() {
        if let Err(error) =
            toolgate_auth::check_listen(config.listen, &toolgate_auth::Tenants::default())
        {
            problems.push(ConfigProblem::new("listen", error.to_string()));
        }
        return problems;
    }
    if let Err(error) = config.tenants() {
        problems.extend(error.problems.into_iter().map(|problem| {
            // The auth crate writes `= value ...`; drop the sign, the key is shown apart.
            let message = problem.message.trim_start_matches("= ").to_string();
            ConfigProblem::new(problem.key, message)
        }));
    }
    // Each read directory must exist: the tenant's jobs are confined to them (as
    // `sandbox.allowed_dirs`' are checked in `SandboxSettings::problems`).
    for (index, tenant) in config.tenants.iter().enumerate() {
        for (d, dir) in tenant.allowed_dirs.iter().enumerate() {
            if !dir.is_dir() {
                problems.push(ConfigProblem::new(
                    format!("tenants[{index}].allowed_dirs[{d}]"),
                    format!(
                        "{} is not an existing directory",
                        quoted(&dir.display().to_string())
                    ),
                ));
            }
        }
    }
    problems
}

/// Every semantic problem with `config`.
pub(super) fn problems(config: &Config) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    problems.extend(tenant_problems(config));
    if let Some(url) = &config.store.url
        && !super::is_postgres_url(url)
    {
        problems.push(ConfigProblem::new(
            "store.url",
            format!(
                "{} is not a PostgreSQL URL; allowed: postgres://USER:PASSWORD@HOST:PORT/DATABASE, \
                 or no url for the embedded SQLite in data_dir",
                quoted(&super::redacted_url(url))
            ),
        ));
    }
    if let Some(secs) = config.store.lease_secs
        && !(super::MIN_LEASE_SECS..=super::MAX_LEASE_SECS).contains(&secs)
    {
        problems.push(ConfigProblem::new(
            "store.lease_secs",
            format!(
                "{secs} is outside {}..={} seconds",
                super::MIN_LEASE_SECS,
                super::MAX_LEASE_SECS
            ),
        ));
    }
    if let Some(id) = &config.store.daemon_id
        && (id.is_empty() || id.len() > 128 || id.chars().any(char::is_control))
    {
        problems.push(ConfigProblem::new(
            "store.daemon_id",
            "must be 1 to 128 characters without control characters",
        ));
    }
    let limits = &config.limits;
    if limits.max_concurrent_jobs == 0 {
        problems.push(ConfigProblem::new(
            "limits.max_concurrent_jobs",
            "0 would never run a job; allowed: 1 or more",
        ));
    }
    if limits.max_body_bytes == 0 {
        problems.push(ConfigProblem::new(
            "limits.max_body_bytes",
            "0 would refuse every request; allowed: 1 or more",
        ));
    }
    problems.extend(http_problems(&config.http));
    let scans = &config.scans;
    if !(1..=super::MAX_SCAN_WORKERS).contains(&scans.workers) {
        problems.push(ConfigProblem::new(
            "scans.workers",
            format!(
                "{} is out of range; allowed: 1 to {}",
                scans.workers,
                super::MAX_SCAN_WORKERS
            ),
        ));
    }
    if scans.max_attempts == 0 {
        problems.push(ConfigProblem::new(
            "scans.max_attempts",
            "0 would never start a scan; allowed: 1 or more",
        ));
    }
    problems.extend(scan_problems(config));
    if let Err(error) = config.uploads.validate() {
        problems.push(ConfigProblem::new(
            format!("uploads.{}", error.key),
            format!("{} is not allowed: {}", error.value, error.allowed),
        ));
    }
    // The sandbox crate owns its settings and their checks; only the section prefix is ours.
    for problem in config.sandbox.problems() {
        problems.push(ConfigProblem::new(
            format!("sandbox.{}", problem.key),
            problem.message,
        ));
    }
    for problem in config.plugins.problems() {
        if let toolgate_plugin_runtime::RuntimeError::InvalidConfig {
            field,
            value,
            allowed,
        } = problem
        {
            problems.push(ConfigProblem::new(
                format!("plugins.{field}"),
                format!("{} is out of range; allowed: {allowed}", quoted(&value)),
            ));
        }
    }
    for (name, tool) in &config.tools {
        if !is_tool_name(name) {
            problems.push(ConfigProblem::new(
                format!("tools.{name}"),
                format!(
                    "tool name {} is invalid; allowed: lower case [a-z0-9_-]+",
                    quoted(name)
                ),
            ));
        }
        if let Some(home) = &tool.home
            && !home.is_dir()
        {
            problems.push(ConfigProblem::new(
                format!("tools.{name}.home"),
                format!(
                    "{} is not an existing directory",
                    quoted(&home.display().to_string())
                ),
            ));
        }
        let policy = config.sandbox.policy(config.jobs_dir());
        for (index, path) in tool.read_paths.iter().enumerate() {
            let key = format!("tools.{name}.read_paths[{index}]");
            let shown = quoted(&path.display().to_string());
            if !path.exists() {
                problems.push(ConfigProblem::new(
                    key,
                    format!("{shown} does not exist; allowed: an existing directory or file"),
                ));
            } else if toolgate_sandbox::exposes_daemon_state(path, &policy) {
                problems.push(ConfigProblem::new(
                    key,
                    format!(
                        "{shown} holds the daemon's own state (sandbox.output_root or the job \
                         directories under data_dir), which no tool may read; allowed: a path \
                         outside them"
                    ),
                ));
            }
        }
        if tool.timeout_secs == Some(0) {
            problems.push(ConfigProblem::new(
                format!("tools.{name}.timeout_secs"),
                "0 would kill the tool at once; allowed: 1 or more",
            ));
        }
        for (index, var) in tool.env_passthrough.iter().enumerate() {
            if !is_env_name(var) {
                problems.push(ConfigProblem::new(
                    format!("tools.{name}.env_passthrough[{index}]"),
                    format!(
                        "{} is not an environment variable name; allowed: [A-Za-z_][A-Za-z0-9_]*",
                        quoted(var)
                    ),
                ));
            }
        }
    }
    problems
}

/// Out-of-range `[http]` keys: a timeout of 0 would drop every connection at once, and a cap
/// of 0 would refuse every one.
fn http_problems(http: &super::HttpConfig) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let waits = [
        ("http.idle_timeout_secs", http.idle_timeout_secs),
        (
            "http.header_read_timeout_secs",
            http.header_read_timeout_secs,
        ),
        ("http.body_read_timeout_secs", http.body_read_timeout_secs),
    ];
    for (key, secs) in waits {
        if !(1..=MAX_CLIENT_WAIT_SECS).contains(&secs) {
            problems.push(ConfigProblem::new(
                key,
                format!("{secs} is out of range; allowed: 1 to {MAX_CLIENT_WAIT_SECS} seconds"),
            ));
        }
    }
    if !(1..=MAX_CONNECTIONS).contains(&http.max_connections) {
        problems.push(ConfigProblem::new(
            "http.max_connections",
            format!(
                "{} is out of range; allowed: 1 to {MAX_CONNECTIONS}",
                http.max_connections
            ),
        ));
    }
    problems
}

/// Problems between the `[tools.<name>]` sections and the plugins that loaded: a section for a
/// tool no plugin provides (usually a typo, which would otherwise configure nothing), and an
/// `env_passthrough` name the tool's plugin does not declare (it would never reach the tool).
/// `skipped_plugins` is how many plugin files failed to load, for the message.
pub fn tool_problems(
    config: &Config,
    loaded: &[ToolDescription],
    skipped_plugins: usize,
) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let names: Vec<&str> = loaded.iter().map(|tool| tool.name.as_str()).collect();
    for (name, tool) in &config.tools {
        let Some(plugin) = loaded.iter().find(|plugin| &plugin.name == name) else {
            if tool.implicit {
                continue;
            }
            let skipped = if skipped_plugins == 0 {
                String::new()
            } else {
                format!("; {skipped_plugins} plugin file(s) failed to load, see the log")
            };
            problems.push(ConfigProblem::new(
                format!("tools.{name}"),
                format!(
                    "no loaded plugin provides the tool {}; loaded: {}{skipped}",
                    quoted(name),
                    listed(&names)
                ),
            ));
            continue;
        };
        for (index, var) in tool.env_passthrough.iter().enumerate() {
            if !plugin.env_vars.contains(var) {
                problems.push(ConfigProblem::new(
                    format!("tools.{name}.env_passthrough[{index}]"),
                    format!(
                        "{} is not declared by the {name} plugin, so it would never reach the \
                         tool; the plugin declares: {}",
                        quoted(var),
                        listed(
                            &plugin
                                .env_vars
                                .iter()
                                .map(String::as_str)
                                .collect::<Vec<_>>()
                        )
                    ),
                ));
            }
        }
    }
    problems
}

/// What `config`'s sandbox section asks of this host that it cannot give (Landlock or a network
/// namespace `required`, `run_as` without root, a `cgroup_root` or cgroup limit that cannot be
/// used), each tied to its key; creates nothing.
pub fn host_problems(config: &Config) -> Vec<ConfigProblem> {
    toolgate_sandbox::host_shortfalls(&config.sandbox.policy(config.jobs_dir()))
        .into_iter()
        .map(|shortfall| {
            let key = match &shortfall {
                SandboxError::HardeningUnavailable { what, .. } => format!("sandbox.{what}"),
                SandboxError::Policy { field, .. } if *field == "run_as" => {
                    "sandbox.run_as_uid".to_string()
                }
                SandboxError::Cgroup { .. } => "sandbox.cgroup_root".to_string(),
                _ => "sandbox".to_string(),
            };
            ConfigProblem::new(key, shortfall.to_string())
        })
        .collect()
}

fn listed(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn is_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The `[scans]` keys beyond the queue's: the default tool must be configured, the public base
/// must be an absolute http(s) URL, and the retention times must be usable.
fn scan_problems(config: &super::Config) -> Vec<ConfigProblem> {
    let scans = &config.scans;
    let mut problems = Vec::new();
    if let Some(tool) = &scans.default_tool
        && !config.tools.contains_key(tool)
    {
        let configured: Vec<&str> = config.tools.keys().map(String::as_str).collect();
        problems.push(ConfigProblem::new(
            "scans.default_tool",
            format!(
                "{tool:?} is not a configured tool; allowed: one of [tools.<name>]: {}",
                configured.join(", ")
            ),
        ));
    }
    if let Some(base) = &scans.public_base_url {
        let scheme_ok = base.starts_with("http://") || base.starts_with("https://");
        let rest = base.split_once("://").map_or("", |(_, rest)| rest);
        if !scheme_ok || rest.is_empty() || base.contains(['?', '#', ' ']) {
            problems.push(ConfigProblem::new(
                "scans.public_base_url",
                format!(
                    "{base:?} is not an absolute http(s) URL without query; e.g. \"https://toolgate.example.com\""
                ),
            ));
        }
    }
    for (key, value) in [
        ("scans.retention_days", scans.retention_days),
        ("scans.abandoned_after_hours", scans.abandoned_after_hours),
        ("scans.cleanup_interval_secs", scans.cleanup_interval_secs),
    ] {
        if value == 0 {
            problems.push(ConfigProblem::new(
                key,
                "0 would delete scans as soon as they exist; allowed: 1 or more",
            ));
        }
    }
    problems
}
