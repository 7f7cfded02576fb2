//! A stop lets running jobs finish within `SHUTDOWN_TIMEOUT_SECONDS`; a job still running
//! after it is handed back to the queue, its attempt not counted.

use std::time::Duration;

use omnistack::jobs::Enqueue;
use omnistack_db::jobs::{JobState, find_job};
use omnistack_testkit::TestApp;

use super::{Slow, enqueue, wait_for_state};

#[tokio::test]
async fn a_stop_lets_a_running_job_finish() {
    let mut app = TestApp::builder().job_kind(Slow(Duration::from_millis(500))).spawn().await;
    let job = enqueue::<Slow>(&app, Enqueue::default()).await;
    wait_for_state(&app, job.id, JobState::Running, Duration::from_secs(5)).await;
    app.stop().await.unwrap();
    let after = find_job(&app.state.db, job.id).await.unwrap().unwrap();
    assert_eq!(after.state(), JobState::Succeeded);
}

#[tokio::test]
async fn a_job_still_running_after_the_grace_period_is_handed_back() {
    let mut app =
        TestApp::builder().env("SHUTDOWN_TIMEOUT_SECONDS", "1").job_kind(Slow(Duration::from_secs(30))).spawn().await;
    let job = enqueue::<Slow>(&app, Enqueue::default()).await;
    wait_for_state(&app, job.id, JobState::Running, Duration::from_secs(5)).await;
    app.stop().await.unwrap();
    let after = find_job(&app.state.db, job.id).await.unwrap().unwrap();
    assert_eq!((after.state(), after.attempts, after.lease_until), (JobState::Queued, 0, None));
}
