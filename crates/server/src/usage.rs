//! Usage metering: what each account used, per metric and day; plan limits and alerts; and
//! the usage billed through Stripe Billing Meters.
//!
//! Producers (the request path, sockets, jobs, email, files, the AI gateway) record through
//! [`Usage`], a cheap handle in the application state.

pub mod alerts;
pub mod limits;
pub mod reports;

use std::sync::Arc;

use omnistack_db::Db;
use omnistack_db::usage::UsageDelta;
use omnistack_db::users::User;
use uuid::Uuid;

use crate::config::UsageSettings;
use crate::error::Result;

/// The built-in metrics' names.
pub mod metric {
    /// Authenticated API requests answered below 400 (`endpoint`: the route template).
    pub const API_REQUESTS: &str = "api_requests";
    /// Calls to the AI gateway (`provider`, `model`).
    pub const AI_REQUESTS: &str = "ai_requests";
    /// Tokens the AI gateway's providers reported (`provider`, `model`).
    pub const AI_TOKENS: &str = "ai_tokens";
    /// Bytes stored: a level, recorded as the change (+ on upload, − on delete).
    pub const STORAGE_BYTES: &str = "storage_bytes";
    /// Files uploaded.
    pub const FILE_UPLOADS: &str = "file_uploads";
    /// Download links issued.
    pub const FILE_DOWNLOADS: &str = "file_downloads";
    /// Realtime messages received from the account's sockets.
    pub const WEBSOCKET_MESSAGES: &str = "websocket_messages";
    /// Emails sent to the account.
    pub const EMAILS_SENT: &str = "emails_sent";
    /// Background jobs run for the account.
    pub const BACKGROUND_JOBS: &str = "background_jobs";
}

/// The metering handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Usage {
    db: Db,
    settings: Arc<UsageSettings>,
    requests: limits::RequestQuota,
}

impl Usage {
    /// Metering into `db` with `settings`' limits.
    pub fn new(db: Db, settings: UsageSettings) -> Usage {
        Usage { db, settings: Arc::new(settings), requests: limits::RequestQuota::default() }
    }

    /// Records `value` of `metric` used by `user_id` now, split by `dimensions`.
    pub async fn record(&self, user_id: Uuid, metric: &str, value: i64, dimensions: &[(&str, &str)]) -> Result<()> {
        let delta = UsageDelta {
            user_id,
            metric: metric.to_owned(),
            day: UsageDelta::day_of(omnistack_db::time::now()),
            value,
            dimensions: dimensions.iter().map(|(name, item)| ((*name).to_owned(), (*item).to_owned())).collect(),
        };
        let mut tx = self.db.begin().await?;
        omnistack_db::usage::add(&mut tx, &[delta]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// 402 `QUOTA_EXCEEDED` when adding `adding` to `metric` would pass a hard limit of
    /// `user`'s plan in the current period.
    pub async fn ensure_within(&self, user: &User, metric: &str, adding: i64) -> Result<()> {
        limits::ensure_within(&self.db, &self.settings, user, metric, adding).await
    }
}
