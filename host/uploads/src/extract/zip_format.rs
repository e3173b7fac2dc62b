//! Zip extraction through the `zip` crate (stored and deflated entries only).
//!
//! Invariants: names come from the central directory (what `ZipArchive` indexes), are checked by
//! `entry_path` and written only through `TreeWriter`; an entry's kind is judged from its Unix
//! mode before its name, so a link or device is refused whatever it is called; what is checked
//! cheaply from the central directory (entry count, declared sizes and ratios, duplicates,
//! encryption, method) is refused before any byte is decompressed; CRC-32 and the actual sizes
//! are checked on the way. `zip_directory::preflight` runs first, so the crate never indexes
//! more entries than the limits allow.

use std::fs::File;
use std::io::BufReader;

use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive};

use super::ExtractError;
use super::entry_path;
use super::tree::TreeWriter;
use super::zip_directory;
use crate::limits::{ExtractLimits, RATIO_CHECK_MIN_BYTES};

/// Read buffer over the upload: small entries then cost one read each.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Unix file type bits (`S_IFMT`) and the types we tell apart.
const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

pub(crate) fn extract(
    mut upload: File,
    upload_len: u64,
    writer: &mut TreeWriter<'_>,
    limits: &ExtractLimits,
) -> Result<(), ExtractError> {
    zip_directory::preflight(&mut upload, limits)?;
    let mut archive = ZipArchive::new(BufReader::with_capacity(READ_BUFFER_BYTES, upload))
        .map_err(|e| from_zip_error(None, e))?;
    if archive.has_duplicate_names() {
        let directory_start = archive.central_directory_start();
        let entry = zip_directory::first_duplicate_name(
            &mut archive.into_inner(),
            directory_start,
            limits.max_files.saturating_add(1),
        )
        .unwrap_or_else(|| "(a name listed twice in the central directory)".to_owned());
        return Err(ExtractError::DuplicatePath { entry });
    }
    if archive.len() as u64 > limits.max_files {
        return Err(ExtractError::TooManyFiles {
            limit: limits.max_files,
        });
    }
    if archive
        .decompressed_size()
        .is_some_and(|declared| declared > u128::from(limits.max_total_bytes))
    {
        return Err(ExtractError::TotalTooLarge {
            limit: limits.max_total_bytes,
        });
    }
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| from_zip_error(None, e))?;
        let display = String::from_utf8_lossy(entry.name_raw()).into_owned();
        refuse_special_kind(&display, entry.unix_mode())?;
        if entry.encrypted() {
            return Err(ExtractError::Unsupported {
                entry: display,
                reason: "it is encrypted; allowed: unencrypted entries".to_owned(),
            });
        }
        if !matches!(
            entry.compression(),
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(ExtractError::Unsupported {
                entry: display,
                reason: format!(
                    "compression method {:?}; allowed: stored or deflate",
                    entry.compression()
                ),
            });
        }
        let path = entry_path::parse(entry.name_raw(), limits.max_depth)?;
        let is_dir = entry.is_dir() || entry.unix_mode().is_some_and(|m| m & S_IFMT == S_IFDIR);
        if is_dir {
            writer.add_dir(&path)?;
            continue;
        }
        let declared_size = entry.size();
        // The central directory cannot claim more compressed bytes than the upload holds.
        let compressed = entry.compressed_size().min(upload_len);
        let ratio_applies = entry.compression() == CompressionMethod::Deflated;
        if ratio_applies
            && declared_size > RATIO_CHECK_MIN_BYTES
            && declared_size > compressed.max(1).saturating_mul(limits.max_ratio)
        {
            return Err(ExtractError::EntryRatioTooHigh {
                entry: path.display,
                limit: limits.max_ratio,
            });
        }
        let mut content = archive
            .by_index(index)
            .map_err(|e| from_zip_error(Some(&path.display), e))?;
        let bound = move || ratio_applies.then_some(compressed);
        writer.add_file(&path, &mut content, declared_size, &bound)?;
    }
    Ok(())
}

/// Refuses links, devices, fifos and sockets by their Unix mode (zip has no other way to say it).
fn refuse_special_kind(entry: &str, unix_mode: Option<u32>) -> Result<(), ExtractError> {
    let entry = entry.to_owned();
    match unix_mode.map(|mode| mode & S_IFMT) {
        None | Some(0 | S_IFREG | S_IFDIR) => Ok(()),
        Some(S_IFLNK) => Err(ExtractError::Symlink { entry }),
        Some(S_IFCHR) => Err(ExtractError::SpecialFile {
            entry,
            kind: "character device",
        }),
        Some(S_IFBLK) => Err(ExtractError::SpecialFile {
            entry,
            kind: "block device",
        }),
        Some(S_IFIFO) => Err(ExtractError::SpecialFile {
            entry,
            kind: "fifo",
        }),
        Some(S_IFSOCK) => Err(ExtractError::SpecialFile {
            entry,
            kind: "socket",
        }),
        Some(_) => Err(ExtractError::SpecialFile {
            entry,
            kind: "file of unknown type",
        }),
    }
}

fn from_zip_error(entry: Option<&str>, error: ZipError) -> ExtractError {
    match error {
        ZipError::UnsupportedArchive(reason) => ExtractError::Unsupported {
            entry: entry.unwrap_or("(archive)").to_owned(),
            reason: reason.to_owned(),
        },
        ZipError::CompressionMethodNotSupported(method) => ExtractError::Unsupported {
            entry: entry.unwrap_or("(archive)").to_owned(),
            reason: format!("compression method {method}; allowed: stored or deflate"),
        },
        other => ExtractError::corrupt(entry, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_and_directories_pass_the_mode_check() {
        let allowed = [None, Some(0o644), Some(0o100_644), Some(0o040_755)];
        for mode in allowed {
            assert!(refuse_special_kind("e", mode).is_ok(), "{mode:?}");
        }
        type Check = fn(&ExtractError) -> bool;
        let refused: &[(u32, Check)] = &[
            (0o120_777, |e| matches!(e, ExtractError::Symlink { .. })),
            (0o020_644, |e| {
                matches!(
                    e,
                    ExtractError::SpecialFile {
                        kind: "character device",
                        ..
                    }
                )
            }),
            (0o060_644, |e| {
                matches!(
                    e,
                    ExtractError::SpecialFile {
                        kind: "block device",
                        ..
                    }
                )
            }),
            (0o010_644, |e| {
                matches!(e, ExtractError::SpecialFile { kind: "fifo", .. })
            }),
            (0o140_644, |e| {
                matches!(e, ExtractError::SpecialFile { kind: "socket", .. })
            }),
            (0o170_644, |e| matches!(e, ExtractError::SpecialFile { .. })),
        ];
        for (mode, is_expected) in refused {
            match refuse_special_kind("e", Some(*mode)) {
                Ok(()) => panic!("mode {mode:o} accepted"),
                Err(e) => assert!(is_expected(&e), "mode {mode:o}: {e:?}"),
            }
        }
    }
}
