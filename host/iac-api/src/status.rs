//! `GET /iac/v2/scans/{id}/status`: the scan's API status, plus where it is in the queue so
//! progress is visible.
//!
//! Invariants: `data.attributes.status` is one of processing | passed | failed | error (what
//! polling clients compare); the extension attributes (`state`, `attempts`, `jobId`, times,
//! `errorDetails`) are always present, `null` when not known yet, so `jq` paths never vanish.

use serde::Serialize;
use toolgate_model::{ErrorDetail, Scan, ScanStatus};

use crate::SCAN_TYPE;
use crate::summary::timestamp;

/// The status body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusDocument {
    pub data: StatusResource,
}

/// The scan resource of a status body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusResource {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: StatusAttributes,
}

/// The status and the extension attributes that show progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusAttributes {
    pub status: ScanStatus,
    /// Extension: awaiting_upload, uploaded, queued, running, passed, failed, error.
    pub state: &'static str,
    /// Extension: how many times a worker started the scan.
    pub attempts: u32,
    /// Extension: the job that runs (or ran) it, as listed by `/api/jobs`.
    pub job_id: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Extension: why a scan ended in `error`, or what a tool did not apply.
    pub error_details: Vec<ErrorDetail>,
}

/// The status document of `scan`.
pub fn status_document(scan: &Scan) -> StatusDocument {
    StatusDocument {
        data: StatusResource {
            id: scan.id.to_string(),
            kind: SCAN_TYPE,
            attributes: StatusAttributes {
                status: scan.state.status(),
                state: scan.state.as_str(),
                attempts: scan.attempts,
                job_id: scan.job_id.clone(),
                created_at: timestamp(&scan.created_at),
                started_at: scan.started_at.as_ref().map(timestamp),
                finished_at: scan.finished_at.as_ref().map(timestamp),
                error_details: scan
                    .outcome
                    .as_ref()
                    .map(|outcome| outcome.error_details.clone())
                    .unwrap_or_default(),
            },
        },
    }
}

impl StatusDocument {
    /// The document as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::json_body::to_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::scan;
    use serde_json::json;
    use toolgate_model::{ScanOutcome, ScanState};

    fn render(scan: &Scan) -> serde_json::Value {
        serde_json::from_slice(&status_document(scan).to_bytes()).expect("JSON")
    }

    #[test]
    fn a_fresh_scan_is_processing_with_every_attribute_present() {
        assert_eq!(
            render(&scan()),
            json!({"data": {"id": "0190a5b2-7c3e-7def-8a12-3456789abcde", "type": "async-scan",
                "attributes": {"status": "processing", "state": "awaiting_upload", "attempts": 0,
                    "jobId": null, "createdAt": "2026-12-06T04:00:00Z", "startedAt": null,
                    "finishedAt": null, "errorDetails": []}}})
        );
    }

    #[test]
    fn every_state_reports_its_api_status() {
        let table = [
            (ScanState::Uploaded, "processing"),
            (ScanState::Queued, "processing"),
            (ScanState::Running, "processing"),
            (ScanState::Passed, "passed"),
            (ScanState::Failed, "failed"),
            (ScanState::Error, "error"),
        ];
        for (state, status) in table {
            let mut scan = scan();
            scan.state = state;
            let value = render(&scan);
            assert_eq!(
                value["data"]["attributes"]["status"],
                json!(status),
                "{state:?}"
            );
            assert_eq!(value["data"]["attributes"]["state"], json!(state.as_str()));
        }
    }

    #[test]
    fn an_errored_scan_says_why_and_which_job() {
        let mut scan = scan();
        scan.state = ScanState::Error;
        scan.attempts = 3;
        scan.job_id = Some("job-9".to_string());
        scan.started_at = Some(scan.created_at);
        scan.finished_at = Some(scan.created_at);
        scan.outcome = Some(ScanOutcome {
            error_details: vec![ErrorDetail {
                code: "retries_exhausted".to_string(),
                detail: "the daemon stopped 3 times while running it".to_string(),
            }],
            ..ScanOutcome::default()
        });
        let attributes = &render(&scan)["data"]["attributes"];
        assert_eq!(attributes["attempts"], json!(3));
        assert_eq!(attributes["jobId"], json!("job-9"));
        assert_eq!(attributes["startedAt"], json!("2026-12-06T04:00:00Z"));
        assert_eq!(
            attributes["errorDetails"],
            json!([{"code": "retries_exhausted",
                "detail": "the daemon stopped 3 times while running it"}])
        );
    }
}
