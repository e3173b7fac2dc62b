//! Signed upload URLs: `PUT {public_base}/iac/v2/uploads/{scan_id}?expires=..&nonce=..&sig=..`.
//!
//! The tag is HMAC-SHA256 over a domain-separation label and the length-prefixed scan id, nonce
//! and expiry, so no two different triples share a message. Invariants: a URL verifies only for
//! the scan it was made for, with the nonce and expiry it was made with, before it expires, under
//! the key that signed it; tags are compared in constant time (`Mac::verify_slice`); the signature
//! is checked before the expiry so an attacker learns nothing from which check failed. Single use
//! is NOT enforced here: the caller consumes the returned nonce in its store.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::key_file::{self, KEY_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Label mixed into every tag, so a key reused elsewhere can never produce an upload URL tag, and
/// a future URL format gets a new label.
const DOMAIN_LABEL: &[u8] = b"toolgate upload url v1";

/// Random bytes in a nonce: 128 bits, beyond guessing and collision.
const NONCE_BYTES: usize = 16;

/// Hex length of a tag: HMAC-SHA256 gives 32 bytes.
const SIG_HEX_LEN: usize = 64;

/// The path prefix upload URLs live under; the scan id follows.
pub const UPLOAD_PATH_PREFIX: &str = "/iac/v2/uploads/";

/// Signs and verifies upload URLs with a key kept in a file.
pub struct UploadSigner {
    key: [u8; KEY_LEN],
}

impl fmt::Debug for UploadSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadSigner")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// What a verified upload URL grants: one upload to its scan, identified by the nonce the caller
/// must consume exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    /// The URL's nonce (32 lowercase hex characters); consume it to make the URL single-use.
    pub nonce: String,
    /// When the URL expires, in Unix seconds.
    pub expires_at: i64,
}

/// Why an upload URL was refused. All of them answer 403.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL was valid but its expiry has passed.
    #[error(
        "the upload URL expired at {expires_at} (Unix seconds); create a new scan for a new URL"
    )]
    Expired {
        /// The expiry the URL carried.
        expires_at: i64,
    },
    /// The signature does not match this scan, nonce and expiry under this daemon's key.
    #[error("the upload URL's signature is not valid for this scan")]
    BadSignature,
    /// A query parameter is missing, repeated, unknown or not in its format.
    #[error(
        "the upload URL's query parameter `{0}` is missing or malformed; allowed: expires=<unix seconds>&nonce=<32 hex>&sig=<64 hex>, each once"
    )]
    Malformed(&'static str),
}

/// Failures to set up signing: the key file or the system's randomness.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// The key file could not be read, created or written.
    #[error("upload URL key file {path}: {source}")]
    KeyFile {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but cannot be trusted or used.
    #[error("upload URL key file {path} {reason}")]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness from the operating system: {0}")]
    Randomness(String),
}

impl UploadSigner {
    /// Loads the key from `key_path`, or creates it there on first start (mode 0600; a missing
    /// parent directory is created 0700). The daemon passes `<data_dir>/secrets/upload-url.key`.
    pub fn load_or_create(key_path: &Path) -> Result<Self, SignerError> {
        Ok(Self {
            key: key_file::load_or_create(key_path)?,
        })
    }

    /// A signer with a given key, for tests and benchmarks that need no file.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The query string (`expires=..&nonce=..&sig=..`, no leading `?`) that authorises one
    /// upload to `scan_id` until `expires_at_unix`.
    pub fn sign(&self, scan_id: &str, nonce: &str, expires_at_unix: i64) -> String {
        let tag = self
            .mac(scan_id, nonce, expires_at_unix)
            .finalize()
            .into_bytes();
        format!(
            "expires={expires_at_unix}&nonce={nonce}&sig={}",
            hex::encode(tag)
        )
    }

    /// The absolute upload URL `{public_base}/iac/v2/uploads/{scan_id}?{query}`. A trailing `/`
    /// on `public_base` is ignored; the scan id is percent-encoded as one path segment.
    pub fn upload_url(
        &self,
        public_base: &str,
        scan_id: &str,
        nonce: &str,
        expires_at_unix: i64,
    ) -> String {
        format!(
            "{}{UPLOAD_PATH_PREFIX}{}?{}",
            public_base.trim_end_matches('/'),
            encode_path_segment(scan_id),
            self.sign(scan_id, nonce, expires_at_unix)
        )
    }

    /// Checks `query` (the URL's query string, without `?`) for an upload to `scan_id` (the
    /// decoded path segment) at `now_unix`. On success the caller must still consume the nonce.
    pub fn verify(
        &self,
        scan_id: &str,
        query: &str,
        now_unix: i64,
    ) -> Result<UploadGrant, UrlError> {
        let parsed = ParsedQuery::parse(query)?;
        let tag = hex::decode(parsed.sig).map_err(|_| UrlError::BadSignature)?;
        self.mac(scan_id, parsed.nonce, parsed.expires_at)
            .verify_slice(&tag)
            .map_err(|_| UrlError::BadSignature)?;
        if now_unix >= parsed.expires_at {
            return Err(UrlError::Expired {
                expires_at: parsed.expires_at,
            });
        }
        Ok(UploadGrant {
            nonce: parsed.nonce.to_owned(),
            expires_at: parsed.expires_at,
        })
    }

    fn mac(&self, scan_id: &str, nonce: &str, expires_at_unix: i64) -> HmacSha256 {
        // HMAC accepts keys of any length; 32 bytes can never be refused.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for field in [
            DOMAIN_LABEL,
            scan_id.as_bytes(),
            nonce.as_bytes(),
            expires_at_unix.to_string().as_bytes(),
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }
}

/// A fresh nonce: 128 random bits as 32 lowercase hex characters.
pub fn new_nonce() -> Result<String, SignerError> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| SignerError::Randomness(e.to_string()))?;
    Ok(hex::encode(bytes))
}

struct ParsedQuery<'q> {
    expires_at: i64,
    nonce: &'q str,
    sig: &'q str,
}

impl<'q> ParsedQuery<'q> {
    fn parse(query: &'q str) -> Result<Self, UrlError> {
        let (mut expires, mut nonce, mut sig) = (None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or(UrlError::Malformed("query"))?;
            let slot = match key {
                "expires" => &mut expires,
                "nonce" => &mut nonce,
                "sig" => &mut sig,
                _ => return Err(UrlError::Malformed("query")),
            };
            // A repeated key could be read differently by a proxy and by us: refuse it.
            if slot.replace(value).is_some() {
                return Err(UrlError::Malformed(static_name(key)));
            }
        }
        let expires_at = expires
            .filter(|v| is_canonical_integer(v))
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or(UrlError::Malformed("expires"))?;
        let nonce = nonce
            .filter(|v| v.len() == NONCE_BYTES * 2 && is_lower_hex(v))
            .ok_or(UrlError::Malformed("nonce"))?;
        let sig = sig.ok_or(UrlError::Malformed("sig"))?;
        // A wrong-length or non-hex tag is a bad signature, not a malformed URL: it is what a
        // truncated or forged link looks like.
        if sig.len() != SIG_HEX_LEN || !is_lower_hex(sig) {
            return Err(UrlError::BadSignature);
        }
        Ok(Self {
            expires_at,
            nonce,
            sig,
        })
    }
}

fn static_name(key: &str) -> &'static str {
    match key {
        "expires" => "expires",
        "nonce" => "nonce",
        _ => "sig",
    }
}

/// Only the form `sign` writes (`-`? digits, no leading zero), so one expiry has one spelling.
fn is_canonical_integer(value: &str) -> bool {
    match value.strip_prefix('-') {
        Some(digits) => is_canonical_natural(digits) && digits != "0",
        None => is_canonical_natural(value),
    }
}

fn is_canonical_natural(digits: &str) -> bool {
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

fn is_lower_hex(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const SCAN: &str = "6b0a5d3e-0d8f-4a61-9f3c-1f7f0d1c2b3a";
    const NONCE: &str = "00112233445566778899aabbccddeeff";

    fn signer() -> UploadSigner {
        UploadSigner::from_key([7; 32])
    }

    #[test]
    fn a_signed_query_verifies_for_its_scan_until_it_expires() {
        let query = signer().sign(SCAN, NONCE, NOW + 60);
        assert!(query.starts_with(&format!("expires={}&nonce={NONCE}&sig=", NOW + 60)));
        let grant = signer().verify(SCAN, &query, NOW);
        assert_eq!(
            grant,
            Ok(UploadGrant {
                nonce: NONCE.to_owned(),
                expires_at: NOW + 60
            })
        );
        assert_eq!(
            signer()
                .verify(SCAN, &query, NOW + 59)
                .map(|g| g.expires_at),
            Ok(NOW + 60)
        );
    }

    #[test]
    fn tampered_or_expired_urls_are_refused() {
        let query = signer().sign(SCAN, NONCE, NOW + 60);
        let sig = query
            .rsplit_once("sig=")
            .map(|(_, s)| s.to_owned())
            .unwrap_or_default();
        let other_nonce = "ffeeddccbbaa99887766554433221100";
        let cases: &[(&str, &str, String, i64, UrlError)] = &[
            (
                "other scan id",
                "other-scan",
                query.clone(),
                NOW,
                UrlError::BadSignature,
            ),
            (
                "later expiry, same sig",
                SCAN,
                format!("expires={}&nonce={NONCE}&sig={sig}", NOW + 3_600),
                NOW,
                UrlError::BadSignature,
            ),
            (
                "other nonce, same sig",
                SCAN,
                format!("expires={}&nonce={other_nonce}&sig={sig}", NOW + 60),
                NOW,
                UrlError::BadSignature,
            ),
            (
                "sig truncated by one byte",
                SCAN,
                format!("expires={}&nonce={NONCE}&sig={}", NOW + 60, &sig[..62]),
                NOW,
                UrlError::BadSignature,
            ),
            (
                "sig truncated by one hex digit",
                SCAN,
                format!("expires={}&nonce={NONCE}&sig={}", NOW + 60, &sig[..63]),
                NOW,
                UrlError::BadSignature,
            ),
            (
                "sig upper-cased",
                SCAN,
                format!(
                    "expires={}&nonce={NONCE}&sig={}",
                    NOW + 60,
                    sig.to_uppercase()
                ),
                NOW,
                UrlError::BadSignature,
            ),
            (
                "expired at the second",
                SCAN,
                query.clone(),
                NOW + 60,
                UrlError::Expired {
                    expires_at: NOW + 60,
                },
            ),
            (
                "expired long ago",
                SCAN,
                query.clone(),
                NOW + 86_400,
                UrlError::Expired {
                    expires_at: NOW + 60,
                },
            ),
        ];
        for (what, scan, query, now, expected) in cases {
            assert_eq!(
                signer().verify(scan, query, *now).as_ref(),
                Err(expected),
                "{what}"
            );
        }
        let other_key = UploadSigner::from_key([8; 32]);
        assert_eq!(
            other_key.verify(SCAN, &query, NOW),
            Err(UrlError::BadSignature)
        );
    }

    #[test]
    fn a_bad_signature_is_reported_before_expiry() {
        let forged = format!("expires={}&nonce={NONCE}&sig={}", NOW - 1, "0".repeat(64));
        assert_eq!(
            signer().verify(SCAN, &forged, NOW),
            Err(UrlError::BadSignature)
        );
    }

    #[test]
    fn malformed_queries_name_the_parameter() {
        let sig = "0".repeat(64);
        let cases: &[(String, &str)] = &[
            (String::new(), "expires"),
            (format!("nonce={NONCE}&sig={sig}"), "expires"),
            (format!("expires=soon&nonce={NONCE}&sig={sig}"), "expires"),
            (format!("expires=+5&nonce={NONCE}&sig={sig}"), "expires"),
            (format!("expires=05&nonce={NONCE}&sig={sig}"), "expires"),
            (format!("expires=-0&nonce={NONCE}&sig={sig}"), "expires"),
            (
                format!("expires=99999999999999999999&nonce={NONCE}&sig={sig}"),
                "expires",
            ),
            (format!("expires=5&sig={sig}"), "nonce"),
            (format!("expires=5&nonce=abc&sig={sig}"), "nonce"),
            (
                format!("expires=5&nonce={}&sig={sig}", NONCE.to_uppercase()),
                "nonce",
            ),
            (format!("expires=5&nonce={NONCE}"), "sig"),
            (
                format!("expires=5&expires=6&nonce={NONCE}&sig={sig}"),
                "expires",
            ),
            (
                format!("expires=5&nonce={NONCE}&sig={sig}&sig={sig}"),
                "sig",
            ),
            (format!("expires=5&nonce={NONCE}&sig={sig}&x=1"), "query"),
            (format!("expires=5&nonce={NONCE}&sig"), "query"),
        ];
        for (query, field) in cases {
            assert_eq!(
                signer().verify(SCAN, query, 0),
                Err(UrlError::Malformed(field)),
                "{query}"
            );
        }
    }

    #[test]
    fn upload_urls_are_absolute_and_verify_with_their_query() {
        for base in [
            "http://127.0.0.1:8888",
            "http://127.0.0.1:8888/",
            "https://scan.example/",
        ] {
            let url = signer().upload_url(base, SCAN, NONCE, NOW + 60);
            let expected_prefix = format!("{}/iac/v2/uploads/{SCAN}?", base.trim_end_matches('/'));
            assert!(url.starts_with(&expected_prefix), "{url}");
            let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
            assert!(signer().verify(SCAN, query, NOW).is_ok(), "{url}");
        }
        let odd = signer().upload_url("http://h", "a b/c?", NONCE, NOW);
        assert!(
            odd.starts_with("http://h/iac/v2/uploads/a%20b%2Fc%3F?"),
            "{odd}"
        );
    }

    #[test]
    fn nonces_are_128_bit_lowercase_hex_and_differ() {
        let (a, b) = (new_nonce().ok(), new_nonce().ok());
        for nonce in [&a, &b] {
            let nonce = nonce.as_deref().unwrap_or_default();
            assert_eq!(nonce.len(), 32);
            assert!(is_lower_hex(nonce));
        }
        assert_ne!(a, b);
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let shown = format!("{:?}", UploadSigner::from_key([0xab; 32]));
        assert!(
            !shown.contains("171") && !shown.contains("ab, ab"),
            "{shown}"
        );
        assert!(shown.contains("redacted"));
    }
}
