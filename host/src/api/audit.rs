//! `GET /api/audit`: the audit trail, for admin tenants (issue #16).
//!
//! Invariants: only a caller whose tenant has `role = "admin"` gets an answer; anyone else gets
//! the same 404 as an unknown path, so the endpoint's existence tells a user tenant nothing;
//! pages are bounded ([`MAX_PAGE`]) and ordered by record id, with a cursor (`after`), so a
//! reader walks the whole trail without offsets; every read is itself recorded.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use toolgate_auth::audit::{Action, SealedRecord};
use toolgate_store::{AuditFilter, MAX_AUDIT_PAGE};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
use super::{ApiError, AppState, ErrorBody};
use crate::audit::AuditEvent;

/// Records per page when the caller asks for none.
const DEFAULT_PAGE: usize = 100;

/// Most records per page: the store's own cap.
const MAX_PAGE: usize = MAX_AUDIT_PAGE;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read_audit))
}

/// `GET /api/audit` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this tenant's records.
    tenant: Option<String>,
    /// Only this action (`run`, `cancel`, `terminate`, `login`, `extend_token`, `upload`,
    /// `initiate`, `create_scan`, `read_results`, `read_audit`).
    action: Option<String>,
    /// Only records at or after this RFC 3339 time.
    since: Option<String>,
    /// Only records at or before this RFC 3339 time.
    until: Option<String>,
    /// Only records after this id (the previous page's `next_after`).
    after: Option<u64>,
    /// Records per page (1 to 1000, default 100).
    limit: Option<usize>,
}

/// A page of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records, oldest first, each with its chain hash.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<SealedRecord>,
    /// The cursor for the next page (`after`); absent on the last page.
    pub next_after: Option<u64>,
}

/// An RFC 3339 bound as the store compares it (UTC, microseconds).
fn time_bound(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(&text)
                .map(|time| {
                    time.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                })
                .map_err(|_| {
                    ApiError::BadQuery(format!(
                        "{name} {:?} is not an RFC 3339 time (e.g. 2026-12-06T05:00:00Z)",
                        text.chars().take(64).collect::<String>()
                    ))
                })
        })
        .transpose()
}

#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of the audit trail (admin tenants only)", body = AuditPage),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 404, description = "Not an admin tenant", body = ErrorBody)))]
async fn read_audit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::NotFound(
            "no such endpoint; see /openapi.json".into(),
        ));
    }
    let Query(query) = query.map_err(|rejection| {
        ApiError::BadQuery(format!(
            "{}; allowed: tenant, action, since, until, after, limit (1..={MAX_PAGE})",
            rejection.body_text()
        ))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadQuery(format!(
            "limit {limit} is out of range; allowed: 1..={MAX_PAGE}"
        )));
    }
    if let Some(action) = &query.action {
        action
            .parse::<Action>()
            .map_err(|error| ApiError::BadQuery(error.to_string()))?;
    }
    let filter = AuditFilter {
        tenant: query.tenant,
        action: query.action,
        since: time_bound("since", query.since)?,
        until: time_bound("until", query.until)?,
        after_id: query.after.unwrap_or(0),
        limit,
    };
    let records = state.audit.page(filter).await.map_err(|error| {
        tracing::error!(%error, "cannot read the audit trail");
        ApiError::Store(toolgate_store::StoreError::Corrupt(error.to_string()))
    })?;
    let next_after = (records.len() == limit)
        .then(|| records.last().map(|sealed| sealed.record.id))
        .flatten();
    let event = AuditEvent::allowed(Action::ReadAudit, format!("{} records", records.len()));
    state.audit.record(&caller, event).await;
    Ok(Json(AuditPage {
        records,
        next_after,
    }))
}
