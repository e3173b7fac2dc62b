//! Landlock: start-up detection and the per-job ruleset.
//!
//! Invariants:
//! - The ruleset is built entirely in the parent (opening paths and allocating is allowed
//!   there); the child only calls `landlock_restrict_self` on the finished ruleset fd, a single
//!   async-signal-safe syscall (see `child.rs`).
//! - Rules bind to inodes: the system paths, device files and allowed directories use fds
//!   opened once at start-up and held for the sandbox's lifetime, so a path renamed or replaced
//!   after validation does not widen what the tool can reach.
//! - The access rights (which ones exist, which ones are "read", which apply to files) come
//!   from the `landlock` crate for `min(kernel ABI, TARGET_ABI)`, computed once at start-up;
//!   the per-job build is nothing but raw `landlock_create_ruleset` / `landlock_add_rule`
//!   calls with them (see `landlock_sys.rs` for why).
//! - Enforcement is reported as the `landlock` crate's `restrict_self` returned it for a probe
//!   ruleset handling the rights of `TARGET_ABI`, run once at start-up on a throwaway thread
//!   (Landlock and no_new_privs are per-thread, so the daemon itself stays unrestricted). The
//!   per-job ruleset handles exactly the subset of those rights the kernel supports, which is
//!   what the probe's best-effort ruleset handled, so a job's enforcement is the probe's.
//!
//! Why one complete ruleset per job rather than a layer built once plus a small per-job layer:
//! stacked Landlock layers intersect, and a layer confines only the rights it handles. To keep
//! a job from READING another job's directories, the per-job layer must handle the read rights,
//! and then it must itself grant every path the tool may read (system paths, inputs, binary):
//! it is the full ruleset again. A per-job layer handling only write rights would be small but
//! would let every job read every other job's output and home, which GUARANTEES.md excludes.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use landlock::{ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreated, RulesetStatus, Scope};
use serde::Serialize;

use crate::error::SandboxError;
use crate::landlock_sys;
use crate::paths::{HeldDir, open_beneath};

/// The Landlock ABI whose rights every ruleset handles. V6 adds scopes: a tool can neither
/// signal processes outside its domain (the daemon) nor connect to abstract UNIX sockets
/// created outside it. Older kernels enforce a subset, reported as `partial`.
pub const TARGET_ABI: ABI = ABI::V6;
/// `TARGET_ABI` as the kernel numbers it (the version query answers with this number).
const TARGET_ABI_VERSION: i32 = 6;

/// Device files every tool may read and write (null sinks and entropy sources).
pub const DEVICE_FILES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// How much of the requested Landlock restriction the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Not requested by the policy (or not applicable).
    Off,
    FullyEnforced,
    PartiallyEnforced,
    NotEnforced,
}

/// Probes Landlock on a throwaway thread and returns what `restrict_self` reported.
pub fn probe() -> Enforcement {
    let probe = std::thread::Builder::new()
        .name("toolgate-landlock-probe".into())
        .spawn(|| {
            let status = probe_ruleset()
                .and_then(|ruleset| ruleset.restrict_self().map_err(|e| e.to_string()));
            match status.map(|s| s.ruleset) {
                Ok(RulesetStatus::FullyEnforced) => Enforcement::FullyEnforced,
                Ok(RulesetStatus::PartiallyEnforced) => Enforcement::PartiallyEnforced,
                Ok(RulesetStatus::NotEnforced) | Err(_) => Enforcement::NotEnforced,
            }
        });
    match probe.map(|thread| thread.join()) {
        Ok(Ok(enforcement)) => enforcement,
        _ => Enforcement::NotEnforced,
    }
}

fn probe_ruleset() -> Result<RulesetCreated, String> {
    Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .and_then(|r| r.scope(Scope::from_all(TARGET_ABI)))
        .and_then(|r| r.create())
        .map_err(|e| e.to_string())
}

/// The access rights of the ABI both the kernel and toolgate know, as raw bits.
#[derive(Debug, Clone, Copy)]
struct Rights {
    /// Handled by every job's ruleset: every filesystem right.
    all: u64,
    /// Handled scopes (signals, abstract UNIX sockets from ABI 6 on).
    scoped: u64,
    /// Reading and executing.
    read: u64,
    /// The rights that apply to a non-directory (the kernel refuses the others on a file).
    file: u64,
}

impl Rights {
    fn of(abi: ABI) -> Self {
        Self {
            all: AccessFs::from_all(abi).bits(),
            scoped: Scope::from_all(abi).bits(),
            read: AccessFs::from_read(abi).bits(),
            file: AccessFs::from_file(abi).bits(),
        }
    }
}

/// What a rule grants: `access` beneath the canonical `path`.
#[derive(Debug)]
struct Grant {
    path: PathBuf,
    is_dir: bool,
    access: u64,
}

/// One rule every job gets: the held inode and what it grants.
struct HeldRule {
    grant: Grant,
    fd: OwnedFd,
}

/// Rules shared by every job, opened once at start-up: system paths (read and execute), device
/// files (read and write) and the allowed directories (read and execute). Missing system paths
/// and devices are skipped, and so is a rule that an ancestor directory's rule already covers
/// (on a merged-/usr system /bin, /sbin, /lib and /lib64 are /usr/...): every rule left costs a
/// `landlock_add_rule` per job.
pub struct SharedRules {
    rights: Rights,
    rules: Vec<HeldRule>,
    /// A ruleset holding every shared rule, built once at start-up and never used to restrict
    /// anything. Building it makes a rule the kernel refuses fail `Sandbox::new` rather than
    /// every job; holding it keeps the kernel's per-inode Landlock objects of the shared paths
    /// alive, so the per-job `landlock_add_rule` calls (and the freeing of each finished job's
    /// domain) do not allocate and release them again. Close-on-exec, like every ruleset fd.
    _start_up_ruleset: OwnedFd,
}

impl SharedRules {
    /// Called only after the probe found Landlock enforced.
    pub fn open(system: &[PathBuf], allowed: &[HeldDir]) -> Result<Self, SandboxError> {
        let version = landlock_sys::abi_version().ok_or_else(|| {
            SandboxError::Landlock("the kernel no longer reports a Landlock ABI version".into())
        })?;
        let rights = Rights::of(ABI::from(version.min(TARGET_ABI_VERSION)));
        let read_write = (AccessFs::ReadFile | AccessFs::WriteFile).bits();
        let wanted = system
            .iter()
            .map(|path| (path.as_path(), rights.read))
            .chain(DEVICE_FILES.iter().map(|d| (Path::new(*d), read_write)));
        let mut candidates = Vec::new();
        for (path, access) in wanted {
            if let Some(rule) = open_optional(path, access, rights)? {
                candidates.push(rule);
            }
        }
        // The allowed directories: the inodes validated and held since start-up.
        for dir in allowed {
            candidates.push(HeldRule {
                grant: Grant {
                    path: dir.path.clone(),
                    is_dir: true,
                    access: rights.read,
                },
                fd: dir.fd.try_clone().map_err(|e| held_error(&dir.path, e))?,
            });
        }
        let rules = without_covered(candidates, |rule| &rule.grant);
        let start_up_ruleset = new_ruleset(rights)?;
        add_all(&start_up_ruleset, &rules)?;
        Ok(Self {
            rights,
            rules,
            _start_up_ruleset: start_up_ruleset,
        })
    }
}

/// Drops every rule `covered` by a rule kept before it (ancestors are sorted first).
fn without_covered<T>(mut candidates: Vec<T>, grant: impl Fn(&T) -> &Grant) -> Vec<T> {
    candidates.sort_by_key(|c| grant(c).path.components().count());
    let mut kept: Vec<T> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let g = grant(&candidate);
        if !covered(&g.path, g.access, kept.iter().map(&grant)) {
            kept.push(candidate);
        }
    }
    kept
}

/// Whether `access` beneath the canonical `path` is already granted by one of `grants`, i.e. a
/// directory rule on `path` or one of its ancestors with at least those rights. Landlock grants
/// the union of the rules met walking up from the file, so such a rule adds nothing. A
/// non-canonical `path` can only make this answer "covered" wrongly for an inode that lies
/// elsewhere: the tool is then denied (fails closed), never granted more.
fn covered<'a>(path: &Path, access: u64, grants: impl IntoIterator<Item = &'a Grant>) -> bool {
    grants
        .into_iter()
        .any(|g| g.is_dir && access & !g.access == 0 && path.starts_with(&g.path))
}

/// Builds the ruleset of one job: the shared rules, the tool binary (read and execute), what
/// the tool reads of its own (its operator-provided home, its install: read and execute, files
/// or directories) and the job's own writable directories (every right: the sandbox created
/// them for this job alone).
pub fn build(
    shared: &SharedRules,
    binary: &Path,
    readable: &[&Path],
    writable: &[&Path],
) -> Result<OwnedFd, SandboxError> {
    let rights = shared.rights;
    let ruleset = new_ruleset(rights)?;
    add_all(&ruleset, &shared.rules)?;
    // `binary` is canonical (resolve_binary); usually it lies beneath /usr, already granted.
    let execute = (AccessFs::ReadFile | AccessFs::Execute).bits() & rights.file;
    if !covered(binary, execute, shared.rules.iter().map(|r| &r.grant)) {
        let binary_fd =
            open_beneath(None, binary, libc::O_PATH, 0).map_err(|e| held_error(binary, e))?;
        add(&ruleset, binary, binary_fd.as_fd(), execute)?;
    }
    for &path in readable {
        if !covered(path, rights.read, shared.rules.iter().map(|r| &r.grant)) {
            add_readable(&ruleset, path, rights)?;
        }
    }
    for &dir in writable {
        add_dir(&ruleset, dir, rights.all)?;
    }
    Ok(ruleset)
}

/// Grants `access` beneath `dir`, which must be canonical: the tool's home was resolved at
/// start-up and the sandbox created the job's directories symlink-free, so a symlink found on
/// the way now is refused, never followed.
fn add_dir(ruleset: &OwnedFd, dir: &Path, access: u64) -> Result<(), SandboxError> {
    let fd = open_beneath(
        None,
        dir,
        libc::O_PATH | libc::O_DIRECTORY,
        libc::RESOLVE_NO_SYMLINKS,
    )
    .map_err(|e| held_error(dir, e))?;
    add(ruleset, dir, fd.as_fd(), access)
}

/// Grants read and execute on `path`, a canonical directory or file (narrowed to the rights
/// valid on a file); like `add_dir`, a symlink found on the way is refused, never followed. A
/// path gone since start-up (an uninstalled tool) is left out: that only denies, and the tool's
/// `execve` then fails with a step and an errno the daemon can explain.
fn add_readable(ruleset: &OwnedFd, path: &Path, rights: Rights) -> Result<(), SandboxError> {
    let fd = match open_beneath(None, path, libc::O_PATH, libc::RESOLVE_NO_SYMLINKS) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(held_error(path, e)),
    };
    let access = if is_dir(&fd)? {
        rights.read
    } else {
        rights.read & rights.file
    };
    add(ruleset, path, fd.as_fd(), access)
}

/// Most rulesets kept by `RulesetCache`: (tools × pooled private slots) in practice, a few
/// dozen; the bound only stops an unusual workload from growing it without end.
const MAX_CACHED_RULESETS: usize = 256;

/// Rulesets of jobs that get no output directory, by binary and private directories. With
/// pooled private directories the same few combinations recur job after job, and one ruleset
/// can restrict any number of children (`landlock_restrict_self` copies it into the new
/// domain), so the ~20 `landlock_add_rule` calls of a build are paid once per combination.
///
/// A cached rule stays bound to the inodes it was built with. The binary's identity (device,
/// inode, change time) is part of the key, so a replaced binary gets a fresh ruleset; the
/// private directories cannot be replaced by a landlocked tool (their parent is not writable
/// to it), and a stale rule could only deny, never grant.
#[derive(Default)]
pub struct RulesetCache {
    entries: Mutex<HashMap<CacheKey, Arc<OwnedFd>>>,
}

#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    binary: (u64, u64, i64, i64),
    readable: Vec<PathBuf>,
    writable: Vec<PathBuf>,
}

impl RulesetCache {
    /// The cached ruleset for `binary` + `readable` + `writable`, built on first use.
    pub fn get_or_build(
        &self,
        shared: &SharedRules,
        binary: &Path,
        meta: &std::fs::Metadata,
        readable: &[&Path],
        writable: &[&Path],
    ) -> Result<Arc<OwnedFd>, SandboxError> {
        let key = CacheKey {
            binary: (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()),
            readable: readable.iter().map(|path| path.to_path_buf()).collect(),
            writable: writable.iter().map(|dir| dir.to_path_buf()).collect(),
        };
        let lock = || self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ruleset) = lock().get(&key) {
            return Ok(Arc::clone(ruleset));
        }
        let ruleset = Arc::new(build(shared, binary, readable, writable)?);
        let mut entries = lock();
        if entries.len() < MAX_CACHED_RULESETS {
            entries.insert(key, Arc::clone(&ruleset));
        }
        Ok(ruleset)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }
}

fn new_ruleset(rights: Rights) -> Result<OwnedFd, SandboxError> {
    landlock_sys::create_ruleset(rights.all, rights.scoped)
        .map_err(|e| SandboxError::Landlock(format!("creating the ruleset: {e}")))
}

fn add_all(ruleset: &OwnedFd, rules: &[HeldRule]) -> Result<(), SandboxError> {
    for rule in rules {
        add(
            ruleset,
            &rule.grant.path,
            rule.fd.as_fd(),
            rule.grant.access,
        )?;
    }
    Ok(())
}

fn add(
    ruleset: &OwnedFd,
    path: &Path,
    fd: std::os::fd::BorrowedFd<'_>,
    access: u64,
) -> Result<(), SandboxError> {
    landlock_sys::add_path_rule(ruleset, fd, access).map_err(|e| {
        SandboxError::Landlock(format!("rule for {} ({access:#x}): {e}", path.display()))
    })
}

fn held_error(path: &Path, e: std::io::Error) -> SandboxError {
    SandboxError::Landlock(format!("opening {}: {e}", path.display()))
}

/// Opens the canonical form of `path` for a rule (`None`: it does not exist); a file's rights
/// are narrowed to those valid on a non-directory.
fn open_optional(
    path: &Path,
    access: u64,
    rights: Rights,
) -> Result<Option<HeldRule>, SandboxError> {
    let canonical = match path.canonicalize() {
        Ok(canonical) => canonical,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(held_error(path, e)),
    };
    let fd = open_beneath(None, &canonical, libc::O_PATH, 0).map_err(|e| held_error(path, e))?;
    let is_dir = is_dir(&fd)?;
    let access = if is_dir { access } else { access & rights.file };
    Ok(Some(HeldRule {
        grant: Grant {
            path: canonical,
            is_dir,
            access,
        },
        fd,
    }))
}

fn is_dir(fd: &OwnedFd) -> Result<bool, SandboxError> {
    let file = std::fs::File::from(
        fd.try_clone()
            .map_err(|e| SandboxError::Landlock(e.to_string()))?,
    );
    Ok(file
        .metadata()
        .map_err(|e| SandboxError::Landlock(e.to_string()))?
        .is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: u64 = 0b1101;
    const READ_FILE: u64 = 0b0100;
    const WRITE: u64 = 0b0010;

    fn grant(path: &str, is_dir: bool, access: u64) -> Grant {
        Grant {
            path: PathBuf::from(path),
            is_dir,
            access,
        }
    }

    #[test]
    fn covered_table() {
        let shared = [
            grant("/usr", true, READ),
            grant("/etc/ssl", true, READ),
            grant("/etc/passwd", false, READ_FILE),
            grant("/dev/null", false, READ_FILE | WRITE),
        ];
        let cases: &[(&str, u64, bool)] = &[
            ("/usr/bin/true", READ_FILE, true),
            ("/usr/bin", READ, true),
            ("/usr", READ, true),
            // More rights than the ancestor grants.
            ("/usr/bin/true", READ | WRITE, false),
            // Component-wise, not string prefixes.
            ("/usrlocal/bin/tool", READ_FILE, false),
            ("/etc/sslx", READ, false),
            ("/etc", READ, false),
            ("/etc/ssl/certs/ca.pem", READ_FILE, true),
            // A file rule covers nothing beneath it, not even its own path.
            ("/etc/passwd", READ_FILE, false),
            ("/dev/null", WRITE, false),
            ("/work/target/debug/tool", READ_FILE, false),
        ];
        for (path, access, expected) in cases {
            assert_eq!(
                covered(Path::new(path), *access, &shared),
                *expected,
                "{path} {access:#b}"
            );
        }
    }

    #[test]
    fn only_uncovered_rules_are_kept() {
        let candidates = vec![
            grant("/usr/share/zoneinfo", true, READ),
            grant("/usr/bin", true, READ),
            grant("/usr", true, READ),
            grant("/usr/lib", true, READ),
            grant("/etc/ssl", true, READ),
            grant("/etc/ld.so.cache", false, READ_FILE),
            grant("/usr", true, READ),
            grant("/usr/local/out", true, READ | WRITE),
        ];
        let kept = without_covered(candidates, |g| g);
        let kept: Vec<(&str, u64)> = kept
            .iter()
            .map(|g| (g.path.to_str().unwrap(), g.access))
            .collect();
        assert_eq!(
            kept,
            [
                ("/usr", READ),
                ("/etc/ssl", READ),
                ("/etc/ld.so.cache", READ_FILE),
                ("/usr/local/out", READ | WRITE),
            ]
        );
    }

    /// Same binary and directories: one ruleset; another directory or a replaced binary (new
    /// inode at the same path): a new one.
    #[test]
    fn cached_rulesets_follow_the_binary_and_the_directories() {
        assert_eq!(
            probe(),
            Enforcement::FullyEnforced,
            "this machine class (Landlock ABI >= 6) must fully enforce"
        );
        let tmp = tempfile::tempdir().unwrap();
        let allowed = HeldDir::open(tmp.path()).unwrap();
        let shared = SharedRules::open(&[PathBuf::from("/usr")], &[allowed]).unwrap();
        let binary = tmp.path().join("tool");
        std::fs::write(&binary, "#!/bin/true\n").unwrap();
        let (home, work) = (tmp.path().join("home"), tmp.path().join("work"));
        std::fs::create_dir(&home).unwrap();
        std::fs::create_dir(&work).unwrap();
        let cache = RulesetCache::default();
        let meta = || std::fs::metadata(&binary).unwrap();
        let first = cache
            .get_or_build(&shared, &binary, &meta(), &[], &[&home])
            .unwrap();
        let again = cache
            .get_or_build(&shared, &binary, &meta(), &[], &[&home])
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other_dir = cache
            .get_or_build(&shared, &binary, &meta(), &[], &[&work])
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &other_dir));
        let with_readable = cache
            .get_or_build(&shared, &binary, &meta(), &[&work], &[&home])
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &with_readable));
        std::fs::remove_file(&binary).unwrap();
        std::fs::write(&binary, "#!/bin/true\n").unwrap();
        let replaced = cache
            .get_or_build(&shared, &binary, &meta(), &[], &[&home])
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &replaced));
        assert_eq!(cache.len(), 4);
    }

    /// What a tool reads of its own (files and directories) is granted; a path gone since
    /// start-up is left out rather than failing the build, and a symlink is refused.
    #[test]
    fn readable_paths_table() {
        assert_eq!(probe(), Enforcement::FullyEnforced);
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        // Outside the allowed directory, so that no shared rule covers the paths.
        std::fs::create_dir(root.join("workspace")).unwrap();
        let allowed = HeldDir::open(&root.join("workspace")).unwrap();
        let shared = SharedRules::open(&[PathBuf::from("/usr")], &[allowed]).unwrap();
        let binary = root.join("tool");
        std::fs::write(&binary, "#!/bin/true\n").unwrap();
        std::fs::create_dir(root.join("venv")).unwrap();
        std::fs::write(root.join("interpreter"), "").unwrap();
        std::os::unix::fs::symlink(root.join("venv"), root.join("link")).unwrap();
        let cases: &[(&str, bool)] = &[
            ("venv", true),
            ("interpreter", true),
            ("gone", true),
            ("link", false),
        ];
        for (name, builds) in cases {
            let path = root.join(name);
            let built = build(&shared, &binary, &[path.as_path()], &[]);
            assert_eq!(built.is_ok(), *builds, "{name}: {:?}", built.err());
        }
    }
}
