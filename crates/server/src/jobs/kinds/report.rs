//! `daily_report`: mails every super admin the last 24 hours: sign-ups, active accounts, and
//! jobs that failed or died. One email job per admin and tick, keyed so a repeated run sends
//! nothing twice.

use chrono::Duration;
use omnistack_db::jobs::{Job, JobState};
use omnistack_db::{jobs as db_jobs, users};
use serde_json::{Value, json};

use super::{Scheduled, enqueue_email};
use crate::jobs::{JobContext, JobError, JobKind};
use crate::mail::{self, MailMessage};

/// The daily summary for super admins.
#[derive(Debug)]
pub struct DailyReport;

impl JobKind for DailyReport {
    const KIND: &'static str = "daily_report";
    type Args = Scheduled;

    async fn run(&self, ctx: &JobContext, _job: &Job, args: Scheduled) -> Result<Option<Value>, JobError> {
        let since = args.tick - Duration::hours(24);
        let db = &ctx.db;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        let report = mail::DailyReport {
            period: format!("{} to {} UTC", since.format("%Y-%m-%d %H:%M"), args.tick.format("%Y-%m-%d %H:%M")),
            signups: count(users::count_created_since(db, since).await?),
            active_users: count(users::count_seen_since(db, since).await?),
            jobs_failed: count(db_jobs::count_jobs_since(db, JobState::Failed, since).await?),
            jobs_dead: count(db_jobs::count_jobs_since(db, JobState::Dead, since).await?),
        };
        let admins = users::list_super_admin_emails(db).await?;
        for to in &admins {
            let key = format!("daily_report:{}:{to}", args.tick.to_rfc3339());
            enqueue_email(&ctx.jobs, db, &MailMessage::new(to, &report), Some(key)).await?;
        }
        Ok(Some(json!({"recipients": admins.len(), "summary": report})))
    }
}
