//! `list_scans`: one `WHERE` clause built from a [`ScanQuery`], used twice: for the counts over
//! every match (`meta`) and for the sorted page. The SQL is built once for both backends
//! ([`ListSql`], with each backend's placeholders); SQLite runs it here, PostgreSQL in
//! `pg/scan_list.rs`.
//!
//! Invariants: every filter is applied in SQL (never on a fetched page, which would make counts
//! and pages disagree); every caller value is a bound parameter, and the only text spliced into
//! the SQL is this module's own column names and keywords; a list filter selects scans matching
//! any of its values, different filters must all match; the order always ends with the id, so
//! pages are stable.

use rusqlite::{Connection, params_from_iter};
use toolgate_model::{
    Direction, GroupBy, ScanGroup, ScanPage, ScanQuery, ScanState, ScanTotals, SeverityCounts,
    SortField,
};

use crate::StoreError;
use crate::jobs::time_text;
use crate::scan_rows::{RawScan, SCAN_COLUMNS};

/// A bound parameter of a listing, in neither backend's own value type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(String),
    Integer(i64),
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::Text(text) => text.to_sql(),
            Value::Integer(number) => number.to_sql(),
        }
    }
}

/// How a backend numbers its placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?1`, `?2`, ...
    Sqlite,
    /// `$1`, `$2`, ...
    Postgres,
}

impl Dialect {
    fn mark(self, number: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{number}"),
            Dialect::Postgres => format!("${number}"),
        }
    }
}

/// A `WHERE` clause and its parameters, built together so their numbering agrees.
struct Filter {
    dialect: Dialect,
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            clauses: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Placeholders for `values`, appended to the parameters.
    fn placeholders(&mut self, values: impl IntoIterator<Item = Value>) -> String {
        let mut marks = Vec::new();
        for value in values {
            self.values.push(value);
            marks.push(self.dialect.mark(self.values.len()));
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

fn build_filter(query: &ScanQuery, dialect: Dialect) -> Filter {
    let mut filter = Filter::new(dialect);
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
fn page_sql(query: &ScanQuery, where_sql: &str, limit_mark: &str, offset_mark: &str) -> String {
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
         ORDER BY {inner_order} LIMIT {limit_mark} OFFSET {offset_mark}) AS page \
         JOIN scans ON scans.id = page.id ORDER BY {outer_order}",
        columns = columns.join(", "),
        selected = selected.join(", "),
        inner_order = inner_order.join(", "),
        outer_order = outer_order.join(", "),
    )
}

/// The totals `meta` reports, as SQL over the selected scans: how many, passed, failed, and
/// their findings per bucket. Every column is a 64-bit integer in both backends (PostgreSQL
/// cannot sum a comparison, hence the `CASE`s; its bigint columns sum to numeric, hence the casts).
const TOTALS_SQL: &str = "COUNT(*), \
    COALESCE(SUM(CASE WHEN state = 'passed' THEN 1 ELSE 0 END), 0), \
    COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0), \
    CAST(COALESCE(SUM(found_high), 0) AS BIGINT), CAST(COALESCE(SUM(found_medium), 0) AS BIGINT), \
    CAST(COALESCE(SUM(found_low), 0) AS BIGINT)";

/// The totals of `TOTALS_SQL`, as read from a row: all, passed, failed, high, medium, low.
pub(crate) fn totals_of(numbers: [i64; 6]) -> ScanTotals {
    let count = |index: usize| u64::try_from(numbers[index]).unwrap_or(0);
    ScanTotals {
        all: count(0),
        passed: count(1),
        failed: count(2),
        // The stored sums are per bucket: critical is counted in high, as the API reports it.
        counts: SeverityCounts {
            high: count(3),
            medium: count(4),
            low: count(5),
            ..SeverityCounts::default()
        },
    }
}

/// Reads the six `TOTALS_SQL` columns starting at `first`.
fn read_totals(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<ScanTotals> {
    let mut numbers = [0_i64; 6];
    for (index, number) in numbers.iter_mut().enumerate() {
        *number = row.get(first + index)?;
    }
    Ok(totals_of(numbers))
}

/// A listing's statements and their parameters, in one backend's placeholders.
pub(crate) struct ListSql {
    /// The six `TOTALS_SQL` columns over every match; binds `filter_values`.
    pub(crate) counts: String,
    /// The page's scans (`SCAN_COLUMNS`), in order; binds `page_values`.
    pub(crate) page: String,
    /// The groups (key, then the six totals), when the query asks for them; binds
    /// `filter_values`.
    pub(crate) groups: Option<String>,
    pub(crate) filter_values: Vec<Value>,
    /// `filter_values`, then the page's limit and offset.
    pub(crate) page_values: Vec<Value>,
}

/// The statements that list `query`, for `dialect`.
pub(crate) fn list_sql(query: &ScanQuery, dialect: Dialect) -> ListSql {
    let filter = build_filter(query, dialect);
    let where_sql = filter.sql();
    let mut page_values = filter.values.clone();
    page_values.push(Value::Integer(i64::from(query.page.size)));
    let limit_mark = dialect.mark(page_values.len());
    page_values.push(Value::Integer(
        i64::try_from(query.page.offset()).unwrap_or(i64::MAX),
    ));
    let offset_mark = dialect.mark(page_values.len());
    ListSql {
        counts: format!("SELECT {TOTALS_SQL} FROM scans {where_sql}"),
        page: page_sql(query, &where_sql, &limit_mark, &offset_mark),
        groups: query
            .group_by
            .map(|group_by| groups_sql(group_by, &where_sql)),
        filter_values: filter.values,
        page_values,
    }
}

/// The groups of a `groupBy` list, over every selected scan, ordered by key. A scan with
/// several resources counts in the group of each.
fn groups_sql(group_by: GroupBy, where_sql: &str) -> String {
    match group_by {
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
    }
}

pub(crate) fn list(conn: &Connection, query: &ScanQuery) -> Result<ScanPage, StoreError> {
    let sql = list_sql(query, Dialect::Sqlite);
    let totals = conn
        .prepare_cached(&sql.counts)?
        .query_row(params_from_iter(sql.filter_values.iter()), |row| {
            read_totals(row, 0)
        })?;
    let mut statement = conn.prepare_cached(&sql.page)?;
    let rows = statement.query_map(params_from_iter(sql.page_values.iter()), RawScan::read)?;
    let mut scans = Vec::new();
    for row in rows {
        scans.push(row?.into_scan()?);
    }
    let mut groups = Vec::new();
    if let Some(groups_sql) = &sql.groups {
        let mut statement = conn.prepare_cached(groups_sql)?;
        let rows = statement.query_map(params_from_iter(sql.filter_values.iter()), |row| {
            Ok(ScanGroup {
                key: row.get(0)?,
                totals: read_totals(row, 1)?,
            })
        })?;
        for row in rows {
            groups.push(row?);
        }
    }
    Ok(ScanPage {
        scans,
        totals,
        groups,
    })
}
