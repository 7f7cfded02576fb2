//! `GET /public/health` and `GET /public/health/ready`, enveloped; the bodies inside are v1's.

use crate::api::Routes;
use axum::extract::State;
use axum::http::StatusCode;
use omnistack_db::Db;
use utoipa_axum::routes;

use super::envelope::{Envelope, enveloped};
use crate::api::v1::health::{HealthResponse, ReadinessResponse, readiness_status};
use crate::health;
use crate::http::extract::Json;
use crate::redis_pool::RedisPool;

/// The health routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(liveness)).routes(routes!(readiness))
}

/// Liveness probe: answers without touching any dependency.
#[utoipa::path(get, path = "/public/health", tag = "health",
    responses((status = OK, description = "The process is up", body = Envelope<HealthResponse>)))]
pub async fn liveness() -> Json<Envelope<HealthResponse>> {
    enveloped(HealthResponse::now())
}

/// Readiness probe: 200 when every required component answers, 503 otherwise.
#[utoipa::path(get, path = "/public/health/ready", tag = "health",
    responses(
        (status = OK, description = "Ready to serve (possibly degraded)", body = Envelope<ReadinessResponse>),
        (status = SERVICE_UNAVAILABLE, description = "A required component is down", body = Envelope<ReadinessResponse>),
    ))]
pub async fn readiness(
    State(db): State<Db>,
    State(redis): State<Option<RedisPool>>,
) -> (StatusCode, Json<Envelope<ReadinessResponse>>) {
    let report = health::check_readiness(&db, redis.as_ref()).await;
    (readiness_status(&report), enveloped(ReadinessResponse::from(&report)))
}
