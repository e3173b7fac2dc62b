//! Concurrent jobs: many jobs started at once go through the spawner threads in parallel; each
//! gets its own output, exit status and private directories, escaped grandchildren are swept,
//! and afterwards no zombie or child of this process remains. Its own file, so no other test's
//! children are in flight.

mod sandbox_support;

use std::sync::Arc;
use std::time::Duration;

use sandbox_support::*;
use toolgate_sandbox::Arg;

/// More jobs at once than there are spawner threads, so requests queue and threads are reused.
const CONCURRENT_JOBS: usize = 48;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_jobs_keep_their_own_results_and_leave_no_process() {
    let f = Arc::new(fixture(|p| p.kill_grace = Duration::from_millis(100)));
    let mut jobs = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT_JOBS {
        let f = Arc::clone(&f);
        jobs.spawn(async move {
            let args = match i % 4 {
                0 => literals(&["exit", &(i % 100).to_string()]),
                1 => literals(&["echo", &format!("job-{i}")]),
                2 => vec![Arg::Literal("double-fork".into()), Arg::OutputDir],
                _ => literals(&["sleep", "600"]),
            };
            let timeout = Duration::from_millis(if i % 4 == 3 { 200 } else { 20_000 });
            (i, f.run(&args, timeout).await)
        });
    }
    let mut finished = 0;
    while let Some(joined) = jobs.join_next().await {
        let (i, result) = joined.unwrap();
        match i % 4 {
            0 => assert_eq!(result.exit_code, Some((i % 100) as i32), "job {i}"),
            1 => assert_eq!(stdout(&result).trim(), format!(r#"["job-{i}"]"#)),
            2 => assert_eq!(result.exit_code, Some(0), "job {i}: {result:?}"),
            _ => assert!(result.timed_out, "job {i}: {result:?}"),
        }
        finished += 1;
    }
    assert_eq!(finished, CONCURRENT_JOBS);
    assert_no_child_left();
}
