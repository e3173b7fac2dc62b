//! Conformance: the job history. Status transitions, interruption of a dead daemon's jobs at
//! reopening, listing with filters, output retention, outputs of every size, concurrent writes.

use toolgate_model::{FinishedJob, JobFilter, JobStatus, NewJob};

use super::{Backend, conformance};
use crate::JobStore;
use crate::jobs::now_text;

conformance!(
    a_job_moves_from_queued_to_its_terminal_status,
    outputs_of_every_size_come_back_as_they_were_stored,
    reopening_marks_jobs_of_a_dead_daemon_interrupted_and_keeps_the_rest,
    listing_is_newest_first_filtered_and_without_output,
    a_listing_for_one_tenant_shows_only_its_jobs,
    output_beyond_the_retention_limit_is_dropped_but_the_record_stays,
    a_retention_of_zero_keeps_no_output,
    a_job_finishing_after_newer_jobs_passed_the_retention_limit_keeps_no_output,
    concurrent_writes_are_all_committed,
);

pub(crate) fn new_job(id: &str, tool: &str) -> NewJob {
    NewJob {
        id: id.to_string(),
        tool: tool.to_string(),
        params: serde_json::json!({"iac_dir": "."}),
        argv: vec!["terrascan".into(), "scan".into()],
        command: "terrascan scan".into(),
        output_dir: None,
        created_at: now_text(),
        tenant: "local".into(),
    }
}

/// Records job `id` of `tool` as running and then `succeeded`, with [`finished`]'s output.
pub(crate) async fn run_to_success(store: &impl JobStore, id: &str, tool: &str) {
    store
        .insert_job(new_job(id, tool), None)
        .await
        .expect("insert");
    store
        .finish_job(id.into(), finished(JobStatus::Succeeded))
        .await
        .expect("finish");
}

pub(crate) fn finished(status: JobStatus) -> FinishedJob {
    FinishedJob {
        status: Some(status),
        finished_at: now_text(),
        exit_code: Some(3),
        success: true,
        stdout: Some(std::sync::Arc::new("out".into())),
        stderr: Some(std::sync::Arc::new("err".into())),
        summary: Some(r#"{"total": 0}"#.into()),
        ..FinishedJob::default()
    }
}

async fn a_job_moves_from_queued_to_its_terminal_status<B: Backend>() {
    let Some(place) = B::place().await else {
        return;
    };
    let (store, interrupted) = B::open(&place, 10).await;
    assert_eq!(interrupted, 0);
    store
        .insert_job(new_job("a", "terrascan"), None)
        .await
        .expect("insert");
    let queued = store.job("a".into()).await.expect("get").expect("exists");
    assert_eq!(queued.status, JobStatus::Queued);
    store
        .mark_job_running("a".into(), now_text())
        .await
        .expect("running");
    store
        .finish_job("a".into(), finished(JobStatus::Succeeded))
        .await
        .expect("finish");
    let done = store.job("a".into()).await.expect("get").expect("exists");
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.exit_code, Some(3));
    assert_eq!(done.stdout.as_deref(), Some("out"));
    assert_eq!(done.params["iac_dir"], ".");
    assert!(store.job("missing".into()).await.expect("get").is_none());
}

/// Outputs on both sides of the size where they are written in place instead of bound come
/// back as they were (multi-byte UTF-8 across the write included); a missing one stays missing.
async fn outputs_of_every_size_come_back_as_they_were_stored<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    let large = "é-x".repeat(100_000);
    // (stdout, stderr)
    let table: &[(Option<&str>, Option<&str>)] = &[
        (Some("small"), Some("")),
        (Some(&large), Some("small beside large")),
        (Some(""), Some(&large)),
        (Some(&large), None),
        (None, None),
        // A tool may print any byte, NUL included (PostgreSQL text cannot hold one).
        (Some("before\0after"), Some("\0")),
    ];
    for (index, (stdout, stderr)) in table.iter().enumerate() {
        let id = format!("job-{index}");
        store
            .insert_job(new_job(&id, "terrascan"), None)
            .await
            .expect("insert");
        let done = FinishedJob {
            stdout: stdout.map(|text| std::sync::Arc::new(text.to_string())),
            stderr: stderr.map(|text| std::sync::Arc::new(text.to_string())),
            ..finished(JobStatus::Succeeded)
        };
        store.finish_job(id.clone(), done).await.expect("finish");
        let record = store.job(id).await.expect("get").expect("exists");
        assert_eq!(record.stdout.as_deref(), *stdout, "row {index} stdout");
        assert_eq!(record.stderr.as_deref(), *stderr, "row {index} stderr");
    }
}

async fn reopening_marks_jobs_of_a_dead_daemon_interrupted_and_keeps_the_rest<B: Backend>() {
    let Some(place) = B::place().await else {
        return;
    };
    {
        let (store, _) = B::open(&place, 10).await;
        store
            .insert_job(new_job("queued", "t"), None)
            .await
            .expect("insert");
        store
            .insert_job(new_job("running", "t"), None)
            .await
            .expect("insert");
        store
            .mark_job_running("running".into(), now_text())
            .await
            .expect("run");
        store
            .insert_job(new_job("started", "t"), Some(now_text()))
            .await
            .expect("insert running");
        store
            .insert_job(new_job("done", "t"), None)
            .await
            .expect("insert");
        store
            .finish_job("done".into(), finished(JobStatus::Failed))
            .await
            .expect("finish");
    }
    let (store, interrupted) = B::open(&place, 10).await;
    assert_eq!(interrupted, 3);
    let table = [
        ("queued", JobStatus::Interrupted),
        ("running", JobStatus::Interrupted),
        ("started", JobStatus::Interrupted),
        ("done", JobStatus::Failed),
    ];
    for (id, expected) in table {
        let job = store.job(id.into()).await.expect("get").expect("exists");
        assert_eq!(job.status, expected, "{id}");
        assert_eq!(
            job.started_at.is_some(),
            matches!(id, "running" | "started"),
            "{id}"
        );
    }
}

async fn listing_is_newest_first_filtered_and_without_output<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    for (id, tool) in [("1", "terrascan"), ("2", "prowler"), ("3", "terrascan")] {
        run_to_success(&store, id, tool).await;
    }
    let all = store
        .list_jobs(JobFilter {
            limit: 10,
            ..JobFilter::default()
        })
        .await
        .expect("list");
    let ids: Vec<_> = all.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["3", "2", "1"]);
    assert!(all.iter().all(|j| j.stdout.is_none()));
    let filter = JobFilter {
        tool: Some("terrascan".into()),
        limit: 1,
        ..JobFilter::default()
    };
    let ids: Vec<_> = store
        .list_jobs(filter)
        .await
        .expect("list")
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(ids, ["3"]);
    let filter = JobFilter {
        status: Some(JobStatus::Running),
        limit: 10,
        ..JobFilter::default()
    };
    assert!(store.list_jobs(filter).await.expect("list").is_empty());
}

async fn a_listing_for_one_tenant_shows_only_its_jobs<B: Backend>() {
    let Some((_place, store)) = B::fresh(10).await else {
        return;
    };
    for (id, tenant) in [("a1", "acme"), ("b1", "beta"), ("a2", "acme")] {
        let job = NewJob {
            tenant: tenant.into(),
            ..new_job(id, "terrascan")
        };
        store.insert_job(job, None).await.expect("insert");
    }
    let table: &[(Option<&str>, &[&str])] = &[
        (Some("acme"), &["a2", "a1"]),
        (Some("beta"), &["b1"]),
        (Some("nobody"), &[]),
        (None, &["a2", "b1", "a1"]),
    ];
    for (tenant, expected) in table {
        let filter = JobFilter {
            tenant: tenant.map(str::to_string),
            limit: 10,
            ..JobFilter::default()
        };
        let listed = store.list_jobs(filter).await.expect("list");
        let ids: Vec<_> = listed.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(&ids, expected, "{tenant:?}");
        assert!(listed.iter().all(|j| tenant.is_none_or(|t| j.tenant == t)));
    }
    let one = store.job("b1".into()).await.expect("get").expect("exists");
    assert_eq!(one.tenant, "beta");
}

async fn output_beyond_the_retention_limit_is_dropped_but_the_record_stays<B: Backend>() {
    let Some((_place, store)) = B::fresh(2).await else {
        return;
    };
    for id in ["1", "2", "3"] {
        run_to_success(&store, id, "t").await;
    }
    let table = [("1", false), ("2", true), ("3", true)];
    for (id, keeps_output) in table {
        let job = store.job(id.into()).await.expect("get").expect("exists");
        assert_eq!(job.stdout.is_some(), keeps_output, "{id}");
        assert_eq!(job.output_dropped, !keeps_output, "{id}");
        assert_eq!(job.exit_code, Some(3), "{id}");
    }
}

/// A long job that ends after `retention` newer jobs ended (a scan that ran for minutes) keeps
/// its record but not its output, and the newer jobs keep theirs.
async fn a_job_finishing_after_newer_jobs_passed_the_retention_limit_keeps_no_output<B: Backend>() {
    let Some((_place, store)) = B::fresh(2).await else {
        return;
    };
    store
        .insert_job(new_job("long", "t"), None)
        .await
        .expect("insert");
    for id in ["1", "2", "3", "4"] {
        run_to_success(&store, id, "t").await;
    }
    store
        .finish_job("long".into(), finished(JobStatus::Succeeded))
        .await
        .expect("finish");
    let table = [
        ("long", false),
        ("1", false),
        ("2", false),
        ("3", true),
        ("4", true),
    ];
    for (id, keeps_output) in table {
        let job = store.job(id.into()).await.expect("get").expect("exists");
        assert_eq!(job.stdout.is_some(), keeps_output, "{id}");
        assert_eq!(job.output_dropped, !keeps_output, "{id}");
        assert_eq!(job.status, JobStatus::Succeeded, "{id}");
    }
}

async fn a_retention_of_zero_keeps_no_output<B: Backend>() {
    let Some((_place, store)) = B::fresh(0).await else {
        return;
    };
    run_to_success(&store, "1", "t").await;
    let job = store.job("1".into()).await.expect("get").expect("exists");
    assert!(job.stdout.is_none() && job.output_dropped);
}

async fn concurrent_writes_are_all_committed<B: Backend>() {
    const JOBS: usize = 200;
    let Some((_place, store)) = B::fresh(JOBS).await else {
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..JOBS {
        let store = store.clone();
        tasks.spawn(async move {
            let id = format!("job-{i}");
            let started = (i % 2 == 0).then(now_text);
            store.insert_job(new_job(&id, "t"), started).await?;
            if i % 2 == 1 {
                store.mark_job_running(id.clone(), now_text()).await?;
            }
            let status = if i % 3 == 0 {
                JobStatus::Failed
            } else {
                JobStatus::Succeeded
            };
            store.finish_job(id, finished(status)).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("write");
    }
    for i in 0..JOBS {
        let job = store
            .job(format!("job-{i}"))
            .await
            .expect("get")
            .expect("exists");
        let expected = if i % 3 == 0 {
            JobStatus::Failed
        } else {
            JobStatus::Succeeded
        };
        assert_eq!(job.status, expected, "job-{i}");
        assert!(job.started_at.is_some(), "job-{i}");
        assert_eq!(job.stdout.as_deref(), Some("out"), "job-{i}");
    }
}
