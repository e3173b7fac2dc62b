//! [`RateStore`] on PostgreSQL: one call of `toolgate_take_request` (schema version 10) per
//! request of a rate-limited tenant, on the relaxed pool (the count needs no WAL flush: a
//! crashed database forgetting the last moment's requests only lets a tenant burst again).

use std::num::NonZeroU32;
use std::time::Duration;

use super::PgStore;
use crate::StoreFuture;
use crate::rates::{RateDecision, RateStore, gcra_micros};

impl RateStore for PgStore {
    fn take_request(&self, tenant: String, per_second: NonZeroU32) -> StoreFuture<RateDecision> {
        let store = self.clone();
        Box::pin(async move {
            let (interval, tolerance) = gcra_micros(per_second);
            let client = store.relaxed.get().await?;
            let statement = client
                .prepare_cached("SELECT toolgate_take_request($1, $2, $3)")
                .await?;
            let wait_us: i64 = client
                .query_one(&statement, &[&tenant, &interval, &tolerance])
                .await?
                .try_get(0)?;
            Ok(match u64::try_from(wait_us) {
                Ok(0) | Err(_) => RateDecision::Allowed,
                Ok(wait) => RateDecision::RetryAfter(Duration::from_micros(wait)),
            })
        })
    }
}
