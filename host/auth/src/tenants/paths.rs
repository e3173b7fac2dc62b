//! Lexical checks on the directories in `[[tenants]]`: no `..`, and no two tenants' output roots
//! (or one tenant's output root and another's read directory) nested in each other.
//!
//! Invariant: these checks compare paths as written, after dropping `.` components and trailing
//! slashes; they do not follow symbolic links. The daemon, which resolves paths at start-up,
//! repeats the overlap check on resolved paths.

use std::path::{Component, Path, PathBuf};

/// Why a directory as written is refused, if it is.
pub(super) fn refuse_directory(path: &Path) -> Option<&'static str> {
    if path.as_os_str().is_empty() {
        return Some("is empty; write the directory's path");
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Some(
            "contains '..'; write the directory without it, so containment checks mean what they say",
        );
    }
    None
}

/// The path without `.` components, so `./data/a/` and `data/a` compare equal.
fn normalised(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// Whether one directory is the other or contains it.
pub(super) fn overlap(a: &Path, b: &Path) -> bool {
    let (a, b) = (normalised(a), normalised(b));
    a.starts_with(&b) || b.starts_with(&a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_allowed_and_denied() {
        let table: &[(&str, bool)] = &[
            ("/srv/toolgate/acme", true),
            ("./data/acme", true),
            ("data", true),
            ("", false),
            ("/srv/../etc", false),
            ("../elsewhere", false),
        ];
        for (path, allowed) in table {
            assert_eq!(
                refuse_directory(Path::new(path)).is_none(),
                *allowed,
                "{path:?}"
            );
        }
    }

    #[test]
    fn overlapping_directories() {
        let table: &[(&str, &str, bool)] = &[
            ("/out/acme", "/out/acme", true),
            ("/out/acme", "/out/acme/", true),
            ("./out/acme", "out/acme", true),
            ("/out", "/out/acme", true),
            ("/out/acme/x", "/out/acme", true),
            ("/out/acme", "/out/acme2", false),
            ("/out/acme", "/out/globex", false),
            ("/a", "/b/a", false),
        ];
        for (a, b, expected) in table {
            assert_eq!(overlap(Path::new(a), Path::new(b)), *expected, "{a} vs {b}");
        }
    }
}
