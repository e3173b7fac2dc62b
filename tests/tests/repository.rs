//! The repository is self-contained: a fresh clone passes `just test` with nothing beside it.
//!
//! Our build machines and CI keep a `shared/` folder beside the checkout; a user's clone has
//! none. A build, test, benchmark or script that reads it is green here and red for everyone
//! else, so every tracked file outside the documentation is checked for a reference to it.

use std::path::{Path, PathBuf};
use std::process::Command;

use toolgate_tests::repo_root;

/// The folder beside the checkout that only our machines have. Spelled in two pieces so this
/// file does not match itself.
fn outside_folder() -> String {
    ["..", "/shared"].concat()
}

/// Documentation may say where a fixture came from; nothing that runs may read from there.
fn is_documentation(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "md")
}

/// Tracked files, from git when the checkout has it, else every file but build output.
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|out| out.status.success() && !out.stdout.is_empty());
    match listed {
        Some(out) => out
            .stdout
            .split(|b| *b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| root.join(String::from_utf8_lossy(name).as_ref()))
            .collect(),
        None => walk(root),
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the repository") {
        let path = entry.expect("read a directory entry").path();
        let name = path.file_name().unwrap_or_default();
        if name == "target" || name == ".git" || name == "data" {
            continue;
        }
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The files, relative to `root`, that are not documentation and mention the outside folder.
fn offenders(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let needle = outside_folder();
    files
        .iter()
        .filter(|path| !is_documentation(path))
        .filter(|path| {
            std::fs::read(path)
                .map(|bytes| String::from_utf8_lossy(&bytes).contains(&needle))
                .unwrap_or(false)
        })
        .map(|path| {
            path.strip_prefix(root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn nothing_outside_the_documentation_reads_beside_the_checkout() {
    let root = repo_root();
    let files = repository_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("justfile")),
        "the file list misses the justfile: {} files",
        files.len()
    );
    let found = offenders(&root, &files);
    assert!(
        found.is_empty(),
        "these files read {}, which a fresh clone does not have (copy what they need into tests/fixtures/): {found:?}",
        outside_folder()
    );
}

#[test]
fn the_check_finds_a_reference_outside_the_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let mention = format!("{}/fixtures/x.json", outside_folder());
    std::fs::write(
        dir.path().join("reads.rs"),
        format!("let p = \"{mention}\";"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.md"), format!("came from {mention}")).unwrap();
    std::fs::write(dir.path().join("clean.rs"), "let p = \"tests/fixtures\";").unwrap();
    let files = walk(dir.path());
    assert_eq!(files.len(), 3);
    assert_eq!(offenders(dir.path(), &files), vec!["reads.rs".to_string()]);
}
