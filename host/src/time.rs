//! Timestamps as the API and the store write them: RFC 3339, UTC, microseconds, `Z` suffix.
//!
//! Invariant: one fixed format everywhere, so stored timestamps compare as strings.

use chrono::{SecondsFormat, Utc};

/// The current time in the daemon's timestamp format.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}
