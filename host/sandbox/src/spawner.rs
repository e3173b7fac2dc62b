//! The dedicated spawner thread and the registry of live job leaders.
//!
//! Why a thread: PR_SET_PDEATHSIG fires when the parent *thread* exits, not the process. A
//! child cloned from a tokio worker or blocking-pool thread would be SIGKILLed whenever that
//! thread retires (the blocking pool retires idle threads after 10 s). Every clone therefore
//! happens on one thread that lives exactly as long as the `Sandbox`: a job dies with the
//! sandbox that started it, or with the daemon, never with an unrelated thread.
//!
//! Why a registry: the daemon is a child subreaper, so descendants orphaned by a job are
//! reparented to it. `reaper.rs` kills and reaps every child of the daemon that is NOT a live
//! leader in this registry. The lock is held across clone + insert and across the orphan scan,
//! so a just-started leader can never be mistaken for an orphan. The registry is process-wide
//! because subreaping is process-wide (several `Sandbox` values may coexist, e.g. in tests).

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::child::ChildPlan;
use crate::error::SandboxError;
use crate::exec::{self, ChildStack, ExecImage, Spawned};

static LIVE_LEADERS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

/// Locks the registry of live leaders (a poisoned lock still holds a valid set).
pub fn live_leaders() -> MutexGuard<'static, BTreeSet<libc::pid_t>> {
    LIVE_LEADERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SpawnRequest {
    image: ExecImage,
    plan: ChildPlan,
    report_read: OwnedFd,
    reply: oneshot::Sender<Result<Spawned, SandboxError>>,
}

/// Handle to the spawner thread; dropping it ends the thread.
pub struct Spawner {
    requests: Mutex<mpsc::Sender<SpawnRequest>>,
}

impl Spawner {
    pub fn start() -> Result<Self, SandboxError> {
        let (sender, receiver) = mpsc::channel::<SpawnRequest>();
        let stack = ChildStack::new().map_err(SandboxError::SpawnerThread)?;
        std::thread::Builder::new()
            .name("toolgate-spawner".into())
            .spawn(move || {
                for request in receiver {
                    let mut leaders = live_leaders();
                    let result =
                        exec::spawn(&request.image, &request.plan, &request.report_read, &stack);
                    if let Ok(spawned) = &result {
                        leaders.insert(spawned.pid);
                    }
                    drop(leaders);
                    let _ = request.reply.send(result);
                }
            })
            .map_err(SandboxError::SpawnerThread)?;
        Ok(Self {
            requests: Mutex::new(sender),
        })
    }

    /// Starts `image` under `plan` on the spawner thread; the child is registered as a leader.
    pub async fn spawn(
        &self,
        image: ExecImage,
        plan: ChildPlan,
        report_read: OwnedFd,
    ) -> Result<Spawned, SandboxError> {
        let (reply, answer) = oneshot::channel();
        let request = SpawnRequest {
            image,
            plan,
            report_read,
            reply,
        };
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send(request)
            .map_err(|_| SandboxError::SpawnerGone)?;
        answer.await.map_err(|_| SandboxError::SpawnerGone)?
    }
}
