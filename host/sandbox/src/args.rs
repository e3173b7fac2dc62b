//! Typed arguments and their resolution into the argv a tool receives.
//!
//! Invariants: every argument is checked before anything runs; a literal never contains NUL;
//! an input path is inside an allowed directory (see `paths.rs`); output arguments all name
//! the job's single output directory. There is no shell anywhere: argv goes to execve as is,
//! and `shell_quote` exists only to display a command.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PlanRejected, RejectReason};
use crate::paths::{HeldDir, ensure_dir_beneath, resolve_input};

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
    /// An output directory the caller asked for; must lie inside the output root.
    RequestedOutputDir(String),
}

/// Finds the (single) requested output directory, creating it under `output_root`.
pub fn requested_output_dir(
    output_root: &HeldDir,
    args: &[Arg],
) -> Result<Option<PathBuf>, PlanRejected> {
    let mut found: Option<PathBuf> = None;
    for (index, arg) in args.iter().enumerate() {
        let Arg::RequestedOutputDir(value) = arg else {
            continue;
        };
        if found.is_some() {
            return Err(PlanRejected::arg(
                index,
                value,
                RejectReason::SecondOutputDir,
            ));
        }
        let dir = ensure_dir_beneath(output_root, value)
            .map_err(|reason| PlanRejected::arg(index, value, reason))?;
        found = Some(dir);
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
        let two = [
            Arg::RequestedOutputDir("a".into()),
            Arg::RequestedOutputDir("b".into()),
        ];
        let err = requested_output_dir(&output_root, &two).unwrap_err();
        assert_eq!(
            (err.arg_index, err.reason),
            (Some(1), RejectReason::SecondOutputDir)
        );
        let one = [
            Arg::Literal("-o".into()),
            Arg::RequestedOutputDir("sub/dir".into()),
        ];
        assert_eq!(
            requested_output_dir(&output_root, &one).unwrap(),
            Some(output_root.path.join("sub/dir"))
        );
        let outside = [Arg::RequestedOutputDir("/tmp/prowler_output".into())];
        let err = requested_output_dir(&output_root, &outside).unwrap_err();
        assert_eq!(err.reason, RejectReason::OutsideOutputRoot);
    }
}
