//! The layers every request passes through, outermost first:
//! version negotiation (before routing) → request id + access log → security headers → CORS →
//! compression → error bodies → panic catcher → timeout → body limit (enforced by the body
//! extractors) → unsupported-version rejection → route.

mod compression;
mod cors;
pub mod deprecation;
pub mod error_body;
pub mod extract;
mod observe;
pub mod request_id;
mod security_headers;
pub mod versioning;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Config, Environment};

/// Wraps every route of `router` (and its fallbacks) in the service's layers.
pub fn apply_layers<S: Clone + Send + Sync + 'static>(router: Router<S>, config: &Config) -> Router<S> {
    let timeout_seconds = config.request_timeout.as_secs();
    let hsts = config.environment == Environment::Production;
    router.layer(
        ServiceBuilder::new()
            .layer(observe::Observe {
                metrics: Arc::default(),
                sampling: config.telemetry.export.is_some().then_some(config.telemetry.sampler),
            })
            .layer(security_headers::layer(hsts))
            .layer(cors::layer(&config.cors_origins))
            .layer(compression::layer())
            .layer(error_body::layer(timeout_seconds))
            .layer(CatchPanicLayer::custom(error_body::panic_response))
            .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout))
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
            .layer(versioning::reject_unsupported()),
    )
}

/// Puts API version negotiation in front of `router`. It rewrites unversioned paths, so it
/// wraps the whole router and runs before routing; everything else runs after (see
/// [`apply_layers`]), so the access log knows the matched route.
pub fn negotiate_versions(router: Router, config: &Config) -> Router {
    let default = config.api_versions.default_version;
    Router::new().fallback_service(router).layer(versioning::negotiate(default))
}
