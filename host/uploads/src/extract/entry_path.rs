//! Lexical validation of an archive entry's name, before anything touches the filesystem.
//!
//! Invariant: a name that passes is UTF-8 without NUL or `\`, relative, free of `..`, at most
//! `max_depth` components of at most `MAX_COMPONENT_BYTES` each, and is returned as its normal
//! components (empty and `.` components dropped), which can only name a path inside the tree.

use super::ExtractError;

/// Longest entry name accepted: Linux's PATH_MAX. Longer names cannot be opened anyway.
pub(crate) const MAX_NAME_BYTES: u64 = 4_096;

/// Longest path component accepted: Linux's NAME_MAX.
const MAX_COMPONENT_BYTES: u64 = 255;

/// A validated entry path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryPath {
    /// The name as written in the archive, for messages.
    pub(crate) display: String,
    /// Its normal components; empty for the tree's root (e.g. a tar's `./`).
    pub(crate) components: Vec<String>,
}

impl EntryPath {
    /// The components joined by `/`: the key under which the tree records this path.
    pub(crate) fn key(&self) -> String {
        self.components.join("/")
    }
}

/// Validates `raw`, an entry name as stored in the archive.
pub(crate) fn parse(raw: &[u8], max_depth: usize) -> Result<EntryPath, ExtractError> {
    if raw.contains(&0) {
        return Err(ExtractError::NulInName {
            entry: String::from_utf8_lossy(raw).replace('\0', "\\0"),
        });
    }
    let name = std::str::from_utf8(raw).map_err(|_| ExtractError::NonUtf8Name {
        entry: String::from_utf8_lossy(raw).into_owned(),
    })?;
    if name.is_empty() {
        return Err(ExtractError::EmptyName);
    }
    let entry = || name.to_owned();
    if raw.len() as u64 > MAX_NAME_BYTES {
        return Err(ExtractError::NameTooLong {
            entry: name.chars().take(64).collect(),
            len: raw.len() as u64,
            limit: MAX_NAME_BYTES,
        });
    }
    if name.starts_with('/') {
        return Err(ExtractError::AbsolutePath { entry: entry() });
    }
    if name.contains('\\') {
        return Err(ExtractError::BackslashInName { entry: entry() });
    }
    let mut components = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(ExtractError::ParentComponent { entry: entry() }),
            normal => {
                if normal.len() as u64 > MAX_COMPONENT_BYTES {
                    return Err(ExtractError::NameTooLong {
                        entry: entry(),
                        len: normal.len() as u64,
                        limit: MAX_COMPONENT_BYTES,
                    });
                }
                components.push(normal.to_owned());
            }
        }
    }
    if components.len() > max_depth {
        return Err(ExtractError::TooDeep {
            entry: entry(),
            depth: components.len(),
            limit: max_depth,
        });
    }
    Ok(EntryPath {
        display: entry(),
        components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_names_become_their_normal_components() {
        let allowed: &[(&[u8], &[&str])] = &[
            (b"main.tf", &["main.tf"]),
            (b"a/b/c.yaml", &["a", "b", "c.yaml"]),
            (b"a/", &["a"]),
            (b"./a//b/./c", &["a", "b", "c"]),
            (b"./", &[]),
            (b"..a/b..", &["..a", "b.."]),
            (
                "d\u{e9}j\u{e0}/\u{1F600}.tf".as_bytes(),
                &["d\u{e9}j\u{e0}", "\u{1F600}.tf"],
            ),
            (b"C:/x", &["C:", "x"]),
        ];
        for (raw, expected) in allowed {
            let parsed = parse(raw, 32).unwrap_or_else(|e| panic!("{raw:?} refused: {e}"));
            assert_eq!(parsed.components, *expected, "{raw:?}");
        }
    }

    #[test]
    fn refused_names_get_their_own_variant() {
        type Check = fn(&ExtractError) -> bool;
        let long_component = format!("{}/x", "a".repeat(256));
        let long_name = "a/".repeat(2_100);
        let refused: &[(&[u8], Check)] = &[
            (
                b"../x",
                |e| matches!(e, ExtractError::ParentComponent { entry } if entry == "../x"),
            ),
            (b"a/../../x", |e| {
                matches!(e, ExtractError::ParentComponent { .. })
            }),
            (b"a/..", |e| {
                matches!(e, ExtractError::ParentComponent { .. })
            }),
            (
                b"/etc/passwd",
                |e| matches!(e, ExtractError::AbsolutePath { entry } if entry == "/etc/passwd"),
            ),
            (b"/", |e| matches!(e, ExtractError::AbsolutePath { .. })),
            (b"..\\x", |e| {
                matches!(e, ExtractError::BackslashInName { .. })
            }),
            (
                b"a\0b",
                |e| matches!(e, ExtractError::NulInName { entry } if entry == "a\\0b"),
            ),
            (b"\xff\xfe.tf", |e| {
                matches!(e, ExtractError::NonUtf8Name { .. })
            }),
            (b"", |e| matches!(e, ExtractError::EmptyName)),
            (long_component.as_bytes(), |e| {
                matches!(e, ExtractError::NameTooLong { limit: 255, .. })
            }),
            (long_name.as_bytes(), |e| {
                matches!(e, ExtractError::NameTooLong { limit: 4096, .. })
            }),
            (b"1/2/3/4", |e| {
                matches!(
                    e,
                    ExtractError::TooDeep {
                        depth: 4,
                        limit: 3,
                        ..
                    }
                )
            }),
        ];
        for (raw, is_expected) in refused {
            match parse(raw, 3) {
                Ok(p) => panic!("{raw:?} accepted as {:?}", p.components),
                Err(e) => assert!(is_expected(&e), "{raw:?}: unexpected {e:?}"),
            }
        }
    }
}
