//! toolgate-fake-tool: a fake, and deliberately hostile, tool binary for the sandbox and daemon
//! tests. It depends on std and libc only.
//!
//! Behaviour is picked by argv[1] (see `usage`), or by the basename of argv[0]: copied or
//! symlinked as `terrascan` it prints a small terrascan JSON result and exits 3 ("violations
//! found"); as `prowler` it writes a small `*.ocsf.json` into the directory after
//! `-o`/`--output-directory` and exits 3 (as `terrascan-flood` it prints 1 GiB instead); given `AWS_SESSION_TOKEN`, the fake prowler echoes it
//! on stderr, stdout and in its report, as prowler at DEBUG does.
//!
//! The hostile modes never outlive their job on purpose except through the sandbox's failure:
//! `forkbomb` refuses to start as root without an RLIMIT_NPROC, so a misconfigured test cannot
//! take the machine down.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// Chunk written by the flood modes.
const FLOOD_CHUNK: usize = 64 * 1024;
/// What the fake `terrascan-flood` prints.
const FLOODING_SCANNER_BYTES: u64 = 1 << 30;
/// Allocation step of `memhog`.
const MEMHOG_STEP: usize = 64 * 1024 * 1024;
/// How long the sleeping modes sleep when not told otherwise: far beyond any test timeout.
const LONG_SLEEP: Duration = Duration::from_secs(600);

/// How many policies the fake terrascan claims when it finds none under `$HOME`.
const DOWNLOADED_POLICIES: usize = 8;

const TERRASCAN_RESULT: &str = r#"{
  "results": {
    "violations": [
      {
        "rule_name": "amiNotEncrypted",
        "description": "Enable AWS AMI Encryption",
        "rule_id": "AC_AWS_0001",
        "severity": "MEDIUM",
        "category": "Encryption \u0026 KeyManagement",
        "resource_name": "awsAmiEncrypted",
        "resource_type": "aws_ami",
        "module_name": "root",
        "file": "main.tf",
        "plan_root": "./",
        "line": 5
      }
    ],
    "skipped_violations": null,
    "scan_summary": {
      "file/folder": "/fake/iac",
      "iac_type": "terraform",
      "scanned_at": "2026-01-01 00:00:00.000000 +0000 UTC",
      "policies_validated": POLICIES_VALIDATED,
      "violated_policies": 1,
      "low": 0,
      "medium": 1,
      "high": 0
    }
  }
}
"#;

const PROWLER_FINDINGS: &str = r#"[{"message": "Password expiration is not set.", "metadata": {"event_code": "iam_password_policy_expires_passwords_within_90_days_or_less", "product": {"name": "Prowler", "uid": "prowler", "vendor_name": "Prowler", "version": "5.46.0"}, "version": "1.5.0"}, "severity_id": 3, "severity": "Medium", "status": "New", "status_code": "FAIL", "status_detail": "Password expiration is not set.", "status_id": 1, "finding_info": {"created_time": 1795357093, "desc": "IAM account password policy sets a password expiration period for IAM users.", "title": "IAM account password policy enforces password expiration within 90 days or less", "uid": "prowler-aws-iam_password_policy_expires_passwords_within_90_days_or_less-123456789012-us-east-1"}, "resources": [{"cloud_partition": "aws", "region": "us-east-1", "group": {"name": "iam"}, "labels": [], "name": "123456789012", "type": "AwsIamPolicy", "uid": "arn:aws:iam:us-east-1:123456789012:password-policy"}], "class_name": "Detection Finding", "class_uid": 2004, "cloud": {"account": {"uid": "123456789012"}, "provider": "aws", "region": "us-east-1"}, "time": 1795357093, "type_uid": 200401}, {"message": "S3 Bucket logs has server access logging enabled.", "metadata": {"event_code": "s3_bucket_server_access_logging_enabled", "product": {"name": "Prowler", "uid": "prowler", "vendor_name": "Prowler", "version": "5.46.0"}, "version": "1.5.0"}, "severity_id": 3, "severity": "Medium", "status": "New", "status_code": "PASS", "status_detail": "S3 Bucket logs has server access logging enabled.", "status_id": 1, "finding_info": {"created_time": 1795357093, "desc": "S3 server access logging records requests made to a bucket.", "title": "Check if S3 buckets have server access logging enabled", "uid": "prowler-aws-s3_bucket_server_access_logging_enabled-123456789012-us-east-1-logs"}, "resources": [{"cloud_partition": "aws", "region": "us-east-1", "group": {"name": "s3"}, "labels": [], "name": "logs", "type": "AwsS3Bucket", "uid": "arn:aws:s3:::logs"}], "class_name": "Detection Finding", "class_uid": 2004, "cloud": {"account": {"uid": "123456789012"}, "provider": "aws", "region": "us-east-1"}, "time": 1795357093, "type_uid": 200401}]
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let code = match program {
        "terrascan" => fake_terrascan(&args[1..]),
        // A scanner gone wrong: 1 GiB of output, far past any capture cap (the daemon
        // benchmark's memory row).
        "terrascan-flood" => flood(std::io::stdout(), FLOODING_SCANNER_BYTES),
        "prowler" => fake_prowler(&args[1..]),
        _ => run_mode(&args[1..]),
    };
    std::process::exit(code);
}

fn usage() -> i32 {
    eprintln!(
        "usage: toolgate-fake-tool MODE [ARGS]; modes: echo ARGS.. | env | fds | cwd | forkbomb | \
         memhog | spin | ignore-term | flood-stdout N | flood-stderr N | double-fork DIR | \
         read FILE | write FILE | net PORT | signal PID | exit N | sleep SECS"
    );
    2
}

fn run_mode(args: &[String]) -> i32 {
    let Some(mode) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let number = |i: usize| rest.get(i).and_then(|s| s.parse::<u64>().ok());
    match (mode.as_str(), rest.len()) {
        ("echo", _) => {
            println!("{}", json_array(rest));
            0
        }
        ("env", 0) => {
            for (name, value) in std::env::vars_os() {
                println!("{}={}", name.to_string_lossy(), value.to_string_lossy());
            }
            0
        }
        ("fds", 0) => list_fds(),
        ("cwd", 0) => match std::env::current_dir() {
            Ok(dir) => {
                println!("{}", dir.display());
                0
            }
            Err(e) => fail("cwd", e),
        },
        ("forkbomb", 0) => forkbomb(),
        ("memhog", 0) => memhog(),
        ("spin", 0) => spin(),
        ("ignore-term", 0) => ignore_term(),
        ("flood-stdout", 1) => number(0).map_or_else(usage, |n| flood(std::io::stdout(), n)),
        ("flood-stderr", 1) => number(0).map_or_else(usage, |n| flood(std::io::stderr(), n)),
        ("double-fork", 1) => double_fork(Path::new(&rest[0])),
        ("read", 1) => match std::fs::read(&rest[0]) {
            Ok(bytes) => {
                let _ = std::io::stdout().write_all(&bytes);
                0
            }
            Err(e) => fail("read", e),
        },
        ("write", 1) => match std::fs::write(&rest[0], b"written by toolgate-fake-tool\n") {
            Ok(()) => 0,
            Err(e) => fail("write", e),
        },
        ("net", 1) => match number(0) {
            Some(port) => match TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port as u16)),
                Duration::from_secs(5),
            ) {
                Ok(_) => {
                    println!("connected");
                    0
                }
                Err(e) => fail("net", e),
            },
            None => usage(),
        },
        ("signal", 1) => match number(0) {
            // SAFETY: kill(2) with SIGCONT, harmless to a running process.
            Some(pid) => match unsafe { libc::kill(pid as libc::pid_t, libc::SIGCONT) } {
                0 => {
                    println!("signalled");
                    0
                }
                _ => fail("signal", std::io::Error::last_os_error()),
            },
            None => usage(),
        },
        ("exit", 1) => number(0).map_or_else(usage, |n| n as i32),
        ("sleep", 1) => match number(0) {
            Some(secs) => {
                std::thread::sleep(Duration::from_secs(secs));
                0
            }
            None => usage(),
        },
        _ => usage(),
    }
}

fn fail(what: &str, error: std::io::Error) -> i32 {
    eprintln!("{what} failed: {error}");
    1
}

fn json_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", quoted.join(","))
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prints the open fds, one per line, leaving out the one used to list the directory.
fn list_fds() -> i32 {
    let entries = match std::fs::read_dir("/proc/self/fd") {
        Ok(entries) => entries,
        Err(e) => return fail("fds", e),
    };
    let mut fds: Vec<u32> = Vec::new();
    for entry in entries.flatten() {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        if target.to_string_lossy().contains("/fd") && target.starts_with("/proc") {
            continue;
        }
        if let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
            fds.push(fd);
        }
    }
    fds.sort_unstable();
    for fd in fds {
        println!("{fd}");
    }
    0
}

fn forkbomb() -> i32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the valid struct passed.
    unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut limit) };
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root || limit.rlim_cur == libc::RLIM_INFINITY {
        eprintln!("forkbomb: refusing to run as root or without RLIMIT_NPROC");
        return 99;
    }
    println!("forkbomb: started");
    let _ = std::io::stdout().flush();
    loop {
        // SAFETY: fork in a single-threaded process; both sides just loop.
        if unsafe { libc::fork() } < 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn memhog() -> i32 {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = Vec::new();
        if block.try_reserve_exact(MEMHOG_STEP).is_err() {
            let mib = blocks.len() * MEMHOG_STEP / (1024 * 1024);
            println!("memhog: allocation refused after {mib} MiB");
            return 12;
        }
        block.resize(MEMHOG_STEP, 1);
        blocks.push(block);
    }
}

fn spin() -> i32 {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn ignore_term() -> i32 {
    // SAFETY: installs SIG_IGN for SIGTERM; no handler code runs.
    unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    println!("ignoring SIGTERM");
    let _ = std::io::stdout().flush();
    std::thread::sleep(LONG_SLEEP);
    0
}

fn flood(mut out: impl Write, total: u64) -> i32 {
    let chunk = vec![b'x'; FLOOD_CHUNK];
    let mut left = total;
    while left > 0 {
        let n = left.min(FLOOD_CHUNK as u64) as usize;
        if out.write_all(&chunk[..n]).is_err() {
            return 1;
        }
        left -= n as u64;
    }
    0
}

/// Leaves a grandchild in its own session (escaped from the job's process group) that sleeps
/// long. The grandchild writes its pid to `DIR/grandchild.pid` before its parent exits, so the
/// file exists before the grandchild is orphaned (an orphan may be swept at any time).
fn double_fork(dir: &Path) -> i32 {
    let pid_file = dir.join("grandchild.pid");
    // SAFETY: fork in a single-threaded process.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: setsid/fork in the single-threaded child.
            unsafe { libc::setsid() };
            // SAFETY: as above.
            if unsafe { libc::fork() } == 0 {
                // SAFETY: getpid cannot fail.
                let pid = unsafe { libc::getpid() };
                let tmp = dir.join("grandchild.pid.tmp");
                let _ = std::fs::write(&tmp, pid.to_string());
                let _ = std::fs::rename(&tmp, &pid_file);
                std::thread::sleep(LONG_SLEEP);
            } else {
                wait_for(&pid_file);
            }
            // SAFETY: _exit skips the parent's atexit handlers in the forked child.
            unsafe { libc::_exit(0) }
        }
        pid if pid > 0 => {
            let mut status = 0;
            // SAFETY: waits for the intermediate child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            if pid_file.exists() {
                println!("grandchild started");
                0
            } else {
                eprintln!("double-fork: grandchild did not report");
                1
            }
        }
        _ => fail("double-fork", std::io::Error::last_os_error()),
    }
}

/// Polls for `path` for up to 5 s.
fn wait_for(path: &Path) {
    for _ in 0..500 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Like terrascan, reads its policies from `$HOME/.terrascan/pkg/policies/opa/rego` and reports
/// how many it validated (`*.rego` files there). Where that directory is missing the real
/// terrascan would download the policies; the fake pretends it did (8 policies).
/// What a fake terrascan scan of a directory does, read off markers in the scanned files, so a
/// test decides a scan's outcome and pace by what it uploads.
#[derive(Debug, Default)]
struct TerrascanMarkers {
    /// `toolgate-fake-terrascan: clean`: report no violation (exit 0).
    clean: bool,
    /// `toolgate-fake-terrascan: sleep N`: take N seconds first.
    sleep_secs: u64,
}

/// Most bytes of a scanned tree the fake reads looking for markers.
const MARKER_SCAN_MAX_BYTES: u64 = 1 << 20;

fn terrascan_markers(args: &[String]) -> TerrascanMarkers {
    let mut markers = TerrascanMarkers::default();
    let target = args
        .windows(2)
        .find(|w| w[0] == "-d" || w[0] == "--iac-dir" || w[0] == "-f" || w[0] == "--iac-file")
        .map(|w| std::path::PathBuf::from(&w[1]));
    let mut pending: Vec<std::path::PathBuf> = target.into_iter().collect();
    let mut budget = MARKER_SCAN_MAX_BYTES;
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        budget = budget.saturating_sub(text.len() as u64);
        for line in text.lines() {
            let Some((_, marker)) = line.split_once("toolgate-fake-terrascan:") else {
                continue;
            };
            let mut words = marker.split_whitespace();
            match (words.next(), words.next()) {
                (Some("clean"), _) => markers.clean = true,
                (Some("sleep"), Some(secs)) => {
                    markers.sleep_secs = secs.parse().unwrap_or(0);
                }
                _ => {}
            }
        }
        if budget == 0 {
            break;
        }
    }
    markers
}

const TERRASCAN_CLEAN_RESULT: &str = r#"{
  "results": {
    "violations": null,
    "skipped_violations": null,
    "scan_summary": {
      "file/folder": "/fake/iac",
      "iac_type": "terraform",
      "scanned_at": "2026-01-01 00:00:00.000000 +0000 UTC",
      "policies_validated": POLICIES_VALIDATED,
      "violated_policies": 0,
      "low": 0,
      "medium": 0,
      "high": 0
    }
  }
}
"#;

fn fake_terrascan(args: &[String]) -> i32 {
    // The daemon's start-up probe (the plugin's version command).
    if args.first().is_some_and(|arg| arg == "version") {
        println!("version: v1.19.9 (toolgate-fake-tool)");
        return 0;
    }
    let markers = terrascan_markers(args);
    if markers.sleep_secs > 0 {
        std::thread::sleep(Duration::from_secs(markers.sleep_secs));
    }
    let (result, code) = if markers.clean {
        (TERRASCAN_CLEAN_RESULT, 0)
    } else {
        (TERRASCAN_RESULT, 3)
    };
    let policies = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".terrascan/pkg/policies/opa/rego"))
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .map_or(DOWNLOADED_POLICIES, |entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "rego"))
                .count()
        });
    print!(
        "{}",
        result.replace("POLICIES_VALIDATED", &policies.to_string())
    );
    code
}

fn fake_prowler(args: &[String]) -> i32 {
    // The daemon's start-up probe (the plugin's version command).
    if args.first().is_some_and(|arg| arg == "--version") {
        println!("Prowler 5.46.0 (toolgate-fake-tool)");
        return 0;
    }
    let dir = args
        .windows(2)
        .find(|w| w[0] == "-o" || w[0] == "--output-directory")
        .map(|w| w[1].clone());
    let Some(dir) = dir else {
        eprintln!("prowler (fake): missing -o/--output-directory");
        return 2;
    };
    let file = Path::new(&dir).join("prowler-output-123456789012-20260101000000.ocsf.json");
    // Like prowler at DEBUG (botocore's request headers and STS answers), it echoes the
    // credentials it was given everywhere: stderr, stdout and its report.
    let token = std::env::var("AWS_SESSION_TOKEN").ok();
    let report = match &token {
        Some(token) => {
            eprintln!("DEBUG botocore.endpoint: headers {{'x-amz-security-token': b'{token}'}}");
            println!("<SessionToken>{token}</SessionToken>");
            PROWLER_FINDINGS.replace(
                "sets a password expiration period for IAM users.",
                &format!("sets a password expiration period for IAM users (session {token})."),
            )
        }
        None => PROWLER_FINDINGS.to_string(),
    };
    if let Err(e) = std::fs::write(&file, report) {
        return fail("prowler (fake) write", e);
    }
    println!(
        "-> Scan completed! 2 findings written to {}",
        file.display()
    );
    3
}
