//! A single template upload: one UTF-8 text file, placed at `dest/template` and renamed by the
//! daemon once the scan's initiation says which name the tool expects.
//!
//! Invariants: the file is checked to be UTF-8 without NUL before anything is written (binary
//! junk is refused as `NotAnArchiveOrTemplate`); it is linked into the tree by the tree writer
//! (the same file under a second name, which the caller's removal of the upload leaves), so
//! the per-file and total limits apply as for archive entries; a new name is one plain file
//! name.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::entry_path::EntryPath;
use super::tree::TreeWriter;
use super::{ExtractError, ExtractedTree};

/// Where a single template lands inside `dest` until `name_single_template` renames it.
pub const SINGLE_TEMPLATE_NAME: &str = "template";

/// Longest file name Linux accepts (NAME_MAX).
const MAX_FILE_NAME_BYTES: usize = 255;

pub(crate) fn extract(
    upload_path: &Path,
    upload: &mut File,
    writer: &mut TreeWriter<'_>,
    max_file_bytes: u64,
) -> Result<(), ExtractError> {
    let io_err = |e| ExtractError::io("upload", e);
    upload.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let size = upload.metadata().map_err(io_err)?.len();
    if size > max_file_bytes {
        return Err(ExtractError::FileTooLarge {
            entry: SINGLE_TEMPLATE_NAME.to_owned(),
            limit: max_file_bytes,
        });
    }
    if !is_utf8_text(upload).map_err(io_err)? {
        return Err(ExtractError::NotAnArchiveOrTemplate);
    }
    let path = EntryPath {
        display: SINGLE_TEMPLATE_NAME.to_owned(),
        components: vec![SINGLE_TEMPLATE_NAME.to_owned()],
    };
    // The upload is the template: linked into the tree, not copied (a copy cost a new inode,
    // the bytes again and the upload's deletion per scan).
    writer.link_file(&path, upload_path, size)
}

/// Whether everything `reader` yields is UTF-8 without NUL, read in chunks so a large upload is
/// never held whole; a character split across chunks is carried over.
fn is_utf8_text(reader: &mut impl Read) -> std::io::Result<bool> {
    const CHUNK: usize = 64 * 1024;
    // A UTF-8 character is at most 4 bytes: at most 3 can be waiting for the next chunk.
    let mut buffer = vec![0u8; CHUNK + 3];
    let mut carried = 0;
    loop {
        let read = match reader.read(&mut buffer[carried..]) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if read == 0 {
            return Ok(carried == 0);
        }
        let filled = carried + read;
        let chunk = &buffer[..filled];
        if chunk[carried..].contains(&0) {
            return Ok(false);
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => carried = 0,
            // An incomplete character at the end: keep it for the next chunk.
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                buffer.copy_within(valid..filled, 0);
                carried = filled - valid;
            }
            Err(_) => return Ok(false),
        }
    }
}

/// Renames a single template (`dest/template`) to `file_name`, e.g. `main.tf` or
/// `template.yaml`, and returns its new path. Refuses trees that came from an archive, and names
/// that are not one plain file name (empty, `.`, `..`, containing `/`, `\` or NUL, or longer
/// than 255 bytes). Calling it again after a successful rename fails: the template is gone.
pub fn name_single_template(
    tree: &ExtractedTree,
    file_name: &str,
) -> Result<PathBuf, ExtractError> {
    if !tree.single_file {
        return Err(ExtractError::NotSingleFile);
    }
    let invalid = |reason| ExtractError::InvalidTemplateName {
        name: file_name.to_owned(),
        reason,
    };
    if file_name.is_empty() || file_name == "." || file_name == ".." {
        return Err(invalid("allowed: a plain file name such as `main.tf`"));
    }
    if file_name.contains(['/', '\\', '\0']) {
        return Err(invalid("allowed: no `/`, `\\` or NUL, one file name only"));
    }
    if file_name.len() > MAX_FILE_NAME_BYTES {
        return Err(invalid("allowed: at most 255 bytes"));
    }
    let from = tree.root.join(SINGLE_TEMPLATE_NAME);
    let to = tree.root.join(file_name);
    if from != to {
        std::fs::rename(&from, &to).map_err(|e| ExtractError::io(&from, e))?;
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a reader in tiny chunks, to split characters across reads.
    struct Dribble<'a>(&'a [u8]);
    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(out.len()).min(1);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn text_is_utf8_without_nul_even_across_chunk_boundaries() {
        let cases: &[(&[u8], bool)] = &[
            (b"resource \"x\" \"y\" {}\n", true),
            ("d\u{e9}j\u{e0} \u{1F600}".as_bytes(), true),
            (b"", true),
            (b"a\0b", false),
            (b"\xff\xfe", false),
            (b"ends mid-character \xe2\x82", false),
            (b"\x1f\x8b\x08", false),
        ];
        for (content, expected) in cases {
            assert_eq!(
                is_utf8_text(&mut &content[..]).ok(),
                Some(*expected),
                "{content:?}"
            );
            assert_eq!(
                is_utf8_text(&mut Dribble(content)).ok(),
                Some(*expected),
                "{content:?} dribbled"
            );
        }
    }
}
