//! Usage metering: what each account used, per metric and day; plan limits and alerts; and
//! the usage billed through Stripe Billing Meters.
//!
//! Producers (the request path, sockets, jobs, email, files, the AI gateway) record through
//! [`Usage`], a cheap handle in the application state.

pub mod alerts;
pub mod ingest;
pub mod limits;
pub mod meters;
pub mod recorder;
pub mod reports;

use std::sync::Arc;
use std::time::Duration;

use omnistack_db::usage::UsageDelta;
use omnistack_db::users::User;
use omnistack_db::{Db, Tx};
use uuid::Uuid;

use crate::config::UsageSettings;
use crate::error::Result;
use crate::jobs::Jobs;
use recorder::{Batch, Recorder};

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
    recorder: Recorder,
    /// `api_requests` admitted per account, for `USAGE_ENFORCE_API_REQUESTS`.
    requests: limits::RequestQuota,
    /// Custom metrics' names, kept for the process's life (counts key on `&'static str`).
    custom: Arc<[&'static str]>,
    /// The queue that sends Stripe meter events; `None` when Stripe is not configured (then
    /// no meter event is written).
    meters: Option<Jobs>,
    /// The batch whose flush failed, retried (under its id) before anything newer.
    unflushed: Arc<tokio::sync::Mutex<Option<Batch>>>,
}

impl Usage {
    /// Metering into `db` with `settings`; meter events are queued on `meters` (`None` when
    /// Stripe is not configured).
    pub fn new(db: Db, settings: UsageSettings, meters: Option<Jobs>) -> Usage {
        let custom: Vec<&'static str> =
            settings.custom_metrics.iter().map(|name| &*Box::leak(name.clone().into_boxed_str())).collect();
        Usage {
            db,
            settings: Arc::new(settings),
            recorder: Recorder::default(),
            requests: limits::RequestQuota::default(),
            custom: custom.into(),
            meters,
            unflushed: Arc::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &UsageSettings {
        &self.settings
    }

    /// `metric`'s name as counts keep it, when it is built in or declared.
    pub fn metric(&self, name: &str) -> Option<&'static str> {
        crate::config::usage::BUILTIN_METRICS.iter().chain(self.custom.iter()).copied().find(|known| *known == name)
    }

    /// Counts `value` of `metric` for `user_id` in memory; written by the next flush (every
    /// `USAGE_FLUSH_SECONDS`, and at shutdown). Never waits, never touches the database. An
    /// unknown metric is ignored; dimensions follow [`recorder`]'s bounds.
    pub fn count(&self, user_id: Uuid, metric: &str, value: i64, dimensions: &[(&str, &str)]) {
        match self.metric(metric) {
            Some(metric) => self.recorder.count(user_id, metric, value, dimensions),
            None => {
                tracing::warn!(metric = %metric.chars().take(64).collect::<String>(), "usage of an unknown metric ignored")
            }
        }
    }

    /// Records `value` of `metric` used by `user_id` now, split by `dimensions`, durably: it is
    /// in the aggregates (and its meter event queued) when this returns.
    pub async fn record(&self, user_id: Uuid, metric: &str, value: i64, dimensions: &[(&str, &str)]) -> Result<()> {
        self.record_all(user_id, &[(metric, value)], dimensions).await
    }

    /// Records several metrics' usage by `user_id` now, all split by `dimensions`, in one
    /// transaction (as [`Usage::record`] does one).
    pub async fn record_all(&self, user_id: Uuid, usage: &[(&str, i64)], dimensions: &[(&str, &str)]) -> Result<()> {
        let mut tx = self.db.begin().await?;
        let queued = self.record_in(&mut tx, user_id, usage, dimensions).await?;
        self.commit(tx, queued).await
    }

    /// [`Usage::record_all`] in the caller's transaction, so the usage commits (or not) with
    /// the write it accounts for. Returns whether a meter event was queued: commit with
    /// [`Usage::commit`], which then starts the meter outbox.
    pub async fn record_in(
        &self,
        tx: &mut Tx,
        user_id: Uuid,
        usage: &[(&str, i64)],
        dimensions: &[(&str, &str)],
    ) -> Result<bool> {
        let now = omnistack_db::time::now();
        let dimensions: Vec<(String, String)> =
            dimensions.iter().map(|(name, item)| ((*name).to_owned(), (*item).to_owned())).collect();
        let deltas: Vec<UsageDelta> = usage
            .iter()
            .map(|(metric, value)| UsageDelta {
                user_id,
                metric: (*metric).to_owned(),
                day: UsageDelta::day_of(now),
                value: *value,
                dimensions: dimensions.clone(),
            })
            .collect();
        omnistack_db::usage::add(&mut *tx, &deltas).await?;
        let mut queued = false;
        for (metric, value) in usage {
            let identifier = meters::identifier("rec", &Uuid::now_v7().to_string());
            queued |= self.queue_meter_event(tx, identifier, user_id, metric, *value, now).await?;
        }
        Ok(queued)
    }

    /// 402 `QUOTA_EXCEEDED` when adding `adding` to `metric` would pass a hard limit of
    /// `user`'s plan in the current period.
    pub async fn ensure_within(&self, user: &User, metric: &str, adding: i64) -> Result<()> {
        limits::ensure_within(&self.db, &self.settings, user, metric, adding).await
    }

    /// Writes what was counted: first a batch whose flush failed before (under its own id, so
    /// it counts once even if its commit went through unacknowledged), then everything counted
    /// since. On failure the batch is kept for the next try.
    pub async fn flush(&self) -> Result<()> {
        let mut unflushed = self.unflushed.lock().await;
        loop {
            let batch = match unflushed.take() {
                Some(batch) => batch,
                None => match self.recorder.take() {
                    Some(batch) => batch,
                    None => return Ok(()),
                },
            };
            match self.apply(&batch).await {
                Ok(queued) => {
                    metrics::counter!("omnistack_usage_flushes_total", "outcome" => "ok").increment(1);
                    self.wake_meters(queued);
                }
                Err(err) => {
                    metrics::counter!("omnistack_usage_flushes_total", "outcome" => "error").increment(1);
                    *unflushed = Some(batch);
                    return Err(err);
                }
            }
        }
    }

    /// Adds `batch` in one transaction, unless it was already; true when meter events were
    /// queued.
    async fn apply(&self, batch: &Batch) -> Result<bool> {
        let mut tx = self.db.begin().await?;
        if !omnistack_db::usage::claim_flush(&mut tx, batch.id).await? {
            tx.rollback().await?;
            tracing::info!(batch = %batch.id, "usage batch was already applied; not counted again");
            return Ok(false);
        }
        omnistack_db::usage::add(&mut tx, &batch.totals).await?;
        omnistack_db::usage::add_dimensions(&mut tx, &batch.dimensions).await?;
        let mut queued = false;
        for delta in &batch.totals {
            let key = format!("{}:{}:{}:{}", batch.id, delta.user_id, delta.metric, delta.day);
            let identifier = meters::identifier("flush", &key);
            queued |= self
                .queue_meter_event(&mut tx, identifier, delta.user_id, &delta.metric, delta.value, batch.taken_at)
                .await?;
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// Queues a Stripe meter event for `value` of `metric` when Stripe is configured, the
    /// metric has a meter and the account a Stripe customer; true when one was queued.
    async fn queue_meter_event(
        &self,
        tx: &mut Tx,
        identifier: String,
        user_id: Uuid,
        metric: &str,
        value: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        let (Some(jobs), Some(event_name)) = (&self.meters, self.settings.meter_of(metric)) else {
            return Ok(false);
        };
        if value == 0 {
            return Ok(false);
        }
        let Some(Some(customer)) = omnistack_db::usage::find_account_customer(tx, user_id).await? else {
            return Ok(false);
        };
        meters::queue(jobs, tx, identifier, user_id, metric, event_name, customer, value, at).await
    }

    /// Commits `tx`, then starts the meter outbox's job at once when `queued` (the transaction
    /// queued meter events, as [`Usage::record_in`] says).
    pub async fn commit(&self, tx: Tx, queued: bool) -> Result<()> {
        tx.commit().await?;
        self.wake_meters(queued);
        Ok(())
    }

    fn wake_meters(&self, queued: bool) {
        if queued && let Some(jobs) = &self.meters {
            jobs.wake();
        }
    }

    /// Distinct keys counted and not flushed yet.
    pub fn pending_keys(&self) -> usize {
        self.recorder.keys()
    }

    /// Flushes every `USAGE_FLUSH_SECONDS` (sooner when many keys are counted) until the
    /// database pool is closed; old flush ids are forgotten once a day.
    pub fn spawn_flusher(&self) {
        let usage = self.clone();
        tokio::spawn(async move {
            let interval = usage.settings.flush_interval;
            let mut last_prune = std::time::Instant::now();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = usage.recorder.full() => {}
                }
                if usage.db.is_closed() {
                    break;
                }
                if let Err(err) = usage.flush().await {
                    tracing::warn!(error = %err, "could not write usage; kept for the next try");
                    // Do not spin on early wake-ups while the database is failing.
                    tokio::time::sleep(interval.min(Duration::from_secs(1))).await;
                }
                if last_prune.elapsed() > Duration::from_secs(86_400) {
                    last_prune = std::time::Instant::now();
                    let before = omnistack_db::time::now() - chrono::Duration::days(7);
                    if let Err(err) = omnistack_db::usage::prune_flushes(&usage.db, before).await {
                        tracing::warn!(error = %err, "could not prune usage flush ids");
                    }
                }
            }
        });
    }

    /// The database the usage is written to.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The queue of meter events, when Stripe is configured.
    pub(crate) fn meter_jobs(&self) -> Option<&Jobs> {
        self.meters.as_ref()
    }
}
