//! Scans and findings as rows: the column list every scan read uses, and the mapping between a
//! row and the model's [`Scan`] / [`Finding`].
//!
//! Invariant: a stored value that the model would not accept (an unknown state, a malformed id
//! or time) is reported as [`StoreError::Corrupt`], never replaced by a default.

use chrono::{DateTime, Utc};
use rusqlite::{Row, Transaction, params};
use toolgate_model::{
    AssetType, FailureCriteria, Finding, Operator, Scan, ScanId, ScanState, Severity,
};

use crate::StoreError;
use crate::jobs::time_text;

/// Every scan column, in the order [`RawScan::read`] reads them.
pub(crate) const SCAN_COLUMNS: &str = "id, asset_name, asset_type, tags, scan_attributes, \
    criteria_high, criteria_medium, criteria_low, criteria_operator, user_name, state, created_at, \
    upload, request, attempts, started_at, finished_at, job_id, outcome, tenant";

/// A scan row as either backend returns it, before decoding.
pub(crate) struct RawScan {
    pub(crate) id: String,
    pub(crate) asset_name: String,
    pub(crate) asset_type: String,
    pub(crate) tags: String,
    pub(crate) scan_attributes: String,
    pub(crate) criteria: (u32, u32, u32, String),
    pub(crate) user: String,
    pub(crate) state: String,
    pub(crate) created_at: String,
    pub(crate) upload: Option<String>,
    pub(crate) request: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) started_at: Option<String>,
    pub(crate) finished_at: Option<String>,
    pub(crate) job_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) tenant: String,
}

impl RawScan {
    pub(crate) fn read(row: &Row<'_>) -> rusqlite::Result<RawScan> {
        Ok(RawScan {
            id: row.get(0)?,
            asset_name: row.get(1)?,
            asset_type: row.get(2)?,
            tags: row.get(3)?,
            scan_attributes: row.get(4)?,
            criteria: (row.get(5)?, row.get(6)?, row.get(7)?, row.get(8)?),
            user: row.get(9)?,
            state: row.get(10)?,
            created_at: row.get(11)?,
            upload: row.get(12)?,
            request: row.get(13)?,
            attempts: row.get(14)?,
            started_at: row.get(15)?,
            finished_at: row.get(16)?,
            job_id: row.get(17)?,
            outcome: row.get(18)?,
            tenant: row.get(19)?,
        })
    }

    pub(crate) fn into_scan(self) -> Result<Scan, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("scan {}: {what} {value:?}", self.id))
        };
        let (high, medium, low, operator) = self.criteria.clone();
        Ok(Scan {
            id: ScanId::parse(&self.id).map_err(|_| corrupt("id", &self.id))?,
            asset_type: AssetType::parse("asset_type", &self.asset_type)
                .map_err(|_| corrupt("asset type", &self.asset_type))?,
            tags: serde_json::from_str(&self.tags)?,
            scan_attributes: serde_json::from_str(&self.scan_attributes)?,
            failure_criteria: FailureCriteria {
                high,
                medium,
                low,
                operator: Operator::parse("operator", &operator)
                    .map_err(|_| corrupt("operator", &operator))?,
            },
            state: state_of(&self.state).ok_or_else(|| corrupt("state", &self.state))?,
            created_at: parse_time(&self.created_at)
                .ok_or_else(|| corrupt("created_at", &self.created_at))?,
            started_at: optional_time(self.started_at.as_deref())
                .map_err(|value| corrupt("started_at", &value))?,
            finished_at: optional_time(self.finished_at.as_deref())
                .map_err(|value| corrupt("finished_at", &value))?,
            upload: json_or_none(self.upload)?,
            request: json_or_none(self.request)?,
            outcome: json_or_none(self.outcome)?,
            asset_name: self.asset_name,
            user: self.user,
            tenant: self.tenant,
            attempts: self.attempts,
            job_id: self.job_id,
        })
    }
}

pub(crate) fn state_of(text: &str) -> Option<ScanState> {
    ScanState::parse(text)
}

fn json_or_none<T: serde::de::DeserializeOwned>(
    text: Option<String>,
) -> Result<Option<T>, StoreError> {
    Ok(text.map(|text| serde_json::from_str(&text)).transpose()?)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn optional_time(text: Option<&str>) -> Result<Option<DateTime<Utc>>, String> {
    text.map(|text| parse_time(text).ok_or_else(|| text.to_string()))
        .transpose()
}

/// Inserts a new scan row and its tags.
pub(crate) fn insert_scan(tx: &Transaction<'_>, scan: &Scan) -> Result<(), StoreError> {
    let criteria = &scan.failure_criteria;
    tx.prepare_cached(
        "INSERT INTO scans (id, asset_name, asset_type, tags, scan_attributes, criteria_high, \
         criteria_medium, criteria_low, criteria_operator, user_name, state, created_at, tenant) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        scan.id.as_str(),
        scan.asset_name,
        scan.asset_type.as_str(),
        serde_json::to_string(&scan.tags)?,
        serde_json::to_string(&scan.scan_attributes)?,
        criteria.high,
        criteria.medium,
        criteria.low,
        criteria.operator.as_str(),
        scan.user,
        scan.state.as_str(),
        time_text(scan.created_at),
        scan.tenant,
    ])?;
    let mut tag =
        tx.prepare_cached("INSERT INTO scan_tags (scan, name, value) VALUES (?1, ?2, ?3)")?;
    for (name, value) in &scan.tags {
        tag.execute(params![scan.id.as_str(), name, value])?;
    }
    Ok(())
}

/// Inserts a finished scan's findings, in order, and the resources they name.
pub(crate) fn insert_findings(
    tx: &Transaction<'_>,
    id: &ScanId,
    findings: &[Finding],
    resources: &[String],
) -> Result<(), StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO scan_findings (scan, position, rule_id, title, severity, description, \
         resource_type, resource_name, file, line, category, documentation_url) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for (position, finding) in findings.iter().enumerate() {
        insert.execute(params![
            id.as_str(),
            i64::try_from(position).unwrap_or(i64::MAX),
            finding.rule_id,
            finding.title,
            finding.severity.as_str(),
            finding.description,
            finding.resource_type,
            finding.resource_name,
            finding.file,
            finding.line,
            finding.category,
            finding.documentation_url,
        ])?;
    }
    let mut resource =
        tx.prepare_cached("INSERT OR IGNORE INTO scan_resources (scan, resource) VALUES (?1, ?2)")?;
    for name in resources {
        resource.execute(params![id.as_str(), name])?;
    }
    Ok(())
}

/// The finding columns, in the order [`read_finding`] reads them.
pub(crate) const FINDING_COLUMNS: &str = "rule_id, title, severity, description, resource_type, \
    resource_name, file, line, category, documentation_url";

pub(crate) fn read_finding(row: &Row<'_>) -> rusqlite::Result<(String, Finding)> {
    let severity: String = row.get(2)?;
    Ok((
        severity,
        Finding {
            rule_id: row.get(0)?,
            title: row.get(1)?,
            // Replaced by the caller once the text is checked.
            severity: Severity::Info,
            description: row.get(3)?,
            resource_type: row.get(4)?,
            resource_name: row.get(5)?,
            file: row.get(6)?,
            line: row.get(7)?,
            category: row.get(8)?,
            documentation_url: row.get(9)?,
        },
    ))
}

/// A finding read by [`read_finding`], with its severity checked.
pub(crate) fn checked_finding(
    (severity, mut finding): (String, Finding),
) -> Result<Finding, StoreError> {
    finding.severity = Severity::parse(&severity)
        .ok_or_else(|| StoreError::Corrupt(format!("finding severity {severity:?}")))?;
    Ok(finding)
}
