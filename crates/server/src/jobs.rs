//! Background jobs: typed kinds, stored in the application's own database (PostgreSQL or
//! SQLite), enqueued in the same transaction as the write that causes them, claimed with a
//! lease, retried with exponential backoff and jitter, and run by workers inside
//! `omnistack serve` (`JOBS_WORKERS`) or by `omnistack worker` alone.
//!
//! | module | what |
//! |---|---|
//! | [`admin`] | what admins do with jobs: list, inspect, retry, cancel, count |
//! | [`registry`] | every kind, in one place, and the [`JobKind`] trait a kind implements |
//! | [`worker`] | the claim loop: runs due jobs, records outcomes, metrics and spans |
//! | [`schedule`] | cron schedules: each tick enqueued once, whatever the number of instances |
//! | [`kinds`] | the service's own kinds (email, export, daily report, clean-up) |
//!
//! Enqueue with [`Jobs::enqueue`], passing `&db` or `&mut tx`: a job enqueued inside a
//! transaction exists only if that transaction commits.

pub mod admin;
pub mod kinds;
pub mod registry;
pub mod schedule;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use omnistack_db::jobs::{self as db_jobs, Job, NewJob};
use omnistack_db::{Conn, Db, time};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tokio::sync::Notify;
use uuid::Uuid;

pub use registry::{JobError, JobKind, Registry};

use crate::config::{Config, JobSettings};
use crate::mail::Mailer;
use crate::realtime::Hub;

/// The job queue's handle: enqueues jobs and wakes this process's workers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Jobs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: JobSettings,
    registry: Registry,
    wake: Notify,
}

/// How a job is enqueued, beyond its arguments.
#[derive(Clone, Debug, Default)]
pub struct Enqueue {
    /// The logical job it stands for: a second job with the same key is never enqueued.
    pub unique_key: Option<String>,
    /// The account it works for (its outcome can be pushed to that account's sockets).
    pub user_id: Option<Uuid>,
    /// How long to wait before its first run.
    pub delay: Duration,
}

impl Jobs {
    /// A queue running `registry`'s kinds with `settings`' defaults.
    pub fn new(settings: JobSettings, registry: Registry) -> Jobs {
        Jobs { inner: Arc::new(Inner { settings, registry, wake: Notify::new() }) }
    }

    /// Enqueues a job of kind `K`, alone (`&db`, and this process's workers are woken) or in a
    /// transaction (`&mut tx`; call [`Jobs::wake`] after the commit). `None` when a job with
    /// the same unique key already exists.
    pub async fn enqueue<K: JobKind>(
        &self,
        conn: impl Into<Conn<'_>>,
        args: &K::Args,
        options: Enqueue,
    ) -> crate::error::Result<Option<Job>> {
        let conn = conn.into();
        let alone = matches!(conn, Conn::Db(_));
        let payload = serde_json::to_value(args)
            .map_err(|err| anyhow::anyhow!("the arguments of a {} job are not JSON: {err}", K::KIND))?;
        let traceparent = current_traceparent();
        let delay = chrono::Duration::from_std(options.delay).unwrap_or_default();
        let new = NewJob {
            kind: K::KIND,
            payload: &payload,
            max_attempts: K::MAX_ATTEMPTS.unwrap_or(self.inner.settings.max_attempts) as i32,
            run_at: time::now() + delay,
            unique_key: options.unique_key.as_deref(),
            user_id: options.user_id,
            traceparent: traceparent.as_deref(),
        };
        let job = db_jobs::enqueue(conn, &new).await?;
        if job.is_some() {
            metrics::counter!("omnistack_jobs_enqueued_total", "kind" => K::KIND).increment(1);
            if alone {
                self.wake();
            }
        }
        Ok(job)
    }

    /// Wakes this process's idle workers (after committing a transaction that enqueued jobs).
    /// A wake-up while they are busy is kept, so they look again as soon as they are idle.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The registered kinds.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    async fn woken(&self) {
        self.inner.wake.notified().await;
    }
}

/// What a running job may use: the database, the configuration, mail, realtime and the
/// queue itself (to enqueue follow-ups). Built by `serve` and by `omnistack worker` alike,
/// without the HTTP application.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The database pool.
    pub db: Db,
    /// The configuration.
    pub config: Arc<Config>,
    /// Outgoing email.
    pub mailer: Arc<dyn Mailer>,
    /// Realtime publishing (reaches other instances' sockets through Redis).
    pub hub: Hub,
    /// The queue.
    pub jobs: Jobs,
    /// The in-app purchase stores' clients (Google Play).
    pub stores: crate::billing::Stores,
    /// Usage metering (jobs run for an account count as its `background_jobs`).
    pub usage: crate::usage::Usage,
}

/// The W3C `traceparent` of the span being served, when it is sampled.
fn current_traceparent() -> Option<String> {
    let cx = opentelemetry::Context::current();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// The `traceparent` a job was enqueued under, as a remote span context to link to.
fn enqueued_under(traceparent: Option<&str>) -> Option<opentelemetry::trace::SpanContext> {
    let carrier = std::collections::HashMap::from([("traceparent".to_owned(), traceparent?.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let span = cx.span().span_context().clone();
    span.is_valid().then_some(span)
}
