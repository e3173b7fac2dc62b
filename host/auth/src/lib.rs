//! toolgate's multi-tenant core (issue #16): who a caller is and what it may use, without HTTP,
//! SQL or wasm (the daemon wires this into axum and the store).
//!
//! - [`tenants`]: the `[[tenants]]` configuration and its validation ([`Tenants::validate`]).
//! - [`check_listen`]: no tenants, no authentication, loopback only.
//! - [`new_access_key`]: `toolgate token new TENANT`.
//! - [`Credential`] and [`Authenticator`]: header values to a [`Principal`], or one [`AuthError`].
//! - [`TokenSigner`]: the HS256 login tokens of `POST /login` and `GET /auth_token/extend`.
//! - [`FailedAttempts`] and [`TenantRateLimiter`]: 429s for guessers and for busy tenants.
//! - [`audit`]: the tamper-evident hash chain over audit records.
//!
//! Invariants: no secret or token is ever in a `Debug` or `Display` output or an error; every
//! authentication failure looks the same to the caller; time is a parameter wherever it
//! matters, so everything here is tested without a daemon or a real clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
mod authenticator;
mod credential;
mod error;
mod failures;
mod ids;
mod keyfile;
mod keygen;
mod listen;
mod login;
mod secret;
mod tenant_rate;
pub mod tenants;
mod token;

pub use authenticator::{Authenticator, LoginError, Principal};
pub use credential::{Credential, CredentialForm, MAX_CREDENTIAL_BYTES};
pub use error::{AuthError, FailureReason, PUBLIC_MESSAGE};
pub use failures::{
    FAILURE_BURST, FAILURE_REFILL, FailedAttempts, FailurePolicy, MAX_TRACKED_ADDRESSES, RetryAfter,
};
pub use ids::{InvalidId, KEY_ID_HEX_CHARS, KEY_ID_PREFIX, KeyId, MAX_TENANT_ID_CHARS, TenantId};
pub use keyfile::{KEY_BYTES, KeyFileError, load_or_create_key};
pub use keygen::{NewKey, NewKeyError, SECRET_HEX_CHARS, SECRET_PREFIX, new_access_key};
pub use listen::{ListenError, check_listen};
pub use login::{CustomerName, LOGIN_SUCCESSFUL, LoginRequest, LoginResponse};
pub use secret::{EntropyUnavailable, SECRET_RANDOM_BYTES, Secret, SecretHash};
pub use tenant_rate::TenantRateLimiter;
pub use tenants::{
    GlobalLimits, Role, RunAs, Tenant, TenantProblem, Tenants, TenantsError, ToolLimits,
};
pub use token::{
    TOKEN_ISSUER, TOKEN_LIFETIME, TokenClaims, TokenError, TokenSigner, TokenSignerError,
};
