//! Router-level tests (tower `oneshot`): every error path the API owns, and the OpenAPI
//! document's coverage of the routes. Paths that need real plugins and tool binaries are
//! exercised by the black-box tests in `tests/tests/daemon_*.rs`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use toolgate_model::{FinishedJob, JobStatus, NewJob};
use toolgate_store::{JobStore, SqliteStore};

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    /// The daemon's database, opened a second time: for tests that write history directly.
    store: SqliteStore,
}

fn fixture(extra_toml: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["examples", "plugins"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    let text = format!("plugins_dir = \"plugins\"\n{extra_toml}");
    let config = Config::from_toml_in(&text, dir.path()).expect("config");
    let state = crate::daemon::build_state(&config).expect("state");
    let (store, _) = SqliteStore::open(&config.database_path(), 10).expect("store");
    Fixture {
        _dir: dir,
        state,
        store,
    }
}

async fn call(
    state: &AppState,
    method: Method,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("request");
    let response = app(state.clone(), tokio_util::sync::CancellationToken::new())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (status, headers, json)
}

#[tokio::test]
async fn error_paths_answer_json_with_the_right_status() {
    let fx = fixture("[limits]\nmax_body_bytes = 64");
    let table: &[(Method, &str, &str, StatusCode, &str)] = &[
        (
            Method::POST,
            "/api/tools/nmap",
            "{}",
            StatusCode::NOT_FOUND,
            "unknown tool",
        ),
        (
            Method::POST,
            "/api/tools/nmap",
            "{not json",
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            Method::POST,
            "/api/tools/nmap",
            "[1, 2]",
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            Method::POST,
            "/api/tools/nmap",
            "\"x\"",
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            Method::POST,
            "/api/tools/nmap",
            "{\"additional_args\": \"-------------------------------------------------------------------\"}",
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 64 bytes",
        ),
        (
            Method::GET,
            "/api/tools/nmap",
            "",
            StatusCode::NOT_FOUND,
            "unknown tool",
        ),
        (
            Method::GET,
            "/api/jobs/nope",
            "",
            StatusCode::NOT_FOUND,
            "no job",
        ),
        (
            Method::POST,
            "/api/jobs/nope/cancel",
            "",
            StatusCode::NOT_FOUND,
            "no job",
        ),
        (
            Method::GET,
            "/api/jobs?status=done",
            "",
            StatusCode::BAD_REQUEST,
            "unknown job status",
        ),
        (
            Method::GET,
            "/api/jobs?limit=0",
            "",
            StatusCode::BAD_REQUEST,
            "out of range",
        ),
        (
            Method::GET,
            "/api/jobs?limit=abc",
            "",
            StatusCode::BAD_REQUEST,
            "allowed: limit (1..=1000), tool (a tool name), status (queued, running,",
        ),
        (
            Method::GET,
            "/api/jobs?bogus=1",
            "",
            StatusCode::BAD_REQUEST,
            "invalid query",
        ),
        (
            Method::GET,
            "/nope",
            "",
            StatusCode::NOT_FOUND,
            "no such endpoint",
        ),
        (
            Method::DELETE,
            "/api/jobs/x",
            "",
            StatusCode::METHOD_NOT_ALLOWED,
            "method DELETE is not allowed here",
        ),
        (
            Method::GET,
            "/api/tools/%FF",
            "",
            StatusCode::BAD_REQUEST,
            "Invalid UTF-8 in `tool`",
        ),
        (
            Method::GET,
            "/api/jobs/%C0%AF",
            "",
            StatusCode::BAD_REQUEST,
            "Invalid UTF-8 in `id`",
        ),
        (
            Method::POST,
            "/api/processes/terminate/%FF",
            "",
            StatusCode::BAD_REQUEST,
            "Invalid UTF-8 in `id`",
        ),
    ];
    for (method, uri, body, status, needle) in table {
        let (got, _, json) = call(&fx.state, method.clone(), uri, body.to_string()).await;
        assert_eq!(got, *status, "{method} {uri} {body}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(needle),
            "{method} {uri}: {error:?} lacks {needle:?}"
        );
    }
}

#[tokio::test]
async fn a_method_not_allowed_lists_the_allowed_ones() {
    let fx = fixture("");
    let (status, headers, json) = call(&fx.state, Method::PUT, "/api/tools/nmap", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{json}");
    let allow = headers[header::ALLOW].to_str().expect("ascii");
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn process_endpoints_answer_hexstrike_shapes() {
    let fx = fixture("");
    let (status, _, list) = call(&fx.state, Method::GET, "/api/processes/list", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["success"], true);
    assert_eq!(list["total_count"], 0);
    assert!(
        list["active_processes"]
            .as_object()
            .is_some_and(|m| m.is_empty())
    );
    let table = [
        (Method::GET, "/api/processes/status/x"),
        (Method::POST, "/api/processes/terminate/x"),
    ];
    for (method, uri) in table {
        let (status, _, json) = call(&fx.state, method, uri, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(json["success"], false, "{uri}");
    }
}

#[tokio::test]
async fn cancelling_a_finished_job_is_a_conflict_and_jobs_are_listed() {
    let fx = fixture("");
    let store = &fx.store;
    store
        .insert_job(
            NewJob {
                id: "done".into(),
                tool: "terrascan".into(),
                params: serde_json::json!({}),
                argv: vec!["terrascan".into()],
                command: "terrascan".into(),
                output_dir: None,
                created_at: crate::time::now_rfc3339(),
                tenant: crate::api::auth::IMPLICIT_TENANT.into(),
            },
            None,
        )
        .await
        .expect("insert");
    store
        .finish_job(
            "done".into(),
            FinishedJob {
                status: Some(JobStatus::Succeeded),
                finished_at: crate::time::now_rfc3339(),
                ..FinishedJob::default()
            },
        )
        .await
        .expect("finish");
    let (status, _, json) = call(&fx.state, Method::POST, "/api/jobs/done/cancel", "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{json}");
    let (status, _, json) = call(&fx.state, Method::GET, "/api/jobs?tool=terrascan", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["count"], 1);
    assert_eq!(json["jobs"][0]["status"], "succeeded");
    let (status, _, json) = call(&fx.state, Method::GET, "/api/jobs/done", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["id"], "done");
}

#[tokio::test]
async fn health_reports_hexstrike_fields_without_plugins() {
    let fx = fixture("");
    let (status, _, json) = call(&fx.state, Method::GET, "/health", "").await;
    assert_eq!(status, StatusCode::OK);
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
        assert!(json.get(key).is_some(), "missing {key} in {json}");
    }
    assert_eq!(json["total_tools_count"], 0);
    assert_eq!(json["status"], "degraded", "no tool is not healthy: {json}");
    assert_eq!(json["all_essential_tools_available"], false);
}

/// Every (method, path template) the issue asks for; the document must list exactly these.
const EXPECTED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/api/tools"),
    ("GET", "/api/tools/{tool}"),
    ("POST", "/api/tools/{tool}"),
    ("GET", "/api/jobs"),
    ("GET", "/api/jobs/{id}"),
    ("POST", "/api/jobs/{id}/cancel"),
    ("GET", "/api/processes/list"),
    ("GET", "/api/processes/status/{id}"),
    ("POST", "/api/processes/terminate/{id}"),
    ("POST", "/login"),
    ("GET", "/auth_token/extend"),
    ("GET", "/api/audit"),
    ("POST", "/iac/v2/scans"),
    ("GET", "/iac/v2/scans"),
    ("GET", "/iac/v2/scans/export"),
    ("POST", "/iac/v2/scans/{id}"),
    ("GET", "/iac/v2/scans/{id}/status"),
    ("GET", "/iac/v2/scans/{id}/results"),
    ("GET", "/iac/v2/scans/{id}/results/sarif"),
    ("PUT", "/iac/v2/uploads/{id}"),
    ("POST", "/admin/plugins/reload"),
];

#[tokio::test]
async fn every_route_is_served_and_documented() {
    let fx = fixture("");
    let (status, _, served) = call(&fx.state, Method::GET, "/openapi.json", "").await;
    assert_eq!(status, StatusCode::OK);
    let document = serde_json::to_value(openapi()).expect("serializable");
    assert_eq!(
        served, document,
        "/openapi.json serves the routes' document"
    );
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let mut expected: Vec<(String, String)> = EXPECTED_ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);
    // The router serves each: a concrete URI for the template is not the fallback's 404 body,
    // nor a 405.
    for (method, path) in &documented {
        let uri = path.replace("{tool}", "nmap").replace("{id}", "x");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, _, json) = call(&fx.state, method.clone(), &uri, "{}").await;
        let error = json["error"].as_str().unwrap_or_default();
        assert!(
            !error.contains("no such endpoint") && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} is not routed: {status} {json}"
        );
    }
}

#[tokio::test]
async fn requests_are_counted_by_matched_route() {
    let fx = fixture("");
    call(&fx.state, Method::GET, "/api/jobs/abc", "").await;
    call(&fx.state, Method::GET, "/api/jobs/def", "").await;
    for made_up in ["FOO1", "FOO2"] {
        let method = Method::from_bytes(made_up.as_bytes()).expect("a valid token");
        call(&fx.state, method, "/health", "").await;
    }
    let (status, headers, body) = call(&fx.state, Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/plain"))
    );
    let text = body.as_str().expect("text");
    assert!(
        text.contains(
            "toolgate_http_requests_total{method=\"GET\",route=\"/api/jobs/{id}\",status=\"404\"} 2"
        ),
        "{text}"
    );
    // A made-up method is one series, not one per method a caller invents.
    assert!(
        text.contains(
            "toolgate_http_requests_total{method=\"other\",route=\"/health\",status=\"405\"} 2"
        ),
        "{text}"
    );
    assert!(!text.contains("FOO"), "{text}");
    for family in [
        "toolgate_jobs_running",
        "toolgate_jobs_queued",
        "toolgate_job_duration_seconds",
        "toolgate_plugin_call_duration_seconds",
        "toolgate_rejections_total",
    ] {
        assert!(text.contains(&format!("# TYPE {family}")), "{family}");
    }
}

/// (peer address, expected status): the admin route answers loopback clients only, and a
/// request whose peer is unknown is refused, never assumed local.
#[tokio::test]
async fn plugin_reload_answers_loopback_clients_only() {
    let fx = fixture("");
    let table: &[(Option<&str>, StatusCode)] = &[
        (None, StatusCode::FORBIDDEN),
        (Some("192.0.2.7:5000"), StatusCode::FORBIDDEN),
        (Some("[2001:db8::1]:5000"), StatusCode::FORBIDDEN),
        (Some("127.0.0.1:5000"), StatusCode::OK),
        (Some("[::1]:5000"), StatusCode::OK),
    ];
    // Reload reads the configuration the daemon started with.
    let text = "plugins_dir = \"plugins\"\n";
    let config = Config::from_toml_in(text, fx._dir.path()).expect("config");
    fx.state.jobs.enable_reload(config);
    for (peer, expected) in table {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/admin/plugins/reload")
            .body(Body::empty())
            .expect("request");
        if let Some(peer) = peer {
            let addr: std::net::SocketAddr = peer.parse().expect("address");
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(addr));
        }
        let response = app(fx.state.clone(), tokio_util::sync::CancellationToken::new())
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), *expected, "peer {peer:?}");
    }
    assert_eq!(fx.state.jobs.plugin_set().generation(), 2);
}
