//! Which tenant's scan a worker claims next, the same on every backend: when several tenants
//! have scans queued, the one with the fewest scans running, then the one whose oldest queued
//! scan is oldest; each tenant's own scans run oldest first. So a tenant that queues a hundred
//! scans delays its own, not another tenant's next one (issue #16, fair scheduling).
//!
//! Invariant: the cost of a claim grows with the number of tenants that have scans queued,
//! not with the number of queued scans: tenants are found by skipping through an index of the
//! queued scans by tenant one tenant at a time (`... WHERE tenant > ? ORDER BY tenant LIMIT 1`,
//! a loose index scan), and each tenant's running count and oldest queued scan are index
//! look-ups.

/// Most tenants a claim weighs: past this many tenants with queued scans, the rest wait for a
/// claim that finds fewer (each costs two index look-ups per claim).
pub(crate) const MAX_TENANTS_WEIGHED: usize = 256;

/// One tenant with queued scans: how many of its scans run, and its oldest queued scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub tenant: String,
    pub running: i64,
    pub head_queued_at: String,
    pub head_id: String,
}

/// The candidates in the order they should be served: fewest running first, then oldest head.
pub(crate) fn in_turn(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        (a.running, &a.head_queued_at, &a.head_id).cmp(&(b.running, &b.head_queued_at, &b.head_id))
    });
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(tenant: &str, running: i64, queued_at: &str) -> Candidate {
        Candidate {
            tenant: tenant.into(),
            running,
            head_queued_at: queued_at.into(),
            head_id: format!("{tenant}-head"),
        }
    }

    #[test]
    fn fewest_running_first_then_oldest_head() {
        let table = [
            (
                vec![candidate("flood", 4, "01"), candidate("quiet", 0, "09")],
                ["quiet", "flood"],
            ),
            (
                vec![candidate("b", 1, "05"), candidate("a", 1, "02")],
                ["a", "b"],
            ),
            (
                vec![candidate("a", 0, "03"), candidate("b", 2, "01")],
                ["a", "b"],
            ),
        ];
        for (candidates, expected) in table {
            let order: Vec<String> = in_turn(candidates.clone())
                .into_iter()
                .map(|c| c.tenant)
                .collect();
            assert_eq!(order, expected, "{candidates:?}");
        }
    }
}
