//! The layers every request passes through, in one list ([`stack`]), outermost first:
//!
//! | # | layer | what it does |
//! |---|---|---|
//! | 1 | `versioning::negotiate` | before routing: `/api/<group>/…` → `/api/vN/<group>/…` (ADR 0004) |
//! | 2 | the rate limiter | put in the request for the route groups' per-IP limits (ADR 0003) |
//! | 3 | `observe::Observe` | request id, server span, request metrics, access log |
//! | 4 | `security_headers` | nosniff, frame denial, referrer, permissions, CSP, HSTS |
//! | 5 | `cors` | `BACKEND_CORS_ORIGINS`, on every response including errors |
//! | 6 | compression | gzip for bodies of 1 KiB or more, when the client accepts it |
//! | 7 | `error_body` | any non-JSON 4xx/5xx → the error shape |
//! | 8 | panic catcher | a panic → 500 `INTERNAL_ERROR` |
//! | 9 | timeout | `REQUEST_TIMEOUT_SECONDS` → 504 |
//! | 10 | body limit | `MAX_BODY_BYTES`, enforced by the body extractors → 413 |
//! | 11 | `versioning::reject_unsupported` | an unknown API version → 400 |
//!
//! Then the route: `router.rs` is the route table; each version's route groups add their
//! guard and rate class (`api::mount`) and the version's deprecation headers (`api::lifecycle`).

mod compression;
mod cors;
pub mod deprecation;
pub mod error_body;
pub mod extract;
mod observe;
mod security_headers;
pub mod versioning;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::{Extension, Router};
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Environment;
use crate::state::AppState;

/// The whole server as one service: version negotiation around the routed layers.
pub type Service = versioning::NegotiateService<Router>;

/// `routes` (the route table) inside every layer, with the application state: the server.
pub fn stack(routes: Router<AppState>, state: AppState) -> Service {
    let config = state.config.clone();
    let timeout_seconds = config.request_timeout.as_secs();
    let hsts = config.environment == Environment::Production;
    // Everything below runs after routing, so the access log knows the matched route.
    let routed = routes
        .layer(
            ServiceBuilder::new()
                .layer(Extension(state.limiter.clone()))
                .layer(observe::Observe {
                    metrics: Arc::default(),
                    sampling: config.telemetry.export.is_some().then_some(config.telemetry.sampler),
                    counts: state.dashboard.requests(),
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
        .with_state(state);
    // Version negotiation rewrites the path, so it wraps the routed service and runs first:
    // a plain service around the router, not a router of its own.
    versioning::negotiate(config.api_versions.default_version).layer(routed)
}
