//! Path checks for typed arguments: input paths must stay inside an allowed directory, output
//! directories are created inside the output root only.
//!
//! Invariants:
//! - Every allowed directory is canonical and held open (`O_PATH`) for the daemon's lifetime;
//!   paths are validated with `openat2(RESOLVE_BENEATH)` from that held fd, so a symlink or a
//!   `..` that leaves the directory is refused by the kernel, not by string matching.
//! - The path handed to the tool names the inode that was checked: a path that opens with
//!   `RESOLVE_NO_SYMLINKS` is canonical already (beneath a canonical base, no `..`, no symlink)
//!   and is handed over as written, minus `.` components; any other is replaced by the name the
//!   kernel reports for the validated fd (`/proc/self/fd/N`).
//! - What remains (a component swapped for a symlink between the check and the tool's own
//!   open) is bound by Landlock in the child, whose rules are attached to these same inodes.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::RejectReason;

/// Mode of directories the sandbox creates: private to the owner (the daemon or the job uid).
pub const PRIVATE_DIR_MODE: libc::mode_t = 0o700;

/// A canonical directory held open for the daemon's lifetime.
#[derive(Debug)]
pub struct HeldDir {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

impl HeldDir {
    /// Canonicalizes and opens `path` (which must be a directory).
    pub fn open(path: &Path) -> io::Result<Self> {
        let canonical = path.canonicalize()?;
        let fd = open_beneath(None, &canonical, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Self {
            path: canonical,
            fd,
        })
    }
}

/// `openat2(dir, path, flags | O_CLOEXEC, resolve)`; with `dir = None` the path must be absolute.
pub fn open_beneath(
    dir: Option<&OwnedFd>,
    path: &Path,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is a plain C struct; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c_path` is a valid NUL-terminated string and `how` a fully initialised
    // `open_how` whose size we pass; the kernel does not retain either pointer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c_path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// The absolute path the kernel holds for an open descriptor.
pub fn fd_path(fd: &OwnedFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Rejects the lexical forms no path argument may take, before touching the filesystem.
pub fn lexical_check(value: &str) -> Result<(), RejectReason> {
    if value.is_empty() {
        return Err(RejectReason::Empty);
    }
    if value.contains('\0') {
        return Err(RejectReason::NulByte);
    }
    if Path::new(value)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(RejectReason::ParentComponent);
    }
    Ok(())
}

/// Resolves an input path: relative values are taken from the first allowed directory (the
/// workspace), absolute values must canonicalize into one of `allowed`. Returns the absolute
/// path of the inode validated beneath that directory.
pub fn resolve_input(allowed: &[HeldDir], value: &str) -> Result<PathBuf, RejectReason> {
    lexical_check(value)?;
    let path = Path::new(value);
    let (base, relative) = if path.is_absolute() {
        let canonical = path
            .canonicalize()
            .map_err(|e| RejectReason::NotFound(e.to_string()))?;
        let base = allowed
            .iter()
            .find(|dir| canonical.starts_with(&dir.path))
            .ok_or(RejectReason::OutsideAllowedDirs)?;
        let relative = canonical
            .strip_prefix(&base.path)
            .map_err(|_| RejectReason::OutsideAllowedDirs)?
            .to_path_buf();
        (base, relative)
    } else {
        let workspace = allowed.first().ok_or(RejectReason::OutsideAllowedDirs)?;
        (workspace, path.to_path_buf())
    };
    let relative = if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    };
    // A path without any symlink is already its canonical form beneath the (canonical) base, so
    // the kernel need not be asked for its name; any failure here (a symlink on the way, a
    // missing file) takes the general path below, which names the reason.
    if open_beneath(
        Some(&base.fd),
        &relative,
        libc::O_PATH,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
    .is_ok()
    {
        return Ok(joined_beneath(&base.path, &relative));
    }
    let fd = open_beneath(
        Some(&base.fd),
        &relative,
        libc::O_PATH,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => RejectReason::EscapesBeneath,
        _ => RejectReason::NotFound(e.to_string()),
    })?;
    let resolved = fd_path(&fd).map_err(|e| RejectReason::NotFound(e.to_string()))?;
    if !resolved.starts_with(&base.path) {
        return Err(RejectReason::OutsideAllowedDirs);
    }
    Ok(resolved)
}

/// `base` joined with the names of `relative` (a path `lexical_check` accepted), without its
/// `.` components and trailing slashes: the canonical path of a file that was opened beneath
/// the canonical `base` with `RESOLVE_NO_SYMLINKS`, so no kernel lookup of its name is needed.
fn joined_beneath(base: &Path, relative: &Path) -> PathBuf {
    let mut path = base.to_path_buf();
    path.extend(
        relative
            .components()
            .filter_map(|component| match component {
                Component::Normal(name) => Some(name),
                _ => None,
            }),
    );
    path
}

/// `mkdirat(parent, name, PRIVATE_DIR_MODE)`: one new private directory in an open directory.
/// A name with a NUL byte is `EINVAL`.
pub fn mkdir_at(parent: &OwnedFd, name: &Path) -> io::Result<()> {
    let c_name = CString::new(name.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `parent` is an open directory fd and `c_name` a valid C string.
    if unsafe { libc::mkdirat(parent.as_raw_fd(), c_name.as_ptr(), PRIVATE_DIR_MODE) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates (if missing) the directory `value` below `root`, one checked component at a time:
/// every component is created with `mkdirat` and re-opened with `RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS`, so no symlink planted in the tree can redirect the creation.
/// `value` is either absolute (and must lie under `root`) or relative to `root`.
pub fn ensure_dir_beneath(root: &HeldDir, value: &str) -> Result<PathBuf, RejectReason> {
    lexical_check(value)?;
    let path = Path::new(value);
    let relative = if path.is_absolute() {
        path.strip_prefix(&root.path)
            .map_err(|_| RejectReason::OutsideOutputRoot)?
    } else {
        path
    };
    let mut current = open_beneath(
        Some(&root.fd),
        Path::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(|e| RejectReason::Internal(e.to_string()))?;
    for component in relative.components() {
        let name = match component {
            Component::Normal(name) => name,
            Component::CurDir => continue,
            _ => return Err(RejectReason::OutsideOutputRoot),
        };
        match mkdir_at(&current, Path::new(name)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(RejectReason::Internal(e.to_string())),
        }
        current = open_beneath(
            Some(&current),
            Path::new(name),
            libc::O_PATH | libc::O_DIRECTORY,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|_| RejectReason::NotADirectory)?;
    }
    // Every component was opened beneath the root without following a symlink.
    Ok(joined_beneath(&root.path, relative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _tmp: tempfile::TempDir,
        workspace: HeldDir,
        other: HeldDir,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let other = tmp.path().join("other");
        let outside = tmp.path().join("outside");
        for d in [&ws, &other, &outside] {
            fs::create_dir(d).unwrap();
        }
        fs::create_dir(ws.join("sub")).unwrap();
        fs::write(ws.join("main.tf"), "x").unwrap();
        fs::write(other.join("o.tf"), "x").unwrap();
        fs::write(outside.join("secret"), "x").unwrap();
        symlink("/etc", ws.join("etc-link")).unwrap();
        symlink(&outside, ws.join("out-link")).unwrap();
        symlink("sub", ws.join("inner-link")).unwrap();
        Fixture {
            workspace: HeldDir::open(&ws).unwrap(),
            other: HeldDir::open(&other).unwrap(),
            outside,
            _tmp: tmp,
        }
    }

    #[test]
    fn input_path_table() {
        let f = fixture();
        let ws = f.workspace.path.clone();
        let other = f.other.path.clone();
        let allowed = [f.workspace, f.other];
        let outside_secret = f.outside.join("secret");
        let cases: Vec<(String, Result<PathBuf, RejectReason>)> = vec![
            (".".into(), Ok(ws.clone())),
            ("main.tf".into(), Ok(ws.join("main.tf"))),
            ("./sub".into(), Ok(ws.join("sub"))),
            ("sub/".into(), Ok(ws.join("sub"))),
            ("./sub/./".into(), Ok(ws.join("sub"))),
            (
                "main.tf/".into(),
                Err(RejectReason::NotFound(
                    "Not a directory (os error 20)".into(),
                )),
            ),
            ("inner-link/".into(), Ok(ws.join("sub"))),
            ("inner-link".into(), Ok(ws.join("sub"))),
            (ws.to_str().unwrap().into(), Ok(ws.clone())),
            (
                other.join("o.tf").to_str().unwrap().into(),
                Ok(other.join("o.tf")),
            ),
            ("etc-link".into(), Err(RejectReason::EscapesBeneath)),
            ("etc-link/passwd".into(), Err(RejectReason::EscapesBeneath)),
            ("out-link/secret".into(), Err(RejectReason::EscapesBeneath)),
            (
                ws.join("etc-link").to_str().unwrap().into(),
                Err(RejectReason::OutsideAllowedDirs),
            ),
            (
                "../outside/secret".into(),
                Err(RejectReason::ParentComponent),
            ),
            (
                "sub/../../outside".into(),
                Err(RejectReason::ParentComponent),
            ),
            (
                outside_secret.to_str().unwrap().into(),
                Err(RejectReason::OutsideAllowedDirs),
            ),
            ("/etc/passwd".into(), Err(RejectReason::OutsideAllowedDirs)),
            ("/".into(), Err(RejectReason::OutsideAllowedDirs)),
            ("a\0b".into(), Err(RejectReason::NulByte)),
            ("".into(), Err(RejectReason::Empty)),
        ];
        for (value, expected) in cases {
            let got = resolve_input(&allowed, &value);
            match (&got, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(g, e, "{value:?}"),
                (Err(g), Err(e)) => assert_eq!(g, e, "{value:?}"),
                _ => panic!("{value:?}: got {got:?}, expected {expected:?}"),
            }
        }
        assert!(matches!(
            resolve_input(&allowed, "missing.tf"),
            Err(RejectReason::NotFound(_))
        ));
    }

    #[test]
    fn output_dir_table() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("out");
        fs::create_dir(&root_path).unwrap();
        symlink("/tmp", root_path.join("evil")).unwrap();
        fs::write(root_path.join("file"), "x").unwrap();
        let root = HeldDir::open(&root_path).unwrap();
        let canonical_root = root.path.clone();
        let cases: Vec<(String, Result<PathBuf, RejectReason>)> = vec![
            ("job1".into(), Ok(canonical_root.join("job1"))),
            ("a/b/c".into(), Ok(canonical_root.join("a/b/c"))),
            ("job1".into(), Ok(canonical_root.join("job1"))),
            (
                canonical_root.join("abs").to_str().unwrap().into(),
                Ok(canonical_root.join("abs")),
            ),
            ("evil".into(), Err(RejectReason::NotADirectory)),
            ("evil/x".into(), Err(RejectReason::NotADirectory)),
            ("file".into(), Err(RejectReason::NotADirectory)),
            ("../escape".into(), Err(RejectReason::ParentComponent)),
            (
                "/tmp/prowler_output".into(),
                Err(RejectReason::OutsideOutputRoot),
            ),
            ("x\0".into(), Err(RejectReason::NulByte)),
        ];
        for (value, expected) in cases {
            let got = ensure_dir_beneath(&root, &value);
            match (&got, &expected) {
                (Ok(g), Ok(e)) => {
                    assert_eq!(g, e, "{value:?}");
                    assert!(g.is_dir());
                }
                (Err(g), Err(e)) => assert_eq!(g, e, "{value:?}"),
                _ => panic!("{value:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
