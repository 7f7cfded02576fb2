//! What admins do with jobs: list, inspect, retry, cancel and count them. Every function
//! checks the caller's role itself, whatever the route in front of it.

use std::collections::BTreeMap;

use omnistack_db::Db;
use omnistack_db::jobs::{self as db_jobs, Job, JobFilter, JobState};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::audit::{self, AuditContext, AuditEntry};
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};

/// The most jobs one page holds.
pub const MAX_PAGE: i64 = 100;
/// The longest kind name a filter accepts.
const MAX_KIND_LEN: usize = 100;

/// One page of jobs, newest first.
#[derive(Debug)]
pub struct JobPage {
    /// The page.
    pub items: Vec<Job>,
    /// Jobs matching the filter, across pages.
    pub total: i64,
}

/// Job counts per state, and per kind and state.
#[derive(Debug, Default)]
pub struct JobStats {
    /// Every state, with 0 where none.
    pub by_state: BTreeMap<&'static str, i64>,
    /// Kind → state → count, for the kinds that have jobs.
    pub by_kind: BTreeMap<String, BTreeMap<String, i64>>,
}

/// A page of jobs, filtered by state and kind.
pub async fn list_jobs(
    db: &Db,
    caller: &CurrentUser,
    state: Option<&str>,
    kind: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<JobPage> {
    caller.require(Role::Admin)?;
    let mut problems = Vec::new();
    let state = match state.filter(|s| !s.is_empty()) {
        Some(name) => JobState::parse(name).or_else(|| {
            let names: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
            problems.push(FieldError::new("state", format!("must be one of {}", names.join(", "))));
            None
        }),
        None => None,
    };
    if kind.is_some_and(|k| k.chars().count() > MAX_KIND_LEN) {
        problems.push(FieldError::new("kind", format!("must be at most {MAX_KIND_LEN} characters")));
    }
    problems.extend(FieldError::page(skip, limit, MAX_PAGE));
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let filter = JobFilter { state, kind: kind.filter(|k| !k.is_empty()) };
    let (items, total) = db_jobs::list_jobs(db, filter, skip, limit).await?;
    Ok(JobPage { items, total })
}

/// One job; a malformed or unknown id is 404.
pub async fn find_job(db: &Db, caller: &CurrentUser, id: &str) -> Result<Job> {
    caller.require(Role::Admin)?;
    db_jobs::find_job(db, parse_id(id)?).await?.ok_or_else(not_found)
}

/// Puts a `dead`, `failed` or `cancelled` job back in the queue now; 409 for any other state.
/// Audited (`job.retried`) in the change's transaction.
pub async fn retry_job(db: &Db, caller: &CurrentUser, context: &AuditContext, id: &str) -> Result<Job> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    let mut tx = db.begin().await?;
    match db_jobs::retry_job(&mut tx, id).await? {
        Some(job) => {
            let details = json!({"kind": job.kind, "from": "retryable", "to": job.state});
            audit::record(&mut tx, AuditEntry::by(caller, context, "job.retried", "job", id, details)).await?;
            tx.commit().await?;
            tracing::info!(job.id = %id, admin.id = %caller.user.id, "job retried by an admin");
            Ok(job)
        }
        None => {
            drop(tx);
            Err(conflict(db, id, "only dead, failed or cancelled jobs can be retried").await)
        }
    }
}

/// Cancels a job that has not started (queued, or failed and waiting for its retry); 409 when
/// it is running or finished. Audited (`job.cancelled`) in the change's transaction.
pub async fn cancel_job(db: &Db, caller: &CurrentUser, context: &AuditContext, id: &str) -> Result<Job> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    let mut tx = db.begin().await?;
    match db_jobs::cancel_job(&mut tx, id).await? {
        Some(job) => {
            let details = json!({"kind": job.kind, "to": job.state});
            audit::record(&mut tx, AuditEntry::by(caller, context, "job.cancelled", "job", id, details)).await?;
            tx.commit().await?;
            tracing::info!(job.id = %id, admin.id = %caller.user.id, "job cancelled by an admin");
            Ok(job)
        }
        None => {
            drop(tx);
            Err(conflict(db, id, "only queued jobs (or failed ones waiting for a retry) can be cancelled").await)
        }
    }
}

/// Counts per state and per kind.
pub async fn job_stats(db: &Db, caller: &CurrentUser) -> Result<JobStats> {
    caller.require(Role::Admin)?;
    let mut stats =
        JobStats { by_state: JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect(), ..Default::default() };
    for (state, kind, count) in db_jobs::count_jobs(db).await? {
        if let Some(known) = JobState::parse(&state) {
            *stats.by_state.entry(known.as_str()).or_default() += count;
        }
        stats.by_kind.entry(kind).or_default().insert(state, count);
    }
    Ok(stats)
}

/// A job's payload as an admin sees it: every `token=` value in its strings redacted, so a
/// queued password-reset email shows its link but not a usable token.
pub fn redacted_payload(job: &Job) -> Value {
    crate::mail::redact_tokens_in(&job.payload.0)
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

fn not_found() -> Error {
    Error::NotFound("job not found".into())
}

/// 409 for a job in the wrong state, 404 for one that does not exist.
async fn conflict(db: &Db, id: Uuid, message: &str) -> Error {
    match db_jobs::find_job(db, id).await {
        Ok(Some(job)) => Error::Conflict(format!("{message}; this job is {}", job.state)),
        Ok(None) => not_found(),
        Err(err) => err.into(),
    }
}
