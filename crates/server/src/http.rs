//! The layers every request passes through, in one list ([`stack`]), outermost first:
//!
//! | # | layer | what it does |
//! |---|---|---|
//! | 1 | `versioning::negotiate` | before routing: `/api/<group>/…` → `/api/vN/<group>/…` (ADR 0004) |
//! | 2 | the rate limiter | put in the request for the route groups' per-IP limits (ADR 0003) |
//! | 3 | `observe::track_request` | request id, server span, request metrics, access log |
//! | 4 | `security_headers::add` | nosniff, frame denial, referrer, permissions, CSP, HSTS |
//! | 5 | `cors` | `BACKEND_CORS_ORIGINS`, on every response including errors |
//! | 6 | compression | gzip when the client accepts it |
//! | 7 | `error_body::ensure_error_body` | any non-JSON 4xx/5xx → the error shape |
//! | 8 | panic catcher | a panic → 500 `INTERNAL_ERROR` |
//! | 9 | timeout | `REQUEST_TIMEOUT_SECONDS` → 504 |
//! | 10 | body limit | `MAX_BODY_BYTES`, enforced by the body extractors → 413 |
//! | 11 | `versioning::reject_unsupported` | an unknown API version → 400 |
//!
//! Then the route: `router.rs` is the route table; each version's route groups add their
//! guard and rate class (`api::mount`) and the version's deprecation headers (`api::lifecycle`).

mod cors;
pub mod deprecation;
pub mod error_body;
pub mod extract;
mod observe;
mod security_headers;
pub mod versioning;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Environment;
use crate::state::AppState;

/// `routes` (the route table) inside every layer, with the application state: the server.
pub fn stack(routes: Router<AppState>, state: AppState) -> Router {
    let config = state.config.clone();
    let timeout_seconds = config.request_timeout.as_secs();
    let hsts = config.environment == Environment::Production;
    let observe = observe::Observe {
        metrics: Arc::default(),
        sampling: config.telemetry.export.is_some().then_some(config.telemetry.sampler),
    };
    // Everything below runs after routing, so the access log knows the matched route.
    let routed = routes
        .layer(
            ServiceBuilder::new()
                .layer(Extension(state.limiter.clone()))
                .layer(middleware::from_fn_with_state(observe, observe::track_request))
                .layer(middleware::map_response(move |res| security_headers::add(hsts, res)))
                .layer(cors::layer(&config.cors_origins))
                .layer(CompressionLayer::new())
                .layer(middleware::from_fn(move |req: Request, next: Next| {
                    error_body::ensure_error_body(req, next, timeout_seconds)
                }))
                .layer(CatchPanicLayer::custom(error_body::panic_response))
                .layer(TimeoutLayer::with_status_code(StatusCode::GATEWAY_TIMEOUT, config.request_timeout))
                .layer(DefaultBodyLimit::max(config.max_body_bytes))
                .layer(middleware::from_fn(versioning::reject_unsupported)),
        )
        .with_state(state);
    // Version negotiation rewrites the path, so it wraps the routed service and runs first.
    let default = config.api_versions.default_version;
    Router::new()
        .fallback_service(routed)
        .layer(middleware::from_fn(move |request: Request, next: Next| versioning::negotiate(request, next, default)))
}
