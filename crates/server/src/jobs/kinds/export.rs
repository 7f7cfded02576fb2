//! `export`: the caller's account and live projects as one JSON document, kept with the job
//! for [`EXPORT_KEPT`]; when it is ready the account gets `{"type":"export.ready"}` on its
//! `user:<id>` channel and an `export_ready` email.

use chrono::Duration;
use omnistack_db::jobs::Job;
use omnistack_db::{projects, time, users};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::enqueue_email;
use crate::jobs::{JobContext, JobError, JobKind};
use crate::mail::{ExportReady, MailMessage};
use crate::realtime::Event;

/// How long an export's content is kept.
pub const EXPORT_KEPT: Duration = Duration::hours(24);

/// Builds an account export.
#[derive(Debug)]
pub struct ExportAccount;

/// Whose account to export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportArgs {
    /// The account.
    pub user_id: Uuid,
}

impl JobKind for ExportAccount {
    const KIND: &'static str = "export";
    type Args = ExportArgs;

    async fn run(&self, ctx: &JobContext, _job: &Job, args: ExportArgs) -> Result<Option<Value>, JobError> {
        let Some(user) = users::find_user(&ctx.db, args.user_id).await? else {
            return Err(JobError::Permanent(anyhow::anyhow!("the account no longer exists")));
        };
        let projects = projects::list_all_projects(&ctx.db, user.id).await?;
        let projects: Vec<Value> = projects
            .iter()
            .map(|p| {
                json!({"id": p.id, "name": p.name, "description": p.description,
                       "created_at": p.created_at, "updated_at": p.updated_at})
            })
            .collect();
        Ok(Some(json!({
            "exported_at": time::now(),
            "account": {
                "id": user.id, "email": user.email, "full_name": user.full_name, "avatar_url": user.avatar_url,
                "role": user.role, "email_verified": user.email_verified, "created_at": user.created_at,
                "last_login_at": user.last_login_at, "login_count": user.login_count,
                "subscription_plan": user.subscription_plan, "subscription_status": user.subscription_status,
            },
            "projects": projects,
        })))
    }

    async fn after_success(&self, ctx: &JobContext, job: &Job) {
        let Some(user_id) = job.user_id else { return };
        let event = Event::Service { kind: "export.ready", data: json!({"job_id": job.id}) };
        if let Err(err) = ctx.hub.publish_to_user(user_id, event).await {
            tracing::warn!(job.id = %job.id, error = %err, "export.ready could not be published");
        }
        let email = match users::find_user(&ctx.db, user_id).await {
            Ok(Some(user)) => user.email,
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(job.id = %job.id, error = %err, "export_ready email not enqueued");
                None
            }
        };
        if let Some(to) = email {
            let link = format!("{}/account/export/{}", ctx.config.accounts.frontend_url, job.id);
            let message = MailMessage::new(to, &ExportReady { job_id: job.id.to_string(), link: Some(link) });
            if let Err(err) =
                enqueue_email(&ctx.jobs, &ctx.db, &message, Some(format!("export_ready:{}", job.id))).await
            {
                tracing::warn!(job.id = %job.id, error = %err, "export_ready email not enqueued");
            }
        }
    }
}
