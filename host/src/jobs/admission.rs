//! Admission control: at most `max_concurrent` jobs run and at most `max_queued` wait; running
//! slots are shared fairly between tenants (`FairSlots`).
//!
//! Invariants: a ticket is taken before any side effect of a job and released on drop, so every
//! exit path (error, cancel, panic) gives its place back; a request beyond
//! `max_concurrent + max_queued` is refused at once instead of waiting unboundedly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::fair_slots::{FairSlots, Slot};

/// Running and queued slots.
#[derive(Debug)]
pub struct Admission {
    running_slots: FairSlots,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

/// A place in the system (queued or running); released on drop.
#[derive(Debug)]
pub struct Ticket {
    admitted: Arc<AtomicUsize>,
    running_slots: FairSlots,
}

impl Admission {
    pub fn new(max_concurrent: usize, max_queued: usize) -> Self {
        Self {
            running_slots: FairSlots::new(max_concurrent),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: max_concurrent.saturating_add(max_queued),
        }
    }

    /// Takes a place if there is one.
    pub fn try_admit(&self) -> Option<Ticket> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                (current < self.capacity).then_some(current + 1)
            })
            .ok()
            .map(|_| Ticket {
                admitted: Arc::clone(&self.admitted),
                running_slots: self.running_slots.clone(),
            })
    }
}

impl Ticket {
    /// A running slot for `tenant` if one is free right now (free slots imply nobody is
    /// waiting: released slots go to waiters first).
    pub fn try_run_slot(&self, tenant: &str) -> Option<Slot> {
        self.running_slots.try_acquire(tenant)
    }

    /// Waits for a running slot for `tenant`, served fairly between tenants.
    pub async fn run_slot(&self, tenant: &str) -> Slot {
        self.running_slots.acquire(tenant).await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_table() {
        let table = [(1, 0, 1), (1, 2, 3), (4, 32, 36)];
        for (concurrent, queued, expected) in table {
            let admission = Admission::new(concurrent, queued);
            let tickets: Vec<_> = std::iter::from_fn(|| admission.try_admit())
                .take(100)
                .collect();
            assert_eq!(tickets.len(), expected, "{concurrent}+{queued}");
            drop(tickets);
            assert!(admission.try_admit().is_some(), "places come back on drop");
        }
    }

    #[tokio::test]
    async fn a_second_job_waits_for_the_only_slot() {
        let admission = Admission::new(1, 1);
        let first = admission.try_admit().expect("first");
        let second = admission.try_admit().expect("second (queued)");
        assert!(admission.try_admit().is_none(), "third refused");
        let slot = first.try_run_slot("a").expect("the free slot");
        assert!(second.try_run_slot("a").is_none());
        drop(slot);
        drop(first);
        drop(second.run_slot("a").await);
    }
}
