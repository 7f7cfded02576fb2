//! The [`JobKind`] trait and the [`Registry`] of every kind this process runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use omnistack_db::jobs::Job;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::JobContext;

/// Why a run failed: [`JobError::Retry`] goes back to the queue (until the attempts run out),
/// [`JobError::Permanent`] is `dead` at once (bad arguments, a refusal that will not change).
///
/// Any error converts into `Retry`, so `?` works in `run`.
#[derive(Debug)]
pub enum JobError {
    /// Worth another attempt (a timeout, a 5xx, a lost connection).
    Retry(anyhow::Error),
    /// Will never succeed.
    Permanent(anyhow::Error),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Retry(err) | JobError::Permanent(err) => write!(f, "{err:#}"),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for JobError {
    fn from(err: E) -> Self {
        JobError::Retry(err.into())
    }
}

/// A kind of job: a stable name, typed arguments stored as JSON, and an idempotent `run`
/// (a job may run more than once: after a crash, or when its lease runs out).
pub trait JobKind: Send + Sync + 'static {
    /// The name stored with each job; never change it once jobs of the kind exist.
    const KIND: &'static str;
    /// Runs allowed before the job is dead (`None`: `JOBS_MAX_ATTEMPTS`).
    const MAX_ATTEMPTS: Option<u32> = None;
    /// Delay before the first retry (`None`: `JOBS_RETRY_BASE_SECONDS`).
    const RETRY_BASE: Option<Duration> = None;
    /// The arguments.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Does the work; what it returns is kept with the job (an export's content).
    fn run(
        &self,
        ctx: &JobContext,
        job: &Job,
        args: Self::Args,
    ) -> impl Future<Output = Result<Option<Value>, JobError>> + Send;

    /// Runs once the success is stored (notify the user, enqueue a follow-up email).
    fn after_success(&self, _ctx: &JobContext, _job: &Job) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A kind with its types erased, as the registry keeps it.
pub(super) trait Runner: Send + Sync {
    fn retry_base(&self) -> Option<Duration>;
    fn run<'a>(&'a self, ctx: &'a JobContext, job: &'a Job) -> BoxFuture<'a, Result<Option<Value>, JobError>>;
    fn after_success<'a>(&'a self, ctx: &'a JobContext, job: &'a Job) -> BoxFuture<'a, ()>;
}

struct Erased<K>(K);

impl<K: JobKind> Runner for Erased<K> {
    fn retry_base(&self) -> Option<Duration> {
        K::RETRY_BASE
    }

    fn run<'a>(&'a self, ctx: &'a JobContext, job: &'a Job) -> BoxFuture<'a, Result<Option<Value>, JobError>> {
        Box::pin(async move {
            let args = serde_json::from_value(job.payload.0.clone())
                .map_err(|err| JobError::Permanent(anyhow::anyhow!("arguments do not fit {}: {err}", K::KIND)))?;
            self.0.run(ctx, job, args).await
        })
    }

    fn after_success<'a>(&'a self, ctx: &'a JobContext, job: &'a Job) -> BoxFuture<'a, ()> {
        Box::pin(self.0.after_success(ctx, job))
    }
}

/// Every kind this process runs, by name.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: HashMap<&'static str, Arc<dyn Runner>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl Registry {
    /// The service's own kinds (see [`super::kinds`]).
    pub fn standard() -> Registry {
        super::kinds::register(Registry::default())
    }

    /// Adds a kind (an application's own, or a test's).
    pub fn with<K: JobKind>(mut self, kind: K) -> Registry {
        self.kinds.insert(K::KIND, Arc::new(Erased(kind)));
        self
    }

    /// The registered kinds' names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.kinds.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// The kind named `kind`, with its name as registered (a `&'static str`, for labels).
    pub(super) fn get(&self, kind: &str) -> Option<(&'static str, &Arc<dyn Runner>)> {
        self.kinds.get_key_value(kind).map(|(name, runner)| (*name, runner))
    }
}
