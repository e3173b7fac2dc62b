//! Per-job overhead of `Sandbox::run` against a plain `std::process::Command` spawn-and-wait of
//! the same tiny binary (/bin/true), measured side by side and interleaved in one run, for each
//! hardening mode. Hand-rolled (no criterion): prints medians and ratios.
//!
//! Run: `cargo bench -p toolgate-sandbox --bench overhead [-- ITERATIONS] [MODE]`.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Hardening, PreparedJob, RunSpec, Sandbox, SandboxPolicy, resolve_binary};

/// Iterations per mode unless given on the command line.
const DEFAULT_ITERATIONS: usize = 300;
/// Untimed iterations first (page cache, allocator, thread pools).
const WARMUP: usize = 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let only_mode = args
        .iter()
        .find(|a| a.parse::<usize>().is_err() && !a.starts_with('-'));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let binary = resolve_binary(None, "true", "/usr/bin:/bin").unwrap();
    let modes = [
        ("none", Hardening::Off, Hardening::Off),
        ("landlock", Hardening::Auto, Hardening::Off),
        ("landlock+netns", Hardening::Auto, Hardening::Auto),
    ];
    println!(
        "{iterations} iterations per mode, interleaved; binary {}",
        binary.display()
    );
    println!(
        "{:<16} {:>12} {:>16} {:>12} {:>8} {:>20} {:>20}",
        "mode",
        "plain (µs)",
        "plain+fork (µs)",
        "run (µs)",
        "ratio",
        "prepare (µs, mean)",
        "cleanup (µs, mean)"
    );
    for (name, landlock, network) in modes {
        if only_mode.is_some_and(|m| m != name) {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let workspace = tmp.path().join("ws");
        std::fs::create_dir(&workspace).unwrap();
        let sandbox = Sandbox::new(SandboxPolicy {
            allowed_dirs: vec![workspace],
            output_root: tmp.path().join("out"),
            jobs_root: tmp.path().join("jobs"),
            landlock,
            network_isolation: network,
            ..SandboxPolicy::default()
        })
        .unwrap();
        // Filesystem work (mkdir in prepare, rmdir in cleanup) is batched outside the timed
        // loop: ext4 evicts inodes and commits its journal behind the caller's back, which
        // would otherwise land inside the next timed spawn.
        let started = Instant::now();
        let jobs: Vec<_> = (0..WARMUP + iterations)
            .map(|i| sandbox.prepare(&format!("bench-{i}"), &[]).unwrap())
            .collect();
        let prepare = started.elapsed() / jobs.len() as u32;
        let mut plain = Vec::with_capacity(iterations);
        let mut forked = Vec::with_capacity(iterations);
        let mut run = Vec::with_capacity(iterations);
        for (i, job) in jobs.into_iter().enumerate() {
            let p = time_plain(&binary);
            let f = time_plain_forked(&binary);
            let r = runtime.block_on(time_run(&sandbox, &binary, job));
            if i >= WARMUP {
                plain.push(p);
                forked.push(f);
                run.push(r);
            }
        }
        let started = Instant::now();
        for i in 0..WARMUP + iterations {
            sandbox.cleanup(&format!("bench-{i}"));
        }
        let cleanup = started.elapsed() / (WARMUP + iterations) as u32;
        let (plain, run) = (median(&mut plain), median(&mut run));
        println!(
            "{:<16} {:>12.0} {:>16.0} {:>12.0} {:>7.2}x {:>20.0} {:>20.0}",
            name,
            micros(plain),
            micros(median(&mut forked)),
            micros(run),
            run.as_secs_f64() / plain.as_secs_f64(),
            micros(prepare),
            micros(cleanup),
        );
    }
}

fn time_plain(binary: &Path) -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new(binary).status().unwrap();
    let elapsed = started.elapsed();
    assert!(status.success());
    elapsed
}

/// The same spawn through std's fork path (any `pre_exec` hook disables posix_spawn): the part
/// of the overhead that comes from forking rather than vfork-spawning.
fn time_plain_forked(binary: &Path) -> Duration {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut command = std::process::Command::new(binary);
    // SAFETY: the hook does nothing.
    unsafe { command.pre_exec(|| Ok(())) };
    let status = command.status().unwrap();
    let elapsed = started.elapsed();
    assert!(status.success());
    elapsed
}

async fn time_run(sandbox: &Sandbox, binary: &Path, job: PreparedJob) -> Duration {
    let spec = RunSpec {
        binary: binary.to_path_buf(),
        env: Vec::new(),
        timeout: Duration::from_secs(30),
        needs_network: false,
    };
    let started = Instant::now();
    let result = sandbox
        .run(job, spec, CancellationToken::new())
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(result.exit_code, Some(0));
    elapsed
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
