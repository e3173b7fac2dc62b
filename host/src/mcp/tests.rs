//! In-process tests of `/mcp` through the real router (tower `oneshot`) and rmcp's Streamable
//! HTTP transport: tools/list against the catalog, a call of the fake terrascan, refused and
//! unknown calls, job resources, and the transport's refusals (Origin, session, size, JSON).
//!
//! The calls that run a tool need the plugins (`just build-plugins`) and the fake tool binary
//! (`cargo build -p toolgate-tests --bin toolgate-fake-tool`); `just test` builds both first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::api::auth::IMPLICIT_TENANT;
use crate::api::{AppState, ToolInfo, app};
use crate::config::Config;

const PROTOCOL_VERSION: &str = "2025-11-25";

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
}

/// The repository's `target/<profile>` of this test executable (`target/<profile>/deps/<exe>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

fn plugins_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins");
    assert!(
        dir.join("terrascan.wasm").is_file(),
        "{}/terrascan.wasm is missing: run `just build-plugins` (`just test` does)",
        dir.display()
    );
    dir
}

/// A daemon state with the real plugins; terrascan is the fake tool when `installed`.
/// The fixture's audit trail, oldest record first.
async fn audit_trail(fx: &Fixture) -> Vec<toolgate_auth::audit::SealedRecord> {
    let everything = toolgate_store::AuditFilter {
        limit: 100,
        ..Default::default()
    };
    fx.state.audit.page(everything).await.expect("audit trail")
}

fn fixture(installed: bool, limits: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(workspace.join("terraform")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("tools")).expect("mkdir");
    let terrascan = dir.path().join("tools/terrascan");
    if installed {
        let fake = profile_dir().join("toolgate-fake-tool");
        assert!(
            fake.is_file(),
            "{} is missing: run `cargo build -p toolgate-tests --bin toolgate-fake-tool` (`just test` does)",
            fake.display()
        );
        std::fs::copy(&fake, &terrascan).expect("copy fake tool");
    }
    let text = format!(
        "data_dir = \"data\"\n\
         plugins_dir = {plugins:?}\n\
         [sandbox]\n\
         allowed_dirs = [{workspace:?}]\n\
         output_root = \"data/output\"\n\
         [tools.terrascan]\n\
         binary = {terrascan:?}\n\
         [tools.prowler]\n\
         binary = \"/nonexistent/prowler\"\n\
         allow_network = true\n\
         [limits]\n\
         {limits}\n",
        plugins = plugins_dir().display().to_string(),
        workspace = workspace.display().to_string(),
        terrascan = terrascan.display().to_string(),
    );
    let config = Config::from_toml_in(&text, dir.path()).expect("config");
    let state = crate::daemon::build_state(&config).expect("state");
    Fixture { _dir: dir, state }
}

/// One MCP session over the in-process router.
struct Session {
    app: Router,
    id: String,
    next_id: u64,
}

fn request(body: impl Into<Body>, session: Option<&str>, origin: Option<&str>) -> Request<Body> {
    let mut builder = Request::post("/mcp")
        .header(header::HOST, "127.0.0.1:8888")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL_VERSION);
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    if let Some(origin) = origin {
        builder = builder.header(header::ORIGIN, origin);
    }
    builder.body(body.into()).expect("request")
}

/// Posts `body`; returns the status, headers, and the JSON-RPC message that answers `id` (read
/// from the SSE stream or the JSON body; the stream is not read past it), or the raw text.
async fn post(
    app: &Router,
    request: Request<Body>,
    id: Option<u64>,
) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let mut text = String::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Some(data) = frame.data_ref() {
                text.push_str(&String::from_utf8_lossy(data));
            }
            if let Some(answer) = answer_in(&text, id) {
                return Some(answer);
            }
        }
        answer_in(&text, id)
    };
    let answer = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("answer within 60 s");
    (status, headers, answer.unwrap_or(Value::String(text)))
}

/// The JSON-RPC message answering `id` (any message when `id` is None) in an SSE or JSON body.
fn answer_in(text: &str, id: Option<u64>) -> Option<Value> {
    let candidates = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .chain(std::iter::once(text));
    candidates
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| match id {
            Some(id) => message["id"] == json!(id),
            None => message.is_object(),
        })
}

impl Session {
    async fn open(state: &AppState) -> Session {
        let app = app(state.clone(), CancellationToken::new());
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "toolgate-tests", "version": "0"}
            }
        });
        let (status, headers, answer) =
            post(&app, request(initialize.to_string(), None, None), Some(0)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            answer["result"]["serverInfo"]["name"], "toolgate",
            "{answer}"
        );
        let id = headers
            .get("mcp-session-id")
            .and_then(|value| value.to_str().ok())
            .expect("session id")
            .to_string();
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = app
            .clone()
            .oneshot(request(initialized.to_string(), Some(&id), None))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        Session {
            app,
            id,
            next_id: 1,
        }
    }

    /// Sends a request; returns the JSON-RPC answer.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (status, _, answer) = post(
            &self.app,
            request(message.to_string(), Some(&self.id), None),
            Some(id),
        )
        .await;
        assert!(status.is_success(), "{method}: {status} {answer}");
        answer
    }

    async fn call_tool(&mut self, name: &str, arguments: Value) -> Value {
        let answer = self
            .call("tools/call", json!({"name": name, "arguments": arguments}))
            .await;
        answer["result"].clone()
    }
}

fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|block| block["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn tools_list_shows_each_available_plugin_with_the_api_schema_plus_the_job_tools() {
    let fx = fixture(true, "");
    let mut session = Session::open(&fx.state).await;
    let answer = session.call("tools/list", json!({})).await;
    let tools = answer["result"]["tools"].as_array().expect("tools").clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    // prowler's binary is not installed: it is not listed.
    assert_eq!(
        names,
        [
            "terrascan",
            "list_jobs",
            "get_job",
            "cancel_job",
            "start_scan",
            "get_scan"
        ],
        "{answer}"
    );
    let catalog = fx.state.jobs.catalog();
    let api = ToolInfo::from(catalog.get("terrascan").expect("terrascan"));
    let terrascan = &tools[0];
    assert_eq!(terrascan["inputSchema"], api.params_schema);
    assert_eq!(terrascan["description"], api.summary.as_str());
    assert_eq!(terrascan["outputSchema"]["type"], "object");
}

/// `start_scan` copies a directory inside the allowed directories into a queued IaC scan that
/// the workers run; `get_scan` shows it processing, then its findings; a directory outside,
/// a bad template type and an unknown scan are tool errors naming what is wrong.
#[tokio::test]
async fn start_scan_scans_a_directory_of_the_workspace_and_get_scan_reads_its_findings() {
    let fx = fixture(true, "");
    let workspace = fx.state.jobs.read_dirs(crate::api::auth::IMPLICIT_TENANT)[0].clone();
    std::fs::write(
        workspace.join("terraform/main.tf"),
        "resource \"aws_instance\" \"web\" {}\n",
    )
    .expect("template");
    fx.state.scans.start().await.expect("scan workers");
    let mut session = Session::open(&fx.state).await;

    let started = session
        .call_tool(
            "start_scan",
            json!({"directory": "terraform", "template_type": "tf"}),
        )
        .await;
    assert_eq!(started["isError"], false, "{started}");
    let scan_id = started["structuredContent"]["scan_id"]
        .as_str()
        .expect("scan id")
        .to_string();
    let mut results = Value::Null;
    for _ in 0..200 {
        results = session.call_tool("get_scan", json!({"id": scan_id})).await;
        assert_eq!(results["isError"], false, "{results}");
        if results["structuredContent"].get("meta").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let document = &results["structuredContent"];
    assert_eq!(
        document["meta"]["matchedPoliciesSummary"]["medium"], 1,
        "{results}"
    );
    assert_eq!(document["data"][0]["attributes"]["policyId"], "AC_AWS_0001");
    assert!(
        text_of(&results).contains("failed; 1 findings"),
        "{results}"
    );
    // The same results document is the resource toolgate://scans/{id}; an unknown scan is the
    // resource-not-found error.
    let read = session
        .call(
            "resources/read",
            json!({"uri": format!("toolgate://scans/{scan_id}")}),
        )
        .await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "application/json", "{read}");
    let resource: Value =
        serde_json::from_str(contents["text"].as_str().expect("text")).expect("document JSON");
    assert_eq!(&resource, document, "{read}");
    let missing = session
        .call(
            "resources/read",
            json!({"uri": "toolgate://scans/0190a0b0-0000-7000-8000-000000000000"}),
        )
        .await;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");

    let outside = std::env::temp_dir();
    let refusals = [
        (
            json!({"directory": outside.display().to_string(), "template_type": "tf"}),
            "not inside the allowed directories",
        ),
        (
            json!({"directory": "terraform", "template_type": "helm"}),
            "template_type",
        ),
        (
            json!({"directory": "terraform", "template_type": "tf", "tool": "prowler"}),
            "prowler",
        ),
        (json!({"template_type": "tf"}), "directory"),
    ];
    for (arguments, named) in refusals {
        let refused = session.call_tool("start_scan", arguments.clone()).await;
        assert_eq!(refused["isError"], true, "{arguments}: {refused}");
        assert!(text_of(&refused).contains(named), "{arguments}: {refused}");
    }
    let unknown = session
        .call_tool(
            "get_scan",
            json!({"id": "0190a0b0-0000-7000-8000-000000000000"}),
        )
        .await;
    assert_eq!(unknown["isError"], true, "{unknown}");
    assert!(text_of(&unknown).contains("no scan"), "{unknown}");
    fx.state.scans.shutdown().await;
}

#[tokio::test]
async fn calling_the_fake_terrascan_returns_findings_a_summary_and_a_readable_job() {
    let fx = fixture(true, "");
    let mut session = Session::open(&fx.state).await;
    let result = session
        .call_tool("terrascan", json!({"iac_dir": "terraform"}))
        .await;
    let text = text_of(&result);
    assert_eq!(result["isError"], false, "{result}");
    assert!(
        text.starts_with("terrascan: 1 finding (1 medium); job "),
        "{text}"
    );
    let report = &result["structuredContent"];
    assert_eq!(report["findings"][0]["rule_id"], "AC_AWS_0001", "{report}");
    assert_eq!(report["summary"]["total"], 1);
    let job_id = report["job_id"].as_str().expect("job id").to_string();
    assert_eq!(report["resource"], format!("toolgate://jobs/{job_id}"));

    let read = session
        .call(
            "resources/read",
            json!({"uri": format!("toolgate://jobs/{job_id}")}),
        )
        .await;
    let contents = &read["result"]["contents"][0];
    assert_eq!(contents["mimeType"], "application/json", "{read}");
    let record: Value =
        serde_json::from_str(contents["text"].as_str().expect("text")).expect("record JSON");
    assert_eq!(record["id"], job_id.as_str());
    assert_eq!(record["tool"], "terrascan");

    let got = session.call_tool("get_job", json!({"id": job_id})).await;
    assert_eq!(got["structuredContent"]["id"], job_id.as_str(), "{got}");
    let listed = session.call_tool("list_jobs", json!({"limit": 5})).await;
    assert_eq!(listed["structuredContent"]["count"], 1, "{listed}");
    let cancel = session.call_tool("cancel_job", json!({"id": job_id})).await;
    assert_eq!(cancel["isError"], true, "{cancel}");
    assert!(text_of(&cancel).contains("already ended"), "{cancel}");

    let templates = session.call("resources/templates/list", json!({})).await;
    assert_eq!(
        templates["result"]["resourceTemplates"][0]["uriTemplate"],
        "toolgate://jobs/{id}"
    );
    assert_eq!(
        templates["result"]["resourceTemplates"][1]["uriTemplate"],
        "toolgate://scans/{id}"
    );
    let missing = session
        .call("resources/read", json!({"uri": "toolgate://jobs/nope"}))
        .await;
    assert_eq!(missing["error"]["code"], -32002, "{missing}");

    // Each call that ran, cancelled or read a result left one audit record; list_jobs none.
    let trail = audit_trail(&fx).await;
    let seen: Vec<(String, String, Option<String>)> = trail
        .iter()
        .map(|sealed| {
            let record = &sealed.record;
            (
                record.action.as_str().to_string(),
                format!("{:?}", record.decision).to_lowercase(),
                record.tool.clone(),
            )
        })
        .collect();
    let expected = [
        ("run", "allowed", Some("terrascan")),
        ("read_results", "allowed", Some("terrascan")),
        ("read_results", "allowed", Some("mcp:get_job")),
        ("cancel", "denied", Some("mcp:cancel_job")),
        ("read_results", "denied", None),
    ];
    let expected: Vec<(String, String, Option<String>)> = expected
        .iter()
        .map(|(action, decision, tool)| {
            (
                action.to_string(),
                decision.to_string(),
                tool.map(str::to_string),
            )
        })
        .collect();
    assert_eq!(seen, expected);
    // The run's record was written with the job's end, with the outcome and argv the HTTP
    // API's record has.
    let run = &trail[0].record;
    assert_eq!(run.outcome, "succeeded", "{run:?}");
    assert!(!run.argv.is_empty(), "{run:?}");
    assert!(
        trail[0].record.argv.iter().any(|arg| arg == "-d"),
        "the run's record has the argv the host ran: {:?}",
        trail[0].record.argv
    );
}

#[tokio::test]
async fn a_refused_call_is_an_error_result_naming_each_field_and_its_bad_value() {
    let fx = fixture(true, "");
    let mut session = Session::open(&fx.state).await;
    let result = session
        .call_tool(
            "terrascan",
            json!({"iac_dir": "/etc", "scan_type": "everything"}),
        )
        .await;
    assert_eq!(result["isError"], true, "{result}");
    let text = text_of(&result);
    assert!(
        text.contains("- iac_dir: ") || text.contains("- scan_type: "),
        "{text}"
    );
    assert!(
        text.contains("everything") || text.contains("/etc"),
        "{text}"
    );
    // The refused run left one denied record naming the tool, as `POST /api/tools` does.
    let trail = audit_trail(&fx).await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    let record = &trail[0].record;
    assert_eq!(record.action.as_str(), "run");
    assert_eq!(format!("{:?}", record.decision).to_lowercase(), "denied");
    assert_eq!(record.tool.as_deref(), Some("terrascan"));

    let bad_args = session
        .call_tool("list_jobs", json!({"limit": 0, "bogus": 1}))
        .await;
    assert_eq!(bad_args["isError"], true, "{bad_args}");
    assert!(text_of(&bad_args).contains("allowed: limit"), "{bad_args}");
}

#[tokio::test]
async fn a_tool_that_is_not_installed_names_the_config_key() {
    let fx = fixture(false, "");
    let mut session = Session::open(&fx.state).await;
    let tools = session.call("tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(!names.contains(&"terrascan"), "{tools}");
    let result = session
        .call_tool("terrascan", json!({"iac_dir": "terraform"}))
        .await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(text_of(&result).contains("tools.terrascan"), "{result}");
}

#[tokio::test]
async fn an_unknown_tool_or_method_gets_the_spec_error() {
    let fx = fixture(true, "");
    let mut session = Session::open(&fx.state).await;
    let unknown_tool = session
        .call("tools/call", json!({"name": "nmap", "arguments": {}}))
        .await;
    assert_eq!(unknown_tool["error"]["code"], -32602, "{unknown_tool}");
    assert!(
        unknown_tool["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nmap")),
        "{unknown_tool}"
    );
    let unknown_method = session.call("tools/explode", json!({})).await;
    assert_eq!(unknown_method["error"]["code"], -32601, "{unknown_method}");
}

#[tokio::test]
async fn the_transport_refuses_foreign_origins_unknown_sessions_oversized_and_malformed_bodies() {
    let fx = fixture(true, "max_body_bytes = 4096");
    let session = Session::open(&fx.state).await;
    let list = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}).to_string();

    let (status, _, _) = post(
        &session.app,
        request(list.clone(), Some(&session.id), Some("http://evil.example")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "foreign Origin");
    let (status, _, answer) = post(
        &session.app,
        request(
            list.clone(),
            Some(&session.id),
            Some("http://127.0.0.1:8888"),
        ),
        Some(9),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "loopback Origin: {answer}");

    let (status, _, _) = post(
        &session.app,
        request(list, Some("no-such-session"), None),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown session");

    let huge = json!({"jsonrpc": "2.0", "id": 10, "method": "tools/call",
        "params": {"name": "terrascan", "arguments": {"iac_dir": "x".repeat(8192)}}});
    let (status, _, _) = post(
        &session.app,
        request(huge.to_string(), Some(&session.id), None),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "oversized body");

    let (status, _, answer) = post(
        &session.app,
        request("{not json", Some(&session.id), None),
        None,
    )
    .await;
    assert!(
        status.is_client_error(),
        "malformed JSON: {status} {answer}"
    );

    let mut wrong_version = request(
        json!({"jsonrpc": "2.0", "id": 11, "method": "tools/list"}).to_string(),
        Some(&session.id),
        None,
    );
    wrong_version.headers_mut().insert(
        "mcp-protocol-version",
        axum::http::HeaderValue::from_static("1999-01-01"),
    );
    let (status, _, answer) = post(&session.app, wrong_version, None).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unsupported protocol version: {answer}"
    );
}

#[tokio::test]
async fn an_initialize_with_an_unknown_protocol_version_gets_one_the_server_speaks() {
    let fx = fixture(true, "");
    let app = app(fx.state.clone(), CancellationToken::new());
    let initialize = json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "1999-01-01",
            "capabilities": {},
            "clientInfo": {"name": "toolgate-tests", "version": "0"}
        }
    });
    // No MCP-Protocol-Version header: none is negotiated yet.
    let mut initialize = request(initialize.to_string(), None, None);
    initialize.headers_mut().remove("mcp-protocol-version");
    let (status, _, answer) = post(&app, initialize, Some(0)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let offered = answer["result"]["protocolVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(
        offered != "1999-01-01" && !offered.is_empty(),
        "the server must answer with a version it supports: {answer}"
    );
}

/// Replaces the fixture's terrascan with a script that sleeps for `secs` seconds.
fn make_terrascan_slow(fx: &Fixture, secs: u32) {
    use std::os::unix::fs::PermissionsExt;
    let path = fx._dir.path().join("tools/terrascan");
    let _ = std::fs::remove_file(&path);
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho started\nexec sleep {secs}\n"),
    )
    .expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Starts a slow call in a session, closes the session (DELETE) once the job runs; returns
/// the fixture and the job's id.
async fn close_the_session_of_a_running_call(limits: &str) -> (Fixture, String) {
    let fx = fixture(true, limits);
    make_terrascan_slow(&fx, 3603);
    let session = Session::open(&fx.state).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "terrascan", "arguments": {"iac_dir": "terraform"}}});
    // The call's response stream is dropped at once: the call keeps running in the session.
    let response = session
        .app
        .clone()
        .oneshot(request(call.to_string(), Some(&session.id), None))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let running = async {
        loop {
            let live = fx.state.jobs.live_jobs(IMPLICIT_TENANT);
            if live
                .iter()
                .any(|job| job.status == toolgate_model::JobStatus::Running)
            {
                return live[0].job_id.clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let job_id = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the job runs");
    let delete = Request::delete("/mcp")
        .header(header::HOST, "127.0.0.1:8888")
        .header("mcp-session-id", session.id.as_str())
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .body(Body::empty())
        .expect("request");
    let response = session
        .app
        .clone()
        .oneshot(delete)
        .await
        .expect("infallible");
    assert!(response.status().is_success(), "{}", response.status());
    (fx, job_id)
}

#[tokio::test]
async fn closing_the_session_of_a_running_call_cancels_its_job_when_cancel_on_disconnect_is_set() {
    let (fx, job_id) = close_the_session_of_a_running_call("").await;
    let ended = async {
        loop {
            if let Ok(Some(job)) = fx.state.jobs.job(&job_id, IMPLICIT_TENANT).await
                && job.status == toolgate_model::JobStatus::Cancelled
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), ended)
        .await
        .expect("the job is recorded cancelled once its session is closed");
}

#[tokio::test]
async fn closing_the_session_of_a_running_call_leaves_its_job_running_when_cancel_on_disconnect_is_off()
 {
    let (fx, job_id) = close_the_session_of_a_running_call("cancel_on_disconnect = false").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let live = fx
        .state
        .jobs
        .live_job(&job_id, IMPLICIT_TENANT)
        .expect("still live");
    assert_eq!(live.status, toolgate_model::JobStatus::Running);
    assert!(
        fx.state.jobs.cancel(&job_id, IMPLICIT_TENANT),
        "cancel the leftover job"
    );
}

/// A session listening on its standalone SSE stream (`GET /mcp`) is told
/// `notifications/tools/list_changed` when the plugins are reloaded.
#[tokio::test]
async fn a_plugin_reload_tells_each_session_that_the_tool_list_changed() {
    let fx = fixture(true, "");
    let session = Session::open(&fx.state).await;
    let listen = Request::get("/mcp")
        .header(header::HOST, "127.0.0.1:8888")
        .header(header::ACCEPT, "text/event-stream")
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .header("mcp-session-id", &session.id)
        .body(Body::empty())
        .expect("request");
    let response = session
        .app
        .clone()
        .oneshot(listen)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body();

    let text = format!(
        "data_dir = \"data\"\nplugins_dir = {:?}\n[sandbox]\nallowed_dirs = [\"workspace\"]\n\
         [tools.terrascan]\n[tools.prowler]\nallow_network = true\n",
        plugins_dir().display().to_string()
    );
    let config = Config::from_toml_in(&text, fx._dir.path()).expect("config");
    fx.state.jobs.enable_reload(config);
    let report = fx.state.jobs.reload_plugins().await.expect("reload");
    assert_eq!(report.generation, 1);

    let mut seen = String::new();
    let notified = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(frame)) = stream.frame().await {
            if let Some(data) = frame.data_ref() {
                seen.push_str(&String::from_utf8_lossy(data));
            }
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(notified, Ok(true), "stream so far: {seen}");
}
