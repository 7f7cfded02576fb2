//! Account exports: the caller asks for one, a job (`export`) builds it, and the caller
//! fetches it for a day. At most one export per account and hour is built; asking again
//! within the hour returns the same job (and runs it again if it failed or was cancelled).

use chrono::Utc;
use omnistack_db::Db;
use omnistack_db::jobs::{self as db_jobs, JobState};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{Error, Result};
use crate::jobs::kinds::{EXPORT_KEPT, ExportAccount, ExportArgs};
use crate::jobs::{Enqueue, JobKind, Jobs};

/// Where an export stands.
#[derive(Debug)]
pub enum ExportStatus {
    /// Queued or being built (or retrying after a failure): its job id.
    Pending(Uuid),
    /// Built: the export document.
    Ready(Value),
}

/// Enqueues an export of the caller's account; returns its job id.
pub async fn request_export(db: &Db, jobs: &Jobs, caller: &CurrentUser) -> Result<Uuid> {
    let user_id = caller.user.id;
    let key = format!("export:{user_id}:{}", Utc::now().format("%Y-%m-%dT%H"));
    let options = Enqueue { unique_key: Some(key.clone()), user_id: Some(user_id), ..Enqueue::default() };
    if let Some(job) = jobs.enqueue::<ExportAccount>(db, &ExportArgs { user_id }, options).await? {
        return Ok(job.id);
    }
    let existing = db_jobs::find_job_by_key(db, &key)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("export job vanished after a conflict")))?;
    // This hour's export failed for good or was cancelled: asking again runs it again.
    if matches!(existing.state(), JobState::Dead | JobState::Cancelled)
        && db_jobs::retry_job(db, existing.id).await?.is_some()
    {
        jobs.wake();
    }
    Ok(existing.id)
}

/// The caller's export `id`: pending, or its document. Another account's export, an unknown
/// or malformed id, one past its day, or one that failed for good: 404.
pub async fn export_status(db: &Db, caller: &CurrentUser, id: &str) -> Result<ExportStatus> {
    let not_found = || Error::NotFound("export not found".into());
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let job = db_jobs::find_job(db, id).await?.ok_or_else(not_found)?;
    if job.kind != <ExportAccount as JobKind>::KIND || job.user_id != Some(caller.user.id) {
        return Err(not_found());
    }
    match job.state() {
        JobState::Queued | JobState::Running | JobState::Failed => Ok(ExportStatus::Pending(job.id)),
        JobState::Succeeded => {
            let fresh = job.finished_at.is_some_and(|at| at + EXPORT_KEPT > Utc::now());
            match job.output {
                Some(output) if fresh => Ok(ExportStatus::Ready(output.0)),
                _ => Err(Error::NotFound("this export has expired; request a new one".into())),
            }
        }
        JobState::Dead | JobState::Cancelled => Err(Error::NotFound("this export failed; request a new one".into())),
    }
}
