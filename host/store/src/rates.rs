//! Tenants' request rates counted in the store, so that a `quotas.requests_per_second` holds
//! across every daemon sharing it (issue #19).
//!
//! The algorithm is GCRA (the one `governor` uses in memory): each tenant has a theoretical
//! arrival time (TAT); a request at `now` is let through when `max(TAT, now) - now` is at most
//! the burst tolerance, and then moves the TAT one emission interval (`1 s / rate`) further.
//! One row per tenant holds its TAT in microseconds of the database's clock, so daemons whose
//! clocks disagree still count against one timeline.
//!
//! Invariants: a store only one daemon uses answers [`RateDecision::Local`] and the daemon
//! keeps the count in memory (no round trip per request); a shared store decides each request
//! in one statement that locks the tenant's row, so two daemons never both take the last
//! request of a burst.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::{SqliteStore, StoreFuture};

/// What the store decided for one request of a rate-limited tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// This store is not shared: the daemon's own in-memory count decides.
    Local,
    /// Within the tenant's rate across all daemons.
    Allowed,
    /// Over the rate: the tenant may send again after this long.
    RetryAfter(Duration),
}

/// Counts requests per tenant across the daemons sharing the store.
pub trait RateStore: Send + Sync {
    /// Counts one request by `tenant`, whose rate is `per_second` requests a second with
    /// bursts of as many.
    fn take_request(&self, tenant: String, per_second: NonZeroU32) -> StoreFuture<RateDecision>;
}

impl RateStore for SqliteStore {
    fn take_request(&self, _tenant: String, _per_second: NonZeroU32) -> StoreFuture<RateDecision> {
        Box::pin(async { Ok(RateDecision::Local) })
    }
}

/// A rate's GCRA parameters in microseconds: the emission interval, and the burst tolerance
/// (a burst of `per_second` requests fits: `per_second - 1` intervals beyond the first).
pub(crate) fn gcra_micros(per_second: NonZeroU32) -> (i64, i64) {
    let interval = (1_000_000 / i64::from(per_second.get())).max(1);
    (interval, interval * (i64::from(per_second.get()) - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_parameters_fit_a_burst_of_the_rate() {
        let rate = |n| NonZeroU32::new(n).expect("non-zero");
        assert_eq!(gcra_micros(rate(1)), (1_000_000, 0));
        assert_eq!(gcra_micros(rate(5)), (200_000, 800_000));
        assert_eq!(gcra_micros(rate(4_000_000)), (1, 3_999_999));
    }
}
