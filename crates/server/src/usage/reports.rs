//! Usage reports, read from the per-day aggregates only: the metric catalogue, the current
//! period against the plan's limits, any range of days, a zero-filled daily series, a dimension
//! breakdown, this period against the last, and (admins) the busiest accounts.
//!
//! A level (`storage_bytes`) is stored as its daily changes; its reports give the level held at
//! the end of each day (the sum of every change up to that day), never a sum over the range.

use chrono::{Datelike, Days, NaiveDate};
use omnistack_db::Db;
use omnistack_db::usage_reports as db;
use omnistack_db::users::User;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::limits::{self, Period, is_hard, is_level};
use super::metric;
use crate::auth::{CurrentUser, Role};
use crate::config::UsageSettings;
use crate::error::{Error, FieldError, Result};

/// The longest range a report covers, in days.
pub const MAX_DAYS: i64 = 366;
/// The values a breakdown lists before `other`.
pub const TOP_ITEMS: i64 = 20;
/// The most accounts `top-users` lists.
pub const MAX_TOP_USERS: i64 = 100;
/// The first day a level is summed from.
const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date");
/// The dimensions a breakdown prefers when none is asked for, in order.
const PREFERRED_DIMENSIONS: [&str; 3] = ["endpoint", "model", "provider"];

/// The built-in metrics: name, unit, description.
const BUILT_IN: [(&str, &str, &str); 9] = [
    (metric::API_REQUESTS, "requests", "Authenticated API requests answered below 400"),
    (metric::AI_REQUESTS, "requests", "Calls to the AI gateway"),
    (metric::AI_TOKENS, "tokens", "Tokens reported by the AI providers"),
    (metric::STORAGE_BYTES, "bytes", "Bytes stored (a level: what is held at the end of the day)"),
    (metric::FILE_UPLOADS, "files", "Files uploaded"),
    (metric::FILE_DOWNLOADS, "downloads", "Download links issued"),
    (metric::WEBSOCKET_MESSAGES, "messages", "Realtime messages received from the account's sockets"),
    (metric::EMAILS_SENT, "emails", "Emails sent to the account"),
    (metric::BACKGROUND_JOBS, "jobs", "Background jobs run for the account"),
];

/// A metric as the catalogue describes it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MetricInfo {
    /// Its name.
    pub name: String,
    /// What it counts.
    pub description: String,
    /// Its unit.
    pub unit: String,
    /// `hard` (the request that would pass the limit is refused with 402) or `soft` (alerts only).
    #[schema(example = "soft")]
    pub limit_kind: &'static str,
    /// `sum` (added up over a period) or `level` (what is held now).
    #[schema(example = "sum")]
    pub aggregation: &'static str,
    /// Declared in `USAGE_CUSTOM_METRICS` rather than built in.
    pub custom: bool,
}

/// The metrics this service meters.
pub fn catalogue(settings: &UsageSettings) -> Vec<MetricInfo> {
    BUILT_IN
        .iter()
        .map(|(name, unit, description)| MetricInfo {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
            unit: (*unit).to_owned(),
            limit_kind: if is_hard(settings, name) { "hard" } else { "soft" },
            aggregation: aggregation(name),
            custom: false,
        })
        .chain(settings.custom_metrics.iter().map(|name| MetricInfo {
            name: name.clone(),
            description: "Declared in USAGE_CUSTOM_METRICS".to_owned(),
            unit: "units".to_owned(),
            limit_kind: if is_hard(settings, name) { "hard" } else { "soft" },
            aggregation: "sum",
            custom: true,
        }))
        .collect()
}

fn aggregation(name: &str) -> &'static str {
    if is_level(name) { "level" } else { "sum" }
}

/// 422 on `field` unless `name` is a metric of the catalogue.
pub fn known_metric(settings: &UsageSettings, field: &str, name: Option<&str>) -> Result<String> {
    let Some(name) = name else {
        return Err(invalid(field, "is required"));
    };
    if settings.is_metric(name) {
        Ok(name.to_owned())
    } else {
        Err(invalid(field, "is not a known metric (see /usage/metrics)"))
    }
}

fn invalid(field: &str, message: &str) -> Error {
    Error::Validation(vec![FieldError::new(field, message)])
}

/// The account whose usage `caller` may read: itself.
pub fn own(caller: &CurrentUser) -> &User {
    &caller.user
}

/// The account `user_id` for an admin's report; 404 when there is none (or the id is malformed).
pub async fn for_admin(db: &Db, caller: &CurrentUser, user_id: &str) -> Result<User> {
    caller.require(Role::Admin)?;
    let not_found = || Error::NotFound("user not found".into());
    let id = Uuid::parse_str(user_id).map_err(|_| not_found())?;
    omnistack_db::users::find_user(db, id).await?.ok_or_else(not_found)
}

/// A range of days from `days` (1 to [`MAX_DAYS`], default 30) ending `today`.
pub fn last_days(days: Option<i64>, today: NaiveDate) -> Result<(NaiveDate, NaiveDate)> {
    let days = days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(invalid("days", &format!("must be from 1 to {MAX_DAYS}")));
    }
    Ok((today - chrono::Duration::days(days - 1), today))
}

/// `from..=to` from `YYYY-MM-DD` parameters (default: this period so far), at most
/// [`MAX_DAYS`] days, `from` not after `to`.
pub fn range(from: Option<&str>, to: Option<&str>, today: NaiveDate) -> Result<(NaiveDate, NaiveDate)> {
    let date = |field: &str, value: Option<&str>, default: NaiveDate| match value {
        None => Ok(default),
        Some(value) => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .filter(|day| value.len() == 10 && (EPOCH.year()..=9999).contains(&day.year()))
            .ok_or_else(|| FieldError::new(field, "must be a date YYYY-MM-DD from 2000 to 9999")),
    };
    let (from, to) = match (date("from", from, Period::of_day(today).first), date("to", to, today)) {
        (Ok(from), Ok(to)) => (from, to),
        (from, to) => return Err(Error::Validation([from.err(), to.err()].into_iter().flatten().collect())),
    };
    if from > to {
        return Err(invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() + 1 > MAX_DAYS {
        return Err(invalid("to", &format!("the range must be at most {MAX_DAYS} days")));
    }
    Ok((from, to))
}

/// A period from `YYYY-MM` (default: the current one).
pub fn period(label: Option<&str>, today: NaiveDate) -> Result<Period> {
    let Some(label) = label else {
        return Ok(Period::of_day(today));
    };
    let first = NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d")
        .ok()
        .filter(|day| label.len() == 7 && (EPOCH.year()..=9999).contains(&day.year()))
        .ok_or_else(|| invalid("period", "must be a month YYYY-MM from 2000 to 9999"))?;
    Ok(Period::of_day(first))
}

/// One metric in the current period.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PeriodMetric {
    /// The metric.
    pub metric: String,
    /// Used this period (a level: held now).
    pub used: i64,
    /// The plan's limit; `null` when unlimited.
    pub limit: Option<i64>,
    /// `used` as a percentage of `limit` (2 decimals); `null` when unlimited.
    pub percent_used: Option<f64>,
    /// `hard` or `soft`.
    pub limit_kind: &'static str,
    /// `sum` or `level`.
    pub aggregation: &'static str,
}

/// The current period (calendar month, UTC) against the plan's limits.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrentPeriod {
    /// `YYYY-MM`.
    pub period: String,
    /// Its first day.
    pub start: NaiveDate,
    /// Its last day.
    pub end: NaiveDate,
    /// Days left, today included.
    pub days_remaining: i64,
    /// When the next period starts (sums start again from zero).
    pub resets_at: chrono::DateTime<chrono::Utc>,
    /// The plan the limits are those of.
    pub plan: &'static str,
    /// Every metric, used or not.
    pub metrics: Vec<PeriodMetric>,
}

/// `user`'s current period.
pub async fn current_period(db: &Db, settings: &UsageSettings, user: &User, today: NaiveDate) -> Result<CurrentPeriod> {
    let period = Period::of_day(today);
    let plan = crate::billing::effective_plan(&user.subscription_plan, &user.subscription_status);
    let totals = totals_with_levels(db, settings, user.id, period.first, today).await?;
    let metrics = totals
        .into_iter()
        .map(|(name, used)| {
            let limit = settings.plan_limits.limit(plan, &name);
            let percent_used = limit.map(|limit| percent(used, limit));
            PeriodMetric {
                limit_kind: if is_hard(settings, &name) { "hard" } else { "soft" },
                aggregation: aggregation(&name),
                metric: name,
                used,
                limit,
                percent_used,
            }
        })
        .collect();
    Ok(CurrentPeriod {
        period: period.label(),
        start: period.first,
        end: period.last,
        days_remaining: (period.last - today).num_days() + 1,
        resets_at: period.resets_at(),
        plan: plan.as_str(),
        metrics,
    })
}

/// `used` as a percentage of `limit`, to 2 decimals (a zero limit is 100 % once anything is used).
pub fn percent(used: i64, limit: i64) -> f64 {
    if limit <= 0 {
        return if used > 0 { 100.0 } else { 0.0 };
    }
    (used as f64 * 10_000.0 / limit as f64).round() / 100.0
}

/// Every catalogue metric (and any other stored for the account) with its sum over
/// `from..=to`, levels as held at the end of `to`.
async fn totals_with_levels(
    db: &Db,
    settings: &UsageSettings,
    user_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(String, i64)>> {
    let stored = db::metric_totals(db, user_id, from, to).await?;
    let mut totals: Vec<(String, i64)> = catalogue(settings).into_iter().map(|m| (m.name, 0)).collect();
    for row in stored {
        match totals.iter_mut().find(|(name, _)| *name == row.metric) {
            Some(total) => total.1 = row.value,
            None => totals.push((row.metric, row.value)),
        }
    }
    for (name, total) in &mut totals {
        if is_level(name) {
            *total = omnistack_db::usage::total(db, user_id, name, EPOCH, to).await?;
        }
    }
    Ok(totals)
}

/// One metric over a range.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SummaryMetric {
    /// The metric.
    pub metric: String,
    /// The sum over the range (a level: held at the end of `to`).
    pub total: i64,
    /// `sum` or `level`.
    pub aggregation: &'static str,
}

/// Every metric over a range of days.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Summary {
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// Days in the range.
    pub days: i64,
    /// Every metric, used or not.
    pub metrics: Vec<SummaryMetric>,
}

/// `user`'s usage over `from..=to`, exact.
pub async fn summary(
    db: &Db,
    settings: &UsageSettings,
    user: &User,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Summary> {
    let metrics = totals_with_levels(db, settings, user.id, from, to)
        .await?
        .into_iter()
        .map(|(name, total)| SummaryMetric { aggregation: aggregation(&name), metric: name, total })
        .collect();
    Ok(Summary { from, to, days: (to - from).num_days() + 1, metrics })
}

/// A day's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayPoint {
    /// The UTC day.
    pub date: NaiveDate,
    /// Used that day (a level: held at its end).
    pub value: i64,
}

/// A metric day by day.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Daily {
    /// The metric.
    pub metric: String,
    /// `sum` or `level`.
    pub aggregation: &'static str,
    /// The first day.
    pub from: NaiveDate,
    /// The last day (today).
    pub to: NaiveDate,
    /// Every day of the range, oldest first, days without usage as 0.
    pub days: Vec<DayPoint>,
}

/// `user`'s `metric` on each day of `from..=to`, zero-filled.
pub async fn daily(db: &Db, user: &User, name: &str, from: NaiveDate, to: NaiveDate) -> Result<Daily> {
    let days = series(db, user.id, name, from, to).await?;
    Ok(Daily { metric: name.to_owned(), aggregation: aggregation(name), from, to, days })
}

/// Each day of `from..=to` with its value (a level: the level at the day's end).
async fn series(db: &Db, user_id: Uuid, name: &str, from: NaiveDate, to: NaiveDate) -> Result<Vec<DayPoint>> {
    let stored = db::daily_values(db, user_id, name, from, to).await?;
    let mut level = match (is_level(name), from.pred_opt()) {
        (true, Some(before)) if before >= EPOCH => omnistack_db::usage::total(db, user_id, name, EPOCH, before).await?,
        _ => 0,
    };
    let mut stored = stored.into_iter().peekable();
    let mut points = Vec::with_capacity(usize::try_from((to - from).num_days() + 1).unwrap_or(0));
    let mut day = from;
    while day <= to {
        let value = match stored.peek() {
            Some(row) if row.day == day => stored.next().map_or(0, |row| row.value),
            _ => 0,
        };
        let value = if is_level(name) {
            level += value;
            level
        } else {
            value
        };
        points.push(DayPoint { date: day, value });
        day = match day.checked_add_days(Days::new(1)) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(points)
}

/// A dimension value's share.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BreakdownItem {
    /// The dimension's value (a route template, a model, …).
    pub value: String,
    /// Its sum over the range.
    pub total: i64,
}

/// A metric split by one dimension.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Breakdown {
    /// The metric.
    pub metric: String,
    /// The dimension shown; `null` when the metric has no dimension in the range.
    pub dimension: Option<String>,
    /// The dimensions the metric was split by in the range.
    pub dimensions: Vec<String>,
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// The 20 largest values, largest first.
    pub items: Vec<BreakdownItem>,
    /// The sum of every other value.
    pub other: i64,
    /// The sum over every value of the dimension.
    pub total: i64,
}

/// `user`'s `metric` over `from..=to` split by `dimension` (default: the first recorded of
/// `endpoint`, `model`, `provider`, else the first by name): the top 20 values and `other`.
pub async fn breakdown(
    db: &Db,
    user: &User,
    name: &str,
    dimension: Option<&str>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Breakdown> {
    if let Some(dimension) = dimension
        && !(1..=64).contains(&dimension.len())
    {
        return Err(invalid("dimension", "must be 1 to 64 characters"));
    }
    let found = db::top_items(db, user.id, name, from, to, TOP_ITEMS).await?;
    let mut dimensions: Vec<String> = found.iter().map(|row| row.name.clone()).collect();
    dimensions.dedup();
    let chosen = dimension.map(str::to_owned).or_else(|| {
        PREFERRED_DIMENSIONS
            .iter()
            .find(|preferred| dimensions.iter().any(|d| d == *preferred))
            .map(|d| (*d).to_owned())
            .or_else(|| dimensions.first().cloned())
    });
    let rows: Vec<db::DimensionItem> = found.into_iter().filter(|row| Some(&row.name) == chosen.as_ref()).collect();
    let total = rows.first().map_or(0, |row| row.total);
    let shown: i64 = rows.iter().map(|row| row.value).sum();
    let items = rows.into_iter().map(|row| BreakdownItem { value: row.item, total: row.value }).collect();
    Ok(Breakdown {
        metric: name.to_owned(),
        dimension: chosen,
        dimensions,
        from,
        to,
        items,
        other: total - shown,
        total,
    })
}

/// One period in a trend.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TrendPeriod {
    /// `YYYY-MM`.
    pub period: String,
    /// The first day counted.
    pub from: NaiveDate,
    /// The last day counted (today, for the current period).
    pub to: NaiveDate,
    /// The sum over those days (a level: held at the end of `to`).
    pub total: i64,
    /// The mean of the days' values (2 decimals).
    pub daily_average: f64,
    /// The day with the largest value; `null` when every day was 0.
    pub peak_day: Option<DayPoint>,
}

/// This period against the last.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Trends {
    /// The metric.
    pub metric: String,
    /// `sum` or `level`.
    pub aggregation: &'static str,
    /// This period so far.
    pub current: TrendPeriod,
    /// The whole last period.
    pub previous: TrendPeriod,
    /// The last period over as many days as this one has had (a level: held at that day's end).
    pub previous_to_date: i64,
    /// Growth of this period so far over `previous_to_date`, in percent (2 decimals); `null`
    /// when that was 0.
    pub growth_percent: Option<f64>,
}

/// `user`'s `metric` this period against the last.
pub async fn trends(db: &Db, user: &User, name: &str, today: NaiveDate) -> Result<Trends> {
    let current = Period::of_day(today);
    let previous = Period::of_day(current.first.pred_opt().unwrap_or(current.first));
    let points = series(db, user.id, name, previous.first, today).await?;
    let (before, now): (Vec<DayPoint>, Vec<DayPoint>) = points.into_iter().partition(|p| p.date < current.first);
    let elapsed = now.len();
    let to_date = &before[..elapsed.min(before.len())];
    let previous_to_date =
        if is_level(name) { to_date.last().map_or(0, |p| p.value) } else { to_date.iter().map(|p| p.value).sum() };
    let current = trend_period(name, current, today, &now);
    let growth_percent = (previous_to_date != 0).then(|| {
        ((current.total - previous_to_date) as f64 * 10_000.0 / previous_to_date.abs() as f64).round() / 100.0
    });
    Ok(Trends {
        metric: name.to_owned(),
        aggregation: aggregation(name),
        previous: trend_period(name, previous, previous.last, &before),
        current,
        previous_to_date,
        growth_percent,
    })
}

fn trend_period(name: &str, period: Period, to: NaiveDate, points: &[DayPoint]) -> TrendPeriod {
    let sum: i64 = points.iter().map(|p| p.value).sum();
    let total = if is_level(name) { points.last().map_or(0, |p| p.value) } else { sum };
    let daily_average =
        if points.is_empty() { 0.0 } else { (sum as f64 * 100.0 / points.len() as f64).round() / 100.0 };
    let peak_day = points.iter().copied().filter(|p| p.value > 0).max_by_key(|p| (p.value, std::cmp::Reverse(p.date)));
    TrendPeriod { period: period.label(), from: period.first, to, total, daily_average, peak_day }
}

/// An account among the busiest.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TopUser {
    /// The account.
    pub user_id: Uuid,
    /// Its email, when it has one.
    pub email: Option<String>,
    /// Its sum in the period (a level: held at the period's end).
    pub value: i64,
}

/// The busiest accounts of a metric in a period.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TopUsers {
    /// The metric.
    pub metric: String,
    /// `YYYY-MM`.
    pub period: String,
    /// Largest first.
    pub users: Vec<TopUser>,
}

/// The `limit` (1 to 100, default 10) accounts that used the most of `metric` in `period` (admins).
pub async fn top_users(
    db: &Db,
    caller: &CurrentUser,
    name: &str,
    period: Period,
    limit: Option<i64>,
) -> Result<TopUsers> {
    caller.require(Role::Admin)?;
    let limit = limit.unwrap_or(10);
    if !(1..=MAX_TOP_USERS).contains(&limit) {
        return Err(invalid("limit", &format!("must be from 1 to {MAX_TOP_USERS}")));
    }
    let users = db::top_users(db, name, &period.label(), is_level(name), limit)
        .await?
        .into_iter()
        .map(|row| TopUser { user_id: row.user_id, email: row.email, value: row.value })
        .collect();
    Ok(TopUsers { metric: name.to_owned(), period: period.label(), users })
}

/// How much of `metric` `user` has used in the current period, with its plan's limit.
pub async fn used_and_limit(
    db: &Db,
    settings: &UsageSettings,
    user: &User,
    name: &str,
    period: Period,
) -> Result<(i64, Option<i64>)> {
    let plan = crate::billing::effective_plan(&user.subscription_plan, &user.subscription_status);
    let limit = settings.plan_limits.limit(plan, name);
    let used = if limit.is_some() { limits::used(db, user.id, name, period).await? } else { 0 };
    Ok((used, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn ranges_are_checked_and_bounded() {
        let today = day(2026, 12, 15);
        assert_eq!(range(None, None, today).unwrap(), (day(2026, 12, 1), today));
        assert_eq!(range(Some("2026-01-01"), Some("2026-12-31"), today).unwrap().1, day(2026, 12, 31));
        for (from, to) in [
            (Some("2026-13-01"), None),
            (Some("2026-1-01"), None),
            (Some("1999-12-31"), None),
            (Some("2026-12-16"), Some("2026-12-15")),
            (Some("2025-01-01"), Some("2026-12-31")),
            (Some(""), None),
        ] {
            assert!(range(from, to, today).is_err(), "{from:?} {to:?}");
        }
        assert_eq!(last_days(Some(7), today).unwrap(), (day(2026, 12, 9), today));
        assert!(last_days(Some(0), today).is_err() && last_days(Some(367), today).is_err());
        assert_eq!(period(Some("2024-02"), today).unwrap().last, day(2024, 2, 29));
        assert!(period(Some("2024-2"), today).is_err() && period(Some("2024-02-01"), today).is_err());
    }

    #[test]
    fn percentages_round_to_two_decimals() {
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(800, 1000), 80.0);
        assert_eq!(percent(5, 0), 100.0);
    }

    #[test]
    fn a_peak_is_the_largest_day_and_the_earliest_of_ties() {
        let points = [
            DayPoint { date: day(2026, 12, 1), value: 5 },
            DayPoint { date: day(2026, 12, 2), value: 9 },
            DayPoint { date: day(2026, 12, 3), value: 9 },
        ];
        let period = Period::of_day(day(2026, 12, 3));
        let trend = trend_period("ai_tokens", period, day(2026, 12, 3), &points);
        assert_eq!((trend.total, trend.daily_average), (23, 7.67));
        assert_eq!(trend.peak_day, Some(points[1]));
        assert_eq!(trend_period("storage_bytes", period, day(2026, 12, 3), &points).total, 9);
    }
}
