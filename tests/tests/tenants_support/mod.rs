//! What the multi-tenant black-box tests share: access keys made by the real
//! `toolgate token new`, `[[tenants]]` entries, and authenticated calls.

#![allow(dead_code)] // each test file uses its own part of it

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use std::time::Duration;

use toolgate_tests::{
    Daemon, Response, TestEnv, repo_root, request_with, toolgate_binary, wait_for,
};

/// A key printed by `toolgate token new`.
pub struct Key {
    pub id: String,
    pub secret: String,
    pub snippet: String,
}

impl Key {
    pub fn bearer(&self) -> String {
        format!("Bearer {}:{}", self.id, self.secret)
    }

    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.id, self.secret))
        )
    }
}

/// Runs `toolgate token new TENANT` and reads the id, the secret and the lines to paste.
pub fn new_key(tenant: &str) -> Key {
    let output = Command::new(toolgate_binary())
        .args(["token", "new", tenant])
        .output()
        .expect("run toolgate token new");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let field = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no {label:?} in {text}"))
    };
    let snippet_start = text.find("# access key").expect("config lines");
    Key {
        id: field("access key id:"),
        secret: field("secret:"),
        snippet: text[snippet_start..].to_string(),
    }
}

/// One `[[tenants]]` entry for `id` reading the workspace, with these keys and extra lines
/// (e.g. quotas).
pub fn tenant(env: &TestEnv, id: &str, keys: &[&Key], extra: &str) -> String {
    tenant_reading(env, id, keys, &[env.workspace()], extra)
}

pub fn call(daemon: &Daemon, method: &str, path: &str, auth: &[(&str, &str)]) -> Response {
    request_with(daemon.port, method, path, auth, None)
}

pub fn json(response: &Response) -> Value {
    serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.body))
}

/// One `[[tenants]]` entry for `id` reading only `dirs` (none: it reads no directory of the
/// host), writing under `<env>/out/<id>`, with these keys and extra lines.
pub fn tenant_reading(
    env: &TestEnv,
    id: &str,
    keys: &[&Key],
    dirs: &[std::path::PathBuf],
    extra: &str,
) -> String {
    let keys: String = keys.iter().map(|key| key.snippet.clone()).collect();
    let dirs: Vec<String> = dirs
        .iter()
        .map(|dir| format!("{:?}", dir.display().to_string()))
        .collect();
    format!(
        "[[tenants]]\nid = \"{id}\"\ndisplay_name = \"Team {id}\"\n\
         allowed_tools = [\"terrascan\", \"prowler\"]\nallowed_dirs = [{dirs}]\n\
         output_root = {out:?}\n{extra}\n{keys}\n",
        dirs = dirs.join(", "),
        out = env.root.join(format!("out/{id}")).display().to_string(),
    )
}

/// Sends a tool call as `auth` and reads the JSON answer.
pub fn run_tool(daemon: &Daemon, tool: &str, auth: &[(&str, &str)], body: &str) -> Response {
    request_with(
        daemon.port,
        "POST",
        &format!("/api/tools/{tool}"),
        auth,
        Some(body),
    )
}

/// JSON:API's media type, which the IaC scan API speaks.
pub const JSON_API: &str = "application/vnd.api+json";

/// `POST /iac/v2/scans` as `auth`; returns (scan id, upload path with its signed query).
pub fn create_scan(daemon: &Daemon, auth: &str) -> (String, String) {
    let body = serde_json::json!({"data": {"type": "async-scan", "attributes": {
        "assetName": "tenant-test", "assetType": "IaC-API",
    }}});
    let created = request_with(
        daemon.port,
        "POST",
        "/iac/v2/scans",
        &[("Authorization", auth), ("Content-Type", JSON_API)],
        Some(&body.to_string()),
    );
    assert_eq!(created.status, 201, "create: {}", created.body);
    let document = json(&created);
    let id = document["data"]["id"]
        .as_str()
        .expect(".data.id")
        .to_string();
    let url = document["data"]["links"]["url"]
        .as_str()
        .expect(".data.links.url");
    let path = &url[url.find("/iac/v2/uploads/").expect("upload path")..];
    (id, path.to_string())
}

pub fn upload(daemon: &Daemon, path: &str, auth: &[(&str, &str)]) -> Response {
    let template = std::fs::read_to_string(repo_root().join("examples/terraform/aws_ami/main.tf"))
        .expect("read the example template");
    request_with(daemon.port, "PUT", path, auth, Some(&template))
}

pub fn initiate(daemon: &Daemon, id: &str, auth: &str) -> Response {
    let body = serde_json::json!({"data": {"id": id, "attributes": {"templateType": "tf"}}});
    request_with(
        daemon.port,
        "POST",
        &format!("/iac/v2/scans/{id}"),
        &[("Authorization", auth), ("Content-Type", JSON_API)],
        Some(&body.to_string()),
    )
}

/// Creates, uploads and initiates a scan as `auth`, and waits for it to end.
pub fn finished_scan(daemon: &Daemon, auth: &str) -> String {
    let (id, path) = create_scan(daemon, auth);
    let uploaded = upload(daemon, &path, &[]);
    assert_eq!(uploaded.status, 200, "upload: {}", uploaded.body);
    let queued = initiate(daemon, &id, auth);
    assert_eq!(queued.status, 200, "initiate: {}", queued.body);
    wait_for(Duration::from_secs(60), "the scan to end", || {
        let status = call(
            daemon,
            "GET",
            &format!("/iac/v2/scans/{id}/status"),
            &[("Authorization", auth)],
        );
        assert_eq!(status.status, 200, "{}", status.body);
        let state = json(&status)["data"]["attributes"]["status"]
            .as_str()
            .map(str::to_string);
        state.filter(|state| state != "processing")
    });
    id
}
