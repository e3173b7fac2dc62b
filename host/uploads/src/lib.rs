//! toolgate-uploads: the upload path of the IaC scan API, without HTTP, SQL or wasm.
//!
//! Three jobs, one module each:
//! - `signer`: signed, expiring upload URLs bound to a scan (HMAC-SHA256, key file created on
//!   first start). Single use is the caller's: it consumes the nonce a verified URL returns.
//! - `receive`: streams an upload body to a new file under a size limit, hashing it; a failed or
//!   cancelled upload leaves no file.
//! - `extract`: recognises a zip, tar.gz, tar or single UTF-8 template by content and extracts it
//!   into a fresh directory, refusing path escapes, links, special files, duplicates and archive
//!   bombs; a refused upload leaves nothing behind. Blocking: run it in `spawn_blocking`.
//!
//! `limits` holds the configuration (`[uploads]`, `[uploads.extract]`), with documented defaults.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod extract;
mod key_file;
mod limits;
mod receive;
mod signer;

pub use extract::{
    ArchiveKind, ExtractError, ExtractedTree, SINGLE_TEMPLATE_NAME, copy_directory, extract,
    name_single_template,
};
pub use limits::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_FILES, DEFAULT_MAX_RATIO,
    DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_URL_LIFETIME_SECS, ExtractLimits,
    LimitsError, RATIO_CHECK_MIN_BYTES, UploadLimits,
};
pub use receive::{ReceivedFile, UploadError, receive};
pub use signer::{SignerError, UPLOAD_PATH_PREFIX, UploadGrant, UploadSigner, UrlError, new_nonce};
