//! `email`: one templated message through the configured provider. The job id is the
//! message's idempotency key (SMTP `Message-ID`, the HTTP providers' idempotency header), so a
//! retried or repeated run is recognisable as the same message.

use omnistack_db::Conn;
use omnistack_db::jobs::Job;
use serde_json::Value;

use crate::jobs::{Enqueue, JobContext, JobError, JobKind, Jobs};
use crate::mail::{self, MailMessage, SendError, TemplateContext};

/// Sends one email.
#[derive(Debug)]
pub struct SendEmail;

impl JobKind for SendEmail {
    const KIND: &'static str = "email";
    type Args = MailMessage;

    async fn run(&self, ctx: &JobContext, job: &Job, message: MailMessage) -> Result<Option<Value>, JobError> {
        let template = TemplateContext::from_config(&ctx.config);
        match mail::deliver(ctx.mailer.as_ref(), &template, &message, &job.id.to_string()).await {
            Ok(()) => Ok(None),
            Err(SendError::Transient(why)) => Err(JobError::Retry(anyhow::anyhow!(why))),
            Err(SendError::Permanent(why)) => Err(JobError::Permanent(anyhow::anyhow!(why))),
        }
    }

    /// A sent message's one-time tokens (reset and verification links) leave the database:
    /// the token tables keep only hashes, and so does the job once it is done.
    async fn after_success(&self, ctx: &JobContext, job: &Job) {
        count_sent(ctx, job).await;
        let redacted = mail::redact_tokens_in(&job.payload.0);
        if redacted != job.payload.0
            && let Err(err) = omnistack_db::jobs::replace_payload(&ctx.db, job.id, &redacted).await
        {
            tracing::warn!(job.id = %job.id, error = %err, "a sent email's tokens could not be removed from its job");
        }
    }
}

/// Counts a sent message as `emails_sent` of the account it went to, when that is known (the
/// job's account, else the account with the recipient address), by template (`kind`).
async fn count_sent(ctx: &JobContext, job: &Job) {
    let template = job.payload.0.get("template").and_then(Value::as_str).unwrap_or("unknown");
    let user_id = match job.user_id {
        Some(user_id) => Some(user_id),
        None => match job.payload.0.get("to").and_then(Value::as_str) {
            Some(to) => omnistack_db::users::find_user_by_email(&ctx.db, to).await.ok().flatten().map(|user| user.id),
            None => None,
        },
    };
    if let Some(user_id) = user_id {
        ctx.usage.count(user_id, crate::usage::metric::EMAILS_SENT, 1, &[("kind", template)]);
    }
}

/// Enqueues `message`, alone or in the caller's transaction; `unique_key` makes the logical
/// message once-only (`welcome:<user id>`).
pub async fn enqueue_email(
    jobs: &Jobs,
    conn: impl Into<Conn<'_>>,
    message: &MailMessage,
    unique_key: Option<String>,
) -> crate::error::Result<()> {
    jobs.enqueue::<SendEmail>(conn, message, Enqueue { unique_key, ..Enqueue::default() }).await?;
    Ok(())
}
