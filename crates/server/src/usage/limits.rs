//! Plan limits: which limits refuse (hard) and which only alert (soft), the current period, and
//! the check made before usage that a hard limit caps.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use omnistack_db::Db;
use omnistack_db::users::User;
use uuid::Uuid;

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
        Period::of_day(at.date_naive())
    }

    /// The month `day` falls in.
    pub fn of_day(day: NaiveDate) -> Period {
        let first = day.with_day(1).unwrap_or(day);
        let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
        Period { first, last: next.pred_opt().unwrap_or(first) }
    }

    /// `YYYY-MM`.
    pub fn label(&self) -> String {
        omnistack_db::usage::period_of(self.first)
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

impl super::Usage {
    /// [`RequestQuota::admit`] for this instance's cache: the guard's check of the caller's
    /// `api_requests` limit (`USAGE_ENFORCE_API_REQUESTS`).
    pub async fn admit_request(&self, user: &User) -> Result<bool> {
        self.requests.admit(&self.db, &self.settings, user).await
    }

    /// [`RequestQuota::refund`].
    pub fn refund_request(&self, user_id: Uuid) {
        self.requests.refund(user_id);
    }
}

/// How long an account's cached `api_requests` count is trusted before it is read again.
pub const REFRESH: Duration = Duration::from_secs(2);
/// An entry unused this long is read afresh (so downward adjustments are seen).
const ENTRY_TTL: Duration = Duration::from_secs(300);
/// At most this many accounts are cached per instance; past it, old entries are dropped.
pub const MAX_ACCOUNTS: usize = 100_000;

/// `USAGE_ENFORCE_API_REQUESTS`: each account's `api_requests` of the current period, cached in
/// memory so the guard costs a database read per account at most every [`REFRESH`], never per
/// request.
///
/// The cached count is the larger of the last database reading and that reading plus the
/// requests this instance admitted since: it never forgets this instance's own requests before
/// they are flushed. What other instances admitted and have not flushed yet is not seen, so
/// across `n` instances an account can pass its limit by what the others admit in one flush
/// interval plus [`REFRESH`] (see `docs/USAGE_LIMITS.md`).
#[derive(Clone, Debug, Default)]
pub struct RequestQuota {
    accounts: Arc<Mutex<HashMap<Uuid, Counted>>>,
}

#[derive(Clone, Copy, Debug)]
struct Counted {
    /// The first day of the period counted.
    period: NaiveDate,
    used: i64,
    read_at: Instant,
    first_read_at: Instant,
}

impl RequestQuota {
    /// Admits one request of `user` against its plan's `api_requests` limit: 402
    /// `QUOTA_EXCEEDED` once the period's count has reached it. `Ok(true)` when the request was
    /// counted (hand it back with [`RequestQuota::refund`] if it is answered 400 or more);
    /// `Ok(false)` when nothing limits it (not enforced, or an unlimited plan).
    pub async fn admit(&self, db: &Db, settings: &UsageSettings, user: &User) -> Result<bool> {
        if !settings.enforce_api_requests {
            return Ok(false);
        }
        let plan = crate::billing::effective_plan(&user.subscription_plan, &user.subscription_status);
        let Some(limit) = settings.plan_limits.limit(plan, metric::API_REQUESTS) else {
            return Ok(false);
        };
        let period = Period::of(omnistack_db::time::now());
        let now = Instant::now();
        if self.needs_reading(user.id, period, now) {
            let read = Box::pin(used(db, user.id, metric::API_REQUESTS, period)).await?;
            self.merge_reading(user.id, period, read, now);
        }
        let mut accounts = self.lock();
        let counted = accounts.entry(user.id).or_insert(Counted {
            period: period.first,
            used: 0,
            read_at: now,
            first_read_at: now,
        });
        if counted.used >= limit {
            let resets_at = Some(period.resets_at());
            let used = counted.used;
            return Err(Error::QuotaExceeded(QuotaExceeded {
                metric: metric::API_REQUESTS.into(),
                limit,
                used,
                resets_at,
            }));
        }
        counted.used += 1;
        Ok(true)
    }

    /// Hands back a counted request that was not answered below 400 (those are not counted).
    pub fn refund(&self, user_id: Uuid) {
        if let Some(counted) = self.lock().get_mut(&user_id) {
            counted.used = (counted.used - 1).max(0);
        }
    }

    /// How many accounts are cached.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no account is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Counted>> {
        self.accounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the account's count must be read (absent, stale or of another period). A stale
    /// entry is marked read now, so concurrent requests of one account make one reading.
    fn needs_reading(&self, user_id: Uuid, period: Period, now: Instant) -> bool {
        let mut accounts = self.lock();
        match accounts.get_mut(&user_id) {
            Some(counted) if counted.period == period.first && now.duration_since(counted.read_at) < REFRESH => false,
            Some(counted) => {
                counted.read_at = now;
                true
            }
            None => true,
        }
    }

    fn merge_reading(&self, user_id: Uuid, period: Period, read: i64, now: Instant) {
        let mut accounts = self.lock();
        if !accounts.contains_key(&user_id) && accounts.len() >= MAX_ACCOUNTS {
            accounts.retain(|_, counted| now.duration_since(counted.read_at) < REFRESH);
            if accounts.len() >= MAX_ACCOUNTS {
                accounts.clear();
            }
        }
        let fresh = Counted { period: period.first, used: read, read_at: now, first_read_at: now };
        let counted = accounts.entry(user_id).or_insert(fresh);
        if counted.period != period.first || now.duration_since(counted.first_read_at) >= ENTRY_TTL {
            *counted = fresh;
        } else {
            counted.used = counted.used.max(read);
            counted.read_at = now;
        }
    }
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
