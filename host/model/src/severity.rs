//! Severities and counts of findings by severity.
//!
//! Invariant: the IaC Scan API V2 knows three buckets (high, medium, low); toolgate knows five.
//! The mapping is defined once, in [`Severity::bucket`]: critical counts as high (a critical
//! finding must fail a scan whose criteria fail on high), info counts in no bucket (upstream has
//! none; it is still listed and counted as `info`).

use serde::{Deserialize, Serialize};

/// Normalized severity of a finding, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

/// One of the IaC Scan API's three severity buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    High,
    Medium,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// The IaC Scan API bucket this severity counts in (none for info).
    pub fn bucket(self) -> Option<Bucket> {
        match self {
            Severity::Critical | Severity::High => Some(Bucket::High),
            Severity::Medium => Some(Bucket::Medium),
            Severity::Low => Some(Bucket::Low),
            Severity::Info => None,
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(text))
    }
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::High => "high",
            Bucket::Medium => "medium",
            Bucket::Low => "low",
        }
    }
}

/// How many findings a scan or job has at each severity. Every count is present (0, never
/// absent), which is what clients reading `.high` as a number need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl SeverityCounts {
    pub fn of<'a>(severities: impl IntoIterator<Item = &'a Severity>) -> Self {
        let mut counts = Self::default();
        for severity in severities {
            counts.add(*severity);
        }
        counts
    }

    pub fn add(&mut self, severity: Severity) {
        let slot = match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        };
        *slot = slot.saturating_add(1);
    }

    /// The count in one IaC Scan API bucket (see [`Severity::bucket`]).
    pub fn bucket(&self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::High => self.critical.saturating_add(self.high),
            Bucket::Medium => self.medium,
            Bucket::Low => self.low,
        }
    }

    pub fn total(&self) -> u64 {
        [self.critical, self.high, self.medium, self.low, self.info]
            .into_iter()
            .fold(0u64, u64::saturating_add)
    }

    /// Sums two counts (a page's totals, a group's).
    pub fn plus(&self, other: &SeverityCounts) -> SeverityCounts {
        SeverityCounts {
            critical: self.critical.saturating_add(other.critical),
            high: self.high.saturating_add(other.high),
            medium: self.medium.saturating_add(other.medium),
            low: self.low.saturating_add(other.low),
            info: self.info.saturating_add(other.info),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_fold_critical_into_high_and_leave_info_out() {
        let counts = SeverityCounts::of(&[
            Severity::Critical,
            Severity::High,
            Severity::Medium,
            Severity::Low,
            Severity::Low,
            Severity::Info,
        ]);
        let table = [(Bucket::High, 2), (Bucket::Medium, 1), (Bucket::Low, 2)];
        for (bucket, expected) in table {
            assert_eq!(counts.bucket(bucket), expected, "{bucket:?}");
        }
        assert_eq!(counts.total(), 6);
    }

    #[test]
    fn severity_names_parse_back_case_insensitively() {
        for severity in Severity::ALL {
            assert_eq!(Severity::parse(severity.as_str()), Some(severity));
            assert_eq!(
                Severity::parse(&severity.as_str().to_uppercase()),
                Some(severity)
            );
        }
        for refused in ["", "severe", "hi", "critical "] {
            assert_eq!(Severity::parse(refused), None, "{refused:?}");
        }
    }
}
