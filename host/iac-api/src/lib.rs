//! The Prisma Cloud IaC Scan API V2 (JSON:API) as views of toolgate's domain model
//! (`toolgate-model`): pure functions from request bytes and query strings to model values, and
//! from model values to response documents (serde types, SARIF 2.1.0, CSV).
//!
//! Invariants: no HTTP framework and no I/O here (handlers own status lines, headers and bodies
//! on the wire); every request parser returns either a checked model value or an error that
//! names where the bad value is (a JSON pointer such as `/data/attributes/assetType`, or a query
//! parameter such as `filter[status]`), the value (cut to [`toolgate_model::ECHO_MAX_CHARS`]) and
//! what is allowed; every error becomes a JSON:API `errors[]` document that never has `data`
//! beside it; numbers clients read with `jq` (`matchedPoliciesSummary.high|medium|low`) are always
//! present, and `data` of results and lists is always an array.
//!
//! Map of the crate, by endpoint:
//! - `POST /iac/v2/scans`: [`create::parse_create`] -> [`toolgate_model::ScanSpec`];
//!   [`create::create_document`] for the 201 body.
//! - `POST /iac/v2/scans/{id}`: [`initiate::parse_initiate`] -> [`initiate::InitiateRequest`]
//!   (its [`initiate::InitiateRequest::into_scan_request`] fills the default tool); the 200 body
//!   is empty.
//! - `GET .../status`: [`status::status_document`].
//! - `GET .../results`: [`results::results_document`]; `GET .../results/sarif`:
//!   [`sarif::sarif_log`].
//! - `GET /iac/v2/scans`: [`query::parse_list_query`] -> [`toolgate_model::ScanQuery`];
//!   [`list::list_document`] renders the store's [`toolgate_model::ScanPage`].
//! - `GET /iac/v2/scans/export`: [`query::parse_export_query`]; [`export::CsvExport`].
//! - Errors: [`error::ErrorDocument`].
#![forbid(unsafe_code)]

pub mod create;
pub mod error;
pub mod export;
pub mod initiate;
mod json_body;
pub mod list;
pub mod query;
pub mod results;
pub mod sarif;
pub mod status;
mod summary;
#[cfg(test)]
mod test_support;
mod time_filter;

pub use error::{ApiError, BodyError, ErrorDocument, ErrorSource};
pub use summary::MatchedPoliciesSummary;

/// The JSON:API resource type of a scan, as upstream names it (and requires on create).
pub const SCAN_TYPE: &str = "async-scan";

/// The media type of every JSON:API document here (`application/json` is accepted too).
pub const JSON_API_MEDIA_TYPE: &str = "application/vnd.api+json";
