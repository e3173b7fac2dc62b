//! The job store's cost per job: 32 concurrent jobs each insert their record as running and
//! finish it with a realistic outcome (the fake terrascan's 757-byte report, two findings, the
//! sandbox record), through the same group-commit writer the daemon uses. Prints jobs/s, the
//! CPU time of the writer thread per job (from its schedstat, so other threads and the
//! machine's noise do not count) and its file I/O per job (from its `io` accounting: system
//! calls and bytes; the kernel's share of its CPU grows with them).
//!
//! Run: `cargo bench -p toolgate-store --bench store [-- JOBS [RUN_MS]]`. With `RUN_MS` each job
//! "runs" that long between its two writes, as a tool would: at 32 jobs of ~30 ms the writes
//! arrive at the daemon benchmark's rate (~1000 jobs/s), so batches are as small as there,
//! while without it the writer works flat out and batches are large.

use std::time::{Duration, Instant};

use serde_json::json;
use toolgate_model::{FinishedJob, JobStatus, NewJob};
use toolgate_store::SqliteStore as Store;

/// Jobs unless given on the command line.
const DEFAULT_JOBS: usize = 20_000;
/// Concurrent jobs, as in the daemon benchmark.
const CONCURRENCY: usize = 32;
/// Output retention, as in the daemon benchmark's configuration.
const RETENTION: usize = 100;

fn main() {
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = numbers.first().map_or(DEFAULT_JOBS, |&n| n as usize);
    let run_time = Duration::from_millis(numbers.get(1).copied().unwrap_or(0));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(&dir.path().join("bench.sqlite3"), RETENTION).expect("open");
    let writer_before = WriterUsage::now();
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in (task..jobs).step_by(CONCURRENCY) {
                        run_one(&store, n, run_time).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
    let elapsed = started.elapsed();
    let writer = WriterUsage::now().since(&writer_before);
    let per_job = |total: u64| total as f64 / jobs as f64;
    println!(
        "{jobs} jobs, {CONCURRENCY} concurrent, {run_time:?} each: {:.0} jobs/s; writer thread per job: {:.1} µs CPU, \
         {:.1} writes of {:.0} bytes, {:.1} reads of {:.0} bytes",
        jobs as f64 / elapsed.as_secs_f64(),
        per_job(writer.cpu_ns) / 1e3,
        per_job(writer.write_calls),
        per_job(writer.write_bytes),
        per_job(writer.read_calls),
        per_job(writer.read_bytes),
    );
}

async fn run_one(store: &Store, n: usize, run_time: Duration) {
    // Time-ordered (v7) ids, as the daemon's.
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_rfc3339();
    let job = NewJob {
        id: id.clone(),
        tool: "terrascan".into(),
        params: json!({"scan_type": "all", "iac_dir": ".", "policy_type": "", "output_format": "json", "severity": "", "additional_args": ""}),
        argv: [
            "/usr/local/bin/terrascan",
            "scan",
            "-i",
            "terraform",
            "-d",
            "/srv/workspace/terraform",
            "-o",
            "json",
        ]
        .map(String::from)
        .to_vec(),
        command: "/usr/local/bin/terrascan scan -i terraform -d /srv/workspace/terraform -o json"
            .into(),
        output_dir: None,
        created_at: now.clone(),
        tenant: "local".into(),
    };
    store.insert(job, Some(now)).await.expect("insert");
    if !run_time.is_zero() {
        tokio::time::sleep(run_time).await;
    }
    let finding = |rule: &str| {
        json!({"rule_id": rule, "title": "S3 bucket without server-side encryption", "severity": "high",
               "description": "Ensure S3 buckets are encrypted at rest", "resource_type": "aws_s3_bucket",
               "resource_name": format!("bucket_{n}"), "file": "main.tf", "line": 12})
    };
    let done = FinishedJob {
        status: Some(JobStatus::Succeeded),
        finished_at: now_rfc3339(),
        duration_secs: Some(0.004),
        exit_code: Some(3),
        success: true,
        classification: Some("findings".into()),
        // JSON text, as the daemon's workers serialize it from typed values.
        summary: Some(
            json!({"total": 2, "critical": 0, "high": 2, "medium": 0, "low": 0, "info": 0})
                .to_string(),
        ),
        findings: Some(json!([finding("AC_AWS_0207"), finding("AC_AWS_0497")]).to_string()),
        stdout: Some(std::sync::Arc::new("x".repeat(757))),
        stderr: Some(std::sync::Arc::default()),
        protections: Some(
            json!({"no_new_privs": true, "new_session": true, "parent_death_signal": true,
            "only_std_fds": true, "capabilities_dropped": true, "landlock": "fully_enforced",
            "network_isolated": true, "containment": "process_group", "memory_max_bytes": null,
            "pids_max": null, "run_as": null, "rlimits": {"cpu_seconds": 40, "address_space_bytes": 4294967296u64,
            "file_size_bytes": 1073741824, "open_files": 256, "core_bytes": 0, "processes": null}})
            .to_string(),
        ),
        ..FinishedJob::default()
    };
    store.finish(id, done).await.expect("finish");
}

/// Now in the daemon's timestamp format.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// What the store's writer thread has used so far.
#[derive(Default)]
struct WriterUsage {
    cpu_ns: u64,
    write_calls: u64,
    write_bytes: u64,
    read_calls: u64,
    read_bytes: u64,
}

impl WriterUsage {
    /// Reads the writer thread's schedstat (first field: CPU time) and `io` accounting
    /// (`syscw`, `wchar`, `syscr`, `rchar`: every read and write call, whether or not it
    /// reached the disk).
    fn now() -> Self {
        let mut usage = Self::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return usage;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let is_writer = std::fs::read_to_string(path.join("comm"))
                .is_ok_and(|comm| comm.trim() == "toolgate-store");
            if !is_writer {
                continue;
            }
            let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            usage.cpu_ns += first_number(&schedstat);
            let io = std::fs::read_to_string(path.join("io")).unwrap_or_default();
            for line in io.lines() {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let value = first_number(value);
                match key {
                    "syscw" => usage.write_calls += value,
                    "wchar" => usage.write_bytes += value,
                    "syscr" => usage.read_calls += value,
                    "rchar" => usage.read_bytes += value,
                    _ => {}
                }
            }
        }
        usage
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(before.cpu_ns),
            write_calls: self.write_calls.saturating_sub(before.write_calls),
            write_bytes: self.write_bytes.saturating_sub(before.write_bytes),
            read_calls: self.read_calls.saturating_sub(before.read_calls),
            read_bytes: self.read_bytes.saturating_sub(before.read_bytes),
        }
    }
}

fn first_number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
