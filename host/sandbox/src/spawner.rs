//! The dedicated spawner thread and the registry of live job leaders.
//!
//! Why a thread: PR_SET_PDEATHSIG fires when the parent *thread* exits, not the process. A
//! child forked from a tokio worker or blocking-pool thread would be SIGKILLed whenever that
//! thread retires (the blocking pool retires idle threads after 10 s). Every fork therefore
//! happens on one thread that lives exactly as long as the `Sandbox`: a job dies with the
//! sandbox that started it, or with the daemon, never with an unrelated thread.
//!
//! Why a registry: the daemon is a child subreaper, so descendants orphaned by a job are
//! reparented to it. `reaper.rs` kills and reaps every child of the daemon that is NOT a live
//! leader in this registry. The lock is held across fork + insert and across the orphan scan,
//! so a just-forked leader can never be mistaken for an orphan. The registry is process-wide
//! because subreaping is process-wide (several `Sandbox` values may coexist, e.g. in tests).

use std::collections::BTreeSet;
use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::error::SandboxError;

static LIVE_LEADERS: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

/// Locks the registry of live leaders (a poisoned lock still holds a valid set).
pub fn live_leaders() -> MutexGuard<'static, BTreeSet<libc::pid_t>> {
    LIVE_LEADERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SpawnRequest {
    command: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// Handle to the spawner thread; dropping it ends the thread.
pub struct Spawner {
    requests: Mutex<mpsc::Sender<SpawnRequest>>,
}

impl Spawner {
    pub fn start() -> Result<Self, SandboxError> {
        let (sender, receiver) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("toolgate-spawner".into())
            .spawn(move || {
                for request in receiver {
                    let mut leaders = live_leaders();
                    let result = spawn_registered(request.command, &mut leaders);
                    drop(leaders);
                    let _ = request.reply.send(result);
                }
            })
            .map_err(SandboxError::SpawnerThread)?;
        Ok(Self {
            requests: Mutex::new(sender),
        })
    }

    /// Forks and execs `command` on the spawner thread; the child is registered as a leader.
    pub async fn spawn(&self, command: Command) -> Result<io::Result<Child>, SandboxError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send(SpawnRequest { command, reply })
            .map_err(|_| SandboxError::SpawnerGone)?;
        answer.await.map_err(|_| SandboxError::SpawnerGone)
    }
}

fn spawn_registered(
    mut command: Command,
    leaders: &mut BTreeSet<libc::pid_t>,
) -> io::Result<Child> {
    let child = command.spawn()?;
    leaders.insert(child.id() as libc::pid_t);
    Ok(child)
}
