//! Limits of the upload path, as configuration: `UploadLimits` is the daemon's `[uploads]` table
//! and embeds `ExtractLimits` as `[uploads.extract]`.
//!
//! Invariants: every struct rejects unknown keys (`deny_unknown_fields`), so a typo is an error
//! instead of a silently ignored limit; every field has a documented default (the named constants
//! below, each with the reason for its value); `validate` refuses a zero or nonsensical limit,
//! naming the key, the value and what is allowed.

use serde::Deserialize;

/// Default `max_upload_bytes`: 300 MB. A repository's IaC templates are a few MB; a zipped
/// monorepo with vendored modules reaches tens of MB. 300 MB leaves room for those while keeping
/// one upload's disk use bounded. Kept separate from the JSON body limit, which is ~1 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 300_000_000;

/// Default `url_lifetime_secs`: one hour, as upstream's upload URLs: long enough for a CI job to
/// create a scan and upload, short enough that a leaked URL is soon worthless.
pub const DEFAULT_URL_LIFETIME_SECS: u64 = 3_600;

/// Default `max_total_bytes`: 1 GiB of extracted file content. Three times the default upload
/// limit, so a normally compressed 300 MB upload fits, while a bomb cannot fill the disk.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1 << 30;

/// Default `max_files`: 20,000 entries created (files and directories, including the parent
/// directories an archive only implies). Large monorepos hold a few thousand templates; each entry
/// costs an inode and the scanners walk every one of them.
pub const DEFAULT_MAX_FILES: u64 = 20_000;

/// Default `max_depth`: 32 path components. Real trees are below 15 deep; deeper ones are built
/// to exhaust path length limits or the scanners' recursion.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Default `max_ratio`: 100:1 (uncompressed to compressed bytes), per entry and for the whole
/// archive. Deflate on text reaches 5-20:1; ratios above 100 are what archive bombs are made of
/// (deflate's ceiling is ~1,032:1).
pub const DEFAULT_MAX_RATIO: u64 = 100;

/// Default `max_file_bytes`: 100 MiB for one extracted file. The largest legitimate inputs (a
/// `terraform show -json` plan of a big estate) are tens of MB; a scanner would not finish on more.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 << 20;

/// The compression ratio is only judged once this many uncompressed bytes were produced (for one
/// entry, or for the archive): small text files and runs of padding compress far beyond 100:1
/// legitimately, and below 1 MiB a bomb does no harm.
pub const RATIO_CHECK_MIN_BYTES: u64 = 1 << 20;

/// What an upload may be: the daemon's `[uploads]` configuration table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadLimits {
    /// Largest accepted upload body, in bytes (default [`DEFAULT_MAX_UPLOAD_BYTES`]).
    pub max_upload_bytes: u64,
    /// How long a signed upload URL stays valid, in seconds (default
    /// [`DEFAULT_URL_LIFETIME_SECS`]).
    pub url_lifetime_secs: u64,
    /// What extraction of the upload may produce (`[uploads.extract]`).
    pub extract: ExtractLimits,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            url_lifetime_secs: DEFAULT_URL_LIFETIME_SECS,
            extract: ExtractLimits::default(),
        }
    }
}

/// What extracting one upload may produce: the daemon's `[uploads.extract]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractLimits {
    /// Sum of all extracted file sizes, counted on the bytes actually decompressed (default
    /// [`DEFAULT_MAX_TOTAL_BYTES`]).
    pub max_total_bytes: u64,
    /// Files and directories created, implied parent directories included (default
    /// [`DEFAULT_MAX_FILES`]).
    pub max_files: u64,
    /// Path components of one entry, e.g. `a/b/main.tf` is 3 (default [`DEFAULT_MAX_DEPTH`]).
    pub max_depth: usize,
    /// Largest uncompressed:compressed ratio, per entry and overall, judged past
    /// [`RATIO_CHECK_MIN_BYTES`] (default [`DEFAULT_MAX_RATIO`]).
    pub max_ratio: u64,
    /// Largest single extracted file, counted on the bytes actually decompressed (default
    /// [`DEFAULT_MAX_FILE_BYTES`]).
    pub max_file_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_files: DEFAULT_MAX_FILES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_ratio: DEFAULT_MAX_RATIO,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// A configured limit that cannot work, naming the key, its value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("uploads: `{key}` = {value} is not allowed: {allowed}")]
pub struct LimitsError {
    /// The configuration key, e.g. `extract.max_ratio`.
    pub key: &'static str,
    /// The configured value.
    pub value: u64,
    /// What the key accepts.
    pub allowed: &'static str,
}

impl UploadLimits {
    /// Refuses limits that would refuse every upload or never expire a URL.
    pub fn validate(&self) -> Result<(), LimitsError> {
        at_least(1, "max_upload_bytes", self.max_upload_bytes)?;
        at_least(1, "url_lifetime_secs", self.url_lifetime_secs)?;
        // One year: a URL that outlives that is a standing credential, not an upload link.
        if self.url_lifetime_secs > 366 * 24 * 3_600 {
            return Err(LimitsError {
                key: "url_lifetime_secs",
                value: self.url_lifetime_secs,
                allowed: "at most 31622400 (366 days)",
            });
        }
        self.extract.validate()
    }
}

impl ExtractLimits {
    /// Refuses limits that would refuse every archive.
    pub fn validate(&self) -> Result<(), LimitsError> {
        at_least(1, "extract.max_total_bytes", self.max_total_bytes)?;
        at_least(1, "extract.max_files", self.max_files)?;
        at_least(1, "extract.max_depth", self.max_depth as u64)?;
        at_least(1, "extract.max_ratio", self.max_ratio)?;
        at_least(1, "extract.max_file_bytes", self.max_file_bytes)
    }
}

fn at_least(minimum: u64, key: &'static str, value: u64) -> Result<(), LimitsError> {
    if value >= minimum {
        Ok(())
    } else {
        Err(LimitsError {
            key,
            value,
            allowed: "at least 1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_constants() {
        let limits = UploadLimits::default();
        assert_eq!(limits.max_upload_bytes, 300_000_000);
        assert_eq!(limits.url_lifetime_secs, 3_600);
        assert_eq!(limits.extract.max_total_bytes, 1 << 30);
        assert_eq!(limits.extract.max_files, 20_000);
        assert_eq!(limits.extract.max_depth, 32);
        assert_eq!(limits.extract.max_ratio, 100);
        assert_eq!(limits.validate(), Ok(()));
    }

    #[test]
    fn configuration_tables_fill_defaults_and_refuse_unknown_keys() {
        let parsed: Result<UploadLimits, _> =
            serde_json::from_str(r#"{"max_upload_bytes": 1000, "extract": {"max_files": 5}}"#);
        let parsed = parsed.expect("valid table");
        assert_eq!(parsed.max_upload_bytes, 1000);
        assert_eq!(parsed.url_lifetime_secs, DEFAULT_URL_LIFETIME_SECS);
        assert_eq!(parsed.extract.max_files, 5);
        assert_eq!(parsed.extract.max_ratio, DEFAULT_MAX_RATIO);
        for typo in [
            r#"{"max_upload_byte": 1}"#,
            r#"{"extract": {"max_file": 5}}"#,
            r#"{"extract": {"max_ratio": -1}}"#,
        ] {
            assert!(
                serde_json::from_str::<UploadLimits>(typo).is_err(),
                "{typo}"
            );
        }
    }

    #[test]
    fn limits_that_cannot_work_are_refused_by_key() {
        type Change = fn(&mut UploadLimits);
        let cases: &[(Change, &str)] = &[
            (|l| l.max_upload_bytes = 0, "max_upload_bytes"),
            (|l| l.url_lifetime_secs = 0, "url_lifetime_secs"),
            (|l| l.url_lifetime_secs = 400 * 86_400, "url_lifetime_secs"),
            (|l| l.extract.max_total_bytes = 0, "extract.max_total_bytes"),
            (|l| l.extract.max_files = 0, "extract.max_files"),
            (|l| l.extract.max_depth = 0, "extract.max_depth"),
            (|l| l.extract.max_ratio = 0, "extract.max_ratio"),
            (|l| l.extract.max_file_bytes = 0, "extract.max_file_bytes"),
        ];
        for (change, key) in cases {
            let mut limits = UploadLimits::default();
            change(&mut limits);
            assert_eq!(limits.validate().map_err(|e| e.key), Err(*key));
        }
    }
}
