//! What a tool's own install must read and execute, worked out from its binary, so that a tool
//! installed the normal way (a pip virtual environment, a Go binary in `~/go/bin`, a build under
//! `/srv`) runs under Landlock by setting `binary` alone.
//!
//! Followed, read-only:
//! - a script's `#!` interpreter (by its absolute path, never looked up by name), resolved, and
//!   that interpreter's install prefix (`PREFIX/bin/python3.11` -> `PREFIX`);
//! - a Python virtual environment (`pyvenv.cfg` beside the script's or interpreter's `bin/`):
//!   the environment's root, and the base interpreter's prefix its `home` key names;
//! - an ELF's dynamic loader (`PT_INTERP`) and its `RUNPATH`/`RPATH` directories (`$ORIGIN`
//!   expanded);
//! - the executable itself (a static or Go binary needs nothing else).
//!
//! Invariants: nothing here grants write access; a grant that would let the tool read the
//! daemon's own state (an ancestor of, or equal to, the output root or the private job
//! directories, or `/`) is skipped, and so is a computed directory one level below `/`
//! (`/root`, `/home`): those hold far more than one install. Every grant and every skip carries
//! a sentence saying why, which the daemon shows per tool. Grants already covered by
//! `system_read_paths`, or by another grant, are left out: they would add nothing.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use object::elf::{DT_RPATH, DT_RUNPATH};
use object::read::elf::{ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, FileKind, ReadCache, ReadRef};
use serde::Serialize;

use crate::policy::SandboxPolicy;

/// Longest `#!` line read, as the kernel reads it (`BINPRM_BUF_SIZE`).
const MAX_SHEBANG_BYTES: usize = 256;
/// How many `#!` interpreters are followed: the kernel follows at most four nested ones.
const MAX_INTERPRETER_DEPTH: usize = 4;
/// Largest `pyvenv.cfg` read: a real one is a few hundred bytes.
const MAX_PYVENV_CFG_BYTES: u64 = 16 * 1024;
/// Fewest components below `/` a computed directory grant must have: `/root` or `/home` hold
/// much more than the install that asked for them.
const MIN_DIR_DEPTH: usize = 2;

/// One path a tool may read (and execute) beyond the system paths, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadGrant {
    /// Canonical.
    pub path: PathBuf,
    pub reason: String,
}

/// What a tool's install needs, as computed for one binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstallReads {
    /// Granted, read-only, shallowest paths first.
    pub granted: Vec<ReadGrant>,
    /// Found but not granted; `reason` says why (give such a path in `read_paths` only if the
    /// tool really needs all of it).
    pub skipped: Vec<ReadGrant>,
}

impl InstallReads {
    /// The granted paths, for `RunSpec::read_paths`.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.granted.iter().map(|g| g.path.clone()).collect()
    }
}

/// Works out what `binary` (canonical, from `resolve_binary`) needs, plus the operator's
/// `explicit` paths (each with the reason to show, e.g. the key that set it), under `policy`.
pub fn install_read_paths(
    binary: &Path,
    explicit: &[(PathBuf, String)],
    policy: &SandboxPolicy,
) -> InstallReads {
    let mut found = Found::default();
    found.executable(binary, binary, 0);
    for (path, reason) in explicit {
        found.candidate(path, reason.clone(), Kind::Explicit);
    }
    filter(found, policy)
}

/// Whether granting `path` would let a tool read the daemon's own state under `policy`: the
/// output root, the private job directories, or an ancestor of either (the data directory, `/`).
pub fn exposes_daemon_state(path: &Path, policy: &SandboxPolicy) -> bool {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let path = canonical(path);
    [&policy.output_root, &policy.jobs_root]
        .into_iter()
        .any(|state| canonical(state).starts_with(&path))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Worked out from the install: subject to the breadth rule.
    Computed,
    /// The operator's `read_paths`.
    Explicit,
}

#[derive(Default)]
struct Found {
    candidates: Vec<(ReadGrant, Kind)>,
}

impl Found {
    fn candidate(&mut self, path: &Path, reason: String, kind: Kind) {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if !self.candidates.iter().any(|(g, _)| g.path == path) {
            self.candidates.push((ReadGrant { path, reason }, kind));
        }
    }

    /// `path` as named (a venv's `bin/python` link) and `canonical` (what it leads to).
    fn executable(&mut self, path: &Path, canonical: &Path, depth: usize) {
        let shown = canonical.display();
        self.candidate(
            canonical,
            if depth == 0 {
                "the tool's executable".to_string()
            } else {
                format!("interpreter named by a `#!` line ({})", path.display())
            },
            Kind::Computed,
        );
        for named in [path, canonical] {
            if let Some(venv) = virtual_environment(named) {
                self.venv(&venv, named);
            }
        }
        if depth > 0
            && let Some(prefix) = install_prefix(canonical)
        {
            self.candidate(
                &prefix,
                format!("install prefix of the interpreter {shown}"),
                Kind::Computed,
            );
        }
        let Ok(mut file) = File::open(canonical) else {
            return;
        };
        let mut head = [0u8; MAX_SHEBANG_BYTES];
        let read = read_head(&mut file, &mut head);
        if let Some(interpreter) = shebang_interpreter(&head[..read]) {
            if depth < MAX_INTERPRETER_DEPTH
                && let Ok(resolved) = interpreter.canonicalize()
            {
                self.executable(&interpreter, &resolved, depth + 1);
            }
            return;
        }
        for (path, reason) in elf_needs(file, canonical) {
            self.candidate(&path, reason, Kind::Computed);
        }
    }

    fn venv(&mut self, root: &Path, named: &Path) {
        self.candidate(
            root,
            format!("Python virtual environment of {}", named.display()),
            Kind::Computed,
        );
        let Some(home) = pyvenv_home(&root.join("pyvenv.cfg")) else {
            return;
        };
        let home = home.canonicalize().unwrap_or(home);
        let why = format!(
            "base Python of the virtual environment {} (pyvenv.cfg home = {})",
            root.display(),
            home.display()
        );
        match home.parent().filter(|_| home.ends_with("bin")) {
            Some(prefix) if depth(prefix) >= MIN_DIR_DEPTH => {
                self.candidate(prefix, format!("{why}: its prefix"), Kind::Computed);
            }
            // A prefix too broad to grant whole: the interpreter's directory and its library.
            Some(prefix) => {
                self.candidate(&home, format!("{why}: its bin"), Kind::Computed);
                self.candidate(
                    &prefix.join("lib"),
                    format!("{why}: its lib"),
                    Kind::Computed,
                );
            }
            None => self.candidate(&home, why, Kind::Computed),
        }
    }
}

/// Drops what adds nothing and what must not be granted, with the reason.
fn filter(found: Found, policy: &SandboxPolicy) -> InstallReads {
    let system: Vec<PathBuf> = policy
        .system_read_paths
        .iter()
        .map(|p| p.canonicalize().unwrap_or_else(|_| p.clone()))
        .collect();
    let mut candidates = found.candidates;
    // Ancestors first, so that what they cover is recognised.
    candidates.sort_by_key(|(g, _)| g.path.components().count());
    let mut reads = InstallReads::default();
    for (grant, kind) in candidates {
        let skip = |why: &str| ReadGrant {
            reason: format!("{}; not granted: {why}", grant.reason),
            path: grant.path.clone(),
        };
        if !grant.path.exists() {
            reads.skipped.push(skip("it does not exist"));
        } else if exposes_daemon_state(&grant.path, policy) {
            reads
                .skipped
                .push(skip("it holds the daemon's own state (outputs, job dirs)"));
        } else if kind == Kind::Computed
            && grant.path.is_dir()
            && depth(&grant.path) < MIN_DIR_DEPTH
        {
            reads.skipped.push(skip(
                "a directory right below `/` holds far more than one install; name what the tool \
                 needs in `read_paths`",
            ));
        } else if system.iter().any(|dir| grant.path.starts_with(dir))
            || reads
                .granted
                .iter()
                .any(|kept| kept.path.is_dir() && grant.path.starts_with(&kept.path))
        {
            // Already readable: nothing to add.
        } else {
            reads.granted.push(grant);
        }
    }
    reads
}

/// Components below `/` (`/srv/tool` has 2).
fn depth(path: &Path) -> usize {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
}

fn read_head(file: &mut File, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    filled
}

/// The absolute interpreter path of a `#!` line; `None` for anything else, including a relative
/// name (the kernel would resolve it against the working directory, never granted here).
fn shebang_interpreter(head: &[u8]) -> Option<PathBuf> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|b| *b == b'\n').unwrap_or(line.len())];
    let line = std::str::from_utf8(line).ok()?;
    let interpreter = line.split_ascii_whitespace().next()?;
    let path = PathBuf::from(interpreter);
    path.is_absolute().then_some(path)
}

/// The virtual environment `executable` lies in: `ROOT/bin/<name>` with a `ROOT/pyvenv.cfg`.
fn virtual_environment(executable: &Path) -> Option<PathBuf> {
    let bin = executable.parent()?;
    let root = bin.parent()?;
    (bin.file_name()? == "bin" && root.join("pyvenv.cfg").is_file()).then(|| root.to_path_buf())
}

/// The `home` key of a `pyvenv.cfg` (`key = value` lines), when absolute.
fn pyvenv_home(cfg: &Path) -> Option<PathBuf> {
    let mut text = String::new();
    File::open(cfg)
        .ok()?
        .take(MAX_PYVENV_CFG_BYTES)
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        let home = PathBuf::from(value.trim());
        (key.trim() == "home" && home.is_absolute()).then_some(home)
    })
}

/// `PREFIX` of an interpreter installed as `PREFIX/bin/<name>`.
fn install_prefix(interpreter: &Path) -> Option<PathBuf> {
    let bin = interpreter.parent()?;
    (bin.file_name()? == "bin").then(|| bin.parent().map(Path::to_path_buf))?
}

/// The dynamic loader and library directories an ELF executable names; nothing for a static
/// binary or a file that is not ELF.
fn elf_needs(file: File, path: &Path) -> Vec<(PathBuf, String)> {
    let cache = ReadCache::new(file);
    let needs =
        match FileKind::parse(&cache) {
            Ok(FileKind::Elf64) => ElfFile64::<Endianness, _>::parse(&cache)
                .map(|elf| loader_and_runpath(&elf, &cache)),
            Ok(FileKind::Elf32) => ElfFile32::<Endianness, _>::parse(&cache)
                .map(|elf| loader_and_runpath(&elf, &cache)),
            _ => return Vec::new(),
        };
    let Ok((loader, runpaths)) = needs else {
        return Vec::new();
    };
    let origin = path.parent().unwrap_or(Path::new("/"));
    let shown = path.display();
    let mut needs = Vec::new();
    if let Some(loader) = loader {
        needs.push((loader, format!("dynamic loader of {shown}")));
    }
    for entry in runpaths {
        let expanded = entry
            .replace("${ORIGIN}", &origin.to_string_lossy())
            .replace("$ORIGIN", &origin.to_string_lossy());
        let dir = PathBuf::from(expanded);
        if dir.is_absolute() {
            needs.push((
                dir,
                format!("library search path (RUNPATH {entry}) of {shown}"),
            ));
        }
    }
    needs
}

/// `PT_INTERP` and the `DT_RUNPATH`/`DT_RPATH` entries of a parsed ELF.
fn loader_and_runpath<'data, Elf, R>(
    elf: &object::read::elf::ElfFile<'data, Elf, R>,
    data: R,
) -> (Option<PathBuf>, Vec<String>)
where
    Elf: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    use std::os::unix::ffi::OsStrExt;
    let endian = elf.endian();
    let loader = elf
        .elf_program_headers()
        .iter()
        .find_map(|header| header.interpreter(endian, data).ok().flatten())
        .map(|bytes| PathBuf::from(std::ffi::OsStr::from_bytes(bytes)));
    let mut runpaths = Vec::new();
    if let Ok(table) = elf.elf_section_table().dynamic_table(endian, data) {
        for entry in &table {
            let is_search_path = entry.tag == DT_RUNPATH || entry.tag == DT_RPATH;
            if is_search_path && let Ok(bytes) = table.string(entry) {
                let text = String::from_utf8_lossy(bytes);
                runpaths.extend(
                    text.split(':')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    (loader, runpaths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn policy(root: &Path) -> SandboxPolicy {
        SandboxPolicy {
            output_root: root.join("data/output"),
            jobs_root: root.join("data/jobs"),
            system_read_paths: vec![
                PathBuf::from("/usr"),
                PathBuf::from("/lib"),
                PathBuf::from("/lib64"),
                PathBuf::from("/bin"),
            ],
            ..SandboxPolicy::default()
        }
    }

    fn executable(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn shebang_table() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"#!/opt/venv/bin/python3\nimport x",
                Some("/opt/venv/bin/python3"),
            ),
            (b"#! /usr/bin/perl -w\n", Some("/usr/bin/perl")),
            (b"#!/usr/bin/env python3\n", Some("/usr/bin/env")),
            (b"#!python3\n", None),
            (b"#!\n", None),
            (b"\x7fELF", None),
            (b"", None),
        ];
        for (head, expected) in cases {
            assert_eq!(
                shebang_interpreter(head),
                expected.map(PathBuf::from),
                "{head:?}"
            );
        }
    }

    /// A pip-installed tool: `VENV/bin/tool` whose `#!` names `VENV/bin/python3`, a link to a
    /// base interpreter at `BASE/bin/python3.11` outside every system path.
    #[test]
    fn a_virtual_environment_grants_itself_and_its_base_interpreters_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let base = root.join("pyenv/versions/3.11.7");
        executable(&base.join("bin/python3.11"), "\x7fELF not really");
        std::fs::create_dir_all(base.join("lib/python3.11")).unwrap();
        let venv = root.join("venvs/scanner");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::os::unix::fs::symlink(base.join("bin/python3.11"), venv.join("bin/python3")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!("home = {}\nversion = 3.11.7\n", base.join("bin").display()),
        )
        .unwrap();
        let tool = venv.join("bin/scanner");
        executable(
            &tool,
            &format!("#!{}\nimport scanner\n", venv.join("bin/python3").display()),
        );

        let reads = install_read_paths(&tool, &[], &policy(&root));
        let granted: Vec<&Path> = reads.granted.iter().map(|g| g.path.as_path()).collect();
        // The venv covers the tool and its python link; the prefix covers the interpreter.
        assert_eq!(granted, [venv.as_path(), base.as_path()], "{reads:#?}");
        assert!(
            reads.granted[0].reason.contains("virtual environment"),
            "{reads:#?}"
        );
        assert!(
            reads.granted[1].reason.contains("pyvenv.cfg home"),
            "{reads:#?}"
        );
    }

    /// (what is found, granted?) for paths a computed grant may or may not reach.
    #[test]
    fn what_is_never_granted_table() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let policy = policy(&root);
        std::fs::create_dir_all(root.join("data/output")).unwrap();
        std::fs::create_dir_all(root.join("srv/tool")).unwrap();
        let cases: &[(&Path, Kind, bool)] = &[
            (&root.join("srv/tool"), Kind::Computed, true),
            // The daemon's own state, or an ancestor of it.
            (&root.join("data"), Kind::Explicit, false),
            (&root, Kind::Computed, false),
            (Path::new("/"), Kind::Explicit, false),
            // Right below `/`: only when the operator names it.
            (Path::new("/etc"), Kind::Computed, false),
            (Path::new("/etc"), Kind::Explicit, true),
            // Covered by a system path: nothing to add.
            (Path::new("/usr/lib"), Kind::Explicit, false),
            (&root.join("missing"), Kind::Explicit, false),
        ];
        for (path, kind, granted) in cases {
            let mut found = Found::default();
            found.candidate(path, "test".into(), *kind);
            let reads = filter(found, &policy);
            assert_eq!(
                reads.granted.len() == 1,
                *granted,
                "{path:?} {kind:?}: {reads:?}"
            );
        }
    }

    /// The fake tool or any dynamically linked system binary: its loader is a system path, so
    /// only the executable itself is granted when it lies outside them.
    #[test]
    fn an_elf_outside_the_system_paths_grants_only_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let tool = root.join("bin/true-copy");
        std::fs::create_dir_all(tool.parent().unwrap()).unwrap();
        std::fs::copy("/bin/true", &tool).unwrap();
        let reads = install_read_paths(&tool, &[], &policy(&root));
        let granted: Vec<&Path> = reads.granted.iter().map(|g| g.path.as_path()).collect();
        assert_eq!(granted, [tool.as_path()], "{reads:#?}");
        // The loader is found, and left out as a system path.
        let mut found = Found::default();
        found.executable(&tool, &tool, 0);
        assert!(
            found
                .candidates
                .iter()
                .any(|(g, _)| g.reason.starts_with("dynamic loader")),
            "{:?}",
            found.candidates.iter().map(|(g, _)| g).collect::<Vec<_>>()
        );
    }
}
