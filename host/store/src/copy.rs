//! Copying a SQLite store into an empty PostgreSQL store (`toolgate store copy`): how an
//! operator moves a single-machine install onto a store several daemons share.
//!
//! Invariants:
//! - Both sides are migrated to this build's schema first, so each copied table has the same
//!   columns on both sides; the PostgreSQL catalog says which columns and types, and each
//!   SQLite value is converted to its column's type (0/1 to BOOLEAN, INTEGER to BIGINT or a
//!   range-checked INTEGER, REAL to DOUBLE PRECISION, TEXT to BYTEA for output) or the copy
//!   fails naming the table, row and column.
//! - The SQLite file is never created and never written beyond its migrations: a missing file
//!   is refused, and it is held with an exclusive lock for the whole copy, so a daemon still
//!   using it is detected (and refused) rather than copied mid-write, and none can start meanwhile.
//! - The whole copy is one PostgreSQL transaction that first locks every copied table against
//!   writes and refuses a target holding any row in them: a failure at any point leaves the
//!   target as empty as it was.
//! - Rows are kept as they are: a job's `seq` is its SQLite `rowid` (which `job_output.job`
//!   refers to), with the identity sequence moved past the largest; audit ids and hashes are
//!   unchanged, so the chain verifies on the copy. Two things are changed, because the daemon
//!   they belonged to (always `local` on SQLite) is stopped and never runs on PostgreSQL:
//!   its unfinished jobs are marked `interrupted` (what it would do itself at its next start,
//!   and no PostgreSQL daemon does to jobs under another daemon's name), and the leases of its
//!   running scans are ended, so the first PostgreSQL daemon's recovery requeues them.
//! - Rows stream through a bounded channel from a reader thread into binary `COPY`, so memory
//!   holds a few batches, not the database.
//! - `daemons` (heartbeats of running daemons), `tenant_rates` (a moment's request counts) and
//!   the version table are not copied; a test checks every other table of both schemas is in
//!   [`COPIED_TABLES`].

use std::path::{Path, PathBuf};
use std::pin::pin;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::jobs::now_text;
use crate::{PgStore, StoreError};

/// The tables copied, in this order (a scan's rows after the scan, a job's output after it).
pub const COPIED_TABLES: &[&str] = &[
    "jobs",
    "job_output",
    "scans",
    "scan_tags",
    "scan_resources",
    "scan_findings",
    "upload_nonces",
    "audit",
];

/// Rows per message from the reader thread: large enough that the channel costs nothing per
/// row, small enough that a few batches in flight hold little memory even with outputs.
const BATCH_ROWS: usize = 1000;

/// Batches the reader may be ahead of the writer.
const BATCHES_IN_FLIGHT: usize = 4;

/// How long opening the SQLite file waits for another connection to let go of it (a daemon that
/// just stopped closes its connections as it exits).
const SOURCE_BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a copy failed; the target holds nothing from it.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("there is no SQLite store at {0}")]
    SourceMissing(PathBuf),
    #[error(
        "the SQLite store {0} is in use (a daemon still has it open); stop that daemon before \
         copying"
    )]
    SourceInUse(PathBuf),
    #[error("cannot read the SQLite store {path}: {source}")]
    Source {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot bring the SQLite store {path} to this build's schema: {source}")]
    SourceSchema { path: PathBuf, source: StoreError },
    #[error("cannot open the PostgreSQL store: {0}")]
    Target(StoreError),
    #[error(
        "the PostgreSQL store is not empty ({holding}); copy into a store no daemon has used, \
         e.g. a new database"
    )]
    TargetNotEmpty { holding: String },
    #[error("PostgreSQL refused the copy of table {table}: {source}")]
    Write {
        table: &'static str,
        source: tokio_postgres::Error,
    },
    #[error("PostgreSQL's {table}.{column} has type {type_name}, which this copy cannot fill")]
    UnsupportedType {
        table: &'static str,
        column: String,
        type_name: String,
    },
    #[error(
        "row {row} of {table}, column {column}: SQLite holds {found}, which PostgreSQL's \
         {type_name} column cannot take"
    )]
    Value {
        table: &'static str,
        row: u64,
        column: String,
        found: String,
        type_name: &'static str,
    },
    #[error("the SQLite reader thread failed: {0}")]
    Reader(#[from] tokio::task::JoinError),
    #[error("the SQLite reader stopped before the end of table {0}")]
    ReaderStopped(&'static str),
}

/// How many rows of one table were copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub rows: u64,
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows per table, in [`COPIED_TABLES`] order.
    pub tables: Vec<TableCount>,
    /// Jobs the SQLite file had queued or running, copied as `interrupted`.
    pub interrupted_jobs: u64,
    /// Scans the SQLite file had running, copied without their lease: a PostgreSQL daemon's
    /// recovery requeues them (or ends them in error when out of attempts).
    pub released_scans: u64,
    /// The schema version both sides are at.
    pub schema_version: usize,
}

impl CopyReport {
    /// Rows copied into `table` (0 for a table not copied).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|count| count.table == table)
            .map_or(0, |count| count.rows)
    }
}

/// The error for jobs the copy marks interrupted (see the module doc).
const INTERRUPTED_BY_MOVE: &str = "the SQLite daemon stopped while this job was queued or \
    running (copied to PostgreSQL by `toolgate store copy`)";

/// One PostgreSQL column of a copied table, and how to read it from SQLite.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: Kind,
}

/// The PostgreSQL types the schema uses, each with its conversion from SQLite.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    BigInt,
    Integer,
    Boolean,
    Double,
    Bytes,
}

impl Kind {
    fn of(pg_type: &Type) -> Option<Kind> {
        Some(match *pg_type {
            Type::TEXT => Kind::Text,
            Type::INT8 => Kind::BigInt,
            Type::INT4 => Kind::Integer,
            Type::BOOL => Kind::Boolean,
            Type::FLOAT8 => Kind::Double,
            Type::BYTEA => Kind::Bytes,
            _ => return None,
        })
    }

    fn pg_type(self) -> Type {
        match self {
            Kind::Text => Type::TEXT,
            Kind::BigInt => Type::INT8,
            Kind::Integer => Type::INT4,
            Kind::Boolean => Type::BOOL,
            Kind::Double => Type::FLOAT8,
            Kind::Bytes => Type::BYTEA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Text => "TEXT",
            Kind::BigInt => "BIGINT",
            Kind::Integer => "INTEGER",
            Kind::Boolean => "BOOLEAN",
            Kind::Double => "DOUBLE PRECISION",
            Kind::Bytes => "BYTEA",
        }
    }

    /// `value` as this type, or a description of what SQLite holds instead.
    fn convert(self, value: ValueRef<'_>) -> Result<Value, String> {
        let found = || match value {
            ValueRef::Null => "NULL".to_string(),
            ValueRef::Integer(number) => format!("the integer {number}"),
            ValueRef::Real(number) => format!("the real {number}"),
            ValueRef::Text(_) => "text".to_string(),
            ValueRef::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
        };
        Ok(match (self, value) {
            // A NULL in a NOT NULL column is PostgreSQL's to refuse, naming the column.
            (Kind::Text, ValueRef::Null) => Box::new(None::<String>),
            (Kind::Text, ValueRef::Text(text)) => Box::new(Some(
                String::from_utf8(text.to_vec()).map_err(|_| "text that is not UTF-8")?,
            )),
            (Kind::BigInt, ValueRef::Null) => Box::new(None::<i64>),
            (Kind::BigInt, ValueRef::Integer(number)) => Box::new(Some(number)),
            (Kind::Integer, ValueRef::Null) => Box::new(None::<i32>),
            (Kind::Integer, ValueRef::Integer(number)) => {
                Box::new(Some(i32::try_from(number).map_err(|_| found())?))
            }
            (Kind::Boolean, ValueRef::Integer(0)) => Box::new(Some(false)),
            (Kind::Boolean, ValueRef::Integer(1)) => Box::new(Some(true)),
            (Kind::Boolean, ValueRef::Null) => Box::new(None::<bool>),
            (Kind::Double, ValueRef::Null) => Box::new(None::<f64>),
            (Kind::Double, ValueRef::Real(number)) => Box::new(Some(number)),
            // SQLite may hand back a whole REAL as an integer; `as` is exact below 2^53.
            (Kind::Double, ValueRef::Integer(number)) if number.unsigned_abs() < 1 << 53 => {
                Box::new(Some(number as f64))
            }
            (Kind::Bytes, ValueRef::Null) => Box::new(None::<Vec<u8>>),
            (Kind::Bytes, ValueRef::Text(bytes) | ValueRef::Blob(bytes)) => {
                Box::new(Some(bytes.to_vec()))
            }
            _ => return Err(found()),
        })
    }
}

/// One converted value, ready for `COPY`.
type Value = Box<dyn ToSql + Send + Sync>;

/// What the reader thread sends: a batch of rows of the current table, or that it is done.
enum Message {
    Rows(Vec<Vec<Value>>),
    TableDone,
}

/// A copied table: its name and its PostgreSQL columns in order.
#[derive(Debug, Clone)]
struct TablePlan {
    table: &'static str,
    columns: Vec<Column>,
}

/// Copies every table of the SQLite store at `sqlite_path` into the empty PostgreSQL store at
/// `postgres_url` (migrating both to this build's schema first), in one transaction; see the
/// module doc for what is kept and what is changed. The SQLite file's daemon must be stopped.
pub async fn copy_sqlite_to_postgres(
    sqlite_path: &Path,
    postgres_url: &str,
) -> Result<CopyReport, CopyError> {
    let path = sqlite_path.to_path_buf();
    let source = tokio::task::spawn_blocking(move || open_source(&path)).await??;
    let mut client = PgStore::migrated_connection(postgres_url)
        .await
        .map_err(CopyError::Target)?;
    let tx = client
        .transaction()
        .await
        .map_err(|source| CopyError::Target(source.into()))?;
    let target = |source: tokio_postgres::Error| CopyError::Target(source.into());
    // Nothing may write the copied tables until the copy commits: a daemon started too early
    // waits instead of mixing its rows into the copy (reads go on).
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        COPIED_TABLES.join(", ")
    ))
    .await
    .map_err(target)?;
    refuse_unless_empty(&tx).await?;
    let mut plans = Vec::with_capacity(COPIED_TABLES.len());
    for &table in COPIED_TABLES {
        plans.push(TablePlan {
            table,
            columns: columns_of(&tx, table).await?,
        });
    }

    let (sender, mut receiver) = mpsc::channel(BATCHES_IN_FLIGHT);
    let reader_plans = plans.clone();
    let source_path = sqlite_path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || {
        read_tables(source, &source_path, &reader_plans, &sender)
    });

    let mut tables = Vec::with_capacity(plans.len());
    for plan in &plans {
        match write_table(&tx, plan, &mut receiver).await {
            Ok(rows) => tables.push(TableCount {
                table: plan.table,
                rows,
            }),
            Err(write_error) => {
                // The reader stops at its next send; its own error, when it has one, is the
                // cause (the writer then only saw the channel end).
                drop(receiver);
                reader.await??;
                return Err(write_error);
            }
        }
    }
    drop(receiver);
    reader.await??;

    let write = |table| move |source| CopyError::Write { table, source };
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('jobs', 'seq'), GREATEST(MAX(seq), 1), \
         MAX(seq) IS NOT NULL) FROM jobs",
        &[],
    )
    .await
    .map_err(write("jobs"))?;
    let interrupted_jobs = tx
        .execute(
            "UPDATE jobs SET status = 'interrupted', finished_at = COALESCE(finished_at, $1), \
             error = COALESCE(error, $2) WHERE status IN ('queued', 'running')",
            &[&now_text(), &INTERRUPTED_BY_MOVE],
        )
        .await
        .map_err(write("jobs"))?;
    let released_scans = tx
        .execute(
            "UPDATE scans SET lease_until = NULL WHERE state = 'running'",
            &[],
        )
        .await
        .map_err(write("scans"))?;
    tx.commit().await.map_err(target)?;
    Ok(CopyReport {
        tables,
        interrupted_jobs,
        released_scans,
        schema_version: PgStore::latest_schema_version(),
    })
}

/// Opens the SQLite store at `path` (which must exist) exclusively and migrates it.
fn open_source(path: &Path) -> Result<Connection, CopyError> {
    let sqlite = |source| CopyError::Source {
        path: path.to_path_buf(),
        source,
    };
    if !path.is_file() {
        return Err(CopyError::SourceMissing(path.to_path_buf()));
    }
    // Without CREATE: a path that vanished since the check is an error, not a new database.
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    conn.busy_timeout(SOURCE_BUSY_WAIT).map_err(sqlite)?;
    // In exclusive locking mode the first transaction's lock is kept until the connection
    // closes; in WAL mode it cannot be had while any other connection has the file open.
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .map_err(sqlite)?;
    let locked = conn.execute_batch("BEGIN EXCLUSIVE; SELECT count(*) FROM sqlite_master; COMMIT;");
    match locked {
        Ok(()) => {}
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.code == rusqlite::ErrorCode::DatabaseBusy =>
        {
            return Err(CopyError::SourceInUse(path.to_path_buf()));
        }
        Err(other) => return Err(sqlite(other)),
    }
    crate::schema::migrate(&mut conn).map_err(|source| CopyError::SourceSchema {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

/// Refuses a target holding any row in a copied table, naming each such table and its count.
async fn refuse_unless_empty(tx: &tokio_postgres::Transaction<'_>) -> Result<(), CopyError> {
    let mut holding = Vec::new();
    for &table in COPIED_TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|source| CopyError::Target(source.into()))?;
        if rows > 0 {
            holding.push(format!("{table}: {rows} row(s)"));
        }
    }
    if holding.is_empty() {
        Ok(())
    } else {
        Err(CopyError::TargetNotEmpty {
            holding: holding.join(", "),
        })
    }
}

/// `table`'s columns in PostgreSQL, in order, from the catalog.
async fn columns_of(
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static str,
) -> Result<Vec<Column>, CopyError> {
    let rows = tx
        .query(
            "SELECT attname::text, atttypid FROM pg_attribute \
             WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped \
             ORDER BY attnum",
            &[&table],
        )
        .await
        .map_err(|source| CopyError::Target(source.into()))?;
    rows.iter()
        .map(|row| {
            let name: String = row
                .try_get(0)
                .map_err(|source| CopyError::Target(source.into()))?;
            let oid: u32 = row
                .try_get(1)
                .map_err(|source| CopyError::Target(source.into()))?;
            let pg_type = Type::from_oid(oid);
            let kind =
                pg_type
                    .as_ref()
                    .and_then(Kind::of)
                    .ok_or_else(|| CopyError::UnsupportedType {
                        table,
                        column: name.clone(),
                        type_name: pg_type.map_or_else(|| format!("oid {oid}"), |t| t.to_string()),
                    })?;
            Ok(Column { name, kind })
        })
        .collect()
}

/// What SQLite reads for PostgreSQL's `column` of `table`: the column of the same name, except
/// a job's `seq`, which is SQLite's `rowid` (what `job_output.job` refers to there too).
fn source_expression(table: &str, column: &str) -> String {
    match (table, column) {
        ("jobs", "seq") => "rowid".to_string(),
        _ => format!("\"{column}\""),
    }
}

/// Streams one table's rows from `receiver` into a binary `COPY`; returns how many.
async fn write_table(
    tx: &tokio_postgres::Transaction<'_>,
    plan: &TablePlan,
    receiver: &mut mpsc::Receiver<Message>,
) -> Result<u64, CopyError> {
    let table = plan.table;
    let write = |source| CopyError::Write { table, source };
    let names: Vec<String> = plan
        .columns
        .iter()
        .map(|column| format!("\"{}\"", column.name))
        .collect();
    let types: Vec<Type> = plan
        .columns
        .iter()
        .map(|column| column.kind.pg_type())
        .collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            names.join(", ")
        ))
        .await
        .map_err(write)?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    loop {
        match receiver.recv().await {
            Some(Message::Rows(rows)) => {
                for row in &rows {
                    let values: Vec<&(dyn ToSql + Sync)> = row
                        .iter()
                        .map(|value| &**value as &(dyn ToSql + Sync))
                        .collect();
                    writer.as_mut().write(&values).await.map_err(write)?;
                }
            }
            Some(Message::TableDone) => break,
            // The reader ended without finishing the table: it failed, and says why.
            None => return Err(CopyError::ReaderStopped(table)),
        }
    }
    writer.as_mut().finish().await.map_err(write)
}

/// Reads every planned table from `source` in one read transaction (one snapshot), converting
/// each value to its PostgreSQL column's type, and sends the rows in batches. Returns early and
/// quietly when the writer has gone (it holds the error).
fn read_tables(
    mut source: Connection,
    path: &Path,
    plans: &[TablePlan],
    sender: &mpsc::Sender<Message>,
) -> Result<(), CopyError> {
    let sqlite = |source| CopyError::Source {
        path: path.to_path_buf(),
        source,
    };
    let snapshot = source.transaction().map_err(sqlite)?;
    for TablePlan { table, columns } in plans {
        let table = *table;
        let select = format!(
            "SELECT {} FROM {table}",
            columns
                .iter()
                .map(|column| source_expression(table, &column.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut statement = snapshot.prepare(&select).map_err(sqlite)?;
        let mut rows = statement.query([]).map_err(sqlite)?;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut row_number = 0_u64;
        while let Some(row) = rows.next().map_err(sqlite)? {
            row_number += 1;
            let mut values = Vec::with_capacity(columns.len());
            for (index, column) in columns.iter().enumerate() {
                let value = row.get_ref(index).map_err(sqlite)?;
                values.push(
                    column
                        .kind
                        .convert(value)
                        .map_err(|found| CopyError::Value {
                            table,
                            row: row_number,
                            column: column.name.clone(),
                            found,
                            type_name: column.kind.name(),
                        })?,
                );
            }
            batch.push(values);
            if batch.len() == BATCH_ROWS {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                if sender.blocking_send(Message::Rows(full)).is_err() {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() && sender.blocking_send(Message::Rows(batch)).is_err() {
            return Ok(());
        }
        if sender.blocking_send(Message::TableDone).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
