//! `list_scans`: one `WHERE` clause built from a [`ScanQuery`], used twice: for the counts over
//! every match (`meta`) and for the sorted page.
//!
//! Invariants: every filter is applied in SQL (never on a fetched page, which would make counts
//! and pages disagree); every caller value is a bound parameter, and the only text spliced into
//! the SQL is this module's own column names and keywords; a list filter selects scans matching
//! any of its values, different filters must all match; the order always ends with the id, so
//! pages are stable.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};
use toolgate_model::{
    Direction, GroupBy, ScanGroup, ScanPage, ScanQuery, ScanState, ScanTotals, SeverityCounts,
    SortField,
};

use crate::StoreError;
use crate::jobs::time_text;
use crate::scan_rows::{RawScan, SCAN_COLUMNS};

/// A `WHERE` clause and its parameters, built together so their numbering agrees.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    /// `?` placeholders for `values`, appended to the parameters.
    fn placeholders(&mut self, values: impl IntoIterator<Item = Value>) -> String {
        let mut marks = Vec::new();
        for value in values {
            self.values.push(value);
            marks.push(format!("?{}", self.values.len()));
        }
        marks.join(", ")
    }

    /// `column IN (values)`, unless `values` is empty (no filter).
    fn any_of(&mut self, column: &str, values: Vec<Value>) {
        if values.is_empty() {
            return;
        }
        let marks = self.placeholders(values);
        self.clauses.push(format!("{column} IN ({marks})"));
    }

    fn compare(&mut self, column: &str, operator: &str, value: Value) {
        let mark = self.placeholders([value]);
        self.clauses.push(format!("{column} {operator} {mark}"));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

fn build_filter(query: &ScanQuery) -> Filter {
    let mut filter = Filter::default();
    if let Some(from) = query.window.from {
        filter.compare("created_at", ">=", Value::Text(time_text(from)));
    }
    if let Some(to) = query.window.to {
        filter.compare("created_at", "<=", Value::Text(time_text(to)));
    }
    filter.any_of(
        "asset_name",
        query.asset_names.iter().map(|name| text(name)).collect(),
    );
    filter.any_of(
        "asset_type",
        query
            .asset_types
            .iter()
            .map(|kind| text(kind.as_str()))
            .collect(),
    );
    filter.any_of(
        "tenant",
        query.owner.iter().map(|owner| text(owner)).collect(),
    );
    filter.any_of(
        "user_name",
        query.users.iter().map(|user| text(user)).collect(),
    );
    let states: Vec<Value> = query
        .statuses
        .iter()
        .flat_map(|status| ScanState::with_status(*status))
        .map(|state| text(state.as_str()))
        .collect();
    filter.any_of("state", states);
    if !query.tags.is_empty() {
        let mut alternatives = Vec::new();
        for (name, value) in &query.tags {
            let name_mark = filter.placeholders([text(name)]);
            match value {
                Some(value) => {
                    let value_mark = filter.placeholders([text(value)]);
                    alternatives.push(format!("(name = {name_mark} AND value = {value_mark})"));
                }
                None => alternatives.push(format!("name = {name_mark}")),
            }
        }
        // A set of matching scans, found through the tag index, rather than a probe per scan.
        filter.clauses.push(format!(
            "id IN (SELECT scan FROM scan_tags WHERE {})",
            alternatives.join(" OR ")
        ));
    }
    if !query.resources.is_empty() {
        let marks = filter.placeholders(query.resources.iter().map(|name| text(name)));
        filter.clauses.push(format!(
            "id IN (SELECT scan FROM scan_resources WHERE resource IN ({marks}))"
        ));
    }
    if let Some(criteria) = &query.failure_criteria {
        for (column, threshold) in [
            ("criteria_high", criteria.high),
            ("criteria_medium", criteria.medium),
            ("criteria_low", criteria.low),
        ] {
            if let Some(threshold) = threshold {
                filter.compare(column, "=", Value::Integer(i64::from(threshold)));
            }
        }
        if let Some(operator) = criteria.operator {
            filter.compare("criteria_operator", "=", text(operator.as_str()));
        }
    }
    filter
}

fn sort_column(field: SortField) -> &'static str {
    match field {
        SortField::ScanTime => "created_at",
        SortField::AssetName => "asset_name",
        SortField::AssetType => "asset_type",
        // The status the API reports, so that every processing state sorts together.
        SortField::Status => {
            "CASE WHEN state IN ('passed', 'failed', 'error') THEN state ELSE 'processing' END"
        }
        SortField::User => "user_name",
    }
}

/// The query's sort keys (newest first when it has none), each as (expression, direction);
/// the id, which ends every order, is not among them.
fn sort_keys(query: &ScanQuery) -> Vec<(&'static str, &'static str)> {
    let mut keys: Vec<(&str, &str)> = query
        .sort
        .iter()
        .map(|(field, direction)| {
            let direction = match direction {
                Direction::Ascending => "ASC",
                Direction::Descending => "DESC",
            };
            (sort_column(*field), direction)
        })
        .collect();
    if keys.is_empty() {
        keys.push(("created_at", "DESC"));
    }
    keys
}

/// The page's SQL: the matching ids are sorted and cut to the page first, with only their sort
/// keys (a narrow sort, even on the last page of 10,000), and only the page's rows are then read
/// whole and put back in that order.
fn page_sql(query: &ScanQuery, where_sql: &str, limit_mark: usize, offset_mark: usize) -> String {
    let keys = sort_keys(query);
    let selected: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(index, (expression, _))| format!("{expression} AS key{index}"))
        .collect();
    let inner_order: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(index, (_, direction))| format!("key{index} {direction}"))
        .chain(std::iter::once("id ASC".to_string()))
        .collect();
    let outer_order: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(index, (_, direction))| format!("page.key{index} {direction}"))
        .chain(std::iter::once("page.id ASC".to_string()))
        .collect();
    let columns: Vec<String> = SCAN_COLUMNS
        .split(',')
        .map(|column| format!("scans.{}", column.trim()))
        .collect();
    format!(
        "SELECT {columns} FROM (SELECT id, {selected} FROM scans {where_sql} \
         ORDER BY {inner_order} LIMIT ?{limit_mark} OFFSET ?{offset_mark}) AS page \
         JOIN scans ON scans.id = page.id ORDER BY {outer_order}",
        columns = columns.join(", "),
        selected = selected.join(", "),
        inner_order = inner_order.join(", "),
        outer_order = outer_order.join(", "),
    )
}

/// The totals `meta` reports, as SQL over the selected scans: how many, passed, failed, and
/// their findings per bucket.
const TOTALS_SQL: &str = "COUNT(*), COALESCE(SUM(state = 'passed'), 0), \
    COALESCE(SUM(state = 'failed'), 0), COALESCE(SUM(found_high), 0), \
    COALESCE(SUM(found_medium), 0), COALESCE(SUM(found_low), 0)";

/// Reads the six `TOTALS_SQL` columns starting at `first`.
fn read_totals(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ScanTotals> {
    let count = |index: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(row.get::<_, i64>(first + index)?).unwrap_or(0))
    };
    Ok(ScanTotals {
        all: count(0)?,
        passed: count(1)?,
        failed: count(2)?,
        // The stored sums are per bucket: critical is counted in high, as the API reports it.
        counts: SeverityCounts {
            high: count(3)?,
            medium: count(4)?,
            low: count(5)?,
            ..SeverityCounts::default()
        },
    })
}

/// The groups of a `groupBy` list, over every selected scan, ordered by key. A scan with
/// several resources counts in the group of each.
fn groups(
    conn: &Connection,
    query: &ScanQuery,
    filter: &Filter,
) -> Result<Vec<ScanGroup>, StoreError> {
    let Some(group_by) = query.group_by else {
        return Ok(Vec::new());
    };
    let where_sql = filter.sql();
    let sql = match group_by {
        GroupBy::AssetType | GroupBy::AssetName => {
            let column = if group_by == GroupBy::AssetType {
                "asset_type"
            } else {
                "asset_name"
            };
            format!(
                "SELECT {column}, {TOTALS_SQL} FROM scans {where_sql} GROUP BY {column} ORDER BY {column}"
            )
        }
        // scan_resources' columns (scan, resource) are named unlike any of scans', so the
        // filter's unqualified columns stay unambiguous in the join.
        GroupBy::ResourceList => format!(
            "SELECT scan_resources.resource, {TOTALS_SQL} FROM scans \
             JOIN scan_resources ON scan_resources.scan = scans.id {where_sql} \
             GROUP BY scan_resources.resource ORDER BY scan_resources.resource"
        ),
    };
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params_from_iter(filter.values.iter()), |row| {
        Ok(ScanGroup {
            key: row.get(0)?,
            totals: read_totals(row, 1)?,
        })
    })?;
    let mut found = Vec::new();
    for row in rows {
        found.push(row?);
    }
    Ok(found)
}

pub(crate) fn list(conn: &Connection, query: &ScanQuery) -> Result<ScanPage, StoreError> {
    let filter = build_filter(query);
    let where_sql = filter.sql();
    let counts_sql = format!("SELECT {TOTALS_SQL} FROM scans {where_sql}");
    let totals = conn
        .prepare_cached(&counts_sql)?
        .query_row(params_from_iter(filter.values.iter()), |row| {
            read_totals(row, 0)
        })?;
    let mut values = filter.values.clone();
    values.push(Value::Integer(i64::from(query.page.size)));
    let limit_mark = values.len();
    values.push(Value::Integer(
        i64::try_from(query.page.offset()).unwrap_or(i64::MAX),
    ));
    let offset_mark = values.len();
    let page_sql = page_sql(query, &where_sql, limit_mark, offset_mark);
    let mut statement = conn.prepare_cached(&page_sql)?;
    let rows = statement.query_map(params_from_iter(values.iter()), RawScan::read)?;
    let mut scans = Vec::new();
    for row in rows {
        scans.push(row?.into_scan()?);
    }
    Ok(ScanPage {
        scans,
        totals,
        groups: groups(conn, query, &filter)?,
    })
}
