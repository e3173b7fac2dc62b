//! Handing a job's own input directory (a scan's extracted upload) to the job's dedicated
//! identity: a tool running as a tenant's uid must read its tree, and no other uid may.
//!
//! Invariants: nothing is followed: each entry's owner is changed with
//! `fchownat(AT_SYMLINK_NOFOLLOW)` through its parent's descriptor, and directories are entered
//! with `O_NOFOLLOW` the same way, so a link inside the tree can never redirect the change
//! outside it; the root becomes mode 0700, so other uids cannot enter it; recursion is bounded
//! by `MAX_DEPTH` (one descriptor per level).

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat};
use nix::unistd::{Gid, Uid, fchown, fchownat};

use crate::paths::HeldDir;
use crate::policy::RunAs;

/// Deepest tree handed over; extraction already refuses deeper uploads, so reaching it means
/// the tree is not one the daemon made.
const MAX_DEPTH: usize = 128;

/// Flags every directory of the tree is opened with: read its entries, follow nothing.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

/// Makes `owner` the owner of `root` and of everything in it, and `root` mode 0700.
pub fn hand_over(root: &HeldDir, owner: RunAs) -> io::Result<()> {
    let dir = Dir::openat(root.fd.as_fd(), ".", dir_flags(), Mode::empty())?;
    let (uid, gid) = (Uid::from_raw(owner.uid), Gid::from_raw(owner.gid));
    fchown(dir.as_fd(), Some(uid), Some(gid))?;
    fchmod(dir.as_fd(), Mode::S_IRWXU)?;
    walk(dir, uid, gid, 0)
}

fn walk(mut dir: Dir, uid: Uid, gid: Gid, depth: usize) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "the input directory is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let names: Vec<CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| !matches!(name.as_bytes(), b"." | b".."))
        .collect();
    for name in names {
        fchownat(
            dir.as_fd(),
            name.as_c_str(),
            Some(uid),
            Some(gid),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        let stat = fstatat(dir.as_fd(), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            let sub = Dir::openat(dir.as_fd(), name.as_c_str(), dir_flags(), Mode::empty())?;
            walk(sub, uid, gid, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn a_tree_is_handed_over_without_following_its_links() {
        if !is_root() {
            eprintln!("skipped: changing owners needs root");
            return;
        }
        let tmp = tempfile::tempdir().expect("tmp");
        let tree = tmp.path().join("tree");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(tree.join("a/b")).expect("mkdir");
        std::fs::write(tree.join("a/b/main.tf"), "x").expect("file");
        std::fs::write(&outside, "not the tree's").expect("outside");
        std::os::unix::fs::symlink(&outside, tree.join("link")).expect("symlink");
        let owner = RunAs {
            uid: 64_411,
            gid: 64_412,
        };
        hand_over(&HeldDir::open(&tree).expect("open"), owner).expect("hand over");
        for path in [
            &tree,
            &tree.join("a"),
            &tree.join("a/b"),
            &tree.join("a/b/main.tf"),
        ] {
            let meta = std::fs::metadata(path).expect("meta");
            assert_eq!(
                (meta.uid(), meta.gid()),
                (64_411, 64_412),
                "{}",
                path.display()
            );
        }
        let link = std::fs::symlink_metadata(tree.join("link")).expect("link");
        assert_eq!(link.uid(), 64_411, "the link itself changes owner");
        let target = std::fs::metadata(&outside).expect("outside");
        assert_eq!(target.uid(), 0, "what the link points to does not");
        let mode = std::fs::metadata(&tree).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
