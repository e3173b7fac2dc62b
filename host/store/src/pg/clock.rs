//! The database's clock for leases and heartbeats: how far this daemon's clock is off the
//! server's, so the times other daemons compare with theirs are written on one clock.
//!
//! Why: a claim's lease end, its renewals and a daemon's heartbeat are times one daemon writes
//! and another compares with its own "now" (to take over a lapsed scan, to count a tenant's
//! running jobs). With two clocks apart by more than the lease's slack (two thirds of it, as
//! leases are renewed every third), a live daemon's scan would be taken over and run twice, or
//! a dead daemon's left waiting. The daemons keep their own clocks for what they show (a job's
//! start and end); the store moves the times it compares by this offset.
//!
//! Invariants: the offset is measured against `clock_timestamp()` from the midpoint of the
//! query's round trip, so it is off by at most half a round trip; it is measured when the store
//! opens and again at every lease renewal; an offset under `IGNORED_BELOW` is taken as 0 (it is
//! within the measurement's and the renewals' own noise, and leases last tens of seconds), so
//! daemons with synchronized clocks write exactly the times they were given.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use deadpool_postgres::GenericClient;

use crate::StoreError;

/// Offsets smaller than this are not corrected: NTP keeps clocks within milliseconds, and a
/// lease's slack is seconds.
const IGNORED_BELOW: TimeDelta = TimeDelta::seconds(1);

/// This daemon's clock's offset from the database's (database time minus daemon time).
#[derive(Debug, Default)]
pub(super) struct ClockOffset {
    micros: AtomicI64,
    /// Set by tests that play a daemon with a skewed clock: measuring would find none here.
    fixed: bool,
}

impl ClockOffset {
    /// An offset that measuring never changes (tests: a daemon whose clock is `offset` behind).
    #[cfg(test)]
    pub(super) fn fixed(offset: TimeDelta) -> Self {
        Self {
            micros: AtomicI64::new(offset.num_microseconds().unwrap_or(0)),
            fixed: true,
        }
    }

    /// `time`, read on this daemon's clock, on the database's.
    pub(super) fn on_database_clock(&self, time: DateTime<Utc>) -> DateTime<Utc> {
        let offset = TimeDelta::microseconds(self.micros.load(Ordering::Relaxed));
        time.checked_add_signed(offset).unwrap_or(time)
    }

    /// Measures the offset on `client` and keeps it; warns when it is corrected (the clocks
    /// should be synchronized) or stops being.
    pub(super) async fn measure(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        if self.fixed {
            return Ok(());
        }
        let micros = offset_on(client).await?.num_microseconds().unwrap_or(0);
        let before = self.micros.swap(micros, Ordering::Relaxed);
        if (micros / 1_000_000) != (before / 1_000_000) {
            if micros == 0 {
                tracing::info!("this daemon's clock agrees with the database's again");
            } else {
                tracing::warn!(
                    offset_ms = micros / 1000,
                    "this daemon's clock is off the database's; scan leases and heartbeats are \
                     written on the database's clock, but synchronize the clocks (NTP)"
                );
            }
        }
        Ok(())
    }
}

/// This host's clock's offset from the server's on `client`, as corrected (0 under
/// [`IGNORED_BELOW`]).
pub(super) async fn offset_on(client: &impl GenericClient) -> Result<TimeDelta, StoreError> {
    let sent = Utc::now();
    let database: DateTime<Utc> = client
        .query_one("SELECT clock_timestamp()", &[])
        .await?
        .try_get(0)?;
    Ok(corrected_offset(sent, database, Utc::now()))
}

/// The offset read between `sent` and `received` (daemon clock) when the database said
/// `database`: from the round trip's midpoint, and 0 when it is under [`IGNORED_BELOW`].
fn corrected_offset(
    sent: DateTime<Utc>,
    database: DateTime<Utc>,
    received: DateTime<Utc>,
) -> TimeDelta {
    let midpoint = sent + (received - sent) / 2;
    let offset = database - midpoint;
    if offset.abs() < IGNORED_BELOW {
        TimeDelta::zero()
    } else {
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_700_000_000_000 + millis).expect("a valid time")
    }

    #[test]
    fn offsets_are_read_from_the_round_trips_midpoint_and_small_ones_are_not_corrected() {
        let cases = [
            // (sent, database, received, offset in ms)
            (0, 5, 10, 0),
            (0, 900, 10, 0),
            (0, -990, 10, 0),
            (0, 1_005, 10, 1_000),
            (0, 60_005, 10, 60_000),
            (0, -59_995, 10, -60_000),
            (0, 3_000, 2_000, 2_000),
        ];
        for (sent, database, received, expected) in cases {
            assert_eq!(
                corrected_offset(at(sent), at(database), at(received)),
                TimeDelta::milliseconds(expected),
                "sent {sent}, database {database}, received {received}"
            );
        }
    }

    #[test]
    fn a_time_moves_onto_the_database_clock_by_the_offset() {
        let behind = ClockOffset::fixed(TimeDelta::seconds(60));
        assert_eq!(behind.on_database_clock(at(0)), at(60_000));
        let synchronized = ClockOffset::default();
        assert_eq!(synchronized.on_database_clock(at(0)), at(0));
    }
}
