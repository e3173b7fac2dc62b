//! Tool binary resolution, done once at daemon start so a later change of PATH or of the
//! current directory cannot change which file runs.
//!
//! Invariants: a resolved binary is an absolute, canonical path to a regular file with an
//! execute bit. A missing tool is an error value (the daemon reports "tool unavailable"),
//! never a panic. A name looked up on PATH never resolves to a shell, an interpreter or a
//! command runner (by the name asked for or by the file it leads to): those run whatever their
//! arguments say, so a plugin naming one would choose the program itself. Only the operator
//! can pick such a file, by its path.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{SandboxError, truncate_value};

/// Resolves the binary for tool `name`: the configured path when given (it must be absolute
/// and executable), else the first executable `name` on `search_path` (absolute entries only:
/// an empty or relative PATH entry would mean "the current directory").
pub fn resolve_binary(
    configured: Option<&Path>,
    name: &str,
    search_path: &str,
) -> Result<PathBuf, SandboxError> {
    let unavailable = |reason: String| SandboxError::BinaryUnavailable {
        name: truncate_value(name),
        reason,
    };
    if let Some(path) = configured {
        if !path.is_absolute() {
            return Err(unavailable(format!(
                "configured path {} is not absolute",
                path.display()
            )));
        }
        return executable_file(path).map_err(unavailable);
    }
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(unavailable(
            "a tool name must be a plain file name to look up on PATH".into(),
        ));
    }
    if runs_anything(name) {
        return Err(unavailable(format!(
            "{name:?} is a shell, interpreter or command runner, which is never looked up by \
             name; give the file's path in the configuration if it is really the tool"
        )));
    }
    let found = search_path
        .split(':')
        .map(Path::new)
        .filter(|dir| dir.is_absolute())
        .find_map(|dir| executable_file(&dir.join(name)).ok())
        .ok_or_else(|| unavailable(format!("not found on PATH {search_path:?}")))?;
    // A link named like a scanner may lead to a shell (`/usr/bin/sh -> dash`).
    let file_name = found.file_name().unwrap_or_default().to_string_lossy();
    if runs_anything(&file_name) {
        return Err(unavailable(format!(
            "{name:?} on PATH is {}, a shell, interpreter or command runner, which is never \
             looked up by name; give the file's path in the configuration if it is really the tool",
            found.display()
        )));
    }
    Ok(found)
}

/// Programs that run whatever their arguments or input say: shells, language interpreters and
/// command runners. Matched on the file name without a version suffix (`python3.12`,
/// `perl5.36`).
const RUNS_ANYTHING: &[&str] = &[
    // shells
    "sh",
    "ash",
    "bash",
    "dash",
    "rbash",
    "zsh",
    "ksh",
    "mksh",
    "pdksh",
    "csh",
    "tcsh",
    "fish",
    "yash",
    "busybox",
    "toybox",
    "pwsh",
    // interpreters
    "python",
    "pypy",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "lua",
    "luajit",
    "tclsh",
    "wish",
    "expect",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "java",
    "jshell",
    "rscript",
    "julia",
    "guile",
    "racket",
    "sbcl",
    "osascript",
    "gdb",
    // command runners
    "env",
    "xargs",
    "sudo",
    "su",
    "doas",
    "pkexec",
    "nsenter",
    "unshare",
    "chroot",
    "setsid",
    "nohup",
    "timeout",
    "stdbuf",
    "nice",
    "ionice",
    "taskset",
    "chrt",
    "setpriv",
    "runuser",
    "script",
    "strace",
    "ltrace",
    "flock",
    "watch",
    "socat",
    "find",
];

/// Whether `file_name` (its version suffix ignored) is one of [`RUNS_ANYTHING`].
fn runs_anything(file_name: &str) -> bool {
    let base = file_name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '-');
    RUNS_ANYTHING.contains(&base.to_ascii_lowercase().as_str())
}

/// Canonical path of `path` when it is a regular file with an execute bit.
fn executable_file(path: &Path) -> Result<PathBuf, String> {
    let canonical = path
        .canonicalize()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = canonical
        .metadata()
        .map_err(|e| format!("{}: {e}", canonical.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", canonical.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not executable", canonical.display()));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn runs_anything_table() {
        for name in [
            "sh",
            "bash",
            "dash",
            "python3",
            "python3.12",
            "perl5.36",
            "env",
            "BusyBox",
        ] {
            assert!(runs_anything(name), "{name}");
        }
        for name in [
            "terrascan",
            "prowler",
            "checkov",
            "shellcheck",
            "envoy",
            "trivy",
            "pythonic",
        ] {
            assert!(!runs_anything(name), "{name}");
        }
    }

    #[test]
    fn resolution_table() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        fs::write(&exe, "#!/bin/true\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("plain");
        fs::write(&plain, "data").unwrap();
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("scanner")).unwrap();
        let dir_path = dir.path().to_str().unwrap().to_string();
        let canonical_exe = exe.canonicalize().unwrap();

        // (configured, name, PATH, expected Ok path)
        let cases: Vec<(Option<PathBuf>, &str, String, Option<PathBuf>)> = vec![
            (
                Some(exe.clone()),
                "tool",
                String::new(),
                Some(canonical_exe.clone()),
            ),
            (Some(PathBuf::from("tool")), "tool", dir_path.clone(), None),
            (Some(plain.clone()), "plain", String::new(), None),
            (Some(dir.path().into()), "x", String::new(), None),
            (
                None,
                "tool",
                format!("relative:{dir_path}"),
                Some(canonical_exe.clone()),
            ),
            (None, "tool", ":.".into(), None),
            (None, "plain", dir_path.clone(), None),
            (None, "missing", dir_path.clone(), None),
            (None, "../tool", dir_path.clone(), None),
            (None, "", dir_path.clone(), None),
            // Shells and interpreters are never looked up by name, even when on PATH.
            (None, "sh", "/usr/bin:/bin".into(), None),
            (None, "python3", "/usr/bin:/bin".into(), None),
            (None, "env", "/usr/bin:/bin".into(), None),
            // ...nor through a link with a scanner's name.
            (None, "scanner", dir_path.clone(), None),
            // The operator may still name one by its path.
            (
                Some(PathBuf::from("/bin/sh")),
                "sh",
                String::new(),
                Some(PathBuf::from("/bin/sh").canonicalize().unwrap()),
            ),
        ];
        for (configured, name, path, expected) in cases {
            let got = resolve_binary(configured.as_deref(), name, &path);
            match expected {
                Some(p) => assert_eq!(got.unwrap(), p, "{configured:?} {name}"),
                None => assert!(
                    matches!(got, Err(SandboxError::BinaryUnavailable { .. })),
                    "{configured:?} {name} {path}: {got:?}"
                ),
            }
        }
    }
}
