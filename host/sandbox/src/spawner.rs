//! The dedicated spawner threads and the registry of live job leaders.
//!
//! Why dedicated threads: PR_SET_PDEATHSIG fires when the parent *thread* exits, not the
//! process. A child cloned from a tokio worker or blocking-pool thread would be SIGKILLed
//! whenever that thread retires (the blocking pool retires idle threads after 10 s). Every
//! clone therefore happens on a spawner thread that lives exactly as long as the `Sandbox`: a
//! job dies with the sandbox that started it, or with the daemon, never with an unrelated
//! thread.
//!
//! Why several: a clone with CLONE_VFORK holds its thread until the child's `execve` has loaded
//! the tool, about a millisecond of wall time on a busy machine. One thread capped the daemon
//! at one spawn per such wait while the cores sat idle (measured: 98% busy, ~1.35 ms per spawn,
//! ~45% of the CPU idle at 32 concurrent jobs). Requests go round-robin to a few threads, each
//! with its own queue: one wake-up per spawn (a shared queue behind a mutex costs a second one,
//! measurable on an idle machine where every cross-core wake-up leaves a sleeping vCPU).
//!
//! Why the threads empty their own capability bounding set: a clone inherits the creating
//! thread's credentials, so a spawner thread that dropped every capability from its bounding
//! set once at start-up hands children an empty one. Dropping them in each child instead cost
//! one credential commit per capability, ~80 µs per job (41 `PR_CAPBSET_DROP` calls, measured
//! with `bench overhead`), about as much as everything else the executor adds. The bounding set
//! only shapes what an `execve` of this thread could gain, and spawner threads never exec.
//!
//! Why a registry: the daemon is a child subreaper, so descendants orphaned by a job are
//! reparented to it. `reaper.rs` kills and reaps every child of the daemon that is NOT a live
//! leader in this registry. Two process-wide locks (subreaping is process-wide, and several
//! `Sandbox` values may coexist, e.g. in tests), always taken in this order:
//! - `SPAWNING` is held shared by each spawner across clone + registry insert, and exclusively
//!   by an orphan scan that can see leaders, so a just-started leader is never mistaken for an
//!   orphan;
//! - `LIVE_LEADERS` (the registry) is only ever held for a set operation or a `waitpid` on an
//!   exited child, never across a clone: a job reaping its leader on an async worker never
//!   waits for another job's spawn (a clone with CLONE_VFORK lasts until the child's execve).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::oneshot;

use crate::child::ChildPlan;
use crate::error::SandboxError;
use crate::exec::{self, ChildStack, ExecImage, Spawned, StdioSlots};

/// Spawner threads per core: while one waits for its child's `execve`, another clones.
const SPAWNERS_PER_CORE: usize = 2;
/// Most spawner threads: each holds a thread stack and a child stack; more than this many
/// concurrent clones would only queue on the kernel's own locks.
const MAX_SPAWNERS: usize = 16;

static SPAWNING: RwLock<()> = RwLock::new(());
static LIVE_LEADERS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

/// Keeps clones out while held (take it before `live_leaders`).
pub fn no_spawn_in_flight() -> RwLockWriteGuard<'static, ()> {
    SPAWNING
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held by a spawner across one clone + registry insert.
fn spawn_in_flight() -> RwLockReadGuard<'static, ()> {
    SPAWNING
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks the registry of live leaders (a poisoned lock still holds a valid set).
pub fn live_leaders() -> MutexGuard<'static, BTreeSet<libc::pid_t>> {
    LIVE_LEADERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SpawnRequest {
    image: ExecImage,
    plan: ChildPlan,
    reply: oneshot::Sender<Result<Spawned, SandboxError>>,
}

/// Handle to the spawner threads; dropping it ends them.
pub struct Spawner {
    queues: Vec<mpsc::Sender<SpawnRequest>>,
    next: AtomicUsize,
}

impl Spawner {
    /// Starts the spawner threads. With `empty_bounding_set = Some(cap_last_cap)` (a root
    /// daemon), each thread drops capabilities 0..=cap_last_cap from its own bounding set before
    /// it serves a request, and every child inherits the empty set; a thread that cannot makes
    /// this fail.
    pub fn start(empty_bounding_set: Option<u32>) -> Result<Self, SandboxError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = (cores * SPAWNERS_PER_CORE).clamp(SPAWNERS_PER_CORE, MAX_SPAWNERS);
        let mut queues = Vec::with_capacity(threads);
        for index in 0..threads {
            let slots = StdioSlots::open().map_err(SandboxError::SpawnerThread)?;
            let stack = ChildStack::new().map_err(SandboxError::SpawnerThread)?;
            let (sender, receiver) = mpsc::channel::<SpawnRequest>();
            let (ready, started) = mpsc::sync_channel::<std::io::Result<()>>(1);
            std::thread::Builder::new()
                .name(format!("toolgate-spawner-{index}"))
                .spawn(move || {
                    let dropped = empty_bounding_set.map_or(Ok(()), drop_bounding_set);
                    let serving = dropped.is_ok();
                    let _ = ready.send(dropped);
                    if serving {
                        serve(&receiver, &stack, &slots);
                    }
                })
                .map_err(SandboxError::SpawnerThread)?;
            started
                .recv()
                .map_err(|_| SandboxError::SpawnerGone)?
                .map_err(SandboxError::BoundingSet)?;
            queues.push(sender);
        }
        Ok(Self {
            queues,
            next: AtomicUsize::new(0),
        })
    }

    /// Starts `image` under `plan` on a spawner thread; the child is registered as a leader.
    pub async fn spawn(&self, image: ExecImage, plan: ChildPlan) -> Result<Spawned, SandboxError> {
        let (reply, answer) = oneshot::channel();
        let mut request = SpawnRequest { image, plan, reply };
        // Round-robin; a queue whose thread died (a panic) hands the request to the next one.
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..self.queues.len() {
            let index = first.wrapping_add(offset) % self.queues.len();
            match self.queues[index].send(request) {
                Ok(()) => return answer.await.map_err(|_| SandboxError::SpawnerGone)?,
                Err(mpsc::SendError(returned)) => request = returned,
            }
        }
        Err(SandboxError::SpawnerGone)
    }
}

/// One spawner thread: takes requests until its sender is gone.
fn serve(queue: &mpsc::Receiver<SpawnRequest>, stack: &ChildStack, slots: &StdioSlots) {
    for request in queue {
        let spawning = spawn_in_flight();
        let result = exec::spawn(&request.image, &request.plan, stack, slots);
        if let Ok(spawned) = &result {
            live_leaders().insert(spawned.pid);
        }
        drop(spawning);
        let _ = request.reply.send(result);
    }
}

/// Drops capabilities 0..=`last_capability` from the calling thread's bounding set.
fn drop_bounding_set(last_capability: u32) -> std::io::Result<()> {
    for capability in 0..=last_capability {
        // SAFETY: prctl with integer arguments only; affects the calling thread's credentials.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(capability),
                0,
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
