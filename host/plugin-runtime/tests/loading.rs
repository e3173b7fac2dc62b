//! Loading a plugin directory: bad plugins are skipped with their reason, good ones load, and the
//! artefact cache spares a restart the compile (and survives corruption).

mod common;

use std::path::Path;

use common::{quick_config, test_plugin};
use toolgate_plugin_runtime::{CallFailure, LoadError, LoadReport, PluginRuntime};

fn copy_plugin(file: &str, dir: &Path, as_name: &str) {
    std::fs::copy(test_plugin(file), dir.join(as_name)).unwrap();
}

fn reason_for<'a>(report: &'a LoadReport, file: &str) -> &'a str {
    report
        .skipped
        .iter()
        .find(|s| s.path.file_name().is_some_and(|n| n == file))
        .map(|s| s.reason.as_str())
        .unwrap_or_else(|| panic!("{file} was not skipped: {report:?}"))
}

#[test]
fn bad_plugins_are_skipped_with_their_reason_and_the_good_one_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.txt"), "plugins live here").unwrap();
    std::fs::write(dir.path().join("garbage.wasm"), "#!/bin/sh\necho pwned\n").unwrap();
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    copy_plugin("trap-at-load.wasm", dir.path(), "b-trap-at-load.wasm");
    copy_plugin("hostile.wasm", dir.path(), "a-hostile.wasm");
    copy_plugin("hostile.wasm", dir.path(), "c-hostile-copy.wasm");

    let mut runtime = PluginRuntime::new(quick_config(), None).unwrap();
    let report = runtime.load_dir(dir.path());

    assert_eq!(report.loaded, vec!["hostile".to_string()]);
    assert_eq!(report.skipped.len(), 5, "{report:#?}");
    let expectations = [
        ("README.txt", "not a *.wasm file"),
        ("garbage.wasm", "is not a WebAssembly file"),
        ("core.wasm", "is a core WebAssembly module, not a component"),
        (
            "b-trap-at-load.wasm",
            "plugin `b-trap-at-load.wasm` describe() failed: trapped: wasm trap",
        ),
        (
            "c-hostile-copy.wasm",
            "tool `hostile` is already provided by",
        ),
    ];
    for (file, expected) in expectations {
        let reason = reason_for(&report, file);
        assert!(reason.contains(expected), "{file}: {reason}");
    }
    assert_eq!(runtime.tools().len(), 1);
    assert_eq!(runtime.describe("hostile").unwrap().executable, "true");
}

#[test]
fn missing_directory_is_one_skipped_entry() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let mut runtime = PluginRuntime::new(quick_config(), None).unwrap();
    let report = runtime.load_dir(&missing);
    assert!(report.loaded.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].path, missing);
    assert!(
        report.skipped[0]
            .reason
            .contains("cannot read the plugin directory")
    );
}

#[test]
fn load_file_names_the_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let mut runtime = PluginRuntime::new(quick_config(), None).unwrap();

    assert!(matches!(
        runtime.load_file(&core),
        Err(LoadError::NotAComponent { .. })
    ));
    assert!(matches!(
        runtime.load_file(&dir.path().join("absent.wasm")),
        Err(LoadError::Read { .. })
    ));
    match runtime.load_file(&test_plugin("trap-at-load.wasm")) {
        Err(LoadError::Describe { source, .. }) => {
            assert_eq!(source.call, "describe");
            assert!(matches!(source.reason, CallFailure::Trap(_)), "{source}");
        }
        other => panic!("expected a describe failure, got {other:?}"),
    }
    assert_eq!(
        runtime.load_file(&test_plugin("hostile.wasm")).unwrap(),
        "hostile"
    );
    assert!(matches!(
        runtime.load_file(&test_plugin("hostile.wasm")),
        Err(LoadError::DuplicateTool { .. })
    ));
}

#[test]
fn description_is_checked_and_parsed() {
    let mut runtime = PluginRuntime::new(quick_config(), None).unwrap();
    runtime.load_file(&test_plugin("hostile.wasm")).unwrap();
    let tools = runtime.tools();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].name, "hostile");
    assert_eq!(tools[0].params_schema["type"], "object");
    assert!(!tools[0].needs_network);
    assert_eq!(runtime.describe("absent"), None);
}

#[test]
fn restart_loads_from_the_cache_and_a_corrupt_entry_falls_back_to_compiling() {
    let plugins = tempfile::tempdir().unwrap();
    copy_plugin("hostile.wasm", plugins.path(), "hostile.wasm");
    let cache = tempfile::tempdir().unwrap();
    let load = || {
        let mut runtime =
            PluginRuntime::new(quick_config(), Some(cache.path().to_owned())).unwrap();
        let report = runtime.load_dir(plugins.path());
        assert_eq!(report.loaded, vec!["hostile".to_string()], "{report:?}");
        common::assert_ok_plan(&runtime);
        (report.compiled, report.from_cache)
    };

    assert_eq!(load(), (1, 0), "first start compiles");
    assert_eq!(load(), (0, 1), "restart loads the precompiled artefact");

    let artefacts: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(artefacts.len(), 1);
    let mut corrupted = std::fs::read(&artefacts[0]).unwrap();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    std::fs::write(&artefacts[0], &corrupted).unwrap();
    assert_eq!(load(), (1, 0), "a corrupt artefact is recompiled");
    assert_eq!(load(), (0, 1), "and rewritten");

    std::fs::write(&artefacts[0], b"truncated").unwrap();
    assert_eq!(load(), (1, 0), "a truncated artefact is recompiled");
}

#[test]
fn cache_dir_is_created() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache/plugins");
    let mut runtime = PluginRuntime::new(quick_config(), Some(cache.clone())).unwrap();
    runtime.load_file(&test_plugin("hostile.wasm")).unwrap();
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        2,
        "artefact and digest"
    );
}
