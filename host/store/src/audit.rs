//! The audit trail's table (issue #16): append-only rows, each with the chain hash the daemon
//! computed over it and the previous row (`toolgate_auth::audit`).
//!
//! Invariants: rows are only ever inserted (SQLite triggers refuse UPDATE and DELETE, so only
//! someone who edits the file or drops the triggers can change one, and `toolgate audit verify`
//! then names the row); ids are the chain's sequence numbers, assigned by the daemon, so a gap
//! or reorder is visible; this module stores and returns rows as written and interprets
//! nothing (hashing lives in the auth crate, which the store does not depend on).

use std::path::Path;

use rusqlite::{Connection, OpenFlags, Row, params};

use crate::jobs::SqliteStore;
use crate::{StoreError, StoreFuture};

/// Most rows one read returns: a page of the trail, not the whole of it.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// One stored audit record, field for field as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: u64,
    /// RFC 3339 UTC with microseconds (the precision the hash covers).
    pub time: String,
    pub tenant: String,
    pub key_id: Option<String>,
    pub action: String,
    pub tool: Option<String>,
    pub argv: Vec<String>,
    pub decision: String,
    pub outcome: String,
    pub client: Option<String>,
    /// The chain hash, 64 hex characters.
    pub hash: String,
}

/// Which rows a read returns, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<String>,
    pub action: Option<String>,
    /// Inclusive bounds on `time` (RFC 3339 text, compared as text).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only rows with a greater id (the paging cursor).
    pub after_id: u64,
    /// At most this many (capped at [`MAX_AUDIT_PAGE`]).
    pub limit: usize,
}

const AUDIT_COLUMNS: &str =
    "id, time, tenant, key_id, action, tool, argv, decision, outcome, client, hash";

fn read_row(row: &Row<'_>) -> rusqlite::Result<(AuditRow, String)> {
    let id: i64 = row.get(0)?;
    Ok((
        AuditRow {
            id: u64::try_from(id).unwrap_or_default(),
            time: row.get(1)?,
            tenant: row.get(2)?,
            key_id: row.get(3)?,
            action: row.get(4)?,
            tool: row.get(5)?,
            argv: Vec::new(),
            decision: row.get(7)?,
            outcome: row.get(8)?,
            client: row.get(9)?,
            hash: row.get(10)?,
        },
        row.get(6)?,
    ))
}

fn decode(rows: Vec<(AuditRow, String)>) -> Result<Vec<AuditRow>, StoreError> {
    rows.into_iter()
        .map(|(mut row, argv)| {
            row.argv = serde_json::from_str(&argv)?;
            Ok(row)
        })
        .collect()
}

/// Inserts `row` after the row whose hash is `previous` (any for id 1): refused when the stored
/// row before it has another hash or is missing, and by the primary key when its id is taken.
pub(crate) fn insert(conn: &Connection, row: &AuditRow, previous: &str) -> Result<(), StoreError> {
    let id = i64::try_from(row.id).map_err(|_| StoreError::AuditChain { id: row.id })?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO audit (id, time, tenant, key_id, action, tool, argv, decision, outcome, \
             client, hash) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 \
             WHERE ?1 = 1 OR EXISTS (SELECT 1 FROM audit WHERE id = ?1 - 1 AND hash = ?12)",
        )?
        .execute(params![
            id,
            row.time,
            row.tenant,
            row.key_id,
            row.action,
            row.tool,
            serde_json::to_string(&row.argv)?,
            row.decision,
            row.outcome,
            row.client,
            row.hash,
            previous,
        ])?;
    if inserted == 0 {
        return Err(StoreError::AuditChain { id: row.id });
    }
    Ok(())
}

impl SqliteStore {
    /// The newest row, whose id and hash the next row chains to.
    pub async fn last_audit(&self) -> Result<Option<AuditRow>, StoreError> {
        self.with_reader(|conn| {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT 1");
            let rows = conn
                .prepare_cached(&sql)?
                .query_map([], read_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(decode(rows)?.pop())
        })
        .await
    }

    /// Rows matching `filter`, oldest first.
    pub async fn audit_rows(&self, filter: AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        self.with_reader(move |conn| select(conn, &filter)).await
    }
}

impl crate::AuditStore for SqliteStore {
    fn append_audit(&self, row: AuditRow, previous: String) -> StoreFuture<()> {
        Box::pin(self.queue_audit(row, previous))
    }

    fn last_audit(&self) -> StoreFuture<Option<AuditRow>> {
        let store = self.clone();
        Box::pin(async move { SqliteStore::last_audit(&store).await })
    }

    fn audit_rows(&self, filter: AuditFilter) -> StoreFuture<Vec<AuditRow>> {
        let store = self.clone();
        Box::pin(async move { SqliteStore::audit_rows(&store, filter).await })
    }
}

/// Rows matching `filter`, oldest first.
fn select(conn: &Connection, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
    let sql = format!(
        "SELECT {AUDIT_COLUMNS} FROM audit WHERE id > ?1 \
         AND (?2 IS NULL OR tenant = ?2) AND (?3 IS NULL OR action = ?3) \
         AND (?4 IS NULL OR time >= ?4) AND (?5 IS NULL OR time <= ?5) \
         ORDER BY id LIMIT ?6"
    );
    let limit = filter.limit.min(MAX_AUDIT_PAGE);
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(
            params![
                i64::try_from(filter.after_id).unwrap_or(i64::MAX),
                filter.tenant,
                filter.action,
                filter.since,
                filter.until,
                i64::try_from(limit).unwrap_or(i64::MAX),
            ],
            read_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    decode(rows)
}

/// A read-only view of a database's audit trail, for `toolgate audit verify`, which may run
/// beside a live daemon and must change nothing (no migration, no recovery of jobs).
pub struct AuditFile {
    conn: Connection,
}

impl AuditFile {
    /// Opens the database at `path` read-only; it must exist and have the audit table.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let has_table: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit')",
            [],
            |row| row.get(0),
        )?;
        if !has_table {
            return Err(StoreError::Corrupt(format!(
                "{} has no audit table (a daemon of this version creates it on start)",
                path.display()
            )));
        }
        Ok(Self { conn })
    }

    /// Rows matching `filter`, oldest first.
    pub fn rows(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        select(&self.conn, filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditStore as _;
    use crate::conformance::audit::{GENESIS_TEST_HASH, row};

    /// SQLite's triggers refuse changing a row of the trail through any connection.
    #[tokio::test]
    async fn the_database_refuses_to_change_a_row() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.sqlite3");
        let (store, _) = SqliteStore::open(&path, 10).expect("open");
        store
            .append_audit(row(1, "acme", "run"), GENESIS_TEST_HASH.into())
            .await
            .expect("append");
        let conn = Connection::open(&path).expect("open");
        for sql in [
            "UPDATE audit SET outcome = 'x' WHERE id = 1",
            "DELETE FROM audit WHERE id = 1",
        ] {
            assert!(conn.execute(sql, []).is_err(), "{sql} is refused");
        }
    }
}
