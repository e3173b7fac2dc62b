//! Each tenant's `quotas.requests_per_second` as the daemon enforces it: in memory
//! (`toolgate_auth::TenantRateLimiter`) on every request, and, when the store is shared by
//! several daemons, also in the store, so the rate holds across all of them (issue #19).
//!
//! Invariants: the in-memory count always runs first, so one daemon alone never lets a tenant
//! past its rate and an over-rate tenant costs no round trip; the store is asked only for
//! tenants with a rate; a store that fails or is slower than [`SHARED_CHECK_TIMEOUT`] leaves
//! the decision to the in-memory count (each daemon then holds the rate on its own, so a
//! tenant may briefly get up to one rate per daemon) rather than refusing every request while
//! the database is away. The change of regime is logged once each way.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use toolgate_auth::{RetryAfter, TenantId, TenantRateLimiter, Tenants};
use toolgate_store::{RateDecision, RateStore};

/// Longest a request waits for the store's count before the in-memory count decides alone: a
/// healthy database answers in a millisecond, and a request must not hang on one that is gone.
const SHARED_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Request rates per tenant, in memory and, with a shared store, across daemons.
pub struct TenantRates {
    local: TenantRateLimiter,
    per_second: HashMap<TenantId, NonZeroU32>,
    shared: Option<Arc<dyn RateStore>>,
    /// Whether the last shared check failed (so the regime change is logged once).
    shared_failing: AtomicBool,
}

impl std::fmt::Debug for TenantRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRates")
            .field("local", &self.local)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl TenantRates {
    /// Rates for `tenants`; `shared` is the store several daemons count in (`None` on a store
    /// only this daemon uses).
    pub fn new(tenants: &Tenants, shared: Option<Arc<dyn RateStore>>) -> Self {
        Self {
            local: TenantRateLimiter::new(tenants),
            per_second: tenants
                .iter()
                .filter_map(|tenant| Some((tenant.id.clone(), tenant.quotas.requests_per_second?)))
                .collect(),
            shared,
            shared_failing: AtomicBool::new(false),
        }
    }

    /// Counts one request by `tenant`: refused with the wait when over its rate.
    pub async fn check(&self, tenant: &TenantId) -> Result<(), RetryAfter> {
        self.local.check(tenant)?;
        let (Some(store), Some(per_second)) = (&self.shared, self.per_second.get(tenant)) else {
            return Ok(());
        };
        let counted = tokio::time::timeout(
            SHARED_CHECK_TIMEOUT,
            store.take_request(tenant.to_string(), *per_second),
        )
        .await;
        match counted {
            Ok(Ok(decision)) => {
                if self.shared_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("tenant request rates are counted across daemons again");
                }
                match decision {
                    RateDecision::RetryAfter(wait) => Err(RetryAfter(wait)),
                    RateDecision::Allowed | RateDecision::Local => Ok(()),
                }
            }
            Ok(Err(error)) => {
                self.shared_counting_failed(&error.to_string());
                Ok(())
            }
            Err(_elapsed) => {
                self.shared_counting_failed("the store did not answer in time");
                Ok(())
            }
        }
    }

    fn shared_counting_failed(&self, reason: &str) {
        if !self.shared_failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                reason,
                "cannot count tenant request rates in the store: each daemon holds them on its own until it answers"
            );
        }
    }
}
