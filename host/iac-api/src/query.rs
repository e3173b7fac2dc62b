//! The query strings of `GET /iac/v2/scans` and `GET /iac/v2/scans/export`: deepObject
//! parameters (`filter[assetType]=GitHub`) resolved against a given `now` into a
//! [`ScanQuery`].
//!
//! Formats (what a caller may write):
//! - List filters (`filter[assetName]`, `filter[assetType]`, `filter[tags]`, `filter[user]`,
//!   `filter[status]`, `filter[resourceList]`) take comma-separated values, and may be repeated;
//!   a scan matches a filter when it matches any of its values, and all filters given. Because
//!   commas separate values, a value cannot contain one.
//! - `filter[tags]`: `name:value` (a tag with this value) or `name` (the tag, any value),
//!   e.g. `filter[tags]=env:dev,team`; the value is everything after the first `:`.
//! - `filter[resourceList]`: `type.name` of a resource with a finding, e.g. `aws_s3_bucket.logs`.
//! - `filter[failureCriteria]`: once, e.g. `H:5 & M:2 & L:1` (see
//!   [`toolgate_model::CriteriaFilter::parse`]).
//! - Time: `filter[timeType]=to_now` with `filter[timeUnit]` epoch (all time, the default),
//!   login (toolgate keeps no logins: read as epoch), hour, day, week, month or year: from the
//!   start of the current unit in UTC (weeks start on Monday); `relative` with
//!   `filter[timeAmount]=<n>` (1 or more) and `filter[timeUnit]` hour, day, week, month or year:
//!   the last n units; `absolute` with `filter[startTime]` and/or `filter[endTime]` as Unix time
//!   in seconds or milliseconds (a value of at least [`MILLISECONDS_FROM`] is milliseconds).
//!   `startTime`/`endTime` without a `timeType` mean `absolute`.
//! - `groupBy` = assetType | assetName | resourceList; `page[size]` (1 to
//!   [`Page::MAX_SIZE`], default [`Page::DEFAULT_SIZE`]), `page[number]` (from 1); `sort` =
//!   comma-separated fields, `-field` descending, `field` or `+field` ascending.
//! - Export only: `fmt=csv` (the default, and the only format).
//!
//! Invariants: escapes are decoded by `form_urlencoded` before values are split (`+` is a
//! space; a comma separates values whether escaped as `%2C` or not); an unknown parameter or `filter[...]`
//! key is an error naming it and the allowed ones; a single-valued parameter given twice is an
//! error; no filter holds more than [`MAX_FILTER_VALUES`] values; every error's field is the
//! parameter's name, so it becomes a JSON:API `source.parameter`.

use chrono::{DateTime, Utc};
use toolgate_model::{
    AssetType, CriteriaFilter, Direction, GroupBy, InvalidValue, Page, ScanQuery, ScanStatus,
    SortField, echo,
};

pub use crate::time_filter::MILLISECONDS_FROM;
use crate::time_filter::{self, TimeParameters};

/// Most values one filter may hold: enough for any dashboard, and bounds the conditions a
/// store builds for one request.
pub const MAX_FILTER_VALUES: usize = 100;

/// The filters of both endpoints, in the order error messages list them.
pub const FILTER_KEYS: [&str; 12] = [
    "filter[timeType]",
    "filter[timeUnit]",
    "filter[timeAmount]",
    "filter[startTime]",
    "filter[endTime]",
    "filter[assetName]",
    "filter[assetType]",
    "filter[tags]",
    "filter[user]",
    "filter[status]",
    "filter[resourceList]",
    "filter[failureCriteria]",
];

/// What an export is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
}

/// Parses the query string (without `?`) of `GET /iac/v2/scans`.
pub fn parse_list_query(query: &str, now: DateTime<Utc>) -> Result<ScanQuery, InvalidValue> {
    parse(query, now, false).map(|(scan_query, _)| scan_query)
}

/// Parses the query string of `GET /iac/v2/scans/export`: the list's parameters plus `fmt`.
/// `page[...]` is accepted as in a list; an export of everything pages through the store.
pub fn parse_export_query(
    query: &str,
    now: DateTime<Utc>,
) -> Result<(ScanQuery, ExportFormat), InvalidValue> {
    parse(query, now, true)
}

#[derive(Default)]
struct Raw {
    time_type: Option<String>,
    time_unit: Option<String>,
    time_amount: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    failure_criteria: Option<String>,
    group_by: Option<String>,
    page_size: Option<String>,
    page_number: Option<String>,
    fmt: Option<String>,
}

fn parse(
    query: &str,
    now: DateTime<Utc>,
    export: bool,
) -> Result<(ScanQuery, ExportFormat), InvalidValue> {
    let mut raw = Raw::default();
    let mut scan_query = ScanQuery::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let key = key.as_ref();
        let value = value.into_owned();
        match key {
            "filter[timeType]" => once(&mut raw.time_type, key, value)?,
            "filter[timeUnit]" => once(&mut raw.time_unit, key, value)?,
            "filter[timeAmount]" => once(&mut raw.time_amount, key, value)?,
            "filter[startTime]" => once(&mut raw.start_time, key, value)?,
            "filter[endTime]" => once(&mut raw.end_time, key, value)?,
            "filter[failureCriteria]" => once(&mut raw.failure_criteria, key, value)?,
            "groupBy" => once(&mut raw.group_by, key, value)?,
            "page[size]" => once(&mut raw.page_size, key, value)?,
            "page[number]" => once(&mut raw.page_number, key, value)?,
            "fmt" if export => once(&mut raw.fmt, key, value)?,
            "filter[assetName]" => extend(&mut scan_query.asset_names, key, &value, |item| {
                Ok(item.to_string())
            })?,
            "filter[user]" => extend(&mut scan_query.users, key, &value, |item| {
                Ok(item.to_string())
            })?,
            "filter[resourceList]" => extend(&mut scan_query.resources, key, &value, |item| {
                Ok(item.to_string())
            })?,
            "filter[assetType]" => extend(&mut scan_query.asset_types, key, &value, |item| {
                AssetType::parse(key, item)
            })?,
            "filter[status]" => extend(&mut scan_query.statuses, key, &value, |item| {
                ScanStatus::parse(key, item)
            })?,
            "filter[tags]" => extend(&mut scan_query.tags, key, &value, |item| tag(key, item))?,
            "sort" => sort(&mut scan_query.sort, &value)?,
            unknown if unknown.starts_with("filter[") => {
                return Err(InvalidValue::not_allowed(unknown, unknown, &FILTER_KEYS));
            }
            unknown => {
                let mut allowed = vec![
                    "filter[...]",
                    "groupBy",
                    "page[size]",
                    "page[number]",
                    "sort",
                ];
                if export {
                    allowed.push("fmt");
                }
                return Err(InvalidValue::not_allowed(unknown, unknown, &allowed));
            }
        }
    }
    scan_query.window = time_filter::resolve(
        &TimeParameters {
            time_type: raw.time_type.as_deref(),
            time_unit: raw.time_unit.as_deref(),
            time_amount: raw.time_amount.as_deref(),
            start_time: raw.start_time.as_deref(),
            end_time: raw.end_time.as_deref(),
        },
        now,
    )?;
    scan_query.failure_criteria = raw
        .failure_criteria
        .as_deref()
        .map(|text| CriteriaFilter::parse("filter[failureCriteria]", text))
        .transpose()?;
    scan_query.group_by = raw
        .group_by
        .as_deref()
        .map(|text| GroupBy::parse("groupBy", text))
        .transpose()?;
    scan_query.page = page(&raw)?;
    let format = match raw.fmt.as_deref() {
        None => ExportFormat::Csv,
        Some(text) if text.eq_ignore_ascii_case("csv") => ExportFormat::Csv,
        Some(text) => return Err(InvalidValue::not_allowed("fmt", text, &["csv"])),
    };
    Ok((scan_query, format))
}

fn once(slot: &mut Option<String>, key: &str, value: String) -> Result<(), InvalidValue> {
    if slot.is_some() {
        return Err(InvalidValue::new(
            key,
            "is given more than once; allowed: once",
        ));
    }
    if value.trim().is_empty() {
        return Err(InvalidValue::new(key, "is empty"));
    }
    *slot = Some(value.trim().to_string());
    Ok(())
}

/// Adds the comma-separated items of `value` to `list`, each parsed by `item`.
fn extend<T>(
    list: &mut Vec<T>,
    key: &str,
    value: &str,
    item: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Result<(), InvalidValue> {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() {
        return Err(InvalidValue::new(
            key,
            "is empty; give one or more comma-separated values",
        ));
    }
    for text in items {
        if list.len() >= MAX_FILTER_VALUES {
            return Err(InvalidValue::new(
                key,
                format!(
                    "has more than {MAX_FILTER_VALUES} values; allowed: at most {MAX_FILTER_VALUES}"
                ),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                key,
                format!("{:?} contains a control character", echo(text)),
            ));
        }
        list.push(item(text)?);
    }
    Ok(())
}

/// `name:value` or `name`.
fn tag(key: &str, item: &str) -> Result<(String, Option<String>), InvalidValue> {
    let (name, value) = match item.split_once(':') {
        Some((name, value)) => (name.trim(), Some(value.trim().to_string())),
        None => (item, None),
    };
    if name.is_empty() {
        return Err(InvalidValue::new(
            key,
            format!(
                "{:?} has no tag name; write name:value or name, e.g. env:dev",
                echo(item)
            ),
        ));
    }
    Ok((name.to_string(), value))
}

fn sort(sort: &mut Vec<(SortField, Direction)>, value: &str) -> Result<(), InvalidValue> {
    let mut parsed = Vec::new();
    extend(&mut parsed, "sort", value, |item| {
        // A `+` left unescaped in a query string arrives as a space, trimmed away already.
        let (direction, name) = match item.strip_prefix('-') {
            Some(name) => (Direction::Descending, name),
            None => (Direction::Ascending, item.strip_prefix('+').unwrap_or(item)),
        };
        Ok((SortField::parse("sort", name)?, direction))
    })?;
    for (field, direction) in parsed {
        if sort.iter().any(|(seen, _)| *seen == field) {
            let name = SortField::NAMES
                .iter()
                .find(|(_, named)| *named == field)
                .map_or("?", |(name, _)| *name);
            return Err(InvalidValue::new(
                "sort",
                format!("{name} is given more than once; sort by each field once"),
            ));
        }
        sort.push((field, direction));
    }
    Ok(())
}

fn page(raw: &Raw) -> Result<Page, InvalidValue> {
    let number = |key: &str, text: Option<&String>, default: u32| match text {
        None => Ok(default),
        Some(text) => text.parse::<u32>().map_err(|_| {
            InvalidValue::new(
                key,
                format!("{:?} is not a whole number of 1 or more", echo(text)),
            )
        }),
    };
    Page::new(
        number("page[size]", raw.page_size.as_ref(), Page::DEFAULT_SIZE)?,
        number("page[number]", raw.page_number.as_ref(), 1)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use toolgate_model::Operator;

    /// Sunday 2026-12-06 04:30:15 UTC.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 4, 30, 15)
            .single()
            .expect("valid")
    }

    fn list(query: &str) -> ScanQuery {
        parse_list_query(query, now()).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    #[test]
    fn an_empty_query_is_every_scan_newest_first_page_one() {
        assert_eq!(list(""), ScanQuery::default());
    }

    #[test]
    fn list_filters_take_repeats_and_commas() {
        let query = list(
            "filter[assetName]=web,api&filter[assetName]=db\
             &filter[assetType]=github,IaC-API\
             &filter[tags]=env:dev,team&filter[tags]=owner:a%3Ab\
             &filter[user]=ci-bot&filter[status]=passed,FAILED\
             &filter[resourceList]=aws_s3_bucket.logs%2Caws_iam_role.x\
             &filter[failureCriteria]=H:5+%26+M:2+%26+L:1\
             &groupBy=assetType&page[size]=50&page[number]=3&sort=-scanTime,assetName",
        );
        assert_eq!(query.asset_names, ["web", "api", "db"]);
        assert_eq!(query.asset_types, [AssetType::GitHub, AssetType::IacApi]);
        assert_eq!(
            query.tags,
            [
                ("env".to_string(), Some("dev".to_string())),
                ("team".to_string(), None),
                ("owner".to_string(), Some("a:b".to_string())),
            ]
        );
        assert_eq!(query.users, ["ci-bot"]);
        assert_eq!(query.statuses, [ScanStatus::Passed, ScanStatus::Failed]);
        assert_eq!(query.resources, ["aws_s3_bucket.logs", "aws_iam_role.x"]);
        assert_eq!(
            query.failure_criteria,
            Some(CriteriaFilter {
                high: Some(5),
                medium: Some(2),
                low: Some(1),
                operator: Some(Operator::And)
            })
        );
        assert_eq!(query.group_by, Some(GroupBy::AssetType));
        assert_eq!(
            query.page,
            Page {
                size: 50,
                number: 3
            }
        );
        assert_eq!(
            query.sort,
            [
                (SortField::ScanTime, Direction::Descending),
                (SortField::AssetName, Direction::Ascending)
            ]
        );
    }

    #[test]
    fn sort_directions_table() {
        let table = [
            ("sort=scanTime", Direction::Ascending),
            ("sort=%2BscanTime", Direction::Ascending),
            // An unescaped `+` decodes to a space.
            ("sort=+scanTime", Direction::Ascending),
            ("sort=-scanTime", Direction::Descending),
        ];
        for (query, direction) in table {
            assert_eq!(
                list(query).sort,
                [(SortField::ScanTime, direction)],
                "{query}"
            );
        }
    }

    #[test]
    fn denied_parameters_name_the_key_and_the_allowed_ones() {
        let table = [
            ("filter[color]=red", "filter[color]", "filter[assetName]"),
            ("colour=red", "colour", "groupBy"),
            ("fmt=csv", "fmt", "sort"),
            ("filter[assetType]=Gitea", "filter[assetType]", "IaC-API"),
            ("filter[status]=done", "filter[status]", "processing"),
            ("filter[status]=,", "filter[status]", "comma-separated"),
            ("filter[tags]=:dev", "filter[tags]", "name:value"),
            ("filter[user]=a%0Ab", "filter[user]", "control"),
            (
                "filter[failureCriteria]=H:x",
                "filter[failureCriteria]",
                "H:5",
            ),
            (
                "filter[failureCriteria]=H:1&filter[failureCriteria]=H:2",
                "filter[failureCriteria]",
                "once",
            ),
            ("groupBy=tags", "groupBy", "resourceList"),
            ("page[size]=0", "page[size]", "1 to 1000"),
            ("page[size]=1001", "page[size]", "1 to 1000"),
            ("page[size]=ten", "page[size]", "whole number"),
            ("page[number]=0", "page[number]", "from 1"),
            ("sort=size", "sort", "scanTime"),
            ("sort=scanTime,-scanTime", "sort", "more than once"),
            ("sort=scanTime&sort=scanTime", "sort", "more than once"),
        ];
        for (query, field, mentions) in table {
            let error = parse_list_query(query, now()).expect_err(query);
            assert_eq!(error.field, field, "{query}");
            assert!(error.message.contains(mentions), "{query}: {error}");
        }
    }

    #[test]
    fn a_filter_holds_at_most_its_limit_of_values() {
        let names: Vec<String> = (0..MAX_FILTER_VALUES).map(|i| format!("n{i}")).collect();
        let query = format!("filter[assetName]={}", names.join(","));
        assert_eq!(list(&query).asset_names.len(), MAX_FILTER_VALUES);
        let error = parse_list_query(&format!("{query}&filter[assetName]=one-more"), now())
            .expect_err("over the limit");
        assert_eq!(error.field, "filter[assetName]");
    }

    #[test]
    fn export_takes_fmt_csv_only() {
        let table = ["", "fmt=csv", "fmt=CSV&filter[status]=failed"];
        for query in table {
            let (_, format) = parse_export_query(query, now()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format, ExportFormat::Csv);
        }
        for (query, field) in [
            ("fmt=xlsx", "fmt"),
            ("fmt=csv&fmt=csv", "fmt"),
            ("format=csv", "format"),
        ] {
            assert_eq!(
                parse_export_query(query, now()).expect_err(query).field,
                field
            );
        }
    }
}
