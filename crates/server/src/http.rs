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
//! | 8 | body limit | `MAX_BODY_BYTES`, enforced by the body extractors → 413 |
//! | 9 | `versioning::reject_unsupported` | an unknown API version → 400 |
//! | | routing | then, on every route (and the 404 fallback): |
//! | 10 | `observe::TagRoute` | the matched route onto the response, for layer 3 |
//! | 11 | panic catcher | a panic → 500 `INTERNAL_ERROR` |
//! | 12 | `timeout` | `REQUEST_TIMEOUT_SECONDS` → 504, timed from when the route first waits |
//!
//! Then the route: `router.rs` is the route table; each version's route groups add their
//! guard and rate class (`api::mount`) and the version's deprecation headers (`api::lifecycle`,
//! when the configuration deprecates anything in that version).

mod compression;
mod cors;
pub mod deprecation;
pub mod error_body;
pub mod extract;
mod observe;
mod security_headers;
mod timeout;
pub mod versioning;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Environment;
use crate::state::AppState;

/// The whole server as one service.
pub type Service = BoxCloneSyncService<Request, Response, Infallible>;

/// `routes` (the route table) inside every layer, with the application state: the server.
///
/// The layers wrap the router as plain services, called in place: none is cloned per request
/// (layers added with `Router::layer` are, at every level of every route). Inside routing, on
/// every route: the panic catcher and the timeout, under a tag that puts the route that
/// answered on the response, for the access log and the metrics.
pub fn stack(routes: Router<AppState>, state: AppState) -> Service {
    let config = state.config.clone();
    let timeout_seconds = config.request_timeout.as_secs();
    let hsts = config.environment == Environment::Production;
    // Per route: the route's name on the response, also for a panic or a timeout there.
    let per_route = ServiceBuilder::new()
        .layer(observe::TagRoute)
        .layer(CatchPanicLayer::custom(error_body::panic_response))
        .layer(timeout::Timeout::new(config.request_timeout));
    let routed = routes.layer(per_route).with_state(state.clone());
    let service = ServiceBuilder::new()
        // Version negotiation rewrites the path, so it runs before routing and first.
        .layer(versioning::negotiate(config.api_versions.default_version))
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
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(versioning::reject_unsupported())
        .service(routed);
    BoxCloneSyncService::new(service)
}
