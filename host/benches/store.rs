//! The job store's cost per job: 32 concurrent jobs each insert their record as running and
//! finish it with a realistic outcome (the fake terrascan's 757-byte report, two findings, the
//! sandbox record), through the same group-commit writer the daemon uses. Prints jobs/s and
//! the CPU time of the writer thread per job (from its schedstat, so other threads and the
//! machine's noise do not count).
//!
//! Run: `cargo bench -p toolgate --bench store [-- JOBS]`.

use std::time::Instant;

use serde_json::json;
use toolgate::store::{FinishedJob, JobStatus, NewJob, Store};

/// Jobs unless given on the command line.
const DEFAULT_JOBS: usize = 20_000;
/// Concurrent jobs, as in the daemon benchmark.
const CONCURRENCY: usize = 32;
/// Output retention, as in the daemon benchmark's configuration.
const RETENTION: usize = 100;

fn main() {
    let jobs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_JOBS);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::open(&dir.path().join("bench.sqlite3"), RETENTION).expect("open");
    let writer_before = writer_cpu_ns();
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in (task..jobs).step_by(CONCURRENCY) {
                        run_one(&store, n).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
    let elapsed = started.elapsed();
    let writer_ns = writer_cpu_ns().saturating_sub(writer_before);
    println!(
        "{jobs} jobs, {CONCURRENCY} concurrent: {:.0} jobs/s; writer thread {:.1} µs CPU per job",
        jobs as f64 / elapsed.as_secs_f64(),
        writer_ns as f64 / 1e3 / jobs as f64,
    );
}

async fn run_one(store: &Store, n: usize) {
    let id = uuid::Uuid::new_v4().to_string();
    let now = toolgate::time::now_rfc3339();
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
    };
    store.insert(job, Some(now)).await.expect("insert");
    let finding = |rule: &str| {
        json!({"rule_id": rule, "title": "S3 bucket without server-side encryption", "severity": "high",
               "description": "Ensure S3 buckets are encrypted at rest", "resource_type": "aws_s3_bucket",
               "resource_name": format!("bucket_{n}"), "file": "main.tf", "line": 12})
    };
    let done = FinishedJob {
        status: Some(JobStatus::Succeeded),
        finished_at: toolgate::time::now_rfc3339(),
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
        stdout: Some("x".repeat(757)),
        stderr: Some(String::new()),
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

/// CPU time of the store's writer thread so far, in nanoseconds (first field of schedstat).
fn writer_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == "toolgate-store")
        })
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}
