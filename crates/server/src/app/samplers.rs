//! Gauges computed periodically rather than per request: pool occupancy, Redis reachability,
//! accounts by status, active accounts and jobs waiting to run.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::state::AppState;

/// How often pool and Redis gauges are refreshed.
const SYSTEM_INTERVAL: Duration = Duration::from_secs(15);
/// How often account gauges are recomputed (two `COUNT` queries).
const ACCOUNTS_INTERVAL: Duration = Duration::from_secs(60);

/// Samples until the database pool is closed.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SYSTEM_INTERVAL);
        let mut last_accounts: Option<Instant> = None;
        loop {
            ticks.tick().await;
            if state.db.is_closed() {
                break;
            }
            sample_system(&state).await;
            sample_jobs(&state).await;
            if last_accounts.is_none_or(|at| at.elapsed() >= ACCOUNTS_INTERVAL) {
                sample_accounts(&state).await;
                last_accounts = Some(Instant::now());
            }
        }
    });
}

/// Pool connections, the time to get one, and whether Redis answers.
pub async fn sample_system(state: &AppState) {
    let stats = state.db.stats();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(stats.idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use").set(f64::from(stats.size.saturating_sub(stats.idle)));
    metrics::gauge!("db_pool_max_connections").set(f64::from(stats.max));
    if let Ok(waited) = state.db.acquire_probe().await {
        metrics::histogram!("db_pool_acquire_duration_seconds").record(waited.as_secs_f64());
    }
    if let Some(redis) = &state.redis {
        let up = redis.ping().await.is_ok();
        metrics::gauge!("redis_up").set(if up { 1.0 } else { 0.0 });
    }
}

/// Accounts by status, and distinct accounts seen in the last 24 hours and 30 days.
pub async fn sample_accounts(state: &AppState) {
    let db = &state.db;
    if let Ok((active, deactivated)) = omnistack_db::users::count_by_status(db).await {
        metrics::gauge!("omnistack_users", "status" => "active").set(active as f64);
        metrics::gauge!("omnistack_users", "status" => "deactivated").set(deactivated as f64);
    }
    for (window, age) in [("24h", chrono::Duration::hours(24)), ("30d", chrono::Duration::days(30))] {
        if let Ok(seen) = omnistack_db::users::count_seen_since(db, Utc::now() - age).await {
            metrics::gauge!("omnistack_active_users", "window" => window).set(seen as f64);
        }
    }
}

/// Jobs waiting to run (`queued`, or `failed` and waiting for a retry), per registered kind.
pub async fn sample_jobs(state: &AppState) {
    let Ok(counts) = omnistack_db::jobs::count_jobs(&state.db).await else { return };
    for kind in state.jobs.registry().names() {
        let waiting: i64 = counts
            .iter()
            .filter(|(job_state, job_kind, _)| job_kind == kind && (job_state == "queued" || job_state == "failed"))
            .map(|(_, _, count)| count)
            .sum();
        metrics::gauge!("omnistack_jobs_queued", "kind" => kind).set(waiting as f64);
    }
}
