//! Black-box tests of daemons on PostgreSQL (issue #19): real daemons share one store (a
//! throwaway cluster, or `TOOLGATE_TEST_DATABASE_URL`) and one `data_dir` (the scans' uploads
//! and the signing keys). Three daemons on three test hosts (network namespaces with their own
//! addresses, when the tests run as root) run 300 scans created, uploaded and read through any
//! of them, each exactly once, and every daemon lists every job; one of three killed has its
//! scans taken over; a cancel crosses daemons; tenants' job limits and request rates hold across
//! daemons; PostgreSQL stopped and restarted, or cut off, under load answers 503 meanwhile and
//! loses no scan; a SQLite install copied in by `toolgate store copy` shows the same jobs and
//! scans.

mod tenants_support;

#[path = "../../host/store/testing/pg_cluster.rs"]
#[allow(dead_code, reason = "the harness serves the store's tests too")]
mod pg_cluster;

use std::io::Write as _;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use toolgate_tests::test_host::TestHost;
use toolgate_tests::{
    Daemon, EnvOptions, SlowTool, TestEnv, install_fake_tool, install_slow_tool, read_response,
    repo_root, request_with, send_only, send_only_with, toolgate_binary, wait_for,
};

/// JSON:API's media type.
const JSON_API: &str = "application/vnd.api+json";

/// A fresh database on the test cluster and its `postgres://` URL (what `store.url` takes);
/// `None` (the test then passes after saying why) when no PostgreSQL is available outside CI.
fn shared_database() -> Option<(pg_cluster::TestDatabase, String)> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let database = runtime.block_on(pg_cluster::test_database())?;
    let url = database.postgres_url();
    Some((database, url))
}

/// A daemon of `env` on the shared store and `data_dir`, named `daemon_id`.
fn start(env: &TestEnv, url: &str, data_dir: &std::path::Path, daemon_id: &str) -> Daemon {
    let terrascan = install_fake_tool(&env.tools_dir(), "terrascan");
    start_with(env, url, data_dir, daemon_id, terrascan)
}

/// [`start`] with `terrascan` as the terrascan binary.
fn start_with(
    env: &TestEnv,
    url: &str,
    data_dir: &std::path::Path,
    daemon_id: &str,
    terrascan: std::path::PathBuf,
) -> Daemon {
    start_with_tenants(env, url, data_dir, daemon_id, terrascan, String::new())
}

/// [`start_with`] and these `[[tenants]]` entries.
fn start_with_tenants(
    env: &TestEnv,
    url: &str,
    data_dir: &std::path::Path,
    daemon_id: &str,
    terrascan: std::path::PathBuf,
    tenants: String,
) -> Daemon {
    let config = daemon_config(env, url, data_dir, daemon_id, terrascan, tenants);
    Daemon::start(&config, env.port, &env.root.join("daemon.log"))
}

/// The configuration of a daemon of `env` on the shared store `url` and `data_dir`.
fn daemon_config(
    env: &TestEnv,
    url: &str,
    data_dir: &std::path::Path,
    daemon_id: &str,
    terrascan: std::path::PathBuf,
    tenants: String,
) -> std::path::PathBuf {
    let options = EnvOptions {
        terrascan: Some(terrascan),
        tenants,
        ..EnvOptions::default()
    };
    let data_line = format!("data_dir = {:?}", env.data_dir().display().to_string());
    env.write_config_edited(&options, |text| {
        format!(
            "{}\n[scans]\ndefault_tool = \"terrascan\"\nworkers = 2\n\
             [store]\nurl = {url:?}\ndaemon_id = {daemon_id:?}\nlease_secs = 3\n",
            text.replace(
                &data_line,
                &format!("data_dir = {:?}", data_dir.display().to_string())
            )
        )
    })
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A daemon of the three-daemon test: on its own test host when this process can make them
/// (root with `ip`, as in CI), reaching PostgreSQL through a relay on the host's gateway;
/// otherwise on this machine's loopback.
struct Node {
    daemon: Daemon,
    _relay: Option<Relay>,
    host: Option<TestHost>,
}

fn start_node(
    env: &TestEnv,
    url: &str,
    data_dir: &std::path::Path,
    name: &str,
    tenants: String,
) -> Node {
    let terrascan = install_fake_tool(&env.tools_dir(), "terrascan");
    let Some(host) = TestHost::create() else {
        let daemon = start_with_tenants(env, url, data_dir, name, terrascan, tenants);
        return Node {
            daemon,
            _relay: None,
            host: None,
        };
    };
    let (before_host, after_host) = url.split_once('@').expect("url with a user");
    let (address, dbname) = after_host.split_once('/').expect("url with a database");
    let relay = Relay::start_on(host.gateway, address.to_string());
    let url = format!("{before_host}@{}:{}/{dbname}", host.gateway, relay.port);
    let config = daemon_config(env, &url, data_dir, name, terrascan, tenants);
    let listen = std::net::SocketAddr::from((host.address, env.port));
    let text = std::fs::read_to_string(&config)
        .expect("read config")
        .replace(
            &format!("listen = \"127.0.0.1:{}\"", env.port),
            &format!("listen = \"{listen}\""),
        );
    std::fs::write(&config, text).expect("write config");
    let mut serve = host.command(&toolgate_binary());
    serve
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(repo_root());
    let daemon = Daemon::spawn_at(serve, listen, &env.root.join("daemon.log"));
    Node {
        daemon,
        _relay: Some(relay),
        host: Some(host),
    }
}

/// Three daemons as three hosts (see [`Node`]) on one PostgreSQL: 300 scans created,
/// uploaded and read round-robin through them all end, each run exactly once; every daemon
/// lists every job; the audit chain they share verifies.
#[test]
fn three_daemons_on_one_postgres_run_every_scan_exactly_once() {
    let Some((database, url)) = shared_database() else {
        return;
    };
    if !TestHost::available() {
        // Written to the process's stderr itself: the harness shows `eprintln!` only on failure.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! the three daemons share this machine's loopback: test hosts (network \
             namespaces) need root and `ip` !!!!!\n"
        );
    }
    let envs = [
        TestEnv::new("pg-a"),
        TestEnv::new("pg-b"),
        TestEnv::new("pg-c"),
    ];
    let env_a = &envs[0];
    let shared_data = env_a.data_dir();
    // A daemon listening beyond loopback needs tenants: one, whose key every daemon knows.
    let key = tenants_support::new_key("acme");
    let nodes: Vec<Node> = envs
        .iter()
        .zip(["daemon-a", "daemon-b", "daemon-c"])
        .map(|(env, name)| {
            let tenant =
                tenants_support::tenant_reading(env, "acme", &[&key], &[env.workspace()], "");
            start_node(env, &url, &shared_data, name, tenant)
        })
        .collect();
    for node in nodes.iter().filter(|node| node.host.is_some()) {
        let port = node.daemon.address().port();
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "a daemon on a test host is not on this machine's loopback (port {port})"
        );
    }
    let daemons: Vec<&Daemon> = nodes.iter().map(|node| &node.daemon).collect();
    let bearer = key.bearer();
    let auth = [("Authorization", bearer.as_str())];
    let template = std::fs::read_to_string(repo_root().join("examples/terraform/aws_ami/main.tf"))
        .expect("template");
    const SCANS: usize = 300;
    let mut ids = Vec::new();
    for n in 0..SCANS {
        // Round-robin: created and initiated through one daemon, uploaded through the next.
        ids.push(submit_scan_through(
            daemons[n % 3],
            daemons[(n + 1) % 3],
            &template,
            &auth,
        ));
    }
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            ended_as(daemons[(n + 2) % 3], id, &auth),
            "failed",
            "scan {id}: the fake terrascan reports a medium finding"
        );
    }
    // One job per scan, listed alike by every daemon (the job history is shared).
    let listed: Vec<Vec<String>> = daemons
        .iter()
        .map(|daemon| {
            let list = json(&daemon.call("GET", "/api/jobs?limit=1000", &auth, None).body);
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
    assert!(
        listed.windows(2).all(|pair| pair[0] == pair[1]),
        "every daemon sees every job"
    );
    for daemon in &daemons {
        let log = daemon.log();
        assert!(log.contains("store: PostgreSQL"), "{log}");
    }
    // The daemons appended to one audit chain; it verifies, read from the shared store.
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
    drop(nodes);
    drop(database);
}

/// A TCP relay to PostgreSQL that the test can cut (every connection closed, new ones refused)
/// and restore: the network between a daemon and its store failing and coming back.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: String) -> Relay {
        Relay::start_on(std::net::Ipv4Addr::LOCALHOST, target)
    }

    /// A relay listening on `address` (a test host's gateway).
    fn start_on(address: std::net::Ipv4Addr, target: String) -> Relay {
        let listener = TcpListener::bind((address, 0)).expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut_flag, streams) = (Arc::clone(&cut), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if cut_flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut kept = streams.lock().expect("lock");
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        kept.push(clone);
                    }
                }
                drop(kept);
                for (mut from, mut to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, cut, open }
    }

    /// Closes every relayed connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().expect("lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Creates, uploads and initiates a scan through `daemon`; returns its id.
fn submit_scan(daemon: &Daemon, template: &str) -> String {
    submit_scan_through(daemon, daemon, template, &[])
}

/// Creates and initiates a scan through `creator`, uploading it through `uploader`, as `auth`.
fn submit_scan_through(
    creator: &Daemon,
    uploader: &Daemon,
    template: &str,
    auth: &[(&str, &str)],
) -> String {
    let body = serde_json::json!({"data": {"type": "async-scan", "attributes": {
        "assetName": "relay", "assetType": "IaC-API"}}});
    let with_type = [auth, &[("Content-Type", JSON_API)]].concat();
    let created = creator.call("POST", "/iac/v2/scans", &with_type, Some(&body.to_string()));
    assert_eq!(created.status, 201, "{}", created.body);
    let document = json(&created.body);
    let id = document["data"]["id"].as_str().expect("id").to_string();
    let link = document["data"]["links"]["url"].as_str().expect("url");
    let path = &link[link.find("/iac/v2/uploads/").expect("upload path")..];
    let uploaded = uploader.call("PUT", path, &[], Some(template));
    assert_eq!(uploaded.status, 200, "upload: {}", uploaded.body);
    let initiate = serde_json::json!({"data": {"id": id, "attributes": {"templateType": "tf"}}});
    let queued = creator.call(
        "POST",
        &format!("/iac/v2/scans/{id}"),
        &with_type,
        Some(&initiate.to_string()),
    );
    assert_eq!(queued.status, 200, "{}", queued.body);
    id
}

/// The scan's status once it ended.
fn ended(daemon: &Daemon, id: &str) -> String {
    ended_as(daemon, id, &[])
}

/// [`ended`], asked as `auth`.
fn ended_as(daemon: &Daemon, id: &str, auth: &[(&str, &str)]) -> String {
    let with_accept = [auth, &[("Accept", JSON_API)]].concat();
    wait_for(Duration::from_secs(60), "the scan to end", || {
        let status = daemon.call(
            "GET",
            &format!("/iac/v2/scans/{id}/status"),
            &with_accept,
            None,
        );
        if status.status != 200 {
            return None;
        }
        json(&status.body)["data"]["attributes"]["status"]
            .as_str()
            .map(str::to_string)
            .filter(|state| state != "processing")
    })
}

/// How the store goes away in [`store_away_under_load`].
enum Outage {
    /// The network between daemon and server cut (every connection closed, new ones refused)
    /// after the server ended the daemon's sessions: `direct` reaches the server past the relay.
    Cut { relay: Relay, direct: String },
    /// The server itself stopped (fast shutdown) and started again.
    Restart(pg_cluster::PrivateCluster),
}

impl Outage {
    fn begin(&mut self) {
        match self {
            Outage::Cut { relay, direct } => {
                stop_sessions(direct);
                relay.cut();
            }
            Outage::Restart(cluster) => cluster.stop(),
        }
    }

    fn end(&mut self) {
        match self {
            Outage::Cut { relay, .. } => relay.restore(),
            Outage::Restart(cluster) => cluster.restart(),
        }
    }
}

/// PostgreSQL stopped and started again under load: see [`store_away_under_load`].
#[test]
fn postgres_stopped_and_restarted_under_load_loses_no_scan() {
    let Some(cluster) = pg_cluster::PrivateCluster::start() else {
        return;
    };
    let url = cluster.postgres_url();
    store_away_under_load(&url, "pg-restart", Outage::Restart(cluster));
}

/// The network to PostgreSQL cut and restored under load: see [`store_away_under_load`].
#[test]
fn postgres_cut_off_under_load_loses_no_scan() {
    let Some((database, direct)) = shared_database() else {
        return;
    };
    let (before_host, after_host) = direct.split_once('@').expect("url with a user");
    let (address, dbname) = after_host.split_once('/').expect("url with a database");
    let relay = Relay::start(address.to_string());
    let url = format!("{before_host}@127.0.0.1:{}/{dbname}", relay.port);
    store_away_under_load(&url, "pg-relay", Outage::Cut { relay, direct });
    drop(database);
}

/// The store going away under load for longer than a scan's lease, while scans are running and
/// queued: asynchronous calls answer 503 with Retry-After, `/health` says so, what needs no
/// store still answers; once it is back, the daemon reconnects by itself and every scan ends,
/// none lost, no job left running.
fn store_away_under_load(url: &str, name: &str, mut outage: Outage) {
    let env = TestEnv::new(name);
    let daemon = start(&env, url, &env.data_dir(), name);
    // Each scan takes a second; the daemon's two workers have a queue to work through.
    let template = "# toolgate-fake-terrascan: sleep 1\nresource \"aws_ami\" \"x\" {}\n";
    let ids: Vec<String> = (0..8).map(|_| submit_scan(&daemon, template)).collect();
    wait_for(Duration::from_secs(30), "two scans running", || {
        let list =
            json(&request_with(daemon.port, "GET", "/api/jobs?status=running", &[], None).body);
        (list["count"].as_u64() == Some(2)).then_some(())
    });

    outage.begin();
    let refused = wait_for(
        Duration::from_secs(30),
        "a 503 while the store is away",
        || {
            let status = request_with(
                daemon.port,
                "GET",
                &format!("/iac/v2/scans/{}/status", ids[0]),
                &[("Accept", JSON_API)],
                None,
            );
            (status.status == 503).then_some(status)
        },
    );
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    assert!(
        refused.body.contains("store_unavailable"),
        "{}",
        refused.body
    );
    let create = serde_json::json!({"data": {"type": "async-scan", "attributes": {
        "assetName": "relay", "assetType": "IaC-API"}}});
    let not_created = request_with(
        daemon.port,
        "POST",
        "/iac/v2/scans",
        &[("Content-Type", JSON_API)],
        Some(&create.to_string()),
    );
    assert_eq!(not_created.status, 503, "{}", not_created.body);
    let health = json(&request_with(daemon.port, "GET", "/health", &[], None).body);
    assert_eq!(health["store"]["reachable"], false, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let catalog = request_with(daemon.port, "GET", "/api/tools", &[], None);
    assert_eq!(
        catalog.status, 200,
        "what needs no store answers: {}",
        catalog.body
    );
    // Away for longer than the 3 s lease.
    std::thread::sleep(Duration::from_secs(4));

    outage.end();
    for id in &ids {
        assert_eq!(ended(&daemon, id), "failed", "scan {id}");
    }
    let second = submit_scan(&daemon, template);
    assert_eq!(ended(&daemon, &second), "failed");
    let recorded = wait_for(Duration::from_secs(30), "no job left running", || {
        let list = json(&request_with(daemon.port, "GET", "/api/jobs?limit=100", &[], None).body);
        let jobs = list["jobs"].as_array().expect("jobs[]").clone();
        let unfinished: Vec<&Value> = jobs
            .iter()
            .filter(|job| matches!(job["status"].as_str(), Some("queued" | "running")))
            .collect();
        unfinished.is_empty().then_some(jobs.len())
    });
    assert!(
        recorded > ids.len(),
        "a job per scan at least, the second included"
    );
    let health = json(&request_with(daemon.port, "GET", "/health", &[], None).body);
    assert_eq!(health["store"]["backend"], "postgresql", "{health}");
    assert_eq!(health["store"]["reachable"], true, "{health}");
    drop(daemon);
}

/// One of three daemons killed (SIGKILL) with scans running on it: the other two take them
/// over once their leases run out, and every scan ends passed or failed, none twice.
#[test]
fn a_killed_daemons_scans_are_taken_over_and_each_ends_once() {
    let Some((database, url)) = shared_database() else {
        return;
    };
    let envs = [
        TestEnv::new("pg-kill-doomed"),
        TestEnv::new("pg-kill-a"),
        TestEnv::new("pg-kill-b"),
    ];
    let shared_data = envs[0].data_dir();
    let mut doomed = start(&envs[0], &url, &shared_data, "daemon-doomed");
    // Each scan takes 6 s: daemon-doomed's two workers are mid-scan when it is killed.
    let template = "# toolgate-fake-terrascan: sleep 6\nresource \"aws_ami\" \"x\" {}\n";
    let ids: Vec<String> = (0..4).map(|_| submit_scan(&doomed, template)).collect();
    wait_for(Duration::from_secs(30), "two scans running", || {
        let list =
            json(&request_with(doomed.port, "GET", "/api/jobs?status=running", &[], None).body);
        (list["count"].as_u64() == Some(2)).then_some(())
    });
    // The other two join (and take the two queued scans); then the first dies.
    let others = [
        start(&envs[1], &url, &shared_data, "daemon-a"),
        start(&envs[2], &url, &shared_data, "daemon-b"),
    ];
    doomed.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));

    for (n, id) in ids.iter().enumerate() {
        assert_eq!(ended(&others[n % 2], id), "failed", "scan {id}");
    }
    let jobs = json(&request_with(others[0].port, "GET", "/api/jobs?limit=100", &[], None).body);
    let statuses: Vec<&str> = jobs["jobs"]
        .as_array()
        .expect("jobs[]")
        .iter()
        .filter_map(|job| job["status"].as_str())
        .collect();
    let finished = statuses
        .iter()
        .filter(|status| **status != "interrupted")
        .count();
    let interrupted = statuses.len() - finished;
    assert_eq!(
        finished,
        ids.len(),
        "each scan finished exactly once: {statuses:?}"
    );
    assert_eq!(
        interrupted, 2,
        "the killed daemon's two jobs are recorded interrupted, none left running: {statuses:?}"
    );
    drop(others);
    drop(database);
}

#[test]
fn a_cancel_sent_to_one_daemon_stops_the_job_another_daemon_runs() {
    let Some((database, url)) = shared_database() else {
        return;
    };
    let (env_a, env_b) = (TestEnv::new("pg-cancel-a"), TestEnv::new("pg-cancel-b"));
    let shared_data = env_a.data_dir();
    let slow =
        |env: &TestEnv| install_slow_tool(&env.tools_dir(), "terrascan", 30, SlowTool::Child);
    let asked = start_with(&env_a, &url, &shared_data, "daemon-asked", slow(&env_a));
    let runner = start_with(&env_b, &url, &shared_data, "daemon-runner", slow(&env_b));
    let caller = send_only(
        runner.port,
        "POST",
        "/api/tools/terrascan",
        Some("{\"iac_dir\": \"terraform\"}"),
    );
    // The job runs on daemon-runner; daemon-asked sees it in the shared history.
    let job_id = wait_for(Duration::from_secs(30), "the job running", || {
        let list =
            json(&request_with(asked.port, "GET", "/api/jobs?status=running", &[], None).body);
        list["jobs"][0]["id"].as_str().map(str::to_string)
    });
    let cancel = request_with(
        asked.port,
        "POST",
        &format!("/api/jobs/{job_id}/cancel"),
        &[],
        None,
    );
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let answer = read_response(caller).expect("the runner's caller gets its answer");
    let answer = json(&answer.body);
    assert_eq!(answer["cancelled"], true, "{answer}");
    assert_eq!(answer["job_id"], job_id.as_str());
    let again = request_with(
        asked.port,
        "POST",
        &format!("/api/jobs/{job_id}/cancel"),
        &[],
        None,
    );
    assert_eq!(again.status, 409, "an ended job: {}", again.body);
    drop((asked, runner));
    drop(database);
}

/// Two tenants' running limits hold across two daemons: acme (2 at once) never has 3 running
/// anywhere, beta (1 at once) never 2, and neither tenant's jobs wait for the other's.
#[test]
fn two_tenants_concurrent_job_limits_hold_across_daemons() {
    let Some((database, url)) = shared_database() else {
        return;
    };
    let (_envs, daemons, keys) = two_daemons(
        &url,
        "quota",
        &[
            ("acme", "[tenants.quotas]\nmax_concurrent_jobs = 2"),
            ("beta", "[tenants.quotas]\nmax_concurrent_jobs = 1"),
        ],
        |env| install_slow_tool(&env.tools_dir(), "terrascan", 30, SlowTool::Child),
    );
    let bearers: Vec<String> = keys.iter().map(tenants_support::Key::bearer).collect();
    let acme = [("Authorization", bearers[0].as_str())];
    let beta = [("Authorization", bearers[1].as_str())];
    let body = Some("{\"iac_dir\": \"terraform\"}");
    // A tenant's jobs, as every daemon lists them (daemon a is asked).
    let statuses = |auth: &[(&str, &str)]| -> Vec<String> {
        let list = json(&request_with(daemons[0].port, "GET", "/api/jobs", auth, None).body);
        let mut found: Vec<String> = list["jobs"]
            .as_array()
            .expect("jobs[]")
            .iter()
            .filter_map(|job| job["status"].as_str().map(str::to_string))
            .collect();
        found.sort();
        found
    };
    // acme: two calls to daemon a, then one to daemon b: b's waits although b runs nothing.
    // beta: one call to daemon b runs at once; a second, to daemon a, waits.
    let mut callers = Vec::new();
    for (daemon, auth, expected) in [
        (&daemons[0], &acme, vec!["running"]),
        (&daemons[0], &acme, vec!["running", "running"]),
        (&daemons[1], &acme, vec!["queued", "running", "running"]),
        (&daemons[1], &beta, vec!["running"]),
        (&daemons[0], &beta, vec!["queued", "running"]),
    ] {
        callers.push(send_only_with(
            daemon.port,
            "POST",
            "/api/tools/terrascan",
            auth,
            body,
        ));
        let mut seen = Vec::new();
        let recorded = wait_within(Duration::from_secs(30), || {
            seen = statuses(auth);
            seen == expected
        });
        assert!(recorded, "expected {expected:?}, saw {seen:?}");
    }
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            statuses(&acme),
            ["queued", "running", "running"],
            "acme never has three running"
        );
        assert_eq!(statuses(&beta), ["queued", "running"], "beta never two");
    }
    // One of acme's jobs on daemon a ends: acme's on daemon b starts; beta's still waits.
    let running_ids = |auth: &[(&str, &str)]| -> Vec<String> {
        json(
            &request_with(
                daemons[0].port,
                "GET",
                "/api/jobs?status=running",
                auth,
                None,
            )
            .body,
        )["jobs"]
            .as_array()
            .expect("jobs[]")
            .iter()
            .filter_map(|job| job["id"].as_str().map(str::to_string))
            .collect()
    };
    let first = running_ids(&acme)
        .into_iter()
        .next()
        .expect("a running job");
    let cancel = request_with(
        daemons[0].port,
        "POST",
        &format!("/api/jobs/{first}/cancel"),
        &acme,
        None,
    );
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    wait_for(Duration::from_secs(30), "daemon b's job running", || {
        (statuses(&acme) == ["cancelled", "running", "running"]).then_some(())
    });
    assert_eq!(
        statuses(&beta),
        ["queued", "running"],
        "beta's limit is its own"
    );
    // Cancelling the running jobs lets the waiting one start, which is then cancelled too.
    for auth in [&acme, &beta, &beta] {
        for id in running_ids(auth) {
            request_with(
                daemons[0].port,
                "POST",
                &format!("/api/jobs/{id}/cancel"),
                auth,
                None,
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for caller in callers {
        let _ = read_response(caller);
    }
    drop(daemons);
    drop(database);
}

/// A tenant allowed 5 requests a second gets 5 in all from two daemons, not 5 from each: the
/// count is kept in the shared store.
#[test]
fn a_tenants_request_rate_holds_across_daemons() {
    let Some((database, url)) = shared_database() else {
        return;
    };
    let (_envs, daemons, keys) = two_daemons(
        &url,
        "rate",
        &[("acme", "[tenants.quotas]\nrequests_per_second = 5")],
        |env| install_fake_tool(&env.tools_dir(), "terrascan"),
    );
    let key = &keys[0];
    let bearer = key.bearer();
    let auth = [("Authorization", bearer.as_str())];
    let started = std::time::Instant::now();
    let mut answered = Vec::new();
    for request in 0..20 {
        let daemon = &daemons[request % 2];
        answered.push(request_with(daemon.port, "GET", "/api/jobs", &auth, None));
    }
    let elapsed = started.elapsed();
    let let_through = answered.iter().filter(|r| r.status == 200).count();
    // The burst (5) plus what the rate refills while the requests are sent; each daemon alone
    // would let 5 through, 10 in all.
    let refilled = (elapsed.as_secs_f64() * 5.0).ceil() as usize;
    assert!(
        let_through >= 5 && let_through <= 5 + refilled,
        "{let_through} of 20 let through in {elapsed:?}"
    );
    for refused in answered.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert!(
            refused.header("retry-after").is_some(),
            "429 without Retry-After: {refused:?}"
        );
    }
    drop(daemons);
    drop(database);
}

/// Two daemons (`<name>-a`, `<name>-b`) on the shared store `url` that both serve these
/// tenants (id, `quotas` lines), one key each, each daemon with the terrascan `terrascan`
/// installs.
fn two_daemons(
    url: &str,
    name: &str,
    tenants: &[(&str, &str)],
    terrascan: impl Fn(&TestEnv) -> std::path::PathBuf,
) -> ([TestEnv; 2], [Daemon; 2], Vec<tenants_support::Key>) {
    let envs = [
        TestEnv::new(&format!("pg-{name}-a")),
        TestEnv::new(&format!("pg-{name}-b")),
    ];
    let shared_data = envs[0].data_dir();
    let keys: Vec<tenants_support::Key> = tenants
        .iter()
        .map(|(id, _)| tenants_support::new_key(id))
        .collect();
    let daemons = [(&envs[0], "a"), (&envs[1], "b")].map(|(env, suffix)| {
        let entries: String = tenants
            .iter()
            .zip(&keys)
            .map(|((id, quotas), key)| {
                tenants_support::tenant_reading(env, id, &[key], &[env.workspace()], quotas)
            })
            .collect();
        let daemon_id = format!("{name}-{suffix}");
        start_with_tenants(env, url, &shared_data, &daemon_id, terrascan(env), entries)
    });
    (envs, daemons, keys)
}

/// Ends every other session on the database at `url`, as PostgreSQL's fast shutdown does.
fn stop_sessions(url: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let ended = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("terminate");
        assert!(!ended.is_empty(), "the daemon had sessions to end");
    });
}

/// Whether `check` holds within `within`, checked every 50 ms.
fn wait_within(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Moving an install (`toolgate store copy`): a daemon on SQLite runs a job and a scan and
/// stops; its store is copied into PostgreSQL; a daemon on PostgreSQL with the same data_dir
/// lists the same jobs and answers the same scan results.
#[test]
fn a_sqlite_install_copied_to_postgres_shows_the_same_jobs_and_scan_results() {
    let Some((database, url)) = shared_database() else {
        return;
    };
    let env = TestEnv::new("pg-copy");
    let options = EnvOptions {
        terrascan: Some(install_fake_tool(&env.tools_dir(), "terrascan")),
        ..EnvOptions::default()
    };
    let sqlite_config = env.write_config_edited(&options, |text| {
        format!("{text}\n[scans]\ndefault_tool = \"terrascan\"\nworkers = 1\n")
    });
    let mut sqlite_daemon = Daemon::start(&sqlite_config, env.port, &env.root.join("sqlite.log"));
    let job = request_with(
        env.port,
        "POST",
        "/api/tools/terrascan",
        &[],
        Some(r#"{"iac_dir": "terraform"}"#),
    );
    assert_eq!(job.status, 200, "{}", job.body);
    let template = std::fs::read_to_string(repo_root().join("examples/terraform/aws_ami/main.tf"))
        .expect("template");
    let scan = submit_scan(&sqlite_daemon, &template);
    assert_eq!(ended(&sqlite_daemon, &scan), "failed");
    let seen = |daemon: &Daemon| {
        let results = request_with(
            daemon.port,
            "GET",
            &format!("/iac/v2/scans/{scan}/results"),
            &[("Accept", JSON_API)],
            None,
        );
        assert_eq!(results.status, 200, "{}", results.body);
        let jobs = json(&daemon.get("/api/jobs?limit=100").body)["jobs"].clone();
        (jobs, json(&results.body))
    };
    let before = seen(&sqlite_daemon);
    assert_eq!(before.0.as_array().map(Vec::len), Some(2), "{}", before.0);
    sqlite_daemon.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));

    let sqlite_file = env.data_dir().join("toolgate.sqlite3");
    let copy = std::process::Command::new(toolgate_binary())
        .args(["store", "copy", "--config"])
        .arg(&sqlite_config)
        .arg("--from")
        .arg(format!("sqlite:{}", sqlite_file.display()))
        .args(["--to", &url])
        .output()
        .expect("run toolgate store copy");
    let said =
        String::from_utf8_lossy(&copy.stdout).into_owned() + &String::from_utf8_lossy(&copy.stderr);
    assert!(copy.status.success(), "{said}");
    assert!(
        said.contains("  jobs                     2 row(s)")
            && said.contains("  scans                    1 row(s)")
            && said.contains("unfinished jobs: 0"),
        "{said}"
    );

    let pg_daemon = start(&env, &url, &env.data_dir(), "after-copy");
    let after = seen(&pg_daemon);
    assert_eq!(after, before);
    assert!(pg_daemon.log().contains("store: PostgreSQL"));
    // The audit chain the SQLite daemon sealed verifies as copied (`start` wrote the
    // PostgreSQL configuration over the SQLite one).
    let verify = std::process::Command::new(toolgate_binary())
        .args(["audit", "verify", "--config"])
        .arg(env.root.join("toolgate.toml"))
        .output()
        .expect("run toolgate audit verify");
    let said = String::from_utf8_lossy(&verify.stdout).into_owned();
    assert!(
        verify.status.success()
            && said.contains("audit trail OK")
            && !said.contains("(0 record(s)"),
        "{said}"
    );
    drop(pg_daemon);
    drop(database);
}
