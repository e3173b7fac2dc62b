//! JSON:API error documents (`{"errors":[...]}`) and the request-body error they are made from.
//!
//! Invariants: an error document has only `errors` (never `data` or `meta` beside it, which
//! JSON:API forbids and clients test for); each entry has `status` (the HTTP status as a string),
//! `code` (one of [`codes`]), `title` (fixed per code) and `detail` (names the field, the value
//! and what is allowed); `source` says where the bad value was: `pointer` for a body member,
//! `parameter` for a query parameter, `header` for a header.

use serde::Serialize;
use toolgate_model::InvalidValue;

/// Machine-readable `code`s of [`ApiError`]: stable strings clients may branch on.
pub mod codes {
    /// The body is not JSON, or not the JSON:API shape (a member of the wrong type).
    pub const INVALID_JSON: &str = "invalid_json";
    /// A body member has a value that is not allowed.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// A query parameter is unknown or has a value that is not allowed.
    pub const INVALID_PARAMETER: &str = "invalid_parameter";
    /// A header is missing or has a value that is not allowed.
    pub const INVALID_HEADER: &str = "invalid_header";
    /// `data.id` names another scan than the URL.
    pub const ID_MISMATCH: &str = "id_mismatch";
    /// No scan (or upload) with that id.
    pub const NOT_FOUND: &str = "not_found";
    /// The scan is not in a state that allows the call (initiate before upload, twice).
    pub const CONFLICT: &str = "conflict";
    /// An upload URL is expired, tampered with or used already.
    pub const FORBIDDEN: &str = "forbidden";
    /// A body or upload above its size limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The daemon failed; the detail says what, without paths or secrets.
    pub const INTERNAL: &str = "internal";
}

/// What was wrong with a request body (create or initiate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not parseable as JSON at all.
    #[error("the body is not a JSON document: {detail}")]
    NotJson { detail: String },
    /// A member is missing, of the wrong type, or not allowed; `field` is its JSON pointer.
    #[error("{0}")]
    Invalid(InvalidValue),
    /// `data.id` of an initiate body names another scan than the URL (JSON:API answers 409).
    #[error("/data/id: {given:?} is not the id of the scan in the URL ({expected})")]
    IdMismatch { given: String, expected: String },
}

/// Where in the request an error's value was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorSource {
    /// A JSON pointer into the request body, e.g. `/data/attributes/assetType`.
    Pointer(String),
    /// A query parameter's name, e.g. `filter[status]`.
    Parameter(String),
    /// A header's name.
    Header(String),
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// The HTTP status; written as a string, as JSON:API requires.
    #[serde(serialize_with = "status_as_string")]
    pub status: u16,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
}

fn status_as_string<S: serde::Serializer>(status: &u16, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(status)
}

impl ApiError {
    /// An error with no `source`.
    pub fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            source: None,
        }
    }

    /// The same error, saying where the bad value was.
    pub fn with_source(mut self, source: ErrorSource) -> Self {
        self.source = Some(source);
        self
    }

    /// 400 (409 for an id mismatch) for a create or initiate body, pointing at the member.
    pub fn invalid_body(error: &BodyError) -> Self {
        match error {
            BodyError::NotJson { .. } => Self::new(
                400,
                codes::INVALID_JSON,
                "The body is not a JSON document",
                error.to_string(),
            )
            .with_source(ErrorSource::Pointer(String::new())),
            BodyError::Invalid(invalid) => Self::invalid_member(invalid),
            BodyError::IdMismatch { .. } => Self::new(
                409,
                codes::ID_MISMATCH,
                "The body names another scan",
                error.to_string(),
            )
            .with_source(ErrorSource::Pointer("/data/id".to_string())),
        }
    }

    /// 400 for a body member; `invalid.field` is its JSON pointer.
    pub fn invalid_member(invalid: &InvalidValue) -> Self {
        Self::new(
            400,
            codes::INVALID_VALUE,
            "Invalid value in the request body",
            invalid.to_string(),
        )
        .with_source(ErrorSource::Pointer(invalid.field.clone()))
    }

    /// 400 for a query parameter; `invalid.field` is the parameter's name.
    pub fn invalid_parameter(invalid: &InvalidValue) -> Self {
        Self::new(
            400,
            codes::INVALID_PARAMETER,
            "Invalid query parameter",
            invalid.to_string(),
        )
        .with_source(ErrorSource::Parameter(invalid.field.clone()))
    }

    /// 400 for a header.
    pub fn invalid_header(header: &str, detail: impl Into<String>) -> Self {
        Self::new(400, codes::INVALID_HEADER, "Invalid header", detail)
            .with_source(ErrorSource::Header(header.to_string()))
    }

    /// 404 for an unknown scan (or other resource named by `what`).
    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            404,
            codes::NOT_FOUND,
            "Not found",
            format!("no {what} with id {:?}", toolgate_model::echo(id)),
        )
    }

    /// 409: the scan's state does not allow the call; `detail` says what state and what to do.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(
            409,
            codes::CONFLICT,
            "Conflict with the scan's state",
            detail,
        )
    }

    /// 403: an upload URL that is expired, tampered with or used.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, codes::FORBIDDEN, "Forbidden", detail)
    }

    /// 413: a body or upload above its limit.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, codes::PAYLOAD_TOO_LARGE, "Payload too large", detail)
    }

    /// 500: the daemon failed; `detail` must not leak paths or secrets.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, codes::INTERNAL, "Internal error", detail)
    }
}

/// A JSON:API error document: `{"errors":[...]}` and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDocument {
    pub errors: Vec<ApiError>,
}

impl ErrorDocument {
    /// The HTTP status to answer with: the first error's (documents here hold errors of one
    /// status; JSON:API asks for the most generally applicable one).
    pub fn status(&self) -> u16 {
        self.errors.first().map_or(500, |error| error.status)
    }

    /// The document as JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::json_body::to_bytes(self)
    }
}

impl From<ApiError> for ErrorDocument {
    fn from(error: ApiError) -> Self {
        Self {
            errors: vec![error],
        }
    }
}

impl From<&BodyError> for ErrorDocument {
    fn from(error: &BodyError) -> Self {
        ApiError::invalid_body(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(document: &ErrorDocument) -> serde_json::Value {
        serde_json::from_slice(&document.to_bytes()).expect("an error document is JSON")
    }

    #[test]
    fn a_body_error_points_at_the_member_and_names_value_and_choices() {
        let invalid = toolgate_model::AssetType::parse("/data/attributes/assetType", "Gitea")
            .expect_err("not an asset type");
        let document = ErrorDocument::from(&BodyError::Invalid(invalid));
        let value = render(&document);
        assert_eq!(document.status(), 400);
        assert_eq!(value["errors"][0]["status"], json!("400"));
        assert_eq!(value["errors"][0]["code"], json!("invalid_value"));
        assert_eq!(
            value["errors"][0]["source"],
            json!({"pointer": "/data/attributes/assetType"})
        );
        let detail = value["errors"][0]["detail"].as_str().expect("detail");
        assert!(detail.contains("\"Gitea\""), "{detail}");
        assert!(detail.contains("IaC-API"), "{detail}");
        assert!(value.get("data").is_none());
    }

    #[test]
    fn documents_have_exact_shapes() {
        let table = [
            (
                ErrorDocument::from(ApiError::not_found("scan", "nope")),
                json!({"errors": [{"status": "404", "code": "not_found", "title": "Not found",
                    "detail": "no scan with id \"nope\""}]}),
            ),
            (
                ErrorDocument::from(ApiError::invalid_parameter(&InvalidValue::new(
                    "filter[user]",
                    "is empty",
                ))),
                json!({"errors": [{"status": "400", "code": "invalid_parameter",
                    "title": "Invalid query parameter", "detail": "filter[user]: is empty",
                    "source": {"parameter": "filter[user]"}}]}),
            ),
            (
                ErrorDocument::from(&BodyError::IdMismatch {
                    given: "a".to_string(),
                    expected: "b".to_string(),
                }),
                json!({"errors": [{"status": "409", "code": "id_mismatch",
                    "title": "The body names another scan",
                    "detail": "/data/id: \"a\" is not the id of the scan in the URL (b)",
                    "source": {"pointer": "/data/id"}}]}),
            ),
            (
                ErrorDocument::from(ApiError::invalid_header("content-type", "not JSON")),
                json!({"errors": [{"status": "400", "code": "invalid_header",
                    "title": "Invalid header", "detail": "not JSON",
                    "source": {"header": "content-type"}}]}),
            ),
        ];
        for (document, expected) in table {
            assert_eq!(render(&document), expected);
        }
    }

    #[test]
    fn statuses_follow_the_constructor() {
        let table = [
            (ApiError::conflict("x"), 409),
            (ApiError::forbidden("x"), 403),
            (ApiError::payload_too_large("x"), 413),
            (ApiError::internal("x"), 500),
        ];
        for (error, status) in table {
            assert_eq!(ErrorDocument::from(error).status(), status);
        }
        assert_eq!(ErrorDocument { errors: vec![] }.status(), 500);
    }
}
