//! `list_scans` on PostgreSQL: the statements `crate::scan_list` builds for both backends, run
//! with PostgreSQL's placeholders.
//!
//! Invariant: the same [`ScanQuery`] selects, counts, sorts and groups exactly as on SQLite
//! (the SQL is the same text; the schema's `COLLATE "C"` makes text order byte order).

use deadpool_postgres::Client;
use tokio_postgres::types::ToSql;
use toolgate_model::{ScanGroup, ScanPage, ScanQuery, ScanTotals};

use super::rows::scan_row;
use crate::StoreError;
use crate::scan_list::{Dialect, Value, list_sql, totals_of};

/// `values` as PostgreSQL parameters.
fn parameters(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| match value {
            Value::Text(text) => text as &(dyn ToSql + Sync),
            Value::Integer(number) => number as &(dyn ToSql + Sync),
        })
        .collect()
}

/// The six totals starting at column `first`.
fn read_totals(row: &tokio_postgres::Row, first: usize) -> Result<ScanTotals, StoreError> {
    let mut numbers = [0_i64; 6];
    for (index, number) in numbers.iter_mut().enumerate() {
        *number = row.try_get(first + index)?;
    }
    Ok(totals_of(numbers))
}

pub(crate) async fn list(client: &Client, query: &ScanQuery) -> Result<ScanPage, StoreError> {
    let sql = list_sql(query, Dialect::Postgres);
    let filter_values = parameters(&sql.filter_values);
    let counts = client.prepare_cached(&sql.counts).await?;
    let totals = read_totals(&client.query_one(&counts, &filter_values).await?, 0)?;
    let page = client.prepare_cached(&sql.page).await?;
    let scans = client
        .query(&page, &parameters(&sql.page_values))
        .await?
        .iter()
        .map(|row| scan_row(row)?.into_scan())
        .collect::<Result<_, _>>()?;
    let mut groups = Vec::new();
    if let Some(groups_sql) = &sql.groups {
        let statement = client.prepare_cached(groups_sql).await?;
        for row in client.query(&statement, &filter_values).await? {
            groups.push(ScanGroup {
                key: row.try_get(0)?,
                totals: read_totals(&row, 1)?,
            });
        }
    }
    Ok(ScanPage {
        scans,
        totals,
        groups,
    })
}
