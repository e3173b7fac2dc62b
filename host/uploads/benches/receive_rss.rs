//! Memory of a 300 MB upload: streams 300 MB in 64 KiB chunks (hyper's usual chunk size)
//! through `receive` to a file and prints the growth of the process's peak RSS (VmHWM in
//! /proc/self/status) over the upload, with the throughput. Target: growth under 32 MB.
//!
//! Run: `cargo bench -p toolgate-uploads --bench receive_rss`.

use std::io;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream;
use toolgate_uploads::{DEFAULT_MAX_UPLOAD_BYTES, receive};

const CHUNK_BYTES: usize = 64 * 1024;
const UPLOAD_BYTES: u64 = DEFAULT_MAX_UPLOAD_BYTES;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let scratch = tempfile::tempdir().expect("tempdir");
    let dest = scratch.path().join("upload");
    let pattern: Vec<u8> = (0..CHUNK_BYTES).map(|i| (i * 31 % 251) as u8).collect();

    // Warm the runtime's blocking pool so its threads' stacks are not counted as upload cost.
    runtime.block_on(async {
        let warm = scratch.path().join("warm");
        let body = stream::iter([Ok::<_, io::Error>(Bytes::from_static(b"warm"))]);
        receive(body, &warm, 10).await.expect("warm-up");
    });

    let before = vm_hwm_kib();
    let started = Instant::now();
    let received = runtime.block_on(async {
        let chunks = UPLOAD_BYTES / CHUNK_BYTES as u64;
        let tail = (UPLOAD_BYTES % CHUNK_BYTES as u64) as usize;
        let body = stream::iter((0..=chunks).map(|index| {
            // A fresh buffer per chunk, as hyper hands out, so any retention would show.
            let len = if index == chunks { tail } else { CHUNK_BYTES };
            Ok::<_, io::Error>(Bytes::copy_from_slice(&pattern[..len]))
        }));
        receive(body, &dest, UPLOAD_BYTES).await.expect("receive")
    });
    let elapsed = started.elapsed();
    let after = vm_hwm_kib();
    assert_eq!(received.size, UPLOAD_BYTES);
    println!(
        "received {:.0} MB in {elapsed:.2?} ({:.0} MB/s), sha256 {}",
        received.size as f64 / 1e6,
        received.size as f64 / 1e6 / elapsed.as_secs_f64(),
        &received.sha256[..16]
    );
    println!(
        "peak RSS (VmHWM) before {before} KiB, after {after} KiB: growth {:.1} MB (target < 32 MB)",
        (after.saturating_sub(before)) as f64 * 1024.0 / 1e6
    );
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
