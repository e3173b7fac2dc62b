//! A query over stored scans: the filters, sort, grouping and page of `GET /iac/v2/scans` and its
//! CSV export, already resolved (times are absolute, names are typed), so that every store
//! answers the same question the same way.
//!
//! Invariant: a page is at most [`Page::MAX_SIZE`] scans, so one request cannot ask a store to
//! read the whole table.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AssetType, InvalidValue, Operator, ScanStatus, echo};

/// Scans created in `[from, to]` (either end open).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A `filter[failureCriteria]` such as `H:5 & M:2 & L:1`: scans whose criteria have these
/// thresholds (and operator, when given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriteriaFilter {
    pub high: Option<u32>,
    pub medium: Option<u32>,
    pub low: Option<u32>,
    pub operator: Option<Operator>,
}

impl CriteriaFilter {
    /// Parses `H:5 & M:2 & L:1`, `H:5 | M:2`, `H:5,M:2,L:1,AND`: thresholds as `H|M|L:<n>`,
    /// joined by `&` (and), `|` (or), `,` or spaces; an explicit `AND`/`OR` wins.
    pub fn parse(field: &str, text: &str) -> Result<CriteriaFilter, InvalidValue> {
        let mut filter = CriteriaFilter::default();
        if text.contains('&') {
            filter.operator = Some(Operator::And);
        } else if text.contains('|') {
            filter.operator = Some(Operator::Or);
        }
        let tokens = text
            .split(|c: char| c == '&' || c == '|' || c == ',' || c.is_whitespace())
            .filter(|token| !token.is_empty());
        let mut any = false;
        for token in tokens {
            any = true;
            if let Ok(operator) = Operator::parse(field, token) {
                filter.operator = Some(operator);
                continue;
            }
            let bad = || {
                InvalidValue::new(
                    field,
                    format!(
                        "{:?} is not a threshold; write H:<n>, M:<n>, L:<n> joined by & or |, e.g. \"H:5 & M:2 & L:1\"",
                        echo(token)
                    ),
                )
            };
            let (name, count) = token.split_once(':').ok_or_else(bad)?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            let slot = match name.to_ascii_uppercase().as_str() {
                "H" | "HIGH" => &mut filter.high,
                "M" | "MEDIUM" => &mut filter.medium,
                "L" | "LOW" => &mut filter.low,
                _ => return Err(bad()),
            };
            *slot = Some(count);
        }
        if !any {
            return Err(InvalidValue::new(
                field,
                "is empty; e.g. \"H:5 & M:2 & L:1\"",
            ));
        }
        Ok(filter)
    }
}

/// What a list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortField {
    ScanTime,
    AssetName,
    AssetType,
    Status,
    User,
}

impl SortField {
    pub const NAMES: [(&'static str, SortField); 5] = [
        ("scanTime", SortField::ScanTime),
        ("assetName", SortField::AssetName),
        ("assetType", SortField::AssetType),
        ("status", SortField::Status),
        ("user", SortField::User),
    ];

    pub fn parse(field: &str, text: &str) -> Result<SortField, InvalidValue> {
        SortField::NAMES
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, sort)| sort)
            .ok_or_else(|| {
                let allowed: Vec<&str> = SortField::NAMES.iter().map(|(name, _)| *name).collect();
                InvalidValue::not_allowed(field, text, &allowed)
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Ascending,
    Descending,
}

/// What a list can be grouped by (`groupBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    AssetType,
    AssetName,
    ResourceList,
}

impl GroupBy {
    pub fn parse(field: &str, text: &str) -> Result<GroupBy, InvalidValue> {
        match text.to_ascii_lowercase().as_str() {
            "assettype" => Ok(GroupBy::AssetType),
            "assetname" => Ok(GroupBy::AssetName),
            "resourcelist" => Ok(GroupBy::ResourceList),
            _ => Err(InvalidValue::not_allowed(
                field,
                text,
                &["assetType", "assetName", "resourceList"],
            )),
        }
    }
}

/// One page of a list: `number` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub size: u32,
    pub number: u32,
}

impl Page {
    /// Default page size when the caller gives none.
    pub const DEFAULT_SIZE: u32 = 25;
    /// Largest page: bounds what one request makes the store read and the daemon render.
    pub const MAX_SIZE: u32 = 1000;

    pub fn new(size: u32, number: u32) -> Result<Page, InvalidValue> {
        if size == 0 || size > Page::MAX_SIZE {
            return Err(InvalidValue::new(
                "page[size]",
                format!("{size} is out of range; allowed: 1 to {}", Page::MAX_SIZE),
            ));
        }
        if number == 0 {
            return Err(InvalidValue::new(
                "page[number]",
                "0 is out of range; pages are numbered from 1",
            ));
        }
        Ok(Page { size, number })
    }

    /// How many scans come before this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.number - 1) * u64::from(self.size)
    }
}

impl Default for Page {
    fn default() -> Self {
        Page {
            size: Page::DEFAULT_SIZE,
            number: 1,
        }
    }
}

/// Which scans, in which order, which page. Empty lists mean "no filter on this field"; a
/// non-empty list matches any of its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanQuery {
    /// Only this tenant's scans (issue #16); set by the scan service from the caller, never
    /// from the request.
    #[serde(default)]
    pub owner: Option<String>,
    pub window: TimeWindow,
    pub asset_names: Vec<String>,
    pub asset_types: Vec<AssetType>,
    /// `(name, value)`: a tag with this name (and this value, when given).
    pub tags: Vec<(String, Option<String>)>,
    pub statuses: Vec<ScanStatus>,
    pub users: Vec<String>,
    /// Scans with a finding on any of these resources (`type.name`).
    pub resources: Vec<String>,
    pub failure_criteria: Option<CriteriaFilter>,
    /// Applied in order; the newest first when empty, and by id last so pages are stable.
    pub sort: Vec<(SortField, Direction)>,
    pub group_by: Option<GroupBy>,
    pub page: Page,
}

/// How many of a set of scans passed and failed, and their findings by severity: a list's
/// totals over every scan its filters match (not only the page), or one group's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTotals {
    /// Scans matched.
    pub all: u64,
    /// Of those, scans whose status is `passed`.
    pub passed: u64,
    /// Of those, scans whose status is `failed`.
    pub failed: u64,
    /// Findings of the matched scans that have an outcome, summed.
    pub counts: crate::SeverityCounts,
}

/// One group of a `groupBy` list: the scans sharing `key` (an asset type's wire name, an asset
/// name, or a resource `type.name`; a scan with several resources counts in each of theirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanGroup {
    pub key: String,
    pub totals: ScanTotals,
}

/// A store's answer to a [`ScanQuery`]: one page of scans, the totals over everything matched,
/// and the groups when the query has a `group_by` (empty otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanPage {
    pub scans: Vec<crate::Scan>,
    pub totals: ScanTotals,
    pub groups: Vec<ScanGroup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criteria_filters_table() {
        let table = [
            (
                "H:5 & M:2 & L:1",
                CriteriaFilter {
                    high: Some(5),
                    medium: Some(2),
                    low: Some(1),
                    operator: Some(Operator::And),
                },
            ),
            (
                "h:1|m:1",
                CriteriaFilter {
                    high: Some(1),
                    medium: Some(1),
                    low: None,
                    operator: Some(Operator::Or),
                },
            ),
            (
                "H:1,M:1,L:1,AND",
                CriteriaFilter {
                    high: Some(1),
                    medium: Some(1),
                    low: Some(1),
                    operator: Some(Operator::And),
                },
            ),
        ];
        for (text, expected) in table {
            assert_eq!(
                CriteriaFilter::parse("filter[failureCriteria]", text),
                Ok(expected)
            );
        }
        for refused in ["", "X:1", "H:", "H:-1", "H:one", "high"] {
            let error =
                CriteriaFilter::parse("filter[failureCriteria]", refused).expect_err(refused);
            assert_eq!(error.field, "filter[failureCriteria]");
        }
    }

    #[test]
    fn pages_are_bounded() {
        assert_eq!(Page::new(50, 3).map(|page| page.offset()), Ok(100));
        for (size, number, field) in [
            (0, 1, "page[size]"),
            (1001, 1, "page[size]"),
            (10, 0, "page[number]"),
        ] {
            assert_eq!(Page::new(size, number).expect_err("bounded").field, field);
        }
    }

    #[test]
    fn sort_and_group_names_parse() {
        assert_eq!(
            SortField::parse("sort", "scantime"),
            Ok(SortField::ScanTime)
        );
        assert!(SortField::parse("sort", "id;drop").is_err());
        assert_eq!(
            GroupBy::parse("groupBy", "resourceList"),
            Ok(GroupBy::ResourceList)
        );
        assert!(GroupBy::parse("groupBy", "tags").is_err());
    }
}
