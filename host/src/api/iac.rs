//! The asynchronous IaC scan API (`/iac/v2`, the Prisma Cloud IaC Scan API V2): create a scan,
//! upload its file to a signed URL, initiate, poll, read results as JSON:API, SARIF or CSV.
//!
//! Invariants: handlers reach the engine only through [`ScanService`]'s operations and render
//! only through `toolgate_iac_api`'s views (this module is glue: HTTP in, model, HTTP out);
//! every error is a JSON:API `errors[]` document, never beside `data`; an upload is streamed to
//! a file of its own attempt (`upload-<nonce>`) and extracted into a tree of its own
//! (`tree-<nonce>`), renamed into place only once the store consumed the URL's nonce, so a
//! refused, interrupted or losing concurrent upload leaves nothing of itself behind; the raw
//! upload is deleted once extracted.

use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use toolgate_iac_api::error::{ApiError as IacApiError, ErrorDocument};
use toolgate_iac_api::{create, export, initiate, list, query, results, sarif, status};
use toolgate_model::{NewScan, Scan, ScanId, ScanState, UploadInfo};
use toolgate_store::Refused;
use toolgate_uploads::{ExtractError, UploadError, UrlError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use crate::audit::AuditEvent;
use axum::Extension;
use toolgate_auth::audit::Action;

/// The IaC scan API's settings, built once at start-up.
pub struct IacSettings {
    /// `scans.default_tool`; unset: the first installed tool that scans templates.
    pub default_tool: Option<String>,
    /// `scans.public_base_url`, or `http://<listen>`.
    pub public_base_url: String,
    /// `[uploads]`.
    pub uploads: toolgate_uploads::UploadLimits,
    /// Signs and checks upload URLs (key in `<data_dir>/secrets/upload-url.key`).
    pub signer: toolgate_uploads::UploadSigner,
}
use crate::scans::ScanError;
use crate::scans::placing::PlaceError;

/// Retry-After of a 429 for a tenant's full scan queue.
const QUEUE_RETRY_AFTER_SECS: u64 = 5;

/// JSON:API's media type, on every document this API answers.
const JSON_API: &str = "application/vnd.api+json";

/// Most scans one CSV export writes: an export walks the list page by page, and this bounds how
/// long one request can keep the store busy (10 pages of the largest size).
const EXPORT_MAX_SCANS: u64 = 100_000;

pub fn router() -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload))
        // Uploads have their own limit (`uploads.max_upload_bytes`), enforced while streaming.
        .layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(create_scan, list_scans))
        .routes(routes!(export_scans))
        .routes(routes!(initiate_scan))
        .routes(routes!(scan_status))
        .routes(routes!(scan_results))
        .routes(routes!(scan_sarif))
        .merge(uploads)
}

/// An answer of this API: a JSON:API document (or an empty 200, or SARIF, or CSV).
struct Document {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

impl IntoResponse for Document {
    fn into_response(self) -> Response {
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response()
    }
}

fn json_api(status: StatusCode, body: Vec<u8>) -> Document {
    Document {
        status,
        content_type: JSON_API,
        body,
    }
}

/// A failed call, rendered as a JSON:API error document.
struct Failure(ErrorDocument);

impl From<IacApiError> for Failure {
    fn from(error: IacApiError) -> Self {
        Failure(error.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = json_api(status, self.0.to_bytes()).into_response();
        // A full queue empties as scans start, and an unreachable store comes back: the caller
        // is told when to try again.
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(QUEUE_RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// A refused initiate attribute (`tool`, `templateParameters.files`): its JSON pointer is
/// under `/data/attributes`.
fn member_failure(invalid: &toolgate_model::InvalidValue) -> Failure {
    let pointer = format!("/data/attributes/{}", invalid.field.replace('.', "/"));
    let located = toolgate_model::InvalidValue::new(&pointer, invalid.message.clone());
    let mut error = IacApiError::invalid_member(&located);
    // The detail names the attribute as the caller wrote it, not as a pointer.
    error.detail = invalid.to_string();
    Failure(error.into())
}

/// A scan id from the path; a malformed one is an unknown scan (404), as upstream answers.
fn scan_id(raw: &str) -> Result<ScanId, Failure> {
    ScanId::parse(raw).map_err(|_| IacApiError::not_found("scan", raw).into())
}

fn scan_failure(error: ScanError) -> Failure {
    match error {
        ScanError::Refused(refused) => match refused {
            Refused::UnknownScan(id) => IacApiError::not_found("scan", id.as_str()).into(),
            Refused::NonceReused => IacApiError::forbidden(refused.to_string()).into(),
            Refused::NotAwaitingUpload { .. } => {
                IacApiError::forbidden(format!("{refused}; this upload URL cannot be used again"))
                    .into()
            }
            Refused::TenantQueueFull { .. } => IacApiError::new(
                429,
                "too_many_queued_scans",
                "Too many queued scans",
                refused.to_string(),
            )
            .into(),
            Refused::NotUploaded { .. } | Refused::AlreadyInitiated { .. } => {
                IacApiError::conflict(refused.to_string()).into()
            }
            other => internal(&other),
        },
        ScanError::Store(error) if error.is_unavailable() => {
            tracing::warn!(%error, "the store cannot be reached");
            IacApiError::new(
                503,
                "store_unavailable",
                "Store unavailable",
                "the scan store (store.url) cannot be reached; nothing was lost, retry later",
            )
            .into()
        }
        other => internal(&other),
    }
}

/// A failure the caller cannot fix: logged in full, answered without internals.
fn internal(error: &dyn std::fmt::Display) -> Failure {
    tracing::error!(error = %error, "IaC scan API failure");
    IacApiError::internal("the daemon failed to handle this request; see its log").into()
}

/// The tool a scan runs when its request names none: `scans.default_tool`, else the first
/// installed tool that scans templates (empty when there is none, which the tool check refuses).
pub(crate) fn default_scan_tool(state: &AppState) -> String {
    state
        .iac
        .default_tool
        .clone()
        .or_else(|| state.jobs.default_scan_tool())
        .unwrap_or_default()
}

/// The base of absolute URLs this daemon hands out (`scans.public_base_url`).
fn public_base(state: &AppState) -> &str {
    state.iac.public_base_url.trim_end_matches('/')
}

#[utoipa::path(post, path = "/iac/v2/scans", tag = "iac",
    request_body(content = String, content_type = "application/vnd.api+json",
        description = "`{\"data\":{\"type\":\"async-scan\",\"attributes\":{\"assetName\",\"assetType\",\"tags\",\"scanAttributes\",\"failureCriteria\"}}}`"),
    responses((status = 201, description = "scan created: `data.id` and the signed upload URL `data.links.url`"),
              (status = 400, description = "a JSON:API error naming the member")))]
async fn create_scan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Document, Failure> {
    let spec = create::parse_create(&body).map_err(|error| Failure((&error).into()))?;
    let id = ScanId::parse(&uuid::Uuid::now_v7().to_string()).map_err(|e| internal(&e))?;
    let created_at = Utc::now();
    let scan = state
        .scans
        .create(NewScan {
            id: id.clone(),
            asset_name: spec.asset_name,
            asset_type: spec.asset_type,
            tags: spec.tags,
            scan_attributes: spec.scan_attributes,
            failure_criteria: spec.failure_criteria,
            user: caller
                .key_id
                .as_ref()
                .map_or_else(|| caller.owner().to_string(), ToString::to_string),
            tenant: caller.owner().to_string(),
            created_at,
        })
        .await
        .map_err(scan_failure)?;
    let nonce = toolgate_uploads::new_nonce().map_err(|e| internal(&e))?;
    let lifetime = i64::try_from(state.iac.uploads.url_lifetime_secs).unwrap_or(i64::MAX);
    let expires = created_at.timestamp().saturating_add(lifetime);
    let url = upload_url(&state, &scan, &nonce, expires);
    tracing::info!(scan = %id, asset = %scan.asset_name, "scan created");
    let event = AuditEvent::allowed(Action::CreateScan, format!("scan {id}"));
    state.audit.record(&caller, event).await;
    Ok(json_api(
        StatusCode::CREATED,
        create::create_document(&scan, &url).to_bytes(),
    ))
}

/// What an upload URL's signature covers: the owning tenant and the scan id, so a URL is bound
/// to its tenant's scan (a URL whose query is moved onto another scan's path never verifies).
fn upload_subject(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

/// The signed upload URL of `scan`: `{public_base}/iac/v2/uploads/{id}?expires&nonce&sig`.
fn upload_url(state: &AppState, scan: &Scan, nonce: &str, expires: i64) -> String {
    let query = state.iac.signer.sign(
        &upload_subject(&scan.tenant, scan.id.as_str()),
        nonce,
        expires,
    );
    // A ScanId is a canonical UUID: one path segment needing no encoding.
    format!(
        "{}{}{}?{query}",
        public_base(state),
        toolgate_uploads::UPLOAD_PATH_PREFIX,
        scan.id
    )
}

#[utoipa::path(put, path = "/iac/v2/uploads/{id}", tag = "iac",
    params(("id" = String, Path, description = "the scan id")),
    responses((status = 200, description = "stored and extracted; empty body"),
              (status = 400, description = "an archive toolgate refuses, naming the entry"),
              (status = 403, description = "expired, tampered or used URL"),
              (status = 404, description = "no such scan, or (with a credential) another tenant's"),
              (status = 413, description = "larger than `uploads.max_upload_bytes`")))]
async fn upload(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    UrlPath(raw_id): UrlPath<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Document, Failure> {
    let caller = caller.map(|Extension(caller)| caller);
    let (uploader, outcome) = upload_checked(&state, caller, &raw_id, query, body).await;
    if let Some(uploader) = uploader {
        let event = match &outcome {
            Ok(_) => AuditEvent::allowed(Action::Upload, format!("scan {raw_id}")),
            Err(failure) => AuditEvent::denied(
                Action::Upload,
                format!("scan {raw_id}: {}", failure.0.status()),
            ),
        };
        state.audit.record(&uploader, event).await;
    }
    outcome
}

/// The upload itself; also returns who uploaded (for the audit trail) once the URL verified:
/// the caller when one authenticated, else the scan's tenant (the URL is bound to it).
async fn upload_checked(
    state: &AppState,
    caller: Option<Caller>,
    raw_id: &str,
    query: Option<String>,
    body: Body,
) -> (Option<Caller>, Result<Document, Failure>) {
    let id = match scan_id(raw_id) {
        Ok(id) => id,
        Err(failure) => return (None, Err(failure)),
    };
    // The signature covers the scan's tenant; an unknown scan gets the same 403 as a forged
    // URL, so an unauthenticated caller learns nothing about which ids exist.
    let scan = match state.scans.scan_for_upload(id.clone()).await {
        Ok(scan) => Some(scan),
        Err(ScanError::Refused(Refused::UnknownScan(_))) => None,
        Err(error) => return (None, Err(scan_failure(error))),
    };
    let subject = upload_subject(
        scan.as_ref().map_or("", |scan| scan.tenant.as_str()),
        raw_id,
    );
    let verified = state.iac.signer.verify(
        &subject,
        query.as_deref().unwrap_or(""),
        Utc::now().timestamp(),
    );
    let (scan, grant) = match (scan, verified) {
        (Some(scan), Ok(grant)) => (scan, grant),
        (_, Err(error)) => return (caller, Err(url_failure(&error))),
        (None, Ok(_)) => return (caller, Err(IacApiError::not_found("scan", raw_id).into())),
    };
    // A caller that authenticated as another tenant is told the scan does not exist, as on
    // every other scan route.
    if let Some(caller) = &caller
        && caller.owner() != scan.tenant
    {
        return (
            Some(caller.clone()),
            Err(IacApiError::not_found("scan", raw_id).into()),
        );
    }
    let uploader = match caller {
        Some(caller) => caller,
        None => match Caller::of_tenant(&scan.tenant) {
            Ok(caller) => caller,
            Err(error) => return (None, Err(internal(&error))),
        },
    };
    let outcome = receive_upload(state, id, &scan, grant, body).await;
    (Some(uploader), outcome)
}

/// Streams, extracts and records the upload of `scan`, whose URL verified.
async fn receive_upload(
    state: &AppState,
    id: ScanId,
    scan: &Scan,
    grant: toolgate_uploads::UploadGrant,
    body: Body,
) -> Result<Document, Failure> {
    if scan.state != ScanState::AwaitingUpload {
        return Err(IacApiError::forbidden(
            "this upload URL was already used; create a new scan to upload again",
        )
        .into());
    }
    let folder = state.scans.folder(&id);
    tokio::fs::create_dir_all(&folder)
        .await
        .map_err(|e| internal(&format!("create {}: {e}", folder.display())))?;
    let upload_file = folder.join(format!("upload-{}", grant.nonce));
    let received = toolgate_uploads::receive(
        body.into_data_stream(),
        &upload_file,
        state.iac.uploads.max_upload_bytes,
    )
    .await
    .map_err(|error| receive_failure(&id, &error))?;
    let staged_tree = folder.join(format!("tree-{}", grant.nonce));
    let tree = state.scans.tree(&id);
    let limits = state.iac.uploads.extract.clone();
    let upload_path = received.path.clone();
    let placer = state.scans.placer();
    // One trip to the blocking pool for the whole of it; this URL's nonce (in both names) is
    // one upload's alone.
    let extracted = tokio::task::spawn_blocking(move || {
        let extracted = toolgate_uploads::extract(&upload_path, &staged_tree, &limits);
        // The raw upload is not kept: the tree is what is scanned.
        let _ = std::fs::remove_file(&upload_path);
        let extracted = extracted.map_err(Placing::Extract)?;
        placer
            .place_durably(&staged_tree, &tree)
            .map_err(Placing::Place)?;
        Ok(extracted)
    })
    .await
    .map_err(|e| internal(&e))?
    .map_err(|error| match error {
        Placing::Extract(error) => extract_failure(&id, &error),
        Placing::Place(error) => internal(&error),
    })?;
    let info = UploadInfo {
        bytes: received.size,
        sha256: received.sha256,
        files: extracted.files,
        uploaded_at: Utc::now(),
    };
    state
        .scans
        .record_placed_upload(id.clone(), grant.nonce.clone(), info)
        .await
        .map_err(scan_failure)?;
    tracing::info!(
        scan = %id,
        bytes = received.size,
        files = extracted.files,
        single_file = extracted.single_file,
        "scan upload extracted"
    );
    Ok(json_api(StatusCode::OK, Vec::new()))
}

/// Why an extracted upload did not reach its place.
enum Placing {
    Extract(ExtractError),
    Place(PlaceError),
}

fn url_failure(error: &UrlError) -> Failure {
    IacApiError::forbidden(format!(
        "{error}; ask for a new upload URL by creating a scan"
    ))
    .into()
}

fn receive_failure(id: &ScanId, error: &UploadError) -> Failure {
    tracing::warn!(scan = %id, error = %error, "scan upload not received");
    match error {
        UploadError::TooLarge { .. } => IacApiError::payload_too_large(error.to_string()).into(),
        UploadError::Stream { .. } => IacApiError::new(
            400,
            "upload_interrupted",
            "Upload interrupted",
            error.to_string(),
        )
        .into(),
        UploadError::Io { .. } => internal(error),
    }
}

fn extract_failure(id: &ScanId, error: &ExtractError) -> Failure {
    tracing::warn!(scan = %id, error = %error, "scan upload refused");
    if matches!(
        error,
        ExtractError::Io { .. } | ExtractError::DestinationExists { .. }
    ) {
        return internal(error);
    }
    IacApiError::new(400, "invalid_upload", "Upload refused", error.to_string()).into()
}

#[utoipa::path(post, path = "/iac/v2/scans/{id}", tag = "iac",
    params(("id" = String, Path, description = "the scan id")),
    request_body(content = String, content_type = "application/vnd.api+json",
        description = "`{\"data\":{\"id\",\"attributes\":{\"templateType\",\"templateVersion\",\"templateParameters\",\"tool\"}}}`"),
    responses((status = 200, description = "queued; EMPTY body"),
              (status = 400, description = "a JSON:API error naming the member"),
              (status = 409, description = "not uploaded yet, or already initiated")))]
async fn initiate_scan(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(raw_id): UrlPath<String>,
    body: Bytes,
) -> Result<Document, Failure> {
    let outcome = initiate_checked(&state, &caller, &raw_id, body).await;
    let event = match &outcome {
        Ok(tool) => {
            AuditEvent::allowed(Action::Initiate, format!("scan {raw_id} queued")).tool(tool)
        }
        Err(failure) => AuditEvent::denied(
            Action::Initiate,
            format!("scan {raw_id}: {}", failure.0.status()),
        ),
    };
    state.audit.record(&caller, event).await;
    outcome.map(|_| json_api(StatusCode::OK, Vec::new()))
}

/// Checks and queues the scan; returns the tool it will run.
async fn initiate_checked(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    body: Bytes,
) -> Result<String, Failure> {
    let id = scan_id(raw_id)?;
    let requested = initiate::parse_initiate(&body, &id).map_err(|e| Failure((&e).into()))?;
    let default_tool = default_scan_tool(state);
    let request = requested.into_scan_request(&default_tool);
    let scan = state
        .scans
        .status(id.clone(), caller.owner())
        .await
        .map_err(scan_failure)?;
    if scan.state == ScanState::Uploaded {
        state
            .jobs
            .check_scan_tool(&request)
            .map_err(|invalid| member_failure(&invalid))?;
        check_paths_exist(&state.scans.tree(&id), &request).await?;
        name_single_template(&state.scans.tree(&id), &scan, &request).await?;
    }
    let tool = request.tool.clone();
    state
        .scans
        .initiate(id.clone(), request, caller.owner())
        .await
        .map_err(scan_failure)?;
    tracing::info!(scan = %id, "scan initiated");
    Ok(tool)
}

#[utoipa::path(get, path = "/iac/v2/scans/{id}/status", tag = "iac",
    params(("id" = String, Path, description = "the scan id")),
    responses((status = 200, description = "`data.attributes.status`: processing, passed, failed or error")))]
async fn scan_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(raw_id): UrlPath<String>,
) -> Result<Document, Failure> {
    let scan = state
        .scans
        .status(scan_id(&raw_id)?, caller.owner())
        .await
        .map_err(scan_failure)?;
    Ok(json_api(
        StatusCode::OK,
        status::status_document(&scan).to_bytes(),
    ))
}

/// One of `caller`'s finished scans with its findings; 409 while it is processing. Every read,
/// answered or refused, leaves one audit record (`what`: results or sarif).
async fn finished(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    what: &str,
) -> Result<(Scan, Vec<toolgate_model::Finding>), Failure> {
    let outcome = finished_checked(state, caller, raw_id).await;
    let event = match &outcome {
        Ok((scan, findings)) => AuditEvent::allowed(
            Action::ReadResults,
            format!("scan {raw_id} {what}: {} finding(s)", findings.len()),
        )
        .tool(
            scan.request
                .as_ref()
                .map_or("", |request| request.tool.as_str()),
        ),
        Err(failure) => AuditEvent::denied(
            Action::ReadResults,
            format!("scan {raw_id} {what}: {}", failure.0.status()),
        ),
    };
    state.audit.record(caller, event).await;
    outcome
}

async fn finished_checked(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
) -> Result<(Scan, Vec<toolgate_model::Finding>), Failure> {
    let (scan, findings) = state
        .scans
        .results(scan_id(raw_id)?, caller.owner())
        .await
        .map_err(scan_failure)?;
    if !scan.state.is_terminal() {
        return Err(IacApiError::conflict(format!(
            "scan {} is still processing ({}); poll /iac/v2/scans/{}/status",
            scan.id,
            scan.state.as_str(),
            scan.id
        ))
        .into());
    }
    Ok((scan, findings))
}

#[utoipa::path(get, path = "/iac/v2/scans/{id}/results", tag = "iac",
    params(("id" = String, Path, description = "the scan id")),
    responses((status = 200, description = "`meta.matchedPoliciesSummary`, `meta.errorDetails`, `data[]` violations with file and line")))]
async fn scan_results(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(raw_id): UrlPath<String>,
) -> Result<Document, Failure> {
    let (scan, findings) = finished(&state, &caller, &raw_id, "results").await?;
    let details = scan
        .outcome
        .as_ref()
        .map(|outcome| outcome.error_details.clone())
        .unwrap_or_default();
    Ok(json_api(
        StatusCode::OK,
        results::results_document(&scan.id, &findings, &details).to_bytes(),
    ))
}

#[utoipa::path(get, path = "/iac/v2/scans/{id}/results/sarif", tag = "iac",
    params(("id" = String, Path, description = "the scan id")),
    responses((status = 200, description = "SARIF 2.1.0")))]
async fn scan_sarif(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    UrlPath(raw_id): UrlPath<String>,
) -> Result<Document, Failure> {
    let (scan, findings) = finished(&state, &caller, &raw_id, "sarif").await?;
    // A finished scan was initiated, so it has its request.
    let tool = scan
        .request
        .as_ref()
        .map_or("unknown", |request| request.tool.as_str());
    let version = state.jobs.tool_version(tool);
    let log = sarif::sarif_log(tool, version.as_deref(), &findings);
    Ok(Document {
        status: StatusCode::OK,
        content_type: "application/json",
        body: log.to_bytes(),
    })
}

#[utoipa::path(get, path = "/iac/v2/scans", tag = "iac",
    responses((status = 200, description = "a page of scans with `meta` counts and `links`")))]
async fn list_scans(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Document, Failure> {
    let raw = raw.unwrap_or_default();
    let query = query::parse_list_query(&raw, Utc::now())
        .map_err(|invalid| Failure(IacApiError::invalid_parameter(&invalid).into()))?;
    let page = state
        .scans
        .list(query.clone(), caller.owner())
        .await
        .map_err(scan_failure)?;
    let scans_url = format!("{}/iac/v2/scans", public_base(&state));
    Ok(json_api(
        StatusCode::OK,
        list::list_document(&page, &query, &scans_url, &raw).to_bytes(),
    ))
}

#[utoipa::path(get, path = "/iac/v2/scans/export", tag = "iac",
    responses((status = 200, description = "the list's scans as CSV (`fmt=csv`)")))]
async fn export_scans(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> Result<Document, Failure> {
    let (mut query, _format) = query::parse_export_query(&raw.unwrap_or_default(), Utc::now())
        .map_err(|invalid| Failure(IacApiError::invalid_parameter(&invalid).into()))?;
    query.group_by = None;
    query.page =
        toolgate_model::Page::new(toolgate_model::Page::MAX_SIZE, 1).map_err(|e| internal(&e))?;
    let mut out = export::CsvExport::new(Vec::new()).map_err(|e| internal(&e))?;
    let mut written = 0u64;
    loop {
        let page = state
            .scans
            .list(query.clone(), caller.owner())
            .await
            .map_err(scan_failure)?;
        for scan in &page.scans {
            out.write_scan(scan).map_err(|e| internal(&e))?;
        }
        written += page.scans.len() as u64;
        let last = page.scans.len() < query.page.size as usize;
        if last || written >= EXPORT_MAX_SCANS {
            break;
        }
        query.page.number += 1;
    }
    let event = AuditEvent::allowed(
        Action::ReadResults,
        format!("csv export: {written} scan(s)"),
    );
    state.audit.record(&caller, event).await;
    Ok(Document {
        status: StatusCode::OK,
        content_type: "text/csv; charset=utf-8",
        body: out.finish().map_err(|e| internal(&e))?,
    })
}

/// Refuses `files`, `folders` and `variableFiles` that name nothing in the upload.
async fn check_paths_exist(
    tree: &Path,
    request: &toolgate_model::ScanRequest,
) -> Result<(), Failure> {
    let parameters = &request.parameters;
    for (field, paths, want_dir) in [
        ("files", &parameters.files, false),
        ("folders", &parameters.folders, true),
        ("variableFiles", &parameters.variable_files, false),
    ] {
        for path in paths {
            let target = tree.join(path);
            // symlink_metadata: the tree has no links (extraction refuses them), and a check
            // must not follow one anyway.
            let kind = tokio::fs::symlink_metadata(&target).await.ok();
            let found = kind.is_some_and(|meta| {
                if want_dir {
                    meta.is_dir()
                } else {
                    meta.is_file()
                }
            });
            if !found {
                let what = if want_dir { "folder" } else { "file" };
                return Err(member_failure(&toolgate_model::InvalidValue::new(
                    &format!("templateParameters.{field}"),
                    format!(
                        "{:?} is not a {what} of the upload; paths are relative to the root of the uploaded archive",
                        toolgate_model::echo(path)
                    ),
                )));
            }
        }
    }
    Ok(())
}

/// A single uploaded template is stored as `template`; once the template type is known it gets
/// the name scanners recognise (`main.tf`, `template.yaml`, `manifest.yaml`).
async fn name_single_template(
    tree: &Path,
    scan: &Scan,
    request: &toolgate_model::ScanRequest,
) -> Result<(), Failure> {
    let single = scan.upload.as_ref().is_some_and(|upload| upload.files == 1);
    let template = tree.join("template");
    if !single || tokio::fs::symlink_metadata(&template).await.is_err() {
        return Ok(());
    }
    let name = request.template_type.single_file_name();
    tokio::fs::rename(&template, tree.join(name))
        .await
        .map_err(|e| internal(&format!("name the uploaded template {name}: {e}")))
}
