//! Black-box tests of the real `toolgate` binary's connection handling: slow or silent clients
//! are disconnected within the configured `[http]` timeouts while others are served (and a long
//! tool call is not), the connection beyond `http.max_connections` is refused with a 503 while
//! the open ones work, and the soft open-file limit is raised to the hard one at start-up.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use toolgate_tests::{
    Daemon, EnvOptions, Response, SlowTool, TestEnv, install_slow_tool, read_response,
    toolgate_binary, wait_for,
};

/// Partial-header connections held at once (the review held 50).
const SLOW_CLIENTS: usize = 50;
/// Scheduling slack on top of a configured timeout before a test calls the daemon late.
const SLACK: Duration = Duration::from_secs(4);

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
}

/// Reads until the daemon closes `stream` and returns what it sent and when it closed; a
/// reset counts as closed. Panics when the daemon keeps it open for 30 s.
fn read_until_closed(stream: &mut TcpStream) -> (String, Instant) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => break,
            Err(error) => panic!("the daemon kept the connection open: {error}"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        Instant::now(),
    )
}

/// One keep-alive exchange on `stream`: the response, read by its `Content-Length`.
fn exchange(stream: &mut TcpStream, path: &str) -> Response {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    read_kept_response(stream)
}

/// One response on a connection that stays open, read by its `Content-Length`.
fn read_kept_response(stream: &mut TcpStream) -> Response {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).expect("read a response");
        assert!(read > 0, "the daemon closed a kept connection");
        received.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&received);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .expect("content-length");
            if body.len() >= length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .expect("status");
                return Response {
                    status,
                    headers: Vec::new(),
                    body: body.to_string(),
                };
            }
        }
    }
}

#[test]
fn partial_headers_are_cut_off_at_the_header_timeout_while_others_are_served() {
    let env = TestEnv::new("conn-slow-headers");
    let daemon = env.start(&EnvOptions {
        http: "header_read_timeout_secs = 1\nidle_timeout_secs = 30".into(),
        ..EnvOptions::default()
    });
    let sent = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .map(|_| {
            let mut stream = connect(env.port);
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .expect("send part of a head");
            stream
        })
        .collect();
    // A caller with a whole request is served while the slow ones are held.
    let health = daemon.get("/health");
    assert_eq!(health.status, 200, "{}", health.body);
    for stream in &mut slow {
        let (received, closed) = read_until_closed(stream);
        assert!(
            !received.contains(" 200 "),
            "a partial head was answered: {received}"
        );
        let held = closed - sent;
        assert!(
            held < Duration::from_secs(1) + SLACK,
            "a partial head held its connection for {held:?}"
        );
    }
    assert_eq!(daemon.get("/health").status, 200);
}

#[test]
fn a_silent_connection_waits_the_idle_timeout_and_a_begun_head_the_header_timeout() {
    let env = TestEnv::new("conn-idle");
    let _daemon = env.start(&EnvOptions {
        http: "idle_timeout_secs = 2\nheader_read_timeout_secs = 8".into(),
        ..EnvOptions::default()
    });
    // Never sends a byte: closed after the idle timeout.
    let mut silent = connect(env.port);
    let opened = Instant::now();
    // Kept alive after one answer: closed after the idle timeout too.
    let mut kept = connect(env.port);
    // Taken before the request: the daemon's idle wait starts after it answers, so never
    // earlier than this (an instant taken after the answer arrives may be later than it).
    let answered = Instant::now();
    assert_eq!(exchange(&mut kept, "/health").status, 200);
    for (stream, since) in [(&mut silent, opened), (&mut kept, answered)] {
        let (received, closed) = read_until_closed(stream);
        assert_eq!(received, "", "an idle connection gets no answer");
        let held = closed - since;
        assert!(
            held >= Duration::from_secs(2) && held < Duration::from_secs(2) + SLACK,
            "an idle connection was held {held:?}"
        );
    }
    // A request begun within the idle bound gets the header bound from its first byte: still
    // open after the idle bound, and answered once its head is complete.
    let mut begun = connect(env.port);
    begun
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send part of a head");
    std::thread::sleep(Duration::from_secs(3));
    begun.write_all(b"\r\n").expect("finish the head");
    assert_eq!(read_kept_response(&mut begun).status, 200);
}

#[test]
fn a_stalled_request_body_is_refused_after_the_body_timeout() {
    let env = TestEnv::new("conn-body");
    let daemon = env.start(&EnvOptions {
        http: "body_read_timeout_secs = 1".into(),
        ..EnvOptions::default()
    });
    let mut stalled = connect(env.port);
    let sent = Instant::now();
    stalled
        .write_all(
            b"POST /api/tools/terrascan HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .expect("send half a request");
    let (received, closed) = read_until_closed(&mut stalled);
    assert!(received.starts_with("HTTP/1.1 400 "), "{received}");
    assert!(received.contains("did not arrive within 1 s"), "{received}");
    let held = closed - sent;
    assert!(held < Duration::from_secs(1) + SLACK, "held {held:?}");
    assert_eq!(daemon.get("/health").status, 200);
}

#[test]
fn a_tool_call_longer_than_every_timeout_is_answered_and_its_connection_kept() {
    let env = TestEnv::new("conn-long-call");
    let slow = install_slow_tool(&env.tools_dir(), "terrascan", 4, SlowTool::Exec);
    let _daemon = env.start(&EnvOptions {
        terrascan: Some(slow),
        http: "idle_timeout_secs = 1\nheader_read_timeout_secs = 1\nbody_read_timeout_secs = 1"
            .into(),
        ..EnvOptions::default()
    });
    let mut kept = connect(env.port);
    kept.write_all(
        b"POST /api/tools/terrascan HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    )
    .expect("send");
    let answer = read_kept_response(&mut kept);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("\"return_code\":0"), "{}", answer.body);
    assert_eq!(exchange(&mut kept, "/health").status, 200);
}

#[test]
fn the_connection_beyond_the_cap_gets_503_while_the_open_ones_work() {
    const CAP: usize = 4;
    let env = TestEnv::new("conn-cap");
    let daemon = env.start(&EnvOptions {
        http: format!("max_connections = {CAP}\nidle_timeout_secs = 60"),
        ..EnvOptions::default()
    });
    // Each held connection is served once, so each is known to be open and counted.
    let mut held: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut stream = connect(env.port);
            assert_eq!(exchange(&mut stream, "/health").status, 200);
            stream
        })
        .collect();
    let mut beyond = connect(env.port);
    beyond
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let refused = read_response(beyond.try_clone().expect("clone")).expect("a refusal");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("5"), "{refused:?}");
    assert!(
        refused.body.contains(&format!("at most {CAP} at once")),
        "{}",
        refused.body
    );
    let (_, _) = read_until_closed(&mut beyond);
    // The open connections keep working.
    for stream in &mut held {
        assert_eq!(exchange(stream, "/health").status, 200);
    }
    // One closes: a new connection is served again.
    drop(held.pop());
    let served = wait_for(Duration::from_secs(10), "a free connection slot", || {
        toolgate_tests::try_request(env.port, "GET", "/health", None)
            .ok()
            .filter(|response| response.status == 200)
    });
    assert_eq!(served.status, 200);
    let log = daemon.log();
    assert!(log.contains("connection limit reached"), "{log}");
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one_and_both_are_logged() {
    use std::os::unix::process::CommandExt;

    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    /// The soft limit the daemon is started with: the common default.
    const LOW_SOFT: u64 = 1024;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if hard <= LOW_SOFT || hard == libc::RLIM_INFINITY {
        eprintln!("skipped: the hard open-file limit here ({hard}) leaves nothing to raise");
        return;
    }
    let env = TestEnv::new("conn-nofile");
    let config = env.write_config(&EnvOptions::default());
    let mut serve = std::process::Command::new(toolgate_binary());
    serve
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .current_dir(toolgate_tests::repo_root());
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit(2),
    // which is async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        serve.pre_exec(move || {
            setrlimit(Resource::RLIMIT_NOFILE, LOW_SOFT, hard).map_err(std::io::Error::from)
        });
    }
    let daemon = Daemon::spawn(serve, env.port, &env.root.join("daemon.log"));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid()))
        .expect("the daemon's limits");
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("Max open files");
    assert_eq!(
        open_files
            .split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>(),
        [hard.to_string(), hard.to_string()],
        "{open_files}"
    );
    let log = daemon.log();
    let event = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| {
            event["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("raised the soft open-file limit"))
        })
        .unwrap_or_else(|| panic!("no event about the open-file limit: {log}"));
    assert_eq!(event["previous_soft"], LOW_SOFT, "{event}");
    assert_eq!(event["soft"], hard, "{event}");
    assert_eq!(event["hard"], hard, "{event}");
}
