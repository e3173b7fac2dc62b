//! Shared helpers of the integration tests: a scratch area with an upload and a destination,
//! builders of (hostile) archives in memory, and the "nothing left behind" check.
#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

/// A scratch area: `upload` is the received file, `dest` (inside `parent`) the extraction target,
/// so "nothing outside dest" can be checked on `parent` and on the whole area.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub upload: PathBuf,
    pub parent: PathBuf,
    pub dest: PathBuf,
}

impl Scratch {
    pub fn with_upload(bytes: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let upload = dir.path().join("upload.bin");
        std::fs::write(&upload, bytes).expect("write upload");
        let parent = dir.path().join("scan");
        std::fs::create_dir(&parent).expect("mkdir scan");
        let dest = parent.join("tree");
        Self {
            dir,
            upload,
            parent,
            dest,
        }
    }

    /// Every path in the scratch area, relative, sorted (links are listed, never followed).
    pub fn listing(&self) -> Vec<String> {
        list_tree(self.dir.path())
    }

    /// Asserts that a refused extraction left the scratch area as it was before: the upload and
    /// the empty parent, no `dest`, nothing beside them.
    pub fn assert_nothing_left(&self) {
        assert_eq!(
            self.listing(),
            ["scan", "upload.bin"],
            "leftovers after a refusal"
        );
    }
}

pub fn list_tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                pending.push(path);
            }
            out.push(relative);
        }
    }
    out.sort();
    out
}

/// One zip entry to build.
pub enum ZipEntry<'a> {
    File(&'a str, &'a [u8]),
    Stored(&'a str, &'a [u8]),
    RawName(&'a [u8], &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

pub fn zip_of(entries: &[ZipEntry<'_>]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for entry in entries {
        match entry {
            ZipEntry::File(name, data) => {
                writer.start_file(*name, deflated).expect("start_file");
                writer.write_all(data).expect("write");
            }
            ZipEntry::Stored(name, data) => {
                writer.start_file(*name, stored).expect("start_file");
                writer.write_all(data).expect("write");
            }
            ZipEntry::RawName(name, data) => {
                writer
                    .start_file_with_options(deflated.name(name))
                    .expect("start_file_with_options");
                writer.write_all(data).expect("write");
            }
            ZipEntry::Dir(name) => writer
                .add_directory(*name, deflated)
                .expect("add_directory"),
            ZipEntry::Symlink(name, target) => writer
                .add_symlink(*name, *target, deflated)
                .expect("add_symlink"),
        }
    }
    writer.finish().expect("finish").into_inner()
}

/// Positions of a 4-byte little-endian signature in `bytes`.
pub fn find_signature(bytes: &[u8], signature: u32) -> Vec<usize> {
    let needle = signature.to_le_bytes();
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

pub const ZIP_LOCAL_HEADER: u32 = 0x0403_4b50;
pub const ZIP_CENTRAL_HEADER: u32 = 0x0201_4b50;

/// Overwrites a little-endian field at `offset` from every local and central header.
pub fn patch_zip_headers(zip: &mut [u8], local_offset: usize, central_offset: usize, value: &[u8]) {
    for at in find_signature(zip, ZIP_LOCAL_HEADER) {
        zip[at + local_offset..at + local_offset + value.len()].copy_from_slice(value);
    }
    for at in find_signature(zip, ZIP_CENTRAL_HEADER) {
        zip[at + central_offset..at + central_offset + value.len()].copy_from_slice(value);
    }
}

/// A tar entry with a name written verbatim into the header (no checks, as an attacker would).
pub fn raw_tar_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &[u8],
    kind: tar::EntryType,
    data: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder.append(&header, data).expect("append");
}

/// A symlink or hard link entry pointing at `target`.
pub fn tar_link(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    target: &str,
) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(0);
    header.set_mode(0o777);
    header.set_link_name(target).expect("link name");
    header.set_path(name).expect("path");
    header.set_cksum();
    builder.append(&header, &[][..]).expect("append");
}

pub fn tar_file(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, data)
        .expect("append_data");
}

pub fn finish_tar(builder: tar::Builder<Vec<u8>>) -> Vec<u8> {
    builder.into_inner().expect("finish tar")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip finish")
}

/// A PAX extended header record (`<len> key=value\n`, the length counting itself).
pub fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while body.len() + len.to_string().len() != len {
        len = body.len() + len.to_string().len();
    }
    format!("{len}{body}").into_bytes()
}

/// Deterministic incompressible bytes (xorshift), so tests need no RNG crate.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
