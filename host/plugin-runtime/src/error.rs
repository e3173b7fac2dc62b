//! Errors of building the runtime and of loading one plugin. Call failures live in `types`
//! (`CallError`) because the daemon reports them to HTTP callers.
//!
//! Invariant: every `LoadError` variant names the check that failed and the offending value
//! (truncated), so an operator reading the warning knows what to fix.

use std::path::PathBuf;

use crate::types::CallError;

/// The runtime itself could not be built; nothing was loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid runtime config: `{field}` = {value}; allowed: {allowed}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        allowed: String,
    },
    #[error("cannot build the wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot link WASI into the plugin linker: {0}")]
    Linker(String),
    #[error("cannot create the plugin cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(std::io::Error),
}

/// One plugin file was refused; the others still load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes; a plugin may have at most {max} bytes")]
    TooLarge { path: PathBuf, size: u64, max: u64 },
    #[error("{path} is not a WebAssembly file (no `\\0asm` header)")]
    NotWasm { path: PathBuf },
    #[error("{path} is a core WebAssembly module, not a component; build it for wasm32-wasip2")]
    NotAComponent { path: PathBuf },
    #[error(
        "{path} has SHA-256 {actual}, not the {expected} pinned in plugins.pinned_sha256; refused"
    )]
    PinMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{path} does not compile as a component: {reason}")]
    Compile { path: PathBuf, reason: String },
    #[error(
        "{path} imports something the host does not provide (only WASI p2 is linked): {reason}"
    )]
    Imports { path: PathBuf, reason: String },
    #[error("{path} is not a toolgate plugin component: {reason}")]
    Exports { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Describe { path: PathBuf, source: CallError },
    #[error("{path}: invalid tool name {name:?}; allowed: ^[a-z0-9][a-z0-9_-]{{0,63}}$")]
    InvalidName { path: PathBuf, name: String },
    #[error("{path}: tool `{tool}`: params-schema is not valid JSON: {reason}")]
    InvalidParamsSchema {
        path: PathBuf,
        tool: String,
        reason: String,
    },
    #[error(
        "{path}: tool `{tool}`: executable {executable:?} is not a plain file name ([A-Za-z0-9._+-], not `.` or `..`, at most 255 bytes)"
    )]
    InvalidExecutable {
        path: PathBuf,
        tool: String,
        executable: String,
    },
    #[error(
        "{path}: tool `{tool}`: env var {name:?} is not a portable variable name ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes)"
    )]
    InvalidEnvVar {
        path: PathBuf,
        tool: String,
        name: String,
    },
    #[error(
        "{path}: tool `{tool}`: version argument {arg:?} is not a plain word or flag (ASCII letters, digits, '-' and '_', 1 to 32 bytes)"
    )]
    InvalidVersionArg {
        path: PathBuf,
        tool: String,
        arg: String,
    },
    #[error("{path}: tool `{tool}`: {field} is {len} bytes; at most {max} allowed")]
    FieldTooLong {
        path: PathBuf,
        tool: String,
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{path}: tool `{tool}` is already provided by {existing}")]
    DuplicateTool {
        path: PathBuf,
        tool: String,
        existing: PathBuf,
    },
}
