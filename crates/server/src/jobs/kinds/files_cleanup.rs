//! `files_cleanup`: removes uploads still pending a day after their URL was issued (as of the
//! scheduled tick), object
//! first, then the row (only if it is still pending: a confirmation that won the race keeps
//! it). Runs hourly (`JOBS_SCHEDULE_FILES_CLEANUP`), in batches, so a backlog drains over runs.

use chrono::Duration;
use omnistack_db::files;
use omnistack_db::jobs::Job;
use serde_json::{Value, json};

use super::Scheduled;
use crate::files::FileStore;
use crate::jobs::{JobContext, JobError, JobKind};
use crate::telemetry::outbound;

/// How long an upload may stay pending.
pub const PENDING_KEPT: Duration = Duration::hours(24);
/// Files looked at per run.
const BATCH: i64 = 500;

/// The hourly clean-up of abandoned uploads.
#[derive(Debug)]
pub struct FilesCleanup;

impl JobKind for FilesCleanup {
    const KIND: &'static str = "files_cleanup";
    type Args = Scheduled;

    async fn run(&self, ctx: &JobContext, _job: &Job, args: Scheduled) -> Result<Option<Value>, JobError> {
        let http = outbound::client().map_err(|err| JobError::Permanent(err.into()))?;
        let store = FileStore::from_config(&ctx.config, http).map_err(JobError::Permanent)?;
        // Pending for a day as of the tick the run is for (a late run removes no more).
        let stale = files::stale_pending_files(&ctx.db, args.tick - PENDING_KEPT, BATCH).await?;
        let mut removed = 0;
        for file in &stale {
            store
                .storage()
                .delete(&file.storage_key)
                .await
                .map_err(|err| JobError::Retry(anyhow::anyhow!("removing an abandoned upload: {err}")))?;
            if files::delete_pending_file(&ctx.db, file.id).await? {
                removed += 1;
            }
        }
        tracing::info!(files.removed = removed, "abandoned uploads removed");
        Ok(Some(json!({"files": removed})))
    }
}
