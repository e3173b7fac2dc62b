//! Loading plugin files: read, recognise a component, compile (or take from the cache), link,
//! call `describe` and check its answer.
//!
//! Invariant: a plugin that reaches the runtime's table is a component exporting the world of
//! the contract version it names (`toolgate:plugin@0.1.0` or `@0.2.0`, see `contract`), links
//! against nothing but WASI p2, answered `describe` within its deadline, and described itself
//! with a valid name, executable, env var names, JSON params schema and version arguments.
//! Anything else is a `LoadError` naming the failed check. The artefact cache holds compiled
//! components, which carry no contract version of their own: the version is read from the
//! component after it is compiled or taken from the cache, so both paths agree.

use std::path::{Path, PathBuf};

use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::bindings::wit;
use crate::cache::{self, ArtefactCache, Origin};
use crate::calls::{CallTarget, invoke};
use crate::config::RuntimeConfig;
use crate::contract::{self, PluginPre};
use crate::error::LoadError;
use crate::limits::public_template_type;
use crate::log::PluginLog;
use crate::store::CallState;
use crate::types::{ContractVersion, ToolDescription};

/// Largest plugin file accepted: real plugins are hundreds of KB; this bounds compile time and
/// memory spent on a file dropped in the plugin directory by mistake.
pub const MAX_PLUGIN_BYTES: u64 = 64 << 20;
/// Longest tool name (the URL segment); the pattern is `^[a-z0-9][a-z0-9_-]{0,63}$`.
pub const MAX_TOOL_NAME_BYTES: usize = 64;
/// Longest executable name: the usual file-name limit (NAME_MAX).
pub const MAX_EXECUTABLE_BYTES: usize = 255;
/// Longest env var name accepted from a plugin.
pub const MAX_ENV_VAR_BYTES: usize = 255;
/// Most env var names a plugin may ask for: real tools need a handful.
pub const MAX_ENV_VARS: usize = 64;
/// Longest version string: semver with pre-release and build metadata fits easily.
pub const MAX_VERSION_BYTES: usize = 64;
/// Longest summary: one sentence for humans and agents.
pub const MAX_SUMMARY_BYTES: usize = 1024;
/// Largest params JSON Schema: schemas of real tools are a few KB; it is served on every listing.
pub const MAX_PARAMS_SCHEMA_BYTES: usize = 256 << 10;
/// Most version arguments: real tools need one or two (`version`, `--version`, `version
/// --short`); the host runs the operator's binary with them at start-up, so they stay few.
pub const MAX_VERSION_ARGS: usize = 4;
/// Longest version argument: the longest real spelling is a dozen bytes.
pub const MAX_VERSION_ARG_BYTES: usize = 32;

/// What `load_dir` did with each entry of the directory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Tool names loaded, in directory order (sorted by file name).
    pub loaded: Vec<String>,
    /// Entries not loaded, each with the reason.
    pub skipped: Vec<SkippedPlugin>,
    /// Plugins compiled from their bytes during this load.
    pub compiled: usize,
    /// Plugins taken precompiled from the artefact cache during this load.
    pub from_cache: usize,
}

/// A directory entry that did not become a plugin.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedPlugin {
    pub path: PathBuf,
    pub reason: String,
}

/// A loaded plugin: its checked description and a pre-instantiated component to call.
pub(crate) struct LoadedPlugin {
    pub(crate) description: ToolDescription,
    pub(crate) pre: PluginPre,
    pub(crate) log: PluginLog,
    pub(crate) path: PathBuf,
}

/// What loading needs from the runtime.
pub(crate) struct LoadContext<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) linker: &'a Linker<CallState>,
    pub(crate) cache: Option<&'a ArtefactCache>,
    pub(crate) config: &'a RuntimeConfig,
}

/// Loads one plugin file (everything but the duplicate-name check, which needs the table).
/// Refuses `bytes` (the very bytes compiled next) when their file is pinned to another hash.
fn check_pin(config: &RuntimeConfig, path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let Some(expected) = path
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| config.pinned_sha256.get(name))
    else {
        return Ok(());
    };
    let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    if actual == *expected {
        return Ok(());
    }
    Err(LoadError::PinMismatch {
        path: path.to_owned(),
        expected: expected.clone(),
        actual,
    })
}

pub(crate) fn load_plugin(
    context: &LoadContext<'_>,
    path: &Path,
) -> Result<(LoadedPlugin, Origin), LoadError> {
    let bytes = read_component_bytes(path)?;
    check_pin(context.config, path, &bytes)?;
    let compiled = match context.cache {
        Some(cache) => cache.component(context.engine, &bytes),
        None => cache::compile(context.engine, &bytes),
    };
    let (component, origin) = compiled.map_err(|e| LoadError::Compile {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    })?;
    let instance_pre =
        context
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Imports {
                path: path.to_owned(),
                reason: format!("{e:#}"),
            })?;
    let exports_error = |mismatch: contract::ContractMismatch| LoadError::Exports {
        path: path.to_owned(),
        reason: mismatch.to_string(),
    };
    let version = contract::detect(context.engine, &component).map_err(exports_error)?;
    let pre = PluginPre::new(version, instance_pre).map_err(exports_error)?;

    let log = PluginLog::new(context.config.log_capacity_bytes);
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let target = CallTarget {
        name: &file_name,
        pre: &pre,
        log: &log,
    };
    let described = invoke(
        context.engine,
        context.config,
        &target,
        "describe",
        context.config.describe_timeout_ms,
        |plugin, store| plugin.call_describe(store),
    )
    .map_err(|source| LoadError::Describe {
        path: path.to_owned(),
        source,
    })?;
    let description = checked_description(path, pre.version(), described)?;
    Ok((
        LoadedPlugin {
            description,
            pre,
            log,
            path: path.to_owned(),
        },
        origin,
    ))
}

/// Reads a plugin file, refusing what is too large, not wasm, or a core module.
fn read_component_bytes(path: &Path) -> Result<Vec<u8>, LoadError> {
    let read_error = |source| LoadError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_PLUGIN_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size,
            max: MAX_PLUGIN_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    match WasmKind::of(&bytes) {
        WasmKind::Component => Ok(bytes),
        WasmKind::CoreModule => Err(LoadError::NotAComponent {
            path: path.to_owned(),
        }),
        WasmKind::NotWasm => Err(LoadError::NotWasm {
            path: path.to_owned(),
        }),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum WasmKind {
    NotWasm,
    CoreModule,
    Component,
}

impl WasmKind {
    /// Reads the 8-byte preamble: magic, then a 16-bit version and a 16-bit layer (0 = core
    /// module, 1 = component).
    fn of(bytes: &[u8]) -> WasmKind {
        match bytes {
            [0, b'a', b's', b'm', _, _, 1, 0, ..] => WasmKind::Component,
            [0, b'a', b's', b'm', _, _, 0, 0, ..] => WasmKind::CoreModule,
            _ => WasmKind::NotWasm,
        }
    }
}

/// Checks `describe`'s answer and converts it to the public type.
fn checked_description(
    path: &Path,
    contract: ContractVersion,
    described: wit::ToolDescription,
) -> Result<ToolDescription, LoadError> {
    if !is_valid_tool_name(&described.name) {
        return Err(LoadError::InvalidName {
            path: path.to_owned(),
            name: truncated(&described.name),
        });
    }
    let tool = described.name.clone();
    let too_long = |field: &'static str, len: usize, max: usize| LoadError::FieldTooLong {
        path: path.to_owned(),
        tool: tool.clone(),
        field,
        len,
        max,
    };
    for (field, len, max) in [
        ("version", described.version.len(), MAX_VERSION_BYTES),
        ("summary", described.summary.len(), MAX_SUMMARY_BYTES),
        (
            "params-schema",
            described.params_schema.len(),
            MAX_PARAMS_SCHEMA_BYTES,
        ),
        ("env-vars", described.env_vars.len(), MAX_ENV_VARS),
        (
            "version-args",
            described.version_args.len(),
            MAX_VERSION_ARGS,
        ),
    ] {
        if len > max {
            return Err(too_long(field, len, max));
        }
    }
    if !is_plain_file_name(&described.executable) {
        return Err(LoadError::InvalidExecutable {
            path: path.to_owned(),
            tool,
            executable: truncated(&described.executable),
        });
    }
    if let Some(bad) = described.env_vars.iter().find(|v| !is_env_var_name(v)) {
        return Err(LoadError::InvalidEnvVar {
            path: path.to_owned(),
            tool,
            name: truncated(bad),
        });
    }
    if let Some(bad) = described
        .version_args
        .iter()
        .find(|arg| !is_version_arg(arg))
    {
        return Err(LoadError::InvalidVersionArg {
            path: path.to_owned(),
            tool,
            arg: truncated(bad),
        });
    }
    // A type listed twice says nothing more; keep the first, in the plugin's order.
    let mut scan_template_types = Vec::new();
    for template_type in described.scan_template_types {
        let template_type = public_template_type(template_type);
        if !scan_template_types.contains(&template_type) {
            scan_template_types.push(template_type);
        }
    }
    let params_schema = serde_json::from_str(&described.params_schema).map_err(|e| {
        LoadError::InvalidParamsSchema {
            path: path.to_owned(),
            tool: tool.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok(ToolDescription {
        name: described.name,
        version: described.version,
        summary: described.summary,
        executable: described.executable,
        default_timeout_secs: described.default_timeout_secs,
        needs_network: described.needs_network,
        env_vars: described.env_vars,
        params_schema,
        contract,
        scan_template_types,
        version_args: described.version_args,
    })
}

/// A version argument: a word or flag of `[A-Za-z0-9_-]`, 1..=`MAX_VERSION_ARG_BYTES` bytes
/// (`version`, `--version`, `-V`). No `/`, `.`, `=` or space: a version query never needs a
/// path or a value, so a plugin cannot make the start-up probe read a file or set an option.
fn is_version_arg(arg: &str) -> bool {
    !arg.is_empty()
        && arg.len() <= MAX_VERSION_ARG_BYTES
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `^[a-z0-9][a-z0-9_-]{0,63}$`
fn is_valid_tool_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && name.len() <= MAX_TOOL_NAME_BYTES
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A file name without any directory part: `[A-Za-z0-9._+-]`, not `.` or `..`.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EXECUTABLE_BYTES
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
}

/// A portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok
        && name.len() <= MAX_ENV_VAR_BYTES
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A plugin-supplied value for an error message: at most 80 characters.
fn truncated(value: &str) -> String {
    const SHOWN_CHARS: usize = 80;
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TemplateType;

    #[test]
    fn tool_name_table() {
        let cases = [
            ("terrascan", true),
            ("a", true),
            ("0day", true),
            ("tool_x-2", true),
            (&*"a".repeat(64), true),
            (&*"a".repeat(65), false),
            ("", false),
            ("-x", false),
            ("_x", false),
            ("Terrascan", false),
            ("a/b", false),
            ("a b", false),
            ("a.b", false),
            ("tërrascan", false),
        ];
        for (name, allowed) in cases {
            assert_eq!(is_valid_tool_name(name), allowed, "{name:?}");
        }
    }

    #[test]
    fn executable_table() {
        let cases = [
            ("terrascan", true),
            ("python3.12", true),
            ("g++", true),
            ("my-tool_2", true),
            ("", false),
            (".", false),
            ("..", false),
            ("/bin/sh", false),
            ("bin/sh", false),
            ("../sh", false),
            ("sh -c", false),
            ("a\0b", false),
            ("$(id)", false),
            (&*"a".repeat(256), false),
        ];
        for (name, allowed) in cases {
            assert_eq!(is_plain_file_name(name), allowed, "{name:?}");
        }
    }

    #[test]
    fn env_var_table() {
        let cases = [
            ("AWS_PROFILE", true),
            ("_X", true),
            ("path", true),
            ("", false),
            ("1X", false),
            ("A=B", false),
            ("A-B", false),
            ("LD_PRELOAD ", false),
        ];
        for (name, allowed) in cases {
            assert_eq!(is_env_var_name(name), allowed, "{name:?}");
        }
    }

    #[test]
    fn wasm_kind_table() {
        let cases: &[(&[u8], WasmKind)] = &[
            (b"\0asm\x01\0\0\0", WasmKind::CoreModule),
            (b"\0asm\x0d\0\x01\0rest", WasmKind::Component),
            (b"\0asm", WasmKind::NotWasm),
            (b"#!/bin/sh\n", WasmKind::NotWasm),
            (b"", WasmKind::NotWasm),
        ];
        for (bytes, kind) in cases {
            assert_eq!(&WasmKind::of(bytes), kind, "{bytes:?}");
        }
    }

    fn description() -> wit::ToolDescription {
        wit::ToolDescription {
            name: "terrascan".into(),
            version: "1.0.0".into(),
            summary: "Scans IaC.".into(),
            executable: "terrascan".into(),
            default_timeout_secs: 300,
            needs_network: false,
            env_vars: vec!["AWS_PROFILE".into()],
            params_schema: r#"{"type":"object"}"#.into(),
            scan_template_types: vec![wit::TemplateType::Tf, wit::TemplateType::K8s],
            version_args: vec!["version".into()],
        }
    }

    #[test]
    fn description_check_table() {
        type Edit = fn(&mut wit::ToolDescription);
        let cases: &[(&str, Edit, &str)] = &[
            ("valid", |_| {}, ""),
            (
                "bad name",
                |d| d.name = "Bad Name".into(),
                "invalid tool name",
            ),
            (
                "schema not json",
                |d| d.params_schema = "{".into(),
                "not valid JSON",
            ),
            (
                "executable path",
                |d| d.executable = "/bin/sh".into(),
                "not a plain file name",
            ),
            (
                "env var with =",
                |d| d.env_vars = vec!["A=B".into()],
                "not a portable",
            ),
            (
                "long summary",
                |d| d.summary = "s".repeat(2000),
                "summary is 2000 bytes",
            ),
            (
                "many env vars",
                |d| d.env_vars = vec!["A".into(); 65],
                "env-vars is 65",
            ),
            ("no version args", |d| d.version_args = Vec::new(), ""),
            (
                "--version",
                |d| d.version_args = vec!["--version".into()],
                "",
            ),
            (
                "version --short",
                |d| d.version_args = vec!["version".into(), "--short".into()],
                "",
            ),
            (
                "many version args",
                |d| d.version_args = vec!["-v".into(); 5],
                "version-args is 5",
            ),
            (
                "version arg with a path",
                |d| d.version_args = vec!["--config-file".into(), "/etc/x".into()],
                "version argument \"/etc/x\"",
            ),
            (
                "version arg with a value",
                |d| d.version_args = vec!["--external-checks-dir=x".into()],
                "version argument",
            ),
            (
                "version arg with a space",
                |d| d.version_args = vec!["--version; id".into()],
                "version argument \"--version; id\"",
            ),
            (
                "empty version arg",
                |d| d.version_args = vec![String::new()],
                "version argument \"\"",
            ),
            (
                "version arg with a NUL",
                |d| d.version_args = vec!["-v\0".into()],
                "version argument",
            ),
            (
                "long version arg",
                |d| d.version_args = vec!["v".repeat(33)],
                "version argument",
            ),
            (
                "template type twice",
                |d| d.scan_template_types = vec![wit::TemplateType::K8s; 3],
                "",
            ),
        ];
        for (name, edit, expected) in cases {
            let mut described = description();
            edit(&mut described);
            let template_types = described.scan_template_types.len();
            match checked_description(Path::new("p.wasm"), ContractVersion::V0_2_0, described) {
                Ok(checked) => {
                    assert_eq!(*expected, "", "{name}: accepted");
                    assert_eq!(checked.params_schema, serde_json::json!({"type": "object"}));
                    assert_eq!(checked.contract, ContractVersion::V0_2_0);
                    // Duplicates collapse; distinct types keep the plugin's order.
                    let expected_types = match template_types {
                        3 => vec![TemplateType::K8s],
                        _ => vec![TemplateType::Tf, TemplateType::K8s],
                    };
                    assert_eq!(checked.scan_template_types, expected_types, "{name}");
                }
                Err(error) => {
                    assert!(!expected.is_empty(), "{name}: refused: {error}");
                    assert!(error.to_string().contains(expected), "{name}: {error}");
                }
            }
        }
    }

    #[test]
    fn truncated_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(truncated("abc"), "abc");
        assert_eq!(
            truncated(&"é".repeat(100)),
            format!("{}...", "é".repeat(80))
        );
    }
}
