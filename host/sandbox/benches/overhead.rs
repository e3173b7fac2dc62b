//! Per-job overhead of the executor (`prepare` + `run`: argument checks, the private
//! directories, the hardened spawn, supervision and reaping) against a plain
//! `std::process::Command` spawn-and-wait of the same tiny binary (/bin/true), for each
//! hardening mode. Hand-rolled (no criterion): prints medians and ratios.
//!
//! Every iteration times a plain spawn, a forked spawn and one job in EACH selected mode, so
//! all columns are measured side by side under the same machine load (on a busy machine, load
//! drifts by more than the differences between modes). `vs none` is the median of the
//! per-iteration differences with the `none` mode: what the hardening itself costs. The private
//! directories of a finished job are emptied on a blocking thread while the next one starts, as
//! in the daemon; `prepare` and `run` medians are also shown on their own.
//!
//! Run: `cargo bench -p toolgate-sandbox --bench overhead [-- ITERATIONS] [MODE...]`.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use toolgate_sandbox::{Hardening, RunSpec, Sandbox, SandboxPolicy, resolve_binary};

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

/// One mode's sandbox and its samples.
struct Mode {
    name: &'static str,
    _tmp: tempfile::TempDir,
    sandbox: Sandbox,
    job: Vec<Duration>,
    prepare: Vec<Duration>,
    run: Vec<Duration>,
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
        .map(|&(name, landlock, network)| setup(name, landlock, network, iterations))
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
            let (prepare, run) = runtime.block_on(time_job(&mode.sandbox, &binary, i));
            if i >= WARMUP {
                mode.prepare.push(prepare);
                mode.run.push(run);
                mode.job.push(prepare + run);
            }
        }
        if i >= WARMUP {
            plain.push(p);
            forked.push(f);
        }
    }
    let none_jobs = modes
        .iter()
        .find(|m| m.name == "none")
        .map(|m| m.job.clone());
    let plain_median = median(&mut plain.clone());
    println!(
        "{:<16} {:>12} {:>16} {:>12} {:>8} {:>14} {:>14} {:>12}",
        "mode",
        "plain (µs)",
        "plain+fork (µs)",
        "job (µs)",
        "ratio",
        "vs none (µs)",
        "prepare (µs)",
        "run (µs)"
    );
    for mode in &mut modes {
        let vs_none = none_jobs.as_ref().map_or(String::from("-"), |none| {
            let mut deltas: Vec<f64> = mode
                .job
                .iter()
                .zip(none)
                .map(|(r, n)| micros(*r) - micros(*n))
                .collect();
            deltas.sort_unstable_by(f64::total_cmp);
            format!("{:+.0}", deltas[deltas.len() / 2])
        });
        let job = median(&mut mode.job);
        println!(
            "{:<16} {:>12.0} {:>16.0} {:>12.0} {:>7.2}x {:>14} {:>14.0} {:>12.0}",
            mode.name,
            micros(plain_median),
            micros(median(&mut forked)),
            micros(job),
            job.as_secs_f64() / plain_median.as_secs_f64(),
            vs_none,
            micros(median(&mut mode.prepare)),
            micros(median(&mut mode.run)),
        );
    }
}

fn job_id(i: usize) -> String {
    format!("bench-{i}")
}

/// Creates the mode's sandbox.
fn setup(name: &'static str, landlock: Hardening, network: Hardening, iterations: usize) -> Mode {
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
    Mode {
        name,
        _tmp: tmp,
        sandbox,
        job: Vec::with_capacity(iterations),
        prepare: Vec::with_capacity(iterations),
        run: Vec::with_capacity(iterations),
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

/// Times `prepare` and `run` of job `i`.
async fn time_job(sandbox: &Sandbox, binary: &Path, i: usize) -> (Duration, Duration) {
    let spec = RunSpec {
        binary: binary.to_path_buf(),
        env: Vec::new(),
        timeout: Duration::from_secs(30),
        needs_network: false,
        home: None,
        read_paths: Vec::new(),
        limits: toolgate_sandbox::RunLimits::default(),
    };
    let started = Instant::now();
    let mut job = sandbox.prepare_planned(&job_id(i), &[]).unwrap();
    sandbox.provide_dirs(&mut job).unwrap();
    let prepared = started.elapsed();
    let started = Instant::now();
    let result = sandbox
        .run(job, spec, CancellationToken::new())
        .await
        .unwrap();
    let ran = started.elapsed();
    assert_eq!(result.exit_code, Some(0));
    (prepared, ran)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
