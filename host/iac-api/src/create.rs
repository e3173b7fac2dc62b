//! `POST /iac/v2/scans`: the create-scan document in, [`ScanSpec`] out; the 201 document back.
//!
//! Invariants: `data.type` is `async-scan` (upstream refuses anything else); `assetName` and
//! `assetType` are required; names, tags and attributes hold no control characters (they reach
//! CSV cells and logs) and stay within the limits below; `failureCriteria`, when present, has
//! all four members (a partial one would silently mix caller and default thresholds), and is
//! upstream's default (1, 1, 1, or) when absent; unknown members are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toolgate_model::{AssetType, FailureCriteria, InvalidValue, Operator, Scan, ScanSpec, echo};

use crate::json_body::{escape, parse};
use crate::{BodyError, SCAN_TYPE};

/// Upstream's limit on `assetName`.
pub const MAX_ASSET_NAME_CHARS: usize = 255;
/// Upstream's limit on each tag name and value.
pub const MAX_TAG_CHARS: usize = 255;
/// Most tags on one scan: ample for CI metadata, and bounds what every list filter compares.
pub const MAX_TAGS: usize = 64;
/// Most `scanAttributes` entries: they are stored and returned, never searched.
pub const MAX_SCAN_ATTRIBUTES: usize = 64;
/// Longest `scanAttributes` name or value (build URLs and commit messages fit).
pub const MAX_SCAN_ATTRIBUTE_CHARS: usize = 1024;

#[derive(Deserialize)]
#[serde(
    expecting = "a JSON:API document such as {\"data\":{\"type\":\"async-scan\",\"attributes\":{...}}}"
)]
struct Document {
    data: Option<Resource>,
}

#[derive(Deserialize)]
#[serde(expecting = "a resource object with type and attributes")]
struct Resource {
    #[serde(rename = "type")]
    kind: Option<String>,
    attributes: Option<Attributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(expecting = "an object of attributes (assetName, assetType, ...)")]
struct Attributes {
    asset_name: Option<String>,
    asset_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    scan_attributes: Option<BTreeMap<String, String>>,
    failure_criteria: Option<Criteria>,
}

#[derive(Deserialize)]
#[serde(expecting = "an object with high, medium, low and operator")]
struct Criteria {
    high: Option<u32>,
    medium: Option<u32>,
    low: Option<u32>,
    operator: Option<String>,
}

const ATTRIBUTES: &str = "/data/attributes";

/// Parses a create-scan body (any Content-Type; the bytes must be JSON).
pub fn parse_create(body: &[u8]) -> Result<ScanSpec, BodyError> {
    let document: Document = parse(body)?;
    let resource = document
        .data
        .ok_or_else(|| missing("/data", "an object with type \"async-scan\" and attributes"))?;
    match resource.kind.as_deref() {
        Some(SCAN_TYPE) => {}
        Some(other) => {
            return Err(BodyError::Invalid(InvalidValue::not_allowed(
                "/data/type",
                other,
                &[SCAN_TYPE],
            )));
        }
        None => return Err(missing("/data/type", "\"async-scan\"")),
    }
    let attributes = resource
        .attributes
        .ok_or_else(|| missing(ATTRIBUTES, "an object with assetName and assetType"))?;

    let asset_name_pointer = format!("{ATTRIBUTES}/assetName");
    let asset_name = attributes
        .asset_name
        .ok_or_else(|| missing(&asset_name_pointer, "a name of 1 to 255 characters"))?;
    check_text(&asset_name_pointer, &asset_name, MAX_ASSET_NAME_CHARS)?;

    let asset_type_pointer = format!("{ATTRIBUTES}/assetType");
    let asset_type_text = attributes
        .asset_type
        .ok_or_else(|| missing(&asset_type_pointer, "e.g. \"IaC-API\""))?;
    let asset_type =
        AssetType::parse(&asset_type_pointer, &asset_type_text).map_err(BodyError::Invalid)?;

    let tags = check_map(
        &format!("{ATTRIBUTES}/tags"),
        attributes.tags.unwrap_or_default(),
        MAX_TAGS,
        MAX_TAG_CHARS,
    )?;
    let scan_attributes = check_map(
        &format!("{ATTRIBUTES}/scanAttributes"),
        attributes.scan_attributes.unwrap_or_default(),
        MAX_SCAN_ATTRIBUTES,
        MAX_SCAN_ATTRIBUTE_CHARS,
    )?;
    let failure_criteria = match attributes.failure_criteria {
        Some(criteria) => check_criteria(criteria)?,
        None => FailureCriteria::default(),
    };
    Ok(ScanSpec {
        asset_name,
        asset_type,
        tags,
        scan_attributes,
        failure_criteria,
    })
}

fn missing(pointer: &str, expected: &str) -> BodyError {
    BodyError::Invalid(InvalidValue::new(
        pointer,
        format!("is missing; expected {expected}"),
    ))
}

/// Non-empty, at most `max_chars` characters, no control characters.
pub(crate) fn check_text(pointer: &str, text: &str, max_chars: usize) -> Result<(), BodyError> {
    let refuse = |why: String| Err(BodyError::Invalid(InvalidValue::new(pointer, why)));
    if text.is_empty() {
        return refuse(format!("is empty; allowed: 1 to {max_chars} characters"));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return refuse(format!(
            "{:?} has {chars} characters; allowed: at most {max_chars}",
            echo(text)
        ));
    }
    if text.chars().any(char::is_control) {
        return refuse(format!(
            "{:?} contains a control character; allowed: printable text",
            echo(text)
        ));
    }
    Ok(())
}

fn check_map(
    pointer: &str,
    map: BTreeMap<String, String>,
    max_entries: usize,
    max_chars: usize,
) -> Result<BTreeMap<String, String>, BodyError> {
    if map.len() > max_entries {
        return Err(BodyError::Invalid(InvalidValue::new(
            pointer,
            format!("has {} entries; allowed: at most {max_entries}", map.len()),
        )));
    }
    for (name, value) in &map {
        let member = format!("{pointer}/{}", escape(name));
        check_text(&member, name, max_chars)?;
        check_text(&member, value, max_chars)?;
    }
    Ok(map)
}

fn check_criteria(criteria: Criteria) -> Result<FailureCriteria, BodyError> {
    let base = format!("{ATTRIBUTES}/failureCriteria");
    let threshold = |name: &str, value: Option<u32>| {
        value.ok_or_else(|| {
            missing(
                &format!("{base}/{name}"),
                "a count (0 or more); failureCriteria needs high, medium, low and operator together",
            )
        })
    };
    let high = threshold("high", criteria.high)?;
    let medium = threshold("medium", criteria.medium)?;
    let low = threshold("low", criteria.low)?;
    let operator_pointer = format!("{base}/operator");
    let operator_text = criteria.operator.ok_or_else(|| {
        missing(
            &operator_pointer,
            "\"and\" or \"or\"; failureCriteria needs high, medium, low and operator together",
        )
    })?;
    let operator =
        Operator::parse(&operator_pointer, &operator_text).map_err(BodyError::Invalid)?;
    Ok(FailureCriteria {
        high,
        medium,
        low,
        operator,
    })
}

/// The 201 body: `data.id` and `data.links.url` (what clients read), plus the scan's type and
/// attributes as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateDocument {
    pub data: CreatedScan,
}

/// The created scan resource: `id`, `type`, `attributes`, `links.url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedScan {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub attributes: CreatedAttributes,
    pub links: UploadLinks,
}

/// The scan as created (what the caller sent, checked and defaulted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedAttributes {
    pub asset_name: String,
    pub asset_type: AssetType,
    pub tags: BTreeMap<String, String>,
    pub scan_attributes: BTreeMap<String, String>,
    pub failure_criteria: FailureCriteria,
    /// Extension: the scan's state (`awaiting_upload` right after create).
    pub state: &'static str,
}

/// `data.links` of a created scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadLinks {
    /// The absolute, signed, single-use upload URL (`PUT` one file there).
    pub url: String,
}

/// The 201 body for a created `scan` whose upload URL is `upload_url`.
pub fn create_document(scan: &Scan, upload_url: &str) -> CreateDocument {
    CreateDocument {
        data: CreatedScan {
            id: scan.id.to_string(),
            kind: SCAN_TYPE,
            attributes: CreatedAttributes {
                asset_name: scan.asset_name.clone(),
                asset_type: scan.asset_type,
                tags: scan.tags.clone(),
                scan_attributes: scan.scan_attributes.clone(),
                failure_criteria: scan.failure_criteria,
                state: scan.state.as_str(),
            },
            links: UploadLinks {
                url: upload_url.to_string(),
            },
        },
    }
}

impl CreateDocument {
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

    fn invalid_pointer(body: &str) -> String {
        match parse_create(body.as_bytes()) {
            Err(BodyError::Invalid(invalid)) => invalid.field,
            other => panic!("{body}: expected an invalid member, got {other:?}"),
        }
    }

    #[test]
    fn the_upstream_example_parses() {
        let body = r#"{"data":{"type":"async-scan","attributes":{
            "assetName":"my-asset","assetType":"IaC-API",
            "tags":{"env":"dev"},"scanAttributes":{"projectName":"p","buildNumber":"7"},
            "failureCriteria":{"high":1,"medium":10,"low":30,"operator":"or"}}}}"#;
        let new_scan = parse_create(body.as_bytes()).expect("upstream's example");
        assert_eq!(new_scan.asset_name, "my-asset");
        assert_eq!(new_scan.asset_type, AssetType::IacApi);
        assert_eq!(new_scan.tags.get("env").map(String::as_str), Some("dev"));
        assert_eq!(new_scan.scan_attributes.len(), 2);
        assert_eq!(
            new_scan.failure_criteria,
            FailureCriteria {
                high: 1,
                medium: 10,
                low: 30,
                operator: Operator::Or
            }
        );
    }

    #[test]
    fn allowed_bodies_table() {
        let allowed = [
            // Minimal: criteria default as upstream, no tags.
            r#"{"data":{"type":"async-scan","attributes":{"assetName":"a","assetType":"GitHub"}}}"#,
            // Unknown members anywhere are ignored.
            r#"{"jsonapi":{"version":"1.0"},"data":{"type":"async-scan","id":"x","extra":1,
                "attributes":{"assetName":"a","assetType":"github","other":[1]}}}"#,
            // A byte-order mark before the document.
            "\u{feff}{\"data\":{\"type\":\"async-scan\",\"attributes\":{\"assetName\":\"a\",\"assetType\":\"twistcli\"}}}",
        ];
        for body in allowed {
            let new_scan = parse_create(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(new_scan.failure_criteria, FailureCriteria::default());
        }
        let longest = "n".repeat(MAX_ASSET_NAME_CHARS);
        let body = format!(
            r#"{{"data":{{"type":"async-scan","attributes":{{"assetName":"{longest}","assetType":"IaC-API"}}}}}}"#
        );
        assert!(parse_create(body.as_bytes()).is_ok());
    }

    #[test]
    fn denied_bodies_name_the_pointer() {
        let too_long = "n".repeat(MAX_ASSET_NAME_CHARS + 1);
        let long_tag = "v".repeat(MAX_TAG_CHARS + 1);
        let attrs = |inner: &str| {
            format!(
                r#"{{"data":{{"type":"async-scan","attributes":{{"assetName":"a","assetType":"IaC-API",{inner}}}}}}}"#
            )
        };
        let table = [
            (r#"{}"#.to_string(), "/data"),
            (r#"{"data":null}"#.to_string(), "/data"),
            (r#"{"data":{"attributes":{}}}"#.to_string(), "/data/type"),
            (r#"{"data":{"type":"scan","attributes":{}}}"#.to_string(), "/data/type"),
            (r#"{"data":{"type":"async-scan"}}"#.to_string(), "/data/attributes"),
            (
                r#"{"data":{"type":"async-scan","attributes":{"assetType":"IaC-API"}}}"#.to_string(),
                "/data/attributes/assetName",
            ),
            (
                format!(r#"{{"data":{{"type":"async-scan","attributes":{{"assetName":"{too_long}","assetType":"IaC-API"}}}}}}"#),
                "/data/attributes/assetName",
            ),
            (
                r#"{"data":{"type":"async-scan","attributes":{"assetName":"","assetType":"IaC-API"}}}"#.to_string(),
                "/data/attributes/assetName",
            ),
            (
                r#"{"data":{"type":"async-scan","attributes":{"assetName":"a\nb","assetType":"IaC-API"}}}"#.to_string(),
                "/data/attributes/assetName",
            ),
            (
                r#"{"data":{"type":"async-scan","attributes":{"assetName":5,"assetType":"IaC-API"}}}"#.to_string(),
                "/data/attributes/assetName",
            ),
            (
                r#"{"data":{"type":"async-scan","attributes":{"assetName":"a"}}}"#.to_string(),
                "/data/attributes/assetType",
            ),
            (
                r#"{"data":{"type":"async-scan","attributes":{"assetName":"a","assetType":"Gitea"}}}"#.to_string(),
                "/data/attributes/assetType",
            ),
            (attrs(r#""tags":{"env":5}"#), "/data/attributes/tags/env"),
            (attrs(r#""tags":["env"]"#), "/data/attributes/tags"),
            (attrs(&format!(r#""tags":{{"env":"{long_tag}"}}"#)), "/data/attributes/tags/env"),
            (attrs(r#""tags":{"a/b":""}"#), "/data/attributes/tags/a~1b"),
            (attrs(r#""scanAttributes":{"k":true}"#), "/data/attributes/scanAttributes/k"),
            (
                attrs(r#""failureCriteria":{"high":1,"medium":1,"low":1}"#),
                "/data/attributes/failureCriteria/operator",
            ),
            (
                attrs(r#""failureCriteria":{"medium":1,"low":1,"operator":"or"}"#),
                "/data/attributes/failureCriteria/high",
            ),
            (
                attrs(r#""failureCriteria":{"high":1,"medium":1,"low":1,"operator":"xor"}"#),
                "/data/attributes/failureCriteria/operator",
            ),
            (
                attrs(r#""failureCriteria":{"high":-1,"medium":1,"low":1,"operator":"or"}"#),
                "/data/attributes/failureCriteria/high",
            ),
        ];
        for (body, pointer) in table {
            assert_eq!(invalid_pointer(&body), pointer, "{body}");
        }
        let many_tags: BTreeMap<String, String> = (0..=MAX_TAGS)
            .map(|index| (format!("t{index}"), "v".to_string()))
            .collect();
        let body = attrs(&format!(r#""tags":{}"#, json!(many_tags)));
        assert_eq!(invalid_pointer(&body), "/data/attributes/tags");
    }

    #[test]
    fn refusals_name_the_value_and_what_is_allowed() {
        let body = r#"{"data":{"type":"scan","attributes":{}}}"#;
        match parse_create(body.as_bytes()) {
            Err(BodyError::Invalid(invalid)) => {
                assert!(invalid.message.contains("\"scan\""), "{}", invalid.message);
                assert!(
                    invalid.message.contains("async-scan"),
                    "{}",
                    invalid.message
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_create(b"not json"),
            Err(BodyError::NotJson { .. })
        ));
        match parse_create(b"[]") {
            Err(BodyError::Invalid(invalid)) => {
                assert_eq!(invalid.field, "");
                assert!(
                    invalid.message.contains("JSON:API document"),
                    "{}",
                    invalid.message
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_created_document_has_the_exact_shape() {
        let scan = scan();
        let document = create_document(&scan, "https://toolgate.example/iac/v2/uploads/x?sig=y");
        let value: serde_json::Value = serde_json::from_slice(&document.to_bytes()).expect("JSON");
        assert_eq!(
            value,
            json!({"data": {
                "id": "0190a5b2-7c3e-7def-8a12-3456789abcde",
                "type": "async-scan",
                "attributes": {
                    "assetName": "my-asset", "assetType": "IaC-API",
                    "tags": {"env": "dev"}, "scanAttributes": {"buildNumber": "7"},
                    "failureCriteria": {"high": 1, "medium": 1, "low": 1, "operator": "or"},
                    "state": "awaiting_upload"
                },
                "links": {"url": "https://toolgate.example/iac/v2/uploads/x?sig=y"}
            }})
        );
    }
}
