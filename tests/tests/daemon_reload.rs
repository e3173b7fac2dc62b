//! Black-box tests of plugin hot reload: a real daemon on a private plugin directory, files
//! added, replaced, broken and removed, then `POST /admin/plugins/reload` or SIGHUP; the tool
//! list and the calls show the change, and a broken file leaves the old plugin serving.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, built_component, install_slow_tool, read_response,
    send_only, wait_for,
};

/// How long a SIGHUP reload may take (it compiles changed plugins; cached ones load at once).
const RELOAD_WITHIN: Duration = Duration::from_secs(60);

/// Copies a plugin into `dir` under `name` (staged and renamed, as an operator's deploy should).
fn deploy(source: &Path, dir: &Path, name: &str) {
    let staged = dir.join(format!(".{name}.staged"));
    std::fs::copy(source, &staged).expect("copy plugin");
    std::fs::rename(&staged, dir.join(name)).expect("rename plugin");
}

fn tool_names(daemon: &Daemon) -> Vec<String> {
    let response = daemon.get("/api/tools");
    assert_eq!(response.status, 200, "{}", response.body);
    let list: Value = serde_json::from_str(&response.body).expect("JSON");
    list["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str().map(String::from))
        .collect()
}

fn reload(daemon: &Daemon) -> Value {
    let response = daemon.request("POST", "/admin/plugins/reload", None);
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).expect("JSON report")
}

fn entry<'a>(report: &'a Value, tool: &str) -> &'a Value {
    report["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .find(|p| p["tool"] == tool)
        .unwrap_or_else(|| panic!("no entry for {tool}: {report}"))
}

/// A plugin directory private to `env`, holding `plugins` (source, file name).
fn private_plugins(env: &TestEnv, plugins: &[(&Path, &str)]) -> PathBuf {
    let dir = env.root.join("plugins");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (source, name) in plugins {
        deploy(source, &dir, name);
    }
    dir
}

/// The test configuration with `plugins_dir` pointing at `plugins`.
fn config_with_plugins(env: &TestEnv, options: &EnvOptions, plugins: &Path) -> PathBuf {
    env.write_config_edited(options, |text| {
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with("plugins_dir"))
            .map(String::from)
            .collect();
        lines.insert(
            0,
            format!("plugins_dir = {:?}", plugins.display().to_string()),
        );
        lines.join("\n") + "\n"
    })
}

#[test]
fn reload_adds_replaces_keeps_broken_and_removes_plugins() {
    let terrascan = built_component("target/plugins/terrascan.wasm", "just build-plugins");
    let prowler = built_component("target/plugins/prowler.wasm", "just build-plugins");
    let checkov = built_component("target/plugins/checkov.wasm", "just build-plugins");
    let template = built_component(
        "target/test-plugins/template.wasm",
        "just build-test-plugins",
    );
    let env = TestEnv::new("reload");
    let plugins = private_plugins(
        &env,
        &[(&terrascan, "terrascan.wasm"), (&prowler, "prowler.wasm")],
    );
    let config = config_with_plugins(&env, &EnvOptions::default(), &plugins);
    let mut daemon = Daemon::start(&config, env.port, &env.root.join("daemon.log"));
    assert_eq!(tool_names(&daemon), ["prowler", "terrascan"]);

    // A new file: the tool appears.
    deploy(&template, &plugins, "template.wasm");
    let report = reload(&daemon);
    assert_eq!(report["generation"], 1);
    assert_eq!(report["problems"], 0, "{report}");
    assert_eq!(entry(&report, "template")["status"], "loaded");
    assert_eq!(tool_names(&daemon), ["prowler", "template", "terrascan"]);

    // A replaced file: prowler.wasm now holds checkov, so prowler goes and checkov comes.
    deploy(&checkov, &plugins, "prowler.wasm");
    let report = reload(&daemon);
    assert_eq!(entry(&report, "prowler")["status"], "removed", "{report}");
    assert_eq!(entry(&report, "checkov")["status"], "loaded", "{report}");
    assert_eq!(tool_names(&daemon), ["checkov", "template", "terrascan"]);

    // A broken file: terrascan keeps serving its previous plugin, and the answer says why.
    std::fs::write(plugins.join("terrascan.wasm"), b"\0asm broken").expect("break plugin");
    let report = reload(&daemon);
    assert_eq!(report["problems"], 1, "{report}");
    let kept = entry(&report, "terrascan");
    assert_eq!(kept["status"], "kept_previous", "{report}");
    assert!(
        kept["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("terrascan.wasm")
    );
    assert!(
        !kept["reason"].as_str().unwrap_or_default().is_empty(),
        "{report}"
    );
    assert_eq!(tool_names(&daemon), ["checkov", "template", "terrascan"]);
    // /health speaks of the set in force: its plugins, and the file that did not load.
    let health: Value = serde_json::from_str(&daemon.get("/health").body).expect("JSON");
    let plugin_names: Vec<&str> = health["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        plugin_names,
        ["checkov", "template", "terrascan"],
        "{health}"
    );
    let skipped = health["skipped_plugins"].as_array().expect("skipped");
    assert!(
        skipped.iter().any(|s| s["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("terrascan.wasm")),
        "{health}"
    );
    // ... and its plugin still plans: a bad parameter is refused with a field error by it.
    let refused = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some(r#"{"iac_dir":"../etc"}"#),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("iac_dir"), "{}", refused.body);

    // A plugin directory that cannot be read fails the reload and changes nothing.
    let moved = env.root.join("plugins-moved");
    std::fs::rename(&plugins, &moved).expect("move the plugin directory");
    let failed = daemon.request("POST", "/admin/plugins/reload", None);
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert!(
        failed.body.contains("cannot read the plugin directory")
            && failed.body.contains("plugins_dir"),
        "{}",
        failed.body
    );
    assert_eq!(tool_names(&daemon), ["checkov", "template", "terrascan"]);
    std::fs::rename(&moved, &plugins).expect("restore the plugin directory");

    // A removed file and SIGHUP: the tool goes.
    std::fs::remove_file(plugins.join("template.wasm")).expect("remove plugin");
    daemon.signal(libc::SIGHUP);
    wait_for(RELOAD_WITHIN, "the SIGHUP reload", || {
        let names = tool_names(&daemon);
        (!names.contains(&"template".to_string())).then_some(names)
    });
    assert_eq!(tool_names(&daemon), ["checkov", "terrascan"]);
    assert!(daemon.log().contains("SIGHUP received: reloading plugins"));
    let status = daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status}");
}

/// A job running across a reload that removes its tool is parsed by the plugin that planned it:
/// it ends as the old plugin reads it (clean), not as a plugin failure.
#[test]
fn a_job_in_flight_finishes_on_the_plugin_that_planned_it() {
    let terrascan = built_component("target/plugins/terrascan.wasm", "just build-plugins");
    let prowler = built_component("target/plugins/prowler.wasm", "just build-plugins");
    let checkov = built_component("target/plugins/checkov.wasm", "just build-plugins");
    let env = TestEnv::new("reload-inflight");
    let slow = install_slow_tool(&env.tools_dir(), "terrascan", 3, SlowTool::Child);
    let plugins = private_plugins(
        &env,
        &[(&terrascan, "terrascan.wasm"), (&prowler, "prowler.wasm")],
    );
    let options = EnvOptions {
        terrascan: Some(slow),
        ..EnvOptions::default()
    };
    let config = config_with_plugins(&env, &options, &plugins);
    let daemon = Daemon::start(&config, env.port, &env.root.join("daemon.log"));
    let caller = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    wait_for(RELOAD_WITHIN, "the terrascan job to run", || {
        let list: Value = serde_json::from_str(&daemon.get("/api/processes/list").body).ok()?;
        (list["total_count"] == 1).then_some(())
    });
    // terrascan.wasm now holds checkov: after this reload no plugin serves terrascan.
    deploy(&checkov, &plugins, "terrascan.wasm");
    let report = reload(&daemon);
    assert_eq!(entry(&report, "terrascan")["status"], "removed", "{report}");
    assert!(!tool_names(&daemon).contains(&"terrascan".to_string()));

    let answer = read_response(caller).expect("the job's answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).expect("JSON");
    assert_eq!(body["success"], true, "{body}");
    let unknown = daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}
