//! The audit trail's tamper evidence: each record's hash covers the previous record's hash and
//! the record's own fields, so editing, removing or reordering a stored record breaks the chain
//! at that point. Pure functions; the store persists the records and their hashes.
//!
//! Canonical encoding (version 1, stable: changing it is a new version tag), hashed with
//! SHA-256:
//! `"toolgate-audit-v1"`, the previous hash (32 bytes), `id` (u64 big-endian), `time` (i64
//! big-endian microseconds since the Unix epoch), then `tenant`, `key_id`, `action`, `tool`,
//! `argv`, `decision`, `outcome`, `client`, where a text is its UTF-8 length as u64 big-endian
//! followed by its bytes, an optional value is byte 0 (absent) or byte 1 and the value, and
//! `argv` is its count as u64 big-endian followed by each text. Length prefixes make the
//! encoding injective (no two records encode alike), unlike a separator-joined string.
//! The time is hashed at microsecond precision: a store must keep at least microseconds.
//!
//! Limits: the chain proves that stored records were not changed one at a time. Someone who can
//! rewrite the whole table can recompute every later hash, and dropping the newest records
//! leaves a shorter valid chain; the daemon emits each record and its hash as a log event, so
//! the log stream (kept elsewhere) anchors the chain against both.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{KeyId, TenantId};

/// The domain tag that starts every encoded record (and names the encoding's version).
pub const ENCODING_TAG: &[u8] = b"toolgate-audit-v1";

/// A SHA-256 chain hash, shown and serialized as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChainHash(pub [u8; 32]);

/// The "previous hash" of the first record ever written.
pub const GENESIS: ChainHash = ChainHash([0; 32]);

impl ChainHash {
    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, hex::FromHexError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

impl TryFrom<String> for ChainHash {
    type Error = hex::FromHexError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::from_hex(&text)
    }
}

impl From<ChainHash> for String {
    fn from(hash: ChainHash) -> Self {
        hash.to_string()
    }
}

/// What an audited request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `POST /login`.
    Login,
    /// `GET /auth_token/extend`.
    ExtendToken,
    /// Ran a tool (synchronously or as a job).
    Run,
    /// Cancelled a job or scan.
    Cancel,
    /// Terminated a tool process by pid.
    Terminate,
    /// Created a scan asset (`POST /iac/v2/scans`).
    CreateScan,
    /// Uploaded a scan's file.
    Upload,
    /// Initiated a scan job.
    Initiate,
    /// Read results (findings, SARIF, CSV export, job output).
    ReadResults,
    /// Read the audit trail.
    ReadAudit,
}

impl Action {
    /// The action's stable name (what the hash covers and the store keeps).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::ExtendToken => "extend_token",
            Action::Run => "run",
            Action::Cancel => "cancel",
            Action::Terminate => "terminate",
            Action::CreateScan => "create_scan",
            Action::Upload => "upload",
            Action::Initiate => "initiate",
            Action::ReadResults => "read_results",
            Action::ReadAudit => "read_audit",
        }
    }

    const ALL: [Action; 10] = [
        Action::Login,
        Action::ExtendToken,
        Action::Run,
        Action::Cancel,
        Action::Terminate,
        Action::CreateScan,
        Action::Upload,
        Action::Initiate,
        Action::ReadResults,
        Action::ReadAudit,
    ];
}

/// A stored name that is not an action or decision this version knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known audit {what}")]
pub struct UnknownName {
    /// `action` or `decision`.
    pub what: &'static str,
    /// The stored value.
    pub value: String,
}

impl FromStr for Action {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| UnknownName {
                what: "action",
                value: text.to_owned(),
            })
    }
}

/// Whether the request was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Authorised and carried out (its outcome says how it ended).
    Allowed,
    /// Refused (quota, policy, foreign id); the outcome says why.
    Denied,
}

impl Decision {
    /// The decision's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
        }
    }
}

impl FromStr for Decision {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Decision::Allowed, Decision::Denied]
            .into_iter()
            .find(|decision| decision.as_str() == text)
            .ok_or_else(|| UnknownName {
                what: "decision",
                value: text.to_owned(),
            })
    }
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The store's sequence number (hashed, so renumbering is detected).
    pub id: u64,
    /// When it happened (hashed at microsecond precision).
    pub time: DateTime<Utc>,
    /// The tenant that made the request.
    pub tenant: TenantId,
    /// The access key used, if any (the implicit loopback tenant has none).
    pub key_id: Option<KeyId>,
    /// What the request did.
    pub action: Action,
    /// The tool involved, if any.
    pub tool: Option<String>,
    /// The argv the host ran or would have run (empty when none).
    pub argv: Vec<String>,
    /// Whether it was let through.
    pub decision: Decision,
    /// How it ended, e.g. `completed`, `timed_out`, `404`, `quota: max_queued_scans`.
    pub outcome: String,
    /// The client's address.
    pub client: Option<IpAddr>,
}

/// A record with its chain hash, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRecord {
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
    /// `chain_hash(previous record's hash, record)`.
    pub hash: ChainHash,
}

/// The first stored record that does not match the chain: it was altered, or the record before
/// it was removed, replaced or re-hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "audit record {id} (position {index}) does not match the chain: it, or the record before it, \
     was altered, removed or reordered"
)]
pub struct BrokenAt {
    /// Position in the sequence checked (0 = first).
    pub index: usize,
    /// The record's id.
    pub id: u64,
}

/// Appends a length-prefixed text to the encoding.
fn text(hasher: &mut Sha256, value: &str) {
    hasher.update((value.len() as u64).to_be_bytes());
    hasher.update(value.as_bytes());
}

/// Appends an optional text to the encoding.
fn optional(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(value) => {
            hasher.update([1u8]);
            text(hasher, value);
        }
    }
}

/// The hash of `record` chained to `previous`, over the canonical encoding in the module doc.
pub fn chain_hash(previous: &ChainHash, record: &AuditRecord) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(ENCODING_TAG);
    hasher.update(previous.0);
    hasher.update(record.id.to_be_bytes());
    hasher.update(record.time.timestamp_micros().to_be_bytes());
    text(&mut hasher, record.tenant.as_str());
    optional(&mut hasher, record.key_id.as_ref().map(KeyId::as_str));
    text(&mut hasher, record.action.as_str());
    optional(&mut hasher, record.tool.as_deref());
    hasher.update((record.argv.len() as u64).to_be_bytes());
    for arg in &record.argv {
        text(&mut hasher, arg);
    }
    text(&mut hasher, record.decision.as_str());
    text(&mut hasher, &record.outcome);
    optional(
        &mut hasher,
        record.client.map(|ip| ip.to_string()).as_deref(),
    );
    ChainHash(hasher.finalize().into())
}

/// `record` with its hash chained to `previous` (the last stored record's hash, or [`GENESIS`]).
pub fn seal(previous: &ChainHash, record: AuditRecord) -> SealedRecord {
    let hash = chain_hash(previous, &record);
    SealedRecord { record, hash }
}

/// Checks a whole trail from its first record ([`GENESIS`]); returns the last hash (to compare
/// with an anchor kept elsewhere) or the first broken record.
pub fn verify_chain(records: &[SealedRecord]) -> Result<ChainHash, BrokenAt> {
    verify_chain_from(&GENESIS, records)
}

/// Checks records that follow a record whose hash is `anchor` (for a trail whose oldest records
/// were pruned, or a page of it). Each record is checked against the STORED hash of the one
/// before, so an edit is named at the edited record, not at every later one.
pub fn verify_chain_from(
    anchor: &ChainHash,
    records: &[SealedRecord],
) -> Result<ChainHash, BrokenAt> {
    let mut previous = *anchor;
    for (index, sealed) in records.iter().enumerate() {
        if chain_hash(&previous, &sealed.record) != sealed.hash {
            return Err(BrokenAt {
                index,
                id: sealed.record.id,
            });
        }
        previous = sealed.hash;
    }
    Ok(previous)
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
