//! Access-key secrets: how they are generated, hashed and compared.
//!
//! Invariants: a [`Secret`]'s text never appears in `Debug` output and is wiped from memory when
//! dropped; the configuration holds only a [`SecretHash`]; hashes are compared in constant time.
//!
//! Why a plain SHA-256 and not a password hash (argon2, bcrypt): access key secrets are 32 bytes
//! from the operating system's CSPRNG, never chosen by a person. With 256 bits of entropy a leaked
//! hash cannot be reversed by guessing (no dictionary, no feasible brute force), which is the one
//! thing a slow password hash buys. A slow hash would instead cost tens of milliseconds of CPU on
//! every request, breaking the 5% throughput budget and handing an attacker a cheap way to burn
//! the daemon's CPU with wrong secrets.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Bytes of randomness in a secret made by `toolgate token new` (256 bits, see the module doc).
pub const SECRET_RANDOM_BYTES: usize = 32;

/// Hex characters of a SHA-256 digest as written in `secret_sha256`.
pub const SHA256_HEX_CHARS: usize = 64;

/// The operating system's random generator failed (no `getrandom(2)`, no `/dev/urandom`).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct EntropyUnavailable(String);

/// Fills `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<Zeroizing<[u8; N]>, EntropyUnavailable> {
    let mut bytes = Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut()).map_err(|error| EntropyUnavailable(error.to_string()))?;
    Ok(bytes)
}

/// A secret as a caller presented it (or as `toolgate token new` made it): never printed by
/// `Debug`, wiped from memory when dropped.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret's text.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The secret's text: only to show it once to the operator who made it, or to hash it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the secret's text (its UTF-8 bytes, as typed: the same digest
    /// `printf %s SECRET | sha256sum` prints).
    pub fn sha256(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The SHA-256 of an access key's secret: what the configuration stores instead of the secret.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Parses 64 hex characters (either case), as written in `secret_sha256`.
    pub fn from_hex(text: &str) -> Result<Self, hex::FromHexError> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text, &mut digest)?;
        Ok(Self(digest))
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether two digests are equal, in time independent of where they first differ, so a
    /// caller cannot learn a stored digest byte by byte from response times.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_of_the_text_as_typed() {
        // printf %s abc | sha256sum
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(Secret::new("abc".into()).sha256().to_hex(), expected);
    }

    #[test]
    fn hex_digests_allowed_and_denied() {
        let lower = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let upper = lower.to_uppercase();
        let table: &[(&str, bool)] = &[
            (lower, true),
            (&upper, true),
            (&lower[..63], false),
            ("", false),
            (&format!("{lower}00"), false),
            (&lower.replace('a', "g"), false),
        ];
        for (text, allowed) in table {
            assert_eq!(SecretHash::from_hex(text).is_ok(), *allowed, "{text:?}");
        }
    }

    #[test]
    fn matching_compares_every_byte() {
        let a = Secret::new("a".into()).sha256();
        let b = Secret::new("b".into()).sha256();
        assert!(a.matches(&a.clone()));
        assert!(!a.matches(&b));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = Secret::new("hunter2-very-secret".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        let first = random_bytes::<32>().expect("entropy");
        let second = random_bytes::<32>().expect("entropy");
        assert_ne!(*first, *second);
    }
}
