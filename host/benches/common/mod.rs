//! What the benchmarks share: starting and stopping the daemon, loading it from client threads
//! on kept HTTP/1.1 connections, and the latency record of a run.
#![allow(dead_code)] // each benchmark uses its own part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the daemon may take to become ready before a benchmark gives up.
pub const START_LIMIT: Duration = Duration::from_secs(60);

/// The fast fake tool built next to the toolgate binary `toolgate`; panics saying how to build
/// it when it is missing.
pub fn fake_tool(toolgate: &Path) -> PathBuf {
    let fake = toolgate.with_file_name("toolgate-fake-tool");
    assert!(
        fake.is_file(),
        "{} missing: cargo build --release -p toolgate-tests --bin toolgate-fake-tool",
        fake.display()
    );
    fake
}

/// The plugins `just build-plugins` built (`<repo>/target/plugins`); panics when they are missing.
pub fn built_plugins(repo: &Path) -> PathBuf {
    let plugins = repo.join("target/plugins");
    assert!(
        plugins.join("terrascan.wasm").is_file(),
        "run `just build-plugins` first"
    );
    plugins
}

/// A fresh scratch directory `<tmp>/<name>-<pid>` holding `dirs`.
pub fn scratch_root(name: &str, dirs: &[&str]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for dir in dirs {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    root
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
pub struct LoadResult {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn add(&mut self, slice: LoadResult) {
        self.latencies.extend(slice.latencies);
        self.errors += slice.errors;
        self.elapsed += slice.elapsed;
    }

    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    pub fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[index].as_secs_f64() * 1000.0
    }
}

/// `clients` threads call `call` in a loop for `duration`; each call's latency is recorded
/// when it returns true, an error counted otherwise.
pub fn load(clients: usize, duration: Duration, call: &(impl Fn() -> bool + Sync)) -> LoadResult {
    load_each(&mut vec![(); clients], duration, &|_: &mut ()| call())
}

/// [`load`] with a thread per element of `clients`, each calling `call` on its own element (a
/// client's session, say) in a loop for `duration`.
pub fn load_each<C: Send>(
    clients: &mut [C],
    duration: Duration,
    call: &(impl Fn(&mut C) -> bool + Sync),
) -> LoadResult {
    let started = Instant::now();
    let deadline = started + duration;
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter_mut()
            .map(|client| {
                scope.spawn(move || {
                    let (mut ok, mut errors) = (Vec::new(), 0);
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        if call(client) {
                            ok.push(t.elapsed());
                        } else {
                            errors += 1;
                        }
                    }
                    (ok, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results
        .iter()
        .flat_map(|(ok, _)| ok.iter().copied())
        .collect();
    latencies.sort_unstable();
    LoadResult {
        latencies,
        errors: results.iter().map(|(_, e)| e).sum(),
        elapsed,
    }
}

/// `program` to be run in a session of its own, as a service manager starts a server: a daemon
/// run from a terminal would keep that terminal as its own and so give each tool a session of
/// its own too (the sandbox's run sequence, step 2), which schedules differently; the figures
/// must not depend on whether the benchmark ran in a terminal. `setsid` execs in place (the
/// child is no group leader), so the child's pid is the server's.
pub fn as_service(program: &Path) -> Command {
    let mut command = Command::new("setsid");
    command.arg(program);
    command
}

/// Starts the daemon and returns it with the time until `/health` answered 200.
pub fn start(toolgate: &Path, config: &Path, port: u16, root: &Path) -> (Child, Duration) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("daemon.log"))
        .expect("log");
    let started = Instant::now();
    let mut child = as_service(toolgate)
        .args(["serve", "--config"])
        .arg(config)
        .env(
            "RUST_LOG",
            std::env::var("TOOLGATE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn toolgate");
    loop {
        if get(port, "/health").is_some() {
            return (child, started.elapsed());
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "toolgate exited during start ({status}); see {}",
                root.join("daemon.log").display()
            );
        }
        assert!(
            started.elapsed() < START_LIMIT,
            "toolgate not ready in {START_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn stop(mut child: Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child; no memory involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
}

thread_local! {
    /// Each client thread's persistent connection, opened on first use and after a failure.
    pub static KEPT: std::cell::RefCell<Option<TcpStream>> = const { std::cell::RefCell::new(None) };
    /// The same, to the second server a benchmark compares with (the naive server).
    pub static KEPT_OTHER: std::cell::RefCell<Option<TcpStream>> = const { std::cell::RefCell::new(None) };
    /// The same, to a third server (the daemon with tenants on).
    pub static KEPT_THIRD: std::cell::RefCell<Option<TcpStream>> = const { std::cell::RefCell::new(None) };
}

/// One request on the thread's persistent connection (HTTP/1.1 keep-alive, as a
/// `requests.Session` makes them); the body when the status is 200. A failed exchange drops
/// the connection so the next request opens a new one.
pub fn post_kept(
    kept: &mut Option<TcpStream>,
    port: u16,
    path: &str,
    body: &str,
) -> Option<String> {
    post_kept_with(kept, port, path, body, "")
}

/// [`post_kept`] with extra header lines (each ending in `\r\n`), e.g. `Authorization`.
pub fn post_kept_with(
    kept: &mut Option<TcpStream>,
    port: u16,
    path: &str,
    body: &str,
    headers: &str,
) -> Option<String> {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if kept.is_none() {
        *kept = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).ok();
    }
    let response = kept.as_mut().and_then(|stream| {
        stream.write_all(request.as_bytes()).ok()?;
        read_response(stream)
    });
    if response.is_none() {
        *kept = None;
    }
    response.filter(|r| r.starts_with("HTTP/1.1 200"))
}

/// Reads one response with a `Content-Length` body from a kept connection.
pub fn read_response(stream: &mut TcpStream) -> Option<String> {
    let mut bytes = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        let read = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        bytes.extend_from_slice(&chunk[..read]);
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = std::str::from_utf8(&bytes[..header_end]).ok()?;
    let length: usize = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })?;
    while bytes.len() < header_end + length {
        let read = stream.read(&mut chunk).ok().filter(|&n| n > 0)?;
        bytes.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(bytes).ok()
}

pub fn get(port: u16, path: &str) -> Option<String> {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"),
    )
}

/// One exchange; the body when the status is 200.
pub fn exchange(port: u16, request: &str) -> Option<String> {
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}
