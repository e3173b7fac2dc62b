//! Who is calling: the authentication middleware in front of every route, and `POST /login` /
//! `GET /auth_token/extend` (issue #16).
//!
//! Invariants: with `[[tenants]]`, every request except [`is_exempt`] paths carries a credential
//! that `toolgate_auth::Authenticator` accepts, or is answered 401 with one body
//! ([`toolgate_auth::PUBLIC_MESSAGE`]) whatever the reason (the reason is logged, never the
//! secret); HTTP Basic is accepted on `/api/*` only (the HexStrike client's form); a client
//! address with too many failures is answered 429 with `Retry-After` before its credential is
//! even parsed, and a tenant over its `requests_per_second` likewise after it is accepted.
//! Without tenants there is no authentication and every request is the implicit tenant
//! [`IMPLICIT_TENANT`] (admin), which the configuration keeps on loopback. Handlers read the
//! caller from the request's [`Caller`] extension, never from the request itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use toolgate_auth::{
    AuthError, Authenticator, Credential, CredentialForm, FailedAttempts, FailurePolicy, KeyId,
    LoginError, LoginRequest, LoginResponse, PUBLIC_MESSAGE, Principal, RetryAfter, Role, TenantId,
    Tenants, TokenSigner,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::tenant_rates::TenantRates;
use super::{AppState, ErrorBody};
use crate::audit::AuditEvent;
use toolgate_auth::audit::Action;

/// The one tenant of a daemon without `[[tenants]]`.
pub const IMPLICIT_TENANT: &str = "local";

/// The header the Prisma IaC API's clients send their login token in.
pub const REDLOCK_AUTH: &str = "x-redlock-auth";

/// Where the upload route lives: its signed URL is its credential (the uploads module checks it).
const SIGNED_UPLOAD_PREFIX: &str = "/iac/v2/uploads/";

/// Who made a request, as handlers see it: the tenant whose data it may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant (the owner recorded on its jobs and scans).
    pub tenant: TenantId,
    /// The access key used; `None` for the implicit tenant, which has none.
    pub key_id: Option<KeyId>,
    /// What it may do beyond its own data.
    pub role: Role,
    /// The client's address, for the audit trail and failure limiting.
    pub client: Option<IpAddr>,
}

impl Caller {
    /// The owner id to store and filter by.
    pub fn owner(&self) -> &str {
        self.tenant.as_str()
    }

    /// The owner of a scan acting through its signed upload URL, which is bound to the tenant
    /// and carries no key (`tenant` as stored on the scan).
    pub fn of_tenant(tenant: &str) -> Result<Self, toolgate_auth::InvalidId> {
        Ok(Self {
            tenant: TenantId::parse(tenant)?,
            key_id: None,
            role: Role::User,
            client: None,
        })
    }

    /// Whether it may read every tenant's audit trail.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    fn from_principal(principal: &Principal, client: Option<IpAddr>) -> Self {
        Self {
            tenant: principal.tenant_id.clone(),
            key_id: Some(principal.key_id.clone()),
            role: principal.role,
            client,
        }
    }
}

/// How the daemon decides who is calling.
#[derive(Debug)]
enum Mode {
    /// No `[[tenants]]`: everyone is the implicit tenant.
    Implicit(TenantId),
    /// Credentials checked against the configured tenants.
    Tenants {
        authenticator: Box<Authenticator>,
        tenants: Tenants,
        rates: TenantRates,
    },
}

/// Authentication state shared by every request.
#[derive(Debug)]
pub struct AuthState {
    mode: Mode,
    failures: FailedAttempts,
}

/// Why authentication could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("the implicit tenant id {IMPLICIT_TENANT:?} is invalid: {0}")]
    ImplicitTenant(#[from] toolgate_auth::InvalidId),
}

impl AuthState {
    /// No tenants: no authentication, one implicit tenant.
    pub fn implicit() -> Result<Self, AuthSetupError> {
        Ok(Self {
            mode: Mode::Implicit(TenantId::parse(IMPLICIT_TENANT)?),
            failures: FailedAttempts::new(FailurePolicy::default()),
        })
    }

    /// Credentials checked against `tenants`, tokens signed with `tokens`, request rates also
    /// counted in `shared_rates` when the store is shared by several daemons; an empty
    /// `tenants` is [`AuthState::implicit`].
    pub fn for_tenants(
        tenants: Tenants,
        tokens: TokenSigner,
        shared_rates: Option<Arc<dyn toolgate_store::RateStore>>,
    ) -> Result<Self, AuthSetupError> {
        if tenants.is_empty() {
            return Self::implicit();
        }
        Ok(Self {
            mode: Mode::Tenants {
                authenticator: Box::new(Authenticator::new(&tenants, tokens)),
                rates: TenantRates::new(&tenants, shared_rates),
                tenants,
            },
            failures: FailedAttempts::new(FailurePolicy::default()),
        })
    }

    /// The configured tenants (empty without authentication).
    pub fn tenants(&self) -> Option<&Tenants> {
        match &self.mode {
            Mode::Implicit(_) => None,
            Mode::Tenants { tenants, .. } => Some(tenants),
        }
    }

    /// Who sent `headers` to `path` from `client`, or the answer refusing it.
    async fn caller(
        &self,
        path: &str,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<(Caller, Option<Credential>), Refusal> {
        let (authenticator, rates) = match &self.mode {
            Mode::Implicit(tenant) => {
                let caller = Caller {
                    tenant: tenant.clone(),
                    key_id: None,
                    role: Role::Admin,
                    client,
                };
                return Ok((caller, None));
            }
            Mode::Tenants {
                authenticator,
                rates,
                ..
            } => (authenticator, rates),
        };
        let address = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        self.failures
            .check(address)
            .map_err(Refusal::TooManyFailures)?;
        let checked = Credential::from_headers(
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            headers.get(REDLOCK_AUTH).map(HeaderValue::as_bytes),
        )
        .and_then(|credential| {
            let principal = authenticator.authenticate(&credential)?;
            Ok((credential, principal))
        });
        let (credential, principal) = match checked {
            Ok(accepted) => accepted,
            Err(error) => return Err(self.refuse(address, path, &error)),
        };
        if credential.form() == CredentialForm::Basic && !path.starts_with("/api/") {
            tracing::info!(client = %address, path, key_id = %principal.key_id,
                "authentication refused: HTTP Basic is accepted on /api/* only");
            self.failures.record_failure(address);
            return Err(Refusal::Unauthorized);
        }
        rates.check(&principal.tenant_id).await.map_err(|wait| {
            tracing::info!(tenant = %principal.tenant_id, wait_ms = wait.0.as_millis() as u64,
                "tenant over its requests_per_second");
            Refusal::OverRate(wait)
        })?;
        Ok((Caller::from_principal(&principal, client), Some(credential)))
    }

    /// Counts a failure from `address` and builds the one 401 answer.
    fn refuse(&self, address: IpAddr, path: &str, error: &AuthError) -> Refusal {
        self.failures.record_failure(address);
        tracing::info!(client = %address, path, reason = %error.reason(), "authentication refused");
        Refusal::Unauthorized
    }
}

/// Paths that take no credential: `/health` (which shows no tenant data), `/login` (its body
/// is the credential) and the signed upload URLs (their signature is).
pub fn is_exempt(path: &str) -> bool {
    path == "/health" || path == "/login" || path.starts_with(SIGNED_UPLOAD_PREFIX)
}

/// The client address hyper accepted the connection from (absent in in-process tests).
fn client_address(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_canonical())
}

/// The middleware: places the [`Caller`] (and, when a credential was checked, the
/// [`Principal`]'s parts) in the request's extensions, or answers 401/429.
pub async fn authenticate(
    State(auth): State<Arc<AuthState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = client_address(&request);
    let path = request.uri().path().to_owned();
    if is_exempt(&path) {
        // A signed upload needs no credential, but one that is sent is checked, so that another
        // tenant's scan answers 404 there as everywhere (a bad one is simply not a caller).
        let sent = request.headers().contains_key(header::AUTHORIZATION)
            || request.headers().contains_key("x-redlock-auth");
        let upload = path.starts_with(SIGNED_UPLOAD_PREFIX);
        if (matches!(auth.mode, Mode::Implicit(_)) || (upload && sent))
            && let Ok((caller, _)) = auth.caller(&path, request.headers(), client).await
        {
            request.extensions_mut().insert(caller);
        }
        return next.run(request).await;
    }
    match auth.caller(&path, request.headers(), client).await {
        Ok((caller, _)) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Why a request was not let through; each kind has one answer.
#[derive(Debug)]
enum Refusal {
    /// 401 with [`PUBLIC_MESSAGE`], whatever was wrong.
    Unauthorized,
    /// 429: this address failed too often.
    TooManyFailures(RetryAfter),
    /// 429: the tenant is over its `requests_per_second`.
    OverRate(RetryAfter),
    /// 500: a good credential, but no token could be made.
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized => unauthorized(),
            Refusal::TooManyFailures(wait) => too_many_failures(wait),
            Refusal::OverRate(wait) => over_rate(wait),
            Refusal::Internal => {
                let body = ErrorBody {
                    error: "Server error: cannot issue a token; see the daemon log".into(),
                    errors: None,
                };
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}

/// The one answer to every refused credential.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(ErrorBody {
            error: PUBLIC_MESSAGE.to_owned(),
            errors: None,
        }),
    )
        .into_response()
}

fn with_retry_after(mut response: Response, wait: RetryAfter) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait.header_secs()));
    response
}

fn too_many_failures(wait: RetryAfter) -> Response {
    let body = ErrorBody {
        error: "too many failed authentication attempts from this address; retry after the \
                Retry-After seconds"
            .into(),
        errors: None,
    };
    with_retry_after(
        (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response(),
        wait,
    )
}

fn over_rate(wait: RetryAfter) -> Response {
    let body = ErrorBody {
        error: "too many requests for this tenant (quotas.requests_per_second); retry after the \
                Retry-After seconds"
            .into(),
        errors: None,
    };
    with_retry_after(
        (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response(),
        wait,
    )
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(extend))
}

/// What login and extension answer when no tenant is configured.
fn no_tenants() -> Response {
    super::ApiError::NotFound(
        "no [[tenants]] are configured: this daemon takes no credentials, so there is nothing \
         to log in to"
            .into(),
    )
    .into_response()
}

fn login_answer(result: Result<LoginResponse, LoginError>) -> Result<LoginResponse, Refusal> {
    match result {
        Ok(response) => Ok(response),
        Err(LoginError::Refused(_)) => Err(Refusal::Unauthorized),
        Err(LoginError::Internal(error)) => {
            tracing::error!(%error, "cannot issue a login token");
            Err(Refusal::Internal)
        }
    }
}

/// The outcome of a login or extension, for the audit trail.
pub struct LoginOutcome {
    pub caller: Option<Caller>,
    pub response: Response,
}

/// `POST /login`: an access key for a login token (the Prisma IaC API's flow).
#[utoipa::path(post, path = "/login", tag = "auth",
    request_body(content = Object, description = "{\"username\": KEY_ID, \"password\": SECRET}"),
    responses(
        (status = 200, description = "A login token (HS256 JWT, 10 minutes)", body = Object),
        (status = 401, description = "Refused (always the same body)", body = ErrorBody),
        (status = 429, description = "Too many failures from this address", body = ErrorBody)))]
async fn login(State(state): State<AppState>, request: Request) -> Response {
    let client = client_address(&request);
    let outcome = login_outcome(&state.auth, client, request).await;
    record_login(
        &state,
        Action::Login,
        outcome.caller.as_ref(),
        outcome.response.status(),
    )
    .await;
    outcome.response
}

async fn login_outcome(auth: &AuthState, client: Option<IpAddr>, request: Request) -> LoginOutcome {
    let refused = |response| LoginOutcome {
        caller: None,
        response,
    };
    let Mode::Tenants { authenticator, .. } = &auth.mode else {
        return refused(no_tenants());
    };
    let address = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(wait) = auth.failures.check(address) {
        return refused(too_many_failures(wait));
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_LOGIN_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => return refused(auth.refuse_malformed(address)),
    };
    let Ok(login) = serde_json::from_slice::<LoginRequest>(&body) else {
        return refused(auth.refuse_malformed(address));
    };
    match login_answer(authenticator.login(&login, SystemTime::now())) {
        Ok(response) => {
            let caller = authenticator
                .authenticate(
                    &match Credential::from_login(&login.username, &login.password) {
                        Ok(credential) => credential,
                        Err(_) => return refused(unauthorized()),
                    },
                )
                .ok()
                .map(|principal| Caller::from_principal(&principal, client));
            LoginOutcome {
                caller,
                response: Json(response).into_response(),
            }
        }
        Err(refusal) => {
            if matches!(refusal, Refusal::Unauthorized) {
                auth.failures.record_failure(address);
                tracing::info!(client = %address, "login refused");
            }
            refused(refusal.into_response())
        }
    }
}

/// Largest `POST /login` body read: two short strings and two optional names.
const MAX_LOGIN_BODY_BYTES: usize = 4096;

impl AuthState {
    fn refuse_malformed(&self, address: IpAddr) -> Response {
        self.failures.record_failure(address);
        tracing::info!(client = %address, "login refused: body is not a login request");
        unauthorized()
    }
}

/// `GET /auth_token/extend`: a fresh token for a valid one.
#[utoipa::path(get, path = "/auth_token/extend", tag = "auth",
    responses(
        (status = 200, description = "A fresh login token", body = Object),
        (status = 401, description = "Refused (always the same body)", body = ErrorBody)))]
async fn extend(State(state): State<AppState>, headers: HeaderMap, request: Request) -> Response {
    let client = client_address(&request);
    let auth = &state.auth;
    let Mode::Tenants { authenticator, .. } = &auth.mode else {
        return no_tenants();
    };
    // The middleware accepted the credential already; extension also needs it to be a token.
    let outcome = match auth.caller("/auth_token/extend", &headers, client).await {
        Ok((caller, Some(credential))) => {
            match login_answer(authenticator.extend(&credential, SystemTime::now())) {
                Ok(response) => LoginOutcome {
                    caller: Some(caller),
                    response: Json(response).into_response(),
                },
                Err(refusal) => LoginOutcome {
                    caller: None,
                    response: refusal.into_response(),
                },
            }
        }
        Ok((_, None)) => LoginOutcome {
            caller: None,
            response: unauthorized(),
        },
        Err(refusal) => LoginOutcome {
            caller: None,
            response: refusal.into_response(),
        },
    };
    record_login(
        &state,
        Action::ExtendToken,
        outcome.caller.as_ref(),
        outcome.response.status(),
    )
    .await;
    outcome.response
}

/// A login or extension that named a tenant goes in the audit trail (a refused credential
/// names none: it is only logged, with the failure limiting).
async fn record_login(
    state: &AppState,
    action: Action,
    caller: Option<&Caller>,
    status: StatusCode,
) {
    if let Some(caller) = caller {
        let event = if status.is_success() {
            AuditEvent::allowed(action, "token issued")
        } else {
            AuditEvent::denied(action, status.as_u16().to_string())
        };
        state.audit.record(caller, event).await;
    }
}
