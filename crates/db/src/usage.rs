//! Usage metering: counted usage added to the per-day aggregates (and their dimensions), in the
//! caller's transaction.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::{Result, Tx, time, traced_conn};

/// Usage to add to one account's metric on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageDelta {
    /// The account.
    pub user_id: Uuid,
    /// The metric's name (`api_requests`, `ai_tokens`, …).
    pub metric: String,
    /// The UTC day it happened on.
    pub day: NaiveDate,
    /// How much (negative for an adjustment).
    pub value: i64,
    /// The same usage by dimension: (name, value) pairs, each name at most once.
    pub dimensions: Vec<(String, String)>,
}

impl UsageDelta {
    /// The UTC day of `at`.
    pub fn day_of(at: DateTime<Utc>) -> NaiveDate {
        at.date_naive()
    }
}

/// Usage to add to one value of one dimension of an account's metric on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DimensionDelta {
    /// The account.
    pub user_id: Uuid,
    /// The metric's name.
    pub metric: String,
    /// The UTC day.
    pub day: NaiveDate,
    /// The dimension's name (`endpoint`, `model`, …).
    pub name: String,
    /// Its value (`/api/v1/app/users/me`, …).
    pub item: String,
    /// How much.
    pub value: i64,
}

/// Adds each delta to `usage_daily_dimensions` (and its month) only (the totals are added
/// separately). Usage of an account deleted meanwhile is dropped.
pub async fn add_dimensions(tx: &mut Tx, deltas: &[DimensionDelta]) -> Result<()> {
    for delta in deltas {
        add_dimension(tx, delta.user_id, &delta.metric, delta.day, (&delta.name, &delta.item), delta.value).await?;
    }
    Ok(())
}

/// Adds `value` to one dimension value's day and month, unless the account is gone.
async fn add_dimension(
    tx: &mut Tx,
    user_id: Uuid,
    metric: &str,
    day: NaiveDate,
    (name, item): (&str, &str),
    value: i64,
) -> Result<()> {
    const DAILY: &str = "INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
         ON CONFLICT (user_id, metric, day, name, item)
         DO UPDATE SET value = usage_daily_dimensions.value + excluded.value";
    const MONTHLY: &str = "INSERT INTO usage_monthly_dimensions (user_id, metric, period, name, item, value)
         SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
         ON CONFLICT (user_id, metric, period, name, item)
         DO UPDATE SET value = usage_monthly_dimensions.value + excluded.value";
    let conn = crate::Conn::from(&mut *tx);
    traced_conn!(conn, "INSERT", "usage_daily_dimensions", DAILY, |e| sqlx::query(DAILY)
        .bind(user_id)
        .bind(metric)
        .bind(day)
        .bind(name)
        .bind(item)
        .bind(value)
        .execute(e)
        .await?
        .rows_affected());
    let conn = crate::Conn::from(&mut *tx);
    traced_conn!(conn, "INSERT", "usage_monthly_dimensions", MONTHLY, |e| sqlx::query(MONTHLY)
        .bind(user_id)
        .bind(metric)
        .bind(period_of(day))
        .bind(name)
        .bind(item)
        .bind(value)
        .execute(e)
        .await?
        .rows_affected());
    Ok(())
}

/// The calendar month of `day`: `YYYY-MM`.
pub fn period_of(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

/// Adds each delta to `usage_daily`, to its month in `usage_monthly` and, per dimension, to
/// `usage_daily_dimensions` and `usage_monthly_dimensions`. Usage of an account deleted meanwhile is dropped (a batch counted
/// before the deletion still applies).
pub async fn add(tx: &mut Tx, deltas: &[UsageDelta]) -> Result<()> {
    const DAILY: &str = "INSERT INTO usage_daily (user_id, metric, day, value, updated_at)
         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
         ON CONFLICT (user_id, metric, day)
         DO UPDATE SET value = usage_daily.value + excluded.value, updated_at = excluded.updated_at";
    const MONTHLY: &str = "INSERT INTO usage_monthly (user_id, metric, period, value)
         SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
         ON CONFLICT (user_id, metric, period)
         DO UPDATE SET value = usage_monthly.value + excluded.value";
    let now = time::now();
    for delta in deltas {
        let conn = crate::Conn::from(&mut *tx);
        traced_conn!(conn, "INSERT", "usage_daily", DAILY, |e| sqlx::query(DAILY)
            .bind(delta.user_id)
            .bind(&delta.metric)
            .bind(delta.day)
            .bind(delta.value)
            .bind(now)
            .execute(e)
            .await?
            .rows_affected());
        let period = period_of(delta.day);
        let conn = crate::Conn::from(&mut *tx);
        traced_conn!(conn, "INSERT", "usage_monthly", MONTHLY, |e| sqlx::query(MONTHLY)
            .bind(delta.user_id)
            .bind(&delta.metric)
            .bind(&period)
            .bind(delta.value)
            .execute(e)
            .await?
            .rows_affected());
        for (name, item) in &delta.dimensions {
            add_dimension(tx, delta.user_id, &delta.metric, delta.day, (name, item), delta.value).await?;
        }
    }
    Ok(())
}

/// The sum of `metric` for `user_id` over the days `from..=to` (UTC).
pub async fn total(db: &crate::Db, user_id: Uuid, metric: &str, from: NaiveDate, to: NaiveDate) -> Result<i64> {
    const SQL: &str = "SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) FROM usage_daily
         WHERE user_id = $1 AND metric = $2 AND day >= $3 AND day <= $4";
    let total: Option<i64> = crate::traced_pool!(db, "SELECT", "usage_daily", SQL, |pool| sqlx::query_scalar(SQL)
        .bind(user_id)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_one(pool)
        .await?);
    Ok(total.unwrap_or(0))
}

/// Marks flush batch `batch_id` as applied, in the transaction that adds its counts. False
/// when it already was (a retry of a batch whose commit went unacknowledged): add nothing.
pub async fn claim_flush(tx: &mut Tx, batch_id: Uuid) -> Result<bool> {
    const SQL: &str = "INSERT INTO usage_flushes (id, flushed_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING";
    let conn = crate::Conn::from(&mut *tx);
    let done = traced_conn!(conn, "INSERT", "usage_flushes", SQL, |e| sqlx::query(SQL)
        .bind(batch_id.to_string())
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Forgets flush batches applied before `before` (long past any retry of theirs).
pub async fn prune_flushes(db: &crate::Db, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "DELETE FROM usage_flushes WHERE flushed_at < $1";
    Ok(crate::traced_pool!(db, "DELETE", "usage_flushes", SQL, |pool| sqlx::query(SQL)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
}

/// A usage event with an id of its own (ingested), as stored.
#[derive(Clone, Debug)]
pub struct NewUsageEvent<'a> {
    /// The sender's id: a second event with it is a duplicate.
    pub id: &'a str,
    /// The account.
    pub user_id: Uuid,
    /// The metric.
    pub metric: &'a str,
    /// How much (negative for an adjustment).
    pub value: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Its dimensions, as a JSON object.
    pub dimensions: &'a str,
}

/// Stores `event` unless an event with its id exists; true when stored (count it), false for
/// a duplicate (count nothing).
pub async fn insert_event(tx: &mut Tx, event: &NewUsageEvent<'_>) -> Result<bool> {
    const SQL: &str = "INSERT INTO usage_events (id, user_id, metric, value, occurred_at, dimensions, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
    let conn = crate::Conn::from(&mut *tx);
    let done = traced_conn!(conn, "INSERT", "usage_events", SQL, |e| sqlx::query(SQL)
        .bind(event.id)
        .bind(event.user_id)
        .bind(event.metric)
        .bind(event.value)
        .bind(event.occurred_at)
        .bind(event.dimensions)
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Whether account `user_id` exists, and its Stripe customer: `None` when there is no such
/// account, `Some(None)` when it has no customer.
pub async fn find_account_customer(tx: &mut Tx, user_id: Uuid) -> Result<Option<Option<String>>> {
    const SQL: &str = "SELECT stripe_customer_id FROM users WHERE id = $1";
    let conn = crate::Conn::from(&mut *tx);
    Ok(traced_conn!(conn, "SELECT", "users", SQL, |e| sqlx::query_scalar(SQL).bind(user_id).fetch_optional(e).await?))
}

/// A Stripe meter event to send, queued with the usage it bills.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMeterEvent {
    /// Stripe's `identifier`, derived from our event or flush batch id.
    pub identifier: String,
    /// The account.
    pub user_id: Uuid,
    /// The metric.
    pub metric: String,
    /// The meter's `event_name`.
    pub event_name: String,
    /// `payload[stripe_customer_id]`.
    pub stripe_customer_id: String,
    /// `payload[value]`.
    pub value: i64,
    /// `timestamp`.
    pub occurred_at: DateTime<Utc>,
}

/// Queues `event` (status `pending`) unless one with its identifier exists; true when queued.
pub async fn queue_meter_event(tx: &mut Tx, event: &NewMeterEvent) -> Result<bool> {
    const SQL: &str = "INSERT INTO usage_meter_events
         (identifier, user_id, metric, event_name, stripe_customer_id, value, occurred_at, status, attempts, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8) ON CONFLICT (identifier) DO NOTHING";
    let conn = crate::Conn::from(&mut *tx);
    let done = traced_conn!(conn, "INSERT", "usage_meter_events", SQL, |e| sqlx::query(SQL)
        .bind(&event.identifier)
        .bind(event.user_id)
        .bind(&event.metric)
        .bind(&event.event_name)
        .bind(&event.stripe_customer_id)
        .bind(event.value)
        .bind(event.occurred_at)
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// A queued Stripe meter event.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MeterEvent {
    /// Stripe's `identifier`.
    pub identifier: String,
    /// The account.
    pub user_id: Uuid,
    /// The metric.
    pub metric: String,
    /// The meter's `event_name`.
    pub event_name: String,
    /// `payload[stripe_customer_id]`.
    pub stripe_customer_id: String,
    /// `payload[value]`.
    pub value: i64,
    /// `timestamp`.
    pub occurred_at: DateTime<Utc>,
    /// `pending`, `sent` or `failed` (the last attempt failed; the queue retries it).
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When Stripe accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

/// The meter event `identifier`.
pub async fn find_meter_event(db: &crate::Db, identifier: &str) -> Result<Option<MeterEvent>> {
    const SQL: &str = "SELECT identifier, user_id, metric, event_name, stripe_customer_id, value, occurred_at, status,
         attempts, last_error, created_at, sent_at FROM usage_meter_events WHERE identifier = $1";
    Ok(crate::traced_pool!(db, "SELECT", "usage_meter_events", SQL, |pool| sqlx::query_as(SQL)
        .bind(identifier)
        .fetch_optional(pool)
        .await?))
}

/// Records that Stripe accepted meter event `identifier`; true when it was not already sent.
pub async fn mark_meter_event_sent(db: &crate::Db, identifier: &str) -> Result<bool> {
    const SQL: &str = "UPDATE usage_meter_events SET status = 'sent', attempts = attempts + 1, last_error = NULL,
         sent_at = $2 WHERE identifier = $1 AND status <> 'sent'";
    Ok(crate::traced_pool!(db, "UPDATE", "usage_meter_events", SQL, |pool| sqlx::query(SQL)
        .bind(identifier)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected())
        > 0)
}

/// Records a failed attempt to send meter event `identifier` (status `failed`, `error`).
pub async fn mark_meter_event_failed(db: &crate::Db, identifier: &str, error: &str) -> Result<bool> {
    const SQL: &str = "UPDATE usage_meter_events SET status = 'failed', attempts = attempts + 1, last_error = $2
         WHERE identifier = $1 AND status <> 'sent'";
    Ok(crate::traced_pool!(db, "UPDATE", "usage_meter_events", SQL, |pool| sqlx::query(SQL)
        .bind(identifier)
        .bind(error)
        .execute(pool)
        .await?
        .rows_affected())
        > 0)
}

/// The meter outbox at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterSync {
    /// Queued, not attempted yet.
    pub pending: i64,
    /// Accepted by Stripe.
    pub sent: i64,
    /// Whose last attempt failed (retried by the queue, or by an admin through the jobs).
    pub failed: i64,
    /// When the oldest event not sent yet (pending or failed) was queued.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// Counts of the meter outbox by status, and its oldest unsent event.
pub async fn meter_sync(db: &crate::Db) -> Result<MeterSync> {
    const COUNTS: &str = "SELECT status, CAST(COUNT(*) AS BIGINT) FROM usage_meter_events GROUP BY status";
    const OLDEST: &str = "SELECT created_at FROM usage_meter_events WHERE status <> 'sent' ORDER BY created_at LIMIT 1";
    let counts: Vec<(String, i64)> = crate::traced_pool!(db, "SELECT", "usage_meter_events", COUNTS, |pool| {
        sqlx::query_as(COUNTS).fetch_all(pool).await?
    });
    let oldest: Option<DateTime<Utc>> = crate::traced_pool!(db, "SELECT", "usage_meter_events", OLDEST, |pool| {
        sqlx::query_scalar(OLDEST).fetch_optional(pool).await?
    });
    let mut sync = MeterSync { oldest_pending_at: oldest, ..MeterSync::default() };
    for (status, count) in counts {
        match status.as_str() {
            "pending" => sync.pending = count,
            "sent" => sync.sent = count,
            _ => sync.failed += count,
        }
    }
    Ok(sync)
}

/// `metric`'s usage of `user_id` by dimension over the days `from..=to`: (name, value, sum),
/// by name and value.
pub async fn dimension_totals(
    db: &crate::Db,
    user_id: Uuid,
    metric: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, String, i64)>> {
    const SQL: &str = "SELECT name, item, CAST(SUM(value) AS BIGINT) FROM usage_daily_dimensions
         WHERE user_id = $1 AND metric = $2 AND day >= $3 AND day <= $4 GROUP BY name, item ORDER BY name, item";
    Ok(crate::traced_pool!(db, "SELECT", "usage_daily_dimensions", SQL, |pool| sqlx::query_as(SQL)
        .bind(user_id)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?))
}
