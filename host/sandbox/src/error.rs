//! Errors of the sandbox. Every variant names the step that failed, so an operator (or an
//! auditor reading a log line) knows exactly which guarantee could not be established.
//!
//! Two types: `SandboxError` (the daemon's fault or the machine's: maps to "tool unavailable"
//! or a server error) and `PlanRejected` (the caller's input was refused: maps to a 400).

use std::io;
use std::path::PathBuf;

use crate::child::ChildStep;

/// Longest excerpt of a refused value quoted back in an error message.
pub const MAX_QUOTED_VALUE_CHARS: usize = 120;

/// Quotes a value for an error message, cut to `MAX_QUOTED_VALUE_CHARS` characters.
pub fn truncate_value(value: &str) -> String {
    let mut out: String = value.chars().take(MAX_QUOTED_VALUE_CHARS).collect();
    if value.chars().count() > MAX_QUOTED_VALUE_CHARS {
        out.push('…');
    }
    out.replace('\0', "\\0")
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("policy field `{field}` = {value:?} is invalid: {reason}")]
    Policy {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("hardening `{what}` is required by the policy but unavailable: {detail}")]
    HardeningUnavailable { what: &'static str, detail: String },
    #[error("tool binary {name:?} is unavailable: {reason}")]
    BinaryUnavailable { name: String, reason: String },
    #[error("creating directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("opening allowed directory {path}: {source}")]
    OpenDir { path: PathBuf, source: io::Error },
    #[error("environment variable {name:?} refused: {reason}")]
    Env { name: String, reason: String },
    #[error("building the Landlock ruleset: {0}")]
    Landlock(String),
    #[error("cgroup step `{step}` on {path}: {source}")]
    Cgroup {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("setting PR_SET_CHILD_SUBREAPER on the daemon: {0}")]
    Subreaper(io::Error),
    #[error("making the daemon non-dumpable (PR_SET_DUMPABLE 0): {0}")]
    Dumpable(io::Error),
    #[error("reading /proc/sys/kernel/cap_last_cap: {0}")]
    LastCapability(io::Error),
    #[error("starting a spawner thread: {0}")]
    SpawnerThread(io::Error),
    #[error("emptying a spawner thread's capability bounding set (PR_CAPBSET_DROP): {0}")]
    BoundingSet(io::Error),
    #[error("the spawner threads are gone")]
    SpawnerGone,
    #[error("creating a pipe for `{what}`: {source}")]
    Pipe {
        what: &'static str,
        source: io::Error,
    },
    #[error("child setup failed at step `{step}`: {source}")]
    ChildSetup { step: ChildStep, source: io::Error },
    #[error("spawning the tool: {0}")]
    Spawn(io::Error),
    #[error("opening a pidfd for pid {pid}: {source}")]
    Pidfd { pid: i32, source: io::Error },
    #[error("waiting for pid {pid}: {source}")]
    Wait { pid: i32, source: io::Error },
    #[error(
        "job {job_id:?} was never given its directories: call Sandbox::provide_dirs once it is admitted"
    )]
    DirsNotProvided { job_id: String },
}

/// Why an argument or a job id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    #[error("contains a NUL byte")]
    NulByte,
    #[error("is empty")]
    Empty,
    #[error("contains a `..` component")]
    ParentComponent,
    #[error("does not exist or cannot be opened ({0})")]
    NotFound(String),
    #[error("resolves outside the allowed directories")]
    OutsideAllowedDirs,
    #[error(
        "escapes its directory through a symlink or `..` (checked with openat2 RESOLVE_BENEATH)"
    )]
    EscapesBeneath,
    #[error("is outside the output root")]
    OutsideOutputRoot,
    #[error("names the output root itself; give the name of a new directory below it")]
    OutputRootItself,
    #[error(
        "is a nested path; an output directory is one new directory directly below the output root"
    )]
    NestedOutputDir,
    #[error("is reserved: names in the job-id (UUID) form belong to the jobs' own directories")]
    ReservedOutputName,
    #[error(
        "already exists (it may be another job's); an output directory must be a new name below the output root"
    )]
    OutputDirExists,
    #[error("only one requested output directory is allowed per job")]
    SecondOutputDir,
    #[error("job id must be 1-64 characters of [A-Za-z0-9_.-], not `.` or `..`")]
    BadJobId,
    #[error("internal error preparing job directories: {0}")]
    Internal(String),
}

/// A plan refused before anything ran. `arg_index` is `None` for job-level refusals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*.arg_index, .value, .reason))]
pub struct PlanRejected {
    pub arg_index: Option<usize>,
    /// The refused value, truncated to `MAX_QUOTED_VALUE_CHARS`.
    pub value: String,
    pub reason: RejectReason,
}

impl PlanRejected {
    pub fn arg(index: usize, value: &str, reason: RejectReason) -> Self {
        Self {
            arg_index: Some(index),
            value: truncate_value(value),
            reason,
        }
    }

    pub fn job(value: &str, reason: RejectReason) -> Self {
        Self {
            arg_index: None,
            value: truncate_value(value),
            reason,
        }
    }

    /// True when the refusal is the daemon's fault (I/O on its own directories), not the caller's.
    pub fn is_internal(&self) -> bool {
        matches!(self.reason, RejectReason::Internal(_))
    }
}

fn describe(arg_index: Option<usize>, value: &str, reason: &RejectReason) -> String {
    match arg_index {
        Some(i) => format!("argument {i} ({value:?}) {reason}"),
        None => format!("job {value:?}: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_table() {
        let long = "x".repeat(500);
        let cases: &[(&str, usize, bool)] = &[
            ("short", 5, false),
            (&long, MAX_QUOTED_VALUE_CHARS + 1, true),
            ("a\0b", 4, false),
        ];
        for (input, chars, ellipsis) in cases {
            let out = truncate_value(input);
            assert_eq!(out.chars().count(), *chars, "{input:?}");
            assert_eq!(out.ends_with('…'), *ellipsis, "{input:?}");
            assert!(!out.contains('\0'));
        }
    }

    #[test]
    fn rejection_names_index_value_and_reason() {
        let msg = PlanRejected::arg(3, "../etc", RejectReason::ParentComponent).to_string();
        assert!(
            msg.contains('3') && msg.contains("../etc") && msg.contains(".."),
            "{msg}"
        );
        assert!(!PlanRejected::job("x", RejectReason::BadJobId).is_internal());
        assert!(PlanRejected::job("x", RejectReason::Internal("io".into())).is_internal());
    }
}
