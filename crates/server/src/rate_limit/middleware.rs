//! The middleware that limits a route group per client IP.
//!
//! Route groups are built before the application state exists (`api::vN::router()`), so the
//! middleware finds the [`RateLimiter`] in the request's extensions, where `router::build`
//! puts it for every request (see `docs/adr/0003-rate-limiter-in-request-extensions.md`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::middleware::{FromFnLayer, Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;

use super::{LimitClass, RateLimiter, client_ip};
use crate::error::Error;

/// The layer [`by_ip`] makes; it works with `Router::route_layer` and `Router::layer`.
pub type IpRateLimitLayer = FromFnLayer<LimitByIp, LimitClass, (State<LimitClass>, Request)>;

/// The middleware function inside an [`IpRateLimitLayer`].
pub type LimitByIp = fn(State<LimitClass>, Request, Next) -> BoxFuture<'static, Response>;

/// Limits every request of the routes it wraps per client IP under `class`: a 429
/// `RATE_LIMIT_EXCEEDED` when over the limit, otherwise the route's response with the
/// `X-RateLimit-*` headers. Health, `/docs` and the OpenAPI documents are never limited.
///
/// Use as `.route_layer(rate_limit::by_ip(LimitClass::Public))` on a `Router<AppState>`.
/// The server must be served with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn by_ip(class: LimitClass) -> IpRateLimitLayer {
    from_fn_with_state(class, |class, request, next| Box::pin(limit_by_ip(class, request, next)))
}

async fn limit_by_ip(State(class): State<LimitClass>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<OriginalUri>().map_or(request.uri().path(), |uri| uri.path());
    if is_exempt(path) {
        return next.run(request).await;
    }
    let Some(limiter) = request.extensions().get::<RateLimiter>().cloned() else {
        return Error::Internal(anyhow::anyhow!("rate limiter missing from the request extensions")).into_response();
    };
    if !limiter.enabled() {
        return next.run(request).await;
    }
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        return Error::Internal(anyhow::anyhow!("no peer address: serve with connect info")).into_response();
    };
    let ip = client_ip(peer, request.headers(), limiter.trusted_proxies());
    let decision = limiter.check(class, &ip.to_string()).await;
    if !decision.allowed {
        return Error::RateLimited(decision).into_response();
    }
    let mut response = next.run(request).await;
    decision.apply_headers(response.headers_mut());
    response
}

/// Probes and documentation stay reachable whatever a client has spent:
/// `/api/*/public/health*`, `/api/*/public/metrics`, `/docs*` and `/api/*/openapi.json`.
fn is_exempt(path: &str) -> bool {
    if path == "/docs" || path.starts_with("/docs/") {
        return true;
    }
    let Some((_version, rest)) = path.strip_prefix("/api/").and_then(|rest| rest.split_once('/')) else {
        return false;
    };
    rest == "openapi.json" || rest == "public/health" || rest.starts_with("public/health/") || rest == "public/metrics"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_and_docs_are_exempt_and_nothing_else() {
        for path in [
            "/docs",
            "/docs/",
            "/docs/index.css",
            "/api/v1/openapi.json",
            "/api/v2/public/health",
            "/api/v1/public/health/ready",
        ] {
            assert!(is_exempt(path), "{path}");
        }
        for path in [
            "/api/v1/public/login",
            "/api/v1/public/healthy",
            "/api/openapi.json",
            "/api/v1/projects",
            "/documents",
            "/",
            "/api/v1/x/openapi.json",
        ] {
            assert!(!is_exempt(path), "{path}");
        }
    }
}
