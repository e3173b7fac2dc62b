//! Credentials as callers send them, parsed from header values (no HTTP types: the daemon
//! passes the raw bytes of `Authorization` and `x-redlock-auth`).
//!
//! Accepted forms:
//! - `Authorization: Bearer tgk_<16 hex>:tgs_<64 hex>`: an access key id and its secret joined by
//!   a colon (the same pair as Basic, without base64, so `curl -H` works as typed).
//! - `Authorization: Bearer <JWT>`: a token from `POST /login`.
//! - `Authorization: Basic base64(tgk_…:tgs_…)`: what Python `requests` sends for
//!   `http://KEYID:SECRET@host` or a `~/.netrc` entry (the HexStrike client).
//! - `x-redlock-auth: <JWT>`: the Prisma IaC API's header.
//!
//! Invariants: the scheme is matched case-insensitively (RFC 9110); a value longer than
//! [`MAX_CREDENTIAL_BYTES`] or in no accepted form is refused before any lookup; when both
//! headers are present `Authorization` wins; a secret or token is held in a [`Secret`] (never in
//! `Debug`, wiped on drop).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{AuthError, FailureReason};
use crate::ids::{KEY_ID_PREFIX, KeyId};
use crate::keygen::is_secret_shaped;
use crate::secret::Secret;

/// Longest header value considered: a token from `POST /login` is about 300 bytes and a key pair
/// about 90; anything much longer is not ours, and decoding it would be work for nothing.
pub const MAX_CREDENTIAL_BYTES: usize = 2048;

/// Which form a credential arrived in, so the daemon can accept some forms on some routes only
/// (Basic on `/api/*`, as the issue asks) and record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialForm {
    /// `Authorization: Bearer KEYID:SECRET`.
    BearerKey,
    /// `Authorization: Bearer <JWT>`.
    BearerToken,
    /// `Authorization: Basic base64(KEYID:SECRET)`.
    Basic,
    /// `x-redlock-auth: <JWT>`.
    RedlockToken,
    /// The `username` and `password` of `POST /login`.
    Login,
}

/// What the caller presented.
#[derive(Debug, Clone)]
pub(crate) enum Presented {
    /// An access key id and its secret.
    Key { id: KeyId, secret: Secret },
    /// A login token (held as a secret: it is a bearer credential).
    Token(Secret),
}

/// A parsed credential, ready for [`crate::Authenticator::authenticate`].
#[derive(Debug, Clone)]
pub struct Credential {
    form: CredentialForm,
    pub(crate) presented: Presented,
}

fn malformed(what: &'static str) -> AuthError {
    AuthError::new(FailureReason::Malformed(what))
}

impl Credential {
    /// Parses the credential of a request from its `Authorization` and `x-redlock-auth` header
    /// values (raw bytes, `None` when absent). `Authorization` wins when both are present.
    pub fn from_headers(
        authorization: Option<&[u8]>,
        redlock_auth: Option<&[u8]>,
    ) -> Result<Self, AuthError> {
        match (authorization, redlock_auth) {
            (Some(value), _) => Self::from_authorization(value),
            (None, Some(value)) => Self::from_redlock_auth(value),
            (None, None) => Err(AuthError::new(FailureReason::Missing)),
        }
    }

    /// Parses an `Authorization` header value: `Bearer KEYID:SECRET`, `Bearer <JWT>` or
    /// `Basic base64(KEYID:SECRET)`.
    pub fn from_authorization(value: &[u8]) -> Result<Self, AuthError> {
        let text = header_text(value)?;
        let (scheme, rest) = text
            .split_once(' ')
            .ok_or_else(|| malformed("Authorization has no scheme"))?;
        let rest = rest.trim_start_matches(' ');
        if scheme.eq_ignore_ascii_case("bearer") {
            if rest.starts_with(KEY_ID_PREFIX) {
                let (id, secret) = rest
                    .split_once(':')
                    .ok_or_else(|| malformed("Bearer key without ':' between id and secret"))?;
                Self::key_pair(id, secret, CredentialForm::BearerKey)
            } else {
                Self::token(rest, CredentialForm::BearerToken)
            }
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD
                .decode(rest)
                .map_err(|_| malformed("Basic credentials are not base64"))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| malformed("Basic credentials are not UTF-8"))?;
            let decoded = Secret::new(decoded);
            let (id, secret) = decoded
                .expose()
                .split_once(':')
                .ok_or_else(|| malformed("Basic credentials without ':'"))?;
            Self::key_pair(id, secret, CredentialForm::Basic)
        } else {
            Err(malformed(
                "Authorization scheme is neither Bearer nor Basic",
            ))
        }
    }

    /// Parses an `x-redlock-auth` header value: a token from `POST /login`.
    pub fn from_redlock_auth(value: &[u8]) -> Result<Self, AuthError> {
        Self::token(header_text(value)?, CredentialForm::RedlockToken)
    }

    /// The credential of a `POST /login` body: the access key id as `username`, the secret as
    /// `password`.
    pub fn from_login(username: &str, password: &Secret) -> Result<Self, AuthError> {
        Self::key_pair(username, password.expose(), CredentialForm::Login)
    }

    /// Which form the credential arrived in.
    pub fn form(&self) -> CredentialForm {
        self.form
    }

    /// The access key id, when the credential names one directly (not for tokens).
    pub fn key_id(&self) -> Option<&KeyId> {
        match &self.presented {
            Presented::Key { id, .. } => Some(id),
            Presented::Token(_) => None,
        }
    }

    /// Whether the credential is a login token (as `GET /auth_token/extend` requires).
    pub fn is_token(&self) -> bool {
        matches!(self.presented, Presented::Token(_))
    }

    fn key_pair(id: &str, secret: &str, form: CredentialForm) -> Result<Self, AuthError> {
        let id = KeyId::parse(id)
            .map_err(|_| malformed("access key id not in the tgk_<16 hex> form"))?;
        if !is_secret_shaped(secret) {
            return Err(malformed("secret not in the tgs_<64 hex> form"));
        }
        Ok(Self {
            form,
            presented: Presented::Key {
                id,
                secret: Secret::new(secret.to_owned()),
            },
        })
    }

    fn token(text: &str, form: CredentialForm) -> Result<Self, AuthError> {
        if !is_jwt_shaped(text) {
            return Err(malformed(
                "token not in the JWT form (three base64url parts)",
            ));
        }
        Ok(Self {
            form,
            presented: Presented::Token(Secret::new(text.to_owned())),
        })
    }
}

/// The header value as text, bounded and without surrounding spaces.
fn header_text(value: &[u8]) -> Result<&str, AuthError> {
    if value.len() > MAX_CREDENTIAL_BYTES {
        return Err(malformed("credential longer than any toolgate issues"));
    }
    let text = std::str::from_utf8(value).map_err(|_| malformed("credential is not UTF-8"))?;
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() {
        return Err(malformed("empty credential"));
    }
    Ok(text)
}

/// Three non-empty base64url parts separated by dots (a signed JWS in compact form).
fn is_jwt_shaped(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "tgk_0123456789abcdef";
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";

    fn secret() -> String {
        format!("tgs_{}", "ab".repeat(32))
    }

    fn basic(pair: &str) -> String {
        format!("Basic {}", STANDARD.encode(pair))
    }

    #[test]
    fn authorization_values_allowed_and_denied() {
        let s = secret();
        let table: Vec<(String, Option<CredentialForm>)> = vec![
            (format!("Bearer {ID}:{s}"), Some(CredentialForm::BearerKey)),
            (format!("bearer {ID}:{s}"), Some(CredentialForm::BearerKey)),
            (
                format!("BEARER   {ID}:{s}  "),
                Some(CredentialForm::BearerKey),
            ),
            (format!("Bearer {JWT}"), Some(CredentialForm::BearerToken)),
            (basic(&format!("{ID}:{s}")), Some(CredentialForm::Basic)),
            (
                format!("basic {}", STANDARD.encode(format!("{ID}:{s}"))),
                Some(CredentialForm::Basic),
            ),
            (String::new(), None),
            ("   ".into(), None),
            ("Bearer".into(), None),
            ("Bearer ".into(), None),
            (format!("Token {ID}:{s}"), None),
            (format!("Digest {ID}:{s}"), None),
            (format!("Bearer {ID}"), None),
            (format!("Bearer {ID}:"), None),
            (format!("Bearer {ID}:{}", &s[..s.len() - 2]), None),
            (format!("Bearer {ID}:{}", s.to_uppercase()), None),
            (format!("Bearer tgk_XYZ:{s}"), None),
            (format!("Bearer {ID}{s}"), None),
            ("Bearer a.b".into(), None),
            ("Bearer a..c".into(), None),
            ("Bearer a.b.c.d".into(), None),
            ("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".into(), None),
            ("Bearer a.b.c+d".into(), None),
            (basic(&format!("{ID}{s}")), None),
            (basic(&format!("user:{s}")), None),
            (basic(&format!("{ID}:password")), None),
            ("Basic not-base64!".into(), None),
            (
                format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', b'x'])),
                None,
            ),
            (format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_BYTES)), None),
        ];
        for (value, expected) in table {
            let parsed = Credential::from_authorization(value.as_bytes());
            assert_eq!(
                parsed.as_ref().ok().map(Credential::form),
                expected,
                "{value:?}: {parsed:?}"
            );
            if let Err(error) = parsed {
                assert!(
                    matches!(error.reason(), FailureReason::Malformed(_)),
                    "{value:?}"
                );
            }
        }
        assert!(Credential::from_authorization(&[b'B', 0xff]).is_err());
    }

    #[test]
    fn redlock_values_allowed_and_denied() {
        let table: &[(&str, bool)] = &[
            (JWT, true),
            (&format!(" {JWT} "), true),
            ("", false),
            (&format!("Bearer {JWT}"), false),
            ("a.b", false),
            ("tgk_0123456789abcdef:tgs_00", false),
        ];
        for (value, allowed) in table {
            let parsed = Credential::from_redlock_auth(value.as_bytes());
            assert_eq!(parsed.is_ok(), *allowed, "{value:?}");
            if let Ok(credential) = parsed {
                assert_eq!(credential.form(), CredentialForm::RedlockToken);
                assert!(credential.is_token());
            }
        }
    }

    #[test]
    fn headers_missing_present_and_both() {
        let missing = Credential::from_headers(None, None).expect_err("missing");
        assert_eq!(missing.reason(), &FailureReason::Missing);
        let s = secret();
        let key = format!("Bearer {ID}:{s}");
        let both =
            Credential::from_headers(Some(key.as_bytes()), Some(JWT.as_bytes())).expect("both");
        assert_eq!(both.form(), CredentialForm::BearerKey, "Authorization wins");
        assert_eq!(both.key_id().map(KeyId::as_str), Some(ID));
        let redlock = Credential::from_headers(None, Some(JWT.as_bytes())).expect("redlock");
        assert_eq!(redlock.form(), CredentialForm::RedlockToken);
        assert_eq!(redlock.key_id(), None);
    }

    #[test]
    fn a_login_body_is_a_key_pair() {
        let s = Secret::new(secret());
        let credential = Credential::from_login(ID, &s).expect("login");
        assert_eq!(credential.form(), CredentialForm::Login);
        assert!(Credential::from_login("admin", &s).is_err());
        assert!(Credential::from_login(ID, &Secret::new("password".into())).is_err());
    }

    #[test]
    fn debug_never_shows_a_secret_or_token() {
        let s = secret();
        let key =
            Credential::from_authorization(format!("Bearer {ID}:{s}").as_bytes()).expect("key");
        let token = Credential::from_redlock_auth(JWT.as_bytes()).expect("token");
        let printed = format!("{key:?} {token:?}");
        assert!(!printed.contains(&s) && !printed.contains(JWT), "{printed}");
    }
}
