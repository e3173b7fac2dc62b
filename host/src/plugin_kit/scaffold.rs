//! `toolgate plugin new NAME`: writes `plugins/NAME` from the template crate (`plugins/template`,
//! embedded here at build time) and adds it to the workspace's members.
//!
//! Invariants: NAME is a valid tool name that is also a valid crate-name part (lower-case ASCII
//! letter first, then letters, digits and `-`, at most `MAX_NAME_BYTES`); an existing directory
//! is never overwritten; the only changes to the template are the name substitutions in
//! `SUBSTITUTIONS`, so the new crate builds and passes its tests exactly as the template does.

use std::path::{Path, PathBuf};

/// Longest plugin name: a tool name in URLs and a crate name; short names read better.
pub const MAX_NAME_BYTES: usize = 32;
/// Names that would collide with the workspace's own plugin crates.
const RESERVED: &[&str] = &["sdk", "template"];

/// The template's files, relative to the new crate's directory.
const TEMPLATE_FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/template/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/template/src/lib.rs"),
    ),
    (
        "src/plan.rs",
        include_str!("../../../plugins/template/src/plan.rs"),
    ),
    (
        "src/parse.rs",
        include_str!("../../../plugins/template/src/parse.rs"),
    ),
    (
        "src/describe.rs",
        include_str!("../../../plugins/template/src/describe.rs"),
    ),
];

/// The workspace member the new one is listed after, in `members` and `default-members`.
const MEMBER_ANCHOR: &str = "    \"plugins/template\",\n";

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "plugin name {0:?} is not allowed: use a lower-case ASCII letter, then letters, digits \
         and '-', at most {MAX_NAME_BYTES} bytes, not ending in '-', and not sdk or template"
    )]
    BadName(String),
    #[error("{0} already exists; choose another name or remove it")]
    Exists(PathBuf),
    #[error("{0} is not the toolgate workspace root (no Cargo.toml listing plugins/template)")]
    NotWorkspace(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Checks `name`; see the module docs.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.ends_with('-')
        && !name.contains("--")
        && !RESERVED.contains(&name);
    if valid {
        Ok(())
    } else {
        Err(ScaffoldError::BadName(name.to_string()))
    }
}

/// `my-tool` -> `MyTool`.
fn camel_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The template's text with the name substituted: each (template text, new text) pair, in
/// order; `no_trace_of_the_template_name_survives_rendering` proves the list is complete.
pub fn render(text: &str, name: &str) -> String {
    let substitutions = [
        (
            "toolgate plugin template: `toolgate plugin new NAME` copies this crate".to_string(),
            format!("toolgate plugin for {name}"),
        ),
        (
            "toolgate-plugin-template".to_string(),
            format!("toolgate-plugin-{name}"),
        ),
        (
            "TemplatePlugin".to_string(),
            format!("{}Plugin", camel_case(name)),
        ),
        ("\"template\"".to_string(), format!("\"{name}\"")),
        (
            "build-plugin template".to_string(),
            format!("build-plugin {name}"),
        ),
        (
            "plugins/template.wasm".to_string(),
            format!("plugins/{name}.wasm"),
        ),
        (
            "`template --format".to_string(),
            format!("`{name} --format"),
        ),
        (
            "toolgate plugin for `template`".to_string(),
            format!("toolgate plugin for `{name}`"),
        ),
    ];
    substitutions
        .iter()
        .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

/// Writes `<workspace>/plugins/<name>` and lists it in the workspace's Cargo.toml. Returns the
/// new crate's directory.
pub fn scaffold(workspace: &Path, name: &str) -> Result<PathBuf, ScaffoldError> {
    check_name(name)?;
    let manifest_path = workspace.join("Cargo.toml");
    let manifest = std::fs::read_to_string(&manifest_path)
        .ok()
        .filter(|text| text.contains(MEMBER_ANCHOR))
        .ok_or_else(|| ScaffoldError::NotWorkspace(workspace.to_owned()))?;
    let dir = workspace.join("plugins").join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    for (relative, text) in TEMPLATE_FILES {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ScaffoldError::Write {
                path: parent.to_owned(),
                source,
            })?;
        }
        std::fs::write(&path, render(text, name))
            .map_err(|source| ScaffoldError::Write { path, source })?;
    }
    let member = format!("    \"plugins/{name}\",\n");
    let listed = manifest.replace(MEMBER_ANCHOR, &format!("{MEMBER_ANCHOR}{member}"));
    std::fs::write(&manifest_path, listed).map_err(|source| ScaffoldError::Write {
        path: manifest_path,
        source,
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let table: &[(&str, bool)] = &[
            ("semgrep", true),
            ("my-tool2", true),
            ("a", true),
            ("", false),
            ("Semgrep", false),
            ("2tool", false),
            ("-x", false),
            ("x-", false),
            ("a--b", false),
            ("my_tool", false),
            ("../x", false),
            ("a/b", false),
            ("sdk", false),
            ("template", false),
            ("t\u{0435}st", false),
        ];
        for (name, ok) in table {
            assert_eq!(check_name(name).is_ok(), *ok, "name {name:?}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn scaffolds_every_file_and_lists_the_member_once() {
        let workspace = tempfile::tempdir().expect("tempdir");
        let manifest = "[workspace]\nmembers = [\n    \"plugins/template\",\n]\ndefault-members = [\n    \"plugins/template\",\n]\n";
        std::fs::write(workspace.path().join("Cargo.toml"), manifest).expect("write");
        let dir = scaffold(workspace.path(), "my-tool").expect("scaffold");
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        assert!(
            cargo.contains("name = \"toolgate-plugin-my-tool\""),
            "{cargo}"
        );
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).expect("lib.rs");
        assert!(lib.contains("pub const TOOL: &str = \"my-tool\";"), "{lib}");
        assert!(lib.contains("export_plugin!(MyToolPlugin)"), "{lib}");
        assert!(!lib.contains("TemplatePlugin"));
        for (relative, _) in TEMPLATE_FILES {
            assert!(dir.join(relative).is_file(), "{relative}");
        }
        let listed = std::fs::read_to_string(workspace.path().join("Cargo.toml")).expect("read");
        assert_eq!(listed.matches("\"plugins/my-tool\"").count(), 2, "{listed}");
        assert!(matches!(
            scaffold(workspace.path(), "my-tool"),
            Err(ScaffoldError::Exists(_))
        ));
    }

    #[test]
    fn refuses_a_directory_that_is_not_the_workspace() {
        let elsewhere = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            scaffold(elsewhere.path(), "x"),
            Err(ScaffoldError::NotWorkspace(_))
        ));
        assert!(matches!(
            scaffold(elsewhere.path(), "Bad"),
            Err(ScaffoldError::BadName(_))
        ));
    }

    /// Phrases of the template that speak of IaC templates, not of the template crate.
    const TEMPLATE_WORDS_KEPT: &[&str] = &["scan_template_types", "template type"];

    #[test]
    fn no_trace_of_the_template_name_survives_rendering() {
        for (relative, text) in TEMPLATE_FILES {
            let mut rendered = render(text, "zz-probe").to_ascii_lowercase();
            for kept in TEMPLATE_WORDS_KEPT {
                rendered = rendered.replace(kept, "");
            }
            let left: Vec<&str> = rendered
                .lines()
                .filter(|line| line.contains("template"))
                .collect();
            assert!(
                left.is_empty(),
                "{relative} still names the template: {left:?}"
            );
        }
    }

    #[test]
    fn every_changed_line_is_a_line_naming_the_plugin() {
        for (relative, text) in TEMPLATE_FILES {
            let rendered = render(text, "zz-probe");
            assert_eq!(rendered.lines().count(), text.lines().count(), "{relative}");
            for (before, after) in text.lines().zip(rendered.lines()) {
                if before != after {
                    assert!(
                        after.contains("zz-probe") || after.contains("ZzProbePlugin"),
                        "{relative}: {before:?} -> {after:?}"
                    );
                }
            }
        }
    }
}
