//! Shared helpers for the black-box daemon tests: locate the built binaries, write a config,
//! start the real `toolgate` on a free port, and talk HTTP/1.1 to it over a plain TcpStream
//! (a tiny client keeps the tests free of a heavy HTTP stack).
//!
//! Invariant: a started daemon is killed when its handle drops, so a failing test never leaves
//! one behind; every wait is bounded and fails with the daemon's log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod test_host;

/// How long a daemon may take to answer `/health` after start (plugin compilation included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a single HTTP exchange may take in a test (a tool call included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository root (`tests/..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `target/debug` (or the profile dir) of the running test executable.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

fn built_binary(name: &str, how: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first ({how}; `just test` does this)",
        path.display()
    );
    path
}

/// The daemon binary under test.
pub fn toolgate_binary() -> PathBuf {
    built_binary("toolgate", "cargo build -p toolgate")
}

/// The fake tool binary (copied as `terrascan`/`prowler` by the tests).
pub fn fake_tool_binary() -> PathBuf {
    built_binary(
        "toolgate-fake-tool",
        "cargo build -p toolgate-tests --bin toolgate-fake-tool",
    )
}

/// A built plugin component, `relative` to the repository (e.g. `target/plugins/checkov.wasm`);
/// fails the test (never skips it) when `recipe` was not run.
pub fn built_component(relative: &str, recipe: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `{recipe}` first",
        path.display()
    );
    path
}

/// The plugins the daemon tests configure (`[tools.terrascan]`, `[tools.prowler]`).
pub const TESTED_PLUGINS: &[&str] = &["terrascan", "prowler"];

/// A plugin directory holding only `TESTED_PLUGINS`, copied from the real plugins built by
/// `just build-plugins`. The daemon tests count tools and expect every loaded one to be
/// configured, so another plugin built into `target/plugins` (checkov) must not reach them.
/// Copied once per test process (the test threads share it); each file is copied under a name
/// private to the process and renamed into place, so test processes running at once never see a
/// half-written plugin.
pub fn plugins_dir() -> PathBuf {
    static PREPARED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PREPARED
        .get_or_init(|| plugin_subset("plugins-for-daemon-tests", TESTED_PLUGINS))
        .clone()
}

/// `target/<name>`, holding only the built plugins of `tools` (see [`plugins_dir`] for how it
/// is copied). Call it once per test process and directory name.
pub fn plugin_subset(name: &str, tools: &[&str]) -> PathBuf {
    let built = repo_root().join("target/plugins");
    let dir = repo_root().join("target").join(name);
    std::fs::create_dir_all(&dir).expect("create the tests' plugin directory");
    for tool in tools {
        let source = built.join(format!("{tool}.wasm"));
        assert!(
            source.is_file(),
            "{} is missing: run `just build-plugins` first",
            source.display()
        );
        let staged = dir.join(format!(".{tool}.wasm.{}", std::process::id()));
        std::fs::copy(&source, &staged).expect("copy a plugin");
        std::fs::rename(&staged, dir.join(format!("{tool}.wasm"))).expect("rename a plugin");
    }
    dir
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

/// Copies the fake tool into `dir` under `name` (a copy, not a symlink: the sandbox runs the
/// canonical path, and the fake tool picks its behaviour from its own file name).
pub fn install_fake_tool(dir: &Path, name: &str) -> PathBuf {
    let target = dir.join(name);
    std::fs::copy(fake_tool_binary(), &target).expect("copy fake tool");
    target
}

/// How a slow tool script runs its `sleep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowTool {
    /// `sleep` in a child process: a correct kill must reach the whole process group.
    Child,
    /// `exec sleep`: the tool process itself sleeps (no grandchild).
    Exec,
}

/// Writes an executable shell script `name` into `dir` that sleeps `secs` seconds.
pub fn install_slow_tool(dir: &Path, name: &str, secs: u32, how: SlowTool) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let target = dir.join(name);
    let sleep = match how {
        SlowTool::Child => format!("sleep {secs}\necho done"),
        SlowTool::Exec => format!("exec sleep {secs}"),
    };
    // It answers the start-up probe (`terrascan version`, `prowler --version`) at once, as the
    // real tools do; only a scan is slow.
    let probe = "case \"$1\" in version|--version) echo \"slow tool 1.0\"; exit 0;; esac";
    std::fs::write(
        &target,
        format!("#!/bin/sh\n{probe}\necho started\n{sleep}\n"),
    )
    .expect("write script");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    target
}

/// Pids of live processes whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Zombies are already dead; only their parent's reaping is pending.
            let zombie = state
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            cmdline.contains(needle) && !zombie
        })
        .collect()
}

/// A running daemon; killed (SIGKILL) on drop if still running.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    /// Where it listens: `127.0.0.1:port`, or a test host's address.
    address: SocketAddr,
    log: PathBuf,
}

impl Daemon {
    /// Starts `toolgate serve --config CONFIG` (the config must listen on `port`) and waits
    /// until `/health` answers.
    pub fn start(config: &Path, port: u16, log: &Path) -> Daemon {
        let mut serve = Command::new(toolgate_binary());
        serve
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(repo_root());
        Daemon::spawn(serve, port, log)
    }

    /// Runs `serve`, a `toolgate serve ...` command the caller set up (arguments, working
    /// directory, environment), with its output to `log`, and waits until `/health` answers
    /// on `port`.
    pub fn spawn(serve: Command, port: u16, log: &Path) -> Daemon {
        Daemon::spawn_at(serve, loopback(port), log)
    }

    /// [`Daemon::spawn`] for a daemon listening on `address` (a test host's).
    pub fn spawn_at(mut serve: Command, address: SocketAddr, log: &Path) -> Daemon {
        let log_file = std::fs::File::create(log).expect("log file");
        let child = serve
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file)
            .spawn()
            .expect("spawn toolgate");
        let mut daemon = Daemon {
            child: Some(child),
            port: address.port(),
            address,
            log: log.to_path_buf(),
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "toolgate exited during start-up ({status}); log:\n{}",
                    self.log()
                );
            }
            let health = exchange(self.address, "GET", "/health", &[], None, REQUEST_TIMEOUT);
            if health.is_ok_and(|r| r.status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "toolgate did not answer /health within {START_TIMEOUT:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where the daemon listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// One HTTP/1.1 exchange with the daemon, wherever it listens, with extra `headers`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        exchange(self.address, method, path, headers, body, REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("{method} {path} at {}: {e}", self.address))
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` and waits for the daemon to exit (bounded).
    pub fn signal_and_wait(&mut self, signal: i32, within: Duration) -> ExitStatus {
        self.signal(signal);
        self.wait_exit(within)
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal}) failed");
    }

    /// Waits for the daemon to exit (bounded; killed and a panic beyond `within`).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let mut child = self.child.take().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "toolgate did not exit within {within:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a request and returns the response (panics on transport errors).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        try_request(self.port, method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; log:\n{}", self.log()))
    }

    /// GET and parse as text.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// The raw request bytes for one HTTP/1.1 exchange.
pub fn request_bytes(method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    request_bytes_with(method, path, &[], body)
}

/// The raw request bytes for one HTTP/1.1 exchange with extra `headers` (name, value).
pub fn request_bytes_with(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Vec<u8> {
    let body = body.unwrap_or("");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One HTTP/1.1 exchange with extra `headers` (e.g. `Authorization`).
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    exchange(loopback(port), method, path, headers, body, REQUEST_TIMEOUT)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Opens a connection and sends a request without reading the answer (for disconnect tests).
pub fn send_only(port: u16, method: &str, path: &str, body: Option<&str>) -> TcpStream {
    let mut stream = connect(port).expect("connect");
    stream
        .write_all(&request_bytes(method, path, body))
        .expect("send");
    stream
}

/// Like [`send_only`], with extra `headers` (e.g. `Authorization`).
pub fn send_only_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> TcpStream {
    let mut stream = connect(port).expect("connect");
    stream
        .write_all(&request_bytes_with(method, path, headers, body))
        .expect("send");
    stream
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    connect_within(port, REQUEST_TIMEOUT)
}

fn connect_within(port: u16, within: Duration) -> std::io::Result<TcpStream> {
    connect_to(loopback(port), within)
}

/// `127.0.0.1:port`.
fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn connect_to(address: SocketAddr, within: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(within))?;
    stream.set_write_timeout(Some(within))?;
    Ok(stream)
}

/// One HTTP/1.1 exchange with `Connection: close`.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<Response> {
    try_request_within(port, method, path, body, REQUEST_TIMEOUT)
}

/// [`try_request`] for a call that may take longer than `REQUEST_TIMEOUT` (a real scanner).
pub fn try_request_within(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    within: Duration,
) -> std::io::Result<Response> {
    exchange(loopback(port), method, path, &[], body, within)
}

/// One HTTP/1.1 exchange with the server at `address`, waiting at most `within` for it.
fn exchange(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    within: Duration,
) -> std::io::Result<Response> {
    let mut stream = connect_to(address, within)?;
    // A server may answer (413) and close before reading a large body: keep the answer.
    let _ = stream.write_all(&request_bytes_with(method, path, headers, body));
    read_response(stream)
}

/// Reads one response from a connection the server closes afterwards.
pub fn read_response(stream: TcpStream) -> std::io::Result<Response> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(&format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim(), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        // A reset after the full answer (server closed with unread request bytes) is fine.
        let _ = reader.read_to_end(&mut body);
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `within` with `what`.
pub fn wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A throwaway environment for one daemon: a workspace holding an IaC sample, a tools dir, a
/// data dir, a free port and a config file. Removed on drop.
pub struct TestEnv {
    pub root: PathBuf,
    pub port: u16,
}

/// What a test changes in the generated configuration.
#[derive(Debug, Clone, Default)]
pub struct EnvOptions {
    /// Binary for terrascan; `None` configures a path that does not exist.
    pub terrascan: Option<PathBuf>,
    /// Binary for prowler; `None` configures a path that does not exist.
    pub prowler: Option<PathBuf>,
    /// Extra lines for `[limits]`.
    pub limits: String,
    /// Extra lines for `[http]`.
    pub http: String,
    /// Extra lines for `[sandbox]`.
    pub sandbox: String,
    /// Extra lines for `[tools.terrascan]`.
    pub terrascan_extra: String,
    /// Extra lines for `[tools.prowler]` (which is granted the network its plugin asks for).
    pub prowler_extra: String,
    /// Text appended at the end of the file: `[[tenants]]` entries.
    pub tenants: String,
}

impl TestEnv {
    /// A fresh environment; `name` makes the directory recognisable.
    pub fn new(name: &str) -> TestEnv {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!(
            "toolgate-test-{name}-{}-{unique}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for sub in ["workspace/terraform", "tools", "data"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let sample = repo_root().join("examples/terraform/aws_ami/main.tf");
        std::fs::copy(&sample, root.join("workspace/terraform/main.tf"))
            .unwrap_or_else(|e| panic!("copy {}: {e}", sample.display()));
        TestEnv {
            root,
            port: free_port(),
        }
    }

    pub fn workspace(&self) -> PathBuf {
        self.root.join("workspace")
    }

    pub fn tools_dir(&self) -> PathBuf {
        self.root.join("tools")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn output_root(&self) -> PathBuf {
        self.data_dir().join("output")
    }

    /// Writes the configuration file and returns its path.
    pub fn write_config(&self, options: &EnvOptions) -> PathBuf {
        let binary = |configured: &Option<PathBuf>, tool: &str| {
            configured
                .clone()
                .unwrap_or_else(|| self.root.join(format!("not-installed/{tool}")))
        };
        let text = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             data_dir = {data:?}\n\
             plugins_dir = {plugins:?}\n\
             log_format = \"json\"\n\
             [sandbox]\n\
             allowed_dirs = [{workspace:?}]\n\
             output_root = {output:?}\n\
             {sandbox}\n\
             [tools.terrascan]\n\
             binary = {terrascan:?}\n\
             {terrascan_extra}\n\
             [tools.prowler]\n\
             binary = {prowler:?}\n\
             allow_network = true\n\
             {prowler_extra}\n\
             [limits]\n\
             {limits}\n\
             [http]\n\
             {http}\n\
             {tenants}\n",
            port = self.port,
            data = self.data_dir().display().to_string(),
            plugins = plugins_dir().display().to_string(),
            workspace = self.workspace().display().to_string(),
            output = self.output_root().display().to_string(),
            sandbox = options.sandbox,
            terrascan = binary(&options.terrascan, "terrascan")
                .display()
                .to_string(),
            terrascan_extra = options.terrascan_extra,
            prowler = binary(&options.prowler, "prowler").display().to_string(),
            prowler_extra = options.prowler_extra,
            limits = options.limits,
            http = options.http,
            tenants = options.tenants,
        );
        let path = self.root.join("toolgate.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Writes the configuration, then rewrites it through `edit` (for what `EnvOptions` does
    /// not cover), and returns its path.
    pub fn write_config_edited(
        &self,
        options: &EnvOptions,
        edit: impl FnOnce(String) -> String,
    ) -> PathBuf {
        let path = self.write_config(options);
        let text = std::fs::read_to_string(&path).expect("read config");
        std::fs::write(&path, edit(text)).expect("write config");
        path
    }

    /// Writes the configuration and starts a daemon on it.
    pub fn start(&self, options: &EnvOptions) -> Daemon {
        let config = self.write_config(options);
        Daemon::start(&config, self.port, &self.root.join("daemon.log"))
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
