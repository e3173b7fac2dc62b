//! The identifiers of tenants and access keys, parsed once at the edge.
//!
//! Invariants: a [`TenantId`] always matches `[a-z0-9_-]{1,64}` and a [`KeyId`] always matches
//! `tgk_[0-9a-f]{16}`, so both are safe to put in a log line, a path segment, a metrics label or
//! an error message without escaping; a value that does not match is refused with an error that
//! quotes it (truncated) and says what is allowed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tenant id: long enough for a team or project name, short enough for a path segment
/// and a log field.
pub const MAX_TENANT_ID_CHARS: usize = 64;

/// Every access key id starts with this, so a leaked id is recognisable (and greppable) as a
/// toolgate key, and a bearer credential can be told from a JWT by its first characters.
pub const KEY_ID_PREFIX: &str = "tgk_";

/// Lowercase hex characters after [`KEY_ID_PREFIX`]: 64 random bits, so two keys made by
/// `toolgate token new` never collide in practice (an id is a name, not a secret).
pub const KEY_ID_HEX_CHARS: usize = 16;

/// Longest piece of a refused value quoted back in an error: enough to recognise it, not enough
/// to flood a log line with an attacker's bytes.
const MAX_QUOTED_CHARS: usize = 40;

/// A value that is not a valid identifier; the message quotes it and says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}: {allowed}")]
pub struct InvalidId {
    /// What the value was meant to be, e.g. `tenant id`.
    pub what: &'static str,
    /// The refused value, truncated to a few dozen characters.
    pub value: String,
    /// What is allowed instead.
    pub allowed: &'static str,
}

impl InvalidId {
    fn new(what: &'static str, value: &str, allowed: &'static str) -> Self {
        Self {
            what,
            value: value.chars().take(MAX_QUOTED_CHARS).collect(),
            allowed,
        }
    }
}

/// A tenant's identifier: `[a-z0-9_-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    const ALLOWED: &'static str = "1 to 64 characters among a-z, 0-9, '_' and '-'";

    /// Parses a tenant id, refusing anything outside `[a-z0-9_-]{1,64}`.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        let shaped = !value.is_empty()
            && value.len() <= MAX_TENANT_ID_CHARS
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if shaped {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidId::new("tenant id", value, Self::ALLOWED))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> Self {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An access key's identifier: `tgk_` and 16 lowercase hex characters. It names a key in logs,
/// the audit trail and the configuration; it is not secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    const ALLOWED: &'static str =
        "\"tgk_\" and 16 lowercase hex characters (toolgate token new makes one)";

    /// Parses a key id, refusing anything but `tgk_[0-9a-f]{16}`.
    pub fn parse(value: &str) -> Result<Self, InvalidId> {
        let shaped = value.strip_prefix(KEY_ID_PREFIX).is_some_and(|hex| {
            hex.len() == KEY_ID_HEX_CHARS
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if shaped {
            Ok(Self(value.to_owned()))
        } else {
            Err(InvalidId::new("access key id", value, Self::ALLOWED))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> Self {
        id.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_allowed_and_denied() {
        let long_ok = "a".repeat(64);
        let too_long = "a".repeat(65);
        let table: &[(&str, bool)] = &[
            ("acme", true),
            ("team-7_ops", true),
            ("0", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            ("Acme", false),
            ("acme corp", false),
            ("acme/../x", false),
            ("acmé", false),
            ("acme\n", false),
        ];
        for (value, allowed) in table {
            assert_eq!(TenantId::parse(value).is_ok(), *allowed, "{value:?}");
        }
    }

    #[test]
    fn key_ids_allowed_and_denied() {
        let table: &[(&str, bool)] = &[
            ("tgk_0123456789abcdef", true),
            ("tgk_0123456789ABCDEF", false),
            ("tgk_0123456789abcde", false),
            ("tgk_0123456789abcdef0", false),
            ("tgk_0123456789abcdeg", false),
            ("TGK_0123456789abcdef", false),
            ("0123456789abcdef", false),
            ("", false),
            ("tgk_", false),
        ];
        for (value, allowed) in table {
            assert_eq!(KeyId::parse(value).is_ok(), *allowed, "{value:?}");
        }
    }

    #[test]
    fn a_refused_value_is_quoted_truncated_with_what_is_allowed() {
        let error = TenantId::parse(&"X".repeat(500)).unwrap_err();
        let message = error.to_string();
        assert!(message.contains(&"X".repeat(40)), "{message}");
        assert!(!message.contains(&"X".repeat(41)), "{message}");
        assert!(message.contains("a-z, 0-9"), "{message}");
    }

    #[test]
    fn ids_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<TenantId>("\"acme\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"ACME\"").is_err());
        assert!(serde_json::from_str::<KeyId>("\"tgk_0123456789abcdef\"").is_ok());
        assert!(serde_json::from_str::<KeyId>("\"nope\"").is_err());
    }
}
