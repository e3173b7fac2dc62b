//! Conformance: the scan queue. Each transition's allow/deny table, nonces, claiming, recovery
//! with its retry limit, findings, expiry, and every list filter, sort and page.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use toolgate_model::{
    AssetType, CriteriaFilter, Direction, FailureCriteria, GroupBy, Operator, Page, ScanPage,
    ScanStatus, Severity, SeverityCounts, SortField, TemplateParameters, TemplateType, TimeWindow,
};

use toolgate_model::{
    ErrorDetail, Finding, NewScan, Scan, ScanId, ScanOutcome, ScanQuery, ScanRequest, ScanState,
    UploadInfo,
};

use super::{Backend, conformance};
use crate::scans::RETRIES_EXHAUSTED;
use crate::{Recovered, Refused, ScanStore, Store, StoreError};

conformance!(
    transitions_are_allowed_only_from_their_state,
    unknown_scans_and_duplicates_are_refused,
    a_nonce_is_consumed_once_and_a_refused_upload_consumes_nothing,
    claims_are_oldest_first_count_attempts_and_never_share_a_scan,
    recovery_requeues_until_the_retry_limit_then_errors_with_the_reason,
    a_requeued_scan_keeps_its_place_and_its_attempts,
    a_finished_scan_keeps_its_outcome_and_findings_in_order,
    expiry_deletes_old_finished_and_abandoned_scans_with_their_findings,
    every_list_filter_selects_in_sql,
    list_counts_cover_every_match_not_just_the_page,
    lists_sort_and_page_stably,
    a_scan_round_trips_every_field,
    groups_cover_every_match_by_their_key,
    a_tenant_queue_limit_refuses_one_more_and_counts_only_queued_scans,
    leases_are_renewed_only_on_running_scans,
    a_tenants_flood_does_not_hold_back_another_tenants_scan,
);

/// The scan id numbered `n` (the conformance and copy tests' scans).
pub(crate) fn id(n: u32) -> ScanId {
    ScanId::parse(&format!("00000000-0000-7000-8000-{n:012x}")).expect("id")
}

/// `minute` minutes into 2026.
pub(crate) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        + Duration::minutes(minute)
}

fn new_scan(n: u32) -> NewScan {
    NewScan {
        id: id(n),
        asset_name: format!("asset-{}", n % 3),
        asset_type: if n.is_multiple_of(2) {
            AssetType::GitHub
        } else {
            AssetType::Jenkins
        },
        tags: BTreeMap::from([("team".to_string(), format!("t{}", n % 2))]),
        scan_attributes: BTreeMap::from([("build".to_string(), n.to_string())]),
        failure_criteria: FailureCriteria::default(),
        user: format!("user-{}", n % 2),
        tenant: format!("tenant-{}", n % 2),
        created_at: at(i64::from(n)),
    }
}

fn upload() -> UploadInfo {
    UploadInfo {
        bytes: 10,
        sha256: "00".repeat(32),
        files: 1,
        uploaded_at: at(0),
    }
}

fn request() -> ScanRequest {
    ScanRequest {
        template_type: TemplateType::Tf,
        template_version: None,
        parameters: TemplateParameters::default(),
        tool: "terrascan".into(),
    }
}

/// A finding of `rule` on `resource` (the conformance and copy tests' findings).
pub(crate) fn finding(rule: &str, severity: Severity, resource: &str) -> Finding {
    Finding {
        rule_id: rule.into(),
        title: format!("{rule} title"),
        severity,
        description: "d".into(),
        resource_type: "aws_s3_bucket".into(),
        resource_name: resource.into(),
        file: Some("main.tf".into()),
        line: Some(3),
        category: "c".into(),
        documentation_url: None,
    }
}

/// Creates scan `n` and walks it to `state` through the store's own transitions (the
/// conformance and copy tests' scans).
pub(crate) async fn scan_in(store: &impl Store, n: u32, state: ScanState) -> Scan {
    let mut scan = store.create_scan(new_scan(n)).await.expect("create");
    let steps = [
        ScanState::Uploaded,
        ScanState::Queued,
        ScanState::Running,
        ScanState::Passed,
    ];
    for step in steps {
        if scan.state == state || scan.state.is_terminal() {
            break;
        }
        scan = match step {
            ScanState::Uploaded => store
                .record_upload(id(n), format!("nonce-{n}"), upload())
                .await
                .expect("upload"),
            ScanState::Queued => store
                .initiate(id(n), request(), at(100))
                .await
                .expect("initiate"),
            ScanState::Running => {
                let claimed = store
                    .claim_next(at(101))
                    .await
                    .expect("claim")
                    .expect("one");
                assert_eq!(claimed.id, id(n), "only this scan is queued");
                claimed
            }
            _ => store
                .finish_scan(id(n), state, ScanOutcome::default(), Vec::new(), at(102))
                .await
                .expect("finish"),
        };
    }
    assert_eq!(scan.state, state);
    scan
}

fn refusal(result: Result<impl std::fmt::Debug, StoreError>) -> Option<Refused> {
    match result {
        Ok(_) => None,
        Err(StoreError::Refused(refused)) => Some(refused),
        Err(other) => panic!("a store failure, not a refusal: {other}"),
    }
}

/// What each transition does from each state: `None` allowed, else the refusal's kind.
async fn transitions_are_allowed_only_from_their_state<B: Backend>() {
    use ScanState::*;
    type Kind = Option<&'static str>;
    // (from, record_upload, initiate, finish, requeue)
    let table: [(ScanState, Kind, Kind, Kind, Kind); 7] = [
        (
            AwaitingUpload,
            None,
            Some("not_uploaded"),
            Some("not_running"),
            Some("not_running"),
        ),
        (
            Uploaded,
            Some("not_awaiting"),
            None,
            Some("not_running"),
            Some("not_running"),
        ),
        (
            Queued,
            Some("not_awaiting"),
            Some("initiated"),
            Some("not_running"),
            Some("not_running"),
        ),
        (Running, Some("not_awaiting"), Some("initiated"), None, None),
        (
            Passed,
            Some("not_awaiting"),
            Some("initiated"),
            Some("not_running"),
            Some("not_running"),
        ),
        (
            Failed,
            Some("not_awaiting"),
            Some("initiated"),
            Some("not_running"),
            Some("not_running"),
        ),
        (
            Error,
            Some("not_awaiting"),
            Some("initiated"),
            Some("not_running"),
            Some("not_running"),
        ),
    ];
    let kind = |refused: Option<Refused>| -> Kind {
        refused.map(|refused| match refused {
            Refused::NotUploaded { .. } => "not_uploaded",
            Refused::NotAwaitingUpload { .. } => "not_awaiting",
            Refused::AlreadyInitiated { .. } => "initiated",
            Refused::NotRunning { .. } => "not_running",
            other => panic!("unexpected refusal {other:?}"),
        })
    };
    for (n, (from, upload_kind, initiate_kind, finish_kind, requeue_kind)) in
        table.into_iter().enumerate()
    {
        let n = n as u32 * 4;
        // A fresh store per row, so the one claimable scan is this row's.
        let Some((_place, store)) = B::fresh(10).await else {
            return;
        };
        scan_in(&store, n, from).await;
        let result = store
            .record_upload(id(n), format!("fresh-{n}"), upload())
            .await;
        assert_eq!(
            kind(refusal(result)),
            upload_kind,
            "record_upload from {from:?}"
        );

        let Some((_place, store)) = B::fresh(10).await else {
            return;
        };
        scan_in(&store, n, from).await;
        let result = store.initiate(id(n), request(), at(200)).await;
        assert_eq!(
            kind(refusal(result)),
            initiate_kind,
            "initiate from {from:?}"
        );

        let Some((_place, store)) = B::fresh(10).await else {
            return;
        };
        scan_in(&store, n, from).await;
        let result = store
            .finish_scan(id(n), Failed, ScanOutcome::default(), Vec::new(), at(300))
            .await;
        assert_eq!(kind(refusal(result)), finish_kind, "finish from {from:?}");

        let Some((_place, store)) = B::fresh(10).await else {
            return;
        };
        scan_in(&store, n, from).await;
        let result = store.requeue_scan(id(n)).await;
        assert_eq!(kind(refusal(result)), requeue_kind, "requeue from {from:?}");
        // A refused transition changed nothing.
        let after = store.scan(id(n)).await.expect("get").expect("exists");
        let expected = if requeue_kind.is_none() { Queued } else { from };
        assert_eq!(after.state, expected, "after requeue from {from:?}");
    }
}

async fn unknown_scans_and_duplicates_are_refused<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    let unknown = |result: Option<Refused>| matches!(result, Some(Refused::UnknownScan(_)));
    assert!(unknown(refusal(
        store.record_upload(id(9), "n".into(), upload()).await
    )));
    assert!(unknown(refusal(
        store.initiate(id(9), request(), at(0)).await
    )));
    assert!(unknown(refusal(
        store
            .finish_scan(
                id(9),
                ScanState::Passed,
                ScanOutcome::default(),
                Vec::new(),
                at(0)
            )
            .await
    )));
    assert!(unknown(refusal(store.requeue_scan(id(9)).await)));
    assert!(unknown(refusal(
        store.attach_job(id(9), "job".into()).await
    )));
    assert!(store.scan(id(9)).await.expect("get").is_none());
    assert!(store.findings(id(9)).await.expect("findings").is_none());
    store.create_scan(new_scan(1)).await.expect("create");
    assert!(matches!(
        refusal(store.create_scan(new_scan(1)).await),
        Some(Refused::DuplicateScan(_))
    ));
}

async fn a_nonce_is_consumed_once_and_a_refused_upload_consumes_nothing<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    store.create_scan(new_scan(1)).await.expect("create");
    store.create_scan(new_scan(2)).await.expect("create");
    store
        .record_upload(id(1), "same".into(), upload())
        .await
        .expect("first use");
    // Reused, on the same scan or another: refused.
    for scan in [1, 2] {
        assert_eq!(
            refusal(store.record_upload(id(scan), "same".into(), upload()).await),
            Some(Refused::NonceReused)
        );
    }
    // Scan 1 is no longer awaiting an upload: refused, and its nonce stays unused.
    assert!(matches!(
        refusal(store.record_upload(id(1), "other".into(), upload()).await),
        Some(Refused::NotAwaitingUpload { .. })
    ));
    let scan = store
        .record_upload(id(2), "other".into(), upload())
        .await
        .expect("the nonce a refused upload tried is still unused");
    assert_eq!(scan.state, ScanState::Uploaded);
    assert_eq!(scan.upload, Some(upload()));
}

async fn claims_are_oldest_first_count_attempts_and_never_share_a_scan<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    assert!(store.claim_next(at(0)).await.expect("claim").is_none());
    const SCANS: u32 = 40;
    for n in 0..SCANS {
        store.create_scan(new_scan(n)).await.expect("create");
        store
            .record_upload(id(n), format!("n{n}"), upload())
            .await
            .expect("upload");
        store
            .initiate(id(n), request(), at(i64::from(n)))
            .await
            .expect("initiate");
    }
    let first = store
        .claim_next(at(50))
        .await
        .expect("claim")
        .expect("queued");
    assert_eq!(first.id, id(0));
    assert_eq!(first.attempts, 1);
    assert_eq!(first.state, ScanState::Running);
    assert_eq!(first.started_at, Some(at(50)));
    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                while let Some(scan) = store.claim_next(at(60)).await.expect("claim") {
                    claimed.push(scan.id);
                }
                claimed
            })
        })
        .collect();
    let mut all = vec![first.id];
    for claimer in claimers {
        all.extend(claimer.await.expect("task"));
    }
    all.sort();
    all.dedup();
    assert_eq!(all.len(), SCANS as usize, "every scan claimed exactly once");
}

async fn recovery_requeues_until_the_retry_limit_then_errors_with_the_reason<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    const MAX_ATTEMPTS: u32 = 3;
    scan_in(&store, 1, ScanState::Running).await;
    for attempt in 1..MAX_ATTEMPTS {
        // Time moves on between crashes: each recovery comes after the last claim's lease ran
        // out, as it must for a shared store to see that claim's daemon as dead.
        let crash = at(500 + 10 * i64::from(attempt));
        let recovered = store
            .recover_scans(MAX_ATTEMPTS, crash)
            .await
            .expect("recover");
        assert_eq!(recovered.requeued, vec![id(1)], "attempt {attempt}");
        assert!(recovered.failed.is_empty());
        let scan = store
            .claim_next(crash + Duration::seconds(1))
            .await
            .expect("claim")
            .expect("requeued");
        assert_eq!(scan.attempts, attempt + 1);
    }
    let recovered = store
        .recover_scans(MAX_ATTEMPTS, at(600))
        .await
        .expect("recover");
    assert!(recovered.requeued.is_empty());
    assert_eq!(recovered.failed, vec![id(1)]);
    let scan = store.scan(id(1)).await.expect("get").expect("exists");
    assert_eq!(scan.state, ScanState::Error);
    assert_eq!(scan.finished_at, Some(at(600)));
    let details = scan.outcome.expect("outcome").error_details;
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].code, RETRIES_EXHAUSTED);
    assert!(
        details[0].detail.contains("3 times"),
        "{}",
        details[0].detail
    );
    // Nothing running: nothing to recover.
    assert_eq!(
        store
            .recover_scans(MAX_ATTEMPTS, at(700))
            .await
            .expect("recover"),
        Recovered::default()
    );
}

async fn a_requeued_scan_keeps_its_place_and_its_attempts<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    scan_in(&store, 1, ScanState::Running).await;
    store
        .attach_job(id(1), "job-1".into())
        .await
        .expect("attach");
    assert_eq!(
        store
            .scan(id(1))
            .await
            .expect("get")
            .expect("exists")
            .job_id
            .as_deref(),
        Some("job-1")
    );
    store.requeue_scan(id(1)).await.expect("requeue");
    let scan = store.scan(id(1)).await.expect("get").expect("exists");
    assert_eq!(
        (scan.state, scan.attempts, scan.job_id),
        (ScanState::Queued, 0, None)
    );
}

async fn a_finished_scan_keeps_its_outcome_and_findings_in_order<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    scan_in(&store, 1, ScanState::Running).await;
    let findings = vec![
        finding("R2", Severity::Critical, "a"),
        finding("R1", Severity::Low, "b"),
        finding("R3", Severity::Info, "a"),
    ];
    let outcome = ScanOutcome {
        counts: SeverityCounts::of(findings.iter().map(|finding| &finding.severity)),
        error_details: vec![ErrorDetail {
            code: "not_applied".into(),
            detail: "variables".into(),
        }],
        resources: vec!["aws_s3_bucket.a".into(), "aws_s3_bucket.b".into()],
    };
    assert!(matches!(
        refusal(
            store
                .finish_scan(id(1), ScanState::Queued, outcome.clone(), Vec::new(), at(9))
                .await
        ),
        Some(Refused::NotAnEnding("queued"))
    ));
    let scan = store
        .finish_scan(
            id(1),
            ScanState::Failed,
            outcome.clone(),
            findings.clone(),
            at(9),
        )
        .await
        .expect("finish");
    assert_eq!(scan.state, ScanState::Failed);
    assert_eq!(scan.outcome, Some(outcome));
    assert_eq!(
        store.findings(id(1)).await.expect("findings"),
        Some(findings)
    );
    scan_in(&store, 2, ScanState::Uploaded).await;
    assert_eq!(
        store.findings(id(2)).await.expect("findings"),
        Some(Vec::new())
    );
}

async fn expiry_deletes_old_finished_and_abandoned_scans_with_their_findings<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    // Finished at(102) by `scan_in`.
    scan_in(&store, 1, ScanState::Passed).await;
    scan_in(&store, 2, ScanState::Running).await;
    // Created at(3) and at(4), never initiated.
    scan_in(&store, 3, ScanState::Uploaded).await;
    store.create_scan(new_scan(4)).await.expect("create");
    let mut late = new_scan(5);
    late.created_at = at(1000);
    store.create_scan(late).await.expect("create");
    // Nothing finished before at(102) nor abandoned before at(3).
    let expired = store.expire_scans(at(102), at(3)).await.expect("expire");
    assert!(expired.is_empty(), "{expired:?}");
    let mut expired = store.expire_scans(at(103), at(999)).await.expect("expire");
    expired.sort();
    assert_eq!(expired, vec![id(1), id(3), id(4)]);
    for gone in [1, 3, 4] {
        assert!(store.scan(id(gone)).await.expect("get").is_none());
    }
    for kept in [2, 5] {
        assert!(store.scan(id(kept)).await.expect("get").is_some(), "{kept}");
    }
}

/// Ten scans: n = 0..10, created at minute n; even n GitHub, odd Jenkins; asset `asset-{n%3}`;
/// user `user-{n%2}`; tag team=t{n%2}; n < 4 passed (n=3 with one high finding on resource
/// aws_s3_bucket.r3), n in 4..6 failed with two medium findings, the rest processing; scan 9
/// has failure criteria H:5 & M:2 & L:1.
async fn ten_scans(store: &impl Store) {
    for n in 0..10 {
        let mut scan = new_scan(n);
        if n == 9 {
            scan.failure_criteria = FailureCriteria {
                high: 5,
                medium: 2,
                low: 1,
                operator: Operator::And,
            };
        }
        store.create_scan(scan).await.expect("create");
        if n >= 6 {
            continue;
        }
        store
            .record_upload(id(n), format!("n{n}"), upload())
            .await
            .expect("upload");
        store
            .initiate(id(n), request(), at(100))
            .await
            .expect("initiate");
        let claimed = store
            .claim_next(at(101))
            .await
            .expect("claim")
            .expect("one");
        let (state, found) = match n {
            3 => (ScanState::Passed, vec![finding("R", Severity::High, "r3")]),
            4 | 5 => (
                ScanState::Failed,
                vec![
                    finding("M1", Severity::Medium, "m"),
                    finding("M2", Severity::Medium, "m"),
                ],
            ),
            _ => (ScanState::Passed, Vec::new()),
        };
        let outcome = ScanOutcome {
            counts: SeverityCounts::of(found.iter().map(|finding| &finding.severity)),
            error_details: Vec::new(),
            resources: found
                .iter()
                .map(|finding| format!("{}.{}", finding.resource_type, finding.resource_name))
                .collect(),
        };
        store
            .finish_scan(claimed.id, state, outcome, found, at(102))
            .await
            .expect("finish");
    }
}

fn numbers(page: &ScanPage) -> Vec<u32> {
    page.scans
        .iter()
        .map(|scan| u32::from_str_radix(&scan.id.as_str()[24..], 16).expect("hex"))
        .collect()
}

async fn every_list_filter_selects_in_sql<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    ten_scans(&store).await;
    let everything = ScanQuery::default;
    let table: Vec<(&str, ScanQuery, Vec<u32>)> = vec![
        (
            "no filter, newest first",
            everything(),
            (0..10).rev().collect(),
        ),
        (
            "time window",
            ScanQuery {
                window: TimeWindow {
                    from: Some(at(2)),
                    to: Some(at(4)),
                },
                ..everything()
            },
            vec![4, 3, 2],
        ),
        (
            "asset names",
            ScanQuery {
                asset_names: vec!["asset-1".into(), "asset-2".into()],
                ..everything()
            },
            vec![8, 7, 5, 4, 2, 1],
        ),
        (
            "asset type",
            ScanQuery {
                asset_types: vec![AssetType::Jenkins],
                ..everything()
            },
            vec![9, 7, 5, 3, 1],
        ),
        (
            "tag with value",
            ScanQuery {
                tags: vec![("team".into(), Some("t0".into()))],
                ..everything()
            },
            vec![8, 6, 4, 2, 0],
        ),
        (
            "tag by name only",
            ScanQuery {
                tags: vec![("team".into(), None)],
                ..everything()
            },
            (0..10).rev().collect(),
        ),
        (
            "unknown tag",
            ScanQuery {
                tags: vec![("owner".into(), None)],
                ..everything()
            },
            vec![],
        ),
        (
            "status passed",
            ScanQuery {
                statuses: vec![ScanStatus::Passed],
                ..everything()
            },
            vec![3, 2, 1, 0],
        ),
        (
            "status failed or processing",
            ScanQuery {
                statuses: vec![ScanStatus::Failed, ScanStatus::Processing],
                ..everything()
            },
            vec![9, 8, 7, 6, 5, 4],
        ),
        (
            "user",
            ScanQuery {
                users: vec!["user-1".into()],
                ..everything()
            },
            vec![9, 7, 5, 3, 1],
        ),
        (
            "owner: one tenant's scans only",
            ScanQuery {
                owner: Some("tenant-0".into()),
                ..everything()
            },
            vec![8, 6, 4, 2, 0],
        ),
        (
            "owner and another filter",
            ScanQuery {
                owner: Some("tenant-0".into()),
                users: vec!["user-1".into()],
                ..everything()
            },
            vec![],
        ),
        (
            "resource",
            ScanQuery {
                resources: vec!["aws_s3_bucket.r3".into()],
                ..everything()
            },
            vec![3],
        ),
        (
            "failure criteria",
            ScanQuery {
                failure_criteria: Some(CriteriaFilter {
                    high: Some(5),
                    medium: Some(2),
                    low: None,
                    operator: Some(Operator::And),
                }),
                ..everything()
            },
            vec![9],
        ),
        (
            "filters combine",
            ScanQuery {
                asset_types: vec![AssetType::GitHub],
                statuses: vec![ScanStatus::Passed],
                ..everything()
            },
            vec![2, 0],
        ),
    ];
    for (name, query, expected) in table {
        let page = store.list_scans(query).await.expect("list");
        assert_eq!(numbers(&page), expected, "{name}");
        assert_eq!(page.totals.all, expected.len() as u64, "{name}: total");
    }
}

async fn list_counts_cover_every_match_not_just_the_page<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    ten_scans(&store).await;
    let page = store
        .list_scans(ScanQuery {
            page: Page::new(2, 1).expect("page"),
            ..ScanQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(page.scans.len(), 2);
    assert_eq!(
        (page.totals.all, page.totals.passed, page.totals.failed),
        (10, 4, 2)
    );
    assert_eq!(
        (
            page.totals
                .counts
                .bucket(toolgate_model::severity::Bucket::High),
            page.totals.counts.medium,
            page.totals.counts.low
        ),
        (1, 4, 0)
    );
    let none = store
        .list_scans(ScanQuery {
            users: vec!["nobody".into()],
            ..ScanQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        (none.totals.all, none.totals.passed, none.totals.failed),
        (0, 0, 0)
    );
    assert_eq!(none.totals.counts, SeverityCounts::default());
}

async fn lists_sort_and_page_stably<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    ten_scans(&store).await;
    let sorted = |sort: Vec<(SortField, Direction)>, size: u32, number: u32| ScanQuery {
        sort,
        page: Page::new(size, number).expect("page"),
        ..ScanQuery::default()
    };
    let table: Vec<(&str, ScanQuery, Vec<u32>)> = vec![
        (
            "time ascending",
            sorted(vec![(SortField::ScanTime, Direction::Ascending)], 3, 1),
            vec![0, 1, 2],
        ),
        (
            "time ascending, page 2",
            sorted(vec![(SortField::ScanTime, Direction::Ascending)], 3, 2),
            vec![3, 4, 5],
        ),
        (
            "last partial page",
            sorted(vec![(SortField::ScanTime, Direction::Ascending)], 3, 4),
            vec![9],
        ),
        (
            "past the end",
            sorted(vec![(SortField::ScanTime, Direction::Ascending)], 3, 5),
            vec![],
        ),
        // Ties in asset name are broken by the id.
        (
            "asset name then id",
            sorted(vec![(SortField::AssetName, Direction::Descending)], 4, 1),
            vec![2, 5, 8, 1],
        ),
        (
            "asset type",
            sorted(vec![(SortField::AssetType, Direction::Ascending)], 10, 1),
            vec![0, 2, 4, 6, 8, 1, 3, 5, 7, 9],
        ),
        (
            "user then newest",
            sorted(
                vec![
                    (SortField::User, Direction::Descending),
                    (SortField::ScanTime, Direction::Descending),
                ],
                10,
                1,
            ),
            vec![9, 7, 5, 3, 1, 8, 6, 4, 2, 0],
        ),
        (
            "status",
            sorted(vec![(SortField::Status, Direction::Ascending)], 10, 1),
            vec![4, 5, 0, 1, 2, 3, 6, 7, 8, 9],
        ),
    ];
    for (name, query, expected) in table {
        let page = store.list_scans(query).await.expect("list");
        assert_eq!(numbers(&page), expected, "{name}");
        assert_eq!(page.totals.all, 10, "{name}");
    }
}

async fn a_scan_round_trips_every_field<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    let scan = scan_in(&store, 7, ScanState::Queued).await;
    let read = store.scan(id(7)).await.expect("get").expect("exists");
    assert_eq!(read, scan);
    assert_eq!(read.tags, new_scan(7).tags);
    assert_eq!(read.scan_attributes, new_scan(7).scan_attributes);
    assert_eq!(read.request, Some(request()));
    assert_eq!(read.created_at, at(7));
}

async fn groups_cover_every_match_by_their_key<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    ten_scans(&store).await;
    let grouped = |group_by| ScanQuery {
        group_by: Some(group_by),
        page: Page::new(1, 1).expect("page"),
        ..ScanQuery::default()
    };
    let keys = |page: &ScanPage| -> Vec<(String, u64, u64, u64)> {
        page.groups
            .iter()
            .map(|group| {
                (
                    group.key.clone(),
                    group.totals.all,
                    group.totals.passed,
                    group.totals.failed,
                )
            })
            .collect()
    };
    let by_resource = store
        .list_scans(grouped(GroupBy::ResourceList))
        .await
        .expect("list");
    assert_eq!(
        keys(&by_resource),
        vec![
            ("aws_s3_bucket.m".to_string(), 2, 0, 2),
            ("aws_s3_bucket.r3".to_string(), 1, 1, 0),
        ]
    );
    assert_eq!(by_resource.groups[0].totals.counts.medium, 4);
    let by_name = store
        .list_scans(grouped(GroupBy::AssetName))
        .await
        .expect("list");
    let names: Vec<(String, u64)> = keys(&by_name)
        .into_iter()
        .map(|(key, all, ..)| (key, all))
        .collect();
    assert_eq!(
        names,
        vec![
            ("asset-0".to_string(), 4),
            ("asset-1".to_string(), 3),
            ("asset-2".to_string(), 3),
        ]
    );
    assert_eq!(by_name.scans.len(), 1, "groups do not change the page");
    let plain = store.list_scans(ScanQuery::default()).await.expect("list");
    assert!(plain.groups.is_empty(), "no groupBy, no groups");
}

async fn a_tenant_queue_limit_refuses_one_more_and_counts_only_queued_scans<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    // Scans 0, 2 and 4 belong to tenant-0, scan 1 to tenant-1.
    for n in [0, 2, 4, 1] {
        scan_in(&store, n, ScanState::Uploaded).await;
    }
    for n in [0, 2] {
        store
            .initiate_within(id(n), request(), at(100), 2)
            .await
            .expect("within the limit");
    }
    assert_eq!(
        refusal(store.initiate_within(id(4), request(), at(100), 2).await),
        Some(Refused::TenantQueueFull {
            tenant: "tenant-0".into(),
            max: 2
        })
    );
    let refused = store.scan(id(4)).await.expect("get").expect("exists");
    assert_eq!(
        refused.state,
        ScanState::Uploaded,
        "a refused initiate changes nothing"
    );
    store
        .initiate_within(id(1), request(), at(100), 2)
        .await
        .expect("another tenant's limit is its own");
    // Once one of tenant-0's scans runs, it no longer counts.
    store
        .claim_next(at(101))
        .await
        .expect("claim")
        .expect("queued");
    store
        .initiate_within(id(4), request(), at(102), 2)
        .await
        .expect("room again");
}

async fn leases_are_renewed_only_on_running_scans<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    assert_eq!(store.renew_leases(at(10)).await.expect("renew"), 0);
    scan_in(&store, 3, ScanState::Passed).await;
    scan_in(&store, 1, ScanState::Running).await;
    scan_in(&store, 2, ScanState::Queued).await;
    assert_eq!(
        store.renew_leases(at(200)).await.expect("renew"),
        1,
        "only the running scan"
    );
    let running = store.scan(id(1)).await.expect("get").expect("exists");
    assert_eq!(running.state, ScanState::Running);
}

/// A tenant that queued many scans does not hold back another tenant's: the next claim goes to
/// the tenant with the fewest scans running, and each tenant's scans run oldest first.
async fn a_tenants_flood_does_not_hold_back_another_tenants_scan<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    // tenant-0 queues scans 0, 2, 4, 6 first; tenant-1's scan 1 comes last.
    for (minute, n) in [0, 2, 4, 6, 1].into_iter().enumerate() {
        scan_in(&store, n, ScanState::Uploaded).await;
        store
            .initiate(id(n), request(), at(minute as i64))
            .await
            .expect("initiate");
    }
    let mut order = Vec::new();
    while let Some(scan) = store.claim_next(at(50)).await.expect("claim") {
        order.push(scan.id);
        // Each claimed scan keeps running, as on a busy daemon.
    }
    assert_eq!(
        order,
        [id(0), id(1), id(2), id(4), id(6)],
        "tenant-1's only scan runs second, not after tenant-0's queue"
    );
}
