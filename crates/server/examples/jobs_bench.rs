//! Job queue throughput, end to end: enqueue `JOBS` no-op jobs from `ENQUEUERS` concurrent
//! tasks while the workers (`JOBS_WORKERS`) drain them, on the configured database
//! (`DATABASE_URL`, SQLite by default). Prints the enqueue rate and the end-to-end rate
//! (first enqueue to last job done). Run through `bench/jobs.sh`.

use std::time::{Duration, Instant};

use omnistack::app::App;
use omnistack::config::Config;
use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::Noop;
use omnistack_db::jobs::{JobFilter, JobState, list_jobs};
use serde_json::Value;

fn number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    omnistack::install_crypto_provider();
    let jobs = number("JOBS", 20_000);
    let enqueuers = number("ENQUEUERS", 8);
    let config = Config::from_env()?;
    let (engine, workers) =
        (config.database_url.expose().split(':').next().unwrap_or("?").to_owned(), config.jobs.workers);
    let app = App::build(config).await?;
    let state = app.state.clone();

    let started = Instant::now();
    let tasks: Vec<_> = (0..enqueuers)
        .map(|task| {
            let state = state.clone();
            tokio::spawn(async move {
                for _ in (task..jobs).step_by(enqueuers) {
                    state.jobs.enqueue::<Noop>(&state.db, &Value::Null, Enqueue::default()).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let enqueued = started.elapsed();
    let done = JobFilter { state: Some(JobState::Succeeded), kind: Some("noop") };
    let (_, done_while_enqueuing) = list_jobs(&state.db, done, 0, 1).await?;
    loop {
        let (_, finished) = list_jobs(&state.db, done, 0, 1).await?;
        if finished as usize >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    let drained = (jobs - done_while_enqueuing as usize) as f64 / (total - enqueued).as_secs_f64();
    println!(
        "{engine}: {jobs} no-op jobs, {workers} workers, {enqueuers} enqueuers: enqueued at {:.0}/s; \
         enqueue → done {:.0} jobs/s ({:.2} s); the rest drained at {drained:.0} jobs/s",
        jobs as f64 / enqueued.as_secs_f64(),
        jobs as f64 / total.as_secs_f64(),
        total.as_secs_f64()
    );
    app.workers.shutdown().await;
    Ok(())
}
