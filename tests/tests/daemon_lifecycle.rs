//! Black-box lifecycle tests of the real `toolgate` binary: jobs survive a crash (kill -9) as
//! records, and SIGTERM shuts down gracefully without leaving a tool process behind.

use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, install_fake_tool, install_slow_tool,
    processes_matching, read_response, send_only, wait_for,
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
        log.contains("\"tenant\":\"local\""),
        "one structured event per job: {log}"
    );
}

#[test]
fn sigint_stops_accepting_and_lets_a_job_that_ends_within_the_grace_finish() {
    let env = TestEnv::new("life-sigint");
    // Sleeps 2 s, well inside the 60 s grace.
    let slow = install_slow_tool(&env.tools_dir(), "terrascan", 2, SlowTool::Exec);
    let mut daemon = env.start(&EnvOptions {
        terrascan: Some(slow),
        http: "shutdown_grace_secs = 60".into(),
        ..EnvOptions::default()
    });
    let caller = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    let id = wait_for(WAIT, "a running job", || {
        let list = json(&daemon.get("/api/processes/list").body);
        let (id, info) = list["active_processes"].as_object()?.iter().next()?;
        (info["status"] == "running").then(|| id.clone())
    });
    daemon.signal(libc::SIGINT);
    wait_for(WAIT, "the listener to close", || {
        toolgate_tests::try_request(env.port, "GET", "/health", None)
            .is_err()
            .then_some(())
    });
    let answer = read_response(caller).expect("the running call is answered");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = json(&answer.body);
    assert_eq!(body["job_id"], id.as_str(), "{body}");
    assert_eq!(body["cancelled"], false, "the job ended on its own: {body}");
    assert_eq!(body["return_code"], 0, "{body}");
    let status = daemon.wait_exit(WAIT);
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("SIGINT received"), "{log}");

    // The record says how the job ended, not "interrupted".
    let daemon = env.start(&EnvOptions::default());
    let job = json(&daemon.get(&format!("/api/jobs/{id}")).body);
    assert_ne!(job["status"], "interrupted", "{job}");
    assert_eq!(job["exit_code"], 0, "{job}");
}

/// Runs one terrascan scan, stops the daemon, and returns the job's id and the daemon's log.
fn scan_once_and_stop(daemon: &mut Daemon) -> (String, String) {
    let answer = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    let id = json(&answer.body)["job_id"]
        .as_str()
        .expect("id")
        .to_string();
    daemon.signal_and_wait(libc::SIGTERM, WAIT);
    (id, daemon.log())
}

#[test]
fn each_job_is_one_structured_event_with_tenant_tool_argv_exit_and_duration() {
    let env = TestEnv::new("life-log");
    let fake = install_fake_tool(&env.tools_dir(), "terrascan");
    let mut daemon = env.start(&EnvOptions {
        terrascan: Some(fake),
        ..EnvOptions::default()
    });
    let (id, log) = scan_once_and_stop(&mut daemon);
    let events: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["job_id"] == id.as_str())
        .collect();
    assert_eq!(events.len(), 1, "one event for the job: {log}");
    // `log_format = "json"` flattens each event's fields into the top-level object.
    let fields = &events[0];
    // The implicit tenant's id (no [[tenants]]): each job's event names its owner.
    assert_eq!(fields["tenant"], "local", "{fields}");
    assert_eq!(fields["tool"], "terrascan", "{fields}");
    assert_eq!(fields["exit_code"], 3, "{fields}");
    assert!(fields["duration_ms"].is_u64(), "{fields}");
    assert!(
        fields["argv"].as_str().is_some_and(
            |argv| argv.contains("\"scan\", \"-d\"") && argv.ends_with("\"-o\", \"json\"]")
        ),
        "{fields}"
    );
    assert_eq!(fields["status"], "succeeded", "{fields}");
}

#[test]
fn the_human_log_carries_the_same_job_event() {
    let env = TestEnv::new("life-human-log");
    let fake = install_fake_tool(&env.tools_dir(), "terrascan");
    let options = EnvOptions {
        terrascan: Some(fake),
        ..EnvOptions::default()
    };
    let config = env.write_config_edited(&options, |text| {
        text.replace("log_format = \"json\"", "log_format = \"human\"")
    });
    let mut daemon = Daemon::start(&config, env.port, &env.root.join("daemon.log"));
    let (id, log) = scan_once_and_stop(&mut daemon);
    let line = log
        .lines()
        .find(|line| line.contains(&id) && line.contains("job finished"))
        .unwrap_or_else(|| panic!("no job event for {id}: {log}"));
    assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
    for field in [
        "tenant=\"local\"",
        "tool=\"terrascan\"",
        "argv=",
        "exit_code=3",
        "duration_ms=",
        "status=\"succeeded\"",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
}

#[test]
fn a_job_whose_tool_cannot_start_is_recorded_and_logged_as_failed() {
    let env = TestEnv::new("life-failed");
    let fake = install_fake_tool(&env.tools_dir(), "terrascan");
    let mut daemon = env.start(&EnvOptions {
        terrascan: Some(fake.clone()),
        ..EnvOptions::default()
    });
    // Gone after start-up, when the catalog found it: the sandbox fails the job, and the
    // caller is told what is wrong and which key fixes it (503: the operator's to fix).
    std::fs::remove_file(&fake).expect("remove the tool");
    let answer = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        json(&answer.body)["error"].as_str().is_some_and(|error| {
            error.contains("\"terrascan\" cannot be executed")
                && error.contains("no longer exists")
                && error.contains("`tools.terrascan.binary`")
        }),
        "{}",
        answer.body
    );
    let jobs = json(&daemon.get("/api/jobs").body);
    let jobs = jobs["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["finished_at"].is_string(), "{job}");
    assert!(
        job["error"].as_str().is_some_and(|error| !error.is_empty()),
        "{job}"
    );
    let id = job["id"].as_str().expect("id").to_string();
    daemon.signal_and_wait(libc::SIGTERM, WAIT);
    let log = daemon.log();
    let event = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|event| event["job_id"] == id.as_str() && event["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed event for {id}: {log}"));
    assert_eq!(event["tool"], "terrascan", "{event}");
    assert!(
        event["argv"]
            .as_str()
            .is_some_and(|argv| argv.contains("\"scan\"")),
        "{event}"
    );
}

#[test]
fn a_client_that_never_finishes_its_request_does_not_hold_the_shutdown() {
    use std::io::Write;
    let env = TestEnv::new("life-stalled");
    let mut daemon = env.start(&EnvOptions::default());
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", env.port)).expect("connect");
    stalled
        .write_all(b"POST /api/tools/terrascan HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .expect("send half a request");
    std::thread::sleep(Duration::from_millis(200));
    let status = daemon.signal_and_wait(libc::SIGTERM, WAIT);
    assert!(status.success(), "{status}; log:\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("connections still open"), "{log}");
}
