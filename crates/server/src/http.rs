//! The layers every request passes through, outermost first:
//! request id + access log → security headers → CORS → compression → error bodies →
//! panic catcher → timeout → body limit (enforced by the body extractors) → route.

mod cors;
pub mod error_body;
pub mod extract;
mod observe;
pub mod request_id;
mod security_headers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Config, Environment};

/// Wraps every route of `router` (and its fallbacks) in the service's layers.
pub fn apply_layers<S: Clone + Send + Sync + 'static>(router: Router<S>, config: &Config) -> Router<S> {
    let timeout_seconds = config.request_timeout.as_secs();
    let hsts = config.environment == Environment::Production;
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(observe::track_request))
            .layer(middleware::map_response(move |res| security_headers::add(hsts, res)))
            .layer(cors::layer(&config.cors_origins))
            .layer(CompressionLayer::new())
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                error_body::ensure_error_body(req, next, timeout_seconds)
            }))
            .layer(CatchPanicLayer::custom(error_body::panic_response))
            .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout))
            .layer(DefaultBodyLimit::max(config.max_body_bytes)),
    )
}
