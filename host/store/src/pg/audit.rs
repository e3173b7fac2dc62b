//! The audit trail's rows on PostgreSQL: appended, read back by filter, never changed (a
//! trigger refuses UPDATE, DELETE and TRUNCATE; see `schema.rs`, version 6).
//!
//! Invariants (as in SQLite's `audit.rs`): ids are the chain's sequence numbers, assigned by
//! the daemon; a row is stored only after the row it was sealed on and under an id not taken
//! (the writer's insert checks both), so of two daemons appending after the same row only one
//! succeeds; rows are stored and returned as written.

use super::PgStore;
use super::writer::{AuditWrite, Write};
use crate::{AuditFilter, AuditRow, AuditStore, MAX_AUDIT_PAGE, StoreError, StoreFuture};

const AUDIT_COLUMNS: &str =
    "id, time, tenant, key_id, action, tool, argv, decision, outcome, client, hash";

fn read_row(row: &tokio_postgres::Row) -> Result<AuditRow, StoreError> {
    let id: i64 = row.try_get(0)?;
    let argv: String = row.try_get(6)?;
    Ok(AuditRow {
        id: u64::try_from(id).map_err(|_| StoreError::Corrupt(format!("audit id {id}")))?,
        time: row.try_get(1)?,
        tenant: row.try_get(2)?,
        key_id: row.try_get(3)?,
        action: row.try_get(4)?,
        tool: row.try_get(5)?,
        argv: serde_json::from_str(&argv)?,
        decision: row.try_get(7)?,
        outcome: row.try_get(8)?,
        client: row.try_get(9)?,
        hash: row.try_get(10)?,
    })
}

impl PgStore {
    async fn last(&self) -> Result<Option<AuditRow>, StoreError> {
        let client = self.pool.get().await?;
        client
            .query_opt(
                &format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT 1"),
                &[],
            )
            .await?
            .map(|row| read_row(&row))
            .transpose()
    }

    async fn select(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > $1 \
                 AND ($2::text IS NULL OR tenant = $2) AND ($3::text IS NULL OR action = $3) \
                 AND ($4::text IS NULL OR time >= $4) AND ($5::text IS NULL OR time <= $5) \
                 ORDER BY id LIMIT $6"
            ))
            .await?;
        let after = i64::try_from(filter.after_id).unwrap_or(i64::MAX);
        let limit = i64::try_from(filter.limit.min(MAX_AUDIT_PAGE)).unwrap_or(i64::MAX);
        client
            .query(
                &statement,
                &[
                    &after,
                    &filter.tenant,
                    &filter.action,
                    &filter.since,
                    &filter.until,
                    &limit,
                ],
            )
            .await?
            .iter()
            .map(read_row)
            .collect()
    }
}

impl AuditStore for PgStore {
    /// Through the writer (`writer.rs`), which commits without waiting for the WAL flush:
    /// records are appended in chain order, so a flush per record would serialise every
    /// audited request behind the disk; the chain's hash is also in the daemon's log, which
    /// anchors it. The row is queued here, before the future is polled.
    fn append_audit(&self, row: AuditRow, previous: String) -> StoreFuture<()> {
        let id = match i64::try_from(row.id) {
            Ok(id) => id,
            Err(_) => {
                let error = StoreError::Corrupt(format!("audit id {}", row.id));
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        let argv = match serde_json::to_string(&row.argv) {
            Ok(argv) => argv,
            Err(error) => return Box::pin(std::future::ready(Err(error.into()))),
        };
        Box::pin(self.writer.submit(Write::Audit(AuditWrite {
            row,
            id,
            argv,
            previous,
        })))
    }

    fn last_audit(&self) -> StoreFuture<Option<AuditRow>> {
        let store = self.clone();
        Box::pin(async move { store.last().await })
    }

    fn audit_rows(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditRow>> {
        let store = self.clone();
        Box::pin(async move { store.select(filter).await })
    }
}
