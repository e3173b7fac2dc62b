//! `GET /iac/v2/scans/export?fmt=csv`: the list's scans as CSV, one row per scan, streamed to
//! any writer.
//!
//! Columns, in order: [`COLUMNS`]. Cells holding several values use the forms the list's
//! filters take: `tags` as `name:value` joined by commas (as `filter[tags]`), `resourceList` as
//! `type.name` joined by commas, `scanAttributes` as `name:value` joined by commas,
//! `failureCriteria` as `H:1,M:1,L:1,OR`; `high|medium|low` are the `matchedPoliciesSummary`
//! buckets; `pass`/`fail` are 1 or 0 as in the list.
//!
//! Invariants: quoting and escaping are the `csv` crate's (RFC 4180: a cell with a comma,
//! quote or line break is quoted, quotes doubled); a text cell that starts with `=`, `+`, `-`,
//! `@`, a tab or a carriage return gets a leading `'` so no spreadsheet runs it as a formula
//! (OWASP's CSV injection advice); numbers are written by us, never from caller text.

use std::io::Write;

use toolgate_model::Scan;

use crate::MatchedPoliciesSummary;
use crate::list::{scan_counts, scan_resources};
use crate::summary::{criteria_text, timestamp};

/// The header row.
pub const COLUMNS: [&str; 18] = [
    "id",
    "scanTime",
    "assetName",
    "assetType",
    "user",
    "status",
    "state",
    "failureCriteria",
    "high",
    "medium",
    "low",
    "pass",
    "fail",
    "merged",
    "deployed",
    "tags",
    "resourceList",
    "scanAttributes",
];

/// First characters a spreadsheet may read as the start of a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Why an export could not be written (the writer failed; our rows are always valid CSV).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing CSV failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("flushing CSV failed: {0}")]
    Flush(#[from] std::io::Error),
}

/// A CSV export in progress: the header is written on creation, then one row per scan.
pub struct CsvExport<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> CsvExport<W> {
    /// Starts an export into `out` by writing the header row.
    pub fn new(out: W) -> Result<Self, ExportError> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(COLUMNS)?;
        Ok(Self { writer })
    }

    /// Continues an export into `out` without a header: for the second and later pages of an
    /// export streamed page by page (each page's bytes appended to the first page's).
    pub fn continuing(out: W) -> Self {
        Self {
            writer: csv::Writer::from_writer(out),
        }
    }

    /// Writes `scan`'s row.
    pub fn write_scan(&mut self, scan: &Scan) -> Result<(), ExportError> {
        let status = scan.state.status();
        let summary = MatchedPoliciesSummary::from(&scan_counts(scan));
        let joined = |pairs: Vec<String>| pairs.join(",");
        let row: [String; 18] = [
            scan.id.to_string(),
            timestamp(&scan.created_at),
            safe_cell(&scan.asset_name),
            scan.asset_type.as_str().to_string(),
            safe_cell(&scan.user),
            status.as_str().to_string(),
            scan.state.as_str().to_string(),
            criteria_text(&scan.failure_criteria),
            summary.high.to_string(),
            summary.medium.to_string(),
            summary.low.to_string(),
            u8::from(status == toolgate_model::ScanStatus::Passed).to_string(),
            u8::from(status == toolgate_model::ScanStatus::Failed).to_string(),
            "false".to_string(),
            "false".to_string(),
            safe_cell(&joined(
                scan.tags
                    .iter()
                    .map(|(name, value)| format!("{name}:{value}"))
                    .collect(),
            )),
            safe_cell(&joined(scan_resources(scan))),
            safe_cell(&joined(
                scan.scan_attributes
                    .iter()
                    .map(|(name, value)| format!("{name}:{value}"))
                    .collect(),
            )),
        ];
        self.writer.write_record(&row)?;
        Ok(())
    }

    /// Flushes and hands back the writer.
    pub fn finish(self) -> Result<W, ExportError> {
        self.writer
            .into_inner()
            .map_err(|error| ExportError::Flush(std::io::Error::other(error.error().to_string())))
    }
}

/// The whole export of `scans` in memory (for small lists and tests; stream big ones with
/// [`CsvExport`]).
pub fn csv_bytes(scans: &[Scan]) -> Result<Vec<u8>, ExportError> {
    let mut export = CsvExport::new(Vec::new())?;
    for scan in scans {
        export.write_scan(scan)?;
    }
    export.finish()
}

/// `text`, with a leading `'` when a spreadsheet would read it as a formula.
pub fn safe_cell(text: &str) -> String {
    if text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scan;
    use std::collections::BTreeMap;
    use toolgate_model::{ScanOutcome, ScanState, Severity, SeverityCounts};

    fn text(scans: &[Scan]) -> String {
        String::from_utf8(csv_bytes(scans).expect("export")).expect("UTF-8")
    }

    #[test]
    fn the_header_and_a_row_are_exact() {
        let mut failed = scan();
        failed.state = ScanState::Failed;
        failed.outcome = Some(ScanOutcome {
            counts: SeverityCounts::of(&[Severity::Critical, Severity::Medium]),
            error_details: vec![],
            resources: vec![
                "aws_s3_bucket.logs".to_string(),
                "aws_iam_role.ci".to_string(),
            ],
        });
        failed.tags.insert("team".to_string(), "sec".to_string());
        assert_eq!(
            text(&[failed]),
            "id,scanTime,assetName,assetType,user,status,state,failureCriteria,high,medium,low,pass,fail,merged,deployed,tags,resourceList,scanAttributes\n\
             0190a5b2-7c3e-7def-8a12-3456789abcde,2026-12-06T04:00:00Z,my-asset,IaC-API,ci-bot,failed,failed,\"H:1,M:1,L:1,OR\",1,1,0,0,1,false,false,\"env:dev,team:sec\",\"aws_s3_bucket.logs,aws_iam_role.ci\",buildNumber:7\n"
        );
    }

    #[test]
    fn pages_written_apart_join_into_one_export() {
        let mut second = scan();
        second.asset_name = "other".to_string();
        let mut first_page = CsvExport::new(Vec::new()).expect("header");
        first_page.write_scan(&scan()).expect("row");
        let mut joined = first_page.finish().expect("flush");
        let mut next_page = CsvExport::continuing(Vec::new());
        next_page.write_scan(&second).expect("row");
        joined.extend(next_page.finish().expect("flush"));
        assert_eq!(joined, csv_bytes(&[scan(), second]).expect("export"));
    }

    #[test]
    fn no_scans_is_the_header_alone() {
        assert_eq!(text(&[]).lines().count(), 1);
    }

    #[test]
    fn formula_cells_table() {
        let table = [
            ("=1+2", "'=1+2"),
            ("+cmd", "'+cmd"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("a=b", "a=b"),
            ("", ""),
            ("'quoted", "'quoted"),
        ];
        for (given, safe) in table {
            assert_eq!(safe_cell(given), safe, "{given:?}");
        }
    }

    #[test]
    fn caller_text_is_defused_and_quoted_by_the_library() {
        let mut hostile = scan();
        hostile.asset_name = "=HYPERLINK(\"http://evil\",\"x\")".to_string();
        hostile.user = "@admin".to_string();
        hostile.tags = BTreeMap::from([("-x".to_string(), "a,\"b\"".to_string())]);
        hostile.scan_attributes = BTreeMap::new();
        let written = text(&[hostile]);
        let mut reader = csv::Reader::from_reader(written.as_bytes());
        let row = reader
            .records()
            .next()
            .expect("one row")
            .expect("valid CSV");
        assert_eq!(&row[2], "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(&row[4], "'@admin");
        assert_eq!(&row[15], "'-x:a,\"b\"");
        assert_eq!(&row[17], "");
        assert!(
            written.contains("\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\""),
            "{written}"
        );
    }
}
