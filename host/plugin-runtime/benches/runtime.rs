//! Runtime benchmarks: plan() and parse() through a fresh pooled instance, and loading the
//! plugins cold (compile) versus from the precompiled cache.
//!
//! Uses the real plugins from `target/plugins/` (`just build-plugins`); when they are missing it
//! benchmarks the hostile test plugin's "ok" mode instead and says so on stderr.

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use toolgate_plugin_runtime::{Outcome, PlanContext, PluginRuntime, RuntimeConfig};

/// What HexStrike's MCP client sends for a terrascan scan: every field, empty strings included.
const HEXSTRIKE_TERRASCAN_BODY: &str = r#"{"scan_type":"all","iac_dir":".","policy_type":"","output_format":"json","severity":"","additional_args":""}"#;

fn target_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target")
        .join(sub)
}

/// The plugin directory, tool and params to benchmark, preferring the real terrascan plugin.
fn subject() -> (PathBuf, &'static str, &'static str) {
    let real = target_dir("plugins");
    if real.join("terrascan.wasm").is_file() && real.join("prowler.wasm").is_file() {
        return (real, "terrascan", HEXSTRIKE_TERRASCAN_BODY);
    }
    eprintln!(
        "target/plugins/{{terrascan,prowler}}.wasm missing (run `just build-plugins`): \
         benchmarking the hostile plugin's \"ok\" mode instead"
    );
    let hostile = target_dir("test-plugins");
    assert!(
        hostile.join("hostile.wasm").is_file(),
        "run `just build-test-plugins` first"
    );
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::copy(hostile.join("hostile.wasm"), dir.join("hostile.wasm")).unwrap();
    (dir, "hostile", r#"{"mode":"ok"}"#)
}

fn context() -> PlanContext {
    PlanContext {
        output_dir: "/var/lib/toolgate/jobs/1/out".into(),
        workspace: "/srv/workspace".into(),
        output_root: "/var/lib/toolgate/outputs".into(),
    }
}

fn calls(c: &mut Criterion) {
    let (dir, tool, params) = subject();
    let mut runtime = PluginRuntime::new(RuntimeConfig::default(), None).unwrap();
    let report = runtime.load_dir(&dir);
    assert!(report.loaded.iter().any(|t| t == tool), "{report:?}");

    let ctx = context();
    runtime.plan(tool, params, &ctx).unwrap().unwrap();
    c.bench_function(&format!("plan/{tool}/fresh_pooled_instance"), |b| {
        b.iter(|| runtime.plan(tool, params, &ctx).unwrap())
    });

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/terrascan/aws_db_instance_json.json");
    let stdout = std::fs::read(&fixture).unwrap();
    eprintln!(
        "parse fixture {}: {} bytes",
        fixture.display(),
        stdout.len()
    );
    let outcome = Outcome {
        exit_code: Some(3),
        stdout,
        ..Outcome::default()
    };
    let parsed = runtime.parse(tool, &outcome).unwrap();
    eprintln!("parse yields {} findings", parsed.findings.len());
    c.bench_function(&format!("parse/{tool}/aws_db_instance_json"), |b| {
        b.iter(|| runtime.parse(tool, &outcome).unwrap())
    });
}

fn loading(c: &mut Criterion) {
    let (dir, _, _) = subject();
    // A directory the runtime creates (0700) in a temporary one, its secret beside it: a
    // temporary directory itself may be open to others (0755), and is then not used as a cache.
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("plugins");
    let mut warm = PluginRuntime::new(RuntimeConfig::default(), Some(cache.clone())).unwrap();
    assert!(warm.load_dir(&dir).compiled > 0, "the cache starts empty");
    drop(warm);
    let mut group = c.benchmark_group("load_dir");
    group.sample_size(10);
    group.bench_function("cold_compile", |b| {
        b.iter(|| {
            let mut runtime = PluginRuntime::new(RuntimeConfig::default(), None).unwrap();
            let report = runtime.load_dir(&dir);
            assert_eq!(report.compiled, report.loaded.len());
        })
    });
    group.bench_function("precompiled_cache", |b| {
        b.iter(|| {
            let mut runtime =
                PluginRuntime::new(RuntimeConfig::default(), Some(cache.clone())).unwrap();
            let report = runtime.load_dir(&dir);
            assert_eq!(report.from_cache, report.loaded.len());
        })
    });
    group.bench_function("new_runtime_only", |b| {
        b.iter(|| PluginRuntime::new(RuntimeConfig::default(), None).unwrap())
    });
    group.finish();
}

criterion_group!(benches, calls, loading);
criterion_main!(benches);
