//! Typed arguments and their resolution into the argv a tool receives.
//!
//! Invariants: every argument is checked before anything runs, and checking creates nothing; a
//! literal never contains NUL; an input path is inside an allowed directory (see `paths.rs`);
//! output arguments all name the job's single output directory, and a requested one is a free
//! name directly below the output root that is not reserved for a job (see `job_dirs.rs`). There is no shell anywhere: argv goes to execve as is,
//! and `shell_quote` exists only to display a command.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PlanRejected, RejectReason};
use crate::job_dirs::is_reserved_output_name;
use crate::paths::{HeldDir, check_absent, name_below_root, resolve_input};

/// One argument of a tool's argv, as a plugin typed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Arg {
    /// Passed verbatim.
    Literal(String),
    /// A file or directory the tool reads; relative to the workspace (first allowed dir).
    InputPath(String),
    /// The job's output directory.
    OutputDir,
    /// An output directory the caller asked for: a new directory directly below the output
    /// root (a bare name, or an absolute path whose parent is the root).
    RequestedOutputDir(String),
}

/// Finds the (single) requested output directory and checks it, creating nothing: one name
/// directly below `output_root`, not in the reserved job-id form, and free right now. Returns
/// the argument's index and that name.
pub fn requested_output_dir(
    output_root: &HeldDir,
    args: &[Arg],
) -> Result<Option<(usize, PathBuf)>, PlanRejected> {
    let mut found: Option<(usize, PathBuf)> = None;
    for (index, arg) in args.iter().enumerate() {
        let Arg::RequestedOutputDir(value) = arg else {
            continue;
        };
        let refused = |reason| PlanRejected::arg(index, value, reason);
        if found.is_some() {
            return Err(refused(RejectReason::SecondOutputDir));
        }
        let name = name_below_root(output_root, value).map_err(refused)?;
        if is_reserved_output_name(name.as_os_str()) {
            return Err(refused(RejectReason::ReservedOutputName));
        }
        check_absent(&output_root.fd, &name).map_err(refused)?;
        found = Some((index, name));
    }
    Ok(found)
}

/// Resolves every argument into its final string.
pub fn resolve_args(
    allowed: &[HeldDir],
    output_dir: &Path,
    args: &[Arg],
) -> Result<Vec<String>, PlanRejected> {
    args.iter()
        .enumerate()
        .map(|(index, arg)| resolve_one(allowed, output_dir, index, arg))
        .collect()
}

fn resolve_one(
    allowed: &[HeldDir],
    output_dir: &Path,
    index: usize,
    arg: &Arg,
) -> Result<String, PlanRejected> {
    let path_string = |path: &Path, value: &str| {
        path.to_str().map(str::to_string).ok_or_else(|| {
            PlanRejected::arg(
                index,
                value,
                RejectReason::NotFound("path is not UTF-8".into()),
            )
        })
    };
    match arg {
        Arg::Literal(value) if value.contains('\0') => {
            Err(PlanRejected::arg(index, value, RejectReason::NulByte))
        }
        Arg::Literal(value) => Ok(value.clone()),
        Arg::InputPath(value) => {
            let path = resolve_input(allowed, value)
                .map_err(|reason| PlanRejected::arg(index, value, reason))?;
            path_string(&path, value)
        }
        Arg::OutputDir | Arg::RequestedOutputDir(_) => path_string(output_dir, ""),
    }
}

/// Quotes an argv for display (logs, the HexStrike `command` field). Never executed.
pub fn shell_quote(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| quote_one(arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_one(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn quoting_table() {
        let cases: &[(&[&str], &str)] = &[
            (&["terrascan", "scan", "-d", "/w"], "terrascan scan -d /w"),
            (&["a b"], "'a b'"),
            (&[""], "''"),
            (&["it's"], r"'it'\''s'"),
            (&["$(rm -rf /)"], "'$(rm -rf /)'"),
            (&["x;y", "`id`"], "'x;y' '`id`'"),
        ];
        for (argv, expected) in cases {
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            assert_eq!(shell_quote(&argv), *expected);
        }
    }

    #[test]
    fn resolution_table() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        let out = tmp.path().join("out");
        fs::create_dir(&ws).unwrap();
        fs::create_dir(&out).unwrap();
        let allowed = [HeldDir::open(&ws).unwrap()];
        let ws = allowed[0].path.clone();
        let output_root = HeldDir::open(&out).unwrap();
        let output_dir = output_root.path.join("job");
        let cases: Vec<(Arg, Result<String, RejectReason>)> = vec![
            (Arg::Literal("scan".into()), Ok("scan".into())),
            (
                Arg::Literal("$(id); rm -rf /".into()),
                Ok("$(id); rm -rf /".into()),
            ),
            (Arg::Literal("a\0b".into()), Err(RejectReason::NulByte)),
            (Arg::InputPath(".".into()), Ok(ws.to_str().unwrap().into())),
            (
                Arg::InputPath("/etc".into()),
                Err(RejectReason::OutsideAllowedDirs),
            ),
            (
                Arg::InputPath("../x".into()),
                Err(RejectReason::ParentComponent),
            ),
            (Arg::OutputDir, Ok(output_dir.to_str().unwrap().into())),
        ];
        for (index, (arg, expected)) in cases.into_iter().enumerate() {
            let got = resolve_args(&allowed, &output_dir, std::slice::from_ref(&arg));
            match expected {
                Ok(value) => assert_eq!(got.unwrap(), vec![value], "{arg:?}"),
                Err(reason) => {
                    let err = got.unwrap_err();
                    assert_eq!(err.reason, reason, "{arg:?}");
                    assert_eq!(err.arg_index, Some(0), "case {index}");
                }
            }
        }
        let requested = |value: &str| {
            [
                Arg::Literal("-o".into()),
                Arg::RequestedOutputDir(value.into()),
            ]
        };
        fs::create_dir(output_root.path.join("other-job")).unwrap();
        let root = output_root.path.to_str().unwrap().to_string();
        let cases: Vec<(String, Result<&str, RejectReason>)> = vec![
            ("mine".into(), Ok("mine")),
            (format!("{root}/mine"), Ok("mine")),
            (root.clone(), Err(RejectReason::OutputRootItself)),
            (".".into(), Err(RejectReason::OutputRootItself)),
            ("sub/dir".into(), Err(RejectReason::NestedOutputDir)),
            (
                format!("{root}/other-job/x"),
                Err(RejectReason::NestedOutputDir),
            ),
            (
                format!("{root}/other-job"),
                Err(RejectReason::OutputDirExists),
            ),
            (
                "0193f5a2-7c1e-7abc-9def-0123456789ab".into(),
                Err(RejectReason::ReservedOutputName),
            ),
            (
                "/tmp/prowler_output".into(),
                Err(RejectReason::OutsideOutputRoot),
            ),
        ];
        for (value, expected) in cases {
            let got = requested_output_dir(&output_root, &requested(&value));
            match expected {
                Ok(name) => assert_eq!(got.unwrap(), Some((1, PathBuf::from(name))), "{value:?}"),
                Err(reason) => {
                    let err = got.unwrap_err();
                    assert_eq!((err.arg_index, err.reason), (Some(1), reason), "{value:?}");
                }
            }
        }
        // Checking creates nothing.
        assert!(!output_root.path.join("mine").exists());
        let two = [
            Arg::RequestedOutputDir("a".into()),
            Arg::RequestedOutputDir("b".into()),
        ];
        let err = requested_output_dir(&output_root, &two).unwrap_err();
        assert_eq!(
            (err.arg_index, err.reason),
            (Some(1), RejectReason::SecondOutputDir)
        );
        assert_eq!(
            requested_output_dir(&output_root, &[Arg::OutputDir]).unwrap(),
            None
        );
    }
}
