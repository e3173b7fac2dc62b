//! Several daemons on one PostgreSQL (issue #19), measured side by side in one run:
//! - scale: scans of a template whose (fake) scanner takes 1 s, with 4 job slots and 4 scan
//!   workers per daemon, through one daemon and then through three sharing the store and a
//!   `data_dir`; the rate of three against one (target >= 2.7x);
//! - the synchronous path's cost of the store: `POST /api/tools/terrascan` at 32 clients on
//!   kept connections against a daemon on PostgreSQL (over loopback TCP, as a daemon on
//!   another host would connect) and one on SQLite, alternating 1 s slices (target >= 0.9x); with
//!   the throwaway cluster, a third daemon on the same database through the server's Unix socket
//!   (as a daemon on the server's own host would connect) joins the rotation.
//!
//! PostgreSQL is a throwaway cluster with the server's durable defaults (fsync and synchronous
//! commit on), or `TOOLGATE_TEST_DATABASE_URL`.
//!
//! Run: `just build-plugins && cargo build --release -p toolgate-tests --bin toolgate-fake-tool
//! && cargo bench -p toolgate --bench daemons` (`just bench` does all of it). Tunables:
//! TOOLGATE_BENCH_SECS (default 8), TOOLGATE_BENCH_CLIENTS (default 32), TOOLGATE_BENCH_SCANS
//! (default 96 per run: with fewer, submitting them weighs on the three-daemon run),
//! TOOLGATE_BENCH_ONLY (`sync`: only the synchronous comparison, `scale`: only the scale runs;
//! unset: both).

#[path = "../store/testing/pg_cluster.rs"]
#[allow(dead_code, reason = "the harness serves the store's tests too")]
mod pg_cluster;

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::{
    KEPT, KEPT_OTHER, KEPT_THIRD, LoadResult, built_plugins, env_number, fake_tool, load,
    post_kept, scratch_root, start, stop,
};

/// The synchronous call: a terrascan scan of the sample directory.
const SYNC_BODY: &str = r#"{"iac_dir": "terraform"}"#;
/// A template the fake terrascan takes one second over.
const SLOW_TEMPLATE: &str = "# toolgate-fake-terrascan: sleep 1\nresource \"aws_ami\" \"x\" {}\n";
/// Job slots and scan workers per daemon in the scale runs.
const SLOTS: usize = 4;
/// Length of one slice of synchronous load; the sides alternate slice by slice.
const SLICE: Duration = Duration::from_secs(1);

fn main() {
    let secs = env_number("TOOLGATE_BENCH_SECS", 8);
    let clients = env_number("TOOLGATE_BENCH_CLIENTS", 32) as usize;
    let scans = env_number("TOOLGATE_BENCH_SCANS", 96) as usize;
    let only = std::env::var("TOOLGATE_BENCH_ONLY").unwrap_or_default();
    let (run_scale, run_sync) = match only.as_str() {
        "" => (true, true),
        "scale" => (true, false),
        "sync" => (false, true),
        other => panic!("TOOLGATE_BENCH_ONLY is `sync` or `scale`, not {other:?}"),
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let toolgate = PathBuf::from(env!("CARGO_BIN_EXE_toolgate"));
    let fake = fake_tool(&toolgate);
    let plugins = built_plugins(&repo);
    let root = scratch_root("toolgate-bench-daemons", &["workspace/terraform", "tools"]);
    std::fs::copy(
        repo.join("examples/terraform/aws_ami/main.tf"),
        root.join("workspace/terraform/main.tf"),
    )
    .expect("sample");
    let terrascan = root.join("tools/terrascan");
    std::fs::copy(&fake, &terrascan).expect("copy fake tool");
    pg_cluster::make_durable();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let setup = Setup {
        toolgate,
        plugins,
        terrascan,
        root: root.clone(),
    };

    // Scale: one daemon, then three, each on a fresh database.
    let mut rates = Vec::new();
    for daemons in [1, 3].into_iter().filter(|_| run_scale) {
        let database = runtime
            .block_on(pg_cluster::test_database())
            .expect("PostgreSQL (install it, or set TOOLGATE_TEST_DATABASE_URL)");
        let url = database.postgres_url();
        let data = root.join(format!("scale-{daemons}"));
        let running: Vec<(Child, u16)> = (0..daemons)
            .map(|n| setup.start(&data, &format!("scale-{daemons}-{n}"), Some(&url), SLOTS))
            .collect();
        let ports: Vec<u16> = running.iter().map(|(_, port)| *port).collect();
        let started = Instant::now();
        let ids: Vec<(String, u16)> = (0..scans)
            .map(|n| {
                let port = ports[n % ports.len()];
                (submit_scan(port), port)
            })
            .collect();
        wait_until_ended(&ids);
        let elapsed = started.elapsed();
        rates.push(scans as f64 / elapsed.as_secs_f64());
        println!(
            "{daemons} daemon(s), {SLOTS} slots each: {scans} scans of 1 s in {:.2} s: {:.2} scans/s",
            elapsed.as_secs_f64(),
            rates[rates.len() - 1]
        );
        for (child, _) in running {
            stop(child);
        }
        drop(database);
    }

    if run_scale {
        println!(
            "three daemons / one, scans of 1 s with {SLOTS} slots each: {:.2}x (target >= 2.7x)",
            rates[1] / rates[0]
        );
    }
    if run_sync {
        sync_path(&runtime, &setup, &root, clients, secs);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// The synchronous path on each store, alternating slices: `secs` slices of `clients` clients
/// on each side.
fn sync_path(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
    root: &Path,
    clients: usize,
    secs: u64,
) {
    let database = runtime
        .block_on(pg_cluster::test_database())
        .expect("PostgreSQL");
    let url = database.postgres_url();
    let (pg_daemon, pg_port) = setup.start(&root.join("sync-pg"), "sync-pg", Some(&url), clients);
    let (sqlite_daemon, sqlite_port) =
        setup.start(&root.join("sync-sqlite"), "sync-sqlite", None, clients);
    // A third daemon on the same database through the server's Unix socket, as a daemon on the
    // server's host connects: what loopback TCP costs both ends is then told apart from what
    // the server's own work costs. Only with a server this benchmark started (its socket is
    // known); it joins the rotation, so every side still gets the same slices.
    let socket = database.postgres_socket_url().map(|url| {
        setup.start(
            &root.join("sync-pg-socket"),
            "sync-pg-socket",
            Some(&url),
            clients,
        )
    });
    let on_pg = || {
        KEPT.with_borrow_mut(|kept| post_kept(kept, pg_port, "/api/tools/terrascan", SYNC_BODY))
            .is_some_and(|body| body.contains("\"success\":true"))
    };
    let on_sqlite = || {
        KEPT_OTHER
            .with_borrow_mut(|kept| post_kept(kept, sqlite_port, "/api/tools/terrascan", SYNC_BODY))
            .is_some_and(|body| body.contains("\"success\":true"))
    };
    let socket_port = socket.as_ref().map(|(_, port)| *port);
    let on_socket = || {
        socket_port.is_some_and(|port| {
            KEPT_THIRD
                .with_borrow_mut(|kept| post_kept(kept, port, "/api/tools/terrascan", SYNC_BODY))
                .is_some_and(|body| body.contains("\"success\":true"))
        })
    };
    let mut pg = LoadResult::default();
    let mut sqlite = LoadResult::default();
    let mut pg_socket = LoadResult::default();
    for _ in 0..secs {
        pg.add(load(clients, SLICE, &on_pg));
        sqlite.add(load(clients, SLICE, &on_sqlite));
        if socket.is_some() {
            pg_socket.add(load(clients, SLICE, &on_socket));
        }
    }
    for result in [&mut pg, &mut sqlite, &mut pg_socket] {
        result.latencies.sort_unstable();
    }
    stop(pg_daemon);
    stop(sqlite_daemon);
    if let Some((daemon, _)) = socket {
        stop(daemon);
    }
    drop(database);
    println!(
        "POST /api/tools/terrascan, {clients} clients, kept connections: PostgreSQL {:.1} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors), SQLite {:.1} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors): {:.2}x (target >= 0.9x)",
        pg.rate(),
        pg.percentile(50.0),
        pg.percentile(99.0),
        pg.errors,
        sqlite.rate(),
        sqlite.percentile(50.0),
        sqlite.percentile(99.0),
        sqlite.errors,
        pg.rate() / sqlite.rate()
    );
    if socket_port.is_some() {
        println!(
            "the same on PostgreSQL through its Unix socket (a daemon on the server's host): {:.1} req/s (p50 {:.2} ms, p99 {:.2} ms, {} errors): {:.2}x SQLite's",
            pg_socket.rate(),
            pg_socket.percentile(50.0),
            pg_socket.percentile(99.0),
            pg_socket.errors,
            pg_socket.rate() / sqlite.rate()
        );
    }
}

/// What every daemon of the benchmark shares.
struct Setup {
    toolgate: PathBuf,
    plugins: PathBuf,
    terrascan: PathBuf,
    root: PathBuf,
}

impl Setup {
    /// Starts a daemon with its data in `data` (shared by the daemons of one run), on
    /// PostgreSQL at `url` or SQLite, with `slots` job slots (and as many scan workers).
    fn start(&self, data: &Path, daemon_id: &str, url: Option<&str>, slots: usize) -> (Child, u16) {
        std::fs::create_dir_all(data).expect("data dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let store = url.map_or_else(String::new, |url| {
            format!("[store]\nurl = {url:?}\ndaemon_id = {daemon_id:?}\n")
        });
        let config = self.root.join(format!("{daemon_id}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nplugins_dir = {plugins:?}\n\
                 [sandbox]\nallowed_dirs = [{ws:?}]\n\
                 [tools.terrascan]\nbinary = {bin:?}\n\
                 [limits]\nmax_concurrent_jobs = {slots}\nmax_queued_jobs = {queued}\njob_retention = 100\n\
                 [scans]\nworkers = {slots}\ndefault_tool = \"terrascan\"\n{store}",
                data = data.display().to_string(),
                plugins = self.plugins.display().to_string(),
                ws = self.root.join("workspace").display().to_string(),
                bin = self.terrascan.display().to_string(),
                queued = slots.max(32),
            ),
        )
        .expect("config");
        let (child, _) = start(&self.toolgate, &config, port, &self.root);
        (child, port)
    }
}

/// One request on a new connection, whatever its status; the status line and the body.
fn request(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (String, String) {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = (|| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.write_all(raw.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    })()
    .unwrap_or_default();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Creates, uploads and initiates one scan of `SLOW_TEMPLATE` through the daemon at `port`.
fn submit_scan(port: u16) -> String {
    let json_api = "Content-Type: application/vnd.api+json\r\n";
    let (_, created) = request(
        port,
        "POST",
        "/iac/v2/scans",
        json_api,
        r#"{"data":{"type":"async-scan","attributes":{"assetName":"bench","assetType":"IaC-API"}}}"#,
    );
    let document: serde_json::Value = serde_json::from_str(&created).expect("created");
    let id = document["data"]["id"].as_str().expect("id").to_string();
    let link = document["data"]["links"]["url"].as_str().expect("url");
    let path = &link[link.find("/iac/v2/uploads/").expect("upload path")..];
    let (status, _) = request(port, "PUT", path, "", SLOW_TEMPLATE);
    assert!(status.contains(" 200 "), "upload: {status}");
    let initiate = format!(r#"{{"data":{{"id":"{id}","attributes":{{"templateType":"tf"}}}}}}"#);
    let (status, _) = request(
        port,
        "POST",
        &format!("/iac/v2/scans/{id}"),
        json_api,
        &initiate,
    );
    assert!(status.contains(" 200 "), "initiate: {status}");
    id
}

/// Polls each scan (through the daemon that created it) until every one has ended.
fn wait_until_ended(ids: &[(String, u16)]) {
    let mut pending: Vec<&(String, u16)> = ids.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} scans never ended",
            pending.len()
        );
        pending.retain(|(id, port)| {
            let (_, body) = request(*port, "GET", &format!("/iac/v2/scans/{id}/status"), "", "");
            body.contains("\"processing\"") || body.is_empty()
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}
