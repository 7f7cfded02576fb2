//! Scheduled jobs: every process that runs workers looks at the schedules
//! (`JOBS_SCHEDULE_<NAME>`, cron, UTC) twice a minute and enqueues each tick of the last
//! [`LOOKBACK`] with the unique key `cron:<name>:<tick>`. However many instances do so, the
//! database keeps one job per tick; a tick missed while every instance was down for less than
//! the look-back still runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use omnistack_db::time;
use tokio::sync::watch;

use super::kinds::{Cleanup, DailyReport, FilesCleanup, Scheduled};
use super::{Enqueue, JobContext, JobKind};

/// How far back a tick is still enqueued.
pub const LOOKBACK: chrono::Duration = chrono::Duration::minutes(15);
/// How often the schedules are looked at.
const EVERY: Duration = Duration::from_secs(30);

/// Runs the schedules until `stopped` turns true.
pub async fn run(ctx: JobContext, mut stopped: watch::Receiver<bool>) {
    if ctx.config.jobs.schedules.iter().all(|(_, cron)| cron.is_none()) {
        return;
    }
    while !*stopped.borrow() {
        enqueue_due(&ctx, time::now()).await;
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Enqueues every scheduled tick in `(now - LOOKBACK, now]`; returns how many were new.
pub async fn enqueue_due(ctx: &JobContext, now: DateTime<Utc>) -> usize {
    let mut enqueued = 0;
    for (name, cron) in &ctx.config.jobs.schedules {
        let Some(cron) = cron else { continue };
        for tick in cron.ticks_between(now - LOOKBACK, now) {
            let args = Scheduled { tick };
            let options =
                Enqueue { unique_key: Some(format!("cron:{name}:{}", tick.to_rfc3339())), ..Enqueue::default() };
            // A schedule is named after the kind it enqueues (`config::jobs::SCHEDULES`).
            let result = match *name {
                DailyReport::KIND => ctx.jobs.enqueue::<DailyReport>(&ctx.db, &args, options).await,
                Cleanup::KIND => ctx.jobs.enqueue::<Cleanup>(&ctx.db, &args, options).await,
                FilesCleanup::KIND => ctx.jobs.enqueue::<FilesCleanup>(&ctx.db, &args, options).await,
                other => {
                    tracing::error!(schedule = other, "a schedule without a job kind");
                    continue;
                }
            };
            match result {
                Ok(Some(_)) => enqueued += 1,
                Ok(None) => {}
                Err(err) => tracing::warn!(schedule = *name, error = %err, "could not enqueue a scheduled job"),
            }
        }
    }
    enqueued
}
