//! Black-box tests of caller-requested output directories (prowler's `output_dir`) on the real
//! `toolgate` binary: a job's output directory is one it created, fresh, directly below the
//! output root. The root itself, an existing name (another job's directory), a name in the
//! job-id form and a nested path are refused as a 400 naming `output_dir`, changing nothing;
//! a call refused at admission (429) creates no directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, install_fake_tool, install_slow_tool, read_response,
    send_only, wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A prowler call asking for `output_dir`: its status and JSON body.
fn prowler(daemon: &Daemon, output_dir: &str) -> (u16, Value) {
    let body = serde_json::json!({ "provider": "aws", "output_dir": output_dir }).to_string();
    let response = daemon.request("POST", "/api/tools/prowler", Some(&body));
    (response.status, json(&response.body))
}

/// Every entry below `dir`, recursively, as paths relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path.strip_prefix(dir).expect("below").to_path_buf());
        }
    }
    found.sort();
    found
}

#[test]
fn output_dir_must_name_a_new_directory_directly_below_the_output_root() {
    let env = TestEnv::new("outdirs-refused");
    let daemon = env.start(&EnvOptions {
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        ..EnvOptions::default()
    });
    let root = env.output_root().canonicalize().expect("output root");
    let root_text = root.display().to_string();
    // A job with its own (default) directory, and one with a requested directory.
    let (status, own) = prowler(&daemon, "");
    assert_eq!(status, 200, "{own}");
    let job_id = own["job_id"].as_str().expect("job_id").to_string();
    assert_eq!(own["output_directory"], format!("{root_text}/{job_id}"));
    let (status, mine) = prowler(&daemon, &format!("{root_text}/mine"));
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["output_directory"], format!("{root_text}/mine"));
    let before = tree(&root);
    assert!(before.len() >= 4, "both jobs wrote reports: {before:?}");

    let refused = [
        (root_text.clone(), "output root itself"),
        (format!("{root_text}/"), "output root itself"),
        (format!("{root_text}/mine"), "already exists"),
        (format!("{root_text}/{job_id}"), "reserved"),
        // A job-id name that no directory has yet: a future job's.
        (
            format!("{root_text}/0193f5a2-7c1e-7abc-9def-0123456789ab"),
            "reserved",
        ),
        (format!("{root_text}/{job_id}/injected"), "nested"),
        (format!("{root_text}/mine/injected"), "nested"),
    ];
    for (value, needle) in refused {
        let (status, body) = prowler(&daemon, &value);
        assert_eq!(status, 400, "{value}: {body}");
        let errors = body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{value}: {body}");
        assert_eq!(errors[0]["field"], "output_dir", "{value}: {body}");
        let message = errors[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{value}: {message:?} lacks {needle:?}"
        );
    }
    assert_eq!(
        tree(&root),
        before,
        "a refused call changed the output root"
    );
}

#[test]
fn a_call_refused_as_queue_full_creates_no_output_directory() {
    let env = TestEnv::new("outdirs-429");
    let slow = install_slow_tool(
        &env.tools_dir(),
        "terrascan",
        u32::from(env.port),
        SlowTool::Exec,
    );
    let daemon = env.start(&EnvOptions {
        terrascan: Some(slow),
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        limits: "max_concurrent_jobs = 1\nmax_queued_jobs = 0\n".into(),
        ..EnvOptions::default()
    });
    let root = env.output_root().canonicalize().expect("output root");
    // terrascan takes the only slot (and has no output directory).
    let first = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    let running = wait_for(WAIT, "a running job", || {
        let list = json(&daemon.get("/api/processes/list").body);
        let (id, info) = list["active_processes"].as_object()?.iter().next()?;
        (info["status"] == "running").then(|| id.clone())
    });
    for value in [
        format!("{}/spam1", root.display()),
        format!("{}/spam2", root.display()),
        String::new(),
    ] {
        let (status, body) = prowler(&daemon, &value);
        assert_eq!(status, 429, "{value:?}: {body}");
    }
    assert_eq!(
        tree(&root),
        Vec::<PathBuf>::new(),
        "refused calls left directories"
    );

    let cancel = daemon.request("POST", &format!("/api/jobs/{running}/cancel"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let answer = read_response(first).expect("the first caller gets its answer");
    assert_eq!(json(&answer.body)["cancelled"], true, "{}", answer.body);
    // Once admitted, the same request gets its directory.
    let (status, body) = prowler(&daemon, &format!("{}/spam1", root.display()));
    assert_eq!(status, 200, "{body}");
    assert!(root.join("spam1").is_dir());
}
