//! Start-up and shutdown: builds the store, the plugin runtime, the sandbox, the job service and
//! the scan queue from a configuration, serves the API, and shuts down gracefully.
//!
//! Invariants: the listener is bound only after everything else is ready, so a caller that can
//! connect gets answers; the scan queue recovers what a dead daemon left running before its
//! workers start; on SIGTERM/SIGINT running scans are cancelled at once and re-queued (they run
//! after the restart), then the daemon stops accepting, lets running jobs finish
//! for `http.shutdown_grace_secs`, then cancels them (the sandbox kills their process groups)
//! and waits until each one is recorded before exiting, so no tool outlives the daemon. The soft
//! open-file limit is raised to the hard one before anything opens a file, and connections are
//! capped and timed well inside it (`connections`, `waits`), so slow or many clients cannot take
//! the descriptors tool calls need.

mod connections;
mod tenant_sandboxes;
mod waits;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use toolgate_plugin_runtime::{LoadReport, PluginRuntime, RuntimeError};
use toolgate_sandbox::{Sandbox, SandboxError, SandboxPolicy};

use self::connections::ConnectionLimits;
use self::waits::ClientWaits;
use crate::api::auth::AuthState;
use crate::api::{self, ApiSettings, AppState, PluginInfo, SkippedPluginInfo, StartupFacts};
use crate::config::{Config, ConfigError, HttpConfig, tool_problems};
use crate::jobs::{JobLimits, JobService, ToolCatalog, probe_tools};
use crate::metrics::Metrics;
use toolgate_store::{PgStore, SqliteStore, Store, StoreError};

use crate::scans::{JobScanExecutor, ScanError, ScanService, ScanSettings};

/// How long connections may stay open once every job has ended during shutdown: enough to
/// write the last answers, short enough that an idle or stalled client cannot hold the daemon.
const CONNECTION_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why the daemon could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigError),
    #[error("cannot open the job database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot use the PostgreSQL store {url} (store.url): {source}")]
    Postgres { url: String, source: StoreError },
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("cannot recover the scan queue: {0}")]
    Scans(#[from] ScanError),
    #[error("invalid [[tenants]]:\n{0}")]
    Tenants(#[from] toolgate_auth::TenantsError),
    #[error("refusing to start: {0}")]
    Listen(#[from] toolgate_auth::ListenError),
    #[error("cannot load the login token key: {0}")]
    LoginKey(#[from] toolgate_auth::TokenSignerError),
    #[error("cannot set up authentication: {0}")]
    Auth(#[from] crate::api::auth::AuthSetupError),
    #[error("cannot load or create the upload URL key: {0}")]
    UploadKey(#[from] toolgate_uploads::SignerError),
    #[error("cannot set up the sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("cannot set up a tenant's sandbox: {0}")]
    TenantSandbox(#[from] tenant_sandboxes::TenantSandboxError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
}

/// Where compiled plugins are cached while loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginCache {
    /// `<data_dir>/cache/plugins` (serve and the `plugin` commands).
    DataDir,
    /// Nowhere: compile in memory (`config check` writes nothing).
    None,
}

/// Loads the plugins of `config` and checks the `[tools.<name>]` sections against them (shared
/// by `serve`, `config check` and the `plugin` commands, so they accept the same files).
pub fn load_plugins(
    config: &Config,
    cache: PluginCache,
) -> Result<(PluginRuntime, LoadReport), DaemonError> {
    let cache_dir = (cache == PluginCache::DataDir).then(|| config.plugin_cache_dir());
    let mut runtime = PluginRuntime::new(config.plugins.clone(), cache_dir)?;
    let report = runtime.load_dir(&config.plugins_dir);
    for skipped in &report.skipped {
        tracing::warn!(path = %skipped.path.display(), reason = %skipped.reason, "plugin skipped");
    }
    let problems = tool_problems(config, &runtime.tools(), report.skipped.len());
    if !problems.is_empty() {
        return Err(ConfigError::Invalid { problems }.into());
    }
    Ok((runtime, report))
}

/// Builds the sandbox of `config`.
pub fn build_sandbox(config: &Config) -> Result<Sandbox, SandboxError> {
    Sandbox::new(sandbox_policy(config))
}

/// The sandbox policy of `config`: what `build_sandbox` builds, and `plugin dry-run` checks
/// plans against.
pub fn sandbox_policy(config: &Config) -> SandboxPolicy {
    config.sandbox.policy(config.jobs_dir())
}

/// What start-up builds before the API is assembled.
struct Parts {
    started: Instant,
    store: Arc<dyn Store>,
    /// Whether other daemons share the store (PostgreSQL): scans they leave are taken over.
    shared_store: bool,
    plugins: PluginRuntime,
    report: LoadReport,
    jail: Arc<Sandbox>,
    /// Each tenant's sandbox, scoped to its directories and identity.
    tenant_jails: std::collections::HashMap<String, Arc<Sandbox>>,
    catalog: ToolCatalog,
}

/// Everything the API needs, built from a configuration, without the start-up probe (tests
/// and benchmarks; `serve` uses [`build_probed_state`]).
pub fn build_state(config: &Config) -> Result<AppState, DaemonError> {
    let (store, interrupted) =
        SqliteStore::open(&config.database_path(), config.limits.job_retention)?;
    let parts = prepare(config, Arc::new(store), interrupted, false)?;
    assemble(parts, config)
}

/// Opens the configured store: PostgreSQL when `store.url` names one (shared with other
/// daemons), else the embedded SQLite database. Returns it, how many of this daemon's jobs a
/// previous run left unfinished (now interrupted), and whether it is shared.
pub async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, usize, bool), DaemonError> {
    match config.store.postgres_url() {
        Some(url) => {
            let daemon = config.daemon_id();
            let (store, interrupted) = PgStore::connect(url, &daemon, config.limits.job_retention)
                .await
                .map_err(|source| DaemonError::Postgres {
                    url: crate::config::redacted_url(url),
                    source,
                })?;
            let store = store.with_scan_lease(config.store.lease());
            tracing::info!(
                store = %crate::config::redacted_url(url),
                daemon = %daemon,
                "store: PostgreSQL, shared with the daemons that name it"
            );
            Ok((Arc::new(store), interrupted, true))
        }
        None => {
            let (store, interrupted) =
                SqliteStore::open(&config.database_path(), config.limits.job_retention)?;
            Ok((Arc::new(store), interrupted, false))
        }
    }
}

/// [`build_state`], after every tool whose plugin names a version command was run once with it
/// under the sandbox: a tool that cannot start is unavailable before the first call.
pub async fn build_probed_state(config: &Config) -> Result<AppState, DaemonError> {
    let (store, interrupted, shared) = open_store(config).await?;
    let mut parts = prepare(config, store, interrupted, shared)?;
    probe_tools(&mut parts.catalog, &parts.jail).await;
    assemble(parts, config)
}

fn prepare(
    config: &Config,
    store: Arc<dyn Store>,
    interrupted: usize,
    shared_store: bool,
) -> Result<Parts, DaemonError> {
    let started = Instant::now();
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "jobs left queued or running by a previous daemon were marked interrupted"
        );
    }
    let (plugins, report) = load_plugins(config, PluginCache::DataDir)?;
    let jail = build_sandbox(config)?;
    match jail.remove_leftover_private_dirs() {
        Ok(0) => {}
        Ok(removed) => tracing::info!(
            removed,
            "removed private job directories an earlier daemon left behind"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot remove private job directories an earlier daemon left behind")
        }
    }
    let tenant_jails = tenant_sandboxes::build(config, &config.tenants()?, &jail)?;
    let catalog = ToolCatalog::build(plugins.tools(), config, |name| std::env::var(name).ok());
    Ok(Parts {
        started,
        store,
        shared_store,
        plugins,
        report,
        jail: Arc::new(jail),
        tenant_jails,
        catalog,
    })
}

fn assemble(parts: Parts, config: &Config) -> Result<AppState, DaemonError> {
    let Parts {
        started,
        store,
        shared_store,
        plugins,
        report,
        jail,
        mut tenant_jails,
        catalog,
    } = parts;
    for entry in catalog.iter() {
        let granted: Vec<String> = entry
            .reads
            .granted
            .iter()
            .map(|grant| grant.path.display().to_string())
            .collect();
        match &entry.binary {
            Ok(binary) => {
                tracing::info!(tool = %entry.description.name, binary = %binary.display(), timeout_secs = entry.timeout.as_secs(), read_paths = ?granted, "tool ready")
            }
            Err(reason) => {
                tracing::warn!(tool = %entry.description.name, %reason, "tool unavailable")
            }
        }
    }
    let facts = StartupFacts {
        started,
        plugins: catalog
            .iter()
            .map(|entry| PluginInfo {
                name: entry.description.name.clone(),
                version: entry.description.version.clone(),
            })
            .collect(),
        skipped_plugins: report
            .skipped
            .iter()
            .map(|skipped| SkippedPluginInfo {
                path: skipped.path.display().to_string(),
                reason: skipped.reason.clone(),
            })
            .collect(),
        sandbox: serde_json::to_value(jail.capabilities()).unwrap_or_default(),
        store_backend: if shared_store { "postgresql" } else { "sqlite" },
    };
    let metrics = Arc::new(Metrics::new());
    let jobs = JobService::new(
        Arc::new(plugins),
        jail,
        Arc::clone(&store) as Arc<dyn toolgate_store::JobStore>,
        Arc::clone(&metrics),
        Arc::new(catalog),
        JobLimits {
            max_concurrent_jobs: config.limits.max_concurrent_jobs,
            max_queued_jobs: config.limits.max_queued_jobs,
        },
        tenant_rules(&config.tenants()?, &mut tenant_jails, shared_store),
    );
    let audit =
        crate::audit::AuditTrail::new(Arc::clone(&store) as Arc<dyn toolgate_store::AuditStore>);
    let shared_rates =
        shared_store.then(|| Arc::clone(&store) as Arc<dyn toolgate_store::RateStore>);
    let scans = ScanService::new(
        store as Arc<dyn toolgate_store::ScanStore>,
        Arc::new(JobScanExecutor::new(jobs.clone())),
        ScanSettings {
            workers: config.scans.workers,
            max_attempts: config.scans.max_attempts,
            shared_store,
            lease: config.store.lease(),
        },
        config.scans_dir(),
    )
    .with_tenant_queues(
        config
            .tenants()?
            .iter()
            .filter_map(|tenant| {
                let max = tenant.quotas.max_queued_scans?;
                Some((tenant.id.to_string(), max.get()))
            })
            .collect(),
    );
    let iac = crate::api::IacSettings {
        default_tool: config.scans.default_tool.clone(),
        public_base_url: config.public_base_url(),
        uploads: config.uploads.clone(),
        signer: toolgate_uploads::UploadSigner::load_or_create(&config.upload_key_path())?,
    };
    let auth = build_auth(config, shared_rates)?;
    Ok(AppState {
        auth: Arc::new(auth),
        audit,
        jobs,
        scans,
        iac: Arc::new(iac),
        metrics,
        facts: Arc::new(facts),
        settings: ApiSettings {
            cancel_on_disconnect: config.limits.cancel_on_disconnect,
            max_body_bytes: config.limits.max_body_bytes,
        },
    })
}

/// Who may call: the implicit tenant without `[[tenants]]`; otherwise the tenants' keys and
/// login tokens signed with the key at `<data_dir>/secrets/login-jwt.key` (created on first
/// start); on a store several daemons share, tenants' request rates are counted there too.
fn build_auth(
    config: &Config,
    shared_rates: Option<Arc<dyn toolgate_store::RateStore>>,
) -> Result<AuthState, DaemonError> {
    let tenants = config.tenants()?;
    if tenants.is_empty() {
        return Ok(AuthState::implicit()?);
    }
    let signer = toolgate_auth::TokenSigner::load_or_create(&config.login_key_path())?;
    tracing::info!(
        tenants = tenants.len(),
        "authentication on: every route but /health, /login and signed uploads needs a credential"
    );
    Ok(AuthState::for_tenants(tenants, signer, shared_rates)?)
}

/// Each tenant's rules for its jobs: its tools, its running limit, its scoped sandbox (taken
/// from `jails`) and its per-tool limits.
fn tenant_rules(
    tenants: &toolgate_auth::Tenants,
    jails: &mut std::collections::HashMap<String, Arc<Sandbox>>,
    shared_store: bool,
) -> std::collections::HashMap<String, crate::jobs::TenantRules> {
    tenants
        .iter()
        .filter_map(|tenant| {
            let id = tenant.id.to_string();
            let sandbox = jails.remove(&id)?;
            let slots = tenant
                .quotas
                .max_concurrent_jobs
                .and_then(|max| usize::try_from(max.get()).ok())
                .map(|max| Arc::new(tokio::sync::Semaphore::new(max)));
            let rules = crate::jobs::TenantRules {
                tools: tenant.allowed_tools.clone(),
                slots,
                max_across_daemons: tenant
                    .quotas
                    .max_concurrent_jobs
                    .filter(|_| shared_store)
                    .map(std::num::NonZeroU32::get),
                sandbox,
                tool_limits: tenant.tool_limits.clone(),
            };
            Some((id, rules))
        })
        .collect()
}

/// Serves the API until SIGTERM/SIGINT, then shuts down gracefully.
pub async fn serve(config: Config) -> Result<(), DaemonError> {
    if let Some(open_files) = raise_open_file_limit() {
        warn_if_connections_crowd_descriptors(&config.http, open_files);
    }
    // Without tenants there is no authentication: loopback only (the configuration checks it
    // too; this is the last word before binding).
    toolgate_auth::check_listen(config.listen, &config.tenants()?)?;
    let state = build_probed_state(&config).await?;
    let jobs = state.jobs.clone();
    jobs.enable_reload(config.clone());
    let scans = state.scans.clone();
    // Recovery first: scans a dead daemon left running are re-queued (or end in error) before
    // any worker claims one.
    scans.start().await?;
    let cleanup_stop = CancellationToken::new();
    let cleanup = tokio::spawn(crate::scans::cleanup::run(
        scans.clone(),
        scan_retention(&config),
        cleanup_stop.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(DaemonError::Serve)?;
    tracing::info!(listen = %local, tools = jobs.catalog().len(), "toolgate ready");
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(wait_for_signal(shutdown_signals()?, shutdown.clone()));
    let reloads = tokio::spawn(reload_on_sighup(
        signal(SignalKind::hangup()).map_err(DaemonError::Signal)?,
        jobs.clone(),
    ));
    let grace = Duration::from_secs(config.http.shutdown_grace_secs);
    let drained = CancellationToken::new();
    let drain = {
        let (shutdown, drained) = (shutdown.clone(), drained.clone());
        async move {
            shutdown.cancelled().await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: no new connections; waiting for running jobs"
            );
            // Scans first: their jobs are cancelled and the scans re-queued at once (they run
            // again after the restart), rather than holding the shutdown for the grace period.
            scans.shutdown().await;
            jobs.drain(grace).await;
            drained.cancel();
        }
    };
    let server = connections::serve(
        listener,
        // MCP sessions (and their SSE streams) end once every job is recorded, not before.
        api::app(state, drained.child_token()),
        connection_limits(&config.http),
        shutdown.clone(),
    );
    let stop_drain_on_server_exit = shutdown.clone();
    let serving = async move {
        // Every job is recorded and its caller answered once the drain ends; a connection still
        // open after that (a client that never finishes sending its request) does not hold the
        // daemon beyond CONNECTION_CLOSE_GRACE.
        tokio::select! {
            () = server => {}
            () = async {
                drained.cancelled().await;
                tokio::time::sleep(CONNECTION_CLOSE_GRACE).await;
            } => {
                tracing::warn!(
                    grace_secs = CONNECTION_CLOSE_GRACE.as_secs(),
                    "connections still open after every job ended; closing them"
                );
            }
        }
        stop_drain_on_server_exit.cancel();
    };
    tokio::join!(serving, drain);
    cleanup_stop.cancel();
    let _ = cleanup.await;
    signals.abort();
    reloads.abort();
    tracing::info!("toolgate stopped");
    Ok(())
}

/// The `[scans]` retention times.
fn scan_retention(config: &Config) -> crate::scans::cleanup::Retention {
    const DAY_SECS: u64 = 24 * 3_600;
    crate::scans::cleanup::Retention {
        finished: Duration::from_secs(config.scans.retention_days.saturating_mul(DAY_SECS)),
        abandoned: Duration::from_secs(config.scans.abandoned_after_hours.saturating_mul(3_600)),
        interval: Duration::from_secs(config.scans.cleanup_interval_secs),
    }
}

/// The `[http]` bounds on connections.
fn connection_limits(http: &HttpConfig) -> ConnectionLimits {
    ConnectionLimits {
        max_connections: http.max_connections,
        waits: ClientWaits {
            idle: Duration::from_secs(http.idle_timeout_secs),
            header_read: Duration::from_secs(http.header_read_timeout_secs),
            body_read: Duration::from_secs(http.body_read_timeout_secs),
        },
    }
}

/// Where Linux keeps the most descriptors a process may have, the ceiling of an unlimited hard
/// `RLIMIT_NOFILE`.
const NR_OPEN_PATH: &str = "/proc/sys/fs/nr_open";

/// Raises the soft open-file limit to the hard one and logs both: connections, tools' pipes
/// and pidfds, the store and the plugins all draw on it, and the common soft default (1,024) is
/// far below what a busy daemon holds. Returns the soft limit now in force, `None` when it
/// cannot be read.
fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    // An unlimited hard limit cannot be the soft one: the kernel caps both at fs.nr_open.
    let target = if hard == libc::RLIM_INFINITY {
        std::fs::read_to_string(NR_OPEN_PATH)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .unwrap_or(soft)
    } else {
        hard
    };
    if target <= soft {
        tracing::info!(
            soft,
            hard,
            "open-file limit (RLIMIT_NOFILE) already at its maximum"
        );
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => {
            tracing::info!(
                soft = target,
                hard,
                previous_soft = soft,
                "raised the soft open-file limit (RLIMIT_NOFILE) to the hard limit"
            );
            Some(target)
        }
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the soft open-file limit (RLIMIT_NOFILE)");
            Some(soft)
        }
    }
}

/// Warns when `http.max_connections` would leave less than half the open-file limit for what
/// is not a connection: then descriptors, not the cap, would stop callers first.
fn warn_if_connections_crowd_descriptors(http: &HttpConfig, open_files: u64) {
    let connections = u64::try_from(http.max_connections).unwrap_or(u64::MAX);
    if connections.saturating_mul(2) > open_files {
        tracing::warn!(
            max_connections = http.max_connections,
            open_files,
            "http.max_connections is more than half the open-file limit: tool calls may run out \
             of descriptors before connections are refused; lower it or raise the limit"
        );
    }
}

/// SIGTERM and SIGINT streams, installed before serving so a failure stops start-up.
fn shutdown_signals() -> Result<(Signal, Signal), DaemonError> {
    let terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    Ok((terminate, interrupt))
}

/// Reloads the plugin directory on every SIGHUP (the result is logged; `POST
/// /admin/plugins/reload` answers it instead).
async fn reload_on_sighup(mut hangup: Signal, jobs: JobService) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading plugins");
        if let Err(error) = jobs.reload_plugins().await {
            tracing::error!(%error, "plugin reload failed; the previous plugins keep serving");
        }
    }
}

async fn wait_for_signal(
    (mut terminate, mut interrupt): (Signal, Signal),
    shutdown: CancellationToken,
) {
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}
