//! The admin dashboard: accounts, subscriptions, jobs, requests, realtime and system health
//! in one reading. A reading is served for [`CACHE_TTL`]; until [`MAX_STALE`] it is still
//! served while one new reading is taken in the background, so a steady stream of dashboards
//! never waits for the queries; an older or missing reading is taken by one request while the
//! others wait for it (single flight). Every instance also pushes a reading to its own
//! subscribers of `admin:dashboard` every [`PUSH_INTERVAL`], and does nothing while nobody
//! there listens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// How long a reading is served as it is.
pub const CACHE_TTL: Duration = Duration::from_secs(5);
/// Until this age a reading is still served while a new one is taken in the background;
/// past it, a request waits for a new one.
pub const MAX_STALE: Duration = Duration::from_secs(15);
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

/// Inbound webhook events by provider and processing status.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookStats {
    /// Provider → status (`received`, `processed`, `failed`) → events.
    pub by_provider: BTreeMap<String, BTreeMap<String, i64>>,
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
    /// Inbound webhooks.
    pub webhooks: WebhookStats,
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
    /// The last reading and when it was taken.
    cached: std::sync::Mutex<Option<(Instant, Arc<DashboardStats>)>>,
    /// Held while a reading is taken: one at a time.
    reading: Mutex<()>,
    /// Whether a background reading is under way.
    refreshing: AtomicBool,
}

impl Default for Dashboard {
    fn default() -> Self {
        Dashboard {
            inner: Arc::new(Inner {
                requests: RequestCounts::default(),
                started: Instant::now(),
                cached: std::sync::Mutex::new(None),
                reading: Mutex::new(()),
                refreshing: AtomicBool::new(false),
            }),
        }
    }
}

/// What a reading is taken from (cheap handles).
#[derive(Clone, Debug)]
pub struct Sources {
    /// The database.
    pub db: Db,
    /// Redis, when configured.
    pub redis: Option<RedisPool>,
    /// The realtime hub.
    pub hub: Hub,
}

impl Dashboard {
    /// The counter the request-metrics layer feeds (put it in every request's extensions).
    pub fn requests(&self) -> RequestCounts {
        self.inner.requests.clone()
    }

    /// The stats, for an admin.
    pub async fn stats(&self, caller: &CurrentUser, sources: &Sources) -> Result<Arc<DashboardStats>> {
        caller.require(Role::Admin)?;
        self.reading(sources).await
    }

    fn cached(&self) -> Option<(Instant, Arc<DashboardStats>)> {
        self.inner.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// A fresh reading as it is; a stale one while a new one is taken in the background; else a
    /// new one, taken by one caller at a time.
    async fn reading(&self, sources: &Sources) -> Result<Arc<DashboardStats>> {
        if let Some((at, stats)) = self.cached() {
            let age = at.elapsed();
            if age < CACHE_TTL {
                return Ok(stats);
            }
            if age < MAX_STALE {
                if !self.inner.refreshing.swap(true, Ordering::AcqRel) {
                    let (dashboard, sources) = (self.clone(), sources.clone());
                    tokio::spawn(async move {
                        if let Err(err) = dashboard.refresh(&sources).await {
                            tracing::warn!(error = %err, "dashboard: could not read the stats");
                        }
                        dashboard.inner.refreshing.store(false, Ordering::Release);
                    });
                }
                return Ok(stats);
            }
        }
        self.refresh(sources).await
    }

    /// Takes a new reading unless one taken meanwhile is fresh.
    async fn refresh(&self, sources: &Sources) -> Result<Arc<DashboardStats>> {
        let _one_at_a_time = self.inner.reading.lock().await;
        if let Some((at, stats)) = self.cached()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(stats);
        }
        let stats = Arc::new(self.read(sources).await?);
        let mut cached = self.inner.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *cached = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }

    async fn read(&self, sources: &Sources) -> Result<DashboardStats> {
        let db = &sources.db;
        let now = Utc::now();
        // The scans run one after the other, on one connection at a time: a reading then
        // takes one core for a moment instead of both, and leaves the pool to the requests.
        let counts = async {
            let users = omnistack_db::users::count_for_dashboard(db, now).await?;
            let subscriptions = omnistack_db::users::count_by_subscription(db).await?;
            let jobs = omnistack_db::jobs::count_jobs(db).await?;
            let webhooks = omnistack_db::webhook_events::count_by_status(db).await?;
            Ok::<_, omnistack_db::DbError>((users, subscriptions, jobs, webhooks))
        };
        let (counts, readiness, realtime) =
            tokio::join!(counts, health::check_readiness(db, sources.redis.as_ref()), sources.hub.global_status());
        let (users, (by_plan, by_status), jobs, webhooks) = counts?;
        let mut by_provider: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for (provider, status, count) in webhooks {
            by_provider.entry(provider).or_default().insert(status, count);
        }
        let mut by_state: BTreeMap<String, i64> = JobState::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for (state, _kind, count) in jobs {
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
            webhooks: WebhookStats { by_provider },
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
    pub fn spawn_publisher(&self, sources: Sources) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let channel = ChannelName::parse(CHANNEL).expect("the dashboard channel name is valid");
        tokio::spawn(async move {
            // The first tick one period from now: there is nothing to do at start.
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + PUSH_INTERVAL, PUSH_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if sources.db.is_closed() {
                    return;
                }
                if !sources.hub.has_local_subscribers(&channel) {
                    continue;
                }
                let dashboard = Dashboard { inner };
                match dashboard.reading(&sources).await.map(|stats| serde_json::to_value(&*stats)) {
                    Ok(Ok(data)) => sources.hub.publish_local(&channel, MESSAGE_TYPE, &data),
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
