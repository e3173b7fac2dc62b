//! Black-box test of the host's redaction: a credential passed through to a tool never comes
//! back, whatever the tool does with it (the fake prowler echoes it on stderr, stdout and in its
//! report, as prowler at `--log-level DEBUG` does).

use std::process::Command;

use serde_json::Value;
use toolgate_tests::{Daemon, EnvOptions, TestEnv, install_fake_tool, repo_root, toolgate_binary};

/// A session token shaped like STS's, unlike anything else the daemon writes.
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLEtokenQ7vJ2f0sessionSECRET";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Every file under `dir`, recursively, with its bytes.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(files_under(&path));
        } else if kind.is_file() {
            found.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn a_passed_through_credential_is_redacted_from_every_surface() {
    let env = TestEnv::new("secrets");
    let options = EnvOptions {
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        prowler_extra: "env_passthrough = [\"AWS_SESSION_TOKEN\"]".into(),
        ..EnvOptions::default()
    };
    let config = env.write_config(&options);
    let mut serve = Command::new(toolgate_binary());
    serve
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(repo_root())
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN);
    let mut daemon = Daemon::spawn(serve, env.port, &env.root.join("daemon.log"));

    let response = daemon.request("POST", "/api/tools/prowler", Some("{}"));
    assert_eq!(response.status, 200, "{}", response.body);
    let body = json(&response.body);
    // The tool did echo it: each stream and the report carry the marker in its place.
    let marker = "[redacted AWS_SESSION_TOKEN]";
    for field in ["stdout", "stderr"] {
        let text = body[field].as_str().unwrap_or_default();
        assert!(text.contains(marker), "{field}: {text}");
    }
    assert!(
        body["findings"].to_string().contains(marker),
        "the report's finding: {}",
        body["findings"]
    );
    assert!(
        !response.body.contains(SESSION_TOKEN),
        "response: {}",
        response.body
    );

    let id = body["job_id"].as_str().expect("job_id");
    let record = daemon.get(&format!("/api/jobs/{id}"));
    assert_eq!(record.status, 200, "{}", record.body);
    assert!(record.body.contains(marker), "{}", record.body);
    assert!(
        !record.body.contains(SESSION_TOKEN),
        "job record: {}",
        record.body
    );
    let list = daemon.get("/api/jobs");
    assert!(
        !list.body.contains(SESSION_TOKEN),
        "job list: {}",
        list.body
    );

    // The store (database, its journal) and the daemon's own log, once it has stopped.
    daemon.signal_and_wait(libc::SIGTERM, std::time::Duration::from_secs(30));
    let stored: Vec<_> = files_under(&env.data_dir())
        .into_iter()
        .filter(|(path, _)| !path.starts_with(env.output_root()))
        .collect();
    assert!(
        stored
            .iter()
            .any(|(path, _)| path.to_string_lossy().contains("sqlite")),
        "no database file under {}: {:?}",
        env.data_dir().display(),
        stored.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in &stored {
        assert!(
            !contains(bytes, SESSION_TOKEN),
            "{} holds the token",
            path.display()
        );
    }
    assert!(
        !daemon.log().contains(SESSION_TOKEN),
        "log:\n{}",
        daemon.log()
    );
}
