//! Writing scans on PostgreSQL: a new scan with its tags, a running scan's ending, and its
//! findings and resources, each inside the caller's transaction.
//!
//! Invariant: many rows (tags, findings, resources) go in one statement over arrays, so a scan
//! with thousands of findings costs one round trip, not one per finding.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use toolgate_model::{Finding, Scan, ScanId, ScanOutcome, ScanState};

use crate::StoreError;
use crate::jobs::time_text;

/// Writes a running scan's ending (its findings are the caller's).
pub(super) async fn write_ending(
    tx: &Transaction<'_>,
    id: &ScanId,
    state: ScanState,
    outcome: &ScanOutcome,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use toolgate_model::severity::Bucket;
    let counts = &outcome.counts;
    let as_sql = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    let update = tx
        .prepare_cached(
            "UPDATE scans SET state = $2, outcome = $3, finished_at = $4, found_high = $5, \
             found_medium = $6, found_low = $7 WHERE id = $1 AND state = 'running'",
        )
        .await?;
    tx.execute(
        &update,
        &[
            &id.as_str(),
            &state.as_str(),
            &serde_json::to_string(outcome)?,
            &time_text(now),
            &as_sql(counts.bucket(Bucket::High)),
            &as_sql(counts.bucket(Bucket::Medium)),
            &as_sql(counts.bucket(Bucket::Low)),
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a finished scan's findings, in order, and the resources they name: one statement
/// each, over arrays, however many findings there are.
pub(super) async fn insert_findings(
    tx: &Transaction<'_>,
    id: &ScanId,
    findings: &[Finding],
    resources: &[String],
) -> Result<(), StoreError> {
    if !findings.is_empty() {
        let column = |read: fn(&Finding) -> String| findings.iter().map(read).collect::<Vec<_>>();
        let optional =
            |read: fn(&Finding) -> Option<String>| findings.iter().map(read).collect::<Vec<_>>();
        let positions: Vec<i64> = (0..findings.len())
            .map(|position| i64::try_from(position).unwrap_or(i64::MAX))
            .collect();
        let lines: Vec<Option<i64>> = findings
            .iter()
            .map(|finding| finding.line.map(i64::from))
            .collect();
        let insert = tx
            .prepare_cached(
                "INSERT INTO scan_findings (scan, position, rule_id, title, severity, \
                 description, resource_type, resource_name, file, line, category, \
                 documentation_url) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], \
                 $12::text[])",
            )
            .await?;
        tx.execute(
            &insert,
            &[
                &id.as_str(),
                &positions,
                &column(|finding| finding.rule_id.clone()),
                &column(|finding| finding.title.clone()),
                &column(|finding| finding.severity.as_str().to_string()),
                &column(|finding| finding.description.clone()),
                &column(|finding| finding.resource_type.clone()),
                &column(|finding| finding.resource_name.clone()),
                &optional(|finding| finding.file.clone()),
                &lines,
                &column(|finding| finding.category.clone()),
                &optional(|finding| finding.documentation_url.clone()),
            ],
        )
        .await?;
    }
    if !resources.is_empty() {
        let insert = tx
            .prepare_cached(
                "INSERT INTO scan_resources (scan, resource) \
                 SELECT $1, * FROM UNNEST($2::text[]) ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&insert, &[&id.as_str(), &resources]).await?;
    }
    Ok(())
}

/// Inserts a new scan row and its tags; `false` when a scan with its id exists.
pub(super) async fn insert_scan(tx: &Transaction<'_>, scan: &Scan) -> Result<bool, StoreError> {
    let criteria = &scan.failure_criteria;
    let insert = tx
        .prepare_cached(
            "INSERT INTO scans (id, asset_name, asset_type, tags, scan_attributes, \
             criteria_high, criteria_medium, criteria_low, criteria_operator, user_name, state, \
             created_at, tenant) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &insert,
            &[
                &scan.id.as_str(),
                &scan.asset_name,
                &scan.asset_type.as_str(),
                &serde_json::to_string(&scan.tags)?,
                &serde_json::to_string(&scan.scan_attributes)?,
                &i64::from(criteria.high),
                &i64::from(criteria.medium),
                &i64::from(criteria.low),
                &criteria.operator.as_str(),
                &scan.user,
                &scan.state.as_str(),
                &time_text(scan.created_at),
                &scan.tenant,
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let (names, values): (Vec<&String>, Vec<&String>) = scan.tags.iter().unzip();
    tx.execute(
        "INSERT INTO scan_tags (scan, name, value) SELECT $1, * FROM UNNEST($2::text[], $3::text[])",
        &[&scan.id.as_str(), &names, &values],
    )
    .await?;
    Ok(true)
}
