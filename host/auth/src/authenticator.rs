//! Deciding who a credential belongs to.
//!
//! Invariants: an [`Authenticator`] is built from validated [`Tenants`] only; an access key is
//! accepted when its id is configured and the SHA-256 of the presented secret equals the stored
//! one (compared in constant time; an unknown id is compared against a dummy digest, so both
//! failures cost the same); a token is accepted when [`TokenSigner::verify`] accepts it AND its
//! key is still configured for the same tenant (so removing a key's line revokes its tokens at
//! the next start); the role always comes from the configuration, never from a token. Every
//! refusal is one [`AuthError`].

use std::collections::HashMap;
use std::time::SystemTime;

use crate::credential::{Credential, Presented};
use crate::error::{AuthError, FailureReason};
use crate::ids::{KeyId, TenantId};
use crate::login::{CustomerName, LOGIN_SUCCESSFUL, LoginRequest, LoginResponse};
use crate::secret::{Secret, SecretHash};
use crate::tenants::{Role, Tenants};
use crate::token::{TokenError, TokenSigner};

/// Who an accepted credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The tenant the key belongs to.
    pub tenant_id: TenantId,
    /// The access key used (directly, or the one a token was issued for).
    pub key_id: KeyId,
    /// The tenant's role, from the current configuration.
    pub role: Role,
}

/// What a configured key maps to.
#[derive(Debug)]
struct KeyEntry {
    secret_sha256: SecretHash,
    tenant_id: TenantId,
    display_name: String,
    role: Role,
}

/// Why a login or extension did not produce a token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The credential was refused (answer 401 with [`crate::PUBLIC_MESSAGE`]).
    #[error(transparent)]
    Refused(#[from] AuthError),
    /// The credential was good but no token could be made (answer 500; log it).
    #[error("cannot issue a token: {0}")]
    Internal(TokenError),
}

/// Checks credentials against the configured tenants' keys and the token key.
#[derive(Debug)]
pub struct Authenticator {
    keys: HashMap<KeyId, KeyEntry>,
    tokens: TokenSigner,
    /// Compared against when the key id is unknown, so that path does the same work.
    dummy: SecretHash,
}

impl Authenticator {
    /// An authenticator for these tenants, signing and verifying tokens with `tokens`.
    pub fn new(tenants: &Tenants, tokens: TokenSigner) -> Self {
        let keys = tenants
            .iter()
            .flat_map(|tenant| {
                tenant.access_keys.iter().map(|key| {
                    let entry = KeyEntry {
                        secret_sha256: key.secret_sha256.clone(),
                        tenant_id: tenant.id.clone(),
                        display_name: tenant.display_name.clone(),
                        role: tenant.role,
                    };
                    (key.id.clone(), entry)
                })
            })
            .collect();
        Self {
            keys,
            tokens,
            dummy: Secret::new(String::new()).sha256(),
        }
    }

    /// Who `credential` belongs to, checking tokens against the system clock.
    pub fn authenticate(&self, credential: &Credential) -> Result<Principal, AuthError> {
        self.authenticate_at(credential, SystemTime::now())
    }

    /// Who `credential` belongs to, checking tokens against `now`.
    pub fn authenticate_at(
        &self,
        credential: &Credential,
        now: SystemTime,
    ) -> Result<Principal, AuthError> {
        match &credential.presented {
            Presented::Key { id, secret } => self.key_pair(id, secret),
            Presented::Token(token) => self.token(token.expose(), now),
        }
    }

    /// `POST /login`: a token for the access key in `request`.
    pub fn login(
        &self,
        request: &LoginRequest,
        now: SystemTime,
    ) -> Result<LoginResponse, LoginError> {
        let credential = Credential::from_login(&request.username, &request.password)?;
        let principal = self.authenticate_at(&credential, now)?;
        self.respond(&principal, now)
    }

    /// `GET /auth_token/extend`: a fresh token for the same key, given a valid token.
    pub fn extend(
        &self,
        credential: &Credential,
        now: SystemTime,
    ) -> Result<LoginResponse, LoginError> {
        if !credential.is_token() {
            return Err(
                AuthError::new(FailureReason::Malformed("extend needs a login token")).into(),
            );
        }
        let principal = self.authenticate_at(credential, now)?;
        self.respond(&principal, now)
    }

    fn respond(&self, principal: &Principal, now: SystemTime) -> Result<LoginResponse, LoginError> {
        let token = self
            .tokens
            .issue(principal, now)
            .map_err(LoginError::Internal)?;
        let display_name = self
            .keys
            .get(&principal.key_id)
            .map(|entry| entry.display_name.clone())
            .unwrap_or_else(|| principal.tenant_id.to_string());
        Ok(LoginResponse {
            token,
            message: LOGIN_SUCCESSFUL.to_owned(),
            customer_names: vec![CustomerName {
                customer_name: display_name,
                prisma_id: principal.tenant_id.to_string(),
                tos_accepted: true,
            }],
        })
    }

    fn key_pair(&self, id: &KeyId, secret: &Secret) -> Result<Principal, AuthError> {
        let presented = secret.sha256();
        match self.keys.get(id) {
            Some(entry) if entry.secret_sha256.matches(&presented) => Ok(Principal {
                tenant_id: entry.tenant_id.clone(),
                key_id: id.clone(),
                role: entry.role,
            }),
            Some(_) => Err(FailureReason::WrongSecret(id.clone()).into()),
            None => {
                // Same comparison as a known key, so timing does not tell which ids exist.
                let _ = self.dummy.matches(&presented);
                Err(FailureReason::UnknownKey(id.clone()).into())
            }
        }
    }

    fn token(&self, token: &str, now: SystemTime) -> Result<Principal, AuthError> {
        let claims = self
            .tokens
            .verify(token, now)
            .map_err(FailureReason::Token)?;
        let entry = self
            .keys
            .get(&claims.sub)
            .ok_or_else(|| FailureReason::Revoked(claims.sub.clone()))?;
        if entry.tenant_id != claims.tenant {
            return Err(FailureReason::TenantChanged {
                key: claims.sub,
                claimed: claims.tenant,
                actual: entry.tenant_id.clone(),
            }
            .into());
        }
        Ok(Principal {
            tenant_id: claims.tenant,
            key_id: claims.sub,
            role: entry.role,
        })
    }
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
