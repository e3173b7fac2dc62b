//! The private `home` and `tmp` directories of jobs, leased from a pool of slots
//! `jobs_root/slot-<pid>-<n>/{home,tmp}` (the pid keeps two processes sharing a jobs root, such
//! as the daemon and a `plugin dry-run`, out of each other's slots).
//!
//! Why a pool: creating three directories and removing them again costs more than the job's
//! own spawn on ext4 (inode allocation searches block groups for every `mkdir`; measured
//! ~580 µs per job against a ~600 µs spawn), while checking two empty directories costs a few
//! microseconds. A slot is therefore emptied and reused instead of recreated.
//!
//! Invariants:
//! - a slot is leased to one job at a time; the lease returns it to the pool when dropped;
//! - the check: through descriptors opened beneath `jobs_root` without following symlinks,
//!   `home` and `tmp` are empty directories owned by the job's identity, mode reset to 0700.
//!   A slot that fails it (after clearing) is abandoned, never reused;
//! - a slot is checked when its job ends (`release_if_clean`, after every process of the job
//!   is dead), through the descriptors of `home` and `tmp` the pool holds for it (opened when
//!   the slot was created or last checked by path: no path walk, no open/close; at most
//!   `MAX_HELD_SLOTS` slots hold them, the others are checked by path), and checked again by
//!   path before its next lease unless the pool was told idle slots are unreachable
//!   (`idle_slots_unreachable`: every job runs under Landlock, which lets a tool write only
//!   below its own job's directories and not rename or replace its own `home` or `tmp`, so
//!   nothing can change a slot between that check and the next lease, and the held descriptors
//!   are what the paths name). A lease returned any other way (dropped) is always checked by
//!   path before reuse, which re-opens the descriptors. Either way a job never sees another
//!   job's files, whatever an earlier job or a crash left behind;
//! - every removal goes through directory descriptors (`unlinkat` on an `O_NOFOLLOW` fd), never
//!   through a path a tool could redirect with a symlink;
//! - the pool removes its slots when it is dropped (the sandbox is), and the daemon removes
//!   whatever an earlier daemon left in `jobs_root` at start-up (`remove_leftovers`).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{Mode, fstat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::paths::{HeldDir, PRIVATE_DIR_MODE, mkdir_at, open_beneath};
use crate::policy::RunAs;

/// Deepest directory tree a job may leave behind and still have it removed; a deeper tree
/// stays on disk and its slot is abandoned (recursion holds one descriptor per level, so the
/// bound keeps a hostile tree from exhausting the daemon's descriptors or stack).
const MAX_LEFTOVER_DEPTH: usize = 128;

/// Mode of a slot directory with a dedicated identity: the daemon owns it, the tool may only
/// traverse it (it cannot rename or replace its `home` and `tmp`).
const SHARED_SLOT_MODE: libc::mode_t = 0o711;

/// Most slots that hold descriptors of their directories (two each). Slots grow with the jobs
/// running and queued at once, which the configuration does not bound; this keeps the
/// daemon's own descriptors bounded whatever it allows. Slots beyond it are checked by path.
const MAX_HELD_SLOTS: usize = 256;

/// The private directories of a job; dropping it returns them to the pool.
pub struct PrivateDirs {
    pub home: PathBuf,
    pub tmp: PathBuf,
    /// Always `Some` until dropped.
    slot: Option<Slot>,
    /// Passed the check since the job ended; set only by `release_if_clean` and `clear`.
    checked: bool,
    pool: Arc<Pool>,
}

/// A slot's number and, within `MAX_HELD_SLOTS`, the descriptors of its two directories.
struct Slot {
    number: u64,
    held: Option<[OwnedFd; 2]>,
}

impl std::fmt::Debug for PrivateDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateDirs")
            .field("home", &self.home)
            .field("tmp", &self.tmp)
            .finish()
    }
}

impl PrivateDirs {
    /// For a job whose processes are all dead: returns the slot, checked, at once when the job
    /// left it clean (the common case: a few system calls, cheap enough for an async worker);
    /// otherwise gives the lease back for `clear` on a blocking thread.
    pub fn release_if_clean(mut self) -> Result<(), Self> {
        let checked = self.slot.as_ref().is_some_and(|slot| {
            self.pool
                .with_dirs(slot, |dirs| self.pool.check_dirs(dirs))
                .is_ok()
        });
        if checked {
            self.checked = true;
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Removes what the job left in its directories now (so nothing lingers on disk while the
    /// slot is idle), checks the slot, then returns it. Blocking: call it off the async workers.
    pub fn clear(mut self) {
        let Some(slot) = &self.slot else { return };
        let cleared = self.pool.with_dirs(slot, |dirs| {
            for dir in dirs {
                remove_contents(dir, 0)?;
            }
            self.pool.check_dirs(dirs)
        });
        match cleared {
            Ok(()) => self.checked = true,
            Err(e) => {
                tracing::warn!(slot = slot.number, error = %e, "emptying a private directory slot; it will be abandoned");
            }
        }
    }
}

impl Drop for PrivateDirs {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.pool.put_back(slot, self.checked);
        }
    }
}

/// Hands out private directories; cheap to share.
#[derive(Clone)]
pub struct PrivateDirPool {
    pool: Arc<Pool>,
}

struct Pool {
    root: HeldDir,
    owner: Option<RunAs>,
    /// The daemon's effective uid, the owner of private dirs without a dedicated identity.
    daemon_uid: libc::uid_t,
    /// No tool can reach a slot it was not leased (every job runs under Landlock), so a slot
    /// checked at release stays clean while idle.
    idle_slots_unreachable: bool,
    /// Returned slots, with whether they passed the check at release.
    idle: Mutex<Vec<(Slot, bool)>>,
    /// Slots holding descriptors, at most `MAX_HELD_SLOTS`.
    held_slots: AtomicUsize,
    next_slot: AtomicU64,
    pid: u32,
}

impl PrivateDirPool {
    /// A pool of slots under `root` (the jobs root), created on demand. Pass
    /// `idle_slots_unreachable` only when every job's tool is confined to its own directories
    /// (Landlock): slots checked at release are then not checked again at lease.
    pub fn new(root: HeldDir, owner: Option<RunAs>, idle_slots_unreachable: bool) -> Self {
        let pool = Pool {
            root,
            owner,
            // SAFETY: geteuid cannot fail.
            daemon_uid: unsafe { libc::geteuid() },
            idle_slots_unreachable,
            idle: Mutex::new(Vec::new()),
            held_slots: AtomicUsize::new(0),
            next_slot: AtomicU64::new(0),
            pid: std::process::id(),
        };
        Self {
            pool: Arc::new(pool),
        }
    }

    /// Removes every entry of the jobs root: the slots and per-job directories an earlier daemon
    /// left. Only for a daemon starting up: it also removes the slots of live jobs of any other
    /// process sharing the root. Returns how many entries were removed.
    pub fn remove_leftovers(&self) -> io::Result<usize> {
        let root = open_beneath(
            Some(&self.pool.root.fd),
            Path::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
            libc::RESOLVE_BENEATH,
        )?;
        remove_contents(&root, 0)
    }

    /// A checked, empty pair of directories: a reused slot when one passes the check (or
    /// passed it at release and idle slots are unreachable), a new one otherwise.
    pub fn lease(&self) -> io::Result<PrivateDirs> {
        while let Some((slot, checked)) = self.pool.take_idle() {
            if checked && self.pool.idle_slots_unreachable {
                return Ok(self.dirs(slot));
            }
            match self.pool.check_slot(slot.number) {
                Ok(dirs) => {
                    // A slot that held descriptors holds the ones just checked.
                    let held = slot.held.is_some().then_some(dirs);
                    return Ok(self.dirs(Slot {
                        number: slot.number,
                        held,
                    }));
                }
                Err(e) => {
                    if slot.held.is_some() {
                        self.pool.held_slots.fetch_sub(1, Ordering::Relaxed);
                    }
                    let name = self.pool.slot_name(slot.number);
                    tracing::warn!(slot = name, error = %e, "abandoning a private directory slot that failed its check");
                    if let Err(e) = remove_entry_at(&self.pool.root.fd, &name) {
                        tracing::warn!(slot = name, error = %e, "the abandoned slot stays on disk");
                    }
                }
            }
        }
        loop {
            let number = self.pool.next_slot.fetch_add(1, Ordering::Relaxed);
            match self.pool.create_slot(number) {
                Ok(dirs) => {
                    let held = self.pool.hold(dirs);
                    return Ok(self.dirs(Slot { number, held }));
                }
                // A leftover the start-up sweep could not remove: skip its number.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn dirs(&self, slot: Slot) -> PrivateDirs {
        let base = self.pool.root.path.join(self.pool.slot_name(slot.number));
        PrivateDirs {
            home: base.join(SUBDIRS[0]),
            tmp: base.join(SUBDIRS[1]),
            slot: Some(slot),
            checked: false,
            pool: Arc::clone(&self.pool),
        }
    }

    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.pool.idle.lock().map_or(0, |idle| idle.len())
    }
}

impl Pool {
    fn take_idle(&self) -> Option<(Slot, bool)> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop()
    }

    fn put_back(&self, slot: Slot, checked: bool) {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((slot, checked));
    }

    /// `dirs`, when the budget of `MAX_HELD_SLOTS` has room for one more slot.
    fn hold(&self, dirs: [OwnedFd; 2]) -> Option<[OwnedFd; 2]> {
        let holding = self.held_slots.fetch_add(1, Ordering::Relaxed);
        if holding < MAX_HELD_SLOTS {
            Some(dirs)
        } else {
            self.held_slots.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }

    /// Whether a private directory has the owner it must have: the dedicated identity, or else
    /// the daemon's uid (the group is then whatever the jobs root hands down: a setgid root
    /// passes its own).
    fn owned_rightly(&self, stat: &libc::stat) -> bool {
        match self.owner {
            Some(owner) => stat.st_uid == owner.uid && stat.st_gid == owner.gid,
            None => stat.st_uid == self.daemon_uid,
        }
    }

    /// `mkdir slot-<n>`, `slot-<n>/home`, `slot-<n>/tmp`, each handed to the job's identity;
    /// returns the descriptors of `home` and `tmp`.
    fn create_slot(&self, slot: u64) -> io::Result<[OwnedFd; 2]> {
        let name = self.slot_name(slot);
        let slot_fd = mkdir_beneath(&self.root.fd, &name)?;
        if self.owner.is_some() {
            nix::sys::stat::fchmod(&slot_fd, Mode::from_bits_truncate(SHARED_SLOT_MODE))?;
        }
        let [home, tmp] = SUBDIRS.map(|sub| mkdir_beneath(&slot_fd, sub));
        let dirs = [home?, tmp?];
        if let Some(owner) = self.owner {
            for dir in &dirs {
                nix::unistd::fchown(dir, Some(owner.uid.into()), Some(owner.gid.into()))?;
            }
        }
        Ok(dirs)
    }

    /// The check by path: opens the slot's `home` and `tmp`, checks them and returns their
    /// descriptors.
    fn check_slot(&self, slot: u64) -> io::Result<[OwnedFd; 2]> {
        let dirs = self.open_slot(slot)?;
        self.check_dirs(&dirs)?;
        Ok(dirs)
    }

    /// Runs `f` on the slot's directories: the held descriptors, or ones opened by path.
    fn with_dirs<T>(
        &self,
        slot: &Slot,
        f: impl FnOnce(&[OwnedFd; 2]) -> io::Result<T>,
    ) -> io::Result<T> {
        match &slot.held {
            Some(dirs) => f(dirs),
            None => f(&self.open_slot(slot.number)?),
        }
    }

    /// The check of a slot's `home` and `tmp`: owned rightly, mode restored to 0700, empty.
    fn check_dirs(&self, dirs: &[OwnedFd; 2]) -> io::Result<()> {
        for (dir, sub) in dirs.iter().zip(SUBDIRS) {
            let stat = fstat(dir)?;
            if !self.owned_rightly(&stat) {
                return Err(io::Error::other(format!(
                    "{sub} belongs to {}:{}",
                    stat.st_uid, stat.st_gid
                )));
            }
            // The tool owns its home and may have changed its mode; the next job gets 0700.
            if stat.st_mode & 0o7777 != PRIVATE_DIR_MODE {
                nix::sys::stat::fchmod(dir, Mode::from_bits_truncate(PRIVATE_DIR_MODE))?;
            }
            if !is_empty_dir(dir)? {
                return Err(io::Error::other(format!("{sub} is not empty")));
            }
        }
        Ok(())
    }

    /// The slot's `home` and `tmp` opened for reading, beneath the root, without following any
    /// symlink.
    fn open_slot(&self, slot: u64) -> io::Result<[OwnedFd; 2]> {
        let slot_dir = PathBuf::from(self.slot_name(slot));
        let [home, tmp] = SUBDIRS.map(|sub| {
            open_beneath(
                Some(&self.root.fd),
                &slot_dir.join(sub),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_XDEV,
            )
        });
        Ok([home?, tmp?])
    }

    fn slot_name(&self, slot: u64) -> String {
        format!("slot-{}-{slot}", self.pid)
    }
}

impl Drop for Pool {
    /// Every lease is back (each holds the pool); remove the slots.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        for (slot, _) in idle {
            let name = self.slot_name(slot.number);
            let removed = remove_entry_at(&self.root.fd, &name);
            if let Err(e) = removed {
                tracing::warn!(slot = name, error = %e, "removing a private directory slot");
            }
        }
    }
}

/// `mkdirat(parent, name, 0700)` and the new directory opened without following symlinks.
fn mkdir_beneath(parent: &OwnedFd, name: &str) -> io::Result<OwnedFd> {
    mkdir_at(parent, Path::new(name))?;
    open_beneath(
        Some(parent),
        Path::new(name),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
}

/// Whether the directory open at `dir` has no entry besides `.` and `..`.
fn is_empty_dir(dir: &OwnedFd) -> io::Result<bool> {
    visit_names(dir, |name| matches!(name, b"." | b".."))
}

/// The two private directories of a slot, in the order of `Slot::held`.
const SUBDIRS: [&str; 2] = ["home", "tmp"];

/// The names in the directory open at `dir`, without `.` and `..`.
fn entries(dir: &OwnedFd) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    visit_names(dir, |name| {
        if !matches!(name, b"." | b"..")
            && let Ok(name) = CString::new(name)
        {
            names.push(name);
        }
        true
    })?;
    Ok(names)
}

/// Calls `visit` with every name in the directory open at `dir` (`.` and `..` included) until
/// it returns false; returns whether every name was visited. Reads from the start whatever was
/// read before (slot descriptors are held and checked again and again). Raw `getdents64` on
/// the descriptor: `fdopendir` would add an `fstat` and two `fcntl` to every check.
fn visit_names(dir: &OwnedFd, mut visit: impl FnMut(&[u8]) -> bool) -> io::Result<bool> {
    // SAFETY: lseek on an open directory descriptor; rewinds its readdir position.
    if unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // Words of 8 bytes keep the buffer aligned like the records the kernel writes into it.
    let mut buffer = [0u64; 128];
    loop {
        // SAFETY: getdents64 writes at most `size_of_val(&buffer)` bytes into `buffer`.
        let read = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buffer.as_mut_ptr(),
                std::mem::size_of_val(&buffer),
            )
        };
        let read = usize::try_from(read).map_err(|_| io::Error::last_os_error())?;
        if read == 0 {
            return Ok(true);
        }
        // SAFETY: the kernel initialized the first `read` bytes of `buffer` (read <= its size).
        let records = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), read) };
        if !dirent_names(records).all(&mut visit) {
            return Ok(false);
        }
    }
}

/// The names in a buffer of `linux_dirent64` records: u64 inode, i64 offset, u16 record
/// length, u8 type, then the NUL-terminated name.
fn dirent_names(mut records: &[u8]) -> impl Iterator<Item = &[u8]> {
    const NAME_OFFSET: usize = 19;
    std::iter::from_fn(move || {
        let length = usize::from(u16::from_ne_bytes(records.get(16..18)?.try_into().ok()?));
        let record = records.get(..length)?;
        records = &records[length..];
        let name = record.get(NAME_OFFSET..)?;
        Some(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())])
    })
}

/// Removes every entry below `dir` through descriptors; returns how many top-level entries were
/// removed. Symlinks are removed, never followed.
fn remove_contents(dir: &OwnedFd, depth: usize) -> io::Result<usize> {
    if depth > MAX_LEFTOVER_DEPTH {
        return Err(io::Error::other(format!(
            "leftover tree deeper than {MAX_LEFTOVER_DEPTH} levels"
        )));
    }
    let names = entries(dir)?;
    for name in &names {
        remove_entry(dir.as_fd(), name, depth)?;
    }
    Ok(names.len())
}

/// Removes `name` (a file, a symlink or a whole tree) from the directory `dir`.
fn remove_entry_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let c_name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    remove_entry(dir.as_fd(), &c_name, 0)
}

fn remove_entry(dir: BorrowedFd<'_>, name: &CStr, depth: usize) -> io::Result<()> {
    match unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR) => {
            let child = openat(
                dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            remove_contents(&child, depth + 1)?;
            unlinkat(dir, name, UnlinkatFlags::RemoveDir)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn pool(tmp: &Path) -> PrivateDirPool {
        pool_with(tmp, false)
    }

    fn pool_with(tmp: &Path, idle_slots_unreachable: bool) -> PrivateDirPool {
        let root = tmp.join("jobs");
        std::fs::create_dir_all(&root).unwrap();
        PrivateDirPool::new(HeldDir::open(&root).unwrap(), None, idle_slots_unreachable)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_returned_slot_is_reused_only_when_clean() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = pool(tmp.path());
        let first = pool.lease().unwrap();
        assert!(first.home.is_dir() && first.tmp.is_dir());
        let (home, tmp_dir) = (first.home.clone(), first.tmp.clone());
        assert_eq!(
            std::fs::metadata(&home).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        drop(first);
        assert_eq!(pool.idle_count(), 1);
        let again = pool.lease().unwrap();
        assert_eq!(again.home, home, "an empty slot is reused");
        assert_eq!(again.tmp, tmp_dir);

        // A slot left dirty (the lease was dropped without clear) is not handed out again.
        std::fs::write(again.home.join("secret"), "x").unwrap();
        drop(again);
        let fresh = pool.lease().unwrap();
        assert_ne!(fresh.home, home, "a dirty slot is abandoned");
        assert!(std::fs::read_dir(&fresh.home).unwrap().next().is_none());
    }

    #[test]
    fn clear_removes_leftovers_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "keep").unwrap();
        let pool = pool(tmp.path());
        let dirs = pool.lease().unwrap();
        let home = dirs.home.clone();
        std::fs::create_dir_all(dirs.home.join("a/b/c")).unwrap();
        std::fs::write(dirs.home.join("a/b/c/file"), "x").unwrap();
        symlink(&outside, dirs.home.join("link-to-outside")).unwrap();
        symlink(&outside, dirs.tmp.join("dir-link")).unwrap();
        std::fs::set_permissions(&dirs.home, std::fs::Permissions::from_mode(0o755)).unwrap();
        dirs.clear();
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "keep"
        );
        let reused = pool.lease().unwrap();
        assert_eq!(reused.home, home, "a cleared slot is reused");
        assert_eq!(
            std::fs::metadata(&reused.home)
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o700,
            "the mode is restored"
        );
    }

    /// Denials: each way a slot can be tampered with while leased makes the pool abandon it,
    /// whether the lease is dropped or released (checked) — also when idle slots are
    /// unreachable, where the release check is the only one.
    #[test]
    fn tampered_slots_are_abandoned() {
        type Tamper = fn(&Path, &Path);
        let cases: &[(&str, Tamper)] = &[
            ("home replaced by a symlink", |home, outside| {
                std::fs::remove_dir(home).unwrap();
                symlink(outside, home).unwrap();
            }),
            ("home removed", |home, _| std::fs::remove_dir(home).unwrap()),
            ("home replaced by a file", |home, _| {
                std::fs::remove_dir(home).unwrap();
                std::fs::write(home, "x").unwrap();
            }),
            ("file left in tmp", |home, _| {
                std::fs::write(home.parent().unwrap().join("tmp/x"), "x").unwrap()
            }),
            // The held descriptor still names the renamed (empty) directory.
            ("home renamed, a planted one in its place", |home, _| {
                std::fs::rename(home, home.with_file_name("old-home")).unwrap();
                std::fs::create_dir(home).unwrap();
                std::fs::write(home.join("planted"), "x").unwrap();
            }),
        ];
        let ways = [(false, false), (false, true), (true, false), (true, true)];
        for (what, tamper) in cases {
            for (unreachable, release) in ways {
                // Only without Landlock can a tool rename its home (sandbox_job_isolation
                // checks that it cannot under Landlock); the pool trusts that.
                if unreachable && release && what.starts_with("home renamed") {
                    continue;
                }
                let what = format!("{what} (unreachable {unreachable}, released {release})");
                let tmp = tempfile::tempdir().unwrap();
                let outside = tmp.path().join("outside");
                std::fs::create_dir(&outside).unwrap();
                let pool = pool_with(tmp.path(), unreachable);
                let dirs = pool.lease().unwrap();
                let home = dirs.home.clone();
                tamper(&home, &outside);
                if !release {
                    drop(dirs);
                } else if let Err(dirs) = dirs.release_if_clean() {
                    dirs.clear();
                }
                let next = pool.lease().unwrap();
                let cleared = release && what.starts_with("file left");
                assert!(next.home != home || cleared, "{what}: the slot was reused");
                assert!(next.home.is_dir() && !next.home.is_symlink(), "{what}");
                for dir in [&next.home, &next.tmp, &outside] {
                    assert!(std::fs::read_dir(dir).unwrap().next().is_none(), "{what}");
                }
            }
        }
    }

    #[test]
    fn leftovers_of_an_earlier_daemon_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("jobs");
        std::fs::create_dir_all(root.join("0193f5a2-old-job/home/.cache")).unwrap();
        std::fs::write(root.join("0193f5a2-old-job/home/.cache/x"), "x").unwrap();
        std::fs::create_dir_all(root.join("slot-0/tmp")).unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "keep").unwrap();
        symlink(&outside, root.join("stray-link")).unwrap();
        let pool = pool(tmp.path());
        assert_eq!(pool.remove_leftovers().unwrap(), 3);
        assert!(std::fs::read_dir(&root).unwrap().next().is_none());
        assert!(outside.join("keep").exists());
        let dirs = pool.lease().unwrap();
        assert!(dirs.home.starts_with(&root));
    }

    #[test]
    fn only_a_clean_slot_is_released_without_clearing() {
        for unreachable in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let pool = pool_with(tmp.path(), unreachable);
            let dirs = pool.lease().unwrap();
            let home = dirs.home.clone();
            assert!(dirs.release_if_clean().is_ok());
            assert_eq!(pool.idle_count(), 1);
            let dirs = pool.lease().unwrap();
            assert_eq!(dirs.home, home);
            std::fs::write(dirs.tmp.join("x"), "x").unwrap();
            let dirs = dirs.release_if_clean().expect_err("tmp is not empty");
            assert_eq!(pool.idle_count(), 0, "still leased");
            dirs.clear();
            let again = pool.lease().unwrap();
            assert_eq!(again.home, home);
            assert!(std::fs::read_dir(&again.tmp).unwrap().next().is_none());
        }
    }

    /// The release check does everything the lease check would: a mode the tool changed is
    /// reset then, so the next job gets 0700 even when its lease is not checked again.
    #[test]
    fn the_release_check_restores_the_mode() {
        for unreachable in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let pool = pool_with(tmp.path(), unreachable);
            let dirs = pool.lease().unwrap();
            let (home, tmp_dir) = (dirs.home.clone(), dirs.tmp.clone());
            for dir in [&home, &tmp_dir] {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            }
            assert!(
                dirs.release_if_clean().is_ok(),
                "empty, only the mode changed"
            );
            assert_eq!((mode(&home), mode(&tmp_dir)), (0o700, 0o700));
            assert_eq!(pool.lease().unwrap().home, home);
        }
    }

    /// Beyond `MAX_HELD_SLOTS` a slot holds no descriptors and is checked and cleared by path;
    /// an abandoned slot gives its place in the budget back.
    #[test]
    fn slots_beyond_the_descriptor_budget_are_checked_by_path() {
        let held = |pool: &PrivateDirPool| pool.pool.held_slots.load(Ordering::Relaxed);
        for unreachable in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let pool = pool_with(tmp.path(), unreachable);
            let mut leases: Vec<_> = (0..=MAX_HELD_SLOTS)
                .map(|_| pool.lease().unwrap())
                .collect();
            assert_eq!(held(&pool), MAX_HELD_SLOTS);
            let unheld = leases.pop().unwrap();
            assert!(unheld.slot.as_ref().unwrap().held.is_none());
            let (home, tmp_dir) = (unheld.home.clone(), unheld.tmp.clone());
            std::fs::write(tmp_dir.join("left"), "x").unwrap();
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o777)).unwrap();
            let unheld = unheld.release_if_clean().expect_err("tmp is not empty");
            unheld.clear();
            assert!(std::fs::read_dir(&tmp_dir).unwrap().next().is_none());
            assert_eq!(mode(&home), 0o700);
            assert_eq!(pool.idle_count(), 1);

            // A held slot left dirty and dropped unchecked is abandoned at its next lease.
            let dirty = leases.pop().unwrap();
            std::fs::write(dirty.home.join("left"), "x").unwrap();
            drop(dirty);
            let next = pool.lease().unwrap();
            assert_eq!(next.home, home, "the slot cleared by path is reused");
            assert_eq!(
                held(&pool),
                MAX_HELD_SLOTS - 1,
                "the abandoned slot left the budget"
            );
            let created = pool.lease().unwrap();
            assert!(created.slot.as_ref().unwrap().held.is_some());
            assert_eq!(held(&pool), MAX_HELD_SLOTS);
            for dirs in [&next, &created] {
                assert!(std::fs::read_dir(&dirs.home).unwrap().next().is_none());
            }
        }
    }

    #[test]
    fn emptiness_table() {
        let long = "n".repeat(255);
        // (entries to create, entries to remove again, empty?)
        let many: Vec<String> = (0..300).map(|i| format!("{long:.200}{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let cases: &[(&[&str], &[&str], bool)] = &[
            (&[], &[], true),
            (&["x"], &[], false),
            (&[".x"], &[], false),
            (&["..."], &[], false),
            (&[long.as_str()], &[], false),
            (&many, &[], false),
            (&many, &many, true),
            (&["a", "b"], &["a"], false),
        ];
        for (index, (create, remove, empty)) in cases.iter().enumerate() {
            let tmp = tempfile::tempdir().unwrap();
            for name in *create {
                std::fs::write(tmp.path().join(name), "").unwrap();
            }
            for name in *remove {
                std::fs::remove_file(tmp.path().join(name)).unwrap();
            }
            let dir = OwnedFd::from(std::fs::File::open(tmp.path()).unwrap());
            assert_eq!(is_empty_dir(&dir).unwrap(), *empty, "case {index}");
        }
    }

    /// A setgid jobs root hands its group down to the slots; that is not tampering.
    #[test]
    fn slots_under_a_setgid_root_are_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("jobs");
        std::fs::create_dir(&root).unwrap();
        // SAFETY: getegid cannot fail.
        let other_group = unsafe { libc::getegid() } + 1;
        if std::os::unix::fs::chown(&root, None, Some(other_group)).is_err() {
            return; // not root: cannot hand the root to another group
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o2755)).unwrap();
        let pool = PrivateDirPool::new(HeldDir::open(&root).unwrap(), None, false);
        let first = pool.lease().unwrap();
        let home = first.home.clone();
        drop(first);
        assert_eq!(pool.lease().unwrap().home, home);
    }

    #[test]
    fn dropping_the_pool_removes_its_slots() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = pool(tmp.path());
        let dirs = pool.lease().unwrap();
        std::fs::write(dirs.home.join("x"), "x").unwrap();
        let other = pool.lease().unwrap();
        drop((dirs, other, pool));
        assert!(
            std::fs::read_dir(tmp.path().join("jobs"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn too_deep_a_tree_is_refused_not_recursed() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = pool(tmp.path());
        let dirs = pool.lease().unwrap();
        let mut deep = dirs.home.clone();
        for _ in 0..=MAX_LEFTOVER_DEPTH + 1 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let home = dirs.home.clone();
        dirs.clear();
        assert_ne!(pool.lease().unwrap().home, home);
    }
}
