//! Path checks for typed arguments: input paths must stay inside an allowed directory; an
//! output directory is one new directory directly below the output root.
//!
//! Invariants:
//! - Every allowed directory is canonical and held open (`O_PATH`) for the daemon's lifetime;
//!   paths are validated with `openat2(RESOLVE_BENEATH)` from that held fd, so a symlink or a
//!   `..` that leaves the directory is refused by the kernel, not by string matching.
//! - An absolute input path is matched against the allowed directories lexically (component by
//!   component, `..` refused) before any filesystem access: a value outside every allowed
//!   directory gets the same answer whatever exists there, so the daemon's privileges never
//!   tell a caller which host paths exist.
//! - The path handed to the tool names the inode that was checked: a path that opens with
//!   `RESOLVE_NO_SYMLINKS` is canonical already (beneath a canonical base, no `..`, no symlink)
//!   and is handed over as written, minus `.` components; any other is replaced by the name the
//!   kernel reports for the validated fd (`/proc/self/fd/N`).
//! - What remains (a component swapped for a symlink between the check and the tool's own
//!   open) is bound by Landlock in the child, whose rules are attached to these same inodes.
//! - An output directory is exactly one name directly below the output root, checked
//!   lexically; it is created with `mkdirat`, and a name that exists then (directory, file or
//!   symlink) is refused, never reused. It is removed only through the root's fd, only when it
//!   is still the inode that was created, and only when empty.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

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
/// workspace); absolute values must lie lexically inside one of `allowed` (spelled under its
/// canonical path) and are then opened beneath it. Returns the absolute path of the inode
/// validated beneath that directory.
pub fn resolve_input(allowed: &[HeldDir], value: &str) -> Result<PathBuf, RejectReason> {
    lexical_check(value)?;
    let path = Path::new(value);
    let (base, relative) = if path.is_absolute() {
        // Lexical, before any lookup: canonicalizing first would answer "does not exist" or
        // "permission denied" for paths outside, with the daemon's privileges.
        allowed
            .iter()
            .find_map(|dir| Some((dir, path.strip_prefix(&dir.path).ok()?.to_path_buf())))
            .ok_or(RejectReason::OutsideAllowedDirs)?
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

/// The one new directory name `value` asks for directly below `root`: a bare name, or an
/// absolute path whose parent is `root` itself (compared lexically, so `.` components and
/// trailing slashes do not count). The root itself, a nested path (which could lie inside
/// another job's directory) and anything outside are refused without touching the filesystem.
pub fn name_below_root(root: &HeldDir, value: &str) -> Result<PathBuf, RejectReason> {
    lexical_check(value)?;
    let path = Path::new(value);
    let relative = if path.is_absolute() {
        path.strip_prefix(&root.path)
            .map_err(|_| RejectReason::OutsideOutputRoot)?
    } else {
        path
    };
    let mut names = relative
        .components()
        .filter(|component| *component != Component::CurDir);
    match (names.next(), names.next()) {
        (None, _) => Err(RejectReason::OutputRootItself),
        (Some(Component::Normal(name)), None) => Ok(PathBuf::from(name)),
        (Some(Component::Normal(_)), Some(_)) => Err(RejectReason::NestedOutputDir),
        // `..` was refused above and a relative path has no root: nothing else can occur.
        _ => Err(RejectReason::OutsideOutputRoot),
    }
}

/// Refuses `name` when anything (a directory, a file, a symlink, dangling or not) exists under
/// that name in `dir`; the name is not followed.
pub fn check_absent(dir: &OwnedFd, name: &Path) -> Result<(), RejectReason> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Err(RejectReason::OutputDirExists),
        Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(RejectReason::Internal(format!(
            "checking {}: {errno}",
            name.display()
        ))),
    }
}

/// Creates the directory `name` in `parent` (`mkdirat`, mode 0700) and returns an open fd of
/// the new directory. A name that exists already is `OutputDirExists`: it is never reused.
pub fn create_new_dir(parent: &OwnedFd, name: &Path) -> Result<OwnedFd, RejectReason> {
    mkdir_at(parent, name).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => RejectReason::OutputDirExists,
        _ => RejectReason::Internal(format!("creating {}: {e}", name.display())),
    })?;
    // Opened without following a symlink: the fd is the directory mkdirat just made, unless
    // someone with write access to the root swapped it in between (then it is refused and left
    // alone: what cannot be verified as ours is never touched).
    open_beneath(
        Some(parent),
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| RejectReason::Internal(format!("opening new {}: {e}", name.display())))
}

/// Removes the empty directory `name` from `parent` when it is still the inode `created`
/// refers to; returns whether it was removed. A directory with files in it, or one that
/// replaced the created one under the same name, stays.
pub fn remove_created_dir(parent: &OwnedFd, name: &Path, created: &OwnedFd) -> io::Result<bool> {
    let ours = fstat(created)?;
    let now = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(now) => now,
        Err(Errno::ENOENT) => return Ok(false),
        Err(errno) => return Err(errno.into()),
    };
    if (now.st_dev, now.st_ino) != (ours.st_dev, ours.st_ino) {
        return Ok(false);
    }
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(true),
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
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
            (format!("{}/./sub/", ws.display()), Ok(ws.join("sub"))),
            (
                ws.join("inner-link").to_str().unwrap().into(),
                Ok(ws.join("sub")),
            ),
            (
                other.join("o.tf").to_str().unwrap().into(),
                Ok(other.join("o.tf")),
            ),
            ("etc-link".into(), Err(RejectReason::EscapesBeneath)),
            ("etc-link/passwd".into(), Err(RejectReason::EscapesBeneath)),
            ("out-link/secret".into(), Err(RejectReason::EscapesBeneath)),
            // Absolute values are opened beneath their allowed directory like relative ones.
            (
                ws.join("etc-link").to_str().unwrap().into(),
                Err(RejectReason::EscapesBeneath),
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

    /// Whatever exists outside the allowed directories (a file, nothing, a file in the way, a
    /// directory the daemon may not search, another process's root, an alias that resolves into
    /// the workspace), the answer is the same: nothing is looked up outside.
    #[test]
    fn outside_paths_get_one_answer_whatever_exists_there() {
        use std::os::unix::fs::PermissionsExt;
        let f = fixture();
        let locked = f.outside.join("locked");
        fs::create_dir(&locked).unwrap();
        fs::write(locked.join("file"), "x").unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        symlink(&f.workspace.path, f.outside.join("ws-alias")).unwrap();
        let allowed = [f.workspace, f.other];
        let outside = |name: &str| f.outside.join(name).to_str().unwrap().to_string();
        let denied: Vec<String> = vec![
            outside("secret"),
            outside("missing"),
            outside("secret/below-a-file"),
            outside("locked/file"),
            outside("ws-alias/main.tf"),
            "/proc/1/root/etc/shadow".into(),
            "/proc/self/root/etc/shadow".into(),
            "/root/.bashrc".into(),
            "/root/.nonexistent".into(),
            "/etc/shadow".into(),
            "/nonexistent/x".into(),
        ];
        for value in &denied {
            assert_eq!(
                resolve_input(&allowed, value),
                Err(RejectReason::OutsideAllowedDirs),
                "{value:?}"
            );
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn output_dir_name_table() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("out");
        fs::create_dir(&root_path).unwrap();
        let root = HeldDir::open(&root_path).unwrap();
        let canonical = root.path.to_str().unwrap().to_string();
        let name = |n: &str| Ok(PathBuf::from(n));
        let cases: Vec<(String, Result<PathBuf, RejectReason>)> = vec![
            ("mine".into(), name("mine")),
            ("./mine".into(), name("mine")),
            ("mine/".into(), name("mine")),
            (format!("{canonical}/mine"), name("mine")),
            (format!("{canonical}/./mine/"), name("mine")),
            (format!("{canonical}//mine"), name("mine")),
            (".".into(), Err(RejectReason::OutputRootItself)),
            ("./".into(), Err(RejectReason::OutputRootItself)),
            (canonical.clone(), Err(RejectReason::OutputRootItself)),
            (format!("{canonical}/"), Err(RejectReason::OutputRootItself)),
            (
                format!("{canonical}/."),
                Err(RejectReason::OutputRootItself),
            ),
            ("a/b".into(), Err(RejectReason::NestedOutputDir)),
            (
                format!("{canonical}/other-job/x"),
                Err(RejectReason::NestedOutputDir),
            ),
            (
                "/tmp/prowler_output".into(),
                Err(RejectReason::OutsideOutputRoot),
            ),
            (
                format!("{canonical}x/y"),
                Err(RejectReason::OutsideOutputRoot),
            ),
            ("/".into(), Err(RejectReason::OutsideOutputRoot)),
            ("../escape".into(), Err(RejectReason::ParentComponent)),
            (
                format!("{canonical}/../x"),
                Err(RejectReason::ParentComponent),
            ),
            ("".into(), Err(RejectReason::Empty)),
            ("x\0".into(), Err(RejectReason::NulByte)),
        ];
        for (value, expected) in cases {
            assert_eq!(name_below_root(&root, &value), expected, "{value:?}");
        }
        // Checking a name creates nothing.
        assert_eq!(fs::read_dir(&root_path).unwrap().count(), 0);
    }

    /// Anything already under the name (another job's directory, a file, a symlink whether it
    /// points somewhere or nowhere) is refused, at planning and at creation; nothing is
    /// followed or reused.
    #[test]
    fn a_new_dir_is_only_ever_a_name_that_did_not_exist() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("out");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&root_path).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        fs::create_dir(root_path.join("other-job")).unwrap();
        fs::write(root_path.join("file"), "x").unwrap();
        symlink(&elsewhere, root_path.join("link")).unwrap();
        symlink(tmp.path().join("missing"), root_path.join("dangling")).unwrap();
        let root = HeldDir::open(&root_path).unwrap();
        let cases: &[(&str, Result<(), RejectReason>)] = &[
            ("fresh", Ok(())),
            ("other-job", Err(RejectReason::OutputDirExists)),
            ("file", Err(RejectReason::OutputDirExists)),
            ("link", Err(RejectReason::OutputDirExists)),
            ("dangling", Err(RejectReason::OutputDirExists)),
        ];
        for (name, expected) in cases {
            let name = Path::new(name);
            assert_eq!(&check_absent(&root.fd, name), expected, "{name:?}");
            let created = create_new_dir(&root.fd, name).map(|_| ());
            assert_eq!(&created, expected, "{name:?}");
        }
        let fresh = fs::symlink_metadata(root_path.join("fresh")).unwrap();
        assert!(fresh.is_dir());
        assert_eq!(fresh.permissions().mode() & 0o7777, 0o700);
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert!(!tmp.path().join("missing").exists());
        assert_eq!(
            create_new_dir(&root.fd, Path::new("fresh")).unwrap_err(),
            RejectReason::OutputDirExists,
            "created once, never reused"
        );
    }

    /// Only the directory that was created, still under its name and empty, is removed.
    #[test]
    fn removal_table() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("out");
        fs::create_dir(&root_path).unwrap();
        let root = HeldDir::open(&root_path).unwrap();
        type Tamper = fn(&Path);
        let cases: &[(&str, Tamper, bool)] = &[
            ("untouched", |_| {}, true),
            (
                "written",
                |dir| fs::write(dir.join("report"), "x").unwrap(),
                false,
            ),
            (
                "replaced",
                |dir| {
                    fs::rename(dir, dir.with_extension("moved")).unwrap();
                    fs::create_dir(dir).unwrap();
                },
                false,
            ),
            ("gone", |dir| fs::remove_dir(dir).unwrap(), false),
        ];
        for (name, tamper, removed) in cases {
            let created = create_new_dir(&root.fd, Path::new(name)).unwrap();
            let path = root_path.join(name);
            tamper(&path);
            let existed = path.exists();
            assert_eq!(
                remove_created_dir(&root.fd, Path::new(name), &created).unwrap(),
                *removed,
                "{name}"
            );
            assert_eq!(path.exists(), existed && !removed, "{name}");
        }
        assert!(root_path.join("replaced.moved").is_dir());
    }
}
