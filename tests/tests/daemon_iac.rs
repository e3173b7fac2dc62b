//! Black-box tests of the asynchronous IaC scan API (`/iac/v2`), driven the way its clients in
//! the wild drive it: `curl` with the headers CI scripts send (JSON:API on create and initiate,
//! `PUT --upload-file` with no Content-Type and no credentials, polling `.../status`), reading
//! the fields those scripts read with jq.
//!
//! The scanner is the fake terrascan: it reports one medium violation (main.tf line 5) unless a
//! scanned file says `toolgate-fake-terrascan: clean`, and takes N seconds when one says
//! `toolgate-fake-terrascan: sleep N`, so each test decides outcome and pace by what it uploads.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use toolgate_tests::{Daemon, EnvOptions, TestEnv, install_fake_tool, repo_root, wait_for};

/// A CI script polls every 4 s; tests poll faster but give a scan this long to end.
const SCAN_TIMEOUT: Duration = Duration::from_secs(60);

const JSON_API: &str = "application/vnd.api+json";

/// One exchange made with the real `curl`.
#[derive(Debug)]
struct Curl {
    status: u16,
    content_type: String,
    body: String,
}

impl Curl {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.body))
    }
}

/// Runs `curl ARGS URL`, capturing status, content type and body.
fn curl(args: &[&str], url: &str) -> Curl {
    let body_file = tempfile::NamedTempFile::new().expect("temp file");
    let output = Command::new("curl")
        .arg("-sS")
        .args(["--max-time", "60"])
        .args(["-o", &body_file.path().display().to_string()])
        .args(["-w", "%{http_code} %{content_type}"])
        .args(args)
        .arg(url)
        .output()
        .expect("run curl (install it: apt-get install -y curl)");
    assert!(
        output.status.success(),
        "curl {args:?} {url} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = String::from_utf8_lossy(&output.stdout).into_owned();
    let (status, content_type) = written.split_once(' ').unwrap_or((&written, ""));
    Curl {
        status: status.parse().expect("http code"),
        content_type: content_type.to_string(),
        body: std::fs::read_to_string(body_file.path()).unwrap_or_default(),
    }
}

/// A daemon with the fake terrascan as the default scanner, and the scan settings `scans` adds.
fn start_daemon(env: &TestEnv, scans: &str) -> Daemon {
    let options = EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        ..EnvOptions::default()
    };
    let config = env.write_config_edited(&options, |text| {
        format!("{text}\n[scans]\ndefault_tool = \"terrascan\"\n{scans}\n")
    });
    Daemon::start(&config, env.port, &env.root.join("daemon.log"))
}

fn base(daemon: &Daemon) -> String {
    format!("http://127.0.0.1:{}", daemon.port)
}

/// `POST /iac/v2/scans` as a CI script sends it; returns (id, upload URL).
fn create_scan(daemon: &Daemon, asset_name: &str, tags: Value) -> (String, String) {
    let body = json!({"data": {"type": "async-scan", "attributes": {
        "assetName": asset_name,
        "assetType": "IaC-API",
        "tags": tags,
        "scanAttributes": {"projectName": "toolgate-tests", "buildNumber": "7"},
        "failureCriteria": {"high": 1, "medium": 1, "low": 1, "operator": "or"},
    }}});
    let created = curl(
        &[
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {JSON_API}"),
            "-H",
            &format!("Accept: {JSON_API}"),
            "--data-binary",
            &body.to_string(),
        ],
        &format!("{}/iac/v2/scans", base(daemon)),
    );
    assert_eq!(created.status, 201, "create: {}", created.body);
    let document = created.json();
    let id = document["data"]["id"]
        .as_str()
        .expect(".data.id")
        .to_string();
    let url = document["data"]["links"]["url"]
        .as_str()
        .expect(".data.links.url")
        .to_string();
    assert!(
        url.starts_with(&base(daemon)),
        "the upload URL is absolute and served by the daemon: {url}"
    );
    (id, url)
}

/// `curl -X PUT --upload-file FILE URL`: no Content-Type, no credentials.
fn upload(url: &str, file: &Path) -> Curl {
    curl(
        &["-X", "PUT", "--upload-file", &file.display().to_string()],
        url,
    )
}

/// `POST /iac/v2/scans/{id}` with the initiate document; returns the raw answer.
fn initiate(daemon: &Daemon, id: &str, attributes: Value) -> Curl {
    let body = json!({"data": {"id": id, "attributes": attributes}});
    curl(
        &[
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {JSON_API}"),
            "--data-binary",
            &body.to_string(),
        ],
        &format!("{}/iac/v2/scans/{id}", base(daemon)),
    )
}

fn status_of(daemon: &Daemon, id: &str) -> Value {
    let answer = curl(
        &["-H", &format!("Accept: {JSON_API}")],
        &format!("{}/iac/v2/scans/{id}/status", base(daemon)),
    );
    assert_eq!(answer.status, 200, "status of {id}: {}", answer.body);
    answer.json()
}

/// Polls `.data.attributes.status` until it is no longer `processing`.
fn wait_until_done(daemon: &Daemon, id: &str) -> String {
    wait_for(SCAN_TIMEOUT, &format!("scan {id} to end"), || {
        let status = status_of(daemon, id)["data"]["attributes"]["status"]
            .as_str()
            .expect(".data.attributes.status")
            .to_string();
        (status != "processing").then_some(status)
    })
}

/// A zip of `files` (name, text), as `zip -r` of one folder makes it.
fn write_zip(path: &Path, files: &[(&str, &str)]) {
    let file = std::fs::File::create(path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in files {
        zip.start_file(*name, options).expect("zip entry");
        zip.write_all(text.as_bytes()).expect("zip write");
    }
    zip.finish().expect("finish zip");
}

fn sample_terraform() -> String {
    std::fs::read_to_string(repo_root().join("examples/terraform/aws_ami/main.tf"))
        .expect("read the example template")
}

fn json_api_error(answer: &Curl, status: u16) -> Value {
    assert_eq!(answer.status, status, "{}", answer.body);
    let document = answer.json();
    let errors = document["errors"].as_array().expect("errors[]");
    assert!(!errors.is_empty(), "{document}");
    assert!(document.get("data").is_none(), "errors never beside data");
    assert_eq!(errors[0]["status"], status.to_string(), "{document}");
    assert!(errors[0]["detail"].as_str().is_some_and(|d| !d.is_empty()));
    document
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_ci_script_creates_uploads_initiates_polls_and_reads_results() {
    let env = TestEnv::new("iac-flow");
    let daemon = start_daemon(&env, "");
    let templates = env.root.join("templates.zip");
    write_zip(
        &templates,
        &[
            ("main.tf", &sample_terraform()),
            ("modules/README.md", "notes"),
        ],
    );

    let (id, url) = create_scan(
        &daemon,
        "flow-asset",
        json!({"env": "dev", "team": "platform"}),
    );
    let uploaded = upload(&url, &templates);
    assert_eq!(uploaded.status, 200, "upload: {}", uploaded.body);

    // The URL is single-use; a tampered one is refused too.
    json_api_error(&upload(&url, &templates), 403);
    let tampered = url.replacen("sig=", "sig=00", 1);
    json_api_error(&upload(&tampered, &templates), 403);

    let started = initiate(
        &daemon,
        &id,
        json!({"templateType": "tf", "templateVersion": "1.5",
               "templateParameters": {"variables": {"region": "us-east-1"}}}),
    );
    assert_eq!(started.status, 200, "initiate: {}", started.body);
    assert!(started.body.is_empty(), "initiate answers an EMPTY body");
    let again = initiate(&daemon, &id, json!({"templateType": "tf"}));
    json_api_error(&again, 409);

    assert_eq!(wait_until_done(&daemon, &id), "failed");

    let results = curl(&[], &format!("{}/iac/v2/scans/{id}/results", base(&daemon)));
    assert_eq!(results.status, 200, "{}", results.body);
    let results = results.json();
    let summary = &results["meta"]["matchedPoliciesSummary"];
    for (bucket, count) in [("high", 0), ("medium", 1), ("low", 0)] {
        assert_eq!(summary[bucket].as_u64(), Some(count), "{bucket}: {results}");
    }
    let violations = results["data"].as_array().expect(".data is an array");
    assert_eq!(violations.len(), 1, "{results}");
    let violation = &violations[0]["attributes"];
    assert_eq!(violation["severity"], "medium");
    assert_eq!(violation["ruleId"], "AC_AWS_0001");
    assert_eq!(violation["file"], "main.tf");
    assert_eq!(violation["line"], 5);
    assert_eq!(violation["resourceType"], "aws_ami");
    // terrascan takes no Terraform variables: said so, never dropped silently.
    let details = results["meta"]["errorDetails"].to_string();
    assert!(details.contains("variables"), "{details}");

    let sarif = curl(
        &[],
        &format!("{}/iac/v2/scans/{id}/results/sarif", base(&daemon)),
    );
    assert_eq!(sarif.status, 200, "{}", sarif.body);
    let sarif = sarif.json();
    validate_sarif(&sarif);
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "AC_AWS_0001");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["region"]["startLine"],
        5
    );

    // A clean upload passes.
    let clean = env.root.join("clean.tf");
    std::fs::write(&clean, "# toolgate-fake-terrascan: clean\n").expect("write");
    let (clean_id, clean_url) = create_scan(&daemon, "flow-asset", json!({"env": "prod"}));
    assert_eq!(upload(&clean_url, &clean).status, 200);
    assert_eq!(
        initiate(&daemon, &clean_id, json!({"templateType": "TF"})).status,
        200
    );
    assert_eq!(wait_until_done(&daemon, &clean_id), "passed");

    // The list: filters, sort and paging, with links a script can follow.
    let list = |query: &str| {
        let answer = curl(
            &["-g", "-H", &format!("Accept: {JSON_API}")],
            &format!("{}/iac/v2/scans?{query}", base(&daemon)),
        );
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        answer.json()
    };
    let both = list("filter[assetName]=flow-asset");
    assert_eq!(both["data"].as_array().map(Vec::len), Some(2), "{both}");
    assert_eq!(both["meta"]["all"], 2, "{both}");
    assert_eq!(both["meta"]["pass"], 1, "{both}");
    assert_eq!(both["meta"]["fail"], 1, "{both}");
    let passed = list("filter[assetName]=flow-asset&filter[status]=passed");
    assert_eq!(passed["data"][0]["id"], clean_id.as_str(), "{passed}");
    let page = list("filter[assetName]=flow-asset&sort=-scanTime&page[size]=1&page[number]=1");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(
        page["data"][0]["id"],
        clean_id.as_str(),
        "newest first: {page}"
    );
    assert!(page["links"]["next"].as_str().is_some(), "{page}");
    let tagged = list("filter[tags]=env:dev");
    assert_eq!(tagged["data"].as_array().map(Vec::len), Some(1), "{tagged}");
    assert_eq!(tagged["data"][0]["id"], id.as_str(), "{tagged}");
    let bad = curl(
        &["-g"],
        &format!("{}/iac/v2/scans?filter[colour]=red", base(&daemon)),
    );
    let bad = json_api_error(&bad, 400);
    assert!(bad.to_string().contains("colour"), "names the key: {bad}");

    let csv = curl(
        &["-g"],
        &format!(
            "{}/iac/v2/scans/export?fmt=csv&filter[assetName]=flow-asset",
            base(&daemon)
        ),
    );
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let mut rows = csv::Reader::from_reader(csv.body.as_bytes());
    assert_eq!(rows.records().count(), 2, "{}", csv.body);

    let unknown = curl(
        &[],
        &format!(
            "{}/iac/v2/scans/00000000-0000-4000-8000-000000000000/status",
            base(&daemon)
        ),
    );
    json_api_error(&unknown, 404);
}

/// Validates against the official SARIF 2.1.0 schema, the copy the iac-api crate's own schema
/// test uses (provenance in its README), with the same in-memory fix of the schema's two stray
/// `]` in `language` patterns that the `jsonschema` crate refuses to compile (see
/// host/iac-api/tests/sarif_schema.rs).
fn validate_sarif(document: &Value) {
    let schema_path = repo_root().join("host/iac-api/tests/fixtures/sarif-schema-2.1.0.json");
    let text = std::fs::read_to_string(&schema_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", schema_path.display()));
    let stray = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    let escaped = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#;
    assert_eq!(
        text.matches(stray).count(),
        2,
        "the schema's two stray brackets"
    );
    let schema: Value =
        serde_json::from_str(&text.replace(stray, escaped)).expect("schema is JSON");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .expect("compile the SARIF schema");
    let problems: Vec<String> = validator
        .iter_errors(document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "invalid SARIF: {problems:#?}\n{document}"
    );
}

#[test]
fn hostile_uploads_are_refused_with_json_api_errors_and_leave_nothing() {
    let env = TestEnv::new("iac-hostile");
    let daemon = start_daemon(&env, "");
    let escape_name = format!("toolgate-zip-slip-{}", std::process::id());
    let slip = env.root.join("slip.zip");
    write_zip(
        &slip,
        &[
            ("main.tf", "ok"),
            (&format!("../../../../../../tmp/{escape_name}"), "escaped"),
        ],
    );
    let absolute = env.root.join("absolute.zip");
    write_zip(&absolute, &[(&format!("/tmp/{escape_name}"), "escaped")]);
    let symlink = env.root.join("symlink.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&symlink).expect("create"));
        zip.add_symlink(
            "passwd",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("symlink entry");
        zip.finish().expect("finish");
    }
    let junk = env.root.join("junk.bin");
    std::fs::write(&junk, [0u8, 159, 146, 150, 0, 255, 1, 2].repeat(512)).expect("write");
    let truncated = env.root.join("truncated.zip");
    write_zip(&truncated, &[("main.tf", &sample_terraform().repeat(50))]);
    let bytes = std::fs::read(&truncated).expect("read");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("truncate");
    let bomb = env.root.join("bomb.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&bomb).expect("create"));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file("zeros.tf", options).expect("entry");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..2048 {
            zip.write_all(&zeros).expect("write zeros");
        }
        zip.finish().expect("finish");
    }

    for (name, file) in [
        ("zip slip", &slip),
        ("absolute path", &absolute),
        ("symlink entry", &symlink),
        ("not an archive", &junk),
        ("truncated zip", &truncated),
        ("zip bomb", &bomb),
    ] {
        let (id, url) = create_scan(&daemon, "hostile", json!({}));
        let refused = upload(&url, file);
        assert!(
            (400..500).contains(&refused.status),
            "{name}: {} {}",
            refused.status,
            refused.body
        );
        json_api_error(&refused, refused.status);
        let scan_dir = env.data_dir().join("scans").join(&id);
        assert_eq!(
            files_under(&scan_dir),
            Vec::<PathBuf>::new(),
            "{name}: a refused upload leaves nothing"
        );
        // A scan whose upload was refused cannot be initiated.
        json_api_error(&initiate(&daemon, &id, json!({"templateType": "tf"})), 409);
    }
    assert!(
        !Path::new("/tmp").join(&escape_name).exists(),
        "nothing is written outside the scan's directory"
    );

    // A client that disconnects mid-upload leaves nothing either.
    let (id, url) = create_scan(&daemon, "hostile", json!({}));
    let path = url
        .strip_prefix(&base(&daemon))
        .expect("URL on the daemon")
        .to_string();
    let head =
        format!("PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).expect("connect");
    stream.write_all(head.as_bytes()).expect("head");
    stream
        .write_all(&vec![b'#'; 200_000])
        .expect("part of the body");
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    let scan_dir = env.data_dir().join("scans").join(&id);
    wait_for(
        Duration::from_secs(10),
        "the partial upload to be removed",
        || files_under(&scan_dir).is_empty().then_some(()),
    );
    // The URL was not used up by the failed attempt: the client can retry.
    let retry = env.root.join("retry.tf");
    std::fs::write(&retry, sample_terraform()).expect("write");
    assert_eq!(
        upload(&url, &retry).status,
        200,
        "a retry after a disconnect works"
    );
}

#[test]
fn scans_survive_sigkill_and_all_end_passed_or_failed() {
    let env = TestEnv::new("iac-sigkill");
    let mut daemon = start_daemon(&env, "workers = 1");
    let slow = env.root.join("slow.tf");
    std::fs::write(
        &slow,
        "# toolgate-fake-terrascan: sleep 2\nresource \"x\" \"y\" {}\n",
    )
    .expect("write");
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (id, url) = create_scan(&daemon, "sigkill", json!({}));
        assert_eq!(upload(&url, &slow).status, 200);
        assert_eq!(
            initiate(&daemon, &id, json!({"templateType": "tf"})).status,
            200
        );
        ids.push(id);
    }
    wait_for(Duration::from_secs(30), "a scan to be running", || {
        ids.iter()
            .any(|id| status_of(&daemon, id)["data"]["attributes"]["state"] == "running")
            .then_some(())
    });
    daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));

    let config = env.root.join("toolgate.toml");
    let daemon = Daemon::start(&config, env.port, &env.root.join("daemon-restarted.log"));
    for id in &ids {
        let status = wait_until_done(&daemon, id);
        assert!(
            status == "failed" || status == "passed",
            "scan {id} ended {status}; log:\n{}",
            daemon.log()
        );
    }
}
