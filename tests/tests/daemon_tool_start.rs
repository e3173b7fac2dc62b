//! A tool that cannot be executed (issue #17): the caller gets a 503 naming the tool, what was
//! denied and the key to set, never a 500 pointing at the log; and the host grants a script's
//! `#!` interpreter and its install prefix by itself, so `binary` alone makes it run.
//!
//! The scenario is an install that changes under a running daemon: what a tool may read is
//! worked out from its binary at start-up, so a binary replaced afterwards by a script whose
//! interpreter lies outside every granted path is refused by Landlock at `execve`. A restart
//! works the new install out and runs it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;
use toolgate_tests::{EnvOptions, TestEnv, fake_tool_binary, install_fake_tool};

const TERRASCAN_CALL: &str = r#"{"scan_type":"terraform","iac_dir":"terraform"}"#;

/// Writes `text` to `path` as a new executable file (a new inode, as an upgrade leaves it).
fn replace_with_script(path: &Path, text: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, text).expect("write script");
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&staged, path).expect("replace the binary");
}

#[test]
fn a_tool_that_cannot_be_executed_is_a_503_naming_the_tool_the_denial_and_the_key() {
    let env = TestEnv::new("cannot-start");
    // An interpreter installed outside every system path (as pyenv or a venv's base Python is),
    // and the real program it runs beside it.
    let prefix = env.root.join("opt-scanner");
    std::fs::create_dir_all(prefix.join("bin")).expect("mkdir");
    std::fs::copy("/bin/sh", prefix.join("bin/sh")).expect("copy sh");
    std::fs::copy(fake_tool_binary(), prefix.join("terrascan")).expect("copy fake tool");
    let script = format!(
        "#!{prefix}/bin/sh\nexec {prefix}/terrascan \"$@\"\n",
        prefix = prefix.display()
    );

    let terrascan = install_fake_tool(&env.tools_dir(), "terrascan");
    let options = EnvOptions {
        terrascan: Some(terrascan.clone()),
        ..EnvOptions::default()
    };
    let daemon = env.start(&options);
    let response = daemon.request("POST", "/api/tools/terrascan", Some(TERRASCAN_CALL));
    assert_eq!(response.status, 200, "{}", response.body);

    // The install changes under the running daemon.
    replace_with_script(&terrascan, &script);
    let response = daemon.request("POST", "/api/tools/terrascan", Some(TERRASCAN_CALL));
    assert_eq!(
        response.status,
        503,
        "{}\nlog:\n{}",
        response.body,
        daemon.log()
    );
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    let error = body["error"].as_str().expect("error text");
    for says in [
        "\"terrascan\"",
        "execve",
        "Permission denied",
        "`tools.terrascan.read_paths`",
        "`sandbox.system_read_paths`",
    ] {
        assert!(error.contains(says), "{says:?} in {error}");
    }
    assert!(!error.contains("see the daemon log"), "{error}");
    // The job is recorded as failed with the same reason.
    let jobs: Value =
        serde_json::from_str(&daemon.get("/api/jobs?limit=1").body).expect("jobs JSON");
    let job = &jobs["jobs"][0];
    assert_eq!(job["status"], "failed", "{jobs}");
    assert!(
        job["error"].as_str().is_some_and(|e| e.contains("execve")),
        "{jobs}"
    );
    drop(daemon);

    // Restarted, the daemon works the new install out from the `#!` line: `binary` alone.
    let daemon = env.start(&options);
    let info: Value =
        serde_json::from_str(&daemon.get("/api/tools/terrascan").body).expect("tool JSON");
    let prefix = prefix.canonicalize().expect("canonical prefix");
    let granted = info["read_paths"]["granted"].as_array().expect("granted");
    assert!(
        granted.iter().any(|grant| {
            grant["path"] == prefix.display().to_string()
                && grant["reason"]
                    .as_str()
                    .is_some_and(|why| why.contains("install prefix of the interpreter"))
        }),
        "{info:#}"
    );
    let response = daemon.request("POST", "/api/tools/terrascan", Some(TERRASCAN_CALL));
    assert_eq!(
        response.status,
        200,
        "{}\nlog:\n{}",
        response.body,
        daemon.log()
    );
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    assert_eq!(body["findings"][0]["rule_id"], "AC_AWS_0001", "{body}");
}
