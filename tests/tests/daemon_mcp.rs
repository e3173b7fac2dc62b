//! MCP black-box tests (issue #18) with a client toolgate does not contain: the official Python
//! SDK (`mcp`, pinned in the justfile's `_mcp-venv` recipe) drives the real daemon over both
//! transports, Streamable HTTP to `/mcp` and stdio through `toolgate mcp --url ...`.
//!
//! The Python script (`tests/mcp/client.py`) only reports what it saw as JSON; the assertions
//! are here. The venv is `target/venv-mcp`, which `just test` creates; without it every test
//! here fails and says so.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, install_fake_tool, install_slow_tool,
    processes_matching, repo_root, toolgate_binary,
};

mod tenants_support;
use tenants_support::{new_key, tenant};

/// Longest one client run may take (daemon calls included).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn python() -> PathBuf {
    let python = repo_root().join("target/venv-mcp/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `just test` (its `_mcp-venv` recipe installs the pinned Python MCP SDK there)",
        python.display()
    );
    python
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Http,
    Stdio,
}

/// Runs the client script for `scenario` against `daemon` over `transport`; returns what it saw.
fn run_client(daemon: &Daemon, transport: Transport, scenario: &str) -> Value {
    run_client_as(daemon, transport, None, &[scenario])
}

/// [`run_client`] with `key` (an access key, `id:secret`) as the client's credential and the
/// scenario's arguments after its name.
fn run_client_as(
    daemon: &Daemon,
    transport: Transport,
    key: Option<&str>,
    scenario_and_arguments: &[&str],
) -> Value {
    let scenario = scenario_and_arguments.first().copied().unwrap_or_default();
    let base = format!("http://127.0.0.1:{}", daemon.port);
    let mut command = Command::new(python());
    command
        .arg("-I")
        .arg(repo_root().join("tests/mcp/client.py"));
    match transport {
        Transport::Http => command.arg("http").arg(format!("{base}/mcp")),
        Transport::Stdio => command.arg("stdio").arg(toolgate_binary()).arg(&base),
    };
    command.env_remove("TOOLGATE_KEY");
    if let Some(key) = key {
        command.env("TOOLGATE_KEY", key);
    }
    let child = command
        .args(scenario_and_arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the Python MCP client");
    let output = wait_within_client_timeout(
        child,
        daemon,
        &format!("the MCP client ({transport:?} {scenario})"),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the MCP client ({transport:?} {scenario}) failed ({}); stdout:\n{stdout}\nstderr:\n{}\ndaemon log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        daemon.log()
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("the client's report is not JSON ({error}): {stdout}"))
}

/// Waits for `child` (`what`, for the messages) to exit and returns its output; kills it and
/// fails with its stderr and the daemon's log if it runs past [`CLIENT_TIMEOUT`].
fn wait_within_client_timeout(
    mut child: std::process::Child,
    daemon: &Daemon,
    what: &str,
) -> std::process::Output {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "{what} did not finish within {CLIENT_TIMEOUT:?}; stderr:\n{}\ndaemon log:\n{}",
                String::from_utf8_lossy(&output.stderr),
                daemon.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn with_fake_tools(env: &TestEnv) -> EnvOptions {
    EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        ..EnvOptions::default()
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Everything an agent does in one session, over `transport`.
fn agent_session_over(transport: Transport) {
    let env = TestEnv::new(&format!("mcp-{transport:?}").to_lowercase());
    let daemon = env.start(&with_fake_tools(&env));
    let seen = run_client(&daemon, transport, "main");
    assert_eq!(seen["server"], "toolgate", "{seen}");

    // tools/list: each plugin tool with GET /api/tools' summary and schema, plus the job tools.
    let api = json(&daemon.get("/api/tools").body);
    let tools = &seen["tools"];
    for tool in api["tools"].as_array().expect("tools") {
        let name = tool["name"].as_str().expect("name");
        assert_eq!(tools[name]["input_schema"], tool["params_schema"], "{name}");
        assert_eq!(tools[name]["description"], tool["summary"], "{name}");
        assert_eq!(tools[name]["output_schema"]["type"], "object", "{name}");
    }
    for builtin in ["list_jobs", "get_job", "cancel_job"] {
        assert!(tools[builtin].is_object(), "{builtin} missing: {tools}");
    }

    // terrascan: findings as structured content, a summary line, progress queued/running/done.
    let terrascan = &seen["terrascan"];
    assert_eq!(terrascan["is_error"], false, "{terrascan}");
    let text = terrascan["text"].as_str().expect("text");
    assert!(
        text.starts_with("terrascan: 1 finding (1 medium); job "),
        "{text}"
    );
    assert_eq!(
        terrascan["structured"]["findings"][0]["rule_id"],
        "AC_AWS_0001"
    );
    let progress: Vec<&str> = seen["progress"]
        .as_array()
        .expect("progress")
        .iter()
        .filter_map(|p| p["message"].as_str())
        .collect();
    assert!(
        progress.first().is_some_and(|m| m.starts_with("queued"))
            && progress.last().is_some_and(|m| m.starts_with("done")),
        "{progress:?}"
    );

    // prowler ran as a job too.
    let prowler = &seen["prowler"];
    assert_eq!(prowler["structured"]["tool"], "prowler", "{prowler}");

    // A refused call names the field and echoes the bad value.
    let refused = &seen["refused"];
    assert_eq!(refused["is_error"], true, "{refused}");
    let text = refused["text"].as_str().expect("text");
    assert!(
        text.contains("- iac_dir: ") && text.contains("/etc"),
        "{text}"
    );

    // The job resource is the job's record.
    let job_id = terrascan["structured"]["job_id"].as_str().expect("job id");
    assert_eq!(seen["resource"]["id"], job_id, "{seen}");
    assert_eq!(seen["resource"]["tool"], "terrascan");
    assert_eq!(seen["templates"][0], "toolgate://jobs/{id}");
}

#[test]
fn an_agent_lists_calls_is_refused_and_reads_jobs_over_streamable_http() {
    agent_session_over(Transport::Http);
}

#[test]
fn an_agent_lists_calls_is_refused_and_reads_jobs_over_stdio() {
    agent_session_over(Transport::Stdio);
}

/// A cancelled MCP request cancels its job: the tool's process is gone and the job is recorded
/// as cancelled. `cancel_on_disconnect` is off, so only the MCP cancellation can have done it.
fn cancelled_call_over(transport: Transport) {
    let env = TestEnv::new(&format!("mcp-cancel-{transport:?}").to_lowercase());
    // A distinctive duration, so the leftover check cannot see another test's sleep.
    let secs = match transport {
        Transport::Http => 3601,
        Transport::Stdio => 3602,
    };
    let options = EnvOptions {
        terrascan: Some(install_slow_tool(
            &env.tools_dir(),
            "terrascan",
            secs,
            SlowTool::Child,
        )),
        limits: "cancel_on_disconnect = false".into(),
        ..EnvOptions::default()
    };
    let daemon = env.start(&options);
    let seen = run_client(&daemon, transport, "cancel");
    assert_eq!(seen["cancelled"], true, "{seen}");
    assert!(seen.get("completed").is_none(), "{seen}");
    let needle = format!("sleep {secs}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = json(&daemon.get("/api/jobs?tool=terrascan").body);
        let status = jobs["jobs"][0]["status"].as_str().unwrap_or("").to_string();
        let leftovers = processes_matching(&needle);
        if status == "cancelled" && leftovers.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the cancel: job status {status:?}, tool processes {leftovers:?}; log:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_cancelled_call_leaves_no_tool_process_over_streamable_http() {
    cancelled_call_over(Transport::Http);
}

#[test]
fn a_cancelled_call_leaves_no_tool_process_over_stdio() {
    cancelled_call_over(Transport::Stdio);
}

/// With `[[tenants]]`, each agent sends its tenant's access key (over stdio, `toolgate mcp`
/// sends it from TOOLGATE_KEY); one tenant's job and scan are not readable by another's
/// client, as resources or with `get_job`/`get_scan`, and its own client reads them.
fn a_tenants_job_and_scan_are_not_readable_by_another_tenants_client_over(transport: Transport) {
    let env = TestEnv::new(&format!("mcp-tenants-{transport:?}").to_lowercase());
    let acme = new_key("acme");
    let beta = new_key("beta");
    let options = EnvOptions {
        tenants: tenant(&env, "acme", &[&acme], "") + &tenant(&env, "beta", &[&beta], ""),
        ..with_fake_tools(&env)
    };
    let daemon = env.start(&options);
    let credential = |key: &tenants_support::Key| format!("{}:{}", key.id, key.secret);
    let (as_acme, as_beta) = (credential(&acme), credential(&beta));

    let called = run_client_as(&daemon, transport, Some(&as_acme), &["call"]);
    let terrascan = &called["terrascan"];
    assert_eq!(terrascan["is_error"], false, "{called}");
    let job_id = terrascan["structured"]["job_id"].as_str().expect("job id");
    let scan = &called["scan"];
    assert_eq!(scan["is_error"], false, "{called}");
    let scan_id = scan["structured"]["scan_id"].as_str().expect("scan id");
    let read = ["read_job", job_id, scan_id];

    let foreign = run_client_as(&daemon, transport, Some(&as_beta), &read);
    assert!(foreign.get("resource").is_none(), "{foreign}");
    assert!(foreign["resource_error"].is_string(), "{foreign}");
    assert_eq!(foreign["get_job"]["is_error"], true, "{foreign}");
    assert!(foreign.get("scan_resource").is_none(), "{foreign}");
    assert!(foreign["scan_resource_error"].is_string(), "{foreign}");
    assert_eq!(foreign["get_scan"]["is_error"], true, "{foreign}");
    assert!(
        !foreign.to_string().contains("AC_AWS_0001"),
        "nothing of the job or the scan shows: {foreign}"
    );

    let own = run_client_as(&daemon, transport, Some(&as_acme), &read);
    assert_eq!(own["resource"]["id"], job_id, "{own}");
    assert_eq!(own["get_job"]["is_error"], false, "{own}");
    // The scan's results once it has ended (its status document before that).
    let document = &own["scan_resource"];
    let ended = document["meta"]["matchedPoliciesSummary"]["medium"] == 1;
    assert!(ended || document["data"]["id"] == scan_id, "{own}");
    assert_eq!(own["get_scan"]["is_error"], false, "{own}");
    assert!(
        !daemon.log().contains(&acme.secret),
        "the key's secret is never logged"
    );
}

#[test]
fn a_tenants_job_and_scan_are_not_readable_by_another_tenants_client_over_streamable_http() {
    a_tenants_job_and_scan_are_not_readable_by_another_tenants_client_over(Transport::Http);
}

#[test]
fn a_tenants_job_and_scan_are_not_readable_by_another_tenants_client_over_stdio() {
    a_tenants_job_and_scan_are_not_readable_by_another_tenants_client_over(Transport::Stdio);
}

/// `toolgate mcp` without a key, against a daemon with `[[tenants]]`: it stops with an error
/// that names the variable to set, instead of a bare 401.
#[test]
fn the_stdio_relay_without_a_key_says_to_set_toolgate_key() {
    use std::io::Write as _;
    let env = TestEnv::new("mcp-tenants-no-key");
    let acme = new_key("acme");
    let options = EnvOptions {
        tenants: tenant(&env, "acme", &[&acme], ""),
        ..with_fake_tools(&env)
    };
    let daemon = env.start(&options);
    let mut relay = Command::new(toolgate_binary())
        .args(["mcp", "--url", &format!("http://127.0.0.1:{}", daemon.port)])
        .env_remove("TOOLGATE_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn toolgate mcp");
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mut stdin = relay.stdin.take().expect("stdin");
    writeln!(stdin, "{initialize}").expect("send initialize");
    let output = wait_within_client_timeout(relay, &daemon, "toolgate mcp");
    drop(stdin);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(stderr.contains("set TOOLGATE_KEY"), "{stderr}");
}
