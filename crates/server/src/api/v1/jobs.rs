//! `/admin/jobs`: the background job queue, for admins.

use crate::api::Routes;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use omnistack_db::jobs::Job;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::AuditContext;
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::jobs::admin;
use crate::state::AppState;

/// The admin job routes.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list_jobs))
        .routes(routes!(job_stats))
        .routes(routes!(get_job, cancel_job))
        .routes(routes!(retry_job))
}

/// A job, as listed (no payload).
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    /// Job id.
    pub id: Uuid,
    /// Its kind (`email`, `export`, `daily_report`, `cleanup`, …).
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` (will retry), `dead` or `cancelled`.
    pub state: String,
    /// Runs started so far.
    pub attempts: i32,
    /// Runs allowed before it is dead.
    pub max_attempts: i32,
    /// When it may run (next).
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished (succeeded, dead or cancelled).
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl From<&Job> for JobSummary {
    fn from(job: &Job) -> Self {
        JobSummary {
            id: job.id,
            kind: job.kind.clone(),
            state: job.state.clone(),
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            run_at: job.run_at,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            last_error: job.last_error.clone(),
        }
    }
}

/// One job with its payload (one-time tokens in it redacted) and what it left.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobDetail {
    /// Everything a listing shows.
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The kind's arguments.
    pub payload: Value,
    /// The logical job it stands for, if keyed.
    pub unique_key: Option<String>,
    /// The account it works for.
    pub user_id: Option<Uuid>,
    /// Whether it left an output (an export's content, a clean-up's counts).
    pub has_output: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Job> for JobDetail {
    fn from(job: Job) -> Self {
        JobDetail {
            summary: JobSummary::from(&job),
            payload: admin::redacted_payload(&job),
            unique_key: job.unique_key,
            user_id: job.user_id,
            has_output: job.output.is_some(),
            updated_at: job.updated_at,
        }
    }
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobListResponse {
    /// The page, newest first.
    pub items: Vec<JobSummary>,
    /// Jobs matching the filter.
    pub total: i64,
    /// Jobs skipped.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// Filters and page of the job listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// Only jobs in this state.
    #[param(max_length = 20)]
    pub state: Option<String>,
    /// Only jobs of this kind.
    #[param(max_length = 100)]
    pub kind: Option<String>,
    /// Jobs to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Job counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatsResponse {
    /// Jobs per state (every state, 0 where none).
    pub by_state: BTreeMap<String, i64>,
    /// Jobs per kind, then per state.
    pub by_kind: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Lists jobs, newest first.
#[utoipa::path(get, path = "/admin/jobs", tag = "jobs", params(JobListParams), security(("bearer" = [])),
    responses(
        (status = OK, description = "A page of jobs", body = JobListResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad filter or page", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_jobs(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Query(params): Query<JobListParams>,
) -> Result<Json<JobListResponse>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let page = admin::list_jobs(&db, &admin, params.state.as_deref(), params.kind.as_deref(), skip, limit).await?;
    Ok(Json(JobListResponse {
        items: page.items.iter().map(JobSummary::from).collect(),
        total: page.total,
        skip,
        limit,
    }))
}

/// Counts jobs per state and per kind.
#[utoipa::path(get, path = "/admin/jobs/stats", tag = "jobs", security(("bearer" = [])),
    responses(
        (status = OK, description = "Job counts", body = JobStatsResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn job_stats(State(db): State<Db>, AdminUser(admin): AdminUser) -> Result<Json<JobStatsResponse>> {
    let stats = admin::job_stats(&db, &admin).await?;
    Ok(Json(JobStatsResponse {
        by_state: stats.by_state.into_iter().map(|(state, count)| (state.to_owned(), count)).collect(),
        by_kind: stats.by_kind,
    }))
}

/// One job, with its payload.
#[utoipa::path(get, path = "/admin/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id", max_length = 36)),
    responses(
        (status = OK, description = "The job", body = JobDetail),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such job", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_job(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>> {
    Ok(Json(admin::find_job(&db, &admin, &id).await?.into()))
}

/// Puts a dead, failed or cancelled job back in the queue now, with a fresh set of attempts.
#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id", max_length = 36)),
    responses(
        (status = OK, description = "The job, queued again", body = JobDetail),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such job", body = ErrorBody),
        (status = CONFLICT, description = "The job is queued, running or succeeded", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn retry_job(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>> {
    let job = admin::retry_job(&state.db, &admin, &context, &id).await?;
    state.jobs.wake();
    Ok(Json(job.into()))
}

/// Cancels a job that has not started.
#[utoipa::path(delete, path = "/admin/jobs/{id}", tag = "jobs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Job id", max_length = 36)),
    responses(
        (status = OK, description = "The job, cancelled", body = JobDetail),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such job", body = ErrorBody),
        (status = CONFLICT, description = "The job is running or finished", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn cancel_job(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
) -> Result<Json<JobDetail>> {
    Ok(Json(admin::cancel_job(&db, &admin, &context, &id).await?.into()))
}
