//! Each tenant's `quotas.requests_per_second`, enforced with `governor` (GCRA, bursts of as
//! many requests as the per-second rate).
//!
//! Invariants: one limiter per tenant with a rate, built once from the validated tenants, so
//! memory is fixed by the configuration; a tenant without a rate (or an unknown id, such as the
//! implicit loopback tenant) is never limited here; checking is lock-free.

use std::collections::HashMap;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::failures::RetryAfter;
use crate::ids::TenantId;
use crate::tenants::Tenants;

type Limiter<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Per-tenant request rate limits.
pub struct TenantRateLimiter<C: Clock = DefaultClock> {
    limiters: HashMap<TenantId, Limiter<C>>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for TenantRateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRateLimiter")
            .field("limited_tenants", &self.limiters.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TenantRateLimiter {
    /// Limiters for every tenant with `quotas.requests_per_second`, on the monotonic clock.
    pub fn new(tenants: &Tenants) -> Self {
        Self::with_clock(tenants, DefaultClock::default())
    }
}

impl<C: Clock + Clone> TenantRateLimiter<C> {
    /// Limiters on a given clock (tests use governor's `FakeRelativeClock`).
    pub fn with_clock(tenants: &Tenants, clock: C) -> Self {
        let limiters = tenants
            .iter()
            .filter_map(|tenant| {
                let rate = tenant.quotas.requests_per_second?;
                let limiter =
                    RateLimiter::direct_with_clock(Quota::per_second(rate), clock.clone());
                Some((tenant.id.clone(), limiter))
            })
            .collect();
        Self { limiters, clock }
    }

    /// Counts one request by `tenant`: refused with the wait when over its rate.
    pub fn check(&self, tenant: &TenantId) -> Result<(), RetryAfter> {
        match self.limiters.get(tenant) {
            Some(limiter) => limiter
                .check()
                .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now()))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::tenants::{GlobalLimits, QuotasConfig, TenantConfig};

    fn tenants() -> Tenants {
        let tenant = |id: &str, rate: Option<u32>| TenantConfig {
            id: id.into(),
            display_name: id.into(),
            access_keys: Vec::new(),
            allowed_tools: Vec::new(),
            allowed_dirs: Vec::new(),
            output_root: format!("/out/{id}").into(),
            quotas: QuotasConfig {
                requests_per_second: rate,
                ..QuotasConfig::default()
            },
            tools: Default::default(),
            role: Default::default(),
            run_as: None,
        };
        let globals = GlobalLimits {
            timeout_secs: 60,
            memory_bytes: None,
            max_output_bytes: 1,
            max_concurrent_jobs: 1,
            tools: Default::default(),
        };
        Tenants::validate(&[tenant("slow", Some(3)), tenant("free", None)], &globals)
            .expect("valid")
    }

    #[test]
    fn a_tenant_over_its_rate_waits_and_others_do_not() {
        let clock = FakeRelativeClock::default();
        let limiter = TenantRateLimiter::with_clock(&tenants(), clock.clone());
        let slow = TenantId::parse("slow").expect("id");
        let free = TenantId::parse("free").expect("id");
        for request in 0..3 {
            assert_eq!(
                limiter.check(&slow),
                Ok(()),
                "request {request} of the burst"
            );
        }
        let wait = limiter.check(&slow).expect_err("over the rate");
        assert!(
            wait.0 > Duration::ZERO && wait.0 <= Duration::from_millis(334),
            "{wait:?}"
        );
        for _ in 0..1000 {
            assert_eq!(limiter.check(&free), Ok(()), "no rate, no limit");
        }
        assert_eq!(
            limiter.check(&TenantId::parse("unknown").expect("id")),
            Ok(())
        );
        clock.advance(wait.0);
        assert_eq!(limiter.check(&slow), Ok(()), "allowed again after the wait");
        assert!(limiter.check(&slow).is_err());
    }
}
