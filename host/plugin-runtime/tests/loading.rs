//! Loading a plugin directory: bad plugins are skipped with their reason, good ones load, and the
//! artefact cache spares a restart the compile (and survives corruption).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{quick_config, test_plugin};
use sha2::{Digest, Sha256};
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

/// The artefacts (`*.cwasm`) in a cache directory.
fn artefacts(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// The files beside an artefact that record what it must match (its tag, or a digest).
fn records_of(artefact: &Path) -> Vec<PathBuf> {
    let stem = artefact.file_stem().unwrap().to_owned();
    std::fs::read_dir(artefact.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != artefact && p.file_stem() == Some(stem.as_os_str()))
        .collect()
}

#[test]
fn restart_loads_from_the_cache_and_a_corrupt_entry_falls_back_to_compiling() {
    let plugins = tempfile::tempdir().unwrap();
    copy_plugin("hostile.wasm", plugins.path(), "hostile.wasm");
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("plugins");
    let load = || {
        let mut runtime = PluginRuntime::new(quick_config(), Some(cache.clone())).unwrap();
        let report = runtime.load_dir(plugins.path());
        assert_eq!(report.loaded, vec!["hostile".to_string()], "{report:?}");
        common::assert_ok_plan(&runtime);
        (report.compiled, report.from_cache)
    };

    assert_eq!(load(), (1, 0), "first start compiles");
    assert_eq!(load(), (0, 1), "restart loads the precompiled artefact");

    let artefacts = artefacts(&cache);
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
fn cache_dir_is_created_private_with_its_secret_outside() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache/plugins");
    let mut runtime = PluginRuntime::new(quick_config(), Some(cache.clone())).unwrap();
    runtime.load_file(&test_plugin("hostile.wasm")).unwrap();
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        2,
        "artefact and tag"
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&cache), 0o700);
    assert_eq!(mode(&root.path().join("cache/plugins.key")), 0o600);
    for file in std::fs::read_dir(&cache).unwrap() {
        assert_eq!(mode(&file.unwrap().path()), 0o600);
    }
}

/// The attack the tag stops: whoever can write the cache swaps in native code of their choice
/// (here a genuine artefact of another component, so the old code would even have run it) and
/// rewrites the record beside it to match, as a plain sha256 of the new bytes (all the old
/// cache checked). The artefact is recompiled, not loaded.
#[test]
fn an_artefact_swapped_with_its_digest_rewritten_to_match_is_recompiled_not_loaded() {
    let plugins = tempfile::tempdir().unwrap();
    copy_plugin("hostile.wasm", plugins.path(), "hostile.wasm");
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("plugins");
    let load = || {
        let mut runtime = PluginRuntime::new(quick_config(), Some(cache.clone())).unwrap();
        let report = runtime.load_dir(plugins.path());
        (report.loaded.clone(), report.compiled, report.from_cache)
    };
    let hostile = || (vec!["hostile".to_string()], 1, 0);
    assert_eq!(load(), hostile(), "first start compiles");

    // The attacker's native code: a genuine artefact of another component.
    let elsewhere = root.path().join("elsewhere");
    PluginRuntime::new(quick_config(), Some(elsewhere.clone()))
        .unwrap()
        .load_file(&test_plugin("trap-at-load.wasm"))
        .unwrap_err();
    let injected = std::fs::read(&artefacts(&elsewhere)[0]).unwrap();

    let artefact = artefacts(&cache).remove(0);
    let records = records_of(&artefact);
    assert!(!records.is_empty());
    let forge = |bytes: &[u8]| {
        std::fs::write(&artefact, bytes).unwrap();
        let digest = hex::encode(Sha256::digest(bytes));
        for record in &records {
            std::fs::write(record, &digest).unwrap();
        }
        // The old cache's record, too.
        std::fs::write(artefact.with_extension("sha256"), &digest).unwrap();
    };
    forge(&injected);
    assert_eq!(load(), hostile(), "a swapped artefact is recompiled");
    assert_eq!(load().2, 1, "and the rewritten entry is used");

    // A tampered copy of the genuine artefact, with a matching digest: recompiled as well.
    let mut tampered = std::fs::read(&artefact).unwrap();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0xff;
    forge(&tampered);
    assert_eq!(load(), hostile(), "a tampered artefact is recompiled");
}

/// A cache directory others may write, or that another user owns, is not used: every start
/// compiles and nothing is written to it.
#[test]
fn a_cache_dir_open_to_others_or_owned_by_another_user_is_not_used() {
    let plugins = tempfile::tempdir().unwrap();
    copy_plugin("hostile.wasm", plugins.path(), "hostile.wasm");
    type Spoil = fn(&Path) -> bool;
    let cases: &[(&str, Spoil)] = &[
        ("mode 0777", |dir| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            true
        }),
        ("mode 0770", |dir| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o770)).unwrap();
            true
        }),
        // Possible only as root (the tests run as root on the reference machine).
        ("another owner", |dir| {
            std::os::unix::fs::chown(dir, Some(65534), Some(65534)).is_ok()
        }),
    ];
    for (name, spoil) in cases {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("plugins");
        std::fs::create_dir(&cache).unwrap();
        if !spoil(&cache) {
            eprintln!("{name}: skipped (needs root)");
            continue;
        }
        for start in ["first", "second"] {
            let mut runtime = PluginRuntime::new(quick_config(), Some(cache.clone())).unwrap();
            let report = runtime.load_dir(plugins.path());
            assert_eq!(
                (report.loaded.len(), report.compiled, report.from_cache),
                (1, 1, 0),
                "{name}, {start} start: {report:?}"
            );
        }
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "{name}");
        assert!(!root.path().join("plugins.key").exists(), "{name}");
    }
}
