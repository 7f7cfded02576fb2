//! The workers: claim due jobs (as many as there are free slots), run each under its lease,
//! and record the outcome, the metrics and a span linked to the request that enqueued it.
//!
//! On stop, no new job is claimed; running jobs get the grace period to finish, and those
//! still running after it are handed back to the queue at once (rather than waiting for their
//! lease to run out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use omnistack_db::Db;
use omnistack_db::jobs::{self as db_jobs, Job, JobState};
use omnistack_db::{dialect, time};
use opentelemetry::trace::{FutureExt, Link, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::registry::Runner;
use super::{JobContext, JobError, enqueued_under};

/// Longest wait between retries, whatever the attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// Longest error text kept with a job.
const MAX_ERROR_LEN: usize = 2000;

/// Running workers; stop them with [`Workers::shutdown`].
#[derive(Debug)]
pub struct Workers {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Workers {
    /// Starts `ctx.config.jobs.workers` workers and the schedules (nothing when it is 0).
    pub fn spawn(ctx: JobContext) -> Workers {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            if ctx.config.jobs.workers == 0 {
                return;
            }
            let schedules = tokio::spawn(super::schedule::run(ctx.clone(), stopped.clone()));
            run(ctx, stopped).await;
            let _ = schedules.await;
        });
        Workers { stop, task }
    }

    /// Stops claiming, lets running jobs finish for at most `SHUTDOWN_TIMEOUT_SECONDS`, and
    /// hands back the rest.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Workers {
    /// Dropped without [`Workers::shutdown`] (a test's server going away): stop claiming.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn run(ctx: JobContext, mut stopped: watch::Receiver<bool>) {
    let slots = ctx.config.jobs.workers;
    let free = Arc::new(Semaphore::new(slots));
    let mut running = JoinSet::new();
    let in_flight: InFlight = Arc::default();
    let (completions, recorder) = Completions::start(ctx.db.clone());
    // The claim outlasts the run's cut-off (at `JOBS_LEASE_SECONDS`) by a moment, so the
    // holder records "ran longer than its lease" before any worker may take the job over.
    let held = ctx.config.jobs.lease + (ctx.config.jobs.lease / 4).min(Duration::from_secs(1));
    let lease = chrono::Duration::from_std(held).unwrap_or(chrono::Duration::minutes(5));
    let mut failures = 0u32;
    while !*stopped.borrow() {
        while running.try_join_next().is_some() {}
        let available = free.available_permits();
        if available == 0 {
            tokio::select! {
                _ = running.join_next() => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        let claimed = match dialect::claim_jobs(&ctx.db, lease, available as i64).await {
            Ok(claimed) => {
                failures = 0;
                claimed
            }
            Err(err) => {
                failures = (failures + 1).min(6);
                tracing::warn!(error = %err, "could not claim jobs; retrying");
                idle(&ctx, &mut stopped, Duration::from_millis(250 << failures)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            idle(&ctx, &mut stopped, ctx.config.jobs.poll_interval).await;
            continue;
        }
        for job in claimed {
            let Ok(permit) = free.clone().acquire_owned().await else { break };
            let ctx = ctx.clone();
            let claim = (job.id, job.attempts);
            lock(&in_flight).insert(claim);
            let in_flight = in_flight.clone();
            let completions = completions.clone();
            running.spawn(async move {
                run_one(&ctx, &completions, job).await;
                lock(&in_flight).remove(&claim);
                drop(permit);
            });
        }
    }
    finish(&ctx, running, &in_flight).await;
    drop(completions);
    let _ = recorder.await;
}

/// The claims (job id, attempt) being run by this process.
type InFlight = Arc<std::sync::Mutex<std::collections::HashSet<(uuid::Uuid, i32)>>>;

fn lock(in_flight: &InFlight) -> std::sync::MutexGuard<'_, std::collections::HashSet<(uuid::Uuid, i32)>> {
    in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits for a wake-up, the poll interval or the stop, whichever comes first.
async fn idle(ctx: &JobContext, stopped: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        () = ctx.jobs.woken() => {}
        () = tokio::time::sleep(wait) => {}
        _ = stopped.changed() => {}
    }
}

/// Lets running jobs finish within the shutdown grace period, then hands back the rest so
/// another worker runs them at once (the attempt does not count).
async fn finish(ctx: &JobContext, mut running: JoinSet<()>, in_flight: &InFlight) {
    let grace = ctx.config.shutdown_timeout;
    let drained = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_ok() {
        return;
    }
    running.abort_all();
    while running.join_next().await.is_some() {}
    let unfinished: Vec<_> = lock(in_flight).drain().collect();
    tracing::warn!(jobs = unfinished.len(), "jobs still running after the grace period; handing them back");
    for (id, attempt) in unfinished {
        if let Err(err) = db_jobs::release(&ctx.db, id, attempt).await {
            tracing::warn!(job.id = %id, error = %err, "could not hand a job back; its lease will expire");
        }
    }
}

/// Runs one claimed job and stores its outcome.
async fn run_one(ctx: &JobContext, completions: &Completions, job: Job) {
    let (kind_label, kind) = match ctx.jobs.registry().get(&job.kind) {
        Some((name, runner)) => (name, Some(runner.clone())),
        None => ("unknown", None),
    };
    let started = Instant::now();
    let span = job_span(&job);
    let cx = Context::current_with_span(span);
    let result = match &kind {
        None => Err(JobError::Permanent(anyhow::anyhow!("no job kind {:?} is registered", job.kind))),
        Some(_) if job.attempts > job.max_attempts => {
            Err(JobError::Permanent(anyhow::anyhow!("its lease ran out on the last attempt")))
        }
        Some(runner) => {
            match tokio::time::timeout(ctx.config.jobs.lease, runner.run(ctx, &job).with_context(cx.clone())).await {
                Ok(result) => result,
                Err(_) => Err(JobError::Retry(anyhow::anyhow!("ran longer than its lease (JOBS_LEASE_SECONDS)"))),
            }
        }
    };
    let outcome = record(ctx, completions, &job, kind.as_deref(), result).await;
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!("omnistack_jobs_duration_seconds", "kind" => kind_label).record(seconds);
    metrics::counter!("omnistack_jobs_finished_total", "kind" => kind_label, "outcome" => outcome.as_str())
        .increment(1);
    let span = cx.span();
    span.set_attribute(KeyValue::new("job.outcome", outcome.as_str()));
    if outcome != JobState::Succeeded {
        span.set_status(Status::error(outcome.as_str()));
    }
    span.end();
    if outcome == JobState::Succeeded
        && let Some(user_id) = job.user_id
    {
        ctx.usage.count(user_id, crate::usage::metric::BACKGROUND_JOBS, 1, &[("kind", kind_label)]);
    }
    if outcome == JobState::Succeeded
        && let Some(runner) = &kind
    {
        runner.after_success(ctx, &job).with_context(cx).await;
    }
}

/// Stores a run's result; returns the job's new state (`succeeded`, `failed` or `dead`).
async fn record(
    ctx: &JobContext,
    completions: &Completions,
    job: &Job,
    kind: Option<&dyn Runner>,
    result: Result<Option<serde_json::Value>, JobError>,
) -> JobState {
    let (stored, outcome) = match result {
        Ok(None) => (completions.succeed(job.id, job.attempts).await, JobState::Succeeded),
        Ok(Some(output)) => {
            let stored = db_jobs::succeed(&ctx.db, job.id, job.attempts, Some(&output)).await;
            (stored.map_err(|err| err.to_string()), JobState::Succeeded)
        }
        Err(err) => {
            let retry_at = match &err {
                JobError::Retry(_) if job.attempts < job.max_attempts => {
                    let base = kind.and_then(Runner::retry_base).unwrap_or(ctx.config.jobs.retry_base);
                    Some(time::now() + chrono::Duration::from_std(backoff(base, job.attempts)).unwrap_or_default())
                }
                _ => None,
            };
            let message = truncate(&err.to_string());
            tracing::warn!(job.id = %job.id, job.kind = %job.kind, job.attempt = job.attempts, retry = retry_at.is_some(), error = %message, "job failed");
            let outcome = if retry_at.is_some() { JobState::Failed } else { JobState::Dead };
            let stored = db_jobs::fail(&ctx.db, job.id, job.attempts, &message, retry_at).await;
            (stored.map_err(|err| err.to_string()), outcome)
        }
    };
    match stored {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(job.id = %job.id, "job was taken over by another worker; its outcome is not stored")
        }
        // The lease runs out and another worker repeats the job, which kinds are written to allow.
        Err(err) => tracing::error!(job.id = %job.id, error = %err, "job outcome could not be stored"),
    }
    outcome
}

/// Successes without output, stored in batches: every run waits for its own to be stored,
/// but the runs finishing together share one statement, so the queue's throughput is not one
/// database round trip per job.
#[derive(Clone)]
struct Completions {
    sender: mpsc::Sender<Completion>,
}

/// One stored success: the claim, and where to say whether it still held the job.
type Completion = (Uuid, i32, oneshot::Sender<Result<bool, String>>);

impl Completions {
    /// Starts the task that stores them; it ends once every sender is gone.
    fn start(db: Db) -> (Completions, tokio::task::JoinHandle<()>) {
        let (sender, mut received) = mpsc::channel::<Completion>(db_jobs::MAX_BATCH * 4);
        let recorder = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(db_jobs::MAX_BATCH);
            while received.recv_many(&mut batch, db_jobs::MAX_BATCH).await > 0 {
                let claims: Vec<(Uuid, i32)> = batch.iter().map(|(id, attempt, _)| (*id, *attempt)).collect();
                let stored = db_jobs::succeed_many(&db, &claims).await.map_err(|err| err.to_string());
                for (id, _, reply) in batch.drain(..) {
                    let _ = reply.send(stored.as_ref().map(|done| done.contains(&id)).map_err(Clone::clone));
                }
            }
        });
        (Completions { sender }, recorder)
    }

    /// Stores one success; true when this attempt still held the job.
    async fn succeed(&self, id: Uuid, attempt: i32) -> Result<bool, String> {
        let (reply, stored) = oneshot::channel();
        self.sender.send((id, attempt, reply)).await.map_err(|_| "the recorder stopped".to_owned())?;
        stored.await.map_err(|_| "the recorder stopped".to_owned())?
    }
}

/// The delay before retry `attempt + 1`: `base · 2^(attempt-1)`, times a jitter in [0.5, 1.5),
/// at most [`MAX_BACKOFF`].
pub(super) fn backoff(base: Duration, attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 20) as u32 - 1;
    let doubled = base.saturating_mul(1u32 << exponent).min(MAX_BACKOFF);
    let jitter = 0.5 + Utc::now().timestamp_subsec_nanos() as f64 / 1e9;
    doubled.mul_f64(jitter).min(MAX_BACKOFF)
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_LEN) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

/// A root span for the run, linked to the span of the request that enqueued the job.
fn job_span(job: &Job) -> opentelemetry::global::BoxedSpan {
    let tracer = crate::telemetry::tracer();
    let links = enqueued_under(job.traceparent.as_deref()).map(|parent| vec![Link::with_context(parent)]);
    tracer
        .span_builder(format!("job {}", job.kind))
        .with_kind(SpanKind::Consumer)
        .with_links(links.unwrap_or_default())
        .with_attributes([
            KeyValue::new("job.id", job.id.to_string()),
            KeyValue::new("job.kind", job.kind.clone()),
            KeyValue::new("job.attempt", i64::from(job.attempts)),
        ])
        .start_with_context(tracer, &Context::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(10);
        for attempt in 1..=5 {
            let expected = 10.0 * 2f64.powi(attempt - 1);
            let delay = backoff(base, attempt).as_secs_f64();
            assert!((expected * 0.5..expected * 1.5).contains(&delay), "attempt {attempt}: {delay}");
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn long_errors_are_truncated_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN + 10);
        assert_eq!(truncate(&long).chars().count(), MAX_ERROR_LEN + 1);
        assert_eq!(truncate("short"), "short");
    }
}
