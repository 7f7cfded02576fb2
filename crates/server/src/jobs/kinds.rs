//! The service's own job kinds, registered in [`register`].
//!
//! | kind | what | enqueued by |
//! |---|---|---|
//! | `email` ([`SendEmail`]) | renders a template and sends it through `EMAIL_PROVIDER` | every service that mails |
//! | `export` ([`ExportAccount`]) | the caller's account and projects as JSON, kept 24 h | `POST /app/users/me/export` |
//! | `daily_report` ([`DailyReport`]) | a summary mailed to every super admin | the schedule (`0 9 * * *`) |
//! | `files_cleanup` ([`FilesCleanup`]) | removes uploads still pending after 24 h (object and row) | the schedule (`17 * * * *`) |
//! | `cleanup` ([`Cleanup`]) | deletes expired sessions, tokens, old jobs and deleted projects | the schedule (`0 3 * * *`) |
//! | `contact_webhook` ([`ContactWebhook`](crate::contact::ContactWebhook)) | a submission to the CRM (`CONTACT_WEBHOOK_URL`) | `POST /public/contact` |
//! | `webhook_event` ([`ProcessWebhookEvent`](crate::webhooks::ProcessWebhookEvent)) | processes a stored inbound webhook | `POST /public/webhooks/{provider}`, an admin's replay |
//! | `usage_meter_event` ([`SendMeterEvent`](crate::usage::meters::SendMeterEvent)) | one usage meter event to Stripe Billing Meters | usage flushes, `Usage::record`, `POST /admin/usage/events` |
//! | `noop` ([`Noop`]) | nothing: measures the queue itself (`bench/jobs.sh`) | benchmarks |

mod cleanup;
mod email;
mod export;
mod files_cleanup;
mod noop;
mod report;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use cleanup::Cleanup;
pub use email::{SendEmail, enqueue_email};
pub use export::{EXPORT_KEPT, ExportAccount, ExportArgs};
pub use files_cleanup::FilesCleanup;
pub use noop::Noop;
pub use report::DailyReport;

use super::Registry;

/// Adds every kind above to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .with(SendEmail)
        .with(ExportAccount)
        .with(DailyReport)
        .with(Cleanup)
        .with(FilesCleanup)
        .with(Noop)
        .with(crate::contact::ContactWebhook::default())
        .with(crate::webhooks::ProcessWebhookEvent::default())
        .with(crate::usage::meters::SendMeterEvent::default())
}

/// The arguments of a scheduled job: the tick it runs for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scheduled {
    /// The scheduled minute (UTC).
    pub tick: DateTime<Utc>,
}
