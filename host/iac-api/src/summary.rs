//! Shapes several documents share: `matchedPoliciesSummary` and the text form of failure
//! criteria.
//!
//! Invariant: a summary always has `high`, `medium` and `low` as numbers (0, never absent or
//! null), counted by [`toolgate_model::Severity::bucket`] (critical counts as high, info in
//! none), because clients read them with `jq` and compare them as numbers.

use serde::Serialize;
use toolgate_model::{Bucket, FailureCriteria, SeverityCounts};

/// `{"high":n,"medium":n,"low":n}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MatchedPoliciesSummary {
    pub high: u64,
    pub medium: u64,
    pub low: u64,
}

impl From<&SeverityCounts> for MatchedPoliciesSummary {
    fn from(counts: &SeverityCounts) -> Self {
        Self {
            high: counts.bucket(Bucket::High),
            medium: counts.bucket(Bucket::Medium),
            low: counts.bucket(Bucket::Low),
        }
    }
}

/// A time as RFC 3339 in UTC to the second (`2026-12-06T04:00:00Z`): the one time format of
/// every document here.
pub fn timestamp(time: &chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Failure criteria as `H:1,M:1,L:1,OR`: the form `filter[failureCriteria]` takes
/// ([`toolgate_model::CriteriaFilter::parse`]), so a list's value can be pasted into a filter.
pub fn criteria_text(criteria: &FailureCriteria) -> String {
    format!(
        "H:{},M:{},L:{},{}",
        criteria.high,
        criteria.medium,
        criteria.low,
        criteria.operator.as_str().to_ascii_uppercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolgate_model::{CriteriaFilter, Operator, Severity};

    #[test]
    fn critical_counts_as_high_and_info_in_no_bucket() {
        let counts = SeverityCounts::of(&[
            Severity::Critical,
            Severity::High,
            Severity::Low,
            Severity::Info,
        ]);
        assert_eq!(
            MatchedPoliciesSummary::from(&counts),
            MatchedPoliciesSummary {
                high: 2,
                medium: 0,
                low: 1
            }
        );
    }

    #[test]
    fn criteria_text_parses_back_as_a_filter() {
        let criteria = FailureCriteria {
            high: 5,
            medium: 2,
            low: 0,
            operator: Operator::And,
        };
        let text = criteria_text(&criteria);
        assert_eq!(text, "H:5,M:2,L:0,AND");
        let filter = CriteriaFilter::parse("filter[failureCriteria]", &text).expect("parses");
        assert_eq!(
            (filter.high, filter.medium, filter.low, filter.operator),
            (Some(5), Some(2), Some(0), Some(Operator::And))
        );
    }
}
