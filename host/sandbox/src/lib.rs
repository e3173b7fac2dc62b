//! toolgate-sandbox: runs a checked plan with no shell, under rlimits, a timeout, an
//! allowlisted working directory and whatever kernel hardening the machine offers.
//!
//! This is the only crate of toolgate that spawns processes. Its guarantees, mode by mode, are
//! in GUARANTEES.md. Module map (one job each):
//! - `settings`: the operator's `[sandbox]` section and its checks; `policy`: the policy as
//!   data it becomes; `capabilities`: detected hardening and per-job protections
//! - `binary`: tool binary resolution; `install_reads`: what a tool's own install must read
//!   (virtual environment, `#!` interpreter, ELF loader); `args` + `paths`: typed arguments and
//!   path checks
//! - `job_dirs`: job ids and output directories; `private_dirs`: the pool of private home/tmp
//!   directories; `env`: the rebuilt environment
//! - `rlimits`, `landlock_rules`, `cgroup`: what the parent prepares for the child
//! - `exec`: clone(CLONE_VM|CLONE_VFORK) + execve; `child`: the clone-to-exec sequence;
//!   `spawner`: the dedicated spawning thread
//! - `run` + `reaper`: timeout, kill escalation, orphan sweep, reaping; `output`: capped capture
//! - `check_only`: `PlanCheck`, the checks of `Sandbox::new` and `prepare_planned` without a
//!   sandbox, creating nothing (`toolgate plugin dry-run`)
//!
//! Invariant of the public API: `prepare_planned` refuses a bad plan before anything runs (a
//! `PlanRejected` naming the argument) and has no side effect; `provide_dirs` (for a job the
//! caller admitted) creates the job's output directory and leases its private ones; `prepare`
//! does both. `run` never starts a tool without its directories and every planned protection in
//! place (a `SandboxError` naming the failed step).

mod args;
mod binary;
mod capabilities;
mod cgroup;
mod check_only;
mod child;
mod env;
mod error;
mod exec;
mod handover;
mod install_reads;
mod job_dirs;
mod landlock_rules;
mod landlock_sys;
mod output;
mod paths;
mod policy;
mod private_dirs;
mod reaper;
mod rlimits;
mod run;
mod settings;
mod spawner;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

pub use args::{Arg, shell_quote};
pub use binary::resolve_binary;
pub use capabilities::{Capabilities, Containment, Protections};
pub use cgroup::CgroupSupport;
pub use check_only::{CheckedPlan, PlanCheck};
pub use child::ChildStep;
pub use error::{PlanRejected, RejectReason, SandboxError};
pub use install_reads::{InstallReads, ReadGrant, exposes_daemon_state, install_read_paths};
pub use landlock_rules::Enforcement;
pub use policy::{
    DEFAULT_PATH_ENV, DEFAULT_SYSTEM_READ_PATHS, Hardening, Rlimits, RunAs, SandboxPolicy,
};
pub use rlimits::{JobLimits, Limit};
pub use settings::{SandboxSettings, SettingsProblem};

use child::ChildPlan;
use output::{Captured, drain};
use paths::HeldDir;
use private_dirs::{PrivateDirPool, PrivateDirs};
use reaper::Leader;

/// How long output is still read after every process of the job is dead. Only a descriptor
/// smuggled to a process outside the job can hold a pipe open that long.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// A job whose arguments were checked; its directories exist once `Sandbox::provide_dirs` (or
/// `prepare`) gave them. Dropping it without running it returns its private directories to the
/// pool.
#[derive(Debug)]
pub struct PreparedJob {
    pub job_id: String,
    /// The resolved arguments, without argv[0].
    pub argv: Vec<String>,
    /// The job's output directory when `has_output_dir()`: a new directory directly below the
    /// output root, created by this job in `provide_dirs`.
    pub output_dir: PathBuf,
    output: job_dirs::OutputDir,
    /// Leased by `provide_dirs`.
    private: Option<PrivateDirs>,
    /// The job's own input directory (`prepare_planned_in`): its working directory and the
    /// only directory its input paths may name and Landlock lets it read, instead of the
    /// policy's allowed directories.
    input_root: Option<HeldDir>,
}

impl PreparedJob {
    /// Whether the job has an output directory (an argument names it): created by
    /// `provide_dirs`, and then writable by the tool under Landlock.
    pub fn has_output_dir(&self) -> bool {
        self.output.is_used()
    }

    /// The job's private HOME, once `provide_dirs` gave it.
    pub fn home_dir(&self) -> Option<&std::path::Path> {
        self.private.as_ref().map(|private| private.home.as_path())
    }

    /// A job that will not run: removes its output directory if this job created it and it is
    /// still the same, empty directory (never one it found); the private directories go back
    /// to the pool.
    pub fn discard(self) {
        self.output.remove();
    }
}

/// What to run for a prepared job.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Absolute path from `resolve_binary`.
    pub binary: PathBuf,
    /// Passthrough variables (plugin-declared ∩ operator-allowed, daemon values).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub needs_network: bool,
    /// An operator-provided `$HOME` for the tool instead of its private one (e.g. terrascan's
    /// policies prepared by `terrascan init`). Canonical and absolute. Under Landlock the tool
    /// may read it and never write it; the private tmp stays the tool's only scratch space.
    pub home: Option<PathBuf>,
    /// What the tool's own install needs to read and execute (`install_read_paths`, plus the
    /// operator's additions), canonical. Under Landlock the tool may read and execute these,
    /// never write them.
    pub read_paths: Vec<PathBuf>,
    /// Limits of this run that tighten the policy's (a tenant's per-tool limits).
    pub limits: RunLimits,
}

/// Limits of one run that can only tighten the policy's: where both are set the lower one
/// applies, so a run never gets more than the operator's daemon-wide maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// cgroup `memory.max` of the run, in bytes. Needs the cgroup memory controller: a run
    /// asking for it where the sandbox has none is refused, never run without it.
    pub memory_max_bytes: Option<u64>,
    /// Cap on captured stdout, and separately on captured stderr, in bytes.
    pub max_output_bytes: Option<usize>,
}

/// The lower of two optional limits (`None` means "no limit from this side").
fn tightest<T: Ord>(policy: Option<T>, run: Option<T>) -> Option<T> {
    match (policy, run) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What one tenant's jobs get in place of the daemon-wide directories and identity: the
/// sandbox's policy with these fields replaced (`Sandbox::scoped`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The directories its jobs may read; the first is the workspace. At least one: a scope
    /// that may read nothing is given an empty directory of its own.
    pub allowed_dirs: Vec<PathBuf>,
    /// Where its jobs' output directories are created.
    pub output_root: PathBuf,
    /// Where its jobs' private `home` and `tmp` live; not shared with another scope.
    pub jobs_root: PathBuf,
    /// Its tools' identity; `None` keeps the sandbox's own (`run_as` of the policy).
    pub run_as: Option<RunAs>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The executed argv, argv[0] (the binary) included.
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub cancelled: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration: Duration,
    pub output_dir: PathBuf,
    pub protections: Protections,
}

/// The sandbox: hold it in an `Arc` and share it between jobs.
pub struct Sandbox {
    policy: SandboxPolicy,
    capabilities: Capabilities,
    allowed: Vec<HeldDir>,
    output_root: HeldDir,
    private_dirs: PrivateDirPool,
    /// The rules every job shares; `Some` exactly when Landlock is (fully or partially) enforced.
    landlock_shared: Option<landlock_rules::SharedRules>,
    /// The shared rules without the allowed directories, for jobs with an input root of their
    /// own; `Some` exactly when `landlock_shared` is.
    landlock_system: Option<landlock_rules::SharedRules>,
    /// Rulesets of jobs without an output directory, reused job after job.
    landlock_cache: landlock_rules::RulesetCache,
    /// Shared by every scope of this sandbox (`scoped`): one namespace, one set of spawners.
    empty_network: Option<Arc<OwnedFd>>,
    spawner: Arc<spawner::Spawner>,
    daemon_pid: libc::pid_t,
}

/// Opens (and so canonicalizes) the policy's allowed directories, of which there must be at
/// least one: the workspace.
fn open_allowed_dirs(policy: &SandboxPolicy) -> Result<Vec<HeldDir>, SandboxError> {
    if policy.allowed_dirs.is_empty() {
        return Err(policy_error(
            "allowed_dirs",
            "[]",
            "at least the workspace is required",
        ));
    }
    policy
        .allowed_dirs
        .iter()
        .map(|dir| {
            HeldDir::open(dir).map_err(|source| SandboxError::OpenDir {
                path: dir.clone(),
                source,
            })
        })
        .collect()
}

/// Opens the policy's allowed directories and creates its output and jobs roots, and rewrites
/// the policy with their canonical paths.
fn open_policy_dirs(
    policy: &mut SandboxPolicy,
) -> Result<(Vec<HeldDir>, HeldDir, HeldDir), SandboxError> {
    let allowed = open_allowed_dirs(policy)?;
    let output_root = create_root(&policy.output_root)?;
    let jobs_root = create_root(&policy.jobs_root)?;
    policy.allowed_dirs = allowed.iter().map(|d| d.path.clone()).collect();
    policy.output_root = output_root.path.clone();
    policy.jobs_root = jobs_root.path.clone();
    Ok((allowed, output_root, jobs_root))
}

/// The shared Landlock rules with and without the allowed directories.
type SharedRulePair = (
    Option<landlock_rules::SharedRules>,
    Option<landlock_rules::SharedRules>,
);

/// The Landlock rules every job shares (system paths and `allowed`) and the same without the
/// allowed directories (for jobs with an input root of their own); both `None` unless
/// `enforced`.
fn shared_landlock_rules(
    policy: &SandboxPolicy,
    allowed: &[HeldDir],
    enforced: bool,
) -> Result<SharedRulePair, SandboxError> {
    if !enforced {
        return Ok((None, None));
    }
    Ok((
        Some(landlock_rules::SharedRules::open(
            &policy.system_read_paths,
            allowed,
        )?),
        Some(landlock_rules::SharedRules::open(
            &policy.system_read_paths,
            &[],
        )?),
    ))
}

impl Sandbox {
    /// Validates and canonicalizes the policy, creates the roots, detects the hardening the
    /// machine offers, makes the daemon a child subreaper and starts the spawner threads.
    pub fn new(mut policy: SandboxPolicy) -> Result<Self, SandboxError> {
        // First, before this sandbox opens any descriptor (see exec::occupy_stdio_fds).
        exec::occupy_stdio_fds().map_err(|source| SandboxError::Pipe {
            what: "occupying fds 0-2 with /dev/null",
            source,
        })?;
        let (allowed, output_root, jobs_root) = open_policy_dirs(&mut policy)?;

        let running_as_root = capabilities::running_as_root();
        if policy.run_as.is_some() && !running_as_root {
            return Err(run_as_needs_root(&policy));
        }
        let landlock = match policy.landlock {
            Hardening::Off => Enforcement::Off,
            _ => landlock_rules::probe(),
        };
        if policy.landlock == Hardening::Required && landlock == Enforcement::NotEnforced {
            return Err(landlock_unavailable());
        }
        let empty_network = match policy.network_isolation {
            Hardening::Off => None,
            Hardening::Auto | Hardening::Required => capabilities::create_empty_network_namespace(),
        };
        let network_namespace = empty_network.is_some();
        if policy.network_isolation == Hardening::Required && !network_namespace {
            return Err(network_isolation_unavailable());
        }
        // A cgroup_root or a limit the operator set is required: the daemon refuses to start
        // rather than run jobs with less containment than configured.
        let (cgroup, cgroup_unavailable) = match &policy.cgroup_root {
            None => (None, Some("no cgroup_root configured".to_string())),
            Some(root) => (Some(cgroup::detect(root)?), None),
        };
        let offered = cgroup.as_ref().map(|c| cgroup::Controllers {
            memory: c.memory_controller,
            pids: c.pids_controller,
        });
        if let Some(shortfall) = cgroup_limits_unavailable(&policy, offered)
            .into_iter()
            .next()
        {
            return Err(shortfall);
        }
        let (landlock_shared, landlock_system) = shared_landlock_rules(
            &policy,
            &allowed,
            matches!(
                landlock,
                Enforcement::FullyEnforced | Enforcement::PartiallyEnforced
            ),
        )?;
        reaper::become_subreaper()?;
        capabilities::make_daemon_non_dumpable()?;
        let last_capability = if running_as_root {
            Some(capabilities::last_capability()?)
        } else {
            None
        };
        let capabilities = Capabilities {
            landlock,
            network_namespace,
            cgroup,
            cgroup_unavailable,
            subreaper: true,
            daemon_non_dumpable: true,
            running_as_root,
            last_capability,
            controlling_terminal: capabilities::has_controlling_terminal(),
        };
        Ok(Self {
            capabilities,
            // Every job runs under Landlock when a ruleset can be built (step 4 of `run`).
            private_dirs: PrivateDirPool::new(
                jobs_root,
                policy.run_as.filter(|_| running_as_root),
                landlock_shared.is_some(),
            ),
            policy,
            allowed,
            output_root,
            landlock_shared,
            landlock_system,
            landlock_cache: landlock_rules::RulesetCache::default(),
            empty_network: empty_network.map(Arc::new),
            spawner: Arc::new(spawner::Spawner::start(last_capability)?),
            // SAFETY: getpid cannot fail.
            daemon_pid: unsafe { libc::getpid() },
        })
    }

    /// The same sandbox for one tenant: `scope`'s directories and identity in place of the
    /// policy's; everything else (hardening, limits, the spawner threads, the empty network
    /// namespace) shared. Its jobs read only `scope.allowed_dirs`, get output directories only
    /// below `scope.output_root`, run as `scope.run_as` (else the policy's identity), and
    /// lease private directories from a pool of their own.
    pub fn scoped(&self, scope: Scope) -> Result<Self, SandboxError> {
        let mut policy = self.policy.clone();
        policy.allowed_dirs = scope.allowed_dirs;
        policy.output_root = scope.output_root;
        policy.jobs_root = scope.jobs_root;
        policy.run_as = scope.run_as.or(self.policy.run_as);
        if policy.run_as.is_some() && !self.capabilities.running_as_root {
            return Err(run_as_needs_root(&policy));
        }
        let (allowed, output_root, jobs_root) = open_policy_dirs(&mut policy)?;
        // Two pools in one root would lease each other's slots.
        if jobs_root.path == self.policy.jobs_root {
            return Err(policy_error(
                "jobs_root",
                &jobs_root.path.display().to_string(),
                "a scope needs a jobs root of its own, not the sandbox's",
            ));
        }
        let (landlock_shared, landlock_system) =
            shared_landlock_rules(&policy, &allowed, self.landlock_shared.is_some())?;
        Ok(Self {
            capabilities: self.capabilities.clone(),
            private_dirs: PrivateDirPool::new(
                jobs_root,
                policy.run_as.filter(|_| self.capabilities.running_as_root),
                landlock_shared.is_some(),
            ),
            policy,
            allowed,
            output_root,
            landlock_shared,
            landlock_system,
            landlock_cache: landlock_rules::RulesetCache::default(),
            empty_network: self.empty_network.clone(),
            spawner: Arc::clone(&self.spawner),
            daemon_pid: self.daemon_pid,
        })
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The policy as validated: directories are canonical.
    pub fn policy(&self) -> &SandboxPolicy {
        &self.policy
    }

    /// Checks every argument and provides the job's directories at once (`prepare_planned`
    /// with an output directory, then `provide_dirs`): the output directory (a new
    /// `output_root/<job_id>` unless a `RequestedOutputDir` names a new one below the root) and
    /// empty private `home` and `tmp` from the pool.
    pub fn prepare(&self, job_id: &str, args: &[Arg]) -> Result<PreparedJob, PlanRejected> {
        let mut job = self.plan(job_id, args, true, None)?;
        self.provide_dirs(&mut job)?;
        Ok(job)
    }

    /// Checks every argument without creating anything; the job gets an output directory only
    /// when an argument names it (`OutputDir` or `RequestedOutputDir`): a tool that is given
    /// none gets none, and Landlock grants it no writable directory besides its home and tmp.
    /// Call `provide_dirs` once the job is admitted, before `run`.
    pub fn prepare_planned(&self, job_id: &str, args: &[Arg]) -> Result<PreparedJob, PlanRejected> {
        let names_output_dir = args
            .iter()
            .any(|arg| matches!(arg, Arg::OutputDir | Arg::RequestedOutputDir(_)));
        self.plan(job_id, args, names_output_dir, None)
    }

    /// `prepare_planned` for a job with an input directory of its own (e.g. a scan's extracted
    /// upload): `input_root` replaces the allowed directories for this job: relative input
    /// paths resolve against it, absolute ones must lie inside it, it is the tool's working
    /// directory, and under Landlock it is the only directory besides the system paths, the
    /// tool's home and the job's own directories that the tool can read. The daemon names it
    /// (never a caller); it must be an existing directory.
    pub fn prepare_planned_in(
        &self,
        job_id: &str,
        args: &[Arg],
        input_root: &std::path::Path,
    ) -> Result<PreparedJob, PlanRejected> {
        let root = HeldDir::open(input_root).map_err(|error| {
            PlanRejected::job(
                job_id,
                RejectReason::NotFound(format!(
                    "the job's input directory {}: {error}",
                    input_root.display()
                )),
            )
        })?;
        let names_output_dir = args
            .iter()
            .any(|arg| matches!(arg, Arg::OutputDir | Arg::RequestedOutputDir(_)));
        self.plan(job_id, args, names_output_dir, Some(root))
    }

    /// The checks of `prepare_planned`: the job id, the output directory's name (requested: one
    /// free, unreserved name directly below the root; default: the job id, free) and every
    /// argument. Nothing is created.
    fn plan(
        &self,
        job_id: &str,
        args: &[Arg],
        has_output_dir: bool,
        input_root: Option<HeldDir>,
    ) -> Result<PreparedJob, PlanRejected> {
        job_dirs::check_job_id(job_id)?;
        let output = match args::requested_output_dir(&self.output_root, args)? {
            Some((index, name)) => job_dirs::OutputDir::Planned {
                name,
                arg_index: Some(index),
            },
            None if has_output_dir => {
                let name = PathBuf::from(job_id);
                paths::check_absent(&self.output_root.fd, &name)
                    .map_err(|reason| PlanRejected::job(job_id, reason))?;
                job_dirs::OutputDir::Planned {
                    name,
                    arg_index: None,
                }
            }
            // No argument refers to it, so the path is only reported, never created or used.
            None => job_dirs::OutputDir::Unused,
        };
        let output_dir = match &output {
            job_dirs::OutputDir::Planned { name, .. } => self.output_root.path.join(name),
            _ => self.output_root.path.join(job_id),
        };
        let inputs = match &input_root {
            Some(root) => std::slice::from_ref(root),
            None => self.allowed.as_slice(),
        };
        let argv = args::resolve_args(inputs, &output_dir, args)?;
        Ok(PreparedJob {
            job_id: job_id.to_string(),
            argv,
            output_dir,
            output,
            private: None,
            input_root,
        })
    }

    /// Gives a planned job its directories, for a job the caller admitted: hands its own input
    /// directory (if any) to the dedicated identity, creates its output directory (when it has
    /// one) with `mkdirat`, handing it to the dedicated identity, and leases its private `home`
    /// and `tmp`. A name taken since planning is refused
    /// (`OutputDirExists`, naming the requesting argument), never reused. On a refusal the job
    /// holds nothing it did not hold before; calling it again after success does nothing.
    pub fn provide_dirs(&self, job: &mut PreparedJob) -> Result<(), PlanRejected> {
        let internal = |e: std::io::Error| {
            PlanRejected::job(&job.job_id, RejectReason::Internal(e.to_string()))
        };
        // A job's own input directory becomes its identity's: the tool must read it, other
        // tenants' uids must not (`handover`).
        if let (Some(root), Some(owner)) = (&job.input_root, self.dedicated_identity()) {
            handover::hand_over(root, owner).map_err(|e| {
                PlanRejected::job(
                    &job.job_id,
                    RejectReason::Internal(format!(
                        "handing the input directory {} to uid {}: {e}",
                        root.path.display(),
                        owner.uid
                    )),
                )
            })?;
        }
        let private = match job.private.take() {
            Some(private) => private,
            None => self.private_dirs.lease().map_err(internal)?,
        };
        let arg_index = match &job.output {
            job_dirs::OutputDir::Planned { arg_index, .. } => *arg_index,
            _ => None,
        };
        job.output
            .create(&self.output_root, self.dedicated_identity())
            .map_err(|reason| match arg_index {
                Some(index) => PlanRejected::arg(index, &job.output_dir.to_string_lossy(), reason),
                None => PlanRejected::job(&job.job_id, reason),
            })?;
        job.private = Some(private);
        Ok(())
    }

    /// Runs a prepared job to completion, timeout or cancellation. Every process of the job is
    /// dead and reaped when this returns (see GUARANTEES.md); its private directories are then
    /// returned to the pool, emptied first (on a blocking thread) when the tool left files.
    pub async fn run(
        &self,
        job: PreparedJob,
        spec: RunSpec,
        cancel: CancellationToken,
    ) -> Result<RunResult, SandboxError> {
        self.run_reporting_pid(job, spec, cancel, |_| {}).await
    }

    /// [`Sandbox::run`], calling `spawned` with the tool's process id once it runs (so a caller
    /// can show it, e.g. HexStrike's process list). The id names a process this job owns only
    /// until `run` returns.
    pub async fn run_reporting_pid(
        &self,
        mut job: PreparedJob,
        spec: RunSpec,
        cancel: CancellationToken,
        spawned: impl FnOnce(u32) + Send,
    ) -> Result<RunResult, SandboxError> {
        // Run sequence (parent side; the child side is in child.rs):
        //  0. the job's directories were provided (`provide_dirs`)
        //  1. check the binary            5. create the job cgroup (cgroup mode)
        //  2. rebuild the environment     6. clone + exec on a spawner thread
        //  3. compute the rlimits         7. watch the leader (pidfd), take the pipes, tell
        //  4. build the Landlock ruleset     `spawned` its pid
        //                                 8. supervise + drain concurrently; kill, sweep, reap
        //                                 9. remove the job cgroup, empty the private dirs, report
        let started = Instant::now();
        // 0. Only a job given its directories runs (`provide_dirs`).
        let Some(private) = job.private.take().filter(|_| !job.output.awaits_creation()) else {
            return Err(SandboxError::DirsNotProvided { job_id: job.job_id });
        };
        // 1. The binary resolved at start-up must still be there.
        if !spec.binary.is_absolute() {
            return Err(SandboxError::BinaryUnavailable {
                name: spec.binary.display().to_string(),
                reason: "RunSpec.binary must be the absolute path from resolve_binary".into(),
            });
        }
        let binary = match std::fs::metadata(&spec.binary) {
            Ok(meta) if meta.is_file() => meta,
            _ => {
                return Err(SandboxError::BinaryUnavailable {
                    name: spec.binary.display().to_string(),
                    reason: "the resolved binary no longer exists".into(),
                });
            }
        };
        // 2. Environment.
        let policy = &self.policy;
        let env = env::build_env(
            &policy.path_env,
            spec.home.as_deref().unwrap_or(&private.home),
            &private.tmp,
            &spec.env,
        )?;
        // 3. rlimits.
        let run_as = self.dedicated_identity();
        let memory_max_bytes = tightest(policy.memory_max_bytes, spec.limits.memory_max_bytes);
        let limits = JobLimits::compute(&policy.rlimits, spec.timeout, run_as.is_some());
        // 4. Landlock ruleset (the child only restricts itself with it).
        let landlock_fd = match (
            &self.landlock_shared,
            &self.landlock_system,
            &job.input_root,
        ) {
            // A job with its own input root: the system rules, its root and home read-only,
            // its own directories writable; built for this job alone (its root is its own).
            (Some(_), Some(system), Some(root)) => {
                let private = [private.home.as_path(), private.tmp.as_path()];
                let output = job.output.is_created().then_some(job.output_dir.as_path());
                let writable: Vec<&std::path::Path> = output.into_iter().chain(private).collect();
                let readable: Vec<&std::path::Path> = spec
                    .home
                    .as_deref()
                    .into_iter()
                    .chain(std::iter::once(root.path.as_path()))
                    .chain(spec.read_paths.iter().map(PathBuf::as_path))
                    .collect();
                Some(std::sync::Arc::new(landlock_rules::build(
                    system,
                    &spec.binary,
                    &readable,
                    &writable,
                )?))
            }
            (Some(shared), _, _) => {
                let private = [private.home.as_path(), private.tmp.as_path()];
                // Only a directory this job created is ever granted.
                let output = job.output.is_created().then_some(job.output_dir.as_path());
                let writable: Vec<&std::path::Path> = output.into_iter().chain(private).collect();
                // An output directory is new for every job; home and tmp come from the pool.
                let readable: Vec<&std::path::Path> = spec
                    .home
                    .as_deref()
                    .into_iter()
                    .chain(spec.read_paths.iter().map(PathBuf::as_path))
                    .collect();
                Some(if output.is_some() {
                    std::sync::Arc::new(landlock_rules::build(
                        shared,
                        &spec.binary,
                        &readable,
                        &writable,
                    )?)
                } else {
                    self.landlock_cache.get_or_build(
                        shared,
                        &spec.binary,
                        &binary,
                        &readable,
                        &writable,
                    )?
                })
            }
            (None, _, _) => None,
        };
        // A ruleset is built exactly when the probe found Landlock enforced.
        let landlock = self.capabilities.landlock;
        let network_isolated = self.capabilities.network_namespace && !spec.needs_network;
        // 5. Job cgroup: created last before the clone, so no earlier failure can leak it. A
        //    memory limit this run asks for is applied or the run is refused.
        let cgroup = match &self.capabilities.cgroup {
            Some(support) if memory_max_bytes.is_none() || support.memory_controller => Some(
                cgroup::JobCgroup::create(support, &job.job_id, memory_max_bytes, policy.pids_max)?,
            ),
            _ if memory_max_bytes.is_some() => {
                return Err(SandboxError::HardeningUnavailable {
                    what: "memory_max_bytes",
                    detail: "this run sets a memory limit, which needs a cgroup_root offering \
                             the memory controller"
                        .into(),
                });
            }
            _ => None,
        };
        let cgroup_limits = cgroup
            .as_ref()
            .map_or((None, None), |c| (c.memory_max_bytes, c.pids_max));
        let (limit_array, limit_count) = limits.as_array();
        let plan = ChildPlan {
            cgroup_procs: cgroup.as_ref().map(|c| c.procs.clone()),
            limits: limit_array,
            limit_count,
            network_namespace: self
                .empty_network
                .as_ref()
                .filter(|_| network_isolated)
                .map(|fd| fd.as_raw_fd()),
            run_as,
            parent_pid: self.daemon_pid,
            new_session: self.capabilities.controlling_terminal,
            landlock_ruleset: landlock_fd.as_ref().map(|fd| fd.as_raw_fd()),
            // With a dedicated uid, setuid away from root already clears every capability (and
            // no_new_privs blocks file capabilities). The bounding set is empty either way.
            clear_capabilities: self.capabilities.last_capability.is_some() && run_as.is_none(),
            report: child::ChildReport::default(),
        };
        let cwd = job
            .input_root
            .as_ref()
            .map_or(&self.allowed[0].path, |root| &root.path);
        let image = exec_image(&spec.binary, &job.argv, &env, cwd)?;

        // 6. Clone + exec on a spawner thread.
        let child = self.spawner.spawn(image, plan).await;
        drop(landlock_fd);
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                if let Some(cgroup) = cgroup {
                    let _ = tokio::task::spawn_blocking(move || cgroup.remove()).await;
                }
                return Err(e);
            }
        };
        // 7. Watch the leader; from here on every exit path kills and reaps it.
        let pid = child.pid;
        let watched = Leader::watch(pid, child.pidfd)
            .and_then(|leader| Ok((leader, output_pipes(child.stdout, child.stderr)?)));
        let (leader, (out_pipe, err_pipe)) = match watched {
            Ok(watched) => watched,
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || reaper::abandon(pid)).await;
                if let Some(cgroup) = cgroup {
                    let _ = tokio::task::spawn_blocking(move || cgroup.remove()).await;
                }
                return Err(e);
            }
        };
        if let Ok(pid) = u32::try_from(pid) {
            spawned(pid);
        }

        // 8. Supervise (timeout, cancellation, kill, sweep, reap) while draining the output.
        let cap = tightest(Some(policy.max_output_bytes), spec.limits.max_output_bytes)
            .unwrap_or(policy.max_output_bytes);
        let mut stdout = Captured::default();
        let mut stderr = Captured::default();
        let outcome = {
            let drains = async {
                tokio::join!(
                    drain(out_pipe, cap, &mut stdout),
                    drain(err_pipe, cap, &mut stderr)
                )
            };
            let supervise = run::supervise(
                leader,
                cgroup.as_ref(),
                spec.timeout,
                policy.kill_grace,
                cancel,
            );
            tokio::pin!(drains, supervise);
            let mut drained = false;
            let outcome = loop {
                tokio::select! {
                    _ = &mut drains, if !drained => drained = true,
                    outcome = &mut supervise => break outcome,
                }
            };
            if !drained {
                let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, &mut drains).await;
            }
            outcome
        };
        // 9. Remove the job cgroup, empty the private dirs (nobody waits for that) and report.
        if let Some(cgroup) = cgroup {
            let _ = tokio::task::spawn_blocking(move || cgroup.remove()).await;
        }
        // Only a job whose processes are all dead gets its slot checked now: a slot returned
        // unchecked is checked again before its next lease.
        if outcome.is_ok()
            && let Err(private) = private.release_if_clean()
        {
            drop(tokio::task::spawn_blocking(move || private.clear()));
        }
        let outcome = outcome?;
        let mut argv = Vec::with_capacity(job.argv.len() + 1);
        argv.push(spec.binary.display().to_string());
        argv.extend(job.argv);
        Ok(RunResult {
            argv,
            exit_code: outcome.status.code,
            signal: outcome.status.signal,
            timed_out: outcome.timed_out,
            cancelled: outcome.cancelled,
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            stdout_truncated: stdout.truncated,
            stderr_truncated: stderr.truncated,
            duration: started.elapsed(),
            output_dir: job.output_dir,
            protections: Protections {
                no_new_privs: true,
                new_session: self.capabilities.controlling_terminal,
                parent_death_signal: true,
                only_std_fds: true,
                capabilities_dropped: self.capabilities.last_capability.is_some(),
                landlock,
                network_isolated,
                containment: if self.capabilities.cgroup.is_some() {
                    Containment::Cgroup
                } else {
                    Containment::ProcessGroup
                },
                memory_max_bytes: cgroup_limits.0,
                pids_max: cgroup_limits.1,
                run_as,
                rlimits: limits,
            },
        })
    }

    /// Removes every private directory an earlier daemon left under `jobs_root`; returns how
    /// many entries were removed. For a daemon starting up, before it runs any job: it also
    /// removes the directories of live jobs of any other process sharing the root.
    pub fn remove_leftover_private_dirs(&self) -> std::io::Result<usize> {
        self.private_dirs.remove_leftovers()
    }

    fn dedicated_identity(&self) -> Option<RunAs> {
        self.policy
            .run_as
            .filter(|_| self.capabilities.running_as_root)
    }
}

/// `Sandbox` is shared between jobs through an `Arc`.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Sandbox>();
};

/// What `policy` asks of this host that it cannot give, each as the error [`Sandbox::new`] would
/// return, found without creating anything (for `toolgate config check`): a `run_as` identity
/// without a root daemon, `landlock` or `network_isolation` set to `required` where the kernel
/// or the daemon's privileges do not offer them, and a `cgroup_root` or cgroup limit that
/// cannot be used.
pub fn host_shortfalls(policy: &SandboxPolicy) -> Vec<SandboxError> {
    let mut shortfalls = Vec::new();
    if policy.run_as.is_some() && !capabilities::running_as_root() {
        shortfalls.push(run_as_needs_root(policy));
    }
    if policy.landlock == Hardening::Required && landlock_rules::probe() == Enforcement::NotEnforced
    {
        shortfalls.push(landlock_unavailable());
    }
    // The probe's namespace is dropped at once: nothing stays behind.
    if policy.network_isolation == Hardening::Required
        && capabilities::create_empty_network_namespace().is_none()
    {
        shortfalls.push(network_isolation_unavailable());
    }
    // Read only (`cgroup::detect` would enable controllers and create a probe group).
    match &policy.cgroup_root {
        None => shortfalls.extend(cgroup_limits_unavailable(policy, None)),
        Some(root) => match cgroup::controllers(root) {
            Ok(offered) => shortfalls.extend(cgroup_limits_unavailable(policy, Some(offered))),
            Err(unusable) => shortfalls.push(unusable),
        },
    }
    shortfalls
}

/// The cgroup limits `policy` sets that cannot be applied: `offered` is what `cgroup_root`
/// offers, `None` when no cgroup_root is configured.
fn cgroup_limits_unavailable(
    policy: &SandboxPolicy,
    offered: Option<cgroup::Controllers>,
) -> Vec<SandboxError> {
    let (memory, pids) = offered.map_or((false, false), |c| (c.memory, c.pids));
    let why = |controller: &str| match offered {
        None => "it needs a cgroup_root (a delegated cgroup v2 directory)".to_string(),
        Some(_) => format!("the cgroup_root does not offer the {controller} controller"),
    };
    let mut unavailable = Vec::new();
    if policy.memory_max_bytes.is_some() && !memory {
        unavailable.push(SandboxError::HardeningUnavailable {
            what: "memory_max_bytes",
            detail: why("memory"),
        });
    }
    if policy.pids_max.is_some() && !pids {
        unavailable.push(SandboxError::HardeningUnavailable {
            what: "pids_max",
            detail: why("pids"),
        });
    }
    unavailable
}

fn run_as_needs_root(policy: &SandboxPolicy) -> SandboxError {
    policy_error(
        "run_as",
        &format!("{:?}", policy.run_as),
        "switching identity needs a root daemon",
    )
}

fn landlock_unavailable() -> SandboxError {
    SandboxError::HardeningUnavailable {
        what: "landlock",
        detail: "the kernel does not enforce Landlock".into(),
    }
}

fn network_isolation_unavailable() -> SandboxError {
    SandboxError::HardeningUnavailable {
        what: "network_isolation",
        detail: "the daemon may not create a network namespace".into(),
    }
}

fn policy_error(field: &'static str, value: &str, reason: &str) -> SandboxError {
    SandboxError::Policy {
        field,
        value: error::truncate_value(value),
        reason: reason.to_string(),
    }
}

fn create_root(path: &std::path::Path) -> Result<HeldDir, SandboxError> {
    std::fs::create_dir_all(path).map_err(|source| SandboxError::CreateDir {
        path: path.to_path_buf(),
        source,
    })?;
    HeldDir::open(path).map_err(|source| SandboxError::OpenDir {
        path: path.to_path_buf(),
        source,
    })
}

/// The C strings execve needs. Arguments were NUL-checked by `prepare`, the environment by
/// `env::build_env`; the binary and workspace paths come from the daemon.
fn exec_image(
    binary: &std::path::Path,
    argv: &[String],
    env: &[(String, String)],
    cwd: &std::path::Path,
) -> Result<exec::ExecImage, SandboxError> {
    let c_string = |value: &[u8]| {
        CString::new(value).map_err(|_| SandboxError::BinaryUnavailable {
            name: error::truncate_value(&String::from_utf8_lossy(value)),
            reason: "contains a NUL byte".into(),
        })
    };
    let program = c_string(binary.as_os_str().as_bytes())?;
    let mut c_argv = vec![program.clone()];
    for arg in argv {
        c_argv.push(c_string(arg.as_bytes())?);
    }
    let envp = env
        .iter()
        .map(|(name, value)| c_string(format!("{name}={value}").as_bytes()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(exec::ExecImage {
        program,
        argv: c_argv,
        envp,
        cwd: c_string(cwd.as_os_str().as_bytes())?,
    })
}

/// Registers the output pipes with the runtime. `exec::spawn` created them as pipes with
/// non-blocking read ends, which is what the unchecked constructor requires (the checked one
/// spends an `fstat` and two `fcntl` per pipe finding that out again).
fn output_pipes(
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<(pipe::Receiver, pipe::Receiver), SandboxError> {
    let pipe_error = |source| SandboxError::Pipe {
        what: "tool output",
        source,
    };
    Ok((
        pipe::Receiver::from_owned_fd_unchecked(stdout).map_err(pipe_error)?,
        pipe::Receiver::from_owned_fd_unchecked(stderr).map_err(pipe_error)?,
    ))
}
