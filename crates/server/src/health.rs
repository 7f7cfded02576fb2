//! Liveness and readiness: what each component answers, and how long it took.

use std::time::{Duration, Instant};

use omnistack_db::Db;

use crate::redis_pool::RedisPool;

/// How long a component may take to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one component, or of the whole service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Answering.
    Healthy,
    /// Serving, with an optional component down (requests still succeed).
    Degraded,
    /// Not able to serve.
    Unhealthy,
    /// The component is not configured (e.g. no `REDIS_URL`).
    NotConfigured,
}

/// One component's probe result.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Its state.
    pub status: Status,
    /// Round-trip time, when it answered.
    pub latency: Option<Duration>,
    /// Why it is not healthy; a short, client-safe description.
    pub error: Option<String>,
}

/// The readiness report.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// Overall: unhealthy when a required component is down, degraded when an optional one is.
    pub status: Status,
    /// The database (required).
    pub database: Probe,
    /// Redis (optional: the service falls back to in-process equivalents).
    pub redis: Probe,
}

/// Probes every component concurrently.
pub async fn check_readiness(db: &Db, redis: Option<&RedisPool>) -> Readiness {
    let (database, redis) = tokio::join!(probe_database(db), probe_redis(redis));
    let status = if database.status != Status::Healthy {
        Status::Unhealthy
    } else if redis.status == Status::Unhealthy {
        Status::Degraded
    } else {
        Status::Healthy
    };
    Readiness { status, database, redis }
}

async fn probe_database(db: &Db) -> Probe {
    let started = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, db.ping()).await {
        Ok(Ok(())) => Probe { status: Status::Healthy, latency: Some(started.elapsed()), error: None },
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            unhealthy("database unreachable")
        }
        Err(_) => unhealthy("database did not answer in time"),
    }
}

async fn probe_redis(redis: Option<&RedisPool>) -> Probe {
    let Some(redis) = redis else {
        return Probe { status: Status::NotConfigured, latency: None, error: None };
    };
    match tokio::time::timeout(PROBE_TIMEOUT, redis.ping()).await {
        Ok(Ok(latency)) => Probe { status: Status::Healthy, latency: Some(latency), error: None },
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: redis unreachable");
            unhealthy("redis unreachable")
        }
        Err(_) => unhealthy("redis did not answer in time"),
    }
}

fn unhealthy(error: &str) -> Probe {
    Probe { status: Status::Unhealthy, latency: None, error: Some(error.to_owned()) }
}
