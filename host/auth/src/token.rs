//! Login tokens for the Prisma IaC API's clients: HS256 JWTs made by `POST /login`, sent back
//! as `x-redlock-auth` (or `Authorization: Bearer`), renewed by `GET /auth_token/extend`.
//!
//! Invariants: only HS256 with this daemon's key is accepted (`alg: none`, every other algorithm
//! and every other key are refused by `jsonwebtoken` before the claims are read); the claims
//! `iss`, `sub`, `tenant`, `iat` and `exp` are all required; expiry is checked against the `now`
//! the caller passes, with no leeway (the same daemon's clock signs and checks).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::authenticator::Principal;
use crate::ids::{KeyId, TenantId};
use crate::keyfile::{KEY_BYTES, KeyFileError, load_or_create_key};

/// How long a login token is valid: upstream's 10 minutes, which its clients are written for
/// (they cache the token for up to 10 minutes, then log in again or extend). Short, so a leaked
/// token is useful briefly, and a revoked key's tokens die soon after a restart.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The `iss` claim of every token: a token made by another service with a shared key is still
/// refused.
pub const TOKEN_ISSUER: &str = "toolgate";

/// The claims of a login token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Always [`TOKEN_ISSUER`].
    pub iss: String,
    /// The access key the token was issued for.
    pub sub: KeyId,
    /// The key's tenant when the token was issued.
    pub tenant: TenantId,
    /// Issued at, in seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, in seconds since the Unix epoch.
    pub exp: u64,
}

/// Every claim as optional, so a missing one is named rather than reported as a parse error.
#[derive(Deserialize)]
struct PresentedClaims {
    iss: Option<String>,
    sub: Option<String>,
    tenant: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
}

/// Why a token was refused or could not be made (log-safe: never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a decodable JWT (including headers naming an unknown algorithm such as `none`).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Signed with an algorithm other than HS256.
    #[error("algorithm other than HS256")]
    Algorithm,
    /// The signature does not match this daemon's key.
    #[error("signature does not match this daemon's key")]
    BadSignature,
    /// Expired (`exp` at or before now).
    #[error("expired at {exp}, now {now} (seconds since the epoch)")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// A required claim is absent.
    #[error("claim {0} missing")]
    MissingClaim(&'static str),
    /// A claim is present with a value toolgate never issues.
    #[error("claim {0} has a value toolgate never issues")]
    BadClaim(&'static str),
    /// The clock is before 1970.
    #[error("the system clock is before 1970")]
    Clock,
    /// Encoding failed (a library error; HMAC signing itself cannot fail).
    #[error("cannot sign a token: {0}")]
    Signing(String),
}

/// Signs and verifies login tokens with one HS256 key.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(HS256, <key redacted>)")
    }
}

fn unix_seconds(now: SystemTime) -> Result<u64, TokenError> {
    now.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .map_err(|_| TokenError::Clock)
}

impl TokenSigner {
    /// A signer with this key.
    pub fn from_key(key: &[u8; KEY_BYTES]) -> Result<Self, TokenError> {
        let signing = |error: jsonwebtoken::errors::Error| TokenError::Signing(error.to_string());
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked in `verify` against the caller's `now` (testable, no leeway);
        // presence of every claim is checked there too, by name.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            encoding: EncodingKey::from_secret(key).map_err(signing)?,
            decoding: DecodingKey::from_secret(key).map_err(signing)?,
            validation,
        })
    }

    /// A signer with the key at `path`, created (32 random bytes, file 0600, missing parent
    /// directory 0700) if absent. Deleting the file invalidates every token at the next start.
    pub fn load_or_create(path: &Path) -> Result<Self, TokenSignerError> {
        let key = load_or_create_key(path)?;
        Ok(Self::from_key(&key)?)
    }

    /// A token for this principal's key and tenant, valid for [`TOKEN_LIFETIME`] from `now`.
    pub fn issue(&self, principal: &Principal, now: SystemTime) -> Result<String, TokenError> {
        self.issue_for(&principal.key_id, &principal.tenant_id, now)
    }

    fn issue_for(
        &self,
        key: &KeyId,
        tenant: &TenantId,
        now: SystemTime,
    ) -> Result<String, TokenError> {
        let iat = unix_seconds(now)?;
        let claims = TokenClaims {
            iss: TOKEN_ISSUER.to_owned(),
            sub: key.clone(),
            tenant: tenant.clone(),
            iat,
            exp: iat + TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|error| TokenError::Signing(error.to_string()))
    }

    /// The claims of `token` if it is an unexpired HS256 token signed with this key, with every
    /// claim present and as issued.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<TokenClaims, TokenError> {
        let now = unix_seconds(now)?;
        let data = jsonwebtoken::decode::<PresentedClaims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::MissingAlgorithm => TokenError::Algorithm,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed(error.to_string()),
            })?;
        let claims = data.claims;
        let iss = claims.iss.ok_or(TokenError::MissingClaim("iss"))?;
        let sub = claims.sub.ok_or(TokenError::MissingClaim("sub"))?;
        let tenant = claims.tenant.ok_or(TokenError::MissingClaim("tenant"))?;
        let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
        let exp = claims.exp.ok_or(TokenError::MissingClaim("exp"))?;
        if iss != TOKEN_ISSUER {
            return Err(TokenError::BadClaim("iss"));
        }
        if exp <= now {
            return Err(TokenError::Expired { exp, now });
        }
        Ok(TokenClaims {
            iss,
            sub: KeyId::parse(&sub).map_err(|_| TokenError::BadClaim("sub"))?,
            tenant: TenantId::parse(&tenant).map_err(|_| TokenError::BadClaim("tenant"))?,
            iat,
            exp,
        })
    }

    /// A fresh token for the same key and tenant as `token`, which must itself be valid now.
    pub fn extend(&self, token: &str, now: SystemTime) -> Result<String, TokenError> {
        let claims = self.verify(token, now)?;
        self.issue_for(&claims.sub, &claims.tenant, now)
    }
}

/// Why a [`TokenSigner`] could not be made from a key file.
#[derive(Debug, thiserror::Error)]
pub enum TokenSignerError {
    /// The key file could not be loaded or created.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The key was refused by the JWT library.
    #[error(transparent)]
    Token(#[from] TokenError),
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    use super::*;

    fn signer(byte: u8) -> TokenSigner {
        TokenSigner::from_key(&[byte; KEY_BYTES]).expect("signer")
    }

    fn ids() -> (KeyId, TenantId) {
        (
            KeyId::parse("tgk_0123456789abcdef").expect("key"),
            TenantId::parse("acme").expect("tenant"),
        )
    }

    fn principal() -> Principal {
        let (key_id, tenant_id) = ids();
        Principal {
            tenant_id,
            key_id,
            role: crate::Role::User,
        }
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    /// A token signed with `key` (any algorithm jsonwebtoken knows) over arbitrary claims.
    fn forge(algorithm: Algorithm, key: &[u8], claims: &serde_json::Value) -> String {
        let key = EncodingKey::from_secret(key).expect("key");
        jsonwebtoken::encode(&Header::new(algorithm), claims, &key).expect("encode")
    }

    fn claims_at(iat: u64) -> serde_json::Value {
        json!({"iss": "toolgate", "sub": "tgk_0123456789abcdef", "tenant": "acme", "iat": iat, "exp": iat + 600})
    }

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let (key, tenant) = ids();
        let signer = signer(1);
        let token = signer.issue(&principal(), at(1_000_000)).expect("issue");
        let claims = signer.verify(&token, at(1_000_000)).expect("fresh");
        assert_eq!((claims.sub, claims.tenant), (key, tenant));
        assert_eq!(claims.exp - claims.iat, TOKEN_LIFETIME.as_secs());
        assert!(signer.verify(&token, at(1_000_599)).is_ok());
        assert_eq!(
            signer.verify(&token, at(1_000_600)),
            Err(TokenError::Expired {
                exp: 1_000_600,
                now: 1_000_600
            })
        );
    }

    #[test]
    fn extending_gives_a_later_token_only_while_valid() {
        let signer = signer(1);
        let token = signer.issue(&principal(), at(1_000_000)).expect("issue");
        let extended = signer.extend(&token, at(1_000_500)).expect("extend");
        assert_eq!(
            signer.verify(&extended, at(1_000_500)).expect("valid").exp,
            1_001_100
        );
        assert!(matches!(
            signer.extend(&token, at(1_000_600)),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let signer = signer(1);
        let now = at(1_000_000);
        let header_none = b64(&json!({"alg": "none", "typ": "JWT"}));
        let header_none_upper = b64(&json!({"alg": "None"}));
        let body = b64(&claims_at(1_000_000));
        let valid_mac = signer.issue(&principal(), now).expect("issue");
        let valid_signature = valid_mac.rsplit('.').next().expect("signature");
        let table: Vec<(&str, String)> = vec![
            (
                "alg none, empty signature",
                format!("{header_none}.{body}."),
            ),
            (
                "alg none, signature copied",
                format!("{header_none}.{body}.{valid_signature}"),
            ),
            ("alg None", format!("{header_none_upper}.{body}.")),
            (
                "HS512 with the right key",
                forge(Algorithm::HS512, &[1; KEY_BYTES], &claims_at(1_000_000)),
            ),
            (
                "HS384 with the right key",
                forge(Algorithm::HS384, &[1; KEY_BYTES], &claims_at(1_000_000)),
            ),
            (
                "HS256 with another key",
                forge(Algorithm::HS256, &[2; KEY_BYTES], &claims_at(1_000_000)),
            ),
            ("body swapped under a valid signature", {
                let mut parts: Vec<String> = valid_mac.split('.').map(String::from).collect();
                parts[1] = b64(
                    &json!({"iss": "toolgate", "sub": "tgk_fedcba9876543210", "tenant": "globex", "iat": 1_000_000, "exp": 1_000_600}),
                );
                parts.join(".")
            }),
            ("not a JWT", "x.y.z".into()),
            ("empty", String::new()),
        ];
        for (what, token) in table {
            let result = signer.verify(&token, now);
            assert!(result.is_err(), "{what} accepted: {result:?}");
        }
        assert_eq!(
            signer.verify(
                &forge(Algorithm::HS512, &[1; KEY_BYTES], &claims_at(1_000_000)),
                now
            ),
            Err(TokenError::Algorithm)
        );
        assert_eq!(
            signer.verify(
                &forge(Algorithm::HS256, &[2; KEY_BYTES], &claims_at(1_000_000)),
                now
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn every_claim_is_required_and_checked() {
        let signer = signer(1);
        let now = at(1_000_000);
        for claim in ["iss", "sub", "tenant", "iat", "exp"] {
            let mut claims = claims_at(1_000_000);
            claims.as_object_mut().expect("object").remove(claim);
            let token = forge(Algorithm::HS256, &[1; KEY_BYTES], &claims);
            assert_eq!(
                signer.verify(&token, now),
                Err(TokenError::MissingClaim(claim)),
                "{claim}"
            );
        }
        let table: &[(&str, serde_json::Value, TokenError)] = &[
            ("iss", json!("someone-else"), TokenError::BadClaim("iss")),
            ("sub", json!("admin"), TokenError::BadClaim("sub")),
            ("tenant", json!("../etc"), TokenError::BadClaim("tenant")),
        ];
        for (claim, value, expected) in table {
            let mut claims = claims_at(1_000_000);
            claims[claim] = value.clone();
            let token = forge(Algorithm::HS256, &[1; KEY_BYTES], &claims);
            assert_eq!(&signer.verify(&token, now).expect_err(claim), expected);
        }
    }

    #[test]
    fn a_signer_from_a_key_file_verifies_its_own_tokens_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token.key");
        let token = TokenSigner::load_or_create(&path)
            .expect("create")
            .issue(&principal(), at(1_000_000))
            .expect("issue");
        let restarted = TokenSigner::load_or_create(&path).expect("load");
        assert!(restarted.verify(&token, at(1_000_001)).is_ok());
        std::fs::remove_file(&path).expect("delete the key");
        let rekeyed = TokenSigner::load_or_create(&path).expect("new key");
        assert_eq!(
            rekeyed.verify(&token, at(1_000_001)),
            Err(TokenError::BadSignature)
        );
    }
}
