//! End to end with the real scanners from PyPI (issue #17): the real daemon runs a pip-installed
//! checkov and prowler configured by `binary` alone, under its real sandbox (Landlock included),
//! so what the host works out from a virtual environment is exercised as a user meets it.
//!
//! The scanners live in virtual environments under `target/` that `just real-scanners` installs
//! (pinned in the justfile). In CI (`CI` set, as `.ci/run` does) a missing one FAILS these tests;
//! elsewhere they skip with a loud message saying what to run.
//!
//! - checkov scans `tests/fixtures/iac/` (copied from the shared fixtures, see its README);
//! - prowler scans a moto server on loopback started here, seeded with a public bucket, an IAM
//!   user with a console password and a security group open to the world.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    Daemon, free_port, plugin_subset, repo_root, toolgate_binary, try_request_within, wait_for,
};

/// Longest a real scan may take through the daemon: checkov over the fixtures takes ~5-10 s,
/// prowler over s3 and iam against moto ~30 s; both slower on a loaded CI machine.
const SCAN_TIMEOUT: Duration = Duration::from_secs(240);
/// How long moto's server may take to answer after start.
const MOTO_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether this run is CI, where these tests are required (`.ci/run` sets `CI=1`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "0" && value != "false")
}

/// `target/venv-<venv>/bin/<program>`, or `None` (after a loud message) when it is not
/// installed outside CI; in CI a missing one fails the test.
fn installed(venv: &str, program: &str) -> Option<PathBuf> {
    let path = repo_root().join(format!("target/venv-{venv}/bin/{program}"));
    if path.is_file() {
        return Some(path);
    }
    let message = format!(
        "{} is missing: run `just real-scanners` (it installs the pinned checkov, prowler and moto \
         under target/)",
        path.display()
    );
    assert!(!in_ci(), "{message}; these tests are required in CI");
    eprintln!("\n!!!!! SKIPPED (not in CI): {message} !!!!!\n");
    None
}

/// A throwaway directory for one daemon; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path =
            std::env::temp_dir().join(format!("toolgate-real-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("mkdir");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the daemon on `tools_toml` (the `[tools.*]` sections) with the workspace
/// `allowed_dir` and only `plugins` loaded, with `env` added to its environment.
fn start_daemon(
    scratch: &Path,
    plugins: &[&str],
    allowed_dir: &Path,
    tools_toml: &str,
    env: &[(&str, String)],
) -> Daemon {
    let port = free_port();
    let plugin_dir = plugin_subset(&format!("plugins-for-real-{}", plugins.join("-")), plugins);
    let config = scratch.join("toolgate.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\n\
             data_dir = {data:?}\n\
             plugins_dir = {plugin_dir:?}\n\
             log_format = \"json\"\n\
             [sandbox]\n\
             allowed_dirs = [{allowed_dir:?}]\n\
             timeout_secs = {timeout}\n\
             {tools_toml}\n",
            data = scratch.join("data").display().to_string(),
            plugin_dir = plugin_dir.display().to_string(),
            allowed_dir = allowed_dir.display().to_string(),
            timeout = SCAN_TIMEOUT.as_secs(),
        ),
    )
    .expect("write config");
    let mut serve = Command::new(toolgate_binary());
    serve
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(repo_root());
    for (name, value) in env {
        serve.env(name, value);
    }
    Daemon::spawn(serve, port, &scratch.join("daemon.log"))
}

fn scan(daemon: &Daemon, tool: &str, params: &str) -> Value {
    let path = format!("/api/tools/{tool}");
    let response = try_request_within(daemon.port, "POST", &path, Some(params), SCAN_TIMEOUT)
        .unwrap_or_else(|e| panic!("POST {path}: {e}; log:\n{}", daemon.log()));
    assert_eq!(
        response.status,
        200,
        "{}\nlog:\n{}",
        response.body,
        daemon.log()
    );
    serde_json::from_str(&response.body).expect("JSON answer")
}

fn json(daemon: &Daemon, path: &str) -> Value {
    let response = daemon.get(path);
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    serde_json::from_str(&response.body).expect("JSON")
}

/// The granted paths of `tool` in `/api/tools/{tool}` and in `/health`, which must agree.
fn granted_paths(daemon: &Daemon, tool: &str) -> Vec<String> {
    let info = json(daemon, &format!("/api/tools/{tool}"));
    let health = json(daemon, "/health");
    assert_eq!(
        info["read_paths"]["granted"], health["tools"][tool]["read_paths"],
        "/api/tools/{tool} and /health show the same grants"
    );
    info["read_paths"]["granted"]
        .as_array()
        .expect("granted list")
        .iter()
        .map(|grant| grant["path"].as_str().expect("path").to_string())
        .collect()
}

#[test]
fn real_checkov_finds_the_open_ssh_security_group_with_its_file_and_line() {
    let Some(checkov) = installed("checkov", "checkov") else {
        return;
    };
    let scratch = Scratch::new("checkov");
    let fixtures = repo_root()
        .join("tests/fixtures/iac")
        .canonicalize()
        .expect("fixtures");
    // `binary` alone: the virtual environment and its base Python are the host's to work out.
    let daemon = start_daemon(
        &scratch.0,
        &["checkov"],
        &fixtures,
        &format!(
            "[tools.checkov]\nbinary = {:?}\n",
            checkov.display().to_string()
        ),
        &[],
    );
    let venv = repo_root()
        .join("target/venv-checkov")
        .canonicalize()
        .expect("venv");
    let granted = granted_paths(&daemon, "checkov");
    assert!(
        granted.contains(&venv.display().to_string()),
        "the venv is granted: {granted:?}"
    );

    let answer = scan(
        &daemon,
        "checkov",
        r#"{"directory":"public_bucket_open_ssh","framework":"terraform"}"#,
    );
    assert_eq!(answer["classification"], "findings", "{answer}");
    assert_eq!(answer["return_code"], 1, "{answer}");
    let findings = answer["findings"].as_array().expect("findings");
    let open_ssh = findings
        .iter()
        .find(|f| f["rule_id"] == "CKV_AWS_24")
        .unwrap_or_else(|| panic!("no CKV_AWS_24 in {findings:#?}"));
    assert_eq!(
        open_ssh["resource_type"], "aws_security_group",
        "{open_ssh}"
    );
    assert_eq!(open_ssh["resource_name"], "web", "{open_ssh}");
    assert_eq!(open_ssh["file"], "main.tf", "{open_ssh}");
    assert_eq!(open_ssh["line"], 5, "{open_ssh}");
    // The public bucket beside it is found too (public-read ACL).
    assert!(
        findings
            .iter()
            .any(|f| f["resource_type"] == "aws_s3_bucket" && f["rule_id"] == "CKV_AWS_20"),
        "{findings:#?}"
    );

    // The same fixtures as an asynchronous IaC scan: a zip uploaded to the signed URL, scanned
    // by checkov as Terraform, its violations with the file inside the upload and the line.
    let violations = iac_scan_with_checkov(&daemon, &scratch.0, &fixtures);
    let open_ssh = violations
        .iter()
        .map(|violation| &violation["attributes"])
        .find(|attributes| attributes["ruleId"] == "CKV_AWS_24")
        .unwrap_or_else(|| panic!("no CKV_AWS_24 in {violations:#?}"));
    assert_eq!(open_ssh["resourceName"], "web", "{open_ssh}");
    assert_eq!(open_ssh["line"], 5, "{open_ssh}");
    let file = open_ssh["file"].as_str().expect("file");
    assert!(
        file.trim_start_matches('/') == "public_bucket_open_ssh/main.tf",
        "the file inside the upload: {open_ssh}"
    );
}

/// One exchange with a binary body (the tests' helper sends text).
fn exchange_bytes(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(SCAN_TIMEOUT))
        .expect("read timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/vnd.api+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(body).expect("body");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// Zips `dir`, runs it through `/iac/v2` with `tool: checkov`, and returns `.data` of results.
fn iac_scan_with_checkov(daemon: &Daemon, scratch: &Path, dir: &Path) -> Vec<Value> {
    let archive = scratch.join("fixtures.zip");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&archive).expect("zip file"));
        let mut pending = vec![dir.to_path_buf()];
        while let Some(next) = pending.pop() {
            for entry in std::fs::read_dir(&next).expect("read fixtures").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let name = path
                    .strip_prefix(dir)
                    .expect("inside")
                    .display()
                    .to_string();
                zip.start_file(name, zip::write::SimpleFileOptions::default())
                    .expect("entry");
                zip.write_all(&std::fs::read(&path).expect("read"))
                    .expect("write");
            }
        }
        zip.finish().expect("finish zip");
    }
    let created = exchange_bytes(
        daemon.port,
        "POST",
        "/iac/v2/scans",
        br#"{"data":{"type":"async-scan","attributes":{"assetName":"fixtures","assetType":"IaC-API"}}}"#,
    );
    assert_eq!(created.0, 201, "create: {}", created.1);
    let document: Value = serde_json::from_str(&created.1).expect("JSON");
    let id = document["data"]["id"].as_str().expect("id").to_string();
    let url = document["data"]["links"]["url"].as_str().expect("url");
    let path = &url[url.find("/iac/").expect("upload path")..];
    let uploaded = exchange_bytes(
        daemon.port,
        "PUT",
        path,
        &std::fs::read(&archive).expect("zip"),
    );
    assert_eq!(uploaded.0, 200, "upload: {}", uploaded.1);
    let initiate = format!(
        r#"{{"data":{{"id":"{id}","attributes":{{"templateType":"tf","tool":"checkov"}}}}}}"#
    );
    let started = exchange_bytes(
        daemon.port,
        "POST",
        &format!("/iac/v2/scans/{id}"),
        initiate.as_bytes(),
    );
    assert_eq!(started.0, 200, "initiate: {}", started.1);
    let status = wait_for(SCAN_TIMEOUT, "the checkov scan to end", || {
        let answer = json(daemon, &format!("/iac/v2/scans/{id}/status"));
        let status = answer["data"]["attributes"]["status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (status != "processing").then_some(status)
    });
    assert_eq!(status, "failed", "log:\n{}", daemon.log());
    let results = json(daemon, &format!("/iac/v2/scans/{id}/results"));
    assert!(
        results["meta"]["matchedPoliciesSummary"]["high"]
            .as_u64()
            .is_some_and(|high| high > 0),
        "{results}"
    );
    results["data"].as_array().expect("data").clone()
}

/// A moto server on loopback, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start(moto_server: &Path) -> Moto {
        let port = free_port();
        let child = Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        let mut moto = Moto { child, port };
        wait_for(MOTO_START_TIMEOUT, "moto_server to answer", || {
            if let Ok(Some(status)) = moto.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = moto.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("moto_server exited ({status}): {stderr}");
            }
            try_request_within(port, "GET", "/moto-api/", None, Duration::from_secs(5))
                .ok()
                .filter(|r| r.status == 200)
        });
        moto
    }

    /// What boto3 (and prowler) need to talk to this server and nothing else.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seeds moto with the fixtures' account: a public-read bucket, an IAM user with a console
/// password and a security group open to the world on SSH (the recipe of the shared fixtures).
const SEED: &str = r#"
import boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="toolgate-e2e-public", ACL="public-read")
iam = boto3.client("iam")
iam.create_user(UserName="alice")
iam.create_login_profile(UserName="alice", Password="Sup3r-secret-pw!")
ec2 = boto3.client("ec2")
group = ec2.create_security_group(GroupName="open-ssh", Description="open ssh")
ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
print("seeded")
"#;

#[test]
fn real_prowler_scans_a_local_aws_emulator_through_toolgate() {
    let (Some(prowler), Some(moto_server)) = (
        installed("prowler", "prowler"),
        installed("moto", "moto_server"),
    ) else {
        return;
    };
    let moto = Moto::start(&moto_server);
    let python = moto_server.with_file_name("python");
    let seeded = Command::new(&python)
        .arg("-I")
        .arg("-c")
        .arg(SEED)
        .envs(moto.env())
        .output()
        .expect("run the seeding script");
    assert!(
        seeded.status.success(),
        "seeding moto failed: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );

    let scratch = Scratch::new("prowler");
    let workspace = scratch.0.join("workspace");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    let daemon = start_daemon(
        &scratch.0,
        &["prowler"],
        &workspace,
        &format!(
            "[tools.prowler]\nbinary = {:?}\nallow_network = true\ntimeout_secs = {}\n\
             env_passthrough = [\"AWS_ENDPOINT_URL\", \"AWS_ACCESS_KEY_ID\", \
             \"AWS_SECRET_ACCESS_KEY\", \"AWS_DEFAULT_REGION\"]\n",
            prowler.display().to_string(),
            SCAN_TIMEOUT.as_secs()
        ),
        &moto.env(),
    );
    let venv = repo_root()
        .join("target/venv-prowler")
        .canonicalize()
        .expect("venv");
    assert!(granted_paths(&daemon, "prowler").contains(&venv.display().to_string()));

    let answer = scan(
        &daemon,
        "prowler",
        r#"{"provider":"aws","region":"us-east-1","additional_args":"--services s3 iam"}"#,
    );
    assert_eq!(answer["classification"], "findings", "{answer}");
    let findings = answer["findings"].as_array().expect("findings");
    let about = |prefix: &str, resource: &str| {
        findings.iter().any(|f| {
            f["rule_id"]
                .as_str()
                .is_some_and(|id| id.starts_with(prefix))
                && f["resource_name"] == resource
        })
    };
    assert!(
        about("s3_bucket_", "toolgate-e2e-public"),
        "a finding on the public bucket: {findings:#?}"
    );
    assert!(
        about("iam_user_", "alice"),
        "a finding on the user with a console password: {findings:#?}"
    );
}
