//! Retries with backoff, dead jobs, unique keys and transactions.

use std::time::Duration;

use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::Noop;
use omnistack_db::jobs::{self as db_jobs, JobState, NewJob};
use omnistack_db::{dialect, time};
use omnistack_testkit::TestApp;
use serde_json::Value;

use super::{Flaky, Slow, enqueue, wait_for_state};

#[tokio::test]
async fn a_job_that_fails_twice_then_succeeds_is_retried_and_succeeds() {
    let flaky = Flaky { failures: 2, ..Flaky::default() };
    let app = TestApp::builder().env("JOBS_RETRY_BASE_SECONDS", "0").job_kind(flaky.clone()).spawn().await;
    let job = enqueue::<Flaky>(&app, Enqueue::default()).await;
    let done = wait_for_state(&app, job.id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(done.attempts, 3);
    assert_eq!(flaky.runs_of(job.id), 3);
    assert_eq!(done.output.unwrap().0["runs"], 3);
    assert!(done.last_error.is_none(), "the last error is cleared on success");
}

#[tokio::test]
async fn a_retry_waits_for_its_backoff() {
    let flaky = Flaky { failures: 1, ..Flaky::default() };
    let app = TestApp::builder().env("JOBS_RETRY_BASE_SECONDS", "30").job_kind(flaky.clone()).spawn().await;
    let job = enqueue::<Flaky>(&app, Enqueue::default()).await;
    let failed = wait_for_state(&app, job.id, JobState::Failed, Duration::from_secs(10)).await;
    let wait = failed.run_at - failed.updated_at;
    assert!((15..=45).contains(&wait.num_seconds()), "retry in {wait} (30 s with jitter)");
    assert_eq!(failed.last_error.as_deref(), Some("failure 1 of 1"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(flaky.runs_of(job.id), 1, "not run again before its time");
}

#[tokio::test]
async fn a_job_out_of_attempts_is_dead_and_a_permanent_failure_is_dead_at_once() {
    let flaky = Flaky { failures: 100, ..Flaky::default() };
    let app = TestApp::builder()
        .env("JOBS_RETRY_BASE_SECONDS", "0")
        .env("JOBS_MAX_ATTEMPTS", "3")
        .job_kind(flaky.clone())
        .spawn()
        .await;
    let job = enqueue::<Flaky>(&app, Enqueue::default()).await;
    let dead = wait_for_state(&app, job.id, JobState::Dead, Duration::from_secs(10)).await;
    assert_eq!((dead.attempts, dead.max_attempts), (3, 3));
    assert_eq!(flaky.runs_of(job.id), 3);

    let permanent = Flaky { failures: 100, permanent: true, ..Flaky::default() };
    let app = TestApp::builder().env("JOBS_RETRY_BASE_SECONDS", "0").job_kind(permanent.clone()).spawn().await;
    let job = enqueue::<Flaky>(&app, Enqueue::default()).await;
    let dead = wait_for_state(&app, job.id, JobState::Dead, Duration::from_secs(10)).await;
    assert_eq!((dead.attempts, permanent.runs_of(job.id)), (1, 1));
}

#[tokio::test]
async fn a_unique_key_enqueues_one_job_and_a_rolled_back_transaction_none() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").spawn().await;
    let keyed = || Enqueue { unique_key: Some("report:2026-12-01".into()), ..Enqueue::default() };
    let jobs = &app.state.jobs;
    assert!(jobs.enqueue::<Noop>(&app.state.db, &Value::Null, keyed()).await.unwrap().is_some());
    assert!(jobs.enqueue::<Noop>(&app.state.db, &Value::Null, keyed()).await.unwrap().is_none());
    let mut tx = app.state.db.begin().await.unwrap();
    let job = jobs.enqueue::<Noop>(&mut tx, &Value::Null, Enqueue::default()).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    assert!(omnistack_db::jobs::find_job(&app.state.db, job.id).await.unwrap().is_none());
}

#[tokio::test]
async fn job_metrics_count_enqueued_finished_and_waiting_jobs() {
    let flaky = Flaky { failures: 1, ..Flaky::default() };
    let app = TestApp::builder().env("JOBS_RETRY_BASE_SECONDS", "0").job_kind(flaky).spawn().await;
    let job = enqueue::<Flaky>(&app, Enqueue::default()).await;
    wait_for_state(&app, job.id, JobState::Succeeded, Duration::from_secs(10)).await;
    omnistack::app::samplers::sample_jobs(&app.state).await;
    let scrape = app.client.get("/metrics").await.text;
    for series in [
        r#"omnistack_jobs_enqueued_total{kind="test_flaky"}"#,
        r#"omnistack_jobs_finished_total{kind="test_flaky",outcome="failed"}"#,
        r#"omnistack_jobs_finished_total{kind="test_flaky",outcome="succeeded"}"#,
        r#"omnistack_jobs_duration_seconds_count{kind="test_flaky"}"#,
        r#"omnistack_jobs_queued{kind="email"}"#,
    ] {
        assert!(scrape.lines().any(|line| line.starts_with(series)), "{series} missing");
    }
}

#[tokio::test]
async fn a_job_of_no_registered_kind_is_dead_at_once() {
    let app = TestApp::spawn().await;
    let payload = Value::Null;
    let new = NewJob {
        kind: "retired_kind",
        payload: &payload,
        max_attempts: 5,
        run_at: time::now(),
        unique_key: None,
        user_id: None,
        traceparent: None,
    };
    let job = db_jobs::enqueue(&app.state.db, &new).await.unwrap().unwrap();
    app.state.jobs.wake();
    let dead = wait_for_state(&app, job.id, JobState::Dead, Duration::from_secs(10)).await;
    assert_eq!(dead.attempts, 1);
    assert!(dead.last_error.unwrap().contains("no job kind \"retired_kind\""));
}

#[tokio::test]
async fn a_run_longer_than_its_lease_is_cut_off_and_retried() {
    let app = TestApp::builder()
        .env("JOBS_LEASE_SECONDS", "1")
        .env("JOBS_MAX_ATTEMPTS", "1")
        .job_kind(Slow(Duration::from_secs(30)))
        .spawn()
        .await;
    let job = enqueue::<Slow>(&app, Enqueue::default()).await;
    let dead = wait_for_state(&app, job.id, JobState::Dead, Duration::from_secs(10)).await;
    // The run is cut off as its lease ends; on a loaded machine another claim may find the
    // expired lease first, and then refuses the attempt past the last. Either way it is dead.
    let error = dead.last_error.unwrap();
    assert!(
        error.contains("ran longer than its lease") || error.contains("its lease ran out on the last attempt"),
        "{error}"
    );
}

#[tokio::test]
async fn a_job_whose_lease_ran_out_on_its_last_attempt_is_dead_not_run_again() {
    let flaky = Flaky::default();
    let idle = TestApp::builder().env("JOBS_WORKERS", "0").env("JOBS_MAX_ATTEMPTS", "1").spawn().await;
    let options = Enqueue::default();
    let job = idle.state.jobs.enqueue::<Flaky>(&idle.state.db, &Value::Null, options).await.unwrap().unwrap();
    // A worker claimed its only attempt and died: the lease has already run out.
    let claimed = dialect::claim_jobs(&idle.state.db, chrono::Duration::milliseconds(-1), 1).await.unwrap();
    assert_eq!(claimed[0].id, job.id);
    let worker = TestApp::builder().sharing(&idle).job_kind(flaky.clone()).spawn().await;
    let dead = wait_for_state(&worker, job.id, JobState::Dead, Duration::from_secs(10)).await;
    assert!(dead.last_error.unwrap().contains("lease ran out on the last attempt"));
    assert_eq!(flaky.runs_of(job.id), 0, "not run a second time");
}
