//! tar and tar.gz extraction through the `tar` and `flate2` crates.
//!
//! The `tar` crate is used in raw mode: it parses headers and checksums, and this module
//! attaches GNU long names and PAX `path` records to the entry they describe itself, because in
//! its default mode the crate reads those records into memory whatever their declared size.
//! Here a record larger than `MAX_NAME_BYTES` / `MAX_PAX_BYTES` is refused before it is read.
//!
//! Invariants: an entry's kind is judged before its name; only regular files and directories are
//! written, only through `TreeWriter`; the decompressed stream is capped (`stream_cap`) so
//! neither metadata nor trailing data can be inflated without bound; the archive must end with
//! its end-of-archive block and, for tar.gz, the gzip trailer (CRC-32, length) is verified by
//! reading to the end, so a truncated upload is an error, not a shorter tree.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use tar::{Archive, EntryType, PaxExtensions};

use super::ExtractError;
use super::counting::{CappedReader, CountingReader};
use super::entry_path::{self, MAX_NAME_BYTES};
use super::tree::TreeWriter;
use crate::limits::ExtractLimits;

/// Read buffer over the upload.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Largest PAX extended header accepted: a long path plus times and a few attributes fit in a
/// few KiB; 64 KiB leaves room for extended attributes some tools record.
const MAX_PAX_BYTES: u64 = 64 * 1024;

/// tar's block size: headers and data are padded to it.
const BLOCK: u64 = 512;

/// Decompressed bytes allowed per entry beyond its content, for the stream cap: header, padding
/// and a typical long-name or PAX record.
const STREAM_OVERHEAD_PER_ENTRY: u64 = 8 * 1024;

/// Decompressed bytes allowed after the last entry: end-of-archive blocks and the padding of the
/// last record (10 KiB by default; tools may pad more).
const STREAM_TRAILER_ALLOWANCE: u64 = 16 << 20;

/// Compressed bytes the gzip decoder may have pulled ahead (our read buffer) before an entry
/// started: added to the per-entry compressed estimate so read-ahead never makes a small,
/// well-compressed entry look like a bomb.
const GZIP_READ_AHEAD_SLACK: u64 = READ_BUFFER_BYTES as u64;

/// Extracts a gzip-compressed tar.
pub(crate) fn extract_tar_gz(
    upload: File,
    writer: &mut TreeWriter<'_>,
    limits: &ExtractLimits,
) -> Result<(), ExtractError> {
    let compressed = Rc::new(Cell::new(0));
    let counted = CountingReader::new(upload, compressed.clone());
    let decoder = MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER_BYTES, counted));
    extract_stream(decoder, Some(compressed), writer, limits)
}

/// Extracts an uncompressed tar.
pub(crate) fn extract_tar(
    upload: File,
    writer: &mut TreeWriter<'_>,
    limits: &ExtractLimits,
) -> Result<(), ExtractError> {
    extract_stream(
        BufReader::with_capacity(READ_BUFFER_BYTES, upload),
        None,
        writer,
        limits,
    )
}

/// The most decompressed bytes a valid archive within `limits` can need.
fn stream_cap(limits: &ExtractLimits) -> u64 {
    limits
        .max_total_bytes
        .saturating_add(limits.max_files.saturating_mul(STREAM_OVERHEAD_PER_ENTRY))
        .saturating_add(STREAM_TRAILER_ALLOWANCE)
}

/// Records seen before the entry they describe.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: bool,
    pax_path: Option<Vec<u8>>,
    pax_seen: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.long_name.is_none() && !self.long_link && !self.pax_seen
    }
}

fn extract_stream<R: Read>(
    decoded: R,
    compressed: Option<Rc<Cell<u64>>>,
    writer: &mut TreeWriter<'_>,
    limits: &ExtractLimits,
) -> Result<(), ExtractError> {
    let exceeded = Rc::new(Cell::new(false));
    let position = Rc::new(Cell::new(0));
    let capped = CappedReader::new(decoded, stream_cap(limits), exceeded.clone());
    let mut archive = Archive::new(CountingReader::new(capped, position.clone()));
    // A read failure is corruption, unless the cap was what stopped the stream.
    let classify = |error: ExtractError| match error {
        ExtractError::Corrupt { .. } if exceeded.get() => ExtractError::TotalTooLarge {
            limit: limits.max_total_bytes,
        },
        other => other,
    };
    let stream_error =
        |entry: Option<&str>, e: io::Error| classify(ExtractError::corrupt(entry, e));

    let mut end_of_entries = 0;
    let mut pending = Pending::default();
    let entries = archive
        .entries()
        .map_err(|e| stream_error(None, e))?
        .raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| stream_error(None, e))?;
        let size = entry.size();
        end_of_entries = entry.raw_file_position() + size.div_ceil(BLOCK) * BLOCK;
        let kind = entry.header().entry_type();
        match kind {
            EntryType::GNULongName => {
                let mut name = read_record(&mut entry, size, MAX_NAME_BYTES, "GNU long name")
                    .map_err(classify)?;
                // GNU tar terminates the name with NUL(s); an inner NUL is refused later.
                while name.last() == Some(&0) {
                    name.pop();
                }
                if pending.long_name.replace(name).is_some() {
                    return Err(ExtractError::corrupt(
                        None,
                        "two GNU long names for one entry",
                    ));
                }
                continue;
            }
            EntryType::GNULongLink => {
                // Only links have link names, and links are refused; the record is read (bounded)
                // so the stream stays in step.
                read_record(&mut entry, size, MAX_NAME_BYTES, "GNU long link name")
                    .map_err(classify)?;
                if std::mem::replace(&mut pending.long_link, true) {
                    return Err(ExtractError::corrupt(
                        None,
                        "two GNU long link names for one entry",
                    ));
                }
                continue;
            }
            EntryType::XHeader => {
                let records =
                    read_record(&mut entry, size, MAX_PAX_BYTES, "PAX header").map_err(classify)?;
                if std::mem::replace(&mut pending.pax_seen, true) {
                    return Err(ExtractError::corrupt(None, "two PAX headers for one entry"));
                }
                pending.pax_path = pax_path(&records)?;
                continue;
            }
            EntryType::XGlobalHeader => {
                // Global defaults (e.g. git archive's commit id) never name a file: read and drop.
                read_record(&mut entry, size, MAX_PAX_BYTES, "PAX global header")
                    .map_err(classify)?;
                continue;
            }
            _ => {}
        }
        let raw_name = pending
            .pax_path
            .take()
            .or(pending.long_name.take())
            .unwrap_or_else(|| entry.header().path_bytes().into_owned());
        pending = Pending::default();
        let display = String::from_utf8_lossy(&raw_name).into_owned();
        refuse_special_kind(&display, kind, size)?;
        let path = entry_path::parse(&raw_name, limits.max_depth)?;
        if kind == EntryType::Directory || names_old_style_directory(kind, &raw_name, size)? {
            writer.add_dir(&path)?;
            continue;
        }
        let started_at = compressed.as_ref().map(|c| c.get());
        let bound = || {
            let (counter, start) = compressed.as_ref().zip(started_at)?;
            Some(counter.get() - start + GZIP_READ_AHEAD_SLACK)
        };
        writer
            .add_file(&path, &mut entry, size, &bound)
            .map_err(classify)?;
    }
    if !pending.is_empty() {
        return Err(ExtractError::corrupt(
            None,
            "the archive ends with a long name or PAX record but no entry",
        ));
    }
    // The iterator also stops at a plain end of input; only a zero block past the last entry is
    // a real end of archive.
    if position.get() < end_of_entries + BLOCK {
        return Err(ExtractError::corrupt(
            None,
            "the archive ends without its end-of-archive block: truncated",
        ));
    }
    // Reading to the end verifies the gzip trailer (CRC-32 and length) of a tar.gz.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| stream_error(None, e))?;
    Ok(())
}

/// Pre-POSIX tars mark a directory as a regular entry whose name ends with `/`; GNU tar reads
/// it so. Such an entry carrying data is neither a file nor a directory: refused.
fn names_old_style_directory(
    kind: EntryType,
    raw_name: &[u8],
    size: u64,
) -> Result<bool, ExtractError> {
    if !matches!(kind, EntryType::Regular | EntryType::Continuous) || !raw_name.ends_with(b"/") {
        return Ok(false);
    }
    if size > 0 {
        return Err(ExtractError::corrupt(
            Some(&String::from_utf8_lossy(raw_name)),
            format!("a file entry named like a directory, carrying {size} bytes"),
        ));
    }
    Ok(true)
}

/// Reads a metadata record of `size` bytes, refusing it unread if larger than `limit`.
fn read_record(
    entry: &mut impl Read,
    size: u64,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, ExtractError> {
    if size > limit {
        return Err(ExtractError::MetadataTooLarge {
            what,
            len: size,
            limit,
        });
    }
    let mut record = Vec::with_capacity(size as usize);
    entry
        .take(size)
        .read_to_end(&mut record)
        .map_err(|e| ExtractError::corrupt(None, format!("{what}: {e}")))?;
    if record.len() as u64 != size {
        return Err(ExtractError::corrupt(None, format!("{what}: truncated")));
    }
    Ok(record)
}

/// The `path` of a PAX header, refusing the records that would change how the stream is read.
fn pax_path(records: &[u8]) -> Result<Option<Vec<u8>>, ExtractError> {
    let mut path = None;
    for record in PaxExtensions::new(records) {
        let record = record.map_err(|e| ExtractError::corrupt(None, format!("PAX header: {e}")))?;
        match record.key_bytes() {
            b"path" => path = Some(record.value_bytes().to_vec()),
            // A PAX size overrides the header's; honouring one parser's reading and not the
            // other's is how archives smuggle entries. Only files over 8 GiB need it.
            b"size" => {
                return Err(ExtractError::Unsupported {
                    entry: "(PAX header)".to_owned(),
                    reason:
                        "a PAX size record (files over 8 GiB); allowed: sizes in the tar header"
                            .to_owned(),
                });
            }
            key if key.starts_with(b"GNU.sparse.") => {
                return Err(ExtractError::SpecialFile {
                    entry: "(PAX header)".to_owned(),
                    kind: "sparse file",
                });
            }
            _ => {}
        }
    }
    Ok(path)
}

/// Refuses every kind but regular files and (data-less) directories.
fn refuse_special_kind(entry: &str, kind: EntryType, size: u64) -> Result<(), ExtractError> {
    let entry = entry.to_owned();
    let special = |kind| {
        Err(ExtractError::SpecialFile {
            entry: entry.clone(),
            kind,
        })
    };
    match kind {
        EntryType::Regular | EntryType::Continuous => Ok(()),
        // A directory's data would be skipped unread: a place to hide a bomb.
        EntryType::Directory if size > 0 => Err(ExtractError::corrupt(
            Some(&entry),
            format!("a directory entry carrying {size} bytes of data"),
        )),
        EntryType::Directory => Ok(()),
        EntryType::Symlink => Err(ExtractError::Symlink { entry }),
        EntryType::Link => Err(ExtractError::HardLink { entry }),
        EntryType::Char => special("character device"),
        EntryType::Block => special("block device"),
        EntryType::Fifo => special("fifo"),
        EntryType::GNUSparse => special("sparse file"),
        _ => special("entry of unknown type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_and_empty_directories_pass_the_kind_check() {
        for (kind, size) in [
            (EntryType::Regular, 10),
            (EntryType::Continuous, 10),
            (EntryType::Directory, 0),
        ] {
            assert!(refuse_special_kind("e", kind, size).is_ok(), "{kind:?}");
        }
        type Check = fn(&ExtractError) -> bool;
        let refused: &[(EntryType, u64, Check)] = &[
            (EntryType::Directory, 1, |e| {
                matches!(e, ExtractError::Corrupt { .. })
            }),
            (EntryType::Symlink, 0, |e| {
                matches!(e, ExtractError::Symlink { .. })
            }),
            (EntryType::Link, 0, |e| {
                matches!(e, ExtractError::HardLink { .. })
            }),
            (EntryType::Char, 0, |e| {
                matches!(
                    e,
                    ExtractError::SpecialFile {
                        kind: "character device",
                        ..
                    }
                )
            }),
            (EntryType::Block, 0, |e| {
                matches!(
                    e,
                    ExtractError::SpecialFile {
                        kind: "block device",
                        ..
                    }
                )
            }),
            (EntryType::Fifo, 0, |e| {
                matches!(e, ExtractError::SpecialFile { kind: "fifo", .. })
            }),
            (EntryType::GNUSparse, 0, |e| {
                matches!(
                    e,
                    ExtractError::SpecialFile {
                        kind: "sparse file",
                        ..
                    }
                )
            }),
            (EntryType::new(b'Z'), 0, |e| {
                matches!(e, ExtractError::SpecialFile { .. })
            }),
        ];
        for (kind, size, is_expected) in refused {
            match refuse_special_kind("e", *kind, *size) {
                Ok(()) => panic!("{kind:?} accepted"),
                Err(e) => assert!(is_expected(&e), "{kind:?}: {e:?}"),
            }
        }
    }

    #[test]
    fn pax_headers_give_their_path_and_refuse_size_and_sparse_records() {
        let record = |key: &str, value: &str| {
            let body = format!(" {key}={value}\n");
            // The length prefix counts its own digits: iterate to the fixed point.
            let mut len = body.len() + 1;
            while body.len() + len.to_string().len() != len {
                len = body.len() + len.to_string().len();
            }
            format!("{len}{body}")
        };
        let with_path = format!("{}{}", record("mtime", "1"), record("path", "a/b.tf"));
        assert_eq!(
            pax_path(with_path.as_bytes()).ok().flatten(),
            Some(b"a/b.tf".to_vec())
        );
        assert_eq!(
            pax_path(record("mtime", "1").as_bytes()).ok().flatten(),
            None
        );
        assert!(matches!(
            pax_path(record("size", "10").as_bytes()),
            Err(ExtractError::Unsupported { .. })
        ));
        assert!(matches!(
            pax_path(record("GNU.sparse.map", "0,1").as_bytes()),
            Err(ExtractError::SpecialFile { .. })
        ));
    }

    #[test]
    fn the_stream_cap_leaves_room_for_headers_but_not_for_bombs() {
        let limits = ExtractLimits::default();
        let cap = stream_cap(&limits);
        assert!(cap > limits.max_total_bytes + limits.max_files * 1024);
        assert!(cap < limits.max_total_bytes * 2);
    }
}
