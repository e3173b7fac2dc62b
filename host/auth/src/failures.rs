//! Rate limiting of failed authentication attempts per client address (429 with Retry-After).
//!
//! The rule is GCRA (a leaky bucket without a timer): each address may fail [`FAILURE_BURST`]
//! times at once, then once per [`FAILURE_REFILL`]. The daemon calls [`FailedAttempts::check`]
//! BEFORE verifying a credential (a blocked address gets 429 whatever it sends, so guessing
//! stops) and [`FailedAttempts::record_failure`] after each refusal; a success does not reset
//! the count (a caller holding one valid key must not be able to launder guesses at others).
//!
//! Why not `governor`: its keyed limiter has no way to look without spending (every
//! `check_key` consumes a cell, and only failures may), and its key store has no size cap (only
//! `retain_recent`), while this table must stay bounded under a spray of addresses. The
//! per-tenant request limiter, which needs neither, does use governor (`tenant_rate`).
//!
//! Invariants: memory is bounded by [`MAX_TRACKED_ADDRESSES`] entries plus one shared overflow
//! bucket; IPv6 clients are counted per /64 (one host usually owns a whole /64, so counting
//! single addresses would give it 2^64 buckets), IPv4-mapped IPv6 as the IPv4 address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures an address may make at once: a person mistyping a secret, or a script retrying with
/// an old key a few times, stays under it; a guesser hits it within a second.
pub const FAILURE_BURST: u32 = 10;

/// After the burst, one more failure is allowed per this interval (10 per minute sustained).
/// Guessing a 256-bit secret is hopeless anyway; the limit keeps guessers from costing CPU, log
/// volume and token verifications.
pub const FAILURE_REFILL: Duration = Duration::from_secs(6);

/// Addresses tracked at most: 65,536 entries of ~40 bytes (plus the map's overhead) stay under
/// ~5 MB, while a spray of failures from a botnet or an IPv6 range cannot grow the table
/// further. When it is full (after dropping entries that have fully recovered), failures from
/// untracked addresses share one overflow bucket: under such an attack new addresses may be
/// refused for a while, but guessing stays limited.
pub const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// How long to wait before trying again (the daemon's `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for the `Retry-After` header, rounded up and at least 1 (0 would invite an
    /// immediate retry that is still refused).
    pub fn header_secs(self) -> u64 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// The limits [`FailedAttempts`] applies (the defaults are the constants above; tests and
/// operators with unusual clients may pick others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Failures allowed at once.
    pub burst: NonZeroU32,
    /// One more failure allowed per this interval after the burst.
    pub refill: Duration,
    /// Addresses tracked at most.
    pub max_tracked: usize,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        Self {
            burst: NonZeroU32::new(FAILURE_BURST).unwrap_or(NonZeroU32::MIN),
            refill: FAILURE_REFILL,
            max_tracked: MAX_TRACKED_ADDRESSES,
        }
    }
}

/// What failures are counted against: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6Prefix(u64),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Client::V4(v4.to_bits()),
            IpAddr::V6(v6) => Client::V6Prefix((v6.to_bits() >> 64) as u64),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Each client's theoretical arrival time: the burst is spent while it is far in the future.
    tat: HashMap<Client, Instant>,
    /// The bucket shared by untracked clients while the table is full.
    overflow: Option<Instant>,
    /// When expired entries were last dropped (at most once per refill interval, since a
    /// sweep walks the whole table).
    last_sweep: Option<Instant>,
}

/// Failed authentication attempts per client address.
#[derive(Debug)]
pub struct FailedAttempts {
    policy: FailurePolicy,
    state: Mutex<State>,
}

impl Default for FailedAttempts {
    fn default() -> Self {
        Self::new(FailurePolicy::default())
    }
}

impl FailedAttempts {
    /// A limiter with this policy.
    pub fn new(policy: FailurePolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether `ip` may attempt to authenticate now; call before verifying its credential.
    pub fn check(&self, ip: IpAddr) -> Result<(), RetryAfter> {
        self.check_at(ip, Instant::now())
    }

    /// Counts one failed attempt by `ip`; call after refusing its credential.
    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    /// [`FailedAttempts::check`] at a given instant.
    pub fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let state = self.lock();
        let tat = state.tat.get(&Client::from(ip)).or(state.overflow.as_ref());
        match tat {
            Some(tat) => self.conforms(*tat, now),
            None => Ok(()),
        }
    }

    /// [`FailedAttempts::record_failure`] at a given instant.
    pub fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let client = Client::from(ip);
        let refill = self.policy.refill;
        let mut state = self.lock();
        if !state.tat.contains_key(&client) && state.tat.len() >= self.policy.max_tracked {
            Self::sweep(&mut state, now, refill);
        }
        let slot = if state.tat.contains_key(&client) || state.tat.len() < self.policy.max_tracked {
            state.tat.entry(client).or_insert(now)
        } else {
            state.overflow.get_or_insert(now)
        };
        *slot = (*slot).max(now) + refill;
    }

    /// How many addresses are tracked (for metrics and tests).
    pub fn tracked(&self) -> usize {
        self.lock().tat.len()
    }

    fn conforms(&self, tat: Instant, now: Instant) -> Result<(), RetryAfter> {
        let tolerance = self.policy.refill * (self.policy.burst.get() - 1);
        let earliest = tat.checked_sub(tolerance).unwrap_or(now);
        if earliest > now {
            Err(RetryAfter(earliest - now))
        } else {
            Ok(())
        }
    }

    /// Drops clients whose bucket has fully recovered (they behave exactly as untracked ones).
    fn sweep(state: &mut State, now: Instant, refill: Duration) {
        if state.last_sweep.is_some_and(|last| now < last + refill) {
            return;
        }
        state.last_sweep = Some(now);
        state.tat.retain(|_, tat| *tat > now);
        if state.overflow.is_some_and(|tat| tat <= now) {
            state.overflow = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update leaves the table consistent, so a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn policy(burst: u32, max_tracked: usize) -> FailurePolicy {
        FailurePolicy {
            burst: NonZeroU32::new(burst).expect("nonzero"),
            refill: Duration::from_secs(6),
            max_tracked,
        }
    }

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, last))
    }

    #[test]
    fn n_failures_then_retry_after_then_one_more_per_refill() {
        let limiter = FailedAttempts::new(policy(5, 100));
        let start = Instant::now();
        for attempt in 0..5 {
            assert_eq!(limiter.check_at(v4(1), start), Ok(()), "attempt {attempt}");
            limiter.record_failure_at(v4(1), start);
        }
        assert_eq!(
            limiter.check_at(v4(1), start),
            Err(RetryAfter(Duration::from_secs(6)))
        );
        assert_eq!(
            limiter.check_at(v4(1), start + Duration::from_secs(2)),
            Err(RetryAfter(Duration::from_secs(4)))
        );
        assert_eq!(
            limiter.check_at(v4(2), start),
            Ok(()),
            "another address is unaffected"
        );
        let later = start + Duration::from_secs(6);
        assert_eq!(limiter.check_at(v4(1), later), Ok(()));
        limiter.record_failure_at(v4(1), later);
        assert!(
            limiter.check_at(v4(1), later).is_err(),
            "one failure per refill"
        );
        let recovered = start + Duration::from_secs(6 * 6);
        for _ in 0..5 {
            assert_eq!(limiter.check_at(v4(1), recovered), Ok(()));
            limiter.record_failure_at(v4(1), recovered);
        }
        assert!(
            limiter.check_at(v4(1), recovered).is_err(),
            "a full burst again after recovery"
        );
    }

    #[test]
    fn the_default_policy_blocks_after_ten_failures() {
        let limiter = FailedAttempts::default();
        let now = Instant::now();
        for _ in 0..FAILURE_BURST {
            assert!(limiter.check_at(v4(9), now).is_ok());
            limiter.record_failure_at(v4(9), now);
        }
        assert_eq!(
            limiter.check_at(v4(9), now),
            Err(RetryAfter(FAILURE_REFILL))
        );
    }

    #[test]
    fn addresses_that_count_as_one_client() {
        let table: &[(&str, &str, bool)] = &[
            ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true),
            ("2001:db8:1:2::1", "2001:db8:1:3::1", false),
            ("::ffff:203.0.113.7", "203.0.113.7", true),
            ("203.0.113.7", "203.0.113.8", false),
        ];
        for (a, b, same) in table {
            let (a, b): (IpAddr, IpAddr) = (a.parse().expect("a"), b.parse().expect("b"));
            let limiter = FailedAttempts::new(policy(1, 100));
            let now = Instant::now();
            limiter.record_failure_at(a, now);
            assert_eq!(limiter.check_at(b, now).is_err(), *same, "{a} then {b}");
        }
    }

    #[test]
    fn the_table_stays_bounded_and_overflow_is_still_limited() {
        let limiter = FailedAttempts::new(policy(2, 4));
        let now = Instant::now();
        for host in 0..4u8 {
            limiter.record_failure_at(v4(host), now);
        }
        assert_eq!(limiter.tracked(), 4);
        let sprayed: Vec<IpAddr> = (0..50u16)
            .map(|n| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, n, 0, 0, 0, 0, 1)))
            .collect();
        for ip in &sprayed {
            limiter.record_failure_at(*ip, now);
        }
        assert_eq!(limiter.tracked(), 4, "no growth past the cap");
        assert!(
            limiter.check_at(sprayed[0], now).is_err(),
            "the overflow bucket is limited too"
        );
        assert!(
            limiter.check_at(v4(0), now).is_ok(),
            "tracked addresses keep their own count"
        );
        // Once entries recover, a sweep makes room and new addresses are tracked again.
        let later = now + Duration::from_secs(600);
        limiter.record_failure_at(v4(200), later);
        assert_eq!(limiter.tracked(), 1);
        assert!(
            limiter.check_at(sprayed[0], later).is_ok(),
            "the overflow bucket recovered"
        );
    }

    #[test]
    fn retry_after_header_seconds_round_up() {
        let table: &[(u64, u64)] = &[(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (6000, 6)];
        for (millis, secs) in table {
            assert_eq!(
                RetryAfter(Duration::from_millis(*millis)).header_secs(),
                *secs,
                "{millis} ms"
            );
        }
    }
}
