//! Plan limits: which limits refuse (hard) and which only alert (soft), the current period, and
//! the check made before usage that a hard limit caps.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use omnistack_db::Db;
use omnistack_db::users::User;

use super::metric;
use crate::config::UsageSettings;
use crate::error::{Error, QuotaExceeded, Result};

/// A calendar month, UTC: the period limits and alerts count in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Its first day.
    pub first: NaiveDate,
    /// Its last day.
    pub last: NaiveDate,
}

impl Period {
    /// The month `at` falls in.
    pub fn of(at: DateTime<Utc>) -> Period {
        let first = at.date_naive().with_day(1).unwrap_or(at.date_naive());
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
        Period { first, last: next.pred_opt().unwrap_or(first) }
    }

    /// `YYYY-MM`.
    pub fn label(&self) -> String {
        self.first.format("%Y-%m").to_string()
    }

    /// When the next period starts.
    pub fn resets_at(&self) -> DateTime<Utc> {
        let next = self.last.succ_opt().unwrap_or(self.last);
        Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
    }
}

/// Whether `metric` is a level (what is held now, such as bytes stored) rather than a sum over
/// the period.
pub fn is_level(name: &str) -> bool {
    name == metric::STORAGE_BYTES
}

/// Whether passing `metric`'s limit refuses the request (otherwise it only alerts).
pub fn is_hard(settings: &UsageSettings, name: &str) -> bool {
    matches!(name, metric::AI_REQUESTS | metric::AI_TOKENS | metric::STORAGE_BYTES)
        || (name == metric::API_REQUESTS && settings.enforce_api_requests)
}

/// How much of `metric` `user_id` has used: this period's sum, or the level now.
pub async fn used(db: &Db, user_id: uuid::Uuid, name: &str, period: Period) -> Result<i64> {
    let from = if is_level(name) { NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(period.first) } else { period.first };
    Ok(omnistack_db::usage::total(db, user_id, name, from, period.last).await?)
}

/// 402 `QUOTA_EXCEEDED` when adding `adding` to `metric` would pass a hard limit of `user`'s
/// plan in the current period.
pub async fn ensure_within(db: &Db, settings: &UsageSettings, user: &User, name: &str, adding: i64) -> Result<()> {
    if !is_hard(settings, name) {
        return Ok(());
    }
    let plan = crate::billing::effective_plan(&user.subscription_plan, &user.subscription_status);
    let Some(limit) = settings.plan_limits.limit(plan, name) else {
        return Ok(());
    };
    let period = Period::of(omnistack_db::time::now());
    let used = used(db, user.id, name, period).await?;
    if used.saturating_add(adding) > limit {
        let resets_at = (!is_level(name)).then(|| period.resets_at());
        return Err(Error::QuotaExceeded(QuotaExceeded { metric: name.to_owned(), limit, used, resets_at }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_calendar_months_in_utc() {
        let at = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).unwrap();
        let period = Period::of(at);
        assert_eq!(period.first, NaiveDate::from_ymd_opt(2024, 2, 1).unwrap());
        assert_eq!(period.last, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(period.label(), "2024-02");
        assert_eq!(period.resets_at(), Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap());
        let december = Period::of(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(december.resets_at(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn ai_and_storage_limits_refuse_and_api_requests_only_when_told() {
        let mut settings = UsageSettings::default();
        assert!(is_hard(&settings, metric::AI_TOKENS) && is_hard(&settings, metric::STORAGE_BYTES));
        assert!(!is_hard(&settings, metric::API_REQUESTS));
        settings.enforce_api_requests = true;
        assert!(is_hard(&settings, metric::API_REQUESTS));
        assert!(is_level(metric::STORAGE_BYTES) && !is_level(metric::AI_TOKENS));
    }
}
