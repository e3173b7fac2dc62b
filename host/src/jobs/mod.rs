//! Jobs: every tool call is a job with a uuid that is planned, admitted, run in the sandbox,
//! parsed by its plugin and recorded. A job's input is either a synchronous call's parameters
//! (planned by the plugin's `plan`) or a scan of a directory (`plan-scan`, with that directory
//! as the job's only input root); both then take the same path.
//!
//! Invariants: a job is recorded (queued) before it can run and recorded again when it ends,
//! whatever the ending (exit, timeout, cancel, a sandbox or daemon failure); the job runs in its
//! own task so a caller that goes away can cancel it but never abandons it half-recorded; every
//! admitted job is in the registry (cancellable) and in the task tracker (awaited at shutdown),
//! and none is admitted once the drain has begun; plugin `parse` runs on a blocking thread
//! because big reports take a while; a job started with its run's audit record
//! ([`JobService::start_audited`]) queues that record with its end when it ends with an answer,
//! so the two are one commit, and its caller gets the answer once both are stored.

mod admission;
mod catalog;
mod error;
mod fair_slots;
mod id;
mod output_files;
mod plan;
mod plugin_set;
mod probe;
mod redact;
mod registry;
pub mod reload;
mod report;
mod scan_tool;
mod tenant_rules;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use toolgate_plugin_runtime::{Outcome, ParseResult, PluginRuntime};
use toolgate_sandbox::{RunResult, RunSpec, Sandbox};

pub use admission::Admission;
pub use catalog::{ToolCatalog, ToolEntry};
pub use error::JobError;
pub use id::new_job_id;
pub use plan::{DryRunJob, PlannedJob, dry_run_job, map_arg, plan_job, plan_scan_job};
pub use plugin_set::{PluginSet, PluginSets};
pub use probe::{PROBE_TIMEOUT, Probe, cannot_start, probe_tools};
pub use registry::{ActiveJobInfo, JobRegistry};
pub use report::{
    FindingSummary, JobStatusSchema, KILLED_RETURN_CODE, ToolRunResponse, run_outcome,
};
pub use tenant_rules::TenantRules;

use toolgate_model::{FinishedJob, JobFilter, JobRecord, JobStatus, NewJob, ScanId, ScanRequest};
use toolgate_store::JobStore;

use crate::api::auth::Caller;
use crate::audit::{AuditEvent, AuditTrail};
use crate::metrics::{Metrics, Rejection};
use redact::Redactor;
use report::{Ending, classification_name};

/// How often a job limited across daemons asks the store whether its tenant has room: a job
/// elsewhere ending frees it, which this daemon learns only by asking.
const TENANT_ROOM_POLL: Duration = Duration::from_millis(200);

/// Largest tool output (stdout, stderr and files) parsed on the async worker itself: parse runs
/// at roughly 100 bytes/µs, so this holds a worker for at most about a third of a millisecond.
const INLINE_PARSE_MAX_BYTES: usize = 32 << 10;

/// How often a daemon sharing its store looks for cancels other daemons kept on its jobs (the
/// fallback for a notification that did not arrive): one indexed query, cheap at this rate,
/// and a lost notification's cancel still lands within a couple of seconds.
const CANCEL_SWEEP: Duration = Duration::from_secs(2);

/// How often a job's end is written again while the store does not take it (a database
/// restarting, a network cut): often enough that the history catches up within a second of
/// the store's return, rarely enough to cost nothing while it is away.
const RECORD_RETRY_EVERY: Duration = Duration::from_secs(1);

/// How long a job's end is retried before the daemon gives up on it (it is then marked
/// `interrupted` when its daemon restarts, or by another daemon once its heartbeat lapses):
/// longer than a database restart or a failover takes.
const RECORD_RETRY_FOR: Duration = Duration::from_secs(600);

fn outcome_size(outcome: &Outcome) -> usize {
    outcome.stdout.len()
        + outcome.stderr.len()
        + outcome
            .files
            .iter()
            .map(|file| file.content.len())
            .sum::<usize>()
}

/// A stream's bytes as text for the response and the record: valid UTF-8 (what tools print)
/// is taken as it is, without a copy; anything else is read lossily.
fn into_text(bytes: Vec<u8>) -> Arc<String> {
    match String::from_utf8(bytes) {
        Ok(text) => Arc::new(text),
        Err(invalid) => Arc::new(String::from_utf8_lossy(invalid.as_bytes()).into_owned()),
    }
}

/// What became of a cancel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// The job is being cancelled (here, or by the daemon running it).
    Requested,
    /// The job had already ended.
    Ended(JobStatus),
    /// No such job of this owner.
    NotFound,
}

/// Limits that shape job admission.
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    pub max_concurrent_jobs: usize,
    pub max_queued_jobs: usize,
}

/// Runs and tracks jobs; cheap to clone.
#[derive(Clone)]
pub struct JobService {
    inner: Arc<Inner>,
}

struct Inner {
    /// The plugins and their catalog, swapped together by a reload.
    plugins: PluginSets,
    /// What a reload reads (the configuration); `None` until `enable_reload`.
    reload_source: std::sync::OnceLock<reload::ReloadSource>,
    /// One reload at a time: two at once could each keep a plugin the other replaced.
    reloading: tokio::sync::Mutex<()>,
    jail: Arc<Sandbox>,
    store: Arc<dyn JobStore>,
    metrics: Arc<Metrics>,
    registry: JobRegistry,
    admission: Admission,
    limits: JobLimits,
    tracker: TaskTracker,
    /// Each configured tenant's tools, running limit, sandbox and per-tool limits; an owner
    /// absent from it (the implicit loopback tenant) may run every tool in `jail`.
    tenants: HashMap<String, TenantRules>,
    /// Set by `drain`. `start` holds it for reading from its check until the job's task is in
    /// the tracker, so `drain` cannot find the tracker empty in between and leave that job
    /// unawaited (and its tool unkilled) at shutdown.
    closing: RwLock<bool>,
}

/// A running job's slots: the global one, and its tenant's when the tenant has a limit.
type RunSlots = (fair_slots::Slot, Option<tokio::sync::OwnedSemaphorePermit>);

/// What a job runs on.
#[derive(Debug, Clone)]
pub enum JobInput {
    /// A synchronous tool call's parameters (HexStrike JSON), planned by the plugin's `plan`.
    Params(serde_json::Value),
    /// A scan of a directory, planned by the plugin's `plan-scan` (contract 0.2.0).
    Scan(ScanInput),
}

/// A scan's job input.
#[derive(Debug, Clone)]
pub struct ScanInput {
    pub scan_id: ScanId,
    pub request: ScanRequest,
    /// The scan's extracted upload: the job's workspace and only input root.
    pub tree: PathBuf,
}

/// A job that was admitted and is queued or running in its own task.
pub struct StartedJob {
    /// The job's id (its record's key), known from admission on.
    pub id: String,
    /// The argv the host runs (for the audit trail).
    pub argv: Vec<String>,
    /// For a scan: the parts of its request the tool does not apply.
    pub not_applied: Vec<String>,
    /// Cancels this job (used by the disconnect guard).
    pub cancel: CancellationToken,
    task: JoinHandle<Result<ToolRunResponse, JobError>>,
}

/// A synchronous run's audit record, which the job writes with its end
/// ([`JobService::start_audited`]).
pub struct RunAudit {
    pub trail: AuditTrail,
    /// Who asked for the run.
    pub caller: Caller,
}

/// A [`RunAudit`] with what the record says besides the run's outcome.
struct AuditOnEnd {
    run: RunAudit,
    tool: String,
    argv: Vec<String>,
}

impl AuditOnEnd {
    /// The record of a run that ended with `answer`.
    fn event(&self, answer: &ToolRunResponse) -> AuditEvent {
        AuditEvent::allowed(toolgate_auth::audit::Action::Run, run_outcome(answer))
            .tool(&self.tool)
            .argv(self.argv.clone())
    }
}

impl StartedJob {
    /// Waits for the job to end and be recorded.
    pub async fn outcome(self) -> Result<ToolRunResponse, JobError> {
        self.task.await?
    }
}

/// The owner and tool of a job and the runtime that planned it (and so parses its output).
struct ParsingPlugin<'a> {
    owner: &'a str,
    tool: &'a str,
    plugins: &'a Arc<PluginRuntime>,
}

/// Everything the job task needs, moved into it.
struct JobRun {
    id: String,
    /// The tenant that owns the job (for the logs).
    owner: String,
    /// Its tenant's running limit across daemons, when the store keeps it.
    across_daemons: Option<u32>,
    /// The owner's sandbox: its directories, identity and private directories.
    jail: Arc<Sandbox>,
    /// The runtime that planned the job parses its output, even after a reload.
    plugins: Arc<PluginRuntime>,
    tool: String,
    planned: PlannedJob,
    spec: RunSpec,
    /// The secrets of `spec.env`, redacted from the tool's output.
    redactor: Arc<Redactor>,
    /// The run's audit record, written with the job's end when it ends with an answer.
    audit: Option<AuditOnEnd>,
}

impl JobService {
    pub fn new(
        plugins: Arc<PluginRuntime>,
        jail: Arc<Sandbox>,
        store: Arc<dyn JobStore>,
        metrics: Arc<Metrics>,
        catalog: Arc<ToolCatalog>,
        limits: JobLimits,
        tenants: HashMap<String, TenantRules>,
    ) -> Self {
        let cancel_requests = store.cancel_requests();
        let service = Self {
            inner: Arc::new(Inner {
                plugins: PluginSets::new(PluginSet::single(plugins, catalog)),
                reload_source: std::sync::OnceLock::new(),
                reloading: tokio::sync::Mutex::new(()),
                jail,
                store,
                metrics,
                registry: JobRegistry::default(),
                admission: Admission::new(limits.max_concurrent_jobs, limits.max_queued_jobs),
                limits,
                tracker: TaskTracker::new(),
                tenants,
                closing: RwLock::new(false),
            }),
        };
        if let Some(requests) = cancel_requests {
            tokio::spawn(relay_cancels(Arc::downgrade(&service.inner), requests));
        }
        service
    }

    /// Refuses a scan request its tool cannot run (unknown, not a template scanner, not this
    /// template type, not installed), naming the field.
    pub fn check_scan_tool(
        &self,
        request: &toolgate_model::ScanRequest,
    ) -> Result<(), toolgate_model::InvalidValue> {
        scan_tool::check_scan_tool(&self.catalog(), request)
    }

    /// The tool a scan runs when its initiate names none and `scans.default_tool` is unset: the
    /// first installed tool, by name, whose plugin scans templates (else the first such tool,
    /// so the refusal names it and what to install).
    pub fn default_scan_tool(&self) -> Option<String> {
        let catalog = self.catalog();
        let scanners = || {
            catalog
                .iter()
                .filter(|entry| !entry.description.scan_template_types.is_empty())
        };
        scanners()
            .find(|entry| entry.is_available())
            .or_else(|| scanners().next())
            .map(|entry| entry.description.name.clone())
    }

    /// The plugin version of a loaded tool.
    pub fn tool_version(&self, tool: &str) -> Option<String> {
        self.catalog()
            .get(tool)
            .map(|entry| entry.description.version.clone())
    }

    /// The catalog in force now (a reload may replace it).
    pub fn catalog(&self) -> Arc<ToolCatalog> {
        Arc::clone(self.inner.plugins.current().catalog())
    }

    /// The plugin set in force now.
    pub fn plugin_set(&self) -> Arc<PluginSet> {
        self.inner.plugins.current()
    }

    /// Changes whenever a reload puts a new plugin set in force (its generation number): the
    /// MCP server tells its sessions that the tool list changed.
    pub fn plugin_generation(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.plugins.subscribe()
    }

    /// One of `owner`'s jobs from the history, with its output unless retention dropped it;
    /// another tenant's job is `None`, exactly as a job that does not exist.
    pub async fn job(&self, id: &str, owner: &str) -> Result<Option<JobRecord>, JobError> {
        let record = self.inner.store.job(id.to_string()).await?;
        Ok(record.filter(|job| job.tenant == owner))
    }

    /// `owner`'s jobs from the history, newest first, without output (the filter's tenant is
    /// replaced by `owner`).
    pub async fn list_jobs(
        &self,
        mut filter: JobFilter,
        owner: &str,
    ) -> Result<Vec<JobRecord>, JobError> {
        filter.tenant = Some(owner.to_string());
        Ok(self.inner.store.list_jobs(filter).await?)
    }

    /// The directories `owner`'s jobs may read, canonical, the workspace first: its tenant's
    /// `allowed_dirs` (or its empty workspace), else `sandbox.allowed_dirs`.
    pub fn read_dirs(&self, owner: &str) -> Vec<PathBuf> {
        let jail = self
            .inner
            .tenants
            .get(owner)
            .map_or(&self.inner.jail, |rules| &rules.sandbox);
        jail.policy().allowed_dirs.clone()
    }

    /// Whether the store answers a one-row read within `within` (for `/health`; a shared
    /// PostgreSQL may be down while the daemon runs).
    pub async fn store_reachable(&self, within: Duration) -> bool {
        let probe = self.inner.store.list_jobs(JobFilter {
            limit: 1,
            ..JobFilter::default()
        });
        matches!(tokio::time::timeout(within, probe).await, Ok(Ok(_)))
    }

    /// `owner`'s live (queued or running) jobs.
    pub fn live_jobs(&self, owner: &str) -> Vec<ActiveJobInfo> {
        let mut jobs = self.inner.registry.list();
        jobs.retain(|job| job.owner == owner);
        jobs
    }

    /// Plans, checks and admits a job (a tool call, or a scan of a directory), then runs it in
    /// its own task. Both kinds take the same path: plan -> host checks -> sandbox -> parse.
    /// The job belongs to `owner`, which must be allowed the tool (another tenant's tool is
    /// unknown to it, as a tool that does not exist).
    pub async fn start(
        &self,
        tool: &str,
        input: JobInput,
        owner: &str,
    ) -> Result<StartedJob, JobError> {
        self.start_with(tool, input, owner, None).await
    }

    /// [`JobService::start`] of a run whose audit record `audit` the job writes when it ends
    /// with an answer: queued together with the job's end (`AuditTrail::record_after`), so the
    /// caller waits for one commit, not for the end's and then the record's.
    /// When [`StartedJob::outcome`] is an answer, the record was written (or logged as lost,
    /// as `AuditTrail::record` does); when it is an error, the record is the caller's to make.
    pub async fn start_audited(
        &self,
        tool: &str,
        input: JobInput,
        owner: &str,
        audit: RunAudit,
    ) -> Result<StartedJob, JobError> {
        self.start_with(tool, input, owner, Some(audit)).await
    }

    async fn start_with(
        &self,
        tool: &str,
        input: JobInput,
        owner: &str,
        audit: Option<RunAudit>,
    ) -> Result<StartedJob, JobError> {
        let inner = &self.inner;
        let refused = |reason: Rejection, error: JobError| {
            inner.metrics.record_rejection(reason);
            error
        };
        // Held until the job's task is tracked; nothing below awaits.
        let closing = inner.closing.read().unwrap_or_else(PoisonError::into_inner);
        if *closing {
            return Err(refused(Rejection::ShuttingDown, JobError::ShuttingDown));
        }
        let rules = inner.tenants.get(owner);
        let allowed = rules.is_none_or(|rules| rules.tools.contains(tool));
        let jail = rules.map_or(&inner.jail, |rules| &rules.sandbox);
        let set = inner.plugins.current();
        let (Some(entry), Some(plugins)) = (
            set.catalog().get(tool).filter(|_| allowed),
            set.runtime(tool),
        ) else {
            return Err(refused(
                Rejection::UnknownTool,
                JobError::UnknownTool {
                    tool: tool.chars().take(64).collect(),
                },
            ));
        };
        let id = new_job_id();
        let (planned, params) = match input {
            JobInput::Params(params) => (
                plan_job(
                    plugins,
                    jail,
                    &inner.metrics,
                    entry,
                    &id,
                    &params.to_string(),
                ),
                params,
            ),
            JobInput::Scan(scan) => (
                plan_scan_job(
                    plugins,
                    jail,
                    &inner.metrics,
                    entry,
                    &id,
                    &scan.request,
                    &scan.tree,
                ),
                // The job's record shows what was asked: the scan and its request.
                serde_json::json!({ "scan_id": scan.scan_id, "request": scan.request }),
            ),
        };
        let mut planned = planned.map_err(|error| match error {
            JobError::InvalidParams { .. } => refused(Rejection::InvalidParams, error),
            JobError::PlanRejected { .. } => refused(Rejection::PlanRejected, error),
            other => other,
        })?;
        // Validation comes first, so a caller learns about bad parameters even while the
        // tool is not installed; only a valid plan is told to install the binary.
        let binary = match &entry.binary {
            Ok(binary) => binary.clone(),
            Err(reason) => {
                planned.prepared.discard();
                return Err(refused(
                    Rejection::BinaryMissing,
                    JobError::BinaryMissing {
                        tool: tool.to_string(),
                        reason: reason.clone(),
                    },
                ));
            }
        };
        let Some(ticket) = inner.admission.try_admit() else {
            planned.prepared.discard();
            return Err(refused(
                Rejection::QueueFull,
                JobError::QueueFull {
                    running: inner.limits.max_concurrent_jobs,
                    queued: inner.limits.max_queued_jobs,
                },
            ));
        };
        // Only an admitted job gets directories: a refused call leaves none behind.
        if let Err(error) = planned.provide_dirs(jail) {
            planned.prepared.discard();
            return Err(refused(Rejection::PlanRejected, error));
        }
        let created_at = crate::time::now_rfc3339();
        // A job that can start at once is recorded as running straight away (one write).
        let tenant_slots = rules.and_then(|rules| rules.slots.clone());
        let across_daemons = rules.and_then(|rules| rules.max_across_daemons);
        let free_slot = match &tenant_slots {
            // The store decides when a job limited across daemons starts (`run`).
            _ if across_daemons.is_some() => None,
            None => ticket.try_run_slot(owner).map(|slot| (slot, None)),
            Some(tenant) => Arc::clone(tenant)
                .try_acquire_owned()
                .ok()
                .and_then(|own| ticket.try_run_slot(owner).map(|slot| (slot, Some(own)))),
        };
        let (timeout, run_limits) = match rules {
            Some(rules) => rules.limits_for(tool, entry.timeout),
            None => (entry.timeout, toolgate_sandbox::RunLimits::default()),
        };
        let started_at = free_slot.as_ref().map(|_| created_at.clone());
        let record = NewJob {
            id: id.clone(),
            tool: tool.to_string(),
            params,
            argv: planned.argv.clone(),
            command: planned.command.clone(),
            output_dir: planned
                .output_directory
                .as_ref()
                .map(|dir| dir.display().to_string()),
            created_at: created_at.clone(),
            tenant: owner.to_string(),
        };
        let not_applied = std::mem::take(&mut planned.not_applied);
        let record_argv = planned.argv.clone();
        let cancel = CancellationToken::new();
        let registration = inner.registry.register(
            &id,
            owner,
            tool,
            &planned.command,
            &created_at,
            cancel.clone(),
        );
        inner.metrics.job_queued();
        let run = JobRun {
            id: id.clone(),
            owner: owner.to_string(),
            across_daemons,
            jail: Arc::clone(jail),
            plugins: Arc::clone(plugins),
            tool: tool.to_string(),
            spec: RunSpec {
                binary,
                env: entry.env.clone(),
                timeout,
                // Granted by the operator, or the tool would be unavailable (catalog).
                needs_network: entry.description.needs_network,
                home: entry.home.clone(),
                read_paths: entry.reads.paths(),
                limits: run_limits,
            },
            redactor: Arc::clone(&entry.redactor),
            audit: audit.map(|run| AuditOnEnd {
                run,
                tool: tool.to_string(),
                argv: record_argv.clone(),
            }),
            planned,
        };
        let service = self.clone();
        let token = cancel.clone();
        // The record is written inside the job's own task: a caller that goes away while it is
        // being written cannot leave a job recorded as queued or running that nothing runs.
        let task = inner.tracker.spawn(async move {
            let _registration = registration;
            if let Err(error) = service.inner.store.insert_job(record, started_at).await {
                service.inner.metrics.job_dequeued();
                run.planned.prepared.discard();
                return Err(error.into());
            }
            service.inner.registry.mark_recorded(&run.id);
            service
                .run(run, &ticket, tenant_slots, free_slot, token)
                .await
        });
        drop(closing);
        Ok(StartedJob {
            id,
            argv: record_argv,
            not_applied,
            cancel,
            task,
        })
    }

    /// Waits for a running slot (unless `free_slot` is one, taken and recorded at admission),
    /// runs, parses and records one job.
    /// A job of a tenant with its own running limit waits for its tenant's slot first, then a
    /// global one, so that waiting on its own limit never holds a slot other tenants could use.
    async fn run(
        &self,
        job: JobRun,
        ticket: &admission::Ticket,
        tenant_slots: Option<Arc<tokio::sync::Semaphore>>,
        free_slot: Option<RunSlots>,
        cancel: CancellationToken,
    ) -> Result<ToolRunResponse, JobError> {
        let inner = &self.inner;
        let recorded_running = free_slot.is_some();
        let slot = match free_slot {
            Some(slot) => Some(slot),
            None => tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                slot = async {
                    let own = match tenant_slots {
                        Some(tenant) => Some(tenant.acquire_owned().await.ok()?),
                        None => None,
                    };
                    Some((ticket.run_slot(&job.owner).await, own))
                } => slot,
            },
        };
        inner.metrics.job_dequeued();
        let Some(_slot) = slot else {
            return self.record_cancelled_while_queued(job).await;
        };
        if let Some(max) = job.across_daemons {
            // Holding this daemon's slots, wait for the tenant's room on every daemon.
            match self.wait_for_tenant_room(&job, max, &cancel).await {
                Ok(true) => {}
                Ok(false) => return self.record_cancelled_while_queued(job).await,
                Err(error) => {
                    return Err(self
                        .record_failure(
                            &job.id,
                            &job.owner,
                            &job.tool,
                            &job.planned.argv,
                            None,
                            error.into(),
                        )
                        .await);
                }
            }
        }
        inner.registry.mark_running(&job.id);
        if !recorded_running
            && job.across_daemons.is_none()
            && let Err(error) = inner
                .store
                .mark_job_running(job.id.clone(), crate::time::now_rfc3339())
                .await
        {
            return Err(self
                .record_failure(
                    &job.id,
                    &job.owner,
                    &job.tool,
                    &job.planned.argv,
                    None,
                    error.into(),
                )
                .await);
        }
        inner.metrics.job_started();
        let registry = &inner.registry;
        let ran = job
            .jail
            .run_reporting_pid(job.planned.prepared, job.spec, cancel, |pid| {
                registry.set_pid(&job.id, Some(pid));
            })
            .await;
        registry.set_pid(&job.id, None);
        inner.metrics.job_stopped();
        let result = match ran {
            Ok(result) => result,
            Err(error) => {
                // A tool that cannot be executed is the operator's to fix, and the caller is
                // told what was denied and which key to set.
                let error = match cannot_start(&job.tool, &error) {
                    Some((denied, fix)) => JobError::CannotStart {
                        tool: job.tool.clone(),
                        denied,
                        fix,
                    },
                    None => error.into(),
                };
                return Err(self
                    .record_failure(
                        &job.id,
                        &job.owner,
                        &job.tool,
                        &job.planned.argv,
                        None,
                        error,
                    )
                    .await);
            }
        };
        let ran_for = result.duration;
        let interpreted = self
            .interpret(
                &job.id,
                ParsingPlugin {
                    owner: &job.owner,
                    tool: &job.tool,
                    plugins: &job.plugins,
                },
                &job.planned.command,
                job.planned.output_directory,
                result,
                &job.redactor,
                job.audit,
            )
            .await;
        match interpreted {
            Ok(response) => Ok(response),
            Err(error) => Err(self
                .record_failure(
                    &job.id,
                    &job.owner,
                    &job.tool,
                    &job.planned.argv,
                    Some(ran_for),
                    error,
                )
                .await),
        }
    }

    /// Waits until the store marks `job` running within its tenant's limit across daemons
    /// (true), or until it is cancelled (false).
    async fn wait_for_tenant_room(
        &self,
        job: &JobRun,
        max: u32,
        cancel: &CancellationToken,
    ) -> Result<bool, toolgate_store::StoreError> {
        loop {
            let started = self
                .inner
                .store
                .start_job_within(
                    job.id.clone(),
                    job.owner.clone(),
                    max,
                    crate::time::now_rfc3339(),
                )
                .await?;
            if started {
                return Ok(true);
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(false),
                () = tokio::time::sleep(TENANT_ROOM_POLL) => {}
            }
        }
    }

    /// Reads output files, asks the plugin to parse, records (with `audit`) and logs the job;
    /// on an error the caller records the job as failed.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of a job run moved out of it one by one as it ran"
    )]
    async fn interpret(
        &self,
        id: &str,
        parser: ParsingPlugin<'_>,
        command: &str,
        output_directory: Option<PathBuf>,
        result: RunResult,
        redactor: &Redactor,
        audit: Option<AuditOnEnd>,
    ) -> Result<ToolRunResponse, JobError> {
        let inner = &self.inner;
        let ParsingPlugin {
            owner,
            tool,
            plugins,
        } = parser;
        // A job that was given no output directory has none (`prepare_planned`): nothing to read.
        let mut files = if output_directory.is_some() {
            let output_dir = result.output_dir.clone();
            tokio::task::spawn_blocking(move || output_files::read_output_files(&output_dir))
                .await?
        } else {
            Vec::new()
        };
        let files_truncated = files.iter().any(|file| file.truncated);
        let output_truncated = result.stdout_truncated || result.stderr_truncated;
        let has_output = !result.stdout.is_empty() || !files.is_empty();
        let RunResult {
            argv,
            exit_code,
            signal,
            timed_out,
            cancelled,
            mut stdout,
            mut stderr,
            stdout_truncated,
            stderr_truncated,
            duration,
            protections,
            output_dir: _,
        } = result;
        // Before parse sees them: the response, the record and the logs are built from these.
        redactor.redact(&mut stdout, stdout_truncated);
        redactor.redact(&mut stderr, stderr_truncated);
        for file in &mut files {
            redactor.redact(&mut file.content, file.truncated);
        }
        let outcome = Outcome {
            exit_code,
            timed_out,
            stdout,
            stderr,
            output_truncated,
            files,
        };
        let (parsed, outcome) = self.parse(plugins, tool, outcome).await?;
        // The files were parse's alone; the streams become the response's text without a copy
        // (the record shares them), so a flood of output is held about twice at its peak.
        let Outcome { stdout, stderr, .. } = outcome;
        let stdout = into_text(stdout);
        let stderr = into_text(stderr);
        let (classification, findings, message, parse_error) = match parsed {
            Ok(ParseResult {
                classification,
                findings,
                message,
            }) => (Some(classification), findings, message, None),
            Err(error) => (None, Vec::new(), None, Some(error.to_string())),
        };
        let ending = Ending {
            exited: exit_code.is_some(),
            timed_out,
            cancelled,
            classification,
        };
        let status = ending.status();
        let truncated = output_truncated || files_truncated;
        let summary = FindingSummary::of(&findings);
        let response = ToolRunResponse {
            stdout,
            stderr,
            return_code: exit_code.unwrap_or(KILLED_RETURN_CODE),
            signal,
            success: ending.success(),
            timed_out,
            cancelled,
            partial_results: (timed_out || truncated) && has_output,
            execution_time: duration.as_secs_f64(),
            timestamp: crate::time::now_rfc3339(),
            command: command.to_string(),
            job_id: id.to_string(),
            status,
            classification,
            message,
            summary,
            findings,
            truncated,
            sandbox: Some(protections),
            output_directory: output_directory.map(|dir| dir.display().to_string()),
            error: parse_error,
        };
        self.record_finished(id, &response, audit).await?;
        inner
            .metrics
            .record_job(tool, status.as_str(), Some(duration));
        tracing::info!(
            target: "toolgate::job",
            tenant = owner,
            job_id = id,
            tool,
            argv = ?argv,
            exit_code,
            signal,
            duration_ms = duration.as_millis() as u64,
            status = status.as_str(),
            classification = classification.map(classification_name),
            findings = response.summary.total,
            "job finished"
        );
        Ok(response)
    }

    /// Runs the plugin's `parse` on a blocking thread; returns the outcome back for the response.
    async fn parse(
        &self,
        plugins: &Arc<PluginRuntime>,
        tool: &str,
        outcome: Outcome,
    ) -> Result<
        (
            Result<ParseResult, toolgate_plugin_runtime::CallError>,
            Outcome,
        ),
        JobError,
    > {
        let plugins = Arc::clone(plugins);
        let metrics = Arc::clone(&self.inner.metrics);
        let tool = tool.to_string();
        let inline = outcome_size(&outcome) <= INLINE_PARSE_MAX_BYTES;
        let parse = move || {
            let started = Instant::now();
            let (parsed, outcome) = plugins.parse_owned(&tool, outcome);
            metrics.record_plugin_call(&tool, "parse", started.elapsed());
            (parsed, outcome)
        };
        // A small output parses in tens of microseconds, less than handing it to another
        // thread costs; a big one could hold an async worker for long, so it moves.
        if inline {
            Ok(parse())
        } else {
            Ok(tokio::task::spawn_blocking(parse).await?)
        }
    }

    /// Records the end of job `id` that answered `response`, with the run's audit record when
    /// `audit` is given (see [`JobService::start_audited`]).
    async fn record_finished(
        &self,
        id: &str,
        response: &ToolRunResponse,
        audit: Option<AuditOnEnd>,
    ) -> Result<(), JobError> {
        let done = FinishedJob {
            status: Some(response.status),
            finished_at: response.timestamp.clone(),
            duration_secs: Some(response.execution_time),
            exit_code: (response.signal.is_none() && !response.timed_out && !response.cancelled)
                .then_some(response.return_code),
            signal: response.signal,
            timed_out: response.timed_out,
            success: response.success,
            classification: response
                .classification
                .map(|c| classification_name(c).to_string()),
            message: response.message.clone(),
            summary: serde_json::to_string(&response.summary).ok(),
            findings: serde_json::to_string(&response.findings).ok(),
            stdout: Some(Arc::clone(&response.stdout)),
            stderr: Some(Arc::clone(&response.stderr)),
            truncated: response.truncated,
            protections: response
                .sandbox
                .as_ref()
                .and_then(|protections| serde_json::to_string(protections).ok()),
            error: response.error.clone(),
        };
        let store = &self.inner.store;
        let finish = || store.finish_job(id.to_string(), done.clone());
        let finished = match audit {
            Some(audit) => {
                let event = audit.event(response);
                let run = &audit.run;
                run.trail.record_after(&run.caller, event, finish).await
            }
            None => finish().await,
        };
        if let Err(error) = finished {
            // The tool ran and its caller gets the answer; the history catches up once the
            // store is back instead of keeping the job `running` for ever.
            tracing::error!(job_id = id, %error,
                "cannot record a finished job; retrying every {RECORD_RETRY_EVERY:?} for up to {RECORD_RETRY_FOR:?}");
            tokio::spawn(record_when_back(
                Arc::clone(&self.inner.store),
                id.to_string(),
                done,
            ));
        }
        Ok(())
    }

    async fn record_cancelled_while_queued(
        &self,
        job: JobRun,
    ) -> Result<ToolRunResponse, JobError> {
        let inner = &self.inner;
        job.planned.prepared.discard();
        let response = ToolRunResponse {
            stdout: Arc::default(),
            stderr: Arc::default(),
            return_code: KILLED_RETURN_CODE,
            signal: None,
            success: false,
            timed_out: false,
            cancelled: true,
            partial_results: false,
            execution_time: 0.0,
            timestamp: crate::time::now_rfc3339(),
            command: job.planned.command,
            job_id: job.id.clone(),
            status: JobStatus::Cancelled,
            classification: None,
            message: Some("cancelled while waiting for a free slot".into()),
            findings: Vec::new(),
            summary: FindingSummary::default(),
            truncated: false,
            sandbox: None,
            output_directory: None,
            error: None,
        };
        self.record_finished(&job.id, &response, job.audit).await?;
        inner
            .metrics
            .record_job(&job.tool, JobStatus::Cancelled.as_str(), None);
        tracing::info!(
            target: "toolgate::job",
            tenant = job.owner,
            job_id = job.id,
            tool = job.tool,
            argv = ?job.planned.argv,
            duration_ms = 0u64,
            status = "cancelled",
            "job cancelled while queued"
        );
        Ok(response)
    }

    /// Records as failed, and logs, a job the daemon could not see through once it was recorded
    /// (the sandbox could not start its tool, the store or a blocking task failed), so that no
    /// record is left queued or running with nothing behind it; returns the error for the caller.
    async fn record_failure(
        &self,
        id: &str,
        owner: &str,
        tool: &str,
        argv: &[String],
        ran: Option<Duration>,
        error: JobError,
    ) -> JobError {
        // The sandbox's reason is the caller's to read; a store or task failure is the daemon's
        // and stays in its log.
        let reason = match &error {
            JobError::Sandbox(sandbox) => sandbox.to_string(),
            JobError::CannotStart { .. } => error.to_string(),
            _ => "the daemon could not finish this job; see its log".to_string(),
        };
        let done = FinishedJob {
            status: Some(JobStatus::Failed),
            finished_at: crate::time::now_rfc3339(),
            duration_secs: ran.map(|ran| ran.as_secs_f64()),
            error: Some(reason),
            ..FinishedJob::default()
        };
        if let Err(store_error) = self.inner.store.finish_job(id.to_string(), done).await {
            tracing::error!(job_id = id, error = %store_error, "cannot record a failed job");
        }
        self.inner
            .metrics
            .record_job(tool, JobStatus::Failed.as_str(), ran);
        tracing::error!(
            target: "toolgate::job",
            tenant = owner,
            job_id = id,
            tool,
            argv = ?argv,
            duration_ms = ran.map_or(0, |ran| ran.as_millis() as u64),
            error = %error,
            status = "failed",
            "job failed"
        );
        error
    }

    /// Cancels one of `owner`'s live jobs; false when it is not live or not `owner`'s.
    pub fn cancel(&self, id: &str, owner: &str) -> bool {
        let registry = &self.inner.registry;
        registry.get(id).is_some_and(|job| job.owner == owner) && registry.cancel(id)
    }

    /// Cancels one of `owner`'s jobs wherever it runs: here, or (on a store shared by several
    /// daemons) through the store, which tells the daemon running it.
    pub async fn cancel_anywhere(&self, id: &str, owner: &str) -> Result<Cancel, JobError> {
        if self.cancel(id, owner) {
            return Ok(Cancel::Requested);
        }
        let Some(job) = self.job(id, owner).await? else {
            return Ok(Cancel::NotFound);
        };
        if !job.status.is_terminal() && self.inner.store.request_cancel(id.to_string()).await? {
            return Ok(Cancel::Requested);
        }
        Ok(Cancel::Ended(job.status))
    }

    /// The live job of `owner` that `reference` names: a job id, or (as HexStrike's process
    /// endpoints take) the process id of a running job's tool. Another tenant's job is `None`.
    pub fn live_job(&self, reference: &str, owner: &str) -> Option<ActiveJobInfo> {
        let registry = &self.inner.registry;
        let job = match reference.parse::<u32>() {
            Ok(pid) => registry.get_by_pid(pid),
            Err(_) => registry.get(reference),
        };
        job.filter(|job| job.owner == owner)
    }

    /// Stops admitting jobs, lets live ones finish for `grace`, then cancels the rest and waits
    /// until every job is recorded.
    pub async fn drain(&self, grace: Duration) {
        let inner = &self.inner;
        *inner
            .closing
            .write()
            .unwrap_or_else(PoisonError::into_inner) = true;
        inner.tracker.close();
        if tokio::time::timeout(grace, inner.tracker.wait())
            .await
            .is_err()
        {
            let cancelled = inner.registry.cancel_all();
            tracing::warn!(
                cancelled,
                "shutdown grace period over; cancelling running jobs"
            );
            inner.tracker.wait().await;
        }
    }
}

/// Cancels the jobs other daemons sharing the store asked this one to cancel (their callers
/// asked there; the daemon they asked checked the job is theirs): at once when the
/// notification arrives, and every [`CANCEL_SWEEP`] from the requests kept on the jobs, in case
/// one did not (the listening connection was reconnecting). Ends with the service.
async fn relay_cancels(
    service: std::sync::Weak<Inner>,
    mut requests: tokio::sync::broadcast::Receiver<String>,
) {
    use tokio::sync::broadcast::error::RecvError;
    // Jobs this task already cancelled, so a sweep does not cancel (and log) them again.
    let mut cancelled = std::collections::HashSet::new();
    loop {
        let ids = tokio::select! {
            received = requests.recv() => match received {
                Ok(id) => vec![id],
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "cancel notifications from other daemons were dropped; the next sweep finds them");
                    continue;
                }
                Err(RecvError::Closed) => break,
            },
            () = tokio::time::sleep(CANCEL_SWEEP) => {
                let Some(inner) = service.upgrade() else {
                    break;
                };
                match inner.store.pending_cancels().await {
                    Ok(pending) => {
                        cancelled.retain(|id| pending.contains(id));
                        pending
                    }
                    Err(error) => {
                        tracing::debug!(%error, "cannot look for cancels kept on this daemon's jobs");
                        continue;
                    }
                }
            }
        };
        let Some(inner) = service.upgrade() else {
            break;
        };
        for id in ids {
            if !cancelled.contains(&id) && inner.registry.cancel(&id) {
                tracing::info!(job_id = %id, "cancelling a job at another daemon's request");
                cancelled.insert(id);
            }
        }
    }
}

/// Writes a job's end `done` until the store takes it, or [`RECORD_RETRY_FOR`] passes.
async fn record_when_back(store: Arc<dyn JobStore>, id: String, done: FinishedJob) {
    let deadline = Instant::now() + RECORD_RETRY_FOR;
    while Instant::now() < deadline {
        tokio::time::sleep(RECORD_RETRY_EVERY).await;
        match store.finish_job(id.clone(), done.clone()).await {
            Ok(()) => {
                tracing::info!(
                    job_id = id,
                    "the finished job is recorded now that the store answers"
                );
                return;
            }
            Err(error) => {
                tracing::debug!(job_id = id, %error, "the store still does not take the job's end")
            }
        }
    }
    tracing::error!(
        job_id = id,
        "gave up recording a finished job: it is marked interrupted when its daemon restarts or another daemon sees it gone"
    );
}
