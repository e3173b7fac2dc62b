//! Output capture: 1 GiB on stdout or stderr is capped, the tool is never blocked, and this
//! process's peak memory stays bounded. Its own file, so VmHWM measures only these tests.

mod sandbox_support;

use std::time::Duration;

use sandbox_support::*;

const FLOOD_BYTES: u64 = 1024 * 1024 * 1024;
const CAP: usize = 16 * 1024 * 1024;
/// Peak RSS allowed for the whole test process: a few caps, far below the 1 GiB flood.
const MAX_PEAK_RSS_KIB: u64 = 256 * 1024;

fn peak_rss_kib() -> u64 {
    proc_status("self", "VmHWM")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigabyte_floods_are_capped_with_bounded_memory() {
    let f = fixture(|p| p.max_output_bytes = CAP);
    let n = FLOOD_BYTES.to_string();
    for (mode, on_stdout) in [("flood-stdout", true), ("flood-stderr", false)] {
        let result = f
            .run(&literals(&[mode, &n]), Duration::from_secs(120))
            .await;
        assert_eq!(
            result.exit_code,
            Some(0),
            "{mode}: the tool was not blocked"
        );
        assert!(!result.timed_out);
        let (flooded, flooded_truncated, quiet) = if on_stdout {
            (&result.stdout, result.stdout_truncated, &result.stderr)
        } else {
            (&result.stderr, result.stderr_truncated, &result.stdout)
        };
        assert_eq!(flooded.len(), CAP, "{mode}");
        assert!(flooded_truncated, "{mode}");
        assert!(quiet.is_empty(), "{mode}");
        assert!(flooded.iter().all(|b| *b == b'x'));
    }
    let peak = peak_rss_kib();
    assert!(peak < MAX_PEAK_RSS_KIB, "peak RSS {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_under_the_cap_is_complete_and_not_truncated() {
    let f = fixture(|p| p.max_output_bytes = CAP);
    let result = f
        .run(
            &literals(&["flood-stdout", "1000000"]),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(result.stdout.len(), 1_000_000);
    assert!(!result.stdout_truncated && !result.stderr_truncated);
}
