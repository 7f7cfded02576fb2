//! `GET /public/metrics` (and `/metrics`): the Prometheus scrape.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::{Error, ErrorBody, Result};
use crate::realtime::Hub;
use crate::telemetry;

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric in the Prometheus text format. With `METRICS_TOKEN` set, requires
/// `Authorization: Bearer <token>`.
#[utoipa::path(
    get,
    path = "/public/metrics",
    tag = "health",
    responses(
        (status = OK, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = UNAUTHORIZED, description = "METRICS_TOKEN is set and was not sent", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "METRICS_ENABLED=false", body = ErrorBody),
    )
)]
pub async fn scrape(State(config): State<Arc<Config>>, State(hub): State<Hub>, headers: HeaderMap) -> Result<Response> {
    if !config.telemetry.metrics_enabled {
        return Err(Error::ServiceUnavailable("metrics are disabled (METRICS_ENABLED=false)".into()));
    }
    if let Some(expected) = &config.telemetry.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(Error::MissingCredentials)?;
        if !bool::from(sent.as_bytes().ct_eq(expected.expose().as_bytes())) {
            return Err(Error::InvalidToken("metrics token is invalid".into()));
        }
    }
    hub.stats().record();
    let mut response = telemetry::metrics::render().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}
