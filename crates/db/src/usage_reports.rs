//! Reading usage back: per-metric totals, days, dimension breakdowns, the busiest accounts, and
//! the change feed and once-only claims of the limit alerts. Everything reads the aggregates
//! (`usage_daily`, `usage_daily_dimensions`, `usage_monthly`), never raw events.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use uuid::Uuid;

use crate::{Conn, Db, Result, Tx, traced_conn, traced_pool};

/// One metric's sum over a range of days.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MetricTotal {
    /// The metric.
    pub metric: String,
    /// The sum of its daily values in the range.
    pub value: i64,
}

/// One day's value of a metric.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DayValue {
    /// The UTC day.
    pub day: NaiveDate,
    /// The value recorded that day.
    pub value: i64,
}

/// One value of a dimension, its sum over a range, and the dimension's sum over every value.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DimensionItem {
    /// The dimension (`endpoint`, `model`, …).
    pub name: String,
    /// The dimension's value (`/api/v1/app/users/me`, `gpt-4o`, …).
    pub item: String,
    /// Its sum.
    pub value: i64,
    /// The dimension's sum over every value.
    pub total: i64,
}

/// An account and its sum of a metric over a range.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UserValue {
    /// The account.
    pub user_id: Uuid,
    /// Its email, when it has one.
    pub email: Option<String>,
    /// Its sum.
    pub value: i64,
}

/// A row of `usage_daily` written after some time: what the limit alerts look at.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChangedUsage {
    /// The account.
    pub user_id: Uuid,
    /// The metric.
    pub metric: String,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

/// Each metric `user_id` used in `from..=to`, with its sum (metrics without a row are absent):
/// the whole months of the range from `usage_monthly`, the days outside them from `usage_daily`.
pub async fn metric_totals(db: &Db, user_id: Uuid, from: NaiveDate, to: NaiveDate) -> Result<Vec<MetricTotal>> {
    const SQL: &str = "SELECT metric, CAST(SUM(value) AS BIGINT) AS value FROM (
             SELECT metric, value FROM usage_daily WHERE user_id = $1 AND day >= $2 AND day < $3
             UNION ALL
             SELECT metric, value FROM usage_daily WHERE user_id = $1 AND day > $4 AND day <= $5
             UNION ALL
             SELECT metric, value FROM usage_monthly WHERE user_id = $1 AND period >= $6 AND period <= $7
         ) used GROUP BY metric ORDER BY metric";
    let span = Span::of(from, to);
    Ok(traced_pool!(db, "SELECT", "usage_daily", SQL, |pool| sqlx::query_as::<_, MetricTotal>(SQL)
        .bind(user_id)
        .bind(from)
        .bind(span.whole_first)
        .bind(span.whole_last)
        .bind(to)
        .bind(&span.first_month)
        .bind(&span.last_month)
        .fetch_all(pool)
        .await?))
}

/// The days of `from..=to` on which `user_id` has a row of `metric`, oldest first.
pub async fn daily_values(
    db: &Db,
    user_id: Uuid,
    metric: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DayValue>> {
    const SQL: &str = "SELECT day, value FROM usage_daily
         WHERE user_id = $1 AND metric = $2 AND day >= $3 AND day <= $4 ORDER BY day";
    Ok(traced_pool!(db, "SELECT", "usage_daily", SQL, |pool| sqlx::query_as::<_, DayValue>(SQL)
        .bind(user_id)
        .bind(metric)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?))
}

/// For each dimension `user_id`'s `metric` was split by in `from..=to`: its `limit` largest
/// values (largest first, ties by value) with the dimension's sum over every value, by
/// dimension name. The whole months of the range are read from `usage_monthly_dimensions`,
/// the days outside them from `usage_daily_dimensions`.
pub async fn top_items(
    db: &Db,
    user_id: Uuid,
    metric: &str,
    from: NaiveDate,
    to: NaiveDate,
    limit: i64,
) -> Result<Vec<DimensionItem>> {
    const SQL: &str = "SELECT name, item, value, total FROM (
             SELECT name, item, CAST(SUM(value) AS BIGINT) AS value,
                    CAST(SUM(SUM(value)) OVER (PARTITION BY name) AS BIGINT) AS total,
                    ROW_NUMBER() OVER (PARTITION BY name ORDER BY SUM(value) DESC, item) AS place
             FROM (
                 SELECT name, item, value FROM usage_daily_dimensions
                 WHERE user_id = $1 AND metric = $2 AND day >= $3 AND day < $4
                 UNION ALL
                 SELECT name, item, value FROM usage_daily_dimensions
                 WHERE user_id = $1 AND metric = $2 AND day > $5 AND day <= $6
                 UNION ALL
                 SELECT name, item, value FROM usage_monthly_dimensions
                 WHERE user_id = $1 AND metric = $2 AND period >= $7 AND period <= $8
             ) used
             GROUP BY name, item) ranked
         WHERE place <= $9 ORDER BY name, place";
    let span = Span::of(from, to);
    Ok(traced_pool!(db, "SELECT", "usage_daily_dimensions", SQL, |pool| sqlx::query_as::<_, DimensionItem>(SQL)
        .bind(user_id)
        .bind(metric)
        .bind(from)
        .bind(span.whole_first)
        .bind(span.whole_last)
        .bind(to)
        .bind(&span.first_month)
        .bind(&span.last_month)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// A range of days read as the calendar months wholly inside it and the days outside them:
/// the days before `whole_first` and after `whole_last`, and the months `first_month..=last_month`
/// (an empty range when no whole month is inside).
#[derive(Debug, PartialEq, Eq)]
struct Span {
    whole_first: NaiveDate,
    whole_last: NaiveDate,
    first_month: String,
    last_month: String,
}

impl Span {
    fn of(from: NaiveDate, to: NaiveDate) -> Span {
        let first = match from.day() {
            1 => Some(from),
            _ => from.with_day(1).and_then(|day| day.checked_add_months(Months::new(1))),
        };
        let last = match to.succ_opt() {
            Some(next) if next.day() == 1 => Some(to),
            _ => to.with_day(1).and_then(|day| day.pred_opt()),
        };
        match (first, last) {
            (Some(first), Some(last)) if first <= last => Span {
                whole_first: first,
                whole_last: last,
                first_month: crate::usage::period_of(first),
                last_month: crate::usage::period_of(last),
            },
            // No whole month: every day is read day by day.
            _ => Span {
                whole_first: to.succ_opt().unwrap_or(to),
                whole_last: to,
                first_month: "1".into(),
                last_month: "0".into(),
            },
        }
    }
}

/// The `limit` accounts with the largest `metric` in `period` (`YYYY-MM`), largest first: the
/// month's own sum, read in order from its index, or with `through` the running sum of every
/// month up to it (a level).
pub async fn top_users(db: &Db, metric: &str, period: &str, through: bool, limit: i64) -> Result<Vec<UserValue>> {
    const MONTH: &str = "SELECT m.user_id, u.email, m.value FROM usage_monthly m JOIN users u ON u.id = m.user_id
         WHERE m.metric = $1 AND m.period = $2 ORDER BY m.value DESC, m.user_id LIMIT $3";
    const THROUGH: &str = "SELECT t.user_id, u.email, t.value FROM (
             SELECT user_id, CAST(SUM(value) AS BIGINT) AS value FROM usage_monthly
             WHERE metric = $1 AND period <= $2
             GROUP BY user_id ORDER BY value DESC, user_id LIMIT $3) t
         JOIN users u ON u.id = t.user_id ORDER BY t.value DESC, t.user_id";
    let sql = if through { THROUGH } else { MONTH };
    Ok(traced_pool!(db, "SELECT", "usage_monthly", sql, |pool| sqlx::query_as::<_, UserValue>(sql)
        .bind(metric)
        .bind(period)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Rows of `usage_daily` changed after `since`, oldest change first, at most `limit`.
pub async fn changed_since(db: &Db, since: DateTime<Utc>, limit: i64) -> Result<Vec<ChangedUsage>> {
    const SQL: &str = "SELECT user_id, metric, updated_at FROM usage_daily
         WHERE updated_at > $1 ORDER BY updated_at LIMIT $2";
    Ok(traced_pool!(db, "SELECT", "usage_daily", SQL, |pool| sqlx::query_as::<_, ChangedUsage>(SQL)
        .bind(since)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Claims the alert of `threshold` percent of `metric` for `user_id` in `period` (`YYYY-MM`):
/// `true` for the one transaction that inserts it, `false` when it was already claimed.
pub async fn claim_alert(
    tx: &mut Tx,
    user_id: Uuid,
    metric: &str,
    period: &str,
    threshold: i32,
    at: DateTime<Utc>,
) -> Result<bool> {
    const SQL: &str =
        "INSERT INTO usage_alerts (user_id, metric, period, threshold, sent_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, metric, period, threshold) DO NOTHING";
    let conn = Conn::from(&mut *tx);
    let inserted = traced_conn!(conn, "INSERT", "usage_alerts", SQL, |e| sqlx::query(SQL)
        .bind(user_id)
        .bind(metric)
        .bind(period)
        .bind(threshold)
        .bind(at)
        .execute(e)
        .await?
        .rows_affected());
    Ok(inserted == 1)
}

/// The thresholds already claimed for `user_id`'s `metric` in `period`, lowest first.
pub async fn claimed_alerts(db: &Db, user_id: Uuid, metric: &str, period: &str) -> Result<Vec<i32>> {
    const SQL: &str = "SELECT threshold FROM usage_alerts
         WHERE user_id = $1 AND metric = $2 AND period = $3 ORDER BY threshold";
    Ok(traced_pool!(db, "SELECT", "usage_alerts", SQL, |pool| sqlx::query_scalar::<_, i32>(SQL)
        .bind(user_id)
        .bind(metric)
        .bind(period)
        .fetch_all(pool)
        .await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn a_range_is_read_as_its_whole_months_and_the_days_outside_them() {
        let span = Span::of(day("2025-12-02"), day("2026-12-02"));
        assert_eq!((span.whole_first, span.whole_last), (day("2026-01-01"), day("2026-11-30")));
        assert_eq!((span.first_month.as_str(), span.last_month.as_str()), ("2026-01", "2026-11"));
        let span = Span::of(day("2026-02-01"), day("2026-02-28"));
        assert_eq!((span.first_month.as_str(), span.last_month.as_str()), ("2026-02", "2026-02"));
        assert_eq!((span.whole_first, span.whole_last), (day("2026-02-01"), day("2026-02-28")));
        for (from, to) in [("2026-02-02", "2026-02-27"), ("2026-01-15", "2026-02-14"), ("2026-03-01", "2026-03-30")] {
            let span = Span::of(day(from), day(to));
            assert!(span.first_month > span.last_month, "{from}..{to}: no whole month");
            assert_eq!((span.whole_first, span.whole_last), (day(to).succ_opt().unwrap(), day(to)));
        }
    }
}
