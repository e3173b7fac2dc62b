//! MCP benchmark, side by side in one run against the same daemon:
//! - tool calls through `/mcp` (`tools/call`, 32 concurrent sessions) against
//!   `POST /api/tools/{tool}` (32 clients on kept connections, as the HexStrike MCP client
//!   calls), the fast fake terrascan behind both, the sides alternating in 1 s slices (the
//!   machine's speed drifts more than the differences measured). The MCP side runs twice: with
//!   rmcp's own client, and with a raw HTTP/1.1 client as small as the HTTP side's
//!   (`common/raw_mcp.rs`), so the daemon's two paths are compared on equal clients;
//! - `tools/list` latency (median of sequential requests on one session) with 20 plugins loaded
//!   and available.
//!
//! The 20 plugins are the terrascan component with its name rewritten in place (`terrasc00` ..
//! `terrasc19`, the same length, so every offset in the component stays valid): the daemon loads
//! them as 20 tools, each with its own schema, as it would 20 teams' plugins.
//!
//! With rmcp's client the MCP side pays for that client (JSON-RPC framing, SSE parsing, reqwest)
//! on the same two cores as the daemon, the HTTP side for a few lines of raw HTTP/1.1: that
//! ratio is a floor for the daemon's own share. The raw client's ratio is the daemon's.
//!
//! Run: `just build-plugins && cargo build --release -p toolgate-tests --bin toolgate-fake-tool
//! && cargo bench -p toolgate --bench mcp`. Tunables: TOOLGATE_BENCH_SECS (default 10),
//! TOOLGATE_BENCH_CLIENTS (default 32).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmcp::ServiceExt;

mod common;
#[path = "common/raw_mcp.rs"]
mod raw_mcp;
use common::{
    KEPT, LoadResult, built_plugins, env_number, fake_tool, load, load_each, post_kept,
    scratch_root, start, stop,
};
use rmcp::model::{CallToolRequestParams, ClientRequest, ListToolsRequest};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;

/// The tool arguments: a terrascan scan of the sample directory.
const BODY: &str = r#"{"iac_dir": "terraform"}"#;
/// How many plugins the `tools/list` row loads.
const PLUGINS: usize = 20;
/// Length of one slice of load; the sides alternate slice by slice.
const SLICE: Duration = Duration::from_secs(1);
/// `tools/list` requests timed, one after another on one session.
const LIST_SAMPLES: usize = 300;

fn main() {
    let secs = env_number("TOOLGATE_BENCH_SECS", 10);
    let clients = env_number("TOOLGATE_BENCH_CLIENTS", 32) as usize;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let toolgate = PathBuf::from(env!("CARGO_BIN_EXE_toolgate"));
    let fake = fake_tool(&toolgate);
    let terrascan_wasm = built_plugins(&repo).join("terrascan.wasm");

    let root = scratch_root(
        "toolgate-bench-mcp",
        &["workspace/terraform", "tools", "data", "plugins"],
    );
    std::fs::copy(
        repo.join("examples/terraform/aws_ami/main.tf"),
        root.join("workspace/terraform/main.tf"),
    )
    .expect("sample");
    // The fake tool acts as terrascan by its file name.
    let terrascan = root.join("tools/terrascan");
    std::fs::copy(&fake, &terrascan).expect("copy fake tool");
    let names = write_plugins(&terrascan_wasm, &root.join("plugins"));
    let port = free_port();
    let config = write_config(&root, port, clients, &names, &terrascan);
    let (daemon, _) = start(&toolgate, &config, port, &root);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let tool = names[0].clone();
    let sessions: Vec<RunningService<RoleClient, ()>> = runtime.block_on(async {
        let mut sessions = Vec::new();
        for _ in 0..clients {
            let transport = StreamableHttpClientTransport::from_uri(url.clone());
            sessions.push(().serve(transport).await.expect("MCP session"));
        }
        sessions
    });
    let peers: Vec<Peer<RoleClient>> = sessions.iter().map(|s| s.peer().clone()).collect();

    let listed = runtime.block_on(list_tools_latencies(&peers[0]));
    let mut raw_sessions: Vec<raw_mcp::RawMcpSession> = (0..clients)
        .map(|_| raw_mcp::RawMcpSession::open(port).expect("raw MCP session"))
        .collect();
    let mut mcp = LoadResult::default();
    let mut raw = LoadResult::default();
    let mut http = LoadResult::default();
    let path = format!("/api/tools/{tool}");
    for _ in 0..secs {
        mcp.add(runtime.block_on(mcp_load(&peers, &tool, SLICE)));
        raw.add(raw_mcp_load(&mut raw_sessions, &tool, SLICE));
        http.add(http_load(clients, SLICE, port, &path));
    }
    mcp.latencies.sort_unstable();
    raw.latencies.sort_unstable();
    http.latencies.sort_unstable();
    runtime.block_on(async {
        for session in sessions {
            let _ = session.cancel().await;
        }
    });
    stop(daemon);
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "toolgate MCP benchmark ({clients} concurrent clients, {secs} s per side in alternating 1 s slices, fake terrascan, {PLUGINS} plugins loaded)"
    );
    println!(
        "{:<48} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "calls/s", "p50 ms", "p99 ms", "errors", "/ HTTP"
    );
    for (name, result) in [
        ("POST /api/tools/{tool}, kept connections", &http),
        ("tools/call through /mcp, raw HTTP/1.1 sessions", &raw),
        ("tools/call through /mcp, rmcp client sessions", &mcp),
    ] {
        println!(
            "{:<48} {:>8.1} {:>8.2} {:>8.2} {:>8} {:>7.1}%",
            name,
            result.rate(),
            result.percentile(50.0),
            result.percentile(99.0),
            result.errors,
            100.0 * result.rate() / http.rate()
        );
    }
    println!("MCP / HTTP throughput target: >= 90% (the raw client's row compares equal clients)");
    println!(
        "tools/list with {} tools: median {:.2} ms, p99 {:.2} ms over {LIST_SAMPLES} requests (target <= 5 ms median)",
        listed.tools,
        listed.latencies.percentile(50.0),
        listed.latencies.percentile(99.0)
    );
}

/// Writes `PLUGINS` copies of the terrascan component named `terrasc00`.. (the name rewritten
/// in place, same length) and returns their names.
fn write_plugins(terrascan: &Path, dir: &Path) -> Vec<String> {
    let bytes = std::fs::read(terrascan).expect("read terrascan.wasm");
    let original = b"terrascan";
    (0..PLUGINS)
        .map(|index| {
            let name = format!("terrasc{index:02}");
            let mut copy = bytes.clone();
            let mut at = 0;
            while let Some(found) = copy[at..]
                .windows(original.len())
                .position(|window| window == original)
            {
                let start = at + found;
                copy[start..start + original.len()].copy_from_slice(name.as_bytes());
                at = start + original.len();
            }
            std::fs::write(dir.join(format!("{name}.wasm")), copy).expect("write plugin");
            name
        })
        .collect()
}

fn write_config(
    root: &Path,
    port: u16,
    clients: usize,
    names: &[String],
    binary: &Path,
) -> PathBuf {
    let mut text = format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nplugins_dir = {plugins:?}\n\
         [sandbox]\nallowed_dirs = [{ws:?}]\noutput_root = {out:?}\n\
         [limits]\nmax_concurrent_jobs = {clients}\nmax_queued_jobs = {clients}\njob_retention = 100\n",
        data = root.join("data").display().to_string(),
        plugins = root.join("plugins").display().to_string(),
        ws = root.join("workspace").display().to_string(),
        out = root.join("data/output").display().to_string(),
    );
    for name in names {
        text.push_str(&format!(
            "[tools.{name}]\nbinary = {:?}\n",
            binary.display().to_string()
        ));
    }
    let config = root.join("bench.toml");
    std::fs::write(&config, text).expect("config");
    config
}

struct Listed {
    tools: usize,
    latencies: LoadResult,
}

/// `tools/list` sent as a plain request (the client's list helper may answer from its cache).
async fn list_tools_latencies(peer: &Peer<RoleClient>) -> Listed {
    let mut latencies = LoadResult::default();
    let mut tools = 0;
    for _ in 0..LIST_SAMPLES {
        let started = Instant::now();
        let answer = peer
            .send_request(ClientRequest::ListToolsRequest(ListToolsRequest {
                method: Default::default(),
                params: None,
                extensions: Default::default(),
            }))
            .await;
        match answer {
            Ok(rmcp::model::ServerResult::ListToolsResult(result)) => {
                latencies.latencies.push(started.elapsed());
                tools = result.tools.len();
            }
            _ => latencies.errors += 1,
        }
    }
    latencies.latencies.sort_unstable();
    Listed { tools, latencies }
}

/// Each session calls `tool` in a loop for `duration`.
async fn mcp_load(peers: &[Peer<RoleClient>], tool: &str, duration: Duration) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let arguments: rmcp::model::JsonObject = serde_json::from_str(BODY).expect("arguments");
    let errors = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = peers
        .iter()
        .map(|peer| {
            let peer = peer.clone();
            let arguments = arguments.clone();
            let tool = tool.to_string();
            let errors = Arc::clone(&errors);
            tokio::spawn(async move {
                let mut ok = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let call =
                        CallToolRequestParams::new(tool.clone()).with_arguments(arguments.clone());
                    match peer.call_tool(call).await {
                        Ok(result) if result.is_error != Some(true) => ok.push(t.elapsed()),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                ok
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("MCP client task"));
    }
    latencies.sort_unstable();
    LoadResult {
        latencies,
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    }
}

/// A thread per raw session, each calling `tool` in a loop for `duration`.
fn raw_mcp_load(
    sessions: &mut [raw_mcp::RawMcpSession],
    tool: &str,
    duration: Duration,
) -> LoadResult {
    load_each(
        sessions,
        duration,
        &|session: &mut raw_mcp::RawMcpSession| session.call(tool, BODY),
    )
}

/// `clients` threads, each on its own kept connection, POST `path` in a loop for `duration`.
fn http_load(clients: usize, duration: Duration, port: u16, path: &str) -> LoadResult {
    load(clients, duration, &|| {
        KEPT.with_borrow_mut(|kept| post_kept(kept, port, path, BODY))
            .is_some_and(|body| body.contains("\"success\":true"))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}
