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

/// Adds each delta to `usage_daily` and, per dimension, to `usage_daily_dimensions`.
pub async fn add(tx: &mut Tx, deltas: &[UsageDelta]) -> Result<()> {
    const DAILY: &str = "INSERT INTO usage_daily (user_id, metric, day, value, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, metric, day)
         DO UPDATE SET value = usage_daily.value + excluded.value, updated_at = excluded.updated_at";
    const DIMENSION: &str = "INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, metric, day, name, item)
         DO UPDATE SET value = usage_daily_dimensions.value + excluded.value";
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
        for (name, item) in &delta.dimensions {
            let conn = crate::Conn::from(&mut *tx);
            traced_conn!(conn, "INSERT", "usage_daily_dimensions", DIMENSION, |e| sqlx::query(DIMENSION)
                .bind(delta.user_id)
                .bind(&delta.metric)
                .bind(delta.day)
                .bind(name)
                .bind(item)
                .bind(delta.value)
                .execute(e)
                .await?
                .rows_affected());
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
