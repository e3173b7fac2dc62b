//! Asynchronous scan benchmark, side by side in one run against the same daemon:
//! - 500 IaC scans of a small template (create, upload with PUT, initiate, then poll until
//!   done, as a queue is used: each client submits its share before polling them) from
//!   32 clients, against 500 synchronous `POST /api/tools/terrascan` calls scanning the same
//!   template from 32 clients; the fast fake terrascan behind both, 32 job slots and 32 scan
//!   workers. Rounds alternate (sync, async, sync, async, ...) because the machine's speed drifts;
//! - the daemon's RSS growth during one 300 MB upload (the body is streamed to disk, so it
//!   should not grow with the upload).
//!
//! Run: `just build-plugins && cargo build --release -p toolgate-tests --bin toolgate-fake-tool
//! && cargo bench -p toolgate --bench scans` (`just bench` does all of it). Tunables:
//! TOOLGATE_BENCH_SCANS (default 500), TOOLGATE_BENCH_ROUNDS (default 3),
//! TOOLGATE_BENCH_CLIENTS (default 32), TOOLGATE_BENCH_UPLOAD_MB (default 300),
//! TOOLGATE_BENCH_CONNECTIONS: `kept` (default: every client keeps one connection, as an HTTP
//! client library or `requests.Session` does) or `new` (a connection per request, as a script
//! running one curl per request does). Both sides always use the same kind, so the ratio
//! compares the two APIs, not two kinds of client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{
    KEPT, built_plugins, env_number, fake_tool, read_response, scratch_root, start, stop,
};

/// The synchronous call: a terrascan scan of the sample directory.
const SYNC_BODY: &str = r#"{"iac_dir": "terraform"}"#;
/// How often a client polls the status of a scan that has not ended (CI scripts poll every 4 s; a benchmark
/// measuring throughput must not add seconds of polling delay to the last scan).
const POLL: Duration = Duration::from_millis(50);

fn main() {
    let scans = env_number("TOOLGATE_BENCH_SCANS", 500) as usize;
    let rounds = env_number("TOOLGATE_BENCH_ROUNDS", 3) as usize;
    let clients = env_number("TOOLGATE_BENCH_CLIENTS", 32) as usize;
    let upload_mb = env_number("TOOLGATE_BENCH_UPLOAD_MB", 300);
    let connections = std::env::var("TOOLGATE_BENCH_CONNECTIONS").unwrap_or_else(|_| "kept".into());
    let kept = match connections.as_str() {
        "kept" => true,
        "new" => false,
        other => panic!("TOOLGATE_BENCH_CONNECTIONS={other:?}: expected kept or new"),
    };
    KEEP_CONNECTIONS.store(kept, Ordering::Relaxed);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let toolgate = PathBuf::from(env!("CARGO_BIN_EXE_toolgate"));
    let fake = fake_tool(&toolgate);
    let plugins = built_plugins(&repo);
    let root = scratch_root(
        "toolgate-bench-scans",
        &["workspace/terraform", "tools", "data"],
    );
    let template = std::fs::read(repo.join("examples/terraform/aws_ami/main.tf")).expect("sample");
    std::fs::write(root.join("workspace/terraform/main.tf"), &template).expect("sample");
    let terrascan = root.join("tools/terrascan");
    std::fs::copy(&fake, &terrascan).expect("copy fake tool");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = root.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nplugins_dir = {plugins:?}\n\
             [sandbox]\nallowed_dirs = [{ws:?}]\noutput_root = {out:?}\n\
             [tools.terrascan]\nbinary = {bin:?}\n\
             [limits]\nmax_concurrent_jobs = {clients}\nmax_queued_jobs = {queued}\njob_retention = 100\n\
             [scans]\nworkers = {clients}\n\
             [uploads]\nmax_upload_bytes = {max_upload}\n\
             [uploads.extract]\nmax_file_bytes = {max_upload}\nmax_total_bytes = {max_upload}\n",
            data = root.join("data").display().to_string(),
            plugins = plugins.display().to_string(),
            ws = root.join("workspace").display().to_string(),
            out = root.join("data/output").display().to_string(),
            bin = terrascan.display().to_string(),
            queued = clients * 2,
            max_upload = (upload_mb + 1) << 20,
        ),
    )
    .expect("config");
    let (daemon, _) = start(&toolgate, &config, port, &root);

    let mut sync_rates = Vec::new();
    let mut async_rates = Vec::new();
    let mut status_requests = 0;
    for _ in 0..rounds {
        sync_rates.push(sync_round(port, scans, clients));
        let (rate, polls) = async_round(port, scans, clients, &template);
        async_rates.push(rate);
        status_requests += polls;
    }
    let (before, peak) = upload_rss(port, daemon.id(), upload_mb, &root);
    stop(daemon);
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "toolgate scan benchmark ({scans} per side per round, {rounds} alternating rounds, {clients} clients, \
         fake terrascan, connections: {connections})"
    );
    for (index, (sync, scan)) in sync_rates.iter().zip(&async_rates).enumerate() {
        println!(
            "round {}: synchronous {sync:.1} calls/s, asynchronous {scan:.1} scans/s: {:.2}x",
            index + 1,
            scan / sync
        );
    }
    println!(
        "status requests per scan: {:.2} (polling the oldest pending scan every {} ms)",
        status_requests as f64 / (scans * rounds) as f64,
        POLL.as_millis()
    );
    let mean_ms = |phase: usize| {
        SUBMIT_MICROS[phase].load(Ordering::Relaxed) as f64 / 1000.0 / (scans * rounds) as f64
    };
    println!(
        "submitting a scan, mean per client: create {:.1} ms, upload {:.1} ms, initiate {:.1} ms; \
         a synchronous call {:.1} ms",
        mean_ms(0),
        mean_ms(1),
        mean_ms(2),
        clients as f64 * 1000.0 / (sync_rates.iter().sum::<f64>() / rounds as f64)
    );
    let total = |rates: &[f64]| rates.iter().sum::<f64>();
    println!(
        "asynchronous / synchronous throughput: {:.2}x over all rounds (target >= 0.8x)",
        total(&async_rates) / total(&sync_rates)
    );
    println!(
        "daemon RSS during a {upload_mb} MB upload: {:.1} MB before, peak {:.1} MB, growth {:.1} MB (target < 32 MB)",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0
    );
}

/// Runs `count` calls from `clients` threads; returns calls per second.
fn sync_round(port: u16, count: usize, clients: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            let next = Arc::clone(&next);
            scope.spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let (status, body) =
                        request(port, "POST", "/api/tools/terrascan", SYNC_BODY.as_bytes());
                    assert_eq!(status, 200, "synchronous call: {body}");
                    assert!(body.contains("\"success\":true"), "{body}");
                }
            });
        }
    });
    count as f64 / started.elapsed().as_secs_f64()
}

/// Runs `count` scans from `clients` threads as a queue is used: each client creates, uploads
/// and initiates its share of the scans without waiting for each to end, then polls them,
/// oldest first, until all have ended. Returns scans per second, from the
/// first create to the last scan seen ended, and how many status requests were made.
fn async_round(port: u16, count: usize, clients: usize, template: &[u8]) -> (f64, usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let polls = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            let next = Arc::clone(&next);
            let polls = Arc::clone(&polls);
            scope.spawn(move || {
                let mut pending = std::collections::VecDeque::new();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    pending.push_back(submit_scan(port, template));
                }
                // Queued scans end roughly in order: poll the oldest, move on once it ended,
                // so polling costs about one status request per scan, as a CI script's does.
                while let Some(oldest) = pending.front() {
                    polls.fetch_add(1, Ordering::Relaxed);
                    if has_ended(port, oldest) {
                        pending.pop_front();
                    } else {
                        std::thread::sleep(POLL);
                    }
                }
            });
        }
    });
    let rate = count as f64 / started.elapsed().as_secs_f64();
    (rate, polls.load(Ordering::Relaxed))
}

/// Microseconds spent waiting for each submission request (create, upload, initiate), summed
/// over every scan of every round: where a submission's time goes.
static SUBMIT_MICROS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Adds the time since `since` to `SUBMIT_MICROS[phase]`; returns now.
fn lap(phase: usize, since: Instant) -> Instant {
    let now = Instant::now();
    let micros = u64::try_from((now - since).as_micros()).unwrap_or(u64::MAX);
    SUBMIT_MICROS[phase].fetch_add(micros, Ordering::Relaxed);
    now
}

/// Creates, uploads and initiates one scan; returns its id.
fn submit_scan(port: u16, template: &[u8]) -> String {
    let began = Instant::now();
    let created = request(
        port,
        "POST",
        "/iac/v2/scans",
        br#"{"data":{"type":"async-scan","attributes":{"assetName":"bench","assetType":"IaC-API"}}}"#,
    );
    assert_eq!(created.0, 201, "create: {}", created.1);
    let document: serde_json::Value = serde_json::from_str(&created.1).expect("JSON");
    let id = document["data"]["id"].as_str().expect("id").to_string();
    let url = document["data"]["links"]["url"].as_str().expect("url");
    let path = &url[url.find("/iac/").expect("path")..];
    let began = lap(0, began);
    let uploaded = request(port, "PUT", path, template);
    assert_eq!(uploaded.0, 200, "upload: {}", uploaded.1);
    let began = lap(1, began);
    let initiate = format!(r#"{{"data":{{"id":"{id}","attributes":{{"templateType":"tf"}}}}}}"#);
    let started = request(
        port,
        "POST",
        &format!("/iac/v2/scans/{id}"),
        initiate.as_bytes(),
    );
    assert_eq!(started.0, 200, "initiate: {}", started.1);
    lap(2, began);
    id
}

/// Whether scan `id` has ended (it must end `failed`: the fake finds one medium violation).
fn has_ended(port: u16, id: &str) -> bool {
    let status = request(port, "GET", &format!("/iac/v2/scans/{id}/status"), b"");
    assert_eq!(status.0, 200, "status: {}", status.1);
    if status.1.contains("\"processing\"") {
        return false;
    }
    assert!(status.1.contains("\"failed\""), "{}", status.1);
    true
}

/// Whether clients keep their connection (`TOOLGATE_BENCH_CONNECTIONS`).
static KEEP_CONNECTIONS: AtomicBool = AtomicBool::new(true);

/// One HTTP/1.1 exchange, on the thread's kept connection or on a new one: (status, body).
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let kept = KEEP_CONNECTIONS.load(Ordering::Relaxed);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: b\r\n{}Content-Type: {}\r\nContent-Length: {}\r\n\r\n",
        if kept { "" } else { "Connection: close\r\n" },
        if path.starts_with("/iac/") {
            "application/vnd.api+json"
        } else {
            "application/json"
        },
        body.len()
    );
    let response = if kept {
        KEPT.with_borrow_mut(|connection| {
            let stream = connection.get_or_insert_with(|| connect(port));
            send(stream, &head, body);
            read_response(stream).expect("a response on the kept connection")
        })
    } else {
        let mut stream = connect(port);
        send(&mut stream, &head, body);
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        response
    };
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// A connection with Nagle's algorithm off, as curl and HTTP client libraries open them: with
/// it on, a body sent after its head waits for the head's ACK, which the server delays by up
/// to 40 ms on a kept connection.
fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

/// Sends a request's head and body in one write.
fn send(stream: &mut TcpStream, head: &str, body: &[u8]) {
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    stream.write_all(&request).expect("send request");
}

/// The daemon's RSS (KiB) before and at its peak during one upload of `mb` MB of template text,
/// sent in 64 KiB writes.
fn upload_rss(port: u16, pid: u32, mb: u64, root: &Path) -> (u64, u64) {
    let created = request(
        port,
        "POST",
        "/iac/v2/scans",
        br#"{"data":{"type":"async-scan","attributes":{"assetName":"big","assetType":"IaC-API"}}}"#,
    );
    let document: serde_json::Value = serde_json::from_str(&created.1).expect("JSON");
    let url = document["data"]["links"]["url"].as_str().expect("url");
    let path = url[url.find("/iac/").expect("path")..].to_string();
    let before = rss_kib(pid);
    let peak = Arc::new(AtomicUsize::new(before as usize));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid) as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let total = mb << 20;
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Length: {total}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send head");
    let line = b"# a large template, one comment line after another, streamed to disk\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(64 << 10).collect();
    let mut sent = 0u64;
    while sent < total {
        let take = chunk.len().min((total - sent) as usize);
        stream.write_all(&chunk[..take]).expect("send body");
        sent += take as u64;
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the upload was refused: {}; see {}",
        response.lines().next().unwrap_or(""),
        root.join("daemon.log").display()
    );
    (before, peak.load(Ordering::Relaxed) as u64)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
