//! Limit alerts: at 80 % and 100 % of a plan limit (hard or soft), one email and one realtime
//! `usage.alert` per account, metric and period, however many instances run.
//!
//! Every instance sweeps `usage_daily` rows changed since its last sweep
//! (`USAGE_ALERT_SWEEP_MILLISECONDS`). An alert is claimed by inserting its row into
//! `usage_alerts` (primary key: account, metric, period, threshold) in the transaction that
//! enqueues its email job, so exactly one instance's claim commits, with its email; that
//! instance then publishes the realtime message on `user:<id>`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use omnistack_db::Db;
use omnistack_db::usage_reports as db;
use omnistack_db::users::User;
use serde_json::json;
use uuid::Uuid;

use super::limits::Period;
use super::reports::used_and_limit;
use crate::config::UsageSettings;
use crate::error::Result;
use crate::jobs::Jobs;
use crate::jobs::kinds::enqueue_email;
use crate::mail::{MailMessage, Notification};
use crate::realtime::{Event, Hub};

/// The thresholds, in percent of the limit.
pub const THRESHOLDS: [i32; 2] = [80, 100];
/// Each sweep reads again this far before the last change it saw: a row whose transaction
/// committed late, or whose writer's clock is behind, is still seen.
const LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// Changed rows read per query, and queries per sweep.
const BATCH: i64 = 1_000;
const PAGES: usize = 20;
/// Accounts remembered as fully alerted (both thresholds) this period, per instance.
const MAX_DONE: usize = 100_000;

/// What a sweep needs: the database, the sockets, the job queue and the limits.
#[derive(Clone, Debug)]
pub struct Alerts {
    /// The database.
    pub db: Db,
    /// Publishes the realtime message.
    pub hub: Hub,
    /// Enqueues the email.
    pub jobs: Jobs,
    /// The plan limits.
    pub settings: UsageSettings,
    /// Where emails link to (`FRONTEND_URL`).
    pub frontend_url: String,
}

/// An instance's progress: the last change seen, and what needs no further look this period.
#[derive(Debug)]
pub struct Sweeper {
    alerts: Alerts,
    seen_until: DateTime<Utc>,
    period: String,
    done: HashSet<(Uuid, String)>,
    /// The latest change already looked at, per account and metric: the lookback re-reads
    /// rows, and a row looked at is not looked at again until it changes.
    looked: HashMap<(Uuid, String), DateTime<Utc>>,
}

impl Sweeper {
    /// A sweeper that starts with every row changed in the current period.
    pub fn new(alerts: Alerts) -> Sweeper {
        let now = omnistack_db::time::now();
        let period = Period::of(now);
        let start = Utc.from_utc_datetime(&period.first.and_hms_opt(0, 0, 0).unwrap_or_default());
        Sweeper { alerts, seen_until: start, period: period.label(), done: HashSet::new(), looked: HashMap::new() }
    }

    /// Runs a sweep every `every`, forever.
    pub fn spawn(mut self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(err) = self.sweep().await {
                    tracing::warn!(error = %err, "the usage alert sweep failed; retrying at the next tick");
                }
            }
        })
    }

    /// Looks at every account and metric changed since the last sweep; returns the alerts
    /// this instance sent.
    pub async fn sweep(&mut self) -> Result<usize> {
        let now = omnistack_db::time::now();
        let period = Period::of(now);
        if period.label() != self.period {
            self.period = period.label();
            self.done.clear();
            self.looked.clear();
        }
        let mut cursor = self.seen_until - LOOKBACK;
        let mut latest = self.seen_until;
        let mut changed: HashMap<(Uuid, String), DateTime<Utc>> = HashMap::new();
        for _ in 0..PAGES {
            let rows = db::changed_since(&self.alerts.db, cursor, BATCH).await?;
            for row in &rows {
                latest = latest.max(row.updated_at);
                // Metrics no plan limits need no look.
                if !self.alerts.settings.plan_limits.limits_any(&row.metric) {
                    continue;
                }
                let pair = (row.user_id, row.metric.clone());
                if self.done.contains(&pair) {
                    continue;
                }
                let at = changed.entry(pair).or_insert(row.updated_at);
                *at = (*at).max(row.updated_at);
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == BATCH => cursor = last.updated_at,
                _ => break,
            }
        }
        let mut sent = 0;
        // Unchanged since it was looked at (compared for equality, not order: a writer whose
        // clock is behind moves a row's time backwards, and that is a change too).
        changed.retain(|pair, at| self.looked.get(pair) != Some(at));
        if self.looked.len() + changed.len() > MAX_DONE {
            self.looked.clear();
        }
        for ((user_id, metric), changed_at) in changed {
            let Some(user) = omnistack_db::users::find_user(&self.alerts.db, user_id).await? else {
                continue;
            };
            let (outcome, fully) = check(&self.alerts, &user, &metric, period).await?;
            self.looked.insert((user_id, metric.clone()), changed_at);
            sent += outcome;
            if fully {
                if self.done.len() >= MAX_DONE {
                    self.done.clear();
                }
                self.done.insert((user_id, metric));
            }
        }
        self.seen_until = latest;
        Ok(sent)
    }
}

/// The thresholds `used` has reached of `limit`.
pub fn reached(used: i64, limit: i64) -> Vec<i32> {
    THRESHOLDS
        .into_iter()
        .filter(|threshold| {
            if limit <= 0 { used > 0 } else { i128::from(used) * 100 >= i128::from(limit) * i128::from(*threshold) }
        })
        .collect()
}

/// Alerts `user` of `metric` in `period` if a threshold was reached and not yet claimed:
/// (alerts sent, whether every threshold is now claimed).
async fn check(alerts: &Alerts, user: &User, metric: &str, period: Period) -> Result<(usize, bool)> {
    let (used, limit) = used_and_limit(&alerts.db, &alerts.settings, user, metric, period).await?;
    let Some(limit) = limit else {
        return Ok((0, false));
    };
    let reached = reached(used, limit);
    if reached.is_empty() {
        return Ok((0, false));
    }
    let label = period.label();
    let claimed = db::claimed_alerts(&alerts.db, user.id, metric, &label).await?;
    if reached.iter().all(|threshold| claimed.contains(threshold)) {
        return Ok((0, claimed.len() == THRESHOLDS.len()));
    }
    // Reaching 100 % at once claims 80 % too, and only the 100 % alert is sent.
    let now = omnistack_db::time::now();
    let mut tx = alerts.db.begin().await?;
    let mut newest = None;
    for threshold in &reached {
        if db::claim_alert(&mut tx, user.id, metric, &label, *threshold, now).await? {
            newest = Some(*threshold);
        }
    }
    let Some(percent) = newest else {
        tx.rollback().await?;
        return Ok((0, reached.len() == THRESHOLDS.len()));
    };
    if let Some(to) = user.email.as_deref() {
        let message = MailMessage::new(to, &email(alerts, metric, percent, used, limit, period.last));
        let key = format!("usage_alert:{}:{metric}:{label}:{percent}", user.id);
        enqueue_email(&alerts.jobs, &mut tx, &message, Some(key)).await?;
    }
    tx.commit().await?;
    let event = Event::Service {
        kind: "usage.alert",
        data: json!({"metric": metric, "percent": percent, "used": used, "limit": limit, "period": label}),
    };
    if let Err(err) = alerts.hub.publish_to_user(user.id, event).await {
        tracing::warn!(user.id = %user.id, error = %err, "could not announce a usage alert");
    }
    tracing::info!(user.id = %user.id, usage.metric = metric, usage.percent = percent, "usage alert sent");
    Ok((1, reached.len() == THRESHOLDS.len()))
}

fn email(alerts: &Alerts, metric: &str, percent: i32, used: i64, limit: i64, last: NaiveDate) -> Notification {
    let title = if percent >= 100 {
        format!("You have reached your {metric} limit")
    } else {
        format!("You have used {percent}% of your {metric} limit")
    };
    let body =
        format!("Your plan includes {limit} {metric} this period; {used} are used.\nThe period ends on {last} (UTC).");
    let link = Some(format!("{}/billing", alerts.frontend_url.trim_end_matches('/')));
    Notification { title, body, link }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_reached_at_80_and_100_percent() {
        assert!(reached(79, 100).is_empty());
        assert_eq!(reached(80, 100), vec![80]);
        assert_eq!(reached(99, 100), vec![80]);
        assert_eq!(reached(100, 100), vec![80, 100]);
        assert_eq!(reached(4, 5), vec![80]);
        assert_eq!(reached(1, 0), vec![80, 100]);
        assert!(reached(0, 0).is_empty());
        assert_eq!(reached(i64::MAX, i64::MAX), vec![80, 100]);
    }
}
