//! `GET /iac/v2/scans`: a page of scans with upstream's attributes, totals over everything the
//! filters match, the groups of a `groupBy`, and paging links.
//!
//! Shape of `groupBy` (toolgate's; upstream does not document one): `meta.groupBy` names the
//! grouping and `meta.groups[]` holds one entry per key, largest first as the store ordered
//! them, each `{"key", "all", "pass", "fail", "matchedPoliciesSummary"}` over every matched scan
//! (not only this page); `data` stays the page of scans. Without `groupBy` neither member is
//! written.
//!
//! Invariants: `meta.pass|fail|all` and every `matchedPoliciesSummary` are numbers; `data` is
//! always an array; per scan, `pass` and `fail` are 1 or 0 (whether that scan passed or
//! failed, so they sum to `meta.pass` and `meta.fail` over all pages); `failureCriteria` is the
//! text `H:1,M:1,L:1,OR` that `filter[failureCriteria]` accepts; `scanTime` is the creation
//! time (what time filters and `sort=scanTime` use); `links` repeat the caller's query with
//! only `page[size]` and `page[number]` changed, `prev`/`next` `null` at the ends.

use std::collections::BTreeMap;

use serde::Serialize;
use toolgate_model::{
    AssetType, GroupBy, Page, Scan, ScanPage, ScanQuery, ScanStatus, ScanTotals, SeverityCounts,
};

use crate::summary::{criteria_text, timestamp};
use crate::{MatchedPoliciesSummary, SCAN_TYPE};

/// Where a tag came from: every tag here was given on create.
pub const TAG_SOURCE: &str = "user";

/// The list body: `meta`, `data[]`, `links`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListDocument {
    pub meta: ListMeta,
    pub data: Vec<ListedScan>,
    pub links: PageLinks,
}

/// Totals over every scan the filters match (not only the page), and the groups of a `groupBy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    pub pass: u64,
    pub fail: u64,
    pub all: u64,
    pub matched_policies_summary: MatchedPoliciesSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupMeta>>,
}

/// One `meta.groups[]` entry: the totals of the scans sharing `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMeta {
    pub key: String,
    pub all: u64,
    pub pass: u64,
    pub fail: u64,
    pub matched_policies_summary: MatchedPoliciesSummary,
}

/// One scan of `data[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedScan {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: ListedAttributes,
    pub links: SelfLink,
    pub relationships: Relationships,
}

/// Upstream's list attributes (arrays where upstream has arrays) plus `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedAttributes {
    pub name: Vec<String>,
    #[serde(rename = "type")]
    pub kind: Vec<AssetType>,
    pub user: Vec<String>,
    pub resource_list: Vec<String>,
    pub tags: Vec<ListedTag>,
    pub failure_criteria: String,
    pub status: ScanStatus,
    /// Upstream's CI merge/deploy flags; toolgate is not told of either.
    pub merged: bool,
    pub deployed: bool,
    pub fail: u64,
    pub pass: u64,
    pub matched_policies_summary: MatchedPoliciesSummary,
    pub scan_attributes: BTreeMap<String, String>,
    pub scan_time: String,
    /// Extension: the scan's finer state.
    pub state: &'static str,
}

/// One tag as upstream lists it: `{"name","value","source"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedTag {
    pub name: String,
    pub value: String,
    pub source: &'static str,
}

/// `links.self` of a listed scan: its URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub self_url: String,
}

/// `relationships.scanResult.links.related`: where the scan's results are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Relationships {
    pub scan_result: RelatedLinks,
}

/// The links of the `scanResult` relationship.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelatedLinks {
    pub links: Related,
}

/// The URL of a scan's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Related {
    pub related: String,
}

/// The list's paging links; `prev` and `next` are `null` at the ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageLinks {
    #[serde(rename = "self")]
    pub self_url: String,
    pub first: String,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub last: String,
}

/// The list document for the store's `page` answering `query`. `scans_url` is the absolute
/// URL of the list without a query (`https://host/iac/v2/scans`); `query_string` is the
/// caller's query (without `?`), repeated in the paging links.
pub fn list_document(
    page: &ScanPage,
    query: &ScanQuery,
    scans_url: &str,
    query_string: &str,
) -> ListDocument {
    let scans_url = scans_url.trim_end_matches('/');
    ListDocument {
        meta: ListMeta {
            pass: page.totals.passed,
            fail: page.totals.failed,
            all: page.totals.all,
            matched_policies_summary: MatchedPoliciesSummary::from(&page.totals.counts),
            group_by: query.group_by.map(group_name),
            groups: query.group_by.map(|_| {
                page.groups
                    .iter()
                    .map(|group| group_meta(&group.key, &group.totals))
                    .collect()
            }),
        },
        data: page
            .scans
            .iter()
            .map(|scan| listed_scan(scan, scans_url))
            .collect(),
        links: page_links(scans_url, query_string, query.page, page.totals.all),
    }
}

/// The wire name of a grouping, as `groupBy` takes it.
pub fn group_name(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::AssetType => "assetType",
        GroupBy::AssetName => "assetName",
        GroupBy::ResourceList => "resourceList",
    }
}

fn group_meta(key: &str, totals: &ScanTotals) -> GroupMeta {
    GroupMeta {
        key: key.to_string(),
        all: totals.all,
        pass: totals.passed,
        fail: totals.failed,
        matched_policies_summary: MatchedPoliciesSummary::from(&totals.counts),
    }
}

/// The counts of a scan's findings (zero until it has an outcome).
pub(crate) fn scan_counts(scan: &Scan) -> SeverityCounts {
    scan.outcome
        .as_ref()
        .map(|outcome| outcome.counts)
        .unwrap_or_default()
}

/// A scan's resources with findings (empty until it has an outcome).
pub(crate) fn scan_resources(scan: &Scan) -> Vec<String> {
    scan.outcome
        .as_ref()
        .map(|outcome| outcome.resources.clone())
        .unwrap_or_default()
}

fn listed_scan(scan: &Scan, scans_url: &str) -> ListedScan {
    let status = scan.state.status();
    let scan_url = format!("{scans_url}/{}", scan.id);
    ListedScan {
        id: scan.id.to_string(),
        kind: SCAN_TYPE,
        attributes: ListedAttributes {
            name: vec![scan.asset_name.clone()],
            kind: vec![scan.asset_type],
            user: vec![scan.user.clone()],
            resource_list: scan_resources(scan),
            tags: scan
                .tags
                .iter()
                .map(|(name, value)| ListedTag {
                    name: name.clone(),
                    value: value.clone(),
                    source: TAG_SOURCE,
                })
                .collect(),
            failure_criteria: criteria_text(&scan.failure_criteria),
            status,
            merged: false,
            deployed: false,
            fail: u64::from(status == ScanStatus::Failed),
            pass: u64::from(status == ScanStatus::Passed),
            matched_policies_summary: MatchedPoliciesSummary::from(&scan_counts(scan)),
            scan_attributes: scan.scan_attributes.clone(),
            scan_time: timestamp(&scan.created_at),
            state: scan.state.as_str(),
        },
        relationships: Relationships {
            scan_result: RelatedLinks {
                links: Related {
                    related: format!("{scan_url}/results"),
                },
            },
        },
        links: SelfLink { self_url: scan_url },
    }
}

/// The paging links: the caller's parameters in their order, then `page[size]` and
/// `page[number]`.
pub fn page_links(scans_url: &str, query_string: &str, page: Page, total: u64) -> PageLinks {
    let kept: Vec<(String, String)> = form_urlencoded::parse(query_string.as_bytes())
        .filter(|(key, _)| key != "page[size]" && key != "page[number]")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let size = u64::from(page.size);
    let last = total.div_ceil(size).max(1);
    let url = |number: u64| {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &kept {
            serializer.append_pair(key, value);
        }
        serializer.append_pair("page[size]", &page.size.to_string());
        serializer.append_pair("page[number]", &number.to_string());
        format!("{scans_url}?{}", serializer.finish())
    };
    let number = u64::from(page.number);
    PageLinks {
        self_url: url(number),
        first: url(1),
        prev: (number > 1).then(|| url((number - 1).min(last))),
        next: (number < last).then(|| url(number + 1)),
        last: url(last),
    }
}

impl ListDocument {
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
    use toolgate_model::{ScanGroup, ScanOutcome, ScanState, Severity};

    const BASE: &str = "https://toolgate.example/iac/v2/scans";

    fn failed_scan() -> Scan {
        let mut scan = scan();
        scan.state = ScanState::Failed;
        scan.outcome = Some(ScanOutcome {
            counts: SeverityCounts::of(&[Severity::Critical, Severity::Low]),
            error_details: vec![],
            resources: vec!["aws_s3_bucket.logs".to_string()],
        });
        scan
    }

    fn totals(all: u64, passed: u64, failed: u64) -> ScanTotals {
        ScanTotals {
            all,
            passed,
            failed,
            counts: SeverityCounts::of(&[Severity::Critical, Severity::Low]),
        }
    }

    fn render(page: &ScanPage, query: &ScanQuery, query_string: &str) -> serde_json::Value {
        serde_json::from_slice(&list_document(page, query, BASE, query_string).to_bytes())
            .expect("JSON")
    }

    #[test]
    fn an_empty_list_has_numbers_an_array_and_one_page() {
        let value = render(&ScanPage::default(), &ScanQuery::default(), "");
        let page_one = format!("{BASE}?page%5Bsize%5D=25&page%5Bnumber%5D=1");
        assert_eq!(
            value,
            json!({"meta": {"pass": 0, "fail": 0, "all": 0,
                    "matchedPoliciesSummary": {"high": 0, "medium": 0, "low": 0}},
                "data": [],
                "links": {"self": page_one, "first": page_one, "prev": null, "next": null,
                    "last": page_one}})
        );
    }

    #[test]
    fn one_scan_has_the_exact_shape() {
        let page = ScanPage {
            scans: vec![failed_scan()],
            totals: totals(1, 0, 1),
            groups: vec![],
        };
        let value = render(&page, &ScanQuery::default(), "");
        assert_eq!(
            value["data"],
            json!([{"id": "0190a5b2-7c3e-7def-8a12-3456789abcde", "type": "async-scan",
                "attributes": {"name": ["my-asset"], "type": ["IaC-API"], "user": ["ci-bot"],
                    "resourceList": ["aws_s3_bucket.logs"],
                    "tags": [{"name": "env", "value": "dev", "source": "user"}],
                    "failureCriteria": "H:1,M:1,L:1,OR", "status": "failed",
                    "merged": false, "deployed": false, "fail": 1, "pass": 0,
                    "matchedPoliciesSummary": {"high": 1, "medium": 0, "low": 1},
                    "scanAttributes": {"buildNumber": "7"},
                    "scanTime": "2026-12-06T04:00:00Z", "state": "failed"},
                "links": {"self": format!("{BASE}/0190a5b2-7c3e-7def-8a12-3456789abcde")},
                "relationships": {"scanResult": {"links": {"related":
                    format!("{BASE}/0190a5b2-7c3e-7def-8a12-3456789abcde/results")}}}}])
        );
        assert_eq!(
            value["meta"],
            json!({"pass": 0, "fail": 1, "all": 1,
                "matchedPoliciesSummary": {"high": 1, "medium": 0, "low": 1}})
        );
    }

    #[test]
    fn groups_are_written_only_when_asked_for() {
        let page = ScanPage {
            scans: vec![failed_scan()],
            totals: totals(3, 2, 1),
            groups: vec![ScanGroup {
                key: "IaC-API".to_string(),
                totals: totals(3, 2, 1),
            }],
        };
        let query = ScanQuery {
            group_by: Some(GroupBy::AssetType),
            ..ScanQuery::default()
        };
        let value = render(&page, &query, "groupBy=assetType");
        assert_eq!(value["meta"]["groupBy"], json!("assetType"));
        assert_eq!(
            value["meta"]["groups"],
            json!([{"key": "IaC-API", "all": 3, "pass": 2, "fail": 1,
                "matchedPoliciesSummary": {"high": 1, "medium": 0, "low": 1}}])
        );
        let value = render(&page, &ScanQuery::default(), "");
        assert!(value["meta"].get("groups").is_none());
        assert!(value["meta"].get("groupBy").is_none());
    }

    #[test]
    fn paging_links_table() {
        let query_string = "filter[status]=failed&page[size]=10&page[number]=2&sort=-scanTime";
        let url = |number: u64| {
            format!(
                "{BASE}?filter%5Bstatus%5D=failed&sort=-scanTime&page%5Bsize%5D=10&page%5Bnumber%5D={number}"
            )
        };
        // (page number, total scans, prev, next, last)
        let table = [
            (1, 0, None, None, 1),
            (1, 10, None, None, 1),
            (1, 11, None, Some(2), 2),
            (2, 25, Some(1), Some(3), 3),
            (3, 25, Some(2), None, 3),
            (9, 25, Some(3), None, 3),
        ];
        for (number, total, prev, next, last) in table {
            let page = Page::new(10, number).expect("valid page");
            let links = page_links(BASE, query_string, page, total);
            assert_eq!(links.self_url, url(u64::from(number)));
            assert_eq!(links.first, url(1));
            assert_eq!(links.prev, prev.map(url), "page {number} of {total}");
            assert_eq!(links.next, next.map(url), "page {number} of {total}");
            assert_eq!(links.last, url(last), "page {number} of {total}");
        }
    }

    #[test]
    fn a_trailing_slash_on_the_base_url_is_dropped() {
        let document = list_document(
            &ScanPage {
                scans: vec![scan()],
                ..ScanPage::default()
            },
            &ScanQuery::default(),
            "https://h/iac/v2/scans/",
            "",
        );
        assert_eq!(
            document.data[0].links.self_url,
            "https://h/iac/v2/scans/0190a5b2-7c3e-7def-8a12-3456789abcde"
        );
        assert!(document.links.first.starts_with("https://h/iac/v2/scans?"));
    }
}
