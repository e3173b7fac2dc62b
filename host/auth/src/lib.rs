//! toolgate's multi-tenant core (issue #16): who a caller is and what it may use, without HTTP,
//! SQL or wasm (the daemon wires this into axum and the store).
//!
//! - [`tenants`]: the `[[tenants]]` configuration and its validation ([`Tenants::validate`]).
//! - [`check_listen`]: no tenants, no authentication, loopback only.
//! - [`new_access_key`]: `toolgate token new TENANT`.
//!
//! Invariants: no secret is ever in a `Debug` or `Display` output or an error.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ids;
mod keygen;
mod listen;
mod secret;
pub mod tenants;

pub use ids::{InvalidId, KEY_ID_HEX_CHARS, KEY_ID_PREFIX, KeyId, MAX_TENANT_ID_CHARS, TenantId};
pub use keygen::{NewKey, NewKeyError, SECRET_HEX_CHARS, SECRET_PREFIX, new_access_key};
pub use listen::{ListenError, check_listen};
pub use secret::{EntropyUnavailable, SECRET_RANDOM_BYTES, Secret, SecretHash};
pub use tenants::{GlobalLimits, Role, Tenant, TenantProblem, Tenants, TenantsError};
