//! Daemon benchmark, side by side in one run:
//! - requests/s and p50/p99 latency through `POST /api/tools/terrascan` at 32 concurrent clients
//!   (the fast fake tool as terrascan) versus spawning the same binary directly with the same
//!   concurrency, and versus the server a user could write instead (`examples/naive_server.rs`:
//!   axum and `tokio::process::Command`, no validation, sandbox or store) on kept connections. The daemon is called two ways: each client on one persistent connection, as
//!   the HexStrike MCP client does (a `requests.Session`), and on a new connection per request,
//!   as a script with plain `curl` would. The sides alternate in one-second slices (the
//!   machine's speed drifts by ±20% over tens of seconds here, more than the differences
//!   measured);
//! - what authentication costs: the same kept-connection load against a second daemon with one
//!   `[[tenants]]` entry, each request carrying `Authorization: Bearer <key>` (issue #16:
//!   tenants on within 5% of tenants off);
//! - daemon RSS while idle and (peak) during the run, from /proc/<pid>/status;
//! - the daemon's peak memory (VmHWM) around one call whose tool prints 1 GiB, as copies of the
//!   capped output held at once;
//! - start-to-/health time, cold (empty plugin cache) and warm (precompiled cache).
//!
//! Run: `just build-plugins && cargo build --release -p toolgate-tests --bin toolgate-fake-tool
//! && cargo build --release -p toolgate --example naive_server && cargo bench -p toolgate --bench
//! daemon` (`just bench` does all of it). Tunables: TOOLGATE_BENCH_SECS (default 10),
//! TOOLGATE_BENCH_CLIENTS (default 32), TOOLGATE_BENCH_SANDBOX (extra `[sandbox]` lines, e.g.
//! `network_isolation = "off"` to measure what one hardening layer costs), TOOLGATE_BENCH_DAEMON
//! (path of another toolgate binary to run instead, e.g. a saved baseline build),
//! TOOLGATE_BENCH_ONLY (`direct`, `kept`, `new`, `naive` or `tenants`: load one side only, to
//! profile it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{
    KEPT, KEPT_OTHER, KEPT_THIRD, LoadResult, built_plugins, env_number, exchange, fake_tool, load,
    post_kept, post_kept_with, scratch_root, start, stop,
};

/// Request body: a terrascan scan of the sample directory.
const BODY: &str = r#"{"iac_dir": "terraform"}"#;
/// Length of one slice of load; the sides alternate slice by slice.
const SLICE: Duration = Duration::from_secs(1);

fn main() {
    let secs: u64 = env_number("TOOLGATE_BENCH_SECS", 10);
    let clients: usize = env_number("TOOLGATE_BENCH_CLIENTS", 32) as usize;
    let sandbox_extra = std::env::var("TOOLGATE_BENCH_SANDBOX").unwrap_or_default();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // TOOLGATE_BENCH_DAEMON runs another build of the daemon (e.g. a saved baseline) for
    // side-by-side comparisons; the fake tool is still taken from this profile.
    let toolgate = PathBuf::from(env!("CARGO_BIN_EXE_toolgate"));
    let daemon_binary =
        std::env::var_os("TOOLGATE_BENCH_DAEMON").map_or_else(|| toolgate.clone(), PathBuf::from);
    let profile_dir = toolgate.parent().expect("profile dir").to_path_buf();
    let fake = fake_tool(&toolgate);
    let plugins = built_plugins(&repo);

    let root = scratch_root("toolgate-bench", &["workspace/terraform", "tools", "data"]);
    std::fs::copy(
        repo.join("examples/terraform/aws_ami/main.tf"),
        root.join("workspace/terraform/main.tf"),
    )
    .expect("sample");
    let terrascan = root.join("tools/terrascan");
    std::fs::copy(&fake, &terrascan).expect("copy fake tool");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = write_config(&root, port, &plugins, &sandbox_extra, clients, &terrascan);
    let (cold_daemon, cold) = start(&daemon_binary, &config, port, &root);
    stop(cold_daemon);
    let (daemon, warm) = start(&daemon_binary, &config, port, &root);
    let pid = daemon.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(pid);

    let workspace_dir = root.join("workspace/terraform");
    // The direct spawn gets the environment the sandbox gives a tool (a fixed PATH, an empty
    // HOME and TMPDIR, LANG), not this process's: under `cargo bench` that carries cargo's
    // LD_LIBRARY_PATH, whose six directories the tool's dynamic loader would search for every
    // library, slowing the direct side by ~9% and flattering the daemon.
    let direct_home = root.join("direct-home");
    std::fs::create_dir_all(&direct_home).expect("mkdir direct-home");
    let tool_path = toolgate_sandbox::SandboxPolicy::default().path_env;
    let tool_env = [
        ("PATH", tool_path.as_str()),
        ("HOME", direct_home.to_str().expect("utf-8 path")),
        ("TMPDIR", direct_home.to_str().expect("utf-8 path")),
        ("LANG", "C.UTF-8"),
    ];
    let spawn_directly = || {
        Command::new(&terrascan)
            .env_clear()
            .envs(tool_env)
            .current_dir(root.join("workspace"))
            .args(["scan", "-i", "terraform", "-d"])
            .arg(&workspace_dir)
            .args(["-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map(|out| out.status.code() == Some(3))
            .unwrap_or(false)
    };
    let new_connection_each = || {
        post(port, "/api/tools/terrascan", BODY)
            .is_some_and(|body| body.contains("\"success\":true"))
    };
    let keep_alive = || {
        KEPT.with_borrow_mut(|kept| post_kept(kept, port, "/api/tools/terrascan", BODY))
            .is_some_and(|body| body.contains("\"success\":true"))
    };

    let naive_binary = profile_dir.join("examples/naive_server");
    assert!(
        naive_binary.is_file(),
        "{} missing: cargo build --release -p toolgate --example naive_server",
        naive_binary.display()
    );
    let naive_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let naive = start_naive(
        &naive_binary,
        naive_port,
        &terrascan,
        &root.join("workspace"),
    );
    let naive_keep_alive = || {
        KEPT_OTHER
            .with_borrow_mut(|kept| post_kept(kept, naive_port, "/api/tools/terrascan", BODY))
            .is_some_and(|body| body.contains("\"success\":true"))
    };

    // The same daemon with authentication on: one tenant, one access key made by the CLI.
    let tenant_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (tenant_config, bearer) = write_tenant_config(
        &daemon_binary,
        &root,
        tenant_port,
        &plugins,
        &sandbox_extra,
        clients,
        &terrascan,
    );
    let (tenant_daemon, _) = start(&daemon_binary, &tenant_config, tenant_port, &root);
    let auth_header = format!("Authorization: {bearer}\r\n");
    let tenant_keep_alive = || {
        KEPT_THIRD
            .with_borrow_mut(|kept| {
                post_kept_with(
                    kept,
                    tenant_port,
                    "/api/tools/terrascan",
                    BODY,
                    &auth_header,
                )
            })
            .is_some_and(|body| body.contains("\"success\":true"))
    };

    let peak = Arc::new(Mutex::new(idle_rss));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                let now = rss_kib(pid);
                let mut max = peak.lock().expect("lock");
                *max = (*max).max(now);
                drop(max);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut direct = LoadResult::default();
    let mut kept_run = LoadResult::default();
    let mut per_request_run = LoadResult::default();
    let mut naive_run = LoadResult::default();
    let mut tenants_run = LoadResult::default();
    let only = std::env::var("TOOLGATE_BENCH_ONLY").ok();
    let runs = |side: &str| only.as_deref().is_none_or(|only| only == side);
    for _ in 0..secs {
        if runs("direct") {
            direct.add(load(clients, SLICE, &spawn_directly));
        }
        if runs("kept") {
            kept_run.add(load(clients, SLICE, &keep_alive));
        }
        if runs("new") {
            per_request_run.add(load(clients, SLICE, &new_connection_each));
        }
        if runs("naive") {
            naive_run.add(load(clients, SLICE, &naive_keep_alive));
        }
        if runs("tenants") {
            tenants_run.add(load(clients, SLICE, &tenant_keep_alive));
        }
    }
    for result in [
        &mut direct,
        &mut kept_run,
        &mut per_request_run,
        &mut naive_run,
        &mut tenants_run,
    ] {
        result.latencies.sort_unstable();
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let peak_rss = *peak.lock().expect("lock");
    stop(daemon);
    stop(naive);
    stop(tenant_daemon);
    let flood = flood_peak(&daemon_binary, &fake, &root, port, &plugins, &sandbox_extra);
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "toolgate daemon benchmark ({clients} concurrent clients, {secs} s per side in alternating 1 s slices, fake terrascan)"
    );
    println!(
        "{:<48} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "", "req/s", "p50 ms", "p99 ms", "errors", "/ direct"
    );
    for (name, result) in [
        ("direct spawn (no daemon)", &direct),
        ("POST /api/tools/terrascan, kept connection", &kept_run),
        (
            "POST /api/tools/terrascan, new connection",
            &per_request_run,
        ),
        ("naive server (axum + Command), kept connection", &naive_run),
        ("POST /api/tools/terrascan, kept, tenants on", &tenants_run),
    ] {
        // A side left out with TOOLGATE_BENCH_ONLY has no rate to compare with.
        let share = if result.latencies.is_empty() || direct.latencies.is_empty() {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * result.rate() / direct.rate())
        };
        println!(
            "{:<48} {:>8.1} {:>8.2} {:>8.2} {:>8} {:>9}",
            name,
            result.rate(),
            result.percentile(50.0),
            result.percentile(99.0),
            result.errors,
            share
        );
    }
    println!(
        "daemon / direct throughput target: >= 70% on kept connections (as the HexStrike MCP client, wrk and hey call); a new connection per request is reported (aim >= 70%)"
    );
    if !kept_run.latencies.is_empty() && !naive_run.latencies.is_empty() {
        println!(
            "toolgate / naive server, kept connections: throughput {:.2}x (target >= 0.85x, aim 0.95x), p99 {:.2}x (target <= 1.3x)",
            kept_run.rate() / naive_run.rate(),
            kept_run.percentile(99.0) / naive_run.percentile(99.0)
        );
    }
    if !kept_run.latencies.is_empty() && !tenants_run.latencies.is_empty() {
        println!(
            "tenants on (Bearer key) / tenants off, kept connections: throughput {:.3}x (target >= 0.95x), p50 {:.2}x",
            tenants_run.rate() / kept_run.rate(),
            tenants_run.percentile(50.0) / kept_run.percentile(50.0)
        );
    }
    println!(
        "daemon RSS idle: {:.1} MB (target < 40 MB)",
        idle_rss as f64 / 1024.0
    );
    println!(
        "daemon RSS peak during the run: {:.1} MB (target < 100 MB)",
        peak_rss as f64 / 1024.0
    );
    println!(
        "one call whose tool prints 1 GiB (capped at {} MiB): RSS {:.1} MB before, peak {:.1} MB; the output is held {:.1} times at the peak (target <= ~2)",
        DEFAULT_OUTPUT_CAP >> 20,
        flood.before_kib as f64 / 1024.0,
        flood.peak_kib as f64 / 1024.0,
        flood.copies()
    );
    println!(
        "start to /health ready, cold (empty plugin cache): {:.0} ms (target <= 2000 ms)",
        cold.as_secs_f64() * 1000.0
    );
    println!(
        "start to /health ready, warm (precompiled cache): {:.0} ms (target <= 150 ms)",
        warm.as_secs_f64() * 1000.0
    );
}

/// The daemon's configuration for the benchmark, with `terrascan` as the terrascan binary.
fn write_config(
    root: &Path,
    port: u16,
    plugins: &Path,
    sandbox_extra: &str,
    clients: usize,
    terrascan: &Path,
) -> PathBuf {
    let config = root.join("bench.toml");
    let text = config_text(
        &root.join("data"),
        root,
        port,
        plugins,
        sandbox_extra,
        clients,
        terrascan,
    );
    std::fs::write(&config, text).expect("config");
    config
}

/// The configuration text: data in `data`, the workspace and outputs under `root`.
fn config_text(
    data: &Path,
    root: &Path,
    port: u16,
    plugins: &Path,
    sandbox_extra: &str,
    clients: usize,
    terrascan: &Path,
) -> String {
    format!(
        "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nplugins_dir = {plugins:?}\n\
         [sandbox]\nallowed_dirs = [{ws:?}]\noutput_root = {out:?}\n{sandbox_extra}\n\
         [tools.terrascan]\nbinary = {bin:?}\n\
         [limits]\nmax_concurrent_jobs = {clients}\nmax_queued_jobs = {clients}\njob_retention = 100\n",
        data = data.display().to_string(),
        plugins = plugins.display().to_string(),
        ws = root.join("workspace").display().to_string(),
        out = root.join("data/output").display().to_string(),
        bin = terrascan.display().to_string(),
    )
}

/// The benchmark's configuration plus one tenant allowed terrascan, with its own data
/// directory; returns the file and the `Bearer` credential of the tenant's key (made by
/// `toolgate token new`, as an operator makes one).
fn write_tenant_config(
    toolgate: &Path,
    root: &Path,
    port: u16,
    plugins: &Path,
    sandbox_extra: &str,
    clients: usize,
    terrascan: &Path,
) -> (PathBuf, String) {
    let tenant_root = root.join("tenants-on");
    for dir in ["data", "out"] {
        std::fs::create_dir_all(tenant_root.join(dir)).expect("mkdir");
    }
    let made = Command::new(toolgate)
        .args(["token", "new", "bench"])
        .output()
        .expect("toolgate token new");
    assert!(made.status.success(), "{made:?}");
    let text = String::from_utf8(made.stdout).expect("utf-8");
    let field = |label: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("no {label:?} in {text}"))
    };
    let bearer = format!("Bearer {}:{}", field("access key id:"), field("secret:"));
    let key_lines = &text[text.find("# access key").expect("config lines")..];
    let text = config_text(
        &tenant_root.join("data"),
        root,
        port,
        plugins,
        sandbox_extra,
        clients,
        terrascan,
    );
    let config = tenant_root.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "{text}\n[[tenants]]\nid = \"bench\"\ndisplay_name = \"Benchmark\"\n\
             allowed_tools = [\"terrascan\"]\nallowed_dirs = [{ws:?}]\noutput_root = {out:?}\n{key_lines}\n",
            ws = root.join("workspace").display().to_string(),
            out = tenant_root.join("out").display().to_string(),
        ),
    )
    .expect("tenant config");
    (config, bearer)
}

/// `sandbox.max_output_bytes` by default: what one stream of a flooding tool is cut to.
const DEFAULT_OUTPUT_CAP: u64 = 16 << 20;

/// The daemon's memory around one call whose tool floods its stdout.
struct FloodPeak {
    before_kib: u64,
    peak_kib: u64,
}

impl FloodPeak {
    /// How many copies of the capped output the daemon held at its peak.
    fn copies(&self) -> f64 {
        (self.peak_kib.saturating_sub(self.before_kib) * 1024) as f64 / DEFAULT_OUTPUT_CAP as f64
    }
}

/// Starts the daemon with the fake tool as `terrascan-flood` (1 GiB on stdout), warms it with
/// one call, then measures one more: RSS before it and the high-water mark (VmHWM, exact, no
/// sampling) after it.
fn flood_peak(
    daemon_binary: &Path,
    fake: &Path,
    root: &Path,
    port: u16,
    plugins: &Path,
    sandbox_extra: &str,
) -> FloodPeak {
    let flooder = root.join("tools/terrascan-flood");
    std::fs::copy(fake, &flooder).expect("copy fake tool");
    let config = write_config(root, port, plugins, sandbox_extra, 1, &flooder);
    let (daemon, _) = start(daemon_binary, &config, port, root);
    let pid = daemon.id();
    // The first call warms what every call uses (plugin instance, store statements).
    let first = post(port, "/api/tools/terrascan", BODY);
    std::thread::sleep(Duration::from_millis(300));
    let before_kib = rss_kib(pid);
    reset_peak_rss(pid);
    let second = post(port, "/api/tools/terrascan", BODY);
    let peak_kib = status_kib(pid, "VmHWM:");
    stop(daemon);
    assert!(
        first.is_some() && second.is_some(),
        "the flooding calls failed; see {}",
        root.join("daemon.log").display()
    );
    FloodPeak {
        before_kib,
        peak_kib,
    }
}

/// Resets the high-water mark VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`).
fn reset_peak_rss(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `kB` figure of /proc/PID/status, e.g. `VmRSS:` or `VmHWM:`.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn post(port: u16, path: &str, body: &str) -> Option<String> {
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Starts the naive server and waits until it answers.
fn start_naive(binary: &Path, port: u16, tool: &Path, workspace: &Path) -> std::process::Child {
    // Started as the daemon is: each server and its tools then share one scheduler autogroup,
    // and the clients have another.
    let mut child = common::as_service(binary)
        .arg(port.to_string())
        .arg(tool)
        .arg(workspace)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the naive server");
    let started = std::time::Instant::now();
    while common::get(port, "/health").is_none() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the naive server exited at start ({status})");
        }
        assert!(
            started.elapsed() < common::START_LIMIT,
            "the naive server is not ready"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}
