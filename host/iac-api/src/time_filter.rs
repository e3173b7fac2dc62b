//! The time filters of a scan query (`filter[timeType]`, `filter[timeUnit]`,
//! `filter[timeAmount]`, `filter[startTime]`, `filter[endTime]`) resolved against a given `now`
//! into a [`TimeWindow`]; the formats are described in [`crate::query`].
//!
//! Invariants: `to_now` windows start at the start of the current unit in UTC (weeks on
//! Monday) and stay open-ended; `relative` windows start `amount` units before `now`; calendar
//! overflow is an error, never a wrap-around; a Unix time is seconds below
//! [`MILLISECONDS_FROM`] and milliseconds from it on; parameters that do not belong to the
//! chosen `timeType` are refused rather than ignored, so a caller never believes a filter
//! applied that did not.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeDelta, Timelike, Utc};
use toolgate_model::{InvalidValue, TimeWindow, echo};

/// A Unix time at or above this is read as milliseconds: as seconds it would be the year 5138,
/// as milliseconds it is 1973, so no real scan time is ambiguous.
pub const MILLISECONDS_FROM: i64 = 100_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeType {
    ToNow,
    Absolute,
    Relative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    Epoch,
    Login,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

const TIME_UNITS: [(&str, TimeUnit); 7] = [
    ("epoch", TimeUnit::Epoch),
    ("login", TimeUnit::Login),
    ("hour", TimeUnit::Hour),
    ("day", TimeUnit::Day),
    ("week", TimeUnit::Week),
    ("month", TimeUnit::Month),
    ("year", TimeUnit::Year),
];

/// The time parameters of a query, as given (trimmed, non-empty).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimeParameters<'a> {
    pub time_type: Option<&'a str>,
    pub time_unit: Option<&'a str>,
    pub time_amount: Option<&'a str>,
    pub start_time: Option<&'a str>,
    pub end_time: Option<&'a str>,
}

/// The window the parameters select, resolved against `now`.
pub(crate) fn resolve(
    raw: &TimeParameters<'_>,
    now: DateTime<Utc>,
) -> Result<TimeWindow, InvalidValue> {
    let time_type = match raw.time_type {
        Some(text) => match text.to_ascii_lowercase().as_str() {
            "to_now" => TimeType::ToNow,
            "absolute" => TimeType::Absolute,
            "relative" => TimeType::Relative,
            _ => {
                return Err(InvalidValue::not_allowed(
                    "filter[timeType]",
                    text,
                    &["to_now", "absolute", "relative"],
                ));
            }
        },
        None if raw.start_time.is_some() || raw.end_time.is_some() => TimeType::Absolute,
        None if raw.time_unit.is_some() || raw.time_amount.is_some() => {
            return Err(InvalidValue::new(
                "filter[timeType]",
                "is missing; filter[timeUnit] and filter[timeAmount] need filter[timeType]=to_now or relative",
            ));
        }
        None => return Ok(TimeWindow::default()),
    };
    let unit = raw
        .time_unit
        .map(|text| {
            TIME_UNITS
                .into_iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(text))
                .map(|(_, unit)| unit)
                .ok_or_else(|| {
                    let allowed: Vec<&str> = TIME_UNITS.iter().map(|(name, _)| *name).collect();
                    InvalidValue::not_allowed("filter[timeUnit]", text, &allowed)
                })
        })
        .transpose()?;
    let not_with = |key: &str, given: bool, kind: &str| {
        if given {
            Err(InvalidValue::new(
                key,
                format!("is not used with filter[timeType]={kind}"),
            ))
        } else {
            Ok(())
        }
    };
    match time_type {
        TimeType::ToNow => {
            not_with("filter[timeAmount]", raw.time_amount.is_some(), "to_now")?;
            not_with("filter[startTime]", raw.start_time.is_some(), "to_now")?;
            not_with("filter[endTime]", raw.end_time.is_some(), "to_now")?;
            Ok(TimeWindow {
                from: start_of(unit.unwrap_or(TimeUnit::Epoch), now)?,
                to: None,
            })
        }
        TimeType::Relative => {
            not_with("filter[startTime]", raw.start_time.is_some(), "relative")?;
            not_with("filter[endTime]", raw.end_time.is_some(), "relative")?;
            let amount_text = raw.time_amount.ok_or_else(|| {
                InvalidValue::new(
                    "filter[timeAmount]",
                    "is missing; filter[timeType]=relative needs a count of units, e.g. 24",
                )
            })?;
            let amount = amount_text
                .parse::<u32>()
                .ok()
                .filter(|amount| *amount >= 1)
                .ok_or_else(|| {
                    InvalidValue::new(
                        "filter[timeAmount]",
                        format!("{:?} is not a whole number of 1 or more", echo(amount_text)),
                    )
                })?;
            let unit = match unit {
                Some(
                    unit @ (TimeUnit::Hour
                    | TimeUnit::Day
                    | TimeUnit::Week
                    | TimeUnit::Month
                    | TimeUnit::Year),
                ) => unit,
                other => {
                    let given = other
                        .and_then(|unit| TIME_UNITS.iter().find(|(_, named)| *named == unit))
                        .map_or("(none)", |(name, _)| *name);
                    return Err(InvalidValue::not_allowed(
                        "filter[timeUnit]",
                        given,
                        &["hour", "day", "week", "month", "year"],
                    ));
                }
            };
            Ok(TimeWindow {
                from: Some(before(now, amount, unit)?),
                to: None,
            })
        }
        TimeType::Absolute => {
            not_with("filter[timeUnit]", raw.time_unit.is_some(), "absolute")?;
            not_with("filter[timeAmount]", raw.time_amount.is_some(), "absolute")?;
            let from = raw
                .start_time
                .map(|text| unix_time("filter[startTime]", text))
                .transpose()?;
            let to = raw
                .end_time
                .map(|text| unix_time("filter[endTime]", text))
                .transpose()?;
            if from.is_none() && to.is_none() {
                return Err(InvalidValue::new(
                    "filter[startTime]",
                    "is missing; filter[timeType]=absolute needs filter[startTime] and/or filter[endTime]",
                ));
            }
            if let (Some(from), Some(to)) = (from, to)
                && from > to
            {
                return Err(InvalidValue::new(
                    "filter[endTime]",
                    format!("{to} is before filter[startTime] {from}"),
                ));
            }
            Ok(TimeWindow { from, to })
        }
    }
}

fn out_of_range(key: &str) -> InvalidValue {
    InvalidValue::new(key, "reaches outside the calendar's range")
}

/// The start of the current `unit` in UTC (`None` for all time).
fn start_of(unit: TimeUnit, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, InvalidValue> {
    let date = now.date_naive();
    let midnight = |day: Option<NaiveDate>| {
        day.and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|time| time.and_utc())
            .ok_or_else(|| out_of_range("filter[timeUnit]"))
    };
    Ok(match unit {
        TimeUnit::Epoch | TimeUnit::Login => None,
        TimeUnit::Hour => Some(
            date.and_hms_opt(now.hour(), 0, 0)
                .map(|time| time.and_utc())
                .ok_or_else(|| out_of_range("filter[timeUnit]"))?,
        ),
        TimeUnit::Day => Some(midnight(Some(date))?),
        TimeUnit::Week => Some(midnight(date.checked_sub_days(Days::new(u64::from(
            date.weekday().num_days_from_monday(),
        ))))?),
        TimeUnit::Month => Some(midnight(NaiveDate::from_ymd_opt(
            date.year(),
            date.month(),
            1,
        ))?),
        TimeUnit::Year => Some(midnight(NaiveDate::from_ymd_opt(date.year(), 1, 1))?),
    })
}

/// `now` minus `amount` units.
fn before(now: DateTime<Utc>, amount: u32, unit: TimeUnit) -> Result<DateTime<Utc>, InvalidValue> {
    let amount64 = i64::from(amount);
    let delta = match unit {
        TimeUnit::Hour => TimeDelta::try_hours(amount64),
        TimeUnit::Day => TimeDelta::try_days(amount64),
        TimeUnit::Week => TimeDelta::try_weeks(amount64),
        TimeUnit::Month => {
            return now
                .checked_sub_months(Months::new(amount))
                .ok_or_else(|| out_of_range("filter[timeAmount]"));
        }
        TimeUnit::Year => {
            return amount
                .checked_mul(12)
                .and_then(|months| now.checked_sub_months(Months::new(months)))
                .ok_or_else(|| out_of_range("filter[timeAmount]"));
        }
        TimeUnit::Epoch | TimeUnit::Login => None,
    };
    delta
        .and_then(|delta| now.checked_sub_signed(delta))
        .ok_or_else(|| out_of_range("filter[timeAmount]"))
}

/// Unix seconds, or milliseconds at or above [`MILLISECONDS_FROM`].
fn unix_time(key: &str, text: &str) -> Result<DateTime<Utc>, InvalidValue> {
    let bad = || {
        InvalidValue::new(
            key,
            format!(
                "{:?} is not a Unix time; allowed: whole seconds or milliseconds since 1970, e.g. 1733460000",
                echo(text)
            ),
        )
    };
    let value: i64 = text.parse().map_err(|_| bad())?;
    if value < 0 {
        return Err(bad());
    }
    let time = if value >= MILLISECONDS_FROM {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    };
    time.ok_or_else(|| out_of_range(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parse_list_query;
    use chrono::TimeZone;

    /// Sunday 2026-12-06 04:30:15 UTC.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 4, 30, 15)
            .single()
            .expect("valid")
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> Option<DateTime<Utc>> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).single()
    }

    fn window(query: &str) -> TimeWindow {
        parse_list_query(query, now())
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .window
    }

    #[test]
    fn time_windows_table() {
        let table = [
            ("filter[timeType]=to_now", TimeWindow::default()),
            (
                "filter[timeType]=to_now&filter[timeUnit]=epoch",
                TimeWindow::default(),
            ),
            (
                "filter[timeType]=to_now&filter[timeUnit]=login",
                TimeWindow::default(),
            ),
            (
                "filter[timeType]=to_now&filter[timeUnit]=hour",
                TimeWindow {
                    from: at(2026, 12, 6, 4, 0, 0),
                    to: None,
                },
            ),
            (
                "filter[timeType]=TO_NOW&filter[timeUnit]=day",
                TimeWindow {
                    from: at(2026, 12, 6, 0, 0, 0),
                    to: None,
                },
            ),
            (
                "filter[timeType]=to_now&filter[timeUnit]=week",
                TimeWindow {
                    from: at(2026, 11, 30, 0, 0, 0),
                    to: None,
                },
            ),
            (
                "filter[timeType]=to_now&filter[timeUnit]=month",
                TimeWindow {
                    from: at(2026, 12, 1, 0, 0, 0),
                    to: None,
                },
            ),
            (
                "filter[timeType]=to_now&filter[timeUnit]=year",
                TimeWindow {
                    from: at(2026, 1, 1, 0, 0, 0),
                    to: None,
                },
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=24&filter[timeUnit]=hour",
                TimeWindow {
                    from: at(2026, 12, 5, 4, 30, 15),
                    to: None,
                },
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=2&filter[timeUnit]=week",
                TimeWindow {
                    from: at(2026, 11, 22, 4, 30, 15),
                    to: None,
                },
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=1&filter[timeUnit]=month",
                TimeWindow {
                    from: at(2026, 11, 6, 4, 30, 15),
                    to: None,
                },
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=1&filter[timeUnit]=year",
                TimeWindow {
                    from: at(2025, 12, 6, 4, 30, 15),
                    to: None,
                },
            ),
            (
                "filter[timeType]=absolute&filter[startTime]=1733460000&filter[endTime]=1733470000",
                TimeWindow {
                    from: DateTime::from_timestamp(1_733_460_000, 0),
                    to: DateTime::from_timestamp(1_733_470_000, 0),
                },
            ),
            (
                // Milliseconds, as a public script sends them; no timeType means absolute.
                "filter[startTime]=1733460000123",
                TimeWindow {
                    from: DateTime::from_timestamp_millis(1_733_460_000_123),
                    to: None,
                },
            ),
            (
                "filter[timeType]=absolute&filter[endTime]=0",
                TimeWindow {
                    from: None,
                    to: DateTime::from_timestamp(0, 0),
                },
            ),
        ];
        for (query, expected) in table {
            assert_eq!(window(query), expected, "{query}");
        }
    }

    #[test]
    fn seconds_and_milliseconds_meet_at_the_threshold() {
        let below = MILLISECONDS_FROM - 1;
        let query = format!("filter[startTime]={below}&filter[endTime]={MILLISECONDS_FROM}");
        let error = parse_list_query(&query, now()).expect_err("the year 5138 is after 1973");
        assert_eq!(error.field, "filter[endTime]");
        let query = format!("filter[startTime]={MILLISECONDS_FROM}");
        assert_eq!(
            window(&query).from,
            DateTime::from_timestamp(100_000_000, 0)
        );
    }

    #[test]
    fn denied_time_filters_name_the_parameter() {
        let table = [
            ("filter[timeType]=later", "filter[timeType]"),
            (
                "filter[timeType]=to_now&filter[timeUnit]=fortnight",
                "filter[timeUnit]",
            ),
            (
                "filter[timeType]=to_now&filter[timeAmount]=3",
                "filter[timeAmount]",
            ),
            (
                "filter[timeType]=to_now&filter[startTime]=3",
                "filter[startTime]",
            ),
            (
                "filter[timeType]=relative&filter[timeUnit]=day",
                "filter[timeAmount]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=0&filter[timeUnit]=day",
                "filter[timeAmount]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=-1&filter[timeUnit]=day",
                "filter[timeAmount]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=x&filter[timeUnit]=day",
                "filter[timeAmount]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=2",
                "filter[timeUnit]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=2&filter[timeUnit]=epoch",
                "filter[timeUnit]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=2&filter[timeUnit]=day&filter[endTime]=1",
                "filter[endTime]",
            ),
            (
                "filter[timeType]=relative&filter[timeAmount]=4294967295&filter[timeUnit]=year",
                "filter[timeAmount]",
            ),
            ("filter[timeType]=absolute", "filter[startTime]"),
            (
                "filter[timeType]=absolute&filter[startTime]=abc",
                "filter[startTime]",
            ),
            (
                "filter[timeType]=absolute&filter[startTime]=-5",
                "filter[startTime]",
            ),
            (
                "filter[timeType]=absolute&filter[startTime]=1.5",
                "filter[startTime]",
            ),
            (
                "filter[timeType]=absolute&filter[startTime]=20&filter[endTime]=10",
                "filter[endTime]",
            ),
            (
                "filter[timeType]=absolute&filter[startTime]=20&filter[timeUnit]=day",
                "filter[timeUnit]",
            ),
            ("filter[endTime]=9223372036854775807", "filter[endTime]"),
            ("filter[timeUnit]=day", "filter[timeType]"),
            (
                "filter[timeType]=to_now&filter[timeType]=to_now",
                "filter[timeType]",
            ),
            ("filter[timeType]=", "filter[timeType]"),
        ];
        for (query, field) in table {
            let error = parse_list_query(query, now()).expect_err(query);
            assert_eq!(error.field, field, "{query}: {error}");
        }
    }
}
