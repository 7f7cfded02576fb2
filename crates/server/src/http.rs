//! The layers every request passes through, in one list ([`stack`]), outermost first:
//!
//! | # | layer | what it does |
//! |---|---|---|
//! | 1 | `versioning::negotiate` | before routing: `/api/<group>/…` → `/api/vN/<group>/…` (ADR 0004) |
//! | 2 | the rate limiter | put in the request for the route groups' per-IP limits (ADR 0003) |
//! | 3 | `observe::Observe` | request id, server span, request metrics, access log |
//! | 4 | `security_headers` | nosniff, frame denial, referrer, permissions, CSP, HSTS |
//! | 5 | `cors` | `BACKEND_CORS_ORIGINS`, on every response including errors |
//! | 6 | compression | gzip for bodies of 1 KiB or more, when the client accepts it (no `Accept-Encoding`: skipped) |
//! | 7 | `error_body` | any non-JSON 4xx/5xx → the error shape |
//! | 8 | body limit | `MAX_BODY_BYTES`, enforced by the body extractors → 413 |
//! | 9 | `versioning::reject_unsupported` | an unknown API version → 400 |
//! | | routing | then, on every route (and the 404 fallback), [`per_route`]: |
//! | 10 | `observe::TagRoute` | the matched route into the request's scope, for layer 3 |
//! | 11 | panic catcher | a panic → 500 `INTERNAL_ERROR` |
//! | 12 | `timeout` | `REQUEST_TIMEOUT_SECONDS` → 504, timed from when the route first waits |
//!
//! Then the route: `router.rs` is the route table; each version's route groups add their
//! guard and rate class (`api::mount`, in the same boxed layer as [`per_route`], so a route is
//! one level deep) and the version's deprecation headers (`api::lifecycle`, when the
//! configuration deprecates anything in that version).

mod compression;
mod cors;
pub mod deprecation;
pub mod error_body;
pub mod extract;
mod observe;
mod security_headers;
mod timeout;
pub mod versioning;

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use axum::{Extension, Router};
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceBuilder};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};

use crate::config::Environment;
use crate::state::AppState;

/// The whole server as one service.
pub type Service = BoxCloneSyncService<Request, Response, Infallible>;

/// The layers on every route, inside routing (rows 10 to 12): the route's name on the
/// response, also for a panic or a timeout there. The route table puts them on each route
/// together with the route's own layers (`api::mount`, `router::build`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerRoute {
    timeout: Duration,
}

/// [`PerRoute`] with the configured `REQUEST_TIMEOUT_SECONDS`.
pub(crate) fn per_route(timeout: Duration) -> PerRoute {
    PerRoute { timeout }
}

type PanicResponse = fn(Box<dyn Any + Send + 'static>) -> Response;

impl<S> Layer<S> for PerRoute {
    type Service = observe::TagRouteService<CatchPanic<timeout::TimeoutService<S>, PanicResponse>>;

    fn layer(&self, inner: S) -> Self::Service {
        ServiceBuilder::new()
            .layer(observe::TagRoute)
            .layer(CatchPanicLayer::custom(error_body::panic_response as PanicResponse))
            .service(timeout::TimeoutService::new(inner, self.timeout))
    }
}

/// `routes` (the route table, its routes already under [`per_route`]) inside every layer,
/// with the application state: the server.
///
/// The layers wrap the router as plain services, called in place: none is cloned per request
/// (layers added with `Router::layer` are, at every level of every route).
pub fn stack(routes: Router<AppState>, state: AppState) -> Service {
    let config = state.config.clone();
    let timeout_seconds = config.request_timeout.as_secs();
    let hsts = config.environment == Environment::Production;
    let routed = routes.with_state(state.clone());
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
        // The router's future is boxed here, once, so the layers above carry a pointer to it
        // rather than moving it into each of their own futures.
        .service(Service::new(routed));
    BoxCloneSyncService::new(service)
}
