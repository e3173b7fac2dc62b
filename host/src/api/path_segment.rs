//! The path-parameter extractor every route with a `{param}` uses, so that a segment axum cannot
//! decode (percent-encoded bytes that are not UTF-8) is refused with the API's JSON error, like
//! every other refusal, instead of axum's plain-text one.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::ApiError;

/// A route's one path parameter, percent-decoded.
pub struct PathSegment(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathSegment {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(segment)| Self(segment))
            .map_err(|rejection| ApiError::BadPath(rejection.body_text()))
    }
}
