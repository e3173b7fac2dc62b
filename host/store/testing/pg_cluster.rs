//! A throwaway PostgreSQL for the store's tests and benchmarks: [`test_database`] gives each
//! caller a fresh, empty database with a random name, dropped when its [`TestDatabase`] is.
//!
//! Where the server comes from: `TOOLGATE_TEST_DATABASE_URL` (an existing server on which the
//! caller may create databases), else one cluster per process, made on first use: `initdb` into
//! a temporary directory and `postgres` on a free loopback port, found on `PATH` or under
//! `/usr/lib/postgresql/*/bin`, run as the `postgres` user when this process is root (initdb
//! refuses root). With neither, tests skip with a message saying how to install PostgreSQL,
//! and fail instead when `CI` is set.
//!
//! Invariant: nothing outlives the process. The server runs under a small shell watchdog that
//! reads this process's end of a pipe; when the process ends, however it ends (a panic, exit,
//! SIGKILL), the pipe closes and the watchdog stops the server (SIGTERM, then SIGKILL after
//! `STOP_GRACE`) and deletes the cluster's directory.
//!
//! This file is included by path (`#[path]`) into the crate's tests and its benchmarks, so it
//! names nothing of the crate.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Points the tests at an existing server instead of a throwaway cluster.
pub const DATABASE_URL_VARIABLE: &str = "TOOLGATE_TEST_DATABASE_URL";

/// How long a new cluster may take to accept connections (initdb excluded): a loaded CI
/// machine starts one in about a second.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the server gets to stop on SIGTERM before the watchdog kills it.
const STOP_GRACE_TENTHS: u32 = 50;

/// Server settings for tests: durability is worth nothing in a cluster deleted at exit, and
/// every test's store opens a pool of its own.
const TEST_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
];

/// Set by [`make_durable`]: the cluster keeps PostgreSQL's durable defaults.
static DURABLE: AtomicBool = AtomicBool::new(false);

/// Makes the cluster this process starts (if it has not started yet) keep PostgreSQL's
/// durable defaults (fsync, synchronous commits) instead of `TEST_SETTINGS`: for benchmarks,
/// whose figures must be what an operator's server would do.
#[allow(dead_code, reason = "only the benchmarks call it")]
pub fn make_durable() {
    DURABLE.store(true, Ordering::SeqCst);
}

/// The watchdog: starts the server (arguments: postgres binary, data directory, port, socket
/// directory, cluster directory, then `name=value` settings), reads commands on its standard
/// input (`stop`: PostgreSQL's fast shutdown, waited for; `start`: the server again, on the same
/// data and port) until end of file, then stops the server and removes the cluster's directory.
const WATCHDOG: &str = r#"
postgres_bin=$1 data=$2 port=$3 sockets=$4 cluster=$5
shift 5
settings=""
for setting in "$@"; do settings="$settings -c $setting"; done
start() {
    # shellcheck disable=SC2086
    "$postgres_bin" -D "$data" -p "$port" -c listen_addresses=127.0.0.1 -k "$sockets" $settings \
        >>"$cluster/server.log" 2>&1 </dev/null &
    server=$!
}
start
while read -r command; do
    case "$command" in
        stop) kill -INT "$server" 2>/dev/null; wait "$server" 2>/dev/null ;;
        start) start ;;
    esac
done
kill -TERM "$server" 2>/dev/null
tenths=0
while kill -0 "$server" 2>/dev/null && [ "$tenths" -lt "$STOP_GRACE_TENTHS" ]; do
    sleep 0.1
    tenths=$((tenths + 1))
done
kill -KILL "$server" 2>/dev/null
wait "$server" 2>/dev/null
rm -rf "$cluster"
"#;

/// Why no throwaway cluster or test database could be had.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no initdb/postgres on PATH or under /usr/lib/postgresql/*/bin, and CI is set; {INSTALL}"
    )]
    NotInstalledInCi,
    #[error(
        "running as root, and there is no postgres account to run initdb as (it refuses root); \
         create one (useradd --system postgres) or run as another user"
    )]
    NoPostgresAccount,
    #[error("the postgres account's {field} is not a number: {value:?}")]
    BadAccount { field: &'static str, value: String },
    #[error("cannot {doing}: {source}")]
    Io {
        doing: String,
        source: std::io::Error,
    },
    #[error("initdb failed: {0}")]
    Initdb(String),
    #[error("postgres exited ({status}) before accepting connections: {log}")]
    ServerExited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("postgres did not listen within {START_TIMEOUT:?}: {0}")]
    StartTimeout(String),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: tokio_postgres::Error,
    },
    #[error("cannot {doing}: {source}")]
    Sql {
        doing: String,
        source: tokio_postgres::Error,
    },
}

/// How to get PostgreSQL, for the skip and failure messages.
const INSTALL: &str = "install PostgreSQL (`just test` does: apt-get install postgresql on \
    Debian/Ubuntu), or set TOOLGATE_TEST_DATABASE_URL to a server where the tests may create \
    databases";

/// An I/O failure while `doing` something.
fn io(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let doing = doing.into();
    move |source| ClusterError::Io { doing, source }
}

/// A database made for one test; dropped (with its connections) when this is.
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
    /// The directory of the server's Unix socket, when this process started the server.
    socket_dir: Option<PathBuf>,
}

impl TestDatabase {
    /// The connection string of this database (key=value form).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same as a `postgres://` URL (what a daemon's `store.url` takes), over TCP or, when
    /// `TOOLGATE_TEST_DATABASE_URL` names a socket directory, that Unix socket.
    #[allow(
        dead_code,
        reason = "the daemon's tests and benchmarks call it, not the store's"
    )]
    pub fn postgres_url(&self) -> String {
        self.postgres_url_on(None)
    }

    /// [`Self::postgres_url`] through the server's Unix socket, as a daemon on the server's
    /// own host would connect; `None` for a server this process did not start.
    #[allow(dead_code, reason = "the daemons benchmark calls it")]
    pub fn postgres_socket_url(&self) -> Option<String> {
        let directory = self.socket_dir.as_deref()?;
        Some(self.postgres_url_on(Some(directory)))
    }

    /// This database's `postgres://` URL, through the socket in `socket_dir` when given, else
    /// on the host its connection string names.
    fn postgres_url_on(&self, socket_dir: Option<&Path>) -> String {
        let config: tokio_postgres::Config = self.url.parse().expect("a valid database URL");
        let host = match (socket_dir, config.get_hosts().first()) {
            (Some(directory), _) => socket_host(directory),
            (None, Some(tokio_postgres::config::Host::Tcp(host))) => host.clone(),
            (None, Some(tokio_postgres::config::Host::Unix(directory))) => socket_host(directory),
            (None, None) => panic!("the test database URL names no host"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres");
        let password = config
            .get_password()
            .map(|password| format!(":{}", String::from_utf8_lossy(password)))
            .unwrap_or_default();
        let dbname = config.get_dbname().expect("a database name");
        format!("postgres://{user}{password}@{host}:{port}/{dbname}")
    }
}

/// A socket directory as a URL's host: percent-encoded, which tokio-postgres reads as a path.
fn socket_host(directory: &Path) -> String {
    directory
        .to_string_lossy()
        .replace('%', "%25")
        .replace('/', "%2F")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which must not block on itself: the drop gets a
        // thread and a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(io("start a runtime to drop the test database"))?;
            runtime.block_on(async {
                let admin = admin_client(&admin_url).await?;
                let forced = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                if admin.batch_execute(&forced).await.is_err() {
                    // Before PostgreSQL 13 there is no FORCE; the store's pool is gone by now.
                    admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                        .await
                        .map_err(|source| ClusterError::Sql {
                            doing: format!("drop the test database {name}"),
                            source,
                        })?;
                }
                Ok::<_, ClusterError>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("cannot drop the test database {}: {error}", self.name);
        }
    }
}

/// A fresh database, or `None` (after printing why) when no PostgreSQL is available and `CI`
/// is not set. Panics when CI is set and there is none, or when a server fails to start.
pub async fn test_database() -> Option<TestDatabase> {
    let (admin_url, socket_dir) = match std::env::var(DATABASE_URL_VARIABLE) {
        Ok(url) if !url.is_empty() => (url, None),
        _ => match cluster() {
            Ok(Some(cluster)) => (cluster.admin_url.clone(), Some(cluster.socket_dir.clone())),
            Ok(None) => return None,
            Err(error) => panic!("cannot start a throwaway PostgreSQL cluster: {error}"),
        },
    };
    let name = format!("toolgate_test_{}", uuid::Uuid::now_v7().simple());
    let admin = admin_client(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|error| panic!("cannot create the test database {name}: {error}"));
    let config: tokio_postgres::Config = admin_url.parse().expect("a valid database URL");
    Some(TestDatabase {
        url: url_with_database(&config, &name),
        admin_url,
        name,
        socket_dir,
    })
}

/// A connection to the server's maintenance database, retried while the server starts.
async fn admin_client(url: &str) -> Result<tokio_postgres::Client, ClusterError> {
    let started = Instant::now();
    loop {
        match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return Ok(client);
            }
            Err(source) if started.elapsed() > START_TIMEOUT => {
                return Err(ClusterError::Connect {
                    url: url.to_string(),
                    source,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// `config` with `database` instead of its own, as a key=value connection string.
fn url_with_database(config: &tokio_postgres::Config, database: &str) -> String {
    let quote = |value: &str| format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = vec![format!("dbname={}", quote(database))];
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            quote(&String::from_utf8_lossy(password))
        ));
    }
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", quote(&hosts.join(","))));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        parts.push(format!("port={}", ports.join(",")));
    }
    parts.join(" ")
}

/// A cluster: this process's shared one, or a [`PrivateCluster`].
struct Cluster {
    admin_url: String,
    port: u16,
    /// Where the server's Unix socket is (`-k`).
    socket_dir: PathBuf,
    /// Kept open for the cluster's life: its end of file tells the watchdog to stop.
    watchdog: Child,
}

/// A cluster of one test's own, which the test may stop and start again (PostgreSQL's fast
/// shutdown, then the server again on the same data and port), e.g. to see daemons through a
/// database restart. Removed, like the shared one, when dropped or when the process ends.
#[allow(dead_code, reason = "each test crate uses part of it")]
pub struct PrivateCluster {
    cluster: Cluster,
}

#[allow(dead_code, reason = "each test crate uses part of it")]
impl PrivateCluster {
    /// A new cluster, or `None` (after saying why) when PostgreSQL is not installed outside
    /// CI. Panics when CI is set and there is none, or when the server fails to start.
    pub fn start() -> Option<PrivateCluster> {
        match start_cluster() {
            Ok(cluster) => cluster.map(|cluster| PrivateCluster { cluster }),
            Err(error) => panic!("cannot start a throwaway PostgreSQL cluster: {error}"),
        }
    }

    /// Its `postgres` database as a `postgres://` URL over TCP (what `store.url` takes).
    pub fn postgres_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.cluster.port
        )
    }

    /// Hands `path` to the account the server runs as (`postgres` when this process is root;
    /// otherwise it already is this process's): for files it must own, such as a TLS key.
    pub fn give_to_server(&self, path: &Path) -> std::io::Result<()> {
        if !running_as_root() {
            return Ok(());
        }
        let (uid, gid) = postgres_account().map_err(std::io::Error::other)?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
    }

    /// Stops the server with PostgreSQL's fast shutdown (sessions ended, new connections
    /// refused) and returns once it has exited.
    pub fn stop(&mut self) {
        self.command("stop");
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.cluster.port)).is_ok() {
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again and returns once it accepts connections.
    pub fn restart(&mut self) {
        self.command("start");
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", self.cluster.port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start again");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn command(&mut self, command: &str) {
        let stdin = self
            .cluster
            .watchdog
            .stdin
            .as_mut()
            .expect("the watchdog's input");
        writeln!(stdin, "{command}").expect("tell the watchdog");
        stdin.flush().expect("tell the watchdog");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // End of file: the watchdog stops the server and removes the directory.
        drop(self.cluster.watchdog.stdin.take());
        let _ = self.cluster.watchdog.wait();
    }
}

/// The process's cluster, started on first use; `Ok(None)` to skip.
fn cluster() -> Result<Option<&'static Cluster>, &'static ClusterError> {
    static CLUSTER: OnceLock<Result<Option<Cluster>, ClusterError>> = OnceLock::new();
    CLUSTER
        .get_or_init(start_cluster)
        .as_ref()
        .map(Option::as_ref)
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "0" && value != "false")
}

/// Where `initdb` and `postgres` are: `PATH`, then the newest `/usr/lib/postgresql/*/bin`.
fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort();
    on_path
        .chain(versioned.into_iter().rev().map(|(_, bin)| bin))
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// The uid and gid of the `postgres` account, from `getent`.
fn postgres_account() -> Result<(u32, u32), ClusterError> {
    let output = Command::new("getent")
        .args(["passwd", "postgres"])
        .output()
        .map_err(io("run getent"))?;
    let line = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = line.trim().split(':').collect();
    let number = |field: &'static str, value: &str| {
        value.parse().map_err(|_| ClusterError::BadAccount {
            field,
            value: value.to_string(),
        })
    };
    match (fields.get(2), fields.get(3)) {
        (Some(uid), Some(gid)) => Ok((number("uid", uid)?, number("gid", gid)?)),
        _ => Err(ClusterError::NoPostgresAccount),
    }
}

/// Whether this process runs as root (`/proc/self` belongs to the process's effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").is_ok_and(|metadata| metadata.uid() == 0)
}

/// A command run as `account` (uid, gid) when given.
fn command_as(program: &Path, account: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt as _;
    let mut command = Command::new(program);
    if let Some((uid, gid)) = account {
        command.uid(uid).gid(gid);
    }
    command
}

fn start_cluster() -> Result<Option<Cluster>, ClusterError> {
    let Some(bin) = find_binaries() else {
        if ci() {
            return Err(ClusterError::NotInstalledInCi);
        }
        // Written to the process's stderr itself, not through `eprintln!`, which the test
        // harness captures and shows only for failing tests: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!! SKIPPED (not in CI): the PostgreSQL store tests need initdb and postgres \
             (not found on PATH nor under /usr/lib/postgresql/*/bin); {INSTALL} !!!!!\n"
        );
        return Ok(None);
    };
    let account = if running_as_root() {
        Some(postgres_account()?)
    } else {
        None
    };
    let cluster_dir = tempfile::Builder::new()
        .prefix("toolgate-pg-")
        .tempdir()
        .map_err(io("make a temporary directory"))?
        .keep();
    if let Some((uid, gid)) = account {
        std::os::unix::fs::chown(&cluster_dir, Some(uid), Some(gid))
            .map_err(io(format!("give {} to postgres", cluster_dir.display())))?;
    }
    let result = initdb_and_start(&bin, &cluster_dir, account);
    if result.is_err() {
        // Nothing is running to remove it: the watchdog never started or has stopped.
        let _ = std::fs::remove_dir_all(&cluster_dir);
    }
    result.map(Some)
}

fn initdb_and_start(
    bin: &Path,
    cluster_dir: &Path,
    account: Option<(u32, u32)>,
) -> Result<Cluster, ClusterError> {
    let data = cluster_dir.join("data");
    let initdb = command_as(&bin.join("initdb"), account)
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(io("run initdb"))?;
    if !initdb.status.success() {
        return Err(ClusterError::Initdb(
            String::from_utf8_lossy(&initdb.stderr).into_owned(),
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(io("find a free port"))?
        .port();
    let mut watchdog = command_as(Path::new("/bin/sh"), account)
        .env("STOP_GRACE_TENTHS", STOP_GRACE_TENTHS.to_string())
        .args(["-c", WATCHDOG, "toolgate-pg-watchdog"])
        .arg(bin.join("postgres"))
        .arg(&data)
        .arg(port.to_string())
        .arg(cluster_dir)
        .arg(cluster_dir)
        .args(if DURABLE.load(Ordering::SeqCst) {
            &["max_connections=300"][..]
        } else {
            TEST_SETTINGS
        })
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io("start the PostgreSQL watchdog"))?;
    let started = Instant::now();
    let socket = cluster_dir.join(format!(".s.PGSQL.{port}"));
    while !socket.exists() {
        if let Ok(Some(status)) = watchdog.try_wait() {
            return Err(ClusterError::ServerExited {
                status,
                log: server_log(cluster_dir),
            });
        }
        if started.elapsed() > START_TIMEOUT {
            // Closing its stdin stops the server; the watchdog removes the directory.
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
            return Err(ClusterError::StartTimeout(server_log(cluster_dir)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Cluster {
        admin_url: format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        port,
        socket_dir: cluster_dir.to_path_buf(),
        watchdog,
    })
}

fn server_log(cluster_dir: &Path) -> String {
    let mut log = String::new();
    let _ = std::fs::File::open(cluster_dir.join("server.log"))
        .and_then(|mut file| file.read_to_string(&mut log));
    log
}
