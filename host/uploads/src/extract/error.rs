//! Why an extraction was refused. Every variant that concerns one archive entry names it (as
//! written in the archive, lossily decoded if it is not UTF-8), so the caller can tell the user
//! which file to fix. When any of these is returned, the destination was already removed.

use std::path::PathBuf;

/// Why an upload was not extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// `dest` must not exist: extraction creates it, so the tree holds nothing but the upload.
    #[error(
        "the extraction directory {path} already exists; allowed: a path that does not exist yet"
    )]
    DestinationExists {
        /// The destination given.
        path: PathBuf,
    },
    /// A directory to copy is not under any directory the caller may read.
    #[error(
        "{path} is not inside the allowed directories; allowed: a directory under sandbox.allowed_dirs"
    )]
    OutsideAllowedDirs {
        /// Its real path (links resolved).
        path: PathBuf,
    },
    /// The upload has no bytes.
    #[error("the upload is empty; allowed: a zip, a tar.gz, a tar or one UTF-8 template file")]
    EmptyUpload,
    /// The upload is neither a zip, a tar.gz, a tar nor UTF-8 text.
    #[error(
        "the upload is not a zip, tar.gz or tar archive, nor a UTF-8 text template (detected by content, not by name)"
    )]
    NotAnArchiveOrTemplate,
    /// An entry's path starts with `/`.
    #[error("archive entry `{entry}` has an absolute path; allowed: relative paths only")]
    AbsolutePath {
        /// The entry.
        entry: String,
    },
    /// An entry's path has a `..` component.
    #[error(
        "archive entry `{entry}` has a `..` component; allowed: paths that stay inside the archive"
    )]
    ParentComponent {
        /// The entry.
        entry: String,
    },
    /// An entry is a symbolic link.
    #[error("archive entry `{entry}` is a symbolic link; allowed: regular files and directories")]
    Symlink {
        /// The entry.
        entry: String,
    },
    /// An entry is a hard link.
    #[error("archive entry `{entry}` is a hard link; allowed: regular files and directories")]
    HardLink {
        /// The entry.
        entry: String,
    },
    /// An entry is a device, fifo, socket, sparse file or another kind that is not a file or
    /// directory.
    #[error("archive entry `{entry}` is a {kind}; allowed: regular files and directories")]
    SpecialFile {
        /// The entry.
        entry: String,
        /// What it is, e.g. "character device".
        kind: &'static str,
    },
    /// Two entries resolve to the same path.
    #[error("archive entry `{entry}` appears more than once; allowed: each path once")]
    DuplicatePath {
        /// The entry.
        entry: String,
    },
    /// An entry needs a directory where a file is, or the other way round.
    #[error("archive entry `{entry}` conflicts with a file or directory of the same path")]
    PathConflict {
        /// The entry.
        entry: String,
    },
    /// An entry's name is not valid UTF-8.
    #[error("archive entry `{entry}` has a name that is not UTF-8; allowed: UTF-8 names")]
    NonUtf8Name {
        /// The entry, lossily decoded.
        entry: String,
    },
    /// An entry's name contains a NUL byte.
    #[error("archive entry `{entry}` has a NUL byte in its name")]
    NulInName {
        /// The entry, with the NUL shown as `\0`.
        entry: String,
    },
    /// An entry's name contains `\`, which Windows tools read as a separator.
    #[error("archive entry `{entry}` has a `\\` in its name; allowed: `/` as the only separator")]
    BackslashInName {
        /// The entry.
        entry: String,
    },
    /// An entry's name is empty.
    #[error("an archive entry has an empty name")]
    EmptyName,
    /// An entry's name (or its tar metadata record) is longer than a path may be.
    #[error(
        "archive entry `{entry}` has a name or metadata record of {len} bytes; allowed: at most {limit}"
    )]
    NameTooLong {
        /// The entry (its first 64 characters, for overlong names).
        entry: String,
        /// Its length in bytes.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A metadata record (a tar long name or PAX header, a zip central directory) is larger
    /// than any valid archive within the limits needs; refused before it is read.
    #[error("the archive's {what} is {len} bytes; allowed: at most {limit}")]
    MetadataTooLarge {
        /// Which record.
        what: &'static str,
        /// Its declared size in bytes.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// An entry is nested deeper than `max_depth`.
    #[error(
        "archive entry `{entry}` is {depth} components deep; allowed: at most {limit} (`uploads.extract.max_depth`)"
    )]
    TooDeep {
        /// The entry.
        entry: String,
        /// Its depth.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// The archive creates more files and directories than `max_files`.
    #[error(
        "the archive has more than {limit} files and directories (`uploads.extract.max_files`)"
    )]
    TooManyFiles {
        /// The limit.
        limit: u64,
    },
    /// One entry decompresses to more than `max_file_bytes`.
    #[error(
        "archive entry `{entry}` is larger than {limit} bytes uncompressed (`uploads.extract.max_file_bytes`)"
    )]
    FileTooLarge {
        /// The entry.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// All entries together decompress to more than `max_total_bytes`.
    #[error(
        "the archive is larger than {limit} bytes uncompressed (`uploads.extract.max_total_bytes`)"
    )]
    TotalTooLarge {
        /// The limit.
        limit: u64,
    },
    /// One entry decompresses beyond `max_ratio` times its compressed size.
    #[error(
        "archive entry `{entry}` expands more than {limit}:1 (`uploads.extract.max_ratio`): an archive bomb"
    )]
    EntryRatioTooHigh {
        /// The entry.
        entry: String,
        /// The limit.
        limit: u64,
    },
    /// The whole archive decompresses beyond `max_ratio` times the upload's size.
    #[error(
        "the archive expands more than {limit}:1 overall (`uploads.extract.max_ratio`): an archive bomb"
    )]
    ArchiveRatioTooHigh {
        /// The limit.
        limit: u64,
    },
    /// The archive uses a feature we refuse: encryption, a compression method other than stored
    /// or deflate, or a tar size extension.
    #[error("archive entry `{entry}` is not supported: {reason}")]
    Unsupported {
        /// The entry.
        entry: String,
        /// What is unsupported, and what is.
        reason: String,
    },
    /// The archive is truncated or corrupt (bad checksum, bad header, early end).
    #[error("the archive is truncated or corrupt{}: {reason}", entry.as_ref().map(|e| format!(" at entry `{e}`")).unwrap_or_default())]
    Corrupt {
        /// The entry being read, when known.
        entry: Option<String>,
        /// What the reader found.
        reason: String,
    },
    /// `name_single_template` was called on a tree that came from an archive.
    #[error("the upload was an archive, not a single template; it has no template file to name")]
    NotSingleFile,
    /// `name_single_template` was given a name that is not one plain file name.
    #[error("template file name `{name}` is not allowed: {reason}")]
    InvalidTemplateName {
        /// The name given.
        name: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// A filesystem operation on our side failed (disk full, permissions).
    #[error("extracting to {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl ExtractError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(entry: Option<&str>, reason: impl ToString) -> Self {
        Self::Corrupt {
            entry: entry.map(str::to_owned),
            reason: reason.to_string(),
        }
    }
}
