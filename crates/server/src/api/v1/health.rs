//! `GET /public/health` (liveness) and `GET /public/health/ready` (readiness).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::health::{self, Probe, Readiness, Status};
use crate::http::extract::Json;
use crate::redis_pool::RedisPool;
use crate::state::AppState;

/// The health routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(liveness)).routes(routes!(readiness))
}

/// Liveness: the process is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always `healthy`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    /// Server time (RFC 3339, UTC).
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
