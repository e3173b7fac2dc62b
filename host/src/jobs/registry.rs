//! The registry of live jobs: what is queued or running now, and how to cancel it.
//!
//! Invariants: an entry exists exactly while its job task is alive (inserted before the task is
//! spawned, removed by the task's guard), so cancelling by id (or all, at shutdown) reaches a job
//! that can still react; a job is shown (`get`, `list`, by pid) only once its record is written,
//! so every job the process endpoints show can also be read from the jobs API. Each entry keeps
//! its owning tenant; the service shows and cancels a job only for its owner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use toolgate_model::JobStatus;

/// A live job as the process endpoints show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveJobInfo {
    pub job_id: String,
    pub tool: String,
    /// `queued` or `running`.
    #[schema(value_type = super::JobStatusSchema)]
    pub status: JobStatus,
    pub command: String,
    pub created_at: String,
    /// Seconds since the job was admitted.
    pub elapsed_secs: f64,
    /// The tool's process id while it runs (HexStrike's `pid`; the process endpoints accept it
    /// in place of the job id); absent while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The tenant that owns the job (not shown: a caller only ever sees its own).
    #[serde(skip)]
    #[schema(ignore)]
    pub owner: String,
}

#[derive(Debug)]
struct Entry {
    owner: String,
    tool: String,
    command: String,
    status: JobStatus,
    created_at: String,
    admitted: Instant,
    pid: Option<u32>,
    /// Whether the job's record is written (it is shown only then).
    recorded: bool,
    cancel: CancellationToken,
}

/// Live jobs by id; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct JobRegistry {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

/// Removes the job from the registry when dropped (the job task owns it).
#[derive(Debug)]
pub struct Registration {
    registry: JobRegistry,
    id: String,
}

impl JobRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a queued job.
    pub fn register(
        &self,
        id: &str,
        owner: &str,
        tool: &str,
        command: &str,
        created_at: &str,
        cancel: CancellationToken,
    ) -> Registration {
        self.lock().insert(
            id.to_string(),
            Entry {
                owner: owner.to_string(),
                tool: tool.to_string(),
                command: command.to_string(),
                status: JobStatus::Queued,
                created_at: created_at.to_string(),
                admitted: Instant::now(),
                pid: None,
                recorded: false,
                cancel,
            },
        );
        Registration {
            registry: self.clone(),
            id: id.to_string(),
        }
    }

    /// Shows the job: its record is written.
    pub fn mark_recorded(&self, id: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.recorded = true;
        }
    }

    pub fn mark_running(&self, id: &str) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.status = JobStatus::Running;
        }
    }

    /// Records the process id of a running job's tool, or that it has ended (`None`: the id
    /// may soon name another process).
    pub fn set_pid(&self, id: &str, pid: Option<u32>) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.pid = pid;
        }
    }

    /// The live job whose tool runs as `pid`, if any: a pid never reaches a process that is
    /// not a live job's tool.
    pub fn get_by_pid(&self, pid: u32) -> Option<ActiveJobInfo> {
        self.lock()
            .iter()
            .find(|(_, entry)| entry.recorded && entry.pid == Some(pid))
            .map(|(id, entry)| info(id, entry))
    }

    /// Cancels a live job; false when no such job is live.
    pub fn cancel(&self, id: &str) -> bool {
        match self.lock().get(id) {
            Some(entry) => {
                entry.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every live job (shutdown).
    pub fn cancel_all(&self) -> usize {
        let entries = self.lock();
        for entry in entries.values() {
            entry.cancel.cancel();
        }
        entries.len()
    }

    pub fn get(&self, id: &str) -> Option<ActiveJobInfo> {
        self.lock()
            .get(id)
            .filter(|entry| entry.recorded)
            .map(|entry| info(id, entry))
    }

    /// Live jobs, oldest first.
    pub fn list(&self) -> Vec<ActiveJobInfo> {
        let mut jobs: Vec<_> = self
            .lock()
            .iter()
            .filter(|(_, entry)| entry.recorded)
            .map(|(id, entry)| info(id, entry))
            .collect();
        jobs.sort_by(|a, b| b.elapsed_secs.total_cmp(&a.elapsed_secs));
        jobs
    }
}

fn info(id: &str, entry: &Entry) -> ActiveJobInfo {
    ActiveJobInfo {
        job_id: id.to_string(),
        tool: entry.tool.clone(),
        status: entry.status,
        command: entry.command.clone(),
        created_at: entry.created_at.clone(),
        elapsed_secs: entry.admitted.elapsed().as_secs_f64(),
        pid: entry.pid,
        owner: entry.owner.clone(),
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reaches_live_jobs_only() {
        let registry = JobRegistry::default();
        let token = CancellationToken::new();
        let registration = registry.register(
            "a",
            "local",
            "terrascan",
            "terrascan scan",
            "t",
            token.clone(),
        );
        registry.mark_recorded("a");
        registry.mark_running("a");
        assert_eq!(
            registry.get("a").map(|j| j.status),
            Some(JobStatus::Running)
        );
        let table = [("a", true), ("b", false)];
        for (id, found) in table {
            assert_eq!(registry.cancel(id), found, "{id}");
        }
        assert!(token.is_cancelled());
        drop(registration);
        assert!(
            !registry.cancel("a"),
            "gone once the task dropped its registration"
        );
        assert!(registry.list().is_empty());
    }

    #[test]
    fn a_pid_finds_only_the_live_job_whose_tool_runs_as_it() {
        let registry = JobRegistry::default();
        let token = CancellationToken::new();
        let registration = registry.register("a", "local", "t", "c", "t", token.clone());
        let _other = registry.register("b", "local", "t", "c", "t", CancellationToken::new());
        registry.mark_recorded("a");
        assert_eq!(
            registry.get_by_pid(4242).map(|job| job.job_id),
            None,
            "queued: no pid yet"
        );
        registry.set_pid("a", Some(4242));
        assert_eq!(registry.get("a").and_then(|job| job.pid), Some(4242));
        let table = [(4242, Some("a")), (4243, None), (1, None)];
        for (pid, job) in table {
            assert_eq!(
                registry.get_by_pid(pid).map(|job| job.job_id).as_deref(),
                job,
                "{pid}"
            );
        }
        registry.set_pid("a", None);
        assert_eq!(
            registry.get_by_pid(4242).map(|job| job.job_id),
            None,
            "the tool ended"
        );
        registry.set_pid("a", Some(4242));
        drop(registration);
        assert_eq!(
            registry.get_by_pid(4242).map(|job| job.job_id),
            None,
            "the job ended"
        );
    }

    #[test]
    fn a_job_is_shown_once_recorded_and_cancellable_before() {
        let registry = JobRegistry::default();
        let token = CancellationToken::new();
        let _registration = registry.register("a", "local", "t", "c", "t", token.clone());
        assert!(registry.get("a").is_none());
        assert!(registry.list().is_empty());
        assert!(
            registry.cancel("a"),
            "shutdown reaches it before its record is written"
        );
        assert!(token.is_cancelled());
        registry.mark_recorded("a");
        assert_eq!(registry.list().len(), 1);
        assert!(registry.get("a").is_some());
    }

    #[test]
    fn cancel_all_cancels_every_live_job() {
        let registry = JobRegistry::default();
        let tokens: Vec<_> = (0..3).map(|_| CancellationToken::new()).collect();
        let _registrations: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| registry.register(&i.to_string(), "local", "t", "c", "t", t.clone()))
            .collect();
        assert_eq!(registry.cancel_all(), 3);
        assert!(tokens.iter().all(CancellationToken::is_cancelled));
    }
}
