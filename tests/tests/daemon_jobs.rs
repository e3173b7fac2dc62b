//! Black-box tests of job control on the real `toolgate` binary: the queue bound (429),
//! cancellation by the jobs API and by HexStrike's terminate endpoint, and cancellation when
//! the caller disconnects. A shell script that sleeps in a child process stands in for a slow
//! tool, so a correct cancel must kill the whole process group.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, install_slow_tool, processes_matching, read_response,
    send_only, wait_for,
};

const WAIT: Duration = Duration::from_secs(30);

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Starts a daemon whose terrascan sleeps `env.port` seconds (a per-test marker), configured
/// otherwise by `options`.
fn with_slow_terrascan(env: &TestEnv, options: EnvOptions) -> Daemon {
    let slow = install_slow_tool(
        &env.tools_dir(),
        "terrascan",
        u32::from(env.port),
        SlowTool::Child,
    );
    env.start(&EnvOptions {
        terrascan: Some(slow),
        ..options
    })
}

/// [`with_slow_terrascan`] with one slot and no queue.
fn slow_daemon(env: &TestEnv, extra_limits: &str) -> Daemon {
    with_slow_terrascan(
        env,
        EnvOptions {
            limits: format!("max_concurrent_jobs = 1\nmax_queued_jobs = 0\n{extra_limits}"),
            ..EnvOptions::default()
        },
    )
}

/// Waits until exactly one job is running and returns its id.
fn running_job(daemon: &Daemon) -> String {
    wait_for(WAIT, "a running job", || {
        let list = json(&daemon.get("/api/processes/list").body);
        let (id, info) = list["active_processes"]
            .as_object()?
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))?;
        (info["status"] == "running").then_some(id)
    })
}

/// Sends a terrascan call without reading its answer and waits until its job runs: the
/// caller's (still waiting) connection and the job id.
fn scan_running(env: &TestEnv, daemon: &Daemon) -> (TcpStream, String) {
    let caller = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    (caller, running_job(daemon))
}

fn job_status(daemon: &Daemon, id: &str) -> String {
    json(&daemon.get(&format!("/api/jobs/{id}")).body)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sleepers(env: &TestEnv) -> Vec<u32> {
    processes_matching(&format!("sleep {}", env.port))
}

#[test]
fn a_full_queue_is_429_with_retry_after_and_cancel_ends_the_running_job() {
    let env = TestEnv::new("jobs-429");
    let daemon = slow_daemon(&env, "");
    let first = send_only(
        env.port,
        "POST",
        "/api/tools/terrascan",
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    let id = running_job(&daemon);
    wait_for(WAIT, "the slow tool's sleep", || {
        (!sleepers(&env).is_empty()).then_some(())
    });

    let refused = daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "{:?}",
        refused.headers
    );
    assert!(json(&refused.body)["error"].is_string());
    let status = json(&daemon.get(&format!("/api/processes/status/{id}")).body);
    assert_eq!(status["process"]["tool"], "terrascan", "{status}");

    let cancel = daemon.request("POST", &format!("/api/jobs/{id}/cancel"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let answer = read_response(first).expect("the first caller gets its answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = json(&answer.body);
    assert_eq!(body["cancelled"], true, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["return_code"], -1);
    assert_eq!(body["status"], "cancelled");
    assert_eq!(job_status(&daemon, &id), "cancelled");
    assert!(
        sleepers(&env).is_empty(),
        "the tool's child survived the cancel"
    );
    assert_eq!(
        daemon
            .request("POST", &format!("/api/jobs/{id}/cancel"), None)
            .status,
        409
    );
    let metrics = daemon.get("/metrics").body;
    assert!(
        metrics.contains("toolgate_rejections_total{reason=\"queue_full\"} 1"),
        "{metrics}"
    );
}

#[test]
fn hexstrike_terminate_cancels_a_running_job() {
    let env = TestEnv::new("jobs-terminate");
    let daemon = slow_daemon(&env, "");
    let (caller, id) = scan_running(&env, &daemon);
    let terminate = daemon.request("POST", &format!("/api/processes/terminate/{id}"), None);
    assert_eq!(terminate.status, 200, "{}", terminate.body);
    let body = json(&terminate.body);
    assert_eq!(body["success"], true);
    assert!(body["message"].is_string());
    let answer = json(&read_response(caller).expect("answer").body);
    assert_eq!(answer["cancelled"], true, "{answer}");
    wait_for(WAIT, "the job to be recorded cancelled", || {
        (job_status(&daemon, &id) == "cancelled").then_some(())
    });
    assert_eq!(
        daemon
            .request("POST", &format!("/api/processes/terminate/{id}"), None)
            .status,
        404
    );
}

#[test]
fn a_caller_that_disconnects_cancels_its_job() {
    let env = TestEnv::new("jobs-disconnect");
    let daemon = slow_daemon(&env, "cancel_on_disconnect = true");
    let (caller, id) = scan_running(&env, &daemon);
    drop(caller);
    wait_for(
        WAIT,
        "the disconnected caller's job to be cancelled",
        || (job_status(&daemon, &id) == "cancelled").then_some(()),
    );
    wait_for(WAIT, "the tool's processes to be gone", || {
        sleepers(&env).is_empty().then_some(())
    });
    // The slot is free again.
    let list = json(&daemon.get("/api/processes/list").body);
    assert_eq!(list["total_count"], 0, "{list}");
}

#[test]
fn a_tool_that_outlives_its_timeout_is_killed_and_reported_timed_out() {
    let env = TestEnv::new("jobs-timeout");
    let daemon = with_slow_terrascan(
        &env,
        EnvOptions {
            terrascan_extra: "timeout_secs = 1".into(),
            sandbox: "kill_grace_secs = 1".into(),
            ..EnvOptions::default()
        },
    );
    let response = daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    assert_eq!(response.status, 200, "{}", response.body);
    let body = json(&response.body);
    assert_eq!(body["timed_out"], true, "{body}");
    assert_eq!(body["success"], false);
    assert_eq!(body["return_code"], -1);
    assert_eq!(body["status"], "timed_out");
    assert_eq!(
        body["partial_results"], true,
        "it printed `started` before the timeout: {body}"
    );
    let id = body["job_id"].as_str().expect("job id");
    assert_eq!(job_status(&daemon, id), "timed_out");
    assert!(
        sleepers(&env).is_empty(),
        "the tool's child survived the timeout"
    );
}

#[test]
fn a_job_beyond_the_running_slots_waits_in_the_queue_and_can_be_cancelled_there() {
    let env = TestEnv::new("jobs-queue");
    let daemon = with_slow_terrascan(
        &env,
        EnvOptions {
            limits: "max_concurrent_jobs = 1\nmax_queued_jobs = 1\n".into(),
            ..EnvOptions::default()
        },
    );
    let (first, running) = scan_running(&env, &daemon);
    let second = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    let queued = wait_for(WAIT, "a queued job", || {
        let list = json(&daemon.get("/api/processes/list").body);
        list["active_processes"]
            .as_object()?
            .iter()
            .find(|(_, info)| info["status"] == "queued")
            .map(|(id, _)| id.clone())
    });
    assert_eq!(job_status(&daemon, &queued), "queued");
    let metrics = daemon.get("/metrics").body;
    for line in ["toolgate_jobs_running 1", "toolgate_jobs_queued 1"] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
    // One running, one queued: the next call is beyond the queue.
    let refused = daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    assert_eq!(refused.status, 429, "{}", refused.body);

    let cancel = daemon.request("POST", &format!("/api/jobs/{queued}/cancel"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let answer = read_response(second).expect("the queued caller gets its answer");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = json(&answer.body);
    assert_eq!(body["cancelled"], true, "{body}");
    assert_eq!(body["status"], "cancelled");
    assert_eq!(body["execution_time"], 0.0);
    assert_eq!(job_status(&daemon, &queued), "cancelled");
    assert_eq!(
        job_status(&daemon, &running),
        "running",
        "cancelling the queued job leaves the running one alone"
    );

    // The freed queue place takes a new call, which runs once the first job ends.
    let third = send_only(env.port, "POST", "/api/tools/terrascan", Some("{}"));
    wait_for(WAIT, "the third call to queue", || {
        let list = json(&daemon.get("/api/processes/list").body);
        (list["total_count"] == 2).then_some(())
    });
    let cancel = daemon.request("POST", &format!("/api/jobs/{running}/cancel"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    assert_eq!(
        json(&read_response(first).expect("first answer").body)["cancelled"],
        true
    );
    let next = running_job(&daemon);
    assert_ne!(next, running);
    let cancel = daemon.request("POST", &format!("/api/jobs/{next}/cancel"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let body = json(&read_response(third).expect("third answer").body);
    assert_eq!(body["job_id"], next.as_str(), "{body}");
    assert!(
        body["execution_time"].as_f64().is_some_and(|t| t > 0.0),
        "{body}"
    );
}

#[test]
fn hexstrike_process_endpoints_take_the_tool_pid_as_its_mcp_client_sends_it() {
    let env = TestEnv::new("jobs-pid");
    let daemon = slow_daemon(&env, "");
    let (caller, id) = scan_running(&env, &daemon);
    let pid = wait_for(WAIT, "the running job's pid", || {
        let list = json(&daemon.get("/api/processes/list").body);
        list["active_processes"][id.as_str()]["pid"].as_u64()
    });
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the pid is a live process");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("tools/terrascan"),
        "pid {pid} is the tool: {:?}",
        String::from_utf8_lossy(&cmdline)
    );

    let status = json(&daemon.get(&format!("/api/processes/status/{pid}")).body);
    assert_eq!(status["process"]["job_id"], id.as_str(), "{status}");
    // A pid that is not a live job's tool names nothing: no arbitrary process is reachable.
    for other in [
        "1",
        &std::process::id().to_string(),
        &daemon.pid().to_string(),
        "0",
    ] {
        let refused = daemon.request("POST", &format!("/api/processes/terminate/{other}"), None);
        assert_eq!(refused.status, 404, "{other}: {}", refused.body);
        assert_eq!(json(&refused.body)["success"], false);
    }
    assert_eq!(job_status(&daemon, &id), "running");

    let terminate = daemon.request("POST", &format!("/api/processes/terminate/{pid}"), None);
    assert_eq!(terminate.status, 200, "{}", terminate.body);
    assert!(
        json(&terminate.body)["message"]
            .as_str()
            .is_some_and(|m| m.contains(&id)),
        "{}",
        terminate.body
    );
    let answer = json(&read_response(caller).expect("answer").body);
    assert_eq!(answer["cancelled"], true, "{answer}");
    assert_eq!(
        daemon
            .request("POST", &format!("/api/processes/terminate/{pid}"), None)
            .status,
        404,
        "the job has ended"
    );
}

#[test]
fn with_cancel_on_disconnect_off_a_caller_going_away_leaves_its_job_running() {
    let env = TestEnv::new("jobs-keep");
    let daemon = slow_daemon(&env, "cancel_on_disconnect = false");
    let (caller, id) = scan_running(&env, &daemon);
    drop(caller);
    // The daemon notices a closed connection within milliseconds; give it ample time.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(job_status(&daemon, &id), "running");
    assert!(!sleepers(&env).is_empty(), "the tool still runs");
    let cancel = daemon.request("POST", &format!("/api/jobs/{id}/cancel"), None);
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    wait_for(WAIT, "the job to be recorded cancelled", || {
        (job_status(&daemon, &id) == "cancelled").then_some(())
    });
}
