//! Reading request bodies into typed shapes with errors that carry a JSON pointer, and writing
//! documents as bytes.
//!
//! Invariants: the Content-Type is not looked at (clients send `application/vnd.api+json`,
//! `application/json`, octet-stream or nothing: the bytes decide); a UTF-8 byte-order mark is
//! skipped; unknown members are ignored, as upstream does; a member of the wrong type is an
//! [`BodyError::Invalid`] whose field is the member's JSON pointer (RFC 6901, `~` and `/`
//! escaped); serde's wording is cut to [`MAX_DETAIL_CHARS`] because it may quote the value.

use serde::Serialize;
use serde::de::DeserializeOwned;
use toolgate_model::InvalidValue;

use crate::BodyError;

/// Longest serde message kept in an error: serde quotes string values whole, and an error
/// must not become an echo of a large body.
pub const MAX_DETAIL_CHARS: usize = 200;

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// What [`to_bytes`] answers if serializing ever failed: our documents have string keys only,
/// so it cannot, but a handler must still get a valid JSON:API body.
const SERIALIZATION_FAILED: &[u8] = br#"{"errors":[{"status":"500","code":"internal","title":"Internal error","detail":"the response could not be serialized"}]}"#;

/// Deserializes `bytes` as `T`, reporting where a member has the wrong type.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let bytes = bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let pointer = pointer_of(error.path());
        let inner = error.into_inner();
        if inner.is_data() {
            BodyError::Invalid(InvalidValue::new(&pointer, cut(&inner.to_string())))
        } else {
            BodyError::NotJson {
                detail: cut(&inner.to_string()),
            }
        }
    })?;
    deserializer.end().map_err(|error| BodyError::NotJson {
        detail: cut(&error.to_string()),
    })?;
    Ok(value)
}

/// serde_path_to_error's path as an RFC 6901 JSON pointer (`""` for the whole document).
fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&escape(key)),
            Segment::Enum { variant } => pointer.push_str(&escape(variant)),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

/// Escapes one reference token of a JSON pointer.
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn cut(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_DETAIL_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

/// `value` as JSON bytes.
pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| SERIALIZATION_FAILED.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, serde::Deserialize)]
    struct Shape {
        #[allow(dead_code)]
        tags: Option<BTreeMap<String, String>>,
        #[allow(dead_code)]
        list: Option<Vec<u32>>,
    }

    #[test]
    fn type_errors_name_the_pointer() {
        let table = [
            (r#"{"tags":{"a/b~c":5}}"#, "/tags/a~1b~0c"),
            (r#"{"list":[1,"x"]}"#, "/list/1"),
            (r#"{"tags":[]}"#, "/tags"),
            ("[]", ""),
        ];
        for (body, pointer) in table {
            match parse::<Shape>(body.as_bytes()) {
                Err(BodyError::Invalid(invalid)) => assert_eq!(invalid.field, pointer, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn syntax_errors_and_trailing_bytes_are_not_json() {
        for body in ["", "{", "{} {}", "not json", "{\"tags\":}"] {
            assert!(
                matches!(
                    parse::<Shape>(body.as_bytes()),
                    Err(BodyError::NotJson { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_byte_order_mark_and_unknown_members_are_accepted() {
        let body = b"\xEF\xBB\xBF{\"other\":1,\"list\":[2]}";
        assert!(parse::<Shape>(body).is_ok());
    }

    #[test]
    fn long_serde_messages_are_cut() {
        let long = "x".repeat(10_000);
        let body = format!(r#"{{"list":["{long}"]}}"#);
        match parse::<Shape>(body.as_bytes()) {
            Err(BodyError::Invalid(invalid)) => {
                assert!(invalid.message.chars().count() <= MAX_DETAIL_CHARS + 3)
            }
            other => panic!("{other:?}"),
        }
    }
}
