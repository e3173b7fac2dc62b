//! Black-box tests of the real `toolgate` binary: tool calls in HexStrike's shape, every
//! request error the API promises, and the self-description endpoints.

use serde_json::Value;
use toolgate_tests::{Daemon, EnvOptions, TestEnv, install_fake_tool};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn with_fake_tools(env: &TestEnv) -> EnvOptions {
    EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        prowler: Some(install_fake_tool(&env.tools_dir(), "prowler")),
        ..EnvOptions::default()
    }
}

/// The HexStrike MCP client sends every field, empty strings included.
const HEXSTRIKE_TERRASCAN_BODY: &str = r#"{"scan_type":"all","iac_dir":"terraform","policy_type":"","output_format":"json","severity":"","additional_args":""}"#;
const HEXSTRIKE_PROWLER_BODY: &str = r#"{"provider":"aws","profile":"default","region":"","checks":"","output_dir":"/tmp/prowler_output","output_format":"json","additional_args":""}"#;

/// The HexStrike client's terrascan call; its 200 body.
fn hexstrike_terrascan_call(daemon: &Daemon) -> Value {
    let response = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some(HEXSTRIKE_TERRASCAN_BODY),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    json(&response.body)
}

#[test]
fn terrascan_call_in_hexstrike_shape_returns_findings_and_is_recorded() {
    let env = TestEnv::new("api-terrascan");
    let daemon = env.start(&with_fake_tools(&env));
    let body = hexstrike_terrascan_call(&daemon);
    // HexStrike's fields.
    for key in [
        "stdout",
        "stderr",
        "return_code",
        "success",
        "timed_out",
        "partial_results",
        "execution_time",
        "timestamp",
        "command",
    ] {
        assert!(body.get(key).is_some(), "missing {key}: {body}");
    }
    assert_eq!(
        body["return_code"], 3,
        "fake terrascan exits 3 = violations found"
    );
    assert_eq!(body["success"], true, "exit 3 is a completed scan: {body}");
    assert_eq!(body["timed_out"], false);
    assert_eq!(body["partial_results"], false);
    assert_eq!(body["classification"], "findings");
    assert_eq!(body["summary"]["medium"], 1);
    assert_eq!(body["summary"]["total"], 1);
    assert_eq!(body["findings"][0]["rule_id"], "AC_AWS_0001");
    assert!(
        body["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("violations"))
    );
    let workspace = env.workspace().canonicalize().expect("workspace");
    let command = body["command"].as_str().expect("command");
    assert!(command.contains("scan"), "{command}");
    assert!(
        command.contains(&workspace.join("terraform").display().to_string()),
        "{command}"
    );
    assert!(body["sandbox"].is_object(), "{body}");
    // The job is in the history with its output.
    let id = body["job_id"].as_str().expect("job_id");
    let job = json(&daemon.get(&format!("/api/jobs/{id}")).body);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["exit_code"], 3);
    assert_eq!(job["tool"], "terrascan");
    assert!(
        job["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("violations"))
    );
    let list = json(
        &daemon
            .get("/api/jobs?tool=terrascan&status=succeeded&limit=5")
            .body,
    );
    assert_eq!(list["jobs"][0]["id"], id);
}

#[test]
fn prowler_with_the_reference_default_output_dir_gets_its_own_job_directory() {
    let env = TestEnv::new("api-prowler");
    let daemon = env.start(&with_fake_tools(&env));
    let response = daemon.request("POST", "/api/tools/prowler", Some(HEXSTRIKE_PROWLER_BODY));
    assert_eq!(response.status, 200, "{}", response.body);
    let body = json(&response.body);
    let output_dir = body["output_directory"].as_str().expect("output_directory");
    let output_root = env.output_root().canonicalize().expect("output root");
    assert!(
        output_dir.starts_with(&output_root.display().to_string()),
        "{output_dir} is not under {}",
        output_root.display()
    );
    assert_ne!(output_dir, "/tmp/prowler_output");
    assert_eq!(body["classification"], "findings", "{body}");
    assert!(
        body["summary"]["total"].as_u64().is_some_and(|n| n >= 1),
        "{body}"
    );
    assert!(
        std::fs::read_dir(output_dir)
            .expect("output dir exists")
            .count()
            >= 1
    );
}

#[test]
fn request_errors_are_json_with_the_promised_status() {
    let env = TestEnv::new("api-errors");
    let mut options = with_fake_tools(&env);
    options.limits = "max_body_bytes = 2048".into();
    let daemon = env.start(&options);
    let huge = format!("{{\"additional_args\": \"{}\"}}", "x".repeat(4096));
    let table: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("POST", "/api/tools/nmap", Some("{}"), 404, "unknown tool"),
        ("GET", "/api/tools/nmap", None, 404, "unknown tool"),
        (
            "POST",
            "/api/tools/terrascan",
            Some("{\"iac_dir\": "),
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/api/tools/terrascan",
            Some("[]"),
            400,
            "JSON object",
        ),
        (
            "POST",
            "/api/tools/terrascan",
            Some(&huge),
            413,
            "larger than the limit",
        ),
        (
            "POST",
            "/api/tools/terrascan",
            Some("{\"iac_dir\": \"/etc\"}"),
            400,
            "outside the allowed directories",
        ),
        (
            "POST",
            "/api/tools/terrascan",
            Some("{\"scan_type\": \"everything\"}"),
            400,
            "invalid parameters",
        ),
        (
            "POST",
            "/api/tools/prowler",
            Some("{\"output_dir\": \"/etc/cron.d\"}"),
            400,
            "invalid parameters for prowler",
        ),
        (
            "GET",
            "/api/jobs/00000000-0000-0000-0000-000000000000",
            None,
            404,
            "no job",
        ),
        ("POST", "/api/jobs/nope/cancel", None, 404, "no job"),
        (
            "GET",
            "/api/jobs?status=bogus",
            None,
            400,
            "unknown job status",
        ),
        ("GET", "/does/not/exist", None, 404, "no such endpoint"),
    ];
    for (method, path, body, status, needle) in table {
        let response = daemon.request(method, path, body);
        assert_eq!(
            response.status, status,
            "{method} {path}: {}",
            response.body
        );
        let error = json(&response.body);
        let message = error["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {error}"));
        assert!(
            message.contains(needle),
            "{method} {path}: {message:?} lacks {needle:?}"
        );
    }
    // Refusals name the field: the plugin's checks, and the host's check of the plan, traced
    // back to the parameter the refused path came from.
    for (tool, body, field) in [
        ("prowler", "{\"output_dir\": \"/etc/cron.d\"}", "output_dir"),
        ("terrascan", "{\"iac_dir\": \"/etc\"}", "iac_dir"),
        (
            "terrascan",
            "{\"iac_dir\": \"terraform/../../..\"}",
            "iac_dir",
        ),
    ] {
        let answer = json(
            &daemon
                .request("POST", &format!("/api/tools/{tool}"), Some(body))
                .body,
        );
        let errors = answer["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{body}: {answer}");
        assert_eq!(errors[0]["field"], field, "{body}: {answer}");
        assert!(
            errors[0]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty()),
            "{body}: {answer}"
        );
    }
    // Field errors name the field.
    let response = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some("{\"scan_type\": \"everything\", \"severity\": \"extreme\"}"),
    );
    let body = json(&response.body);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"scan_type") && fields.contains(&"severity"),
        "{body}"
    );
    // Refused plans leave no directories behind.
    let leftovers = std::fs::read_dir(env.output_root()).map_or(0, |dir| dir.count());
    assert_eq!(leftovers, 0, "refused requests left output directories");
    // Nothing crashed: the daemon still answers.
    assert_eq!(daemon.get("/health").status, 200);
}

#[test]
fn a_missing_binary_is_503_naming_the_config_key() {
    let env = TestEnv::new("api-503");
    let daemon = env.start(&EnvOptions::default());
    let response = daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    assert_eq!(response.status, 503, "{}", response.body);
    let message = json(&response.body)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("tools.terrascan.binary"), "{message}");
    let health = json(&daemon.get("/health").body);
    assert_eq!(health["tools_status"]["terrascan"], false);
    assert_eq!(health["all_essential_tools_available"], false);
    let tool = json(&daemon.get("/api/tools/terrascan").body);
    assert_eq!(tool["available"], false);

    // Bad parameters are reported as such even while the tool is not installed.
    let invalid = daemon.request(
        "POST",
        "/api/tools/terrascan",
        Some(r#"{"scan_type":"all; rm -rf /"}"#),
    );
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    assert_eq!(json(&invalid.body)["errors"][0]["field"], "scan_type");
}

#[test]
fn health_tools_openapi_and_metrics_describe_the_daemon() {
    let env = TestEnv::new("api-meta");
    let daemon = env.start(&with_fake_tools(&env));
    let health = json(&daemon.get("/health").body);
    for key in [
        "status",
        "message",
        "version",
        "tools_status",
        "all_essential_tools_available",
        "total_tools_available",
        "total_tools_count",
        "uptime",
        "plugins",
        "skipped_plugins",
        "sandbox",
    ] {
        assert!(health.get(key).is_some(), "missing {key}: {health}");
    }
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["tools_status"]["terrascan"], true);
    assert_eq!(health["tools_status"]["prowler"], true);
    assert_eq!(health["total_tools_count"], 2);

    let tools = json(&daemon.get("/api/tools").body);
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["prowler", "terrascan"]);
    let terrascan = json(&daemon.get("/api/tools/terrascan").body);
    assert_eq!(terrascan["available"], true);
    assert!(terrascan["params_schema"].is_object());
    assert!(
        terrascan["binary"]
            .as_str()
            .is_some_and(|b| b.ends_with("/terrascan"))
    );

    let document = json(&daemon.get("/openapi.json").body);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    for path in [
        "/health",
        "/metrics",
        "/openapi.json",
        "/api/tools",
        "/api/tools/{tool}",
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/cancel",
        "/api/processes/list",
        "/api/processes/status/{id}",
        "/api/processes/terminate/{id}",
    ] {
        assert!(
            document["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }

    let processes = json(&daemon.get("/api/processes/list").body);
    assert_eq!(processes["success"], true);
    assert_eq!(processes["total_count"], 0);
    assert_eq!(
        daemon
            .request("POST", "/api/processes/terminate/x", None)
            .status,
        404
    );

    daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    let metrics = daemon.get("/metrics");
    assert_eq!(metrics.status, 200);
    for family in [
        "toolgate_http_requests_total",
        "toolgate_rejections_total",
        "toolgate_jobs_finished_total",
        "toolgate_jobs_running",
        "toolgate_jobs_queued",
        "toolgate_job_duration_seconds",
        "toolgate_plugin_call_duration_seconds",
    ] {
        assert!(
            metrics.body.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{}",
            metrics.body
        );
    }
    assert!(
        metrics
            .body
            .contains("toolgate_job_duration_seconds_count{tool=\"terrascan\"} 1"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("call=\"parse\""), "{}", metrics.body);
}

#[test]
fn hexstrike_requests_with_every_field_present_and_empty_run_on_the_defaults() {
    let env = TestEnv::new("api-empty-fields");
    let daemon = env.start(&with_fake_tools(&env));
    let workspace = env.workspace().canonicalize().expect("workspace");
    let table = [
        (
            "terrascan",
            r#"{"scan_type":"","iac_dir":"","policy_type":"","output_format":"","severity":"","additional_args":""}"#,
            // iac_dir "" is HexStrike's ".": the workspace itself.
            format!("-d {}", workspace.display()),
        ),
        (
            "prowler",
            r#"{"provider":"","profile":"","region":"","checks":"","output_dir":"","output_format":"","additional_args":""}"#,
            "prowler aws ".to_string(),
        ),
    ];
    for (tool, body, in_command) in table {
        let response = daemon.request("POST", &format!("/api/tools/{tool}"), Some(body));
        assert_eq!(response.status, 200, "{tool}: {}", response.body);
        let answer = json(&response.body);
        assert_eq!(answer["success"], true, "{tool}: {answer}");
        let command = answer["command"].as_str().expect("command");
        assert!(command.contains(&in_command), "{tool}: {command}");
    }
}

#[test]
fn a_tool_reads_the_home_its_operator_prepared() {
    let env = TestEnv::new("api-home");
    // What `HOME=<dir> terrascan init` leaves behind, in miniature.
    let home = env.root.join("terrascan-home");
    let rego = home.join(".terrascan/pkg/policies/opa/rego");
    std::fs::create_dir_all(&rego).expect("mkdir");
    for name in ["a.rego", "b.rego", "c.rego", "metadata.json"] {
        std::fs::write(rego.join(name), "package accurics").expect("policy");
    }
    let options = EnvOptions {
        terrascan_extra: format!("home = {:?}", home.display().to_string()),
        ..with_fake_tools(&env)
    };
    let daemon = env.start(&options);
    let response = daemon.request("POST", "/api/tools/terrascan", Some("{}"));
    assert_eq!(response.status, 200, "{}", response.body);
    let stdout = json(&response.body)["stdout"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        stdout.contains("\"policies_validated\": 3"),
        "the tool found the operator's policies: {stdout}"
    );
    let described = json(&daemon.get("/api/tools/terrascan").body);
    let canonical = home.canonicalize().expect("canonical");
    assert_eq!(
        described["home"],
        canonical.display().to_string().as_str(),
        "{described}"
    );
}

#[test]
fn output_beyond_the_cap_is_cut_and_the_answer_says_so() {
    let env = TestEnv::new("api-truncated");
    let daemon = env.start(&EnvOptions {
        sandbox: "max_output_bytes = 256".into(),
        ..with_fake_tools(&env)
    });
    let body = hexstrike_terrascan_call(&daemon);
    assert_eq!(body["truncated"], true, "{body}");
    assert_eq!(body["partial_results"], true, "{body}");
    let stdout = body["stdout"].as_str().expect("stdout");
    assert!(
        !stdout.is_empty() && stdout.len() <= 256,
        "{} bytes",
        stdout.len()
    );
    let id = body["job_id"].as_str().expect("job id");
    let record = json(&daemon.get(&format!("/api/jobs/{id}")).body);
    assert_eq!(record["truncated"], true, "{record}");
}
