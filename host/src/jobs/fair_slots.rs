//! Running slots shared fairly between tenants: when a slot frees up and jobs wait, it goes to
//! the waiting tenant with the fewest jobs running, and among those to the one served longest
//! ago; each tenant's own jobs start in the order they came.
//!
//! Why not a FIFO semaphore: with one queue, a tenant that submits a hundred jobs puts every
//! other tenant's next job behind all of them. Here a tenant's flood only delays its own jobs;
//! another tenant's job takes the next free slot (issue #16, "fair scheduling between tenants").
//!
//! Invariants: at most `capacity` slots are held at once; a slot is free only when nobody
//! waits for it (a released slot is handed straight to a waiter, never left free while one
//! waits); a waiter that gave up (its future dropped) is skipped, and its slot goes to the next.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// The slots and who waits for them; cheap to clone.
#[derive(Debug, Clone)]
pub struct FairSlots {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// Per tenant: jobs running, when it was last served, and its waiters in arrival order.
    tenants: BTreeMap<String, TenantQueue>,
    /// Counts grants, so "served longest ago" is a comparison of numbers.
    grants: u64,
}

#[derive(Debug, Default)]
struct TenantQueue {
    running: usize,
    last_served: u64,
    waiting: VecDeque<oneshot::Sender<Slot>>,
}

/// One held running slot of `tenant`; dropping it hands it on.
#[derive(Debug)]
pub struct Slot {
    state: Arc<Mutex<State>>,
    tenant: String,
}

impl FairSlots {
    /// `capacity` slots, all free.
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                free: capacity,
                tenants: BTreeMap::new(),
                grants: 0,
            })),
        }
    }

    /// A slot for `tenant` if one is free now (so nobody waits).
    pub fn try_acquire(&self, tenant: &str) -> Option<Slot> {
        let mut state = self.lock();
        state.prune_gone_waiters();
        if state.free == 0 || state.anyone_waiting() {
            return None;
        }
        state.free -= 1;
        Some(state.grant(&self.state, tenant))
    }

    /// Waits for a slot for `tenant`; dropping the future gives up its place.
    pub async fn acquire(&self, tenant: &str) -> Slot {
        let receiver = {
            let mut state = self.lock();
            state.prune_gone_waiters();
            if state.free > 0 && !state.anyone_waiting() {
                state.free -= 1;
                return state.grant(&self.state, tenant);
            }
            let (sender, receiver) = oneshot::channel();
            state
                .tenants
                .entry(tenant.to_string())
                .or_default()
                .waiting
                .push_back(sender);
            receiver
        };
        match receiver.await {
            Ok(slot) => slot,
            // The sender lives in the state, which this value keeps alive, and is only dropped
            // after a send: unreachable, but a fresh wait is the safe answer.
            Err(_) => Box::pin(self.acquire(tenant)).await,
        }
    }

    /// Jobs running for `tenant` now.
    #[cfg(test)]
    fn running(&self, tenant: &str) -> usize {
        self.lock()
            .tenants
            .get(tenant)
            .map_or(0, |queue| queue.running)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn anyone_waiting(&self) -> bool {
        self.tenants.values().any(|queue| !queue.waiting.is_empty())
    }

    fn prune_gone_waiters(&mut self) {
        for queue in self.tenants.values_mut() {
            queue.waiting.retain(|sender| !sender.is_closed());
        }
        self.tenants
            .retain(|_, queue| queue.running > 0 || !queue.waiting.is_empty());
    }

    /// Counts a slot as `tenant`'s (the caller took it from `free` or from a release).
    fn grant(&mut self, state: &Arc<Mutex<State>>, tenant: &str) -> Slot {
        self.grants += 1;
        let grants = self.grants;
        let queue = self.tenants.entry(tenant.to_string()).or_default();
        queue.running += 1;
        queue.last_served = grants;
        Slot {
            state: Arc::clone(state),
            tenant: tenant.to_string(),
        }
    }

    /// The tenant the next free slot goes to: fewest running, then served longest ago.
    fn next_tenant(&self) -> Option<String> {
        self.tenants
            .iter()
            .filter(|(_, queue)| !queue.waiting.is_empty())
            .min_by_key(|(_, queue)| (queue.running, queue.last_served))
            .map(|(tenant, _)| tenant.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = state.tenants.get_mut(&self.tenant) {
            queue.running = queue.running.saturating_sub(1);
        }
        // Hand the slot to the next waiter still there; the first that is gone is skipped.
        while let Some(tenant) = state.next_tenant() {
            let Some(sender) = state
                .tenants
                .get_mut(&tenant)
                .and_then(|queue| queue.waiting.pop_front())
            else {
                break;
            };
            if sender.is_closed() {
                continue;
            }
            let slot = state.grant(&self.state, &tenant);
            match sender.send(slot) {
                Ok(()) => return,
                // Gave up between the check and the send: the returned slot is dropped below,
                // after the lock, and hands itself on in turn.
                Err(slot) => {
                    drop(state);
                    drop(slot);
                    return;
                }
            }
        }
        state.free += 1;
        state.prune_gone_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_free_slot_is_taken_at_once_and_comes_back_on_drop() {
        let slots = FairSlots::new(2);
        let a = slots.try_acquire("a").expect("first");
        let b = slots.try_acquire("b").expect("second");
        assert!(slots.try_acquire("a").is_none(), "both held");
        assert_eq!(slots.running("a"), 1);
        drop(a);
        assert!(slots.try_acquire("c").is_some(), "a's slot is free again");
        drop(b);
    }

    #[tokio::test]
    async fn a_flooding_tenant_does_not_hold_back_another_tenants_job() {
        let slots = FairSlots::new(1);
        let first = slots.try_acquire("flood").expect("the only slot");
        // Ten of "flood"'s jobs wait, then one of "quiet"'s.
        let mut waiters = Vec::new();
        for i in 0..10 {
            let slots = slots.clone();
            waiters.push(tokio::spawn(async move {
                let slot = slots.acquire("flood").await;
                (format!("flood-{i}"), slot)
            }));
            tokio::task::yield_now().await;
        }
        let quiet = {
            let slots = slots.clone();
            tokio::spawn(async move { ("quiet".to_string(), slots.acquire("quiet").await) })
        };
        tokio::task::yield_now().await;
        waiters.push(quiet);
        drop(first);
        // The freed slot goes to "quiet" (no job running) before any of "flood"'s queue.
        let mut order = Vec::new();
        let mut pending = waiters;
        while !pending.is_empty() {
            let ((name, slot), rest) = first_to_finish(pending).await;
            order.push(name);
            drop(slot);
            pending = rest;
        }
        assert_eq!(order[0], "quiet", "order of service: {order:?}");
        let floods: Vec<_> = order[1..].to_vec();
        let expected: Vec<_> = (0..10).map(|i| format!("flood-{i}")).collect();
        assert_eq!(floods, expected, "a tenant's own jobs keep their order");
    }

    /// Waits for the first of `tasks` to finish (a slot is handed to one waiter at a time);
    /// returns its output and the others.
    async fn first_to_finish<T: Send + 'static>(
        mut tasks: Vec<tokio::task::JoinHandle<T>>,
    ) -> (T, Vec<tokio::task::JoinHandle<T>>) {
        loop {
            if let Some(index) = tasks.iter().position(|task| task.is_finished()) {
                let task = tasks.remove(index);
                return (task.await.expect("waiter"), tasks);
            }
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn equal_tenants_take_turns() {
        let slots = FairSlots::new(1);
        let first = slots.try_acquire("a").expect("the only slot");
        let mut waiters = Vec::new();
        for tenant in ["a", "a", "a", "b", "b", "b"] {
            let slots = slots.clone();
            waiters.push(tokio::spawn(async move {
                (tenant.to_string(), slots.acquire(tenant).await)
            }));
            tokio::task::yield_now().await;
        }
        drop(first);
        let mut order = Vec::new();
        let mut pending = waiters;
        while !pending.is_empty() {
            let ((name, slot), rest) = first_to_finish(pending).await;
            order.push(name);
            drop(slot);
            pending = rest;
        }
        assert_eq!(order, ["b", "a", "b", "a", "b", "a"]);
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_is_skipped() {
        let slots = FairSlots::new(1);
        let held = slots.try_acquire("a").expect("the only slot");
        let gone = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("b").await })
        };
        tokio::task::yield_now().await;
        gone.abort();
        let _ = gone.await;
        let next = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire("c").await })
        };
        tokio::task::yield_now().await;
        drop(held);
        let slot = next.await.expect("c gets the slot");
        assert_eq!(slot.tenant, "c");
        drop(slot);
        assert!(slots.try_acquire("d").is_some(), "and it comes back free");
    }
}
