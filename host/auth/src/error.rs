//! The one authentication error callers see, and the reason kept for the logs.
//!
//! Invariants: every failure (missing, malformed, unknown key, wrong secret, revoked key,
//! expired or invalid token) displays the same [`PUBLIC_MESSAGE`], so a caller learns nothing
//! about which tenants or keys exist; the [`FailureReason`] holds only well-formed key ids and
//! library messages, never a secret or a token, so it is safe to log.

use crate::ids::{KeyId, TenantId};
use crate::token::TokenError;

/// What every refused caller is told (the daemon answers 401 with it).
pub const PUBLIC_MESSAGE: &str = "authentication failed: send a valid access key (Authorization: Bearer KEYID:SECRET or Basic) or a valid login token";

/// A refused credential. `Display` is always [`PUBLIC_MESSAGE`]; [`AuthError::reason`] says why,
/// for the logs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{PUBLIC_MESSAGE}")]
pub struct AuthError {
    reason: FailureReason,
}

impl AuthError {
    pub(crate) fn new(reason: FailureReason) -> Self {
        Self { reason }
    }

    /// Why the credential was refused: for logs and metrics, never for the caller.
    pub fn reason(&self) -> &FailureReason {
        &self.reason
    }
}

impl From<FailureReason> for AuthError {
    fn from(reason: FailureReason) -> Self {
        Self::new(reason)
    }
}

/// Why a credential was refused (log-safe: no secret, no token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailureReason {
    /// No `Authorization` and no `x-redlock-auth` header.
    #[error("no credential")]
    Missing,
    /// A header was present but not in any accepted form.
    #[error("malformed credential: {0}")]
    Malformed(&'static str),
    /// A well-formed key id that no tenant has.
    #[error("unknown access key id {0}")]
    UnknownKey(KeyId),
    /// A configured key id with a secret whose digest does not match.
    #[error("wrong secret for access key {0}")]
    WrongSecret(KeyId),
    /// A token that failed verification (bad signature, algorithm, expiry, claims).
    #[error("token refused: {0}")]
    Token(TokenError),
    /// A valid token for a key that is no longer configured.
    #[error("token for access key {0}, which is no longer configured (revoked)")]
    Revoked(KeyId),
    /// A valid token whose tenant is not the key's tenant any more.
    #[error(
        "token for access key {key} names tenant {claimed}, but the key now belongs to {actual}"
    )]
    TenantChanged {
        /// The key the token was issued for.
        key: KeyId,
        /// The tenant written in the token.
        claimed: TenantId,
        /// The tenant the configuration gives the key now.
        actual: TenantId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_shows_the_same_public_message() {
        let key = KeyId::parse("tgk_0123456789abcdef").expect("id");
        let reasons = [
            FailureReason::Missing,
            FailureReason::Malformed("x"),
            FailureReason::UnknownKey(key.clone()),
            FailureReason::WrongSecret(key.clone()),
            FailureReason::Token(TokenError::BadSignature),
            FailureReason::Revoked(key),
        ];
        for reason in reasons {
            let error = AuthError::new(reason.clone());
            assert_eq!(error.to_string(), PUBLIC_MESSAGE);
            assert_eq!(error.reason(), &reason);
        }
    }
}
