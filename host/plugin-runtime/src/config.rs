//! Runtime limits: what one plugin call may cost the host, with sane defaults and validation.
//!
//! Invariant: a `RuntimeConfig` that passed [`RuntimeConfig::validate`] describes limits the engine,
//! the pooling allocator and every store can enforce; every field has a default, so an operator
//! only writes the ones they change and a typo is an error (`deny_unknown_fields`).

use serde::Deserialize;

use crate::error::RuntimeError;

/// Default linear-memory cap per call: a prowler scan hands `parse` ~19 MB of OCSF JSON which the
/// guest copies and deserializes into typed structs, several times its size at peak.
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 512 << 20;
/// Default `describe` deadline: it returns constants, so anything slower is a broken plugin.
pub const DEFAULT_DESCRIBE_TIMEOUT_MS: u64 = 1_000;
/// Default `plan` deadline: validating a small JSON object takes microseconds; one second is
/// generous yet keeps a looping plugin from holding an HTTP request.
pub const DEFAULT_PLAN_TIMEOUT_MS: u64 = 1_000;
/// Default `parse` deadline: large scan reports (tens of MB of JSON) take a while to deserialize.
pub const DEFAULT_PARSE_TIMEOUT_MS: u64 = 30_000;
/// Default number of plugin instances alive at once (pool slots): one per concurrent call, and the
/// daemon runs few calls at once on small machines.
pub const DEFAULT_MAX_INSTANCES: u32 = 16;
/// Default plugin stdout/stderr kept per plugin: enough for a panic message and some context.
pub const DEFAULT_LOG_CAPACITY_BYTES: usize = 64 << 10;

/// Smallest memory cap accepted: a Rust std guest needs a few MiB to start at all.
pub const MIN_MEMORY_LIMIT_BYTES: u64 = 4 << 20;
/// Largest memory cap accepted: a 32-bit linear memory cannot exceed 4 GiB.
pub const MAX_MEMORY_LIMIT_BYTES: u64 = 4 << 30;
/// Longest deadline accepted for any call: beyond ten minutes a call is stuck, not slow.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Most pool slots accepted: each slot reserves virtual address space for its memories.
pub const MAX_INSTANCES_LIMIT: u32 = 1_024;
/// Largest per-plugin log accepted: the log is held in memory for every plugin.
pub const MAX_LOG_CAPACITY_BYTES: usize = 16 << 20;

/// Limits applied to every plugin call. Deserialized from the daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Linear-memory cap of one plugin instance, in bytes; growing past it traps the call.
    pub memory_limit_bytes: u64,
    /// Deadline of `describe`, called once when a plugin loads, in milliseconds.
    pub describe_timeout_ms: u64,
    /// Deadline of `plan`, in milliseconds (includes instantiation).
    pub plan_timeout_ms: u64,
    /// Deadline of `parse`, in milliseconds (includes instantiation).
    pub parse_timeout_ms: u64,
    /// Optional instruction budget per call (deterministic, costs ~2x the speed of epochs alone);
    /// `None` disables fuel metering and relies on the deadlines.
    pub fuel: Option<u64>,
    /// Plugin instances alive at once across all plugins; a call beyond it fails cleanly.
    pub max_instances: u32,
    /// Bytes of stdout/stderr kept per plugin (the most recent ones) for `plugin_log`.
    pub log_capacity_bytes: usize,
    /// Plugins pinned by content (issue #16): file name in the plugin directory (e.g.
    /// `terrascan.wasm`) -> SHA-256 of the component, 64 lowercase hex characters. A pinned file
    /// whose bytes hash otherwise is refused at load (and at every reload).
    pub pinned_sha256: std::collections::BTreeMap<String, String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            describe_timeout_ms: DEFAULT_DESCRIBE_TIMEOUT_MS,
            plan_timeout_ms: DEFAULT_PLAN_TIMEOUT_MS,
            parse_timeout_ms: DEFAULT_PARSE_TIMEOUT_MS,
            fuel: None,
            max_instances: DEFAULT_MAX_INSTANCES,
            log_capacity_bytes: DEFAULT_LOG_CAPACITY_BYTES,
            pinned_sha256: std::collections::BTreeMap::new(),
        }
    }
}

impl RuntimeConfig {
    /// Checks every field against its allowed range, naming the first bad field.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }

    /// Every field out of its allowed range, in declaration order (for reporting them all).
    pub fn problems(&self) -> Vec<RuntimeError> {
        let mut problems = Vec::new();
        let mut check = |field: &'static str, value: String, ok: bool, allowed: String| {
            if !ok {
                problems.push(RuntimeError::InvalidConfig {
                    field,
                    value,
                    allowed,
                });
            }
        };
        check(
            "memory_limit_bytes",
            self.memory_limit_bytes.to_string(),
            (MIN_MEMORY_LIMIT_BYTES..=MAX_MEMORY_LIMIT_BYTES).contains(&self.memory_limit_bytes),
            format!("{MIN_MEMORY_LIMIT_BYTES}..={MAX_MEMORY_LIMIT_BYTES}"),
        );
        for (field, value) in [
            ("describe_timeout_ms", self.describe_timeout_ms),
            ("plan_timeout_ms", self.plan_timeout_ms),
            ("parse_timeout_ms", self.parse_timeout_ms),
        ] {
            check(
                field,
                value.to_string(),
                (1..=MAX_TIMEOUT_MS).contains(&value),
                format!("1..={MAX_TIMEOUT_MS}"),
            );
        }
        if let Some(fuel) = self.fuel {
            check(
                "fuel",
                fuel.to_string(),
                fuel > 0,
                "a positive budget or null".into(),
            );
        }
        check(
            "max_instances",
            self.max_instances.to_string(),
            (1..=MAX_INSTANCES_LIMIT).contains(&self.max_instances),
            format!("1..={MAX_INSTANCES_LIMIT}"),
        );
        check(
            "log_capacity_bytes",
            self.log_capacity_bytes.to_string(),
            self.log_capacity_bytes <= MAX_LOG_CAPACITY_BYTES,
            format!("0..={MAX_LOG_CAPACITY_BYTES}"),
        );
        for (file, hash) in &self.pinned_sha256 {
            check(
                "pinned_sha256",
                format!("{file:?} = {hash:?}"),
                file.ends_with(".wasm")
                    && !file.contains('/')
                    && hash.len() == 64
                    && hash
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "\"<file>.wasm\" = \"<64 lowercase hex: sha256sum of the file>\"".into(),
            );
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RuntimeConfig::default().validate().unwrap();
    }

    #[test]
    fn every_bad_field_is_a_problem() {
        let config = RuntimeConfig {
            plan_timeout_ms: 0,
            max_instances: 0,
            fuel: Some(0),
            ..RuntimeConfig::default()
        };
        let fields: Vec<&str> = config
            .problems()
            .iter()
            .filter_map(|problem| match problem {
                RuntimeError::InvalidConfig { field, .. } => Some(*field),
                _ => None,
            })
            .collect();
        assert_eq!(fields, ["plan_timeout_ms", "fuel", "max_instances"]);
    }

    #[test]
    fn validation_table() {
        type Edit = fn(&mut RuntimeConfig);
        let cases: &[(&str, Edit, Option<&str>)] = &[
            (
                "tiny memory",
                |c| c.memory_limit_bytes = 1 << 20,
                Some("memory_limit_bytes"),
            ),
            (
                "5 GiB memory",
                |c| c.memory_limit_bytes = 5 << 30,
                Some("memory_limit_bytes"),
            ),
            ("4 GiB memory", |c| c.memory_limit_bytes = 4 << 30, None),
            (
                "zero plan timeout",
                |c| c.plan_timeout_ms = 0,
                Some("plan_timeout_ms"),
            ),
            (
                "hour parse timeout",
                |c| c.parse_timeout_ms = 3_600_000,
                Some("parse_timeout_ms"),
            ),
            (
                "zero describe timeout",
                |c| c.describe_timeout_ms = 0,
                Some("describe_timeout_ms"),
            ),
            ("zero fuel", |c| c.fuel = Some(0), Some("fuel")),
            ("some fuel", |c| c.fuel = Some(1_000_000), None),
            (
                "no instances",
                |c| c.max_instances = 0,
                Some("max_instances"),
            ),
            (
                "too many instances",
                |c| c.max_instances = 5_000,
                Some("max_instances"),
            ),
            ("no log", |c| c.log_capacity_bytes = 0, None),
            (
                "huge log",
                |c| c.log_capacity_bytes = 1 << 30,
                Some("log_capacity_bytes"),
            ),
        ];
        for (name, edit, denied_field) in cases {
            let mut config = RuntimeConfig::default();
            edit(&mut config);
            match (config.validate(), denied_field) {
                (Ok(()), None) => {}
                (Err(RuntimeError::InvalidConfig { field, .. }), Some(expected)) => {
                    assert_eq!(field, *expected, "{name}")
                }
                (other, _) => panic!("{name}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn deserialization_fills_defaults_and_denies_unknown_fields() {
        let partial: RuntimeConfig = serde_json::from_str(r#"{"plan_timeout_ms": 250}"#).unwrap();
        assert_eq!(partial.plan_timeout_ms, 250);
        assert_eq!(partial.memory_limit_bytes, DEFAULT_MEMORY_LIMIT_BYTES);
        let typo = serde_json::from_str::<RuntimeConfig>(r#"{"plan_timeout": 250}"#);
        assert!(typo.unwrap_err().to_string().contains("unknown field"));
    }
}
