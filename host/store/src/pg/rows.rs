//! PostgreSQL rows as the store's raw rows: a job row into [`RawRow`], a scan row into
//! [`RawScan`], a finding row into a [`Finding`], so both backends decode through the same
//! code (`jobs.rs`, `scan_rows.rs`).
//!
//! Invariant: a stored value the model would not accept (a negative count, output that is not
//! UTF-8) is [`StoreError::Corrupt`], never replaced by a default.

use tokio_postgres::Row;
use toolgate_model::{Finding, ScanId};

use crate::StoreError;
use crate::jobs::RawRow;
use crate::scan_rows::{RawScan, checked_finding};

/// A job's columns, in the order [`job_row`] reads them; `seq` is the job's place (SQLite's
/// rowid).
pub(crate) const JOB_COLUMNS: &str = "jobs.id, tool, status, params, argv, command, created_at, \
    started_at, finished_at, duration_secs, exit_code, signal, timed_out, success, \
    classification, message, summary, findings, truncated, protections, output_dir, error, tenant";

/// A count stored as `BIGINT`, as the model's `u32`.
fn small_count(row: &Row, index: usize, what: &str) -> Result<u32, StoreError> {
    let number: i64 = row.try_get(index)?;
    u32::try_from(number).map_err(|_| StoreError::Corrupt(format!("{what} {number}")))
}

/// Output stored as bytes, as text.
fn output(bytes: Option<Vec<u8>>, what: &str) -> Result<Option<String>, StoreError> {
    bytes
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|_| StoreError::Corrupt(format!("{what} not UTF-8")))
        })
        .transpose()
}

/// A job row: `JOB_COLUMNS`, then stdout, stderr (bytes or NULL) and whether the output was
/// dropped.
pub(crate) fn job_row(row: &Row) -> Result<RawRow, StoreError> {
    Ok(RawRow {
        id: row.try_get(0)?,
        tool: row.try_get(1)?,
        status: row.try_get(2)?,
        params: row.try_get(3)?,
        argv: row.try_get(4)?,
        command: row.try_get(5)?,
        created_at: row.try_get(6)?,
        started_at: row.try_get(7)?,
        finished_at: row.try_get(8)?,
        duration_secs: row.try_get(9)?,
        exit_code: row.try_get(10)?,
        signal: row.try_get(11)?,
        timed_out: row.try_get(12)?,
        success: row.try_get(13)?,
        classification: row.try_get(14)?,
        message: row.try_get(15)?,
        summary: row.try_get(16)?,
        findings: row.try_get(17)?,
        truncated: row.try_get(18)?,
        protections: row.try_get(19)?,
        output_dir: row.try_get(20)?,
        error: row.try_get(21)?,
        tenant: row.try_get(22)?,
        stdout: output(row.try_get(23)?, "stdout")?,
        stderr: output(row.try_get(24)?, "stderr")?,
        output_dropped: row.try_get(25)?,
    })
}

/// A scan row read with `crate::scan_rows::SCAN_COLUMNS`.
pub(crate) fn scan_row(row: &Row) -> Result<RawScan, StoreError> {
    Ok(RawScan {
        id: row.try_get(0)?,
        asset_name: row.try_get(1)?,
        asset_type: row.try_get(2)?,
        tags: row.try_get(3)?,
        scan_attributes: row.try_get(4)?,
        criteria: (
            small_count(row, 5, "criteria_high")?,
            small_count(row, 6, "criteria_medium")?,
            small_count(row, 7, "criteria_low")?,
            row.try_get(8)?,
        ),
        user: row.try_get(9)?,
        state: row.try_get(10)?,
        created_at: row.try_get(11)?,
        upload: row.try_get(12)?,
        request: row.try_get(13)?,
        attempts: small_count(row, 14, "attempts")?,
        started_at: row.try_get(15)?,
        finished_at: row.try_get(16)?,
        job_id: row.try_get(17)?,
        outcome: row.try_get(18)?,
        tenant: row.try_get(19)?,
    })
}

/// A finding row read with `crate::scan_rows::FINDING_COLUMNS`.
pub(crate) fn finding_row(row: &Row) -> Result<Finding, StoreError> {
    let severity: String = row.try_get(2)?;
    let line: Option<i64> = row.try_get(7)?;
    let line = line
        .map(|line| u32::try_from(line).map_err(|_| StoreError::Corrupt(format!("line {line}"))))
        .transpose()?;
    checked_finding((
        severity,
        Finding {
            rule_id: row.try_get(0)?,
            title: row.try_get(1)?,
            // Replaced by `checked_finding` once the text is checked.
            severity: toolgate_model::Severity::Info,
            description: row.try_get(3)?,
            resource_type: row.try_get(4)?,
            resource_name: row.try_get(5)?,
            file: row.try_get(6)?,
            line,
            category: row.try_get(8)?,
            documentation_url: row.try_get(9)?,
        },
    ))
}

/// A stored scan id, checked.
pub(crate) fn scan_id(text: &str) -> Result<ScanId, StoreError> {
    ScanId::parse(text).map_err(|_| StoreError::Corrupt(format!("scan id {text:?}")))
}
