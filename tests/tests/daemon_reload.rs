//! Black-box tests of plugin hot reload: a real daemon on a private plugin directory, files
//! added, replaced, broken and removed, then `POST /admin/plugins/reload` or SIGHUP; the tool
//! list and the calls show the change, and a broken file leaves the old plugin serving.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{Daemon, EnvOptions, TestEnv, built_component, wait_for};

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
    let plugins = env.root.join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    deploy(&terrascan, &plugins, "terrascan.wasm");
    deploy(&prowler, &plugins, "prowler.wasm");
    let config = env.write_config_edited(&EnvOptions::default(), |text| {
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
    });
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
    // ... and its plugin still plans: a bad parameter is refused with a field error by it.
    let refused = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some(r#"{"iac_dir":"../etc"}"#),
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("iac_dir"), "{}", refused.body);

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
