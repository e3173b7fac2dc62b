//! Shared helpers for the runtime's integration tests: where the built plugins are and a runtime
//! with the hostile plugin loaded.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use toolgate_plugin_runtime::{PlanContext, PluginRuntime, RuntimeConfig};

/// `target/test-plugins/<file>`; fails the test (never skips it) when the file was not built.
pub fn test_plugin(file: &str) -> PathBuf {
    built_file("test-plugins", file, "just build-test-plugins")
}

/// `target/plugins/<file>`; fails the test when the file was not built.
pub fn real_plugin(file: &str) -> PathBuf {
    built_file("plugins", file, "just build-plugins")
}

fn built_file(dir: &str, file: &str, recipe: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(dir)
        .join(file);
    assert!(
        path.is_file(),
        "{} is missing: run `{recipe}` in the repository root first",
        path.display()
    );
    path
}

/// A real-size fixture from the repository's `tests/fixtures/` (provenance in its README).
pub fn fixture(relative: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(relative);
    assert!(path.is_file(), "fixture {} is missing", path.display());
    path
}

/// Deadline of the quick config: short enough for the looping tests, and still thousands of
/// times what a well-behaved call needs on a loaded machine.
pub const QUICK_TIMEOUT_MS: u64 = 1_000;

/// Short deadlines and a small memory cap keep the hostile tests quick.
pub fn quick_config() -> RuntimeConfig {
    RuntimeConfig {
        memory_limit_bytes: 64 << 20,
        describe_timeout_ms: QUICK_TIMEOUT_MS,
        plan_timeout_ms: QUICK_TIMEOUT_MS,
        parse_timeout_ms: QUICK_TIMEOUT_MS,
        ..RuntimeConfig::default()
    }
}

/// For tests where only a limit other than time may stop the call: deadlines far beyond what the
/// call needs, so a busy machine cannot turn the expected failure into a deadline.
pub fn patient_config() -> RuntimeConfig {
    RuntimeConfig {
        plan_timeout_ms: 120_000,
        parse_timeout_ms: 120_000,
        ..quick_config()
    }
}

pub fn runtime_with_hostile(config: RuntimeConfig) -> PluginRuntime {
    let mut runtime = PluginRuntime::new(config, None).unwrap();
    let tool = runtime.load_file(&test_plugin("hostile.wasm")).unwrap();
    assert_eq!(tool, "hostile");
    runtime
}

pub fn plan_context() -> PlanContext {
    PlanContext {
        output_dir: "/var/lib/toolgate/jobs/1/out".into(),
        workspace: "/srv/workspace".into(),
        output_root: "/var/lib/toolgate/outputs".into(),
    }
}

/// Asserts the hostile plugin still answers normally on the same runtime.
pub fn assert_ok_plan(runtime: &PluginRuntime) {
    let plan = runtime
        .plan("hostile", r#"{"mode":"ok"}"#, &plan_context())
        .expect("the ok call after a failure must succeed")
        .expect("ok mode returns a plan");
    assert_eq!(plan.args.len(), 3);
}
