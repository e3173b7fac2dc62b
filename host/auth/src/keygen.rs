//! `toolgate token new TENANT`: a fresh access key, shown once, and the configuration lines that
//! authorise it.
//!
//! Invariants: the secret is 32 bytes from the operating system's CSPRNG; the configuration
//! lines carry only its SHA-256; the secret exists only in the returned [`NewKey`] (the CLI prints
//! it once and never stores it).

use std::fmt;

use crate::ids::{InvalidId, KEY_ID_HEX_CHARS, KEY_ID_PREFIX, KeyId, TenantId};
use crate::secret::{EntropyUnavailable, SECRET_RANDOM_BYTES, Secret, SecretHash, random_bytes};

/// Every secret starts with this: secret scanners (and people) recognise a leaked one, and a
/// secret pasted where its digest belongs is caught by validation instead of never matching.
pub const SECRET_PREFIX: &str = "tgs_";

/// Hex characters after [`SECRET_PREFIX`] (two per random byte).
pub const SECRET_HEX_CHARS: usize = 2 * SECRET_RANDOM_BYTES;

/// Why no key could be made.
#[derive(Debug, thiserror::Error)]
pub enum NewKeyError {
    /// The tenant named on the command line is not a valid tenant id.
    #[error("TENANT {0}")]
    Tenant(#[from] InvalidId),
    /// No randomness to make a key from.
    #[error(transparent)]
    Entropy(#[from] EntropyUnavailable),
}

/// A freshly made access key.
pub struct NewKey {
    /// The key's id (public).
    pub id: KeyId,
    /// The secret: show it once, store it nowhere.
    pub secret: Secret,
    /// The SHA-256 of the secret, as the configuration stores it.
    pub secret_sha256: SecretHash,
    /// The exact TOML lines to paste at the end of the tenant's `[[tenants]]` entry.
    pub config_snippet: String,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .field("secret_sha256", &self.secret_sha256)
            .finish()
    }
}

/// Makes a new access key for `tenant` (which need not be configured yet: the operator pastes
/// the lines into its entry).
pub fn new_access_key(tenant: &str) -> Result<NewKey, NewKeyError> {
    let tenant = TenantId::parse(tenant)?;
    let id_bytes = random_bytes::<{ KEY_ID_HEX_CHARS / 2 }>()?;
    let secret_bytes = random_bytes::<SECRET_RANDOM_BYTES>()?;
    let id = KeyId::parse(&format!("{KEY_ID_PREFIX}{}", hex::encode(*id_bytes)))
        .map_err(NewKeyError::Tenant)?;
    let secret = Secret::new(format!("{SECRET_PREFIX}{}", hex::encode(*secret_bytes)));
    let secret_sha256 = secret.sha256();
    let config_snippet = format!(
        "# access key for tenant \"{tenant}\": paste at the end of its [[tenants]] entry\n\
         # (after its other keys; revoking the key is deleting these lines)\n\
         [[tenants.access_keys]]\n\
         id = \"{id}\"\n\
         secret_sha256 = \"{}\"\n",
        secret_sha256.to_hex()
    );
    Ok(NewKey {
        id,
        secret,
        secret_sha256,
        config_snippet,
    })
}

/// Whether `text` has the shape of a secret made by [`new_access_key`]: `tgs_` and 64 lowercase
/// hex characters. Anything else cannot match a configured key.
pub(crate) fn is_secret_shaped(text: &str) -> bool {
    text.strip_prefix(SECRET_PREFIX).is_some_and(|hex| {
        hex.len() == SECRET_HEX_CHARS
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_has_the_documented_shapes_and_its_own_digest() {
        let key = new_access_key("acme").expect("key");
        assert!(KeyId::parse(key.id.as_str()).is_ok());
        assert!(
            is_secret_shaped(key.secret.expose()),
            "{}",
            key.secret.expose()
        );
        assert!(key.secret_sha256.matches(&key.secret.sha256()));
        assert!(key.config_snippet.contains(&format!("id = \"{}\"", key.id)));
        assert!(key.config_snippet.contains(&key.secret_sha256.to_hex()));
        assert!(!key.config_snippet.contains(key.secret.expose()));
        assert!(!format!("{key:?}").contains(key.secret.expose()));
    }

    #[test]
    fn two_keys_differ() {
        let (a, b) = (
            new_access_key("acme").expect("a"),
            new_access_key("acme").expect("b"),
        );
        assert_ne!(a.id, b.id);
        assert_ne!(a.secret.expose(), b.secret.expose());
    }

    #[test]
    fn an_invalid_tenant_is_refused() {
        for tenant in ["", "Acme", "a b", "../x"] {
            let error = new_access_key(tenant).expect_err(tenant);
            assert!(error.to_string().starts_with("TENANT "), "{error}");
        }
    }

    #[test]
    fn secret_shapes_allowed_and_denied() {
        let ok = format!("tgs_{}", "0a".repeat(32));
        let table: &[(&str, bool)] = &[
            (&ok, true),
            (&ok.to_uppercase(), false),
            (&ok[..ok.len() - 1], false),
            (&format!("{ok}0"), false),
            (&ok.replace("tgs_", "tgk_"), false),
            (&"0a".repeat(32), false),
            ("", false),
        ];
        for (text, allowed) in table {
            assert_eq!(is_secret_shaped(text), *allowed, "{text:?}");
        }
    }
}
