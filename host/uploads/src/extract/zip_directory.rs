//! Facts about a zip's central directory that the `zip` crate does not expose before it has
//! indexed every entry in memory: the entry count and directory size the end records declare,
//! and which name is listed twice.
//!
//! Invariant: `preflight` reads only the end of the file (at most the 64 KiB comment window and
//! one zip64 record) and refuses, before `ZipArchive::new` allocates anything per entry, a
//! declared entry count above `max_files` or a central directory larger than
//! `max_files * CENTRAL_BYTES_PER_ENTRY`: otherwise a 300 MB upload of empty entries would make
//! the crate index millions of them. Every end record in the window is considered, since the
//! crate may fall back from one candidate to another.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::ExtractError;
use crate::limits::ExtractLimits;

/// End of central directory record: signature, fixed size, and the window it must lie in (the
/// archive comment is at most 64 KiB).
const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const EOCD_FIXED_BYTES: usize = 22;
const EOCD_WINDOW_BYTES: u64 = EOCD_FIXED_BYTES as u64 + 0xFFFF;
/// zip64 end of central directory locator (20 bytes, right before the EOCD) and record.
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_BYTES: u64 = 20;
const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4b50;
const ZIP64_EOCD_FIXED_BYTES: usize = 56;
/// Central directory file header (APPNOTE 4.3.12).
const CENTRAL_HEADER_SIGNATURE: u32 = 0x0201_4b50;
const CENTRAL_HEADER_FIXED_BYTES: usize = 46;

/// Central directory bytes allowed per permitted entry: a typical entry takes ~130 (46 fixed,
/// a name, a timestamp extra field); 2 KiB leaves room for long names and extra fields.
const CENTRAL_BYTES_PER_ENTRY: u64 = 2 * 1024;

/// What an end record declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Declared {
    entries: u64,
    directory_bytes: u64,
}

/// Refuses archives whose end records declare more entries, or a larger central directory, than
/// the limits allow. Archives without a readable end record are left to the `zip` crate to
/// refuse as corrupt.
pub(crate) fn preflight(upload: &mut File, limits: &ExtractLimits) -> Result<(), ExtractError> {
    let declared = largest_declared(upload).map_err(|e| ExtractError::io("upload", e))?;
    if declared.entries > limits.max_files {
        return Err(ExtractError::TooManyFiles {
            limit: limits.max_files,
        });
    }
    let directory_limit = limits
        .max_files
        .saturating_mul(CENTRAL_BYTES_PER_ENTRY)
        .saturating_add(EOCD_WINDOW_BYTES);
    if declared.directory_bytes > directory_limit {
        return Err(ExtractError::MetadataTooLarge {
            what: "zip central directory",
            len: declared.directory_bytes,
            limit: directory_limit,
        });
    }
    Ok(())
}

fn largest_declared(upload: &mut File) -> io::Result<Declared> {
    let len = upload.seek(SeekFrom::End(0))?;
    let window_start = len.saturating_sub(EOCD_WINDOW_BYTES);
    upload.seek(SeekFrom::Start(window_start))?;
    let mut window = Vec::new();
    upload.take(EOCD_WINDOW_BYTES).read_to_end(&mut window)?;
    let mut largest = Declared::default();
    for at in 0..window.len().saturating_sub(EOCD_FIXED_BYTES - 1) {
        if le_u32(&window, at) != Some(EOCD_SIGNATURE) {
            continue;
        }
        let entries = le_u16(&window, at + 10).unwrap_or(0);
        let directory_bytes = le_u32(&window, at + 12).unwrap_or(0);
        let mut declared = Declared {
            entries: u64::from(entries),
            directory_bytes: u64::from(directory_bytes),
        };
        // 0xFFFF / 0xFFFFFFFF say "see the zip64 record".
        if entries == u16::MAX || directory_bytes == u32::MAX {
            let record_at = window_start + at as u64;
            if let Some(zip64) = zip64_declared(upload, record_at)? {
                declared = zip64;
            } else {
                // The crate may still find a zip64 record elsewhere: count the worst case.
                declared.entries = u64::MAX;
            }
        }
        largest.entries = largest.entries.max(declared.entries);
        largest.directory_bytes = largest.directory_bytes.max(declared.directory_bytes);
    }
    Ok(largest)
}

/// The zip64 record the locator before the EOCD at `eocd_at` points to, if both are there.
fn zip64_declared(upload: &mut File, eocd_at: u64) -> io::Result<Option<Declared>> {
    let Some(locator_at) = eocd_at.checked_sub(ZIP64_LOCATOR_BYTES) else {
        return Ok(None);
    };
    let mut locator = [0u8; ZIP64_LOCATOR_BYTES as usize];
    upload.seek(SeekFrom::Start(locator_at))?;
    if upload.read_exact(&mut locator).is_err()
        || le_u32(&locator, 0) != Some(ZIP64_LOCATOR_SIGNATURE)
    {
        return Ok(None);
    }
    let Some(record_at) = le_u64(&locator, 8) else {
        return Ok(None);
    };
    let mut record = [0u8; ZIP64_EOCD_FIXED_BYTES];
    upload.seek(SeekFrom::Start(record_at))?;
    if upload.read_exact(&mut record).is_err() || le_u32(&record, 0) != Some(ZIP64_EOCD_SIGNATURE) {
        return Ok(None);
    }
    Ok(le_u64(&record, 32)
        .zip(le_u64(&record, 40))
        .map(|(entries, directory_bytes)| Declared {
            entries,
            directory_bytes,
        }))
}

/// Finds a name the central directory lists twice, to name it in the refusal (the `zip` crate
/// only says that one exists). Walks at most `max_entries` raw headers; `None` if the directory
/// cannot be walked.
pub(crate) fn first_duplicate_name(
    upload: &mut BufReader<File>,
    central_directory_start: u64,
    max_entries: u64,
) -> Option<String> {
    upload.seek(SeekFrom::Start(central_directory_start)).ok()?;
    let mut seen = std::collections::HashSet::new();
    let mut header = [0u8; CENTRAL_HEADER_FIXED_BYTES];
    for _ in 0..max_entries {
        upload.read_exact(&mut header).ok()?;
        if le_u32(&header, 0) != Some(CENTRAL_HEADER_SIGNATURE) {
            return None;
        }
        let name_len = usize::from(le_u16(&header, 28)?);
        let skipped = i64::from(le_u16(&header, 30)?) + i64::from(le_u16(&header, 32)?);
        let mut name = vec![0u8; name_len];
        upload.read_exact(&mut name).ok()?;
        upload.seek_relative(skipped).ok()?;
        if !seen.insert(name.clone()) {
            return Some(String::from_utf8_lossy(&name).into_owned());
        }
    }
    None
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn eocd(entries: u16, directory_bytes: u32) -> Vec<u8> {
        let mut record = Vec::new();
        record.extend_from_slice(&EOCD_SIGNATURE.to_le_bytes());
        record.extend_from_slice(&[0; 4]); // disk numbers
        record.extend_from_slice(&entries.to_le_bytes()); // on this disk
        record.extend_from_slice(&entries.to_le_bytes()); // total
        record.extend_from_slice(&directory_bytes.to_le_bytes());
        record.extend_from_slice(&0u32.to_le_bytes()); // directory offset
        record.extend_from_slice(&0u16.to_le_bytes()); // comment length
        record
    }

    fn zip64_tail(entries: u64, directory_bytes: u64) -> Vec<u8> {
        let mut bytes = vec![0u8; 64]; // stand-in for the entries
        let record_at = bytes.len() as u64;
        bytes.extend_from_slice(&ZIP64_EOCD_SIGNATURE.to_le_bytes());
        bytes.extend_from_slice(&44u64.to_le_bytes()); // size of the rest
        bytes.extend_from_slice(&[0; 4]); // versions
        bytes.extend_from_slice(&[0; 8]); // disk numbers
        bytes.extend_from_slice(&entries.to_le_bytes()); // on this disk
        bytes.extend_from_slice(&entries.to_le_bytes()); // total, at +32
        bytes.extend_from_slice(&directory_bytes.to_le_bytes()); // at +40
        bytes.extend_from_slice(&0u64.to_le_bytes()); // directory offset
        bytes.extend_from_slice(&ZIP64_LOCATOR_SIGNATURE.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&record_at.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend(eocd(u16::MAX, u32::MAX));
        bytes
    }

    fn declared(bytes: &[u8]) -> Declared {
        let mut file = tempfile::tempfile().expect("tempfile");
        file.write_all(bytes).expect("write");
        largest_declared(&mut file).expect("read")
    }

    #[test]
    fn end_records_declare_counts_and_sizes() {
        let cases: &[(Vec<u8>, Declared)] = &[
            (
                eocd(3, 300),
                Declared {
                    entries: 3,
                    directory_bytes: 300,
                },
            ),
            (
                [vec![1u8; 1000], eocd(60_000, 7_000_000)].concat(),
                Declared {
                    entries: 60_000,
                    directory_bytes: 7_000_000,
                },
            ),
            (
                zip64_tail(5_000_000, 1 << 33),
                Declared {
                    entries: 5_000_000,
                    directory_bytes: 1 << 33,
                },
            ),
            // zip64 markers without a locator: assume the worst.
            (
                eocd(u16::MAX, 10),
                Declared {
                    entries: u64::MAX,
                    directory_bytes: 10,
                },
            ),
            // Two candidates (one inside a comment): the larger counts.
            (
                [eocd(2, 100), eocd(40_000, 50)].concat(),
                Declared {
                    entries: 40_000,
                    directory_bytes: 100,
                },
            ),
            (b"not a zip".to_vec(), Declared::default()),
        ];
        for (bytes, expected) in cases {
            assert_eq!(declared(bytes), *expected);
        }
    }

    #[test]
    fn preflight_refuses_counts_and_directories_beyond_the_limits() {
        let limits = ExtractLimits::default();
        let check = |bytes: Vec<u8>| {
            let mut file = tempfile::tempfile().expect("tempfile");
            file.write_all(&bytes).expect("write");
            preflight(&mut file, &limits)
        };
        assert!(check(eocd(20_000, 1_000_000)).is_ok());
        assert!(matches!(
            check(eocd(20_001, 100)),
            Err(ExtractError::TooManyFiles { .. })
        ));
        assert!(matches!(
            check(zip64_tail(3_000_000, 100)),
            Err(ExtractError::TooManyFiles { .. })
        ));
        assert!(matches!(
            check(eocd(10, 200_000_000)),
            Err(ExtractError::MetadataTooLarge { .. })
        ));
    }
}
