//! Two instances sharing one database never run one job, or one scheduled tick, twice.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use omnistack::jobs::{Enqueue, JobContext, schedule};
use omnistack_db::jobs::{JobFilter, JobState, list_jobs};
use omnistack_db::time;
use omnistack_testkit::TestApp;

use super::{Flaky, enqueue};

fn context(app: &TestApp) -> JobContext {
    let state = &app.state;
    JobContext {
        db: state.db.clone(),
        config: state.config.clone(),
        mailer: state.mailer.clone(),
        hub: state.realtime.clone(),
        jobs: state.jobs.clone(),
        stores: state.stores.clone(),
        usage: state.usage.clone(),
    }
}

#[tokio::test]
async fn two_instances_run_each_job_once() {
    let flaky = Flaky::default();
    let first = TestApp::builder().env("JOBS_WORKERS", "4").env("JOBS_POLL_INTERVAL_MS", "20").job_kind(flaky.clone());
    let first = first.spawn().await;
    let second = TestApp::builder()
        .sharing(&first)
        .env("JOBS_WORKERS", "4")
        .env("JOBS_POLL_INTERVAL_MS", "20")
        .job_kind(flaky.clone())
        .spawn()
        .await;
    const JOBS: usize = 200;
    for n in 0..JOBS {
        let app = if n % 2 == 0 { &first } else { &second };
        enqueue::<Flaky>(app, Enqueue::default()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = JobFilter { state: Some(JobState::Succeeded), kind: Some("test_flaky") };
    while list_jobs(&first.state.db, done, 0, 1).await.unwrap().1 < JOBS as i64 {
        assert!(Instant::now() < deadline, "not every job finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let runs = flaky.runs.lock().unwrap().clone();
    let distinct: HashSet<_> = runs.iter().collect();
    assert_eq!((runs.len(), distinct.len()), (JOBS, JOBS), "every job ran exactly once");
}

#[tokio::test]
async fn a_scheduled_tick_is_enqueued_and_run_once_across_instances() {
    let every_minute = [
        ("JOBS_SCHEDULE_CLEANUP", "* * * * *"),
        ("JOBS_SCHEDULE_DAILY_REPORT", "off"),
        ("JOBS_SCHEDULE_FILES_CLEANUP", "off"),
    ];
    let mut builder = TestApp::builder();
    for (name, value) in every_minute {
        builder = builder.env(name, value);
    }
    let first = builder.spawn().await;
    let mut builder = TestApp::builder().sharing(&first);
    for (name, value) in every_minute {
        builder = builder.env(name, value);
    }
    let second = builder.spawn().await;
    let now = time::now();
    let (first_context, second_context) = (context(&first), context(&second));
    let (a, b) = tokio::join!(schedule::enqueue_due(&first_context, now), schedule::enqueue_due(&second_context, now));
    let ticks = 15;
    assert!(a + b <= ticks, "{a} + {b} new jobs for {ticks} ticks");
    let cleanup = JobFilter { state: None, kind: Some("cleanup") };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (jobs, total) = list_jobs(&first.state.db, cleanup, 0, 100).await.unwrap();
        let keys: HashSet<_> = jobs.iter().filter_map(|job| job.unique_key.clone()).collect();
        assert_eq!(keys.len() as i64, total, "one job per tick");
        assert!((ticks as i64..=ticks as i64 + 2).contains(&total), "{total} ticks in the look-back");
        if jobs.iter().all(|job| job.state() == JobState::Succeeded) {
            assert!(jobs.iter().all(|job| job.attempts == 1), "each tick ran once");
            break;
        }
        assert!(Instant::now() < deadline, "the scheduled jobs did not all run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
