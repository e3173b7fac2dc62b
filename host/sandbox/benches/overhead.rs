//! Per-job overhead of `Sandbox::run` against a plain `std::process::Command` spawn-and-wait of
//! the same tiny binary (/bin/true), measured side by side and interleaved in one run, for each
//! hardening mode. Hand-rolled (no criterion): prints medians and ratios.
//!
//! Run: `cargo bench -p toolgate-sandbox --bench overhead [-- ITERATIONS] [MODE]`.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Hardening, RunSpec, Sandbox, SandboxPolicy, resolve_binary};

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
        "{:<16} {:>12} {:>16} {:>12} {:>8} {:>14} {:>14}",
        "mode",
        "plain (µs)",
        "plain+fork (µs)",
        "run (µs)",
        "ratio",
        "prepare (µs)",
        "cleanup (µs)"
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
        let mut plain = Vec::with_capacity(iterations);
        let mut forked = Vec::with_capacity(iterations);
        let mut run = Vec::with_capacity(iterations);
        let mut prepare = Vec::with_capacity(iterations);
        let mut cleanup = Vec::with_capacity(iterations);
        for i in 0..WARMUP + iterations {
            let p = time_plain(&binary);
            let f = time_plain_forked(&binary);
            let (pr, r, c) = runtime.block_on(time_sandbox(&sandbox, &binary, i));
            if i >= WARMUP {
                plain.push(p);
                forked.push(f);
                prepare.push(pr);
                run.push(r);
                cleanup.push(c);
            }
        }
        let (plain, run) = (median(&mut plain), median(&mut run));
        println!(
            "{:<16} {:>12.0} {:>16.0} {:>12.0} {:>7.2}x {:>14.0} {:>14.0}",
            name,
            micros(plain),
            micros(median(&mut forked)),
            micros(run),
            run.as_secs_f64() / plain.as_secs_f64(),
            micros(median(&mut prepare)),
            micros(median(&mut cleanup)),
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

async fn time_sandbox(
    sandbox: &Sandbox,
    binary: &Path,
    i: usize,
) -> (Duration, Duration, Duration) {
    let job_id = format!("bench-{i}");
    let started = Instant::now();
    let job = sandbox.prepare(&job_id, &[]).unwrap();
    let prepared = started.elapsed();
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
    let ran = started.elapsed();
    assert_eq!(result.exit_code, Some(0));
    let started = Instant::now();
    sandbox.cleanup(&job_id);
    (prepared, ran, started.elapsed())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
