//! `GET /public/health` (liveness) and `GET /public/health/ready` (readiness).

use crate::api::Routes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use omnistack_db::Db;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::health::{self, Probe, Readiness, Status};
use crate::http::extract::Json;
use crate::redis_pool::RedisPool;

/// The health routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(liveness)).routes(routes!(readiness))
}

/// Liveness: the process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always `healthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Server time (RFC 3339, UTC).
    #[serde(serialize_with = "rfc3339")]
    pub timestamp: DateTime<Utc>,
    /// The server's version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
}

/// Readiness: whether every required component answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessResponse {
    /// `healthy`, `degraded` (an optional component is down) or `unhealthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Server time (RFC 3339, UTC).
    pub timestamp: DateTime<Utc>,
    /// Each component's state.
    pub components: Components,
}

/// The probed components.
#[derive(Debug, Serialize, ToSchema)]
pub struct Components {
    /// The database (required).
    pub database: ComponentHealth,
    /// Redis (optional).
    pub redis: ComponentHealth,
}

/// One component's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentHealth {
    /// `healthy`, `unhealthy` or `not_configured`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Round-trip time in milliseconds, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why it is not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Liveness probe: answers without touching any dependency.
#[utoipa::path(
    get,
    path = "/public/health",
    tag = "health",
    responses((status = OK, description = "The process is up", body = HealthResponse))
)]
pub async fn liveness() -> Json<HealthResponse> {
    Json(HealthResponse::now())
}

/// Readiness probe: 200 when every required component answers, 503 otherwise.
#[utoipa::path(
    get,
    path = "/public/health/ready",
    tag = "health",
    responses(
        (status = OK, description = "Ready to serve (possibly degraded)", body = ReadinessResponse),
        (status = SERVICE_UNAVAILABLE, description = "A required component is down", body = ReadinessResponse),
    )
)]
pub async fn readiness(
    State(db): State<Db>,
    State(redis): State<Option<RedisPool>>,
) -> (StatusCode, Json<ReadinessResponse>) {
    let report = health::check_readiness(&db, redis.as_ref()).await;
    (readiness_status(&report), Json(ReadinessResponse::from(&report)))
}

/// 503 when a required component is down, else 200.
pub fn readiness_status(report: &Readiness) -> StatusCode {
    if report.status == Status::Unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
}

impl From<&Readiness> for ReadinessResponse {
    fn from(report: &Readiness) -> Self {
        ReadinessResponse {
            status: status_name(report.status),
            timestamp: Utc::now(),
            components: Components { database: component(&report.database), redis: component(&report.redis) },
        }
    }
}

impl HealthResponse {
    /// The process is up, now.
    pub fn now() -> HealthResponse {
        HealthResponse { status: "healthy", timestamp: Utc::now(), version: env!("CARGO_PKG_VERSION") }
    }
}

fn component(probe: &Probe) -> ComponentHealth {
    ComponentHealth {
        status: status_name(probe.status),
        latency_ms: probe.latency.map(|d| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0),
        error: probe.error.clone(),
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Healthy => "healthy",
        Status::Degraded => "degraded",
        Status::Unhealthy => "unhealthy",
        Status::NotConfigured => "not_configured",
    }
}

/// `at` as chrono's serde writes it (RFC 3339, `Z`, a fraction of 0, 3, 6 or 9 digits), made
/// on the stack: the liveness probe is the most frequent request, and chrono's formatter
/// writes one character at a time through `fmt`.
fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    }
    let mut out = [0u8; 30];
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut value = value;
        for place in (at..at + digits).rev() {
            out[place] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year.unsigned_abs(), 4);
    put(5, at.month(), 2);
    put(8, at.day(), 2);
    put(11, at.hour(), 2);
    put(14, at.minute(), 2);
    put(17, at.second(), 2);
    let len = match nanos {
        0 => 19,
        _ if nanos % 1_000_000 == 0 => {
            put(20, nanos / 1_000_000, 3);
            23
        }
        _ if nanos % 1_000 == 0 => {
            put(20, nanos / 1_000, 6);
            26
        }
        _ => {
            put(20, nanos, 9);
            29
        }
    };
    for (place, byte) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
        out[place] = byte;
    }
    out[len] = b'Z';
    serializer.serialize_str(std::str::from_utf8(&out[..=len]).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let second = Utc.with_ymd_and_hms(2026, 12, 2, 0, 57, 2).unwrap();
        let nanos = [0, 1, 689_990_117, 689_990_000, 689_000_000, 100_000_000, 999_999_999, 1_000_000_500];
        let mut times: Vec<DateTime<Utc>> = nanos.iter().map(|n| second + chrono::Duration::nanoseconds(*n)).collect();
        times.push(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap());
        times.push(Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap());
        times.push(Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap());
        times.push(Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap());
        times.push(Utc::now());
        for at in times {
            let ours = rfc3339(&at, serde_json::value::Serializer).unwrap();
            assert_eq!(ours, serde_json::to_value(at).unwrap(), "{at:?}");
        }
    }
}
