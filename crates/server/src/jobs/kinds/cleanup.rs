//! `cleanup`: removes what nobody needs any more: sessions and one-time tokens past their
//! expiry (or used/revoked) for a day, finished jobs after `JOBS_RETENTION_DAYS`, exports'
//! content after a day, and projects deleted more than `SOFT_DELETE_RETENTION_DAYS` ago.

use chrono::Duration;
use omnistack_db::jobs::Job;
use omnistack_db::{action_tokens, jobs as db_jobs, projects, sessions, time};
use serde_json::{Value, json};

use super::{EXPORT_KEPT, ExportAccount, Scheduled};
use crate::jobs::{JobContext, JobError, JobKind};

/// How long expired or revoked sessions and tokens are kept (for support questions).
const STALE_KEPT: Duration = Duration::days(1);

/// The nightly clean-up.
#[derive(Debug)]
pub struct Cleanup;

impl JobKind for Cleanup {
    const KIND: &'static str = "cleanup";
    type Args = Scheduled;

    async fn run(&self, ctx: &JobContext, _job: &Job, _args: Scheduled) -> Result<Option<Value>, JobError> {
        let now = time::now();
        let settings = &ctx.config.jobs;
        let db = &ctx.db;
        let sessions = sessions::delete_stale_sessions(db, now - STALE_KEPT).await?;
        let tokens = action_tokens::delete_stale_action_tokens(db, now - STALE_KEPT).await?;
        let exports = db_jobs::clear_outputs(db, <ExportAccount as JobKind>::KIND, now - EXPORT_KEPT).await?;
        let jobs = db_jobs::delete_finished_jobs(db, now - Duration::days(settings.retention_days.into())).await?;
        let projects =
            projects::purge_deleted_projects(db, now - Duration::days(settings.soft_delete_retention_days.into()))
                .await?;
        let removed = json!({"sessions": sessions, "action_tokens": tokens, "exports": exports, "jobs": jobs, "projects": projects});
        tracing::info!(removed = %removed, "clean-up done");
        Ok(Some(removed))
    }
}
