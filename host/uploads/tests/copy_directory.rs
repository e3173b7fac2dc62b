//! `copy_directory`: what an MCP `start_scan` of a directory copies, and what it refuses (a
//! source outside the roots, reached directly or through a link; links, FIFOs and limits
//! inside), each refusal leaving nothing behind.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use toolgate_uploads::{ArchiveKind, ExtractError, ExtractLimits, copy_directory};

struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir").keep();
        let root = root.canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("allowed/project/modules/vpc")).expect("mkdir");
        std::fs::create_dir_all(root.join("secret")).expect("mkdir");
        std::fs::write(
            root.join("allowed/project/main.tf"),
            "resource \"x\" \"y\" {}\n",
        )
        .expect("w");
        std::fs::write(root.join("allowed/project/modules/vpc/vpc.tf"), "# vpc\n").expect("w");
        std::fs::write(root.join("secret/key.pem"), "PRIVATE").expect("w");
        Self { root }
    }

    fn allowed(&self) -> Vec<PathBuf> {
        vec![self.root.join("allowed")]
    }

    fn copy(
        &self,
        source: &Path,
    ) -> (
        Result<toolgate_uploads::ExtractedTree, ExtractError>,
        PathBuf,
    ) {
        let dest = self.root.join("scan-tree");
        let _ = std::fs::remove_dir_all(&dest);
        let copied = copy_directory(source, &self.allowed(), &dest, &ExtractLimits::default());
        (copied, dest)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Whether an error is the refusal a case expects.
type Refusal = fn(&ExtractError) -> bool;

#[test]
fn a_directory_inside_the_roots_is_copied_whole() {
    let scratch = Scratch::new();
    let (copied, dest) = scratch.copy(&scratch.root.join("allowed/project"));
    let tree = copied.expect("copied");
    assert_eq!(tree.kind, ArchiveKind::Directory);
    assert_eq!(tree.files, 2);
    assert_eq!(
        std::fs::read_to_string(dest.join("modules/vpc/vpc.tf")).expect("copied file"),
        "# vpc\n"
    );
    assert!(dest.join("main.tf").is_file());
}

/// Allow/deny table: what is refused, by the variant that names it; nothing is left behind.
#[test]
fn refusals_name_what_was_refused_and_leave_nothing() {
    let scratch = Scratch::new();
    let root = &scratch.root;
    symlink(root.join("secret"), root.join("allowed/to-secret")).expect("symlink");
    std::fs::create_dir_all(root.join("allowed/with-link")).expect("mkdir");
    symlink(
        root.join("secret/key.pem"),
        root.join("allowed/with-link/key.pem"),
    )
    .expect("symlink");
    std::fs::create_dir_all(root.join("allowed/with-fifo")).expect("mkdir");
    nix_free_mkfifo(&root.join("allowed/with-fifo/pipe"));

    let cases: Vec<(PathBuf, Refusal)> = vec![
        (root.join("secret"), |e| {
            matches!(e, ExtractError::OutsideAllowedDirs { .. })
        }),
        (root.join("allowed/project/../../secret"), |e| {
            matches!(e, ExtractError::OutsideAllowedDirs { .. })
        }),
        // The last component a link: refused when opened (O_NOFOLLOW).
        (root.join("allowed/to-secret"), |e| {
            matches!(e, ExtractError::Io { .. })
        }),
        (
            root.join("allowed/with-link"),
            |e| matches!(e, ExtractError::Symlink { entry } if entry == "key.pem"),
        ),
        (
            root.join("allowed/with-fifo"),
            |e| matches!(e, ExtractError::SpecialFile { entry, .. } if entry == "pipe"),
        ),
    ];
    for (source, expected) in cases {
        let (copied, dest) = scratch.copy(&source);
        let error = copied.expect_err(&format!("{} is refused", source.display()));
        assert!(expected(&error), "{}: {error}", source.display());
        assert!(!dest.exists(), "{}: nothing left behind", source.display());
    }
}

#[test]
fn the_extraction_limits_bind_a_copy_too() {
    let scratch = Scratch::new();
    let limits = ExtractLimits {
        max_files: 2,
        ..ExtractLimits::default()
    };
    let dest = scratch.root.join("scan-tree");
    let error = copy_directory(
        &scratch.root.join("allowed/project"),
        &scratch.allowed(),
        &dest,
        &limits,
    )
    .expect_err("over max_files");
    assert!(
        matches!(error, ExtractError::TooManyFiles { .. }),
        "{error}"
    );
    assert!(!dest.exists());
}

fn nix_free_mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
}
