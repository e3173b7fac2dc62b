//! Black-box lifecycle tests of the real `toolgate` binary: jobs survive a crash (kill -9) as
//! records, and SIGTERM shuts down gracefully without leaving a tool process behind.

use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    EnvOptions, SlowTool, TestEnv, install_fake_tool, install_slow_tool, processes_matching,
    read_response, send_only, wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Names in the daemon's pool of private job directories.
fn private_dirs(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(env.data_dir().join("jobs"))
        .map(|dir| {
            dir.flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn after_kill_9_the_running_job_is_interrupted_and_finished_jobs_remain() {
    let env = TestEnv::new("life-kill9");
    let fast = install_fake_tool(&env.tools_dir(), "prowler");
    // `exec sleep`: the tool is the daemon's direct child, which the sandbox ties to the daemon's
    // life with a parent-death signal. (Grandchildren are only reachable after a crash when the
    // sandbox runs jobs in cgroups.)
    let slow = install_slow_tool(
        &env.tools_dir(),
        "terrascan",
        u32::from(env.port),
        SlowTool::Exec,
    );
    let options = EnvOptions {
        terrascan: Some(slow),
        prowler: Some(fast),
        ..EnvOptions::default()
    };
    let mut daemon = env.start(&options);
    let finished = json(
        &daemon
            .request("POST", "/api/tools/prowler", Some("{}"))
            .body,
    );
    let finished_id = finished["job_id"].as_str().expect("job id").to_string();
    let _caller = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    let running_id = wait_for(WAIT, "a running job", || {
        let list = json(&daemon.get("/api/processes/list").body);
        list["active_processes"].as_object()?.keys().next().cloned()
    });
    let dead_slots = format!("slot-{}-", daemon.pid());
    daemon.signal_and_wait(libc::SIGKILL, WAIT);
    wait_for(WAIT, "the orphaned tool to die", || {
        processes_matching(&format!("sleep {}", env.port))
            .is_empty()
            .then_some(())
    });
    let left = private_dirs(&env);
    assert!(
        left.iter().any(|name| name.starts_with(&dead_slots)),
        "the killed daemon's private dirs are still there: {left:?}"
    );

    let daemon = env.start(&options);
    let swept = private_dirs(&env);
    assert!(
        !swept.iter().any(|name| name.starts_with(&dead_slots)),
        "the restarted daemon swept the dead one's private dirs: {swept:?}"
    );
    let table = [
        (running_id.as_str(), "interrupted"),
        (finished_id.as_str(), "succeeded"),
    ];
    for (id, status) in table {
        let job = json(&daemon.get(&format!("/api/jobs/{id}")).body);
        assert_eq!(job["status"], status, "{job}");
    }
    let listed = json(&daemon.get("/api/jobs").body);
    assert_eq!(listed["count"], 2, "{listed}");
    let interrupted = json(&daemon.get("/api/jobs?status=interrupted").body);
    assert_eq!(interrupted["jobs"][0]["id"], running_id.as_str());
}

#[test]
fn sigterm_lets_running_jobs_end_within_the_grace_and_leaves_no_child() {
    let env = TestEnv::new("life-sigterm");
    let slow = install_slow_tool(
        &env.tools_dir(),
        "terrascan",
        u32::from(env.port),
        SlowTool::Child,
    );
    let mut daemon = env.start(&EnvOptions {
        terrascan: Some(slow),
        http: "shutdown_grace_secs = 1".into(),
        ..EnvOptions::default()
    });
    let caller = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    wait_for(WAIT, "the slow tool to run", || {
        (!processes_matching(&format!("sleep {}", env.port)).is_empty()).then_some(())
    });
    let status = daemon.signal_and_wait(libc::SIGTERM, WAIT);
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status}; log:\n{}",
        daemon.log()
    );
    assert!(
        processes_matching(&format!("sleep {}", env.port)).is_empty(),
        "a tool process survived the daemon"
    );
    assert_eq!(
        private_dirs(&env),
        Vec::<String>::new(),
        "a graceful shutdown removes the private dirs"
    );
    // The caller got a complete answer: the job was cancelled after the grace period.
    let answer = read_response(caller).expect("answer before shutdown");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(json(&answer.body)["cancelled"], true);
    let log = daemon.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("\"tenant\":\"default\""),
        "one structured event per job: {log}"
    );
}
