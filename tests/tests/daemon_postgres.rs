//! Black-box tests of daemons on PostgreSQL (issue #19): two real daemons share one store (a
//! throwaway cluster, or `TOOLGATE_TEST_DATABASE_URL`) and one `data_dir` (the scans' uploads
//! and the signing keys); scans created, uploaded and initiated through either daemon all end,
//! each run exactly once, and both daemons list every job.

#[path = "../../host/store/testing/pg_cluster.rs"]
#[allow(dead_code, reason = "the harness serves the store's tests too")]
mod pg_cluster;

use std::time::Duration;

use serde_json::Value;
use toolgate_tests::{
    Daemon, EnvOptions, TestEnv, install_fake_tool, repo_root, request_with, toolgate_binary,
    wait_for,
};

/// JSON:API's media type.
const JSON_API: &str = "application/vnd.api+json";

/// `database` as a `postgres://` URL, which is what `store.url` takes.
fn postgres_url(database: &pg_cluster::TestDatabase) -> String {
    let config: tokio_postgres::Config = database.url().parse().expect("test database URL");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        other => panic!("the test database is not on TCP: {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|password| format!(":{}", String::from_utf8_lossy(password)))
        .unwrap_or_default();
    let dbname = config.get_dbname().expect("database name");
    format!("postgres://{user}{password}@{host}:{port}/{dbname}")
}

/// A daemon of `env` on the shared store and `data_dir`, named `daemon_id`.
fn start(env: &TestEnv, url: &str, data_dir: &std::path::Path, daemon_id: &str) -> Daemon {
    let options = EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        ..EnvOptions::default()
    };
    let data_line = format!("data_dir = {:?}", env.data_dir().display().to_string());
    let config = env.write_config_edited(&options, |text| {
        format!(
            "{}\n[scans]\ndefault_tool = \"terrascan\"\nworkers = 2\n\
             [store]\nurl = {url:?}\ndaemon_id = {daemon_id:?}\n",
            text.replace(
                &data_line,
                &format!("data_dir = {:?}", data_dir.display().to_string())
            )
        )
    });
    Daemon::start(&config, env.port, &env.root.join("daemon.log"))
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn two_daemons_on_one_postgres_run_every_scan_exactly_once() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(database) = runtime.block_on(pg_cluster::test_database()) else {
        return;
    };
    let url = postgres_url(&database);
    let (env_a, env_b) = (TestEnv::new("pg-a"), TestEnv::new("pg-b"));
    let shared_data = env_a.data_dir();
    let daemons = [
        start(&env_a, &url, &shared_data, "daemon-a"),
        start(&env_b, &url, &shared_data, "daemon-b"),
    ];
    let template = std::fs::read_to_string(repo_root().join("examples/terraform/aws_ami/main.tf"))
        .expect("template");
    const SCANS: usize = 12;
    let mut ids = Vec::new();
    for n in 0..SCANS {
        // Created through one daemon, uploaded and initiated through the other.
        let (creator, other) = (&daemons[n % 2], &daemons[(n + 1) % 2]);
        let body = serde_json::json!({"data": {"type": "async-scan", "attributes": {
            "assetName": format!("pg-{n}"), "assetType": "IaC-API"}}});
        let created = request_with(
            creator.port,
            "POST",
            "/iac/v2/scans",
            &[("Content-Type", JSON_API)],
            Some(&body.to_string()),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        let document = json(&created.body);
        let id = document["data"]["id"].as_str().expect("id").to_string();
        let link = document["data"]["links"]["url"].as_str().expect("url");
        let path = &link[link.find("/iac/v2/uploads/").expect("upload path")..];
        let uploaded = request_with(other.port, "PUT", path, &[], Some(&template));
        assert_eq!(
            uploaded.status, 200,
            "upload through the other daemon: {}",
            uploaded.body
        );
        let initiate =
            serde_json::json!({"data": {"id": id, "attributes": {"templateType": "tf"}}});
        let queued = request_with(
            creator.port,
            "POST",
            &format!("/iac/v2/scans/{id}"),
            &[("Content-Type", JSON_API)],
            Some(&initiate.to_string()),
        );
        assert_eq!(queued.status, 200, "{}", queued.body);
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate() {
        let daemon = &daemons[n % 2];
        let state = wait_for(Duration::from_secs(60), "every scan to end", || {
            let status = request_with(
                daemon.port,
                "GET",
                &format!("/iac/v2/scans/{id}/status"),
                &[("Accept", JSON_API)],
                None,
            );
            let state = json(&status.body)["data"]["attributes"]["status"]
                .as_str()
                .map(str::to_string);
            state.filter(|state| state != "processing")
        });
        assert_eq!(
            state, "failed",
            "scan {id}: the fake terrascan reports a medium finding"
        );
    }
    // One job per scan, listed alike by both daemons (the job history is shared).
    let listed: Vec<Vec<String>> = daemons
        .iter()
        .map(|daemon| {
            let list =
                json(&request_with(daemon.port, "GET", "/api/jobs?limit=100", &[], None).body);
            let mut jobs: Vec<String> = list["jobs"]
                .as_array()
                .expect("jobs[]")
                .iter()
                .map(|job| job["id"].as_str().expect("id").to_string())
                .collect();
            jobs.sort();
            jobs
        })
        .collect();
    assert_eq!(
        listed[0].len(),
        SCANS,
        "each scan ran exactly once: {:?}",
        listed[0]
    );
    assert_eq!(listed[0], listed[1], "both daemons see every job");
    for daemon in &daemons {
        let log = daemon.log();
        assert!(log.contains("store: PostgreSQL"), "{log}");
    }
    // Both daemons appended to one audit chain; it verifies, read from the shared store.
    let config = env_a.root.join("toolgate.toml");
    let toolgate = |args: &[&str]| {
        let output = std::process::Command::new(toolgate_binary())
            .args(args)
            .output()
            .expect("run toolgate");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let config_arg = config.display().to_string();
    let (ok, said) = toolgate(&["audit", "verify", "--config", &config_arg]);
    assert!(ok && said.contains("audit trail OK"), "{said}");
    let (ok, said) = toolgate(&["store", "migrate", "--config", &config_arg]);
    assert!(ok && said.contains("up to date"), "{said}");
    let (ok, said) = toolgate(&["config", "check", &config_arg]);
    assert!(ok, "{said}");
    assert!(
        said.contains("store: PostgreSQL at") && said.contains("daemon id daemon-a"),
        "{said}"
    );
    drop(daemons);
    drop(database);
}
