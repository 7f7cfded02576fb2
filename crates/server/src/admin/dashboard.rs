//! The admin dashboard: accounts, subscriptions, jobs, requests, realtime and system health
//! in one reading. A reading is kept for [`CACHE_TTL`] and taken by one request at a time
//! (the others wait for it), so a burst of dashboards runs the queries once; every instance
//! also pushes a reading to its own subscribers of `admin:dashboard` every [`PUSH_INTERVAL`],
//! and does nothing while nobody there listens.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use omnistack_db::Db;
use omnistack_db::jobs::JobState;
use serde::Serialize;
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::auth::{CurrentUser, Role};
use crate::error::Result;
use crate::health::{self, Probe, Status};
use crate::realtime::{ChannelName, Hub};
use crate::redis_pool::RedisPool;
use crate::telemetry::requests::RequestCounts;

/// How long a reading is served before the next request takes a new one.
pub const CACHE_TTL: Duration = Duration::from_secs(2);
/// How often subscribers of [`CHANNEL`] receive a reading.
pub const PUSH_INTERVAL: Duration = Duration::from_secs(5);
/// The realtime channel of the dashboard (admins only, as every `admin:` channel).
pub const CHANNEL: &str = "admin:dashboard";
/// The realtime message type of a pushed reading.
pub const MESSAGE_TYPE: &str = "dashboard.stats";

/// Account counts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserStats {
    /// Every account.
    pub total: i64,
    /// Active accounts.
    pub active: i64,
    /// Deactivated accounts.
    pub inactive: i64,
    /// Accounts with the `admin` or `super_admin` role.
    pub admins: i64,
    /// Accounts created in the last 7 days.
    pub new_7d: i64,
    /// Accounts created in the last 30 days.
    pub new_30d: i64,
}

/// Accounts per subscription plan and status.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubscriptionStats {
    /// Plan → accounts (at most 50 plans).
    pub by_plan: BTreeMap<String, i64>,
    /// Status → accounts (at most 50 statuses).
    pub by_status: BTreeMap<String, i64>,
}

/// Jobs per state.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JobStats {
    /// Every state, 0 where none.
    pub by_state: BTreeMap<String, i64>,
}

/// Requests this instance answered since it started.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RequestStats {
    /// Every answered request.
    pub total: u64,
    /// Those answered with a 5xx status.
    pub errors_5xx: u64,
    /// `errors_5xx / total` (0 before any request).
    pub error_rate: f64,
}

/// Realtime sockets and online accounts (every instance with Redis, this one without).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RealtimeStats {
    /// Open sockets.
    pub connections: u64,
    /// Accounts with at least one open socket.
    pub users_online: u64,
}

/// A component's probe.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ComponentHealth {
    /// `healthy` or `unhealthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Round-trip time of the probe, when it answered.
    pub latency_ms: Option<f64>,
}

/// Redis's probe, or `"not_configured"` without `REDIS_URL`.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RedisHealth {
    /// Configured and probed.
    Probed(ComponentHealth),
    /// `"not_configured"`.
    NotConfigured(&'static str),
}

/// The service itself.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SystemStats {
    /// The database's probe.
    pub database: ComponentHealth,
    /// Redis's probe.
    pub redis: RedisHealth,
    /// The server's version.
    pub version: &'static str,
    /// Seconds since this instance started.
    pub uptime_seconds: u64,
}

/// One reading of the dashboard.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DashboardStats {
    /// Accounts.
    pub users: UserStats,
    /// Subscriptions.
    pub subscriptions: SubscriptionStats,
    /// Background jobs.
    pub jobs: JobStats,
    /// HTTP requests of this instance.
    pub requests: RequestStats,
    /// Realtime.
    pub realtime: RealtimeStats,
    /// Health, version, uptime.
    pub system: SystemStats,
}

/// The dashboard of this instance: the request counter, its start and the cached reading.
#[derive(Clone, Debug)]
pub struct Dashboard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requests: RequestCounts,
    started: Instant,
    cached: Mutex<Option<(Instant, Arc<DashboardStats>)>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            inner: Arc::new(Inner {
                requests: RequestCounts::default(),
                started: Instant::now(),
                cached: Mutex::new(None),
            }),
        }
    }
}

/// What a reading is taken from.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// The database.
    pub db: &'a Db,
    /// Redis, when configured.
    pub redis: Option<&'a RedisPool>,
    /// The realtime hub.
    pub hub: &'a Hub,
}

impl Dashboard {
    /// The counter the request-metrics layer feeds (put it in every request's extensions).
    pub fn requests(&self) -> RequestCounts {
        self.inner.requests.clone()
    }

    /// The stats, for an admin.
    pub async fn stats(&self, caller: &CurrentUser, sources: Sources<'_>) -> Result<Arc<DashboardStats>> {
        caller.require(Role::Admin)?;
        self.reading(sources).await
    }

    /// The cached reading while fresh, else a new one; one reading at a time.
    async fn reading(&self, sources: Sources<'_>) -> Result<Arc<DashboardStats>> {
        let mut cached = self.inner.cached.lock().await;
        if let Some((at, stats)) = cached.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(stats.clone());
        }
        let stats = Arc::new(self.read(sources).await?);
        *cached = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }

    async fn read(&self, sources: Sources<'_>) -> Result<DashboardStats> {
        let db = sources.db;
        let now = Utc::now();
        let (users, subscriptions, jobs, readiness, realtime) = tokio::join!(
            omnistack_db::users::count_for_dashboard(db, now),
            omnistack_db::users::count_by_subscription(db),
            omnistack_db::jobs::count_jobs(db),
            health::check_readiness(db, sources.redis),
            sources.hub.global_status(),
        );
        let users = users?;
        let (by_plan, by_status) = subscriptions?;
        let mut by_state: BTreeMap<String, i64> = JobState::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for (state, _kind, count) in jobs? {
            *by_state.entry(state).or_default() += count;
        }
        let (total, errors_5xx) = self.inner.requests.read();
        let error_rate = if total == 0 { 0.0 } else { errors_5xx as f64 / total as f64 };
        let redis = match readiness.redis.status {
            Status::NotConfigured => RedisHealth::NotConfigured("not_configured"),
            _ => RedisHealth::Probed(component(&readiness.redis)),
        };
        Ok(DashboardStats {
            users: UserStats {
                total: users.total,
                active: users.active,
                inactive: users.inactive,
                admins: users.admins,
                new_7d: users.new_7d,
                new_30d: users.new_30d,
            },
            subscriptions: SubscriptionStats {
                by_plan: by_plan.into_iter().collect(),
                by_status: by_status.into_iter().collect(),
            },
            jobs: JobStats { by_state },
            requests: RequestStats { total, errors_5xx, error_rate },
            realtime: RealtimeStats { connections: realtime.connections, users_online: realtime.users_online },
            system: SystemStats {
                database: component(&readiness.database),
                redis,
                version: env!("CARGO_PKG_VERSION"),
                uptime_seconds: self.inner.started.elapsed().as_secs(),
            },
        })
    }

    /// Every [`PUSH_INTERVAL`], sends a reading to this instance's subscribers of [`CHANNEL`]
    /// when there are any; ends when the dashboard or the pool is dropped.
    pub fn spawn_publisher(&self, db: Db, redis: Option<RedisPool>, hub: Hub) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let channel = ChannelName::parse(CHANNEL).expect("the dashboard channel name is valid");
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(PUSH_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if db.is_closed() {
                    return;
                }
                if !hub.has_local_subscribers(&channel) {
                    continue;
                }
                let dashboard = Dashboard { inner };
                let sources = Sources { db: &db, redis: redis.as_ref(), hub: &hub };
                match dashboard.reading(sources).await.map(|stats| serde_json::to_value(&*stats)) {
                    Ok(Ok(data)) => hub.publish_local(&channel, MESSAGE_TYPE, &data),
                    Ok(Err(err)) => tracing::warn!(error = %err, "dashboard: could not encode the stats"),
                    Err(err) => tracing::warn!(error = %err, "dashboard: could not read the stats"),
                }
            }
        });
    }
}

fn component(probe: &Probe) -> ComponentHealth {
    let status = if probe.status == Status::Healthy { "healthy" } else { "unhealthy" };
    ComponentHealth { status, latency_ms: probe.latency.map(|l| (l.as_secs_f64() * 1000.0 * 100.0).round() / 100.0) }
}
