//! The daemon's configuration file (TOML).
//!
//! Invariants: every struct rejects unknown keys (`deny_unknown_fields`) so a typo is an error
//! naming the key, never a silently ignored setting; every key has a default, and the embedded
//! default (an empty document) works from the repository root; relative paths are resolved
//! against the process working directory once, at load time, so nothing downstream sees a
//! relative path; a configuration that listens beyond loopback is refused unless `[[tenants]]`
//! are configured (without them there is no authentication: `toolgate_auth::check_listen`).

mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toolgate_plugin_runtime::RuntimeConfig;

pub use toolgate_sandbox::SandboxSettings;
pub use validate::{ConfigProblem, host_problems, tool_problems};

/// Default listen address: loopback only, HexStrike's port.
const DEFAULT_LISTEN: &str = "127.0.0.1:8888";

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The document does not parse or does not match the schema; `key` is the dotted path.
    #[error("{}", render_problems(problems))]
    Invalid { problems: Vec<ConfigProblem> },
    #[error("cannot determine the working directory to resolve relative paths: {0}")]
    WorkingDirectory(std::io::Error),
}

fn render_problems(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on; loopback only until authentication exists.
    pub listen: SocketAddr,
    /// Holds the SQLite database, the plugin compilation cache and the private job directories.
    pub data_dir: PathBuf,
    /// Directory of `<tool>.wasm` plugin components.
    pub plugins_dir: PathBuf,
    pub log_format: LogFormat,
    pub sandbox: SandboxSettings,
    /// Per-tool operator settings, keyed by tool name. A plugin's tool runs only when it is
    /// named here (a plugin never chooses to run by being dropped in `plugins_dir`); the embedded
    /// default names the bundled tools.
    pub tools: BTreeMap<String, ToolConfig>,
    pub limits: LimitsConfig,
    /// The plugin runtime's own section.
    pub plugins: RuntimeConfig,
    pub http: HttpConfig,
    pub scans: ScansConfig,
    /// `[[tenants]]`: who may call, with what; empty = no authentication, loopback only (one
    /// implicit tenant). Checked by `toolgate_auth::Tenants::validate` (see [`Config::tenants`]).
    pub tenants: Vec<toolgate_auth::tenants::TenantConfig>,
    /// What an IaC scan upload may be (`[uploads]`, `[uploads.extract]`): the uploads crate's
    /// own settings, embedded as they are.
    pub uploads: toolgate_uploads::UploadLimits,
    /// Where jobs, scans and the audit trail are kept (`[store]`).
    pub store: StoreConfig,
}

/// The store (`[store]`): the embedded SQLite database in `data_dir` unless `url` names a
/// PostgreSQL server, which several daemons can share (issue #19).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`); unset: SQLite at
    /// `<data_dir>/toolgate.sqlite3`. Its password is never logged or echoed.
    pub url: Option<String>,
    /// This daemon's name on a shared store: it marks the scans it claims and the jobs it
    /// runs, so it must differ between daemons. Unset: `<hostname>:<listen port>`.
    pub daemon_id: Option<String>,
    /// How long a scan stays this daemon's without a renewal (renewed every third of it): on a
    /// shared store, the scans of a daemon that died are taken over this long after its last
    /// renewal. 30 s unless set.
    pub lease_secs: Option<u64>,
}

/// Shortest scan lease: renewals every third of it must not be lost in ordinary scheduling
/// delays.
pub const MIN_LEASE_SECS: u64 = 3;
/// Longest scan lease: a dead daemon's scans wait this long to be taken over.
pub const MAX_LEASE_SECS: u64 = 600;

impl StoreConfig {
    /// The scan lease (`lease_secs`, else the store's default).
    pub fn lease(&self) -> std::time::Duration {
        self.lease_secs.map_or(
            toolgate_store::DEFAULT_SCAN_LEASE,
            std::time::Duration::from_secs,
        )
    }

    /// The PostgreSQL URL, when the store is PostgreSQL.
    pub fn postgres_url(&self) -> Option<&str> {
        self.url.as_deref().filter(|url| is_postgres_url(url))
    }
}

/// Whether `url` names a PostgreSQL server.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with the password (if any) replaced by `***`, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            if user_info.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_string(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8888))),
            data_dir: PathBuf::from("./data"),
            plugins_dir: PathBuf::from("target/plugins"),
            log_format: LogFormat::Human,
            sandbox: SandboxSettings::default(),
            tools: bundled_tools(),
            limits: LimitsConfig::default(),
            plugins: RuntimeConfig::default(),
            http: HttpConfig::default(),
            scans: ScansConfig::default(),
            store: StoreConfig::default(),
            tenants: Vec::new(),
            uploads: toolgate_uploads::UploadLimits::default(),
        }
    }
}

/// Operator settings for one tool (`[tools.<name>]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolConfig {
    /// The file executed for this tool; when absent the tool's executable name is looked up in
    /// `sandbox.path`.
    pub binary: Option<PathBuf>,
    /// Overrides the plugin's default timeout (still capped by `sandbox.timeout_secs`).
    pub timeout_secs: Option<u64>,
    /// Environment variables passed to the tool, with the daemon's values, when the plugin also
    /// declares them.
    pub env_passthrough: Vec<String>,
    /// A directory the operator prepared as the tool's `$HOME`, which it may read but not write
    /// (e.g. terrascan's policies from `terrascan init`); when absent the tool gets an empty
    /// private home per job.
    pub home: Option<PathBuf>,
    /// Grants the network to a tool whose plugin asks for it (prowler calls cloud APIs). A
    /// plugin that asks without this grant leaves its tool unavailable; one that does not ask
    /// runs in the empty network namespace whatever this says.
    pub allow_network: bool,
    /// Paths (directories or files) the tool may read and execute besides what the host works
    /// out from its binary (its virtual environment, `#!` interpreter, ELF loader): e.g. data
    /// or plugins its install keeps elsewhere. Read-only; never one holding the daemon's state.
    pub read_paths: Vec<PathBuf>,
    /// Where the embedded default looks for the tool before `sandbox.path` (checkov: the
    /// virtual environment `just serve` installs); never set from a file.
    #[serde(skip)]
    pub default_binary: Option<PathBuf>,
    /// Set for the sections the embedded default supplies (the bundled tools), never from a
    /// file: a missing bundled plugin is then no configuration error.
    #[serde(skip)]
    pub implicit: bool,
}

/// Where `just serve` installs its pinned checkov (a virtual environment under `target/`),
/// relative to the working directory: the embedded default's checkov is looked for there first.
pub const BUNDLED_CHECKOV: &str = "target/venv-checkov/bin/checkov";

/// The tools the embedded default names, so that `just serve` runs them with no file: the
/// plugins this repository builds, each with the one grant its tool needs. A configuration
/// file with a `[tools]` table names its tools itself and gets none of these.
fn bundled_tools() -> BTreeMap<String, ToolConfig> {
    let bundled = |allow_network| ToolConfig {
        allow_network,
        implicit: true,
        ..ToolConfig::default()
    };
    BTreeMap::from([
        ("terrascan".to_string(), bundled(false)),
        ("prowler".to_string(), bundled(true)),
        (
            "checkov".to_string(),
            ToolConfig {
                default_binary: Some(PathBuf::from(BUNDLED_CHECKOV)),
                ..bundled(false)
            },
        ),
    ])
}

/// Admission and retention limits (`[limits]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Jobs running at once.
    pub max_concurrent_jobs: usize,
    /// Jobs waiting for a slot; beyond that requests get 429.
    pub max_queued_jobs: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How many of the newest jobs keep their full stdout/stderr in the database.
    pub job_retention: usize,
    /// Whether a client closing its connection cancels its synchronous job.
    pub cancel_on_disconnect: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_concurrent_jobs: 4,
            max_queued_jobs: 32,
            max_body_bytes: 1024 * 1024,
            job_retention: 1000,
            cancel_on_disconnect: true,
        }
    }
}

/// HTTP server settings (`[http]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// On SIGTERM/SIGINT, how long running jobs may finish before they are cancelled.
    pub shutdown_grace_secs: u64,
    /// Connections open at once (each holds a file descriptor); one more is answered 503.
    pub max_connections: usize,
    /// How long a connection, new or kept alive after an answer, waits for a request to begin.
    pub idle_timeout_secs: u64,
    /// How long a request's head may take to arrive, from its first byte.
    pub header_read_timeout_secs: u64,
    /// How long a request's body may take to arrive, from when the daemon starts reading it.
    pub body_read_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            shutdown_grace_secs: 10,
            max_connections: 512,
            idle_timeout_secs: 5,
            header_read_timeout_secs: 5,
            body_read_timeout_secs: 10,
        }
    }
}

/// The asynchronous scan queue (`[scans]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScansConfig {
    /// Scans run at once by this daemon (each is one job, admitted like any other).
    pub workers: usize,
    /// How many times a scan is started before a daemon dying under it marks it `error`.
    pub max_attempts: u32,
    /// The plugin that runs a scan whose initiate names no `tool` (it must scan templates:
    /// contract 0.2.0 with scan template types). Unset: the first installed tool, by name, whose
    /// plugin scans templates.
    pub default_tool: Option<String>,
    /// The absolute base of the URLs this daemon hands out (upload URLs, list links), e.g.
    /// `https://toolgate.example.com` behind a proxy. Default: `http://<listen>`.
    pub public_base_url: Option<String>,
    /// Finished scans (their record, findings and folder) are deleted this long after they
    /// ended.
    pub retention_days: u64,
    /// Scans never initiated are deleted this long after they were created (their upload URL
    /// expired long before).
    pub abandoned_after_hours: u64,
    /// How often the cleanup task looks for expired scans.
    pub cleanup_interval_secs: u64,
}

/// Most scan workers: each holds a running slot's worth of memory, and more workers than
/// `limits.max_concurrent_jobs` only wait for slots.
pub const MAX_SCAN_WORKERS: usize = 256;

impl Default for ScansConfig {
    fn default() -> Self {
        Self {
            workers: 4,
            max_attempts: 3,
            default_tool: None,
            public_base_url: None,
            retention_days: 30,
            abandoned_after_hours: 24,
            cleanup_interval_secs: 300,
        }
    }
}

impl Config {
    /// Reads, parses, resolves and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_checked(path).and_then(valid)
    }

    /// The embedded default configuration (every key at its default).
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Self::from_toml("")
    }

    /// Parses, resolves relative paths against the working directory, and validates.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cwd = std::env::current_dir().map_err(ConfigError::WorkingDirectory)?;
        Self::from_toml_in(text, &cwd)
    }

    /// Like [`Config::from_toml`] with an explicit base directory for relative paths.
    pub fn from_toml_in(text: &str, base: &Path) -> Result<Self, ConfigError> {
        Self::checked_in(text, base).and_then(valid)
    }

    /// For `config check`: the file's configuration with every key that has a problem at its
    /// default, and those problems, so that what depends on the rest (the host, the plugins)
    /// can be checked in the same run. Fails only when the file cannot be read or parsed.
    pub fn load_checked(path: &Path) -> Result<(Self, Vec<ConfigProblem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cwd = std::env::current_dir().map_err(ConfigError::WorkingDirectory)?;
        Self::checked_in(&text, &cwd)
    }

    fn checked_in(text: &str, base: &Path) -> Result<(Self, Vec<ConfigProblem>), ConfigError> {
        let Parsed {
            mut config,
            mut problems,
            dropped,
        } = parse(text)?;
        config.resolve_paths(base);
        let about_dropped = |key: &str| {
            dropped.iter().any(|gone| {
                key.strip_prefix(gone.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
            })
        };
        problems.extend(
            validate::problems(&config)
                .into_iter()
                .filter(|problem| !about_dropped(&problem.key)),
        );
        Ok((config, problems))
    }

    /// Replaces `listen` (the `--listen` flag) and validates again.
    pub fn override_listen(&mut self, listen: SocketAddr) -> Result<(), ConfigError> {
        self.listen = listen;
        let problems = validate::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.data_dir);
        resolve(&mut self.plugins_dir);
        self.sandbox.resolve_paths(base, &self.data_dir);
        for tenant in &mut self.tenants {
            tenant.allowed_dirs.iter_mut().for_each(resolve);
            resolve(&mut tenant.output_root);
        }
        for tool in self.tools.values_mut() {
            if let Some(binary) = tool.binary.as_mut() {
                resolve(binary);
            }
            if let Some(home) = tool.home.as_mut() {
                resolve(home);
            }
            if let Some(binary) = tool.default_binary.as_mut() {
                resolve(binary);
            }
            tool.read_paths.iter_mut().for_each(resolve);
        }
    }

    /// The validated `[[tenants]]` (empty when none are configured). A loaded configuration
    /// has already passed this check, so an error here means the file was not loaded.
    pub fn tenants(&self) -> Result<toolgate_auth::Tenants, toolgate_auth::TenantsError> {
        toolgate_auth::Tenants::validate(&self.tenants, &validate::global_limits(self))
    }

    /// The key that signs `POST /login`'s tokens (created, mode 0600, on first start).
    pub fn login_key_path(&self) -> PathBuf {
        self.data_dir.join("secrets").join("login-jwt.key")
    }

    /// SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("toolgate.sqlite3")
    }

    /// Compiled-plugin cache directory.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.data_dir.join("cache").join("plugins")
    }

    /// The absolute base of URLs handed out: `scans.public_base_url`, or `http://<listen>`.
    pub fn public_base_url(&self) -> String {
        match &self.scans.public_base_url {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    /// Where the key that signs upload URLs lives (created on first start).
    pub fn upload_key_path(&self) -> PathBuf {
        self.data_dir.join("secrets/upload-url.key")
    }

    /// Root of the scans' folders (`<id>/tree` is a scan's extracted upload).
    pub fn scans_dir(&self) -> PathBuf {
        self.data_dir.join("scans")
    }

    /// This daemon's name on a shared store (`store.daemon_id`, else `<hostname>:<port>`).
    pub fn daemon_id(&self) -> String {
        self.store.daemon_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|name| name.trim().to_string())
                .unwrap_or_else(|_| "toolgate".into());
            format!("{host}:{}", self.listen.port())
        })
    }

    /// Root of the private per-job directories: `<data_dir>/jobs`, or with a shared store
    /// `<data_dir>/jobs/<daemon id>`, so daemons sharing a `data_dir` (and through it the scans'
    /// uploads and the keys) never sweep each other's live job directories at start-up.
    pub fn jobs_dir(&self) -> PathBuf {
        let jobs = self.data_dir.join("jobs");
        match self.store.postgres_url() {
            Some(_) => jobs.join(self.daemon_dir_name()),
            None => jobs,
        }
    }

    /// Root of one tenant's private per-job directories (its own pool, owned by its identity;
    /// per daemon with a shared store, as `jobs_dir`).
    pub fn tenant_jobs_dir(&self, tenant: &str) -> PathBuf {
        let jobs = self.data_dir.join("tenants").join(tenant).join("jobs");
        match self.store.postgres_url() {
            Some(_) => jobs.join(self.daemon_dir_name()),
            None => jobs,
        }
    }

    /// The daemon id as one directory name (anything but `[A-Za-z0-9._-]` becomes `_`).
    fn daemon_dir_name(&self) -> String {
        let name: String = self
            .daemon_id()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.chars().all(|c| c == '.') {
            format!("daemon{name}")
        } else {
            name
        }
    }

    /// The empty directory that is the workspace of a tenant with no `allowed_dirs`: its tools
    /// read nothing of the host's but their own uploads.
    pub fn tenant_empty_workspace(&self, tenant: &str) -> PathBuf {
        self.data_dir.join("tenants").join(tenant).join("workspace")
    }
}

/// The configuration when it has no problem.
fn valid((config, problems): (Config, Vec<ConfigProblem>)) -> Result<Config, ConfigError> {
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid { problems })
    }
}

/// Most schema problems reported for one document; each retry drops one bad key, so this also
/// bounds how often a hostile document can make the parser start over.
const MAX_SCHEMA_PROBLEMS: usize = 64;

/// A document that parsed as TOML, with the schema problems found in it.
struct Parsed {
    /// The configuration with every bad key left at its default.
    config: Config,
    problems: Vec<ConfigProblem>,
    /// Dotted keys dropped because of a problem; semantic checks on them would only repeat it.
    dropped: Vec<String>,
}

/// Deserializes the document. A key that does not fit the schema (unknown, wrong type or value)
/// is reported with its dotted path and source line, dropped, and the rest parsed again, so one
/// run reports every bad key, not just the first.
fn parse(text: &str) -> Result<Parsed, ConfigError> {
    let mut document = toml::de::DeTable::parse(text).map_err(|error| ConfigError::Invalid {
        problems: vec![ConfigProblem::syntax(&error)],
    })?;
    let mut problems = Vec::new();
    let mut dropped = Vec::new();
    loop {
        let deserializer = toml::de::Deserializer::from(document.clone());
        let error = match serde_path_to_error::deserialize::<_, Config>(deserializer) {
            Ok(config) => {
                return Ok(Parsed {
                    config,
                    problems,
                    dropped,
                });
            }
            Err(error) => error,
        };
        let key = error.path().to_string();
        let path: Vec<serde_path_to_error::Segment> = error.path().iter().cloned().collect();
        let mut inner = error.into_inner();
        inner.set_input(Some(text));
        problems.push(ConfigProblem::schema(&key, &inner));
        let removed = remove_key(document.get_mut(), &path);
        if removed.is_none() || problems.len() >= MAX_SCHEMA_PROBLEMS {
            return Err(ConfigError::Invalid { problems });
        }
        dropped.extend(removed);
    }
}

/// Removes the table entry that `path` names or lies inside (an array element takes its whole
/// array with it); returns the dotted key removed, or `None` when the path names no entry.
fn remove_key(
    table: &mut toml::de::DeTable<'_>,
    path: &[serde_path_to_error::Segment],
) -> Option<String> {
    let names: Vec<&str> = path
        .iter()
        .map_while(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    let (last, parents) = names.split_last()?;
    let mut current = table;
    for name in parents {
        match current.get_mut(*name).map(toml::Spanned::get_mut) {
            Some(toml::de::DeValue::Table(child)) => current = child,
            _ => return None,
        }
    }
    current.remove(*last)?;
    Some(names.join("."))
}

#[cfg(test)]
mod tests;
