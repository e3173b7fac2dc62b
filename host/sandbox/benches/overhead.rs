//! Per-job overhead of `Sandbox::run` against a plain `std::process::Command` spawn-and-wait of
//! the same tiny binary (/bin/true), for each hardening mode. Hand-rolled (no criterion): prints
//! medians and ratios.
//!
//! Every iteration times a plain spawn, a forked spawn and one `run` in EACH selected mode, so
//! all columns are measured side by side under the same machine load (on a busy machine, load
//! drifts by more than the differences between modes). `vs none` is the median of the
//! per-iteration differences with the `none` mode: what the hardening itself costs.
//!
//! Run: `cargo bench -p toolgate-sandbox --bench overhead [-- ITERATIONS] [MODE...]`.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Hardening, PreparedJob, RunSpec, Sandbox, SandboxPolicy, resolve_binary};

/// Iterations unless given on the command line.
const DEFAULT_ITERATIONS: usize = 300;
/// Untimed iterations first (page cache, allocator, thread pools).
const WARMUP: usize = 20;
/// The modes, as (name, landlock, network isolation).
const MODES: [(&str, Hardening, Hardening); 3] = [
    ("none", Hardening::Off, Hardening::Off),
    ("landlock", Hardening::Auto, Hardening::Off),
    ("landlock+netns", Hardening::Auto, Hardening::Auto),
];

/// One mode's sandbox, its prepared jobs and its samples.
struct Mode {
    name: &'static str,
    _tmp: tempfile::TempDir,
    sandbox: Sandbox,
    jobs: Vec<PreparedJob>,
    run: Vec<Duration>,
    prepare: Duration,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    let selected: Vec<&String> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err() && !a.starts_with('-'))
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let binary = resolve_binary(None, "true", "/usr/bin:/bin").unwrap();
    let total = WARMUP + iterations;
    let mut modes: Vec<Mode> = MODES
        .iter()
        .filter(|(name, ..)| selected.is_empty() || selected.iter().any(|s| s == name))
        .map(|&(name, landlock, network)| setup(name, landlock, network, total))
        .collect();
    println!(
        "{iterations} iterations, modes interleaved per iteration; binary {}",
        binary.display()
    );
    let mut plain = Vec::with_capacity(iterations);
    let mut forked = Vec::with_capacity(iterations);
    for i in 0..total {
        let p = time_plain(&binary);
        let f = time_plain_forked(&binary);
        for mode in &mut modes {
            let job = mode.jobs.pop().unwrap();
            let r = runtime.block_on(time_run(&mode.sandbox, &binary, job));
            if i >= WARMUP {
                mode.run.push(r);
            }
        }
        if i >= WARMUP {
            plain.push(p);
            forked.push(f);
        }
    }
    let none_runs = modes
        .iter()
        .find(|m| m.name == "none")
        .map(|m| m.run.clone());
    let plain_median = median(&mut plain.clone());
    println!(
        "{:<16} {:>12} {:>16} {:>12} {:>8} {:>16} {:>20} {:>20}",
        "mode",
        "plain (µs)",
        "plain+fork (µs)",
        "run (µs)",
        "ratio",
        "vs none (µs)",
        "prepare (µs, mean)",
        "cleanup (µs, mean)"
    );
    for mode in &mut modes {
        let started = Instant::now();
        for i in 0..total {
            mode.sandbox.cleanup(&job_id(i));
        }
        let cleanup = started.elapsed() / total as u32;
        let vs_none = none_runs.as_ref().map_or(String::from("-"), |none| {
            let mut deltas: Vec<f64> = mode
                .run
                .iter()
                .zip(none)
                .map(|(r, n)| micros(*r) - micros(*n))
                .collect();
            deltas.sort_unstable_by(f64::total_cmp);
            format!("{:+.0}", deltas[deltas.len() / 2])
        });
        let run = median(&mut mode.run);
        println!(
            "{:<16} {:>12.0} {:>16.0} {:>12.0} {:>7.2}x {:>16} {:>20.0} {:>20.0}",
            mode.name,
            micros(plain_median),
            micros(median(&mut forked)),
            micros(run),
            run.as_secs_f64() / plain_median.as_secs_f64(),
            vs_none,
            micros(mode.prepare),
            micros(cleanup),
        );
    }
}

fn job_id(i: usize) -> String {
    format!("bench-{i}")
}

/// Creates the mode's sandbox and prepares every job up front: filesystem work (mkdir in
/// prepare, rmdir in cleanup) is batched outside the timed loop, because ext4 evicts inodes and
/// commits its journal behind the caller's back, which would otherwise land inside a timed spawn.
fn setup(name: &'static str, landlock: Hardening, network: Hardening, total: usize) -> Mode {
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
    let started = Instant::now();
    let mut jobs: Vec<_> = (0..total)
        .map(|i| sandbox.prepare(&job_id(i), &[]).unwrap())
        .collect();
    let prepare = started.elapsed() / total as u32;
    jobs.reverse();
    Mode {
        name,
        _tmp: tmp,
        sandbox,
        jobs,
        run: Vec::with_capacity(total),
        prepare,
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
