//! Background jobs: enqueue (alone or inside the transaction of the write that causes them),
//! claim with a lease, finish, retry, cancel, list and clean up.
//!
//! A job's `attempts` is also its fencing token: a worker finishes only the attempt it
//! claimed, so a worker whose lease expired (and whose job was claimed again) changes nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Conn, Db, Result, time, traced_conn, traced_pool};

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Waiting for its `run_at`.
    Queued,
    /// Claimed by a worker, until its lease ends.
    Running,
    /// Done.
    Succeeded,
    /// Failed; will be retried at its `run_at`.
    Failed,
    /// Failed on its last attempt; only an admin's retry revives it.
    Dead,
    /// Cancelled before it ran.
    Cancelled,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The state as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == name)
    }
}

/// A row of `jobs`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct Job {
    /// UUIDv7.
    pub id: Uuid,
    /// The registered kind that runs it.
    pub kind: String,
    /// The kind's arguments.
    pub payload: Json<Value>,
    /// See [`JobState`].
    pub state: String,
    /// Runs started so far (the current one included while running).
    pub attempts: i32,
    /// Runs allowed before the job is dead.
    pub max_attempts: i32,
    /// When it may run (next).
    pub run_at: DateTime<Utc>,
    /// While running: when another worker may take it over.
    pub lease_until: Option<DateTime<Utc>>,
    /// The logical job it stands for; a second job with the same key is never enqueued.
    pub unique_key: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The account the job works for, if any (its outcome may be pushed to that user).
    pub user_id: Option<Uuid>,
    /// The W3C `traceparent` of the request that enqueued it.
    pub traceparent: Option<String>,
    /// What a finished job left for its caller (an export).
    pub output: Option<Json<Value>>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached `succeeded`, `dead` or `cancelled`.
    pub finished_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Job {
    /// The job's state (unknown text reads as `dead`, which nothing runs).
    pub fn state(&self) -> JobState {
        JobState::parse(&self.state).unwrap_or(JobState::Dead)
    }
}

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    /// Its kind.
    pub kind: &'a str,
    /// Its arguments.
    pub payload: &'a Value,
    /// Runs allowed.
    pub max_attempts: i32,
    /// When it may first run.
    pub run_at: DateTime<Utc>,
    /// See [`Job::unique_key`].
    pub unique_key: Option<&'a str>,
    /// See [`Job::user_id`].
    pub user_id: Option<Uuid>,
    /// See [`Job::traceparent`].
    pub traceparent: Option<&'a str>,
}

pub(crate) const COLUMNS: &str = "id, kind, payload, state, attempts, max_attempts, run_at, lease_until, unique_key, \
     last_error, user_id, traceparent, output, created_at, started_at, finished_at, updated_at";

/// Enqueues a job, alone or in the caller's transaction. `None` when a job with the same
/// unique key exists (whatever its state): the logical job is already enqueued.
pub async fn enqueue(conn: impl Into<Conn<'_>>, new: &NewJob<'_>) -> Result<Option<Job>> {
    let sql = format!(
        "INSERT INTO jobs (id, kind, payload, state, max_attempts, run_at, unique_key, user_id, traceparent, \
         created_at, updated_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (unique_key) DO NOTHING RETURNING {COLUMNS}"
    );
    let conn = conn.into();
    let job =
        traced_conn!(conn, "INSERT", "jobs", &sql, |e| sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(Uuid::now_v7())
            .bind(new.kind)
            .bind(Json(new.payload))
            .bind(new.max_attempts)
            .bind(new.run_at)
            .bind(new.unique_key)
            .bind(new.user_id)
            .bind(new.traceparent)
            .bind(time::now())
            .fetch_optional(e)
            .await?);
    Ok(job)
}

/// Marks the claimed `attempt` of a job succeeded, with what it leaves for its caller.
/// False when that attempt no longer holds the job (its lease expired and it was re-claimed).
pub async fn succeed(db: &Db, id: Uuid, attempt: i32, output: Option<&Value>) -> Result<bool> {
    const SQL: &str = "UPDATE jobs SET state = 'succeeded', lease_until = NULL, output = $3, last_error = NULL,
         finished_at = $4, updated_at = $4 WHERE id = $1 AND attempts = $2 AND state = 'running'";
    let done = traced_pool!(db, "UPDATE", "jobs", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(attempt)
        .bind(output.map(Json))
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// The most claims [`succeed_many`] takes at once.
pub const MAX_BATCH: usize = 64;

/// Marks many claimed attempts succeeded (without output) in one statement; returns the ids
/// of those whose attempt still held the job. At most [`MAX_BATCH`] claims.
pub async fn succeed_many(db: &Db, claims: &[(Uuid, i32)]) -> Result<Vec<Uuid>> {
    let claims = &claims[..claims.len().min(MAX_BATCH)];
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let pairs: Vec<String> = (0..claims.len()).map(|n| format!("(${}, ${})", 2 * n + 2, 2 * n + 3)).collect();
    let sql = format!(
        "UPDATE jobs SET state = 'succeeded', lease_until = NULL, output = NULL, last_error = NULL,
         finished_at = $1, updated_at = $1 WHERE state = 'running' AND (id, attempts) IN (VALUES {}) RETURNING id",
        pairs.join(", ")
    );
    let now = time::now();
    let done: Vec<(Uuid,)> = traced_pool!(db, "UPDATE", "jobs", &sql, |pool| {
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(now);
        for (id, attempt) in claims {
            query = query.bind(*id).bind(*attempt);
        }
        query.fetch_all(pool).await?
    });
    Ok(done.into_iter().map(|(id,)| id).collect())
}

/// Records a failed `attempt`: back to the queue at `retry_at`, or `dead` when `None`.
/// False when that attempt no longer holds the job.
pub async fn fail(db: &Db, id: Uuid, attempt: i32, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<bool> {
    const SQL: &str = "UPDATE jobs SET state = CASE WHEN $4 IS NULL THEN 'dead' ELSE 'failed' END,
         run_at = COALESCE($4, run_at), lease_until = NULL, last_error = $3,
         finished_at = CASE WHEN $4 IS NULL THEN $5 ELSE NULL END, updated_at = $5
         WHERE id = $1 AND attempts = $2 AND state = 'running'";
    let done = traced_pool!(db, "UPDATE", "jobs", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(attempt)
        .bind(error)
        .bind(retry_at)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Hands a claimed attempt back to the queue, due now, as if it had not been claimed (its
/// worker is stopping). False when that attempt no longer holds the job.
pub async fn release(db: &Db, id: Uuid, attempt: i32) -> Result<bool> {
    const SQL: &str = "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, run_at = $3,
         updated_at = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'";
    let done = traced_pool!(db, "UPDATE", "jobs", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(attempt)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Replaces a job's payload (an email's, once sent, without its one-time tokens).
pub async fn replace_payload(db: &Db, id: Uuid, payload: &Value) -> Result<bool> {
    const SQL: &str = "UPDATE jobs SET payload = $2 WHERE id = $1";
    let done = traced_pool!(db, "UPDATE", "jobs", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(Json(payload))
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// A job by id.
pub async fn find_job(db: &Db, id: Uuid) -> Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
    let job =
        traced_pool!(db, "SELECT", "jobs", &sql, |pool| sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(pool)
            .await?);
    Ok(job)
}

/// The job enqueued under `unique_key`, if any.
pub async fn find_job_by_key(db: &Db, unique_key: &str) -> Result<Option<Job>> {
    let sql = format!("SELECT {COLUMNS} FROM jobs WHERE unique_key = $1");
    let job =
        traced_pool!(db, "SELECT", "jobs", &sql, |pool| sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(unique_key)
            .fetch_optional(pool)
            .await?);
    Ok(job)
}

/// Which jobs a listing shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct JobFilter<'a> {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this kind.
    pub kind: Option<&'a str>,
}

/// One page of jobs, newest first, and how many match in all.
pub async fn list_jobs(db: &Db, filter: JobFilter<'_>, skip: i64, limit: i64) -> Result<(Vec<Job>, i64)> {
    const WHERE: &str = "($1 IS NULL OR state = $1) AND ($2 IS NULL OR kind = $2)";
    let page_sql =
        format!("SELECT {COLUMNS} FROM jobs WHERE {WHERE} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4");
    let count_sql = format!("SELECT COUNT(*) FROM jobs WHERE {WHERE}");
    let state = filter.state.map(JobState::as_str);
    let items = traced_pool!(db, "SELECT", "jobs", &page_sql, |pool| sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(
        page_sql.as_str()
    ))
    .bind(state)
    .bind(filter.kind)
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?);
    let (total,): (i64,) =
        traced_pool!(db, "SELECT", "jobs", &count_sql, |pool| sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str()))
            .bind(state)
            .bind(filter.kind)
            .fetch_one(pool)
            .await?);
    Ok((items, total))
}

/// Puts a `dead`, `failed` or `cancelled` job back in the queue now, with a fresh set of
/// attempts; `None` when the job is in another state (or unknown).
pub async fn retry_job(conn: impl Into<Conn<'_>>, id: Uuid) -> Result<Option<Job>> {
    let conn = conn.into();
    let sql = format!(
        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $2, finished_at = NULL, updated_at = $2
         WHERE id = $1 AND state IN ('dead', 'failed', 'cancelled') RETURNING {COLUMNS}"
    );
    let job =
        traced_conn!(conn, "UPDATE", "jobs", &sql, |e| sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .bind(time::now())
            .fetch_optional(e)
            .await?);
    Ok(job)
}

/// Cancels a job that is waiting (`queued`, or `failed` and waiting for its retry); `None`
/// when it is running or finished (or unknown).
pub async fn cancel_job(conn: impl Into<Conn<'_>>, id: Uuid) -> Result<Option<Job>> {
    let conn = conn.into();
    let sql = format!(
        "UPDATE jobs SET state = 'cancelled', finished_at = $2, updated_at = $2
         WHERE id = $1 AND state IN ('queued', 'failed') RETURNING {COLUMNS}"
    );
    let job =
        traced_conn!(conn, "UPDATE", "jobs", &sql, |e| sqlx::query_as::<_, Job>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .bind(time::now())
            .fetch_optional(e)
            .await?);
    Ok(job)
}

/// How many jobs there are per state and kind: `(state, kind, count)`.
pub async fn count_jobs(db: &Db) -> Result<Vec<(String, String, i64)>> {
    const SQL: &str = "SELECT state, kind, COUNT(*) FROM jobs GROUP BY state, kind ORDER BY state, kind";
    let rows = traced_pool!(db, "SELECT", "jobs", SQL, |pool| sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows)
}

/// How many jobs reached `state` since `since` (by their last change).
pub async fn count_jobs_since(db: &Db, state: JobState, since: DateTime<Utc>) -> Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM jobs WHERE state = $1 AND updated_at >= $2";
    let (count,): (i64,) = traced_pool!(db, "SELECT", "jobs", SQL, |pool| sqlx::query_as(SQL)
        .bind(state.as_str())
        .bind(since)
        .fetch_one(pool)
        .await?);
    Ok(count)
}

/// Deletes jobs that finished (`succeeded`, `dead`, `cancelled`) before `before`; returns how
/// many. Their unique keys become free again.
pub async fn delete_finished_jobs(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "DELETE FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND finished_at < $1";
    let deleted = traced_pool!(db, "DELETE", "jobs", SQL, |pool| sqlx::query(SQL)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(deleted)
}

/// Drops the output of finished jobs of `kind` that finished before `before` (exports are
/// kept for a day, the job row for longer); returns how many.
pub async fn clear_outputs(db: &Db, kind: &str, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "UPDATE jobs SET output = NULL WHERE kind = $1 AND output IS NOT NULL AND finished_at < $2";
    let cleared = traced_pool!(db, "UPDATE", "jobs", SQL, |pool| sqlx::query(SQL)
        .bind(kind)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(cleared)
}
