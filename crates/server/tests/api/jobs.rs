//! Background jobs end to end: retries, dead jobs and the admin API, exports, schedules, and
//! the queue across a crash and across instances.

mod admin;
mod crash;
mod export;
mod instances;
mod retries;
mod scheduled;
mod shutdown;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omnistack::jobs::{Enqueue, JobContext, JobError, JobKind};
use omnistack_db::jobs::{Job, JobState, find_job};
use omnistack_testkit::TestApp;
use serde_json::Value;
use uuid::Uuid;

/// A kind that fails its first `failures` runs (per job), then succeeds; it notes every run.
#[derive(Clone, Default)]
pub struct Flaky {
    pub failures: u32,
    pub runs: Arc<Mutex<Vec<Uuid>>>,
    pub permanent: bool,
}

impl JobKind for Flaky {
    const KIND: &'static str = "test_flaky";
    type Args = Value;

    async fn run(&self, _ctx: &JobContext, job: &Job, _args: Value) -> Result<Option<Value>, JobError> {
        let runs = {
            let mut runs = self.runs.lock().unwrap();
            runs.push(job.id);
            runs.iter().filter(|id| **id == job.id).count() as u32
        };
        if runs <= self.failures {
            let err = anyhow::anyhow!("failure {runs} of {}", self.failures);
            return Err(if self.permanent { JobError::Permanent(err) } else { JobError::Retry(err) });
        }
        Ok(Some(serde_json::json!({"runs": runs})))
    }
}

impl Flaky {
    pub fn runs_of(&self, id: Uuid) -> usize {
        self.runs.lock().unwrap().iter().filter(|run| **run == id).count()
    }
}

/// Sleeps for its duration, then succeeds.
#[derive(Clone, Copy)]
pub struct Slow(pub Duration);

impl JobKind for Slow {
    const KIND: &'static str = "test_slow";
    type Args = Value;

    async fn run(&self, _ctx: &JobContext, _job: &Job, _args: Value) -> Result<Option<Value>, JobError> {
        tokio::time::sleep(self.0).await;
        Ok(None)
    }
}

/// Enqueues a job of kind `K` on `app`.
pub async fn enqueue<K: JobKind<Args = Value>>(app: &TestApp, options: Enqueue) -> Job {
    app.state.jobs.enqueue::<K>(&app.state.db, &Value::Null, options).await.unwrap().expect("a new job")
}

/// Waits (at most `wait`) until the job is in `state`; returns it.
pub async fn wait_for_state(app: &TestApp, id: Uuid, state: JobState, wait: Duration) -> Job {
    let deadline = Instant::now() + wait;
    loop {
        let job = find_job(&app.state.db, id).await.unwrap().expect("job exists");
        if job.state() == state {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} stayed {} (wanted {}): {job:?}", job.state, state.as_str());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A signed-in admin: a client sending its token.
pub async fn admin_client(app: &TestApp) -> omnistack_testkit::TestClient {
    let (client, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    omnistack::users::set_role_by_email(&app.state.db, email, omnistack::auth::Role::Admin).await.unwrap();
    client
}
