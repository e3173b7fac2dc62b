//! Recognises what an upload is from its first bytes, never from a name.
//!
//! Invariant: only the magic numbers below select a format; anything else is a template
//! candidate, which `single` accepts only if the whole file is UTF-8 text without NUL.

use std::io::Read;

/// How much of the upload decides its format: the ustar magic sits at offset 257.
const SNIFF_BYTES: usize = 512;

/// A zip's first local file header.
const ZIP_LOCAL_HEADER: &[u8] = b"PK\x03\x04";
/// An empty zip: nothing but the end-of-central-directory record.
const ZIP_EMPTY_ARCHIVE: &[u8] = b"PK\x05\x06";
/// gzip's magic bytes (RFC 1952).
const GZIP_MAGIC: &[u8] = b"\x1f\x8b";
/// POSIX ustar and GNU tar both start their magic with `ustar` at this offset.
const USTAR_MAGIC_OFFSET: usize = 257;
const USTAR_MAGIC: &[u8] = b"ustar";

/// What an upload is, by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A zip archive (stored and deflated entries).
    Zip,
    /// A gzip-compressed tar archive.
    TarGz,
    /// An uncompressed tar archive.
    Tar,
    /// One template file (UTF-8 text), placed at `dest/template`.
    SingleTemplate,
    /// A directory the daemon copied (`copy_directory`); never what `sniff` says of an upload.
    Directory,
}

/// Reads the head of `upload` and says what it is; `None` for an empty upload.
pub(crate) fn sniff(upload: &mut impl Read) -> std::io::Result<Option<ArchiveKind>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    upload.take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
    Ok(classify(&head))
}

fn classify(head: &[u8]) -> Option<ArchiveKind> {
    if head.is_empty() {
        None
    } else if head.starts_with(ZIP_LOCAL_HEADER) || head.starts_with(ZIP_EMPTY_ARCHIVE) {
        Some(ArchiveKind::Zip)
    } else if head.starts_with(GZIP_MAGIC) {
        Some(ArchiveKind::TarGz)
    } else if head.get(USTAR_MAGIC_OFFSET..USTAR_MAGIC_OFFSET + USTAR_MAGIC.len())
        == Some(USTAR_MAGIC)
    {
        Some(ArchiveKind::Tar)
    } else {
        Some(ArchiveKind::SingleTemplate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_by_magic_bytes_only() {
        let mut ustar = vec![0u8; 512];
        ustar[..7].copy_from_slice(b"main.tf");
        ustar[257..263].copy_from_slice(b"ustar\0");
        let mut gnu_tar = vec![0u8; 512];
        gnu_tar[257..265].copy_from_slice(b"ustar  \0");
        let cases: &[(&[u8], Option<ArchiveKind>)] = &[
            (b"", None),
            (b"PK\x03\x04rest", Some(ArchiveKind::Zip)),
            (b"PK\x05\x06\0\0\0\0", Some(ArchiveKind::Zip)),
            (b"\x1f\x8b\x08\0", Some(ArchiveKind::TarGz)),
            (&ustar, Some(ArchiveKind::Tar)),
            (&gnu_tar, Some(ArchiveKind::Tar)),
            // Everything else is only a candidate template: `single` checks it is text.
            (
                b"resource \"aws_s3_bucket\" \"b\" {}\n",
                Some(ArchiveKind::SingleTemplate),
            ),
            (b"PK\x01\x02", Some(ArchiveKind::SingleTemplate)),
            (b"\x7fELF\x02\x01", Some(ArchiveKind::SingleTemplate)),
        ];
        for (head, expected) in cases {
            assert_eq!(classify(head), *expected, "{head:?}");
        }
    }
}
