//! The middleware that limits a route group per client IP.
//!
//! Route groups are built before the application state exists (`api::vN::router()`), so the
//! middleware finds the [`RateLimiter`] in the request's extensions, where `http::stack`
//! puts it for every request (see `docs/adr/0003-rate-limiter-in-request-extensions.md`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::http::{Extensions, HeaderMap};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use tower::{Layer, Service};

use super::{LimitClass, RateDecision, RateLimiter, client_ip};
use crate::error::Error;

/// Limits every request of the routes it wraps per client IP under `class`: a 429
/// `RATE_LIMIT_EXCEEDED` when over the limit, otherwise the route's response with the
/// `X-RateLimit-*` headers. Health, `/docs` and the OpenAPI documents are never limited.
///
/// Use as `.route_layer(rate_limit::by_ip(LimitClass::Public))` on a `Router<AppState>`.
/// The server must be served with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn by_ip(class: LimitClass) -> IpRateLimitLayer {
    IpRateLimitLayer { class }
}

/// The layer [`by_ip`] makes; it works with `Router::route_layer` and `Router::layer`.
#[derive(Clone, Copy, Debug)]
pub struct IpRateLimitLayer {
    class: LimitClass,
}

impl<S> Layer<S> for IpRateLimitLayer {
    type Service = LimitByIp<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitByIp { inner, class: self.class }
    }
}

/// The service [`IpRateLimitLayer`] makes: a plain service, so an exempt request (a probe)
/// goes straight to the route, and only a limited one pays for the limiter's future.
#[derive(Clone, Debug)]
pub struct LimitByIp<S> {
    inner: S,
    class: LimitClass,
}

impl<S> Service<Request> for LimitByIp<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if is_exempt(request.uri().path()) {
            return Either::Left(self.inner.call(request));
        }
        // The service made ready serves this request; a clone of it waits for the next one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let class = self.class;
        Either::Right(Box::pin(async move {
            match check_client(class, request.extensions(), request.headers()).await {
                Err(denied) => Ok(denied.into_response()),
                Ok(decision) => {
                    let mut response = inner.call(request).await?;
                    if let Some(decision) = decision {
                        decision.apply_headers(response.headers_mut());
                    }
                    Ok(response)
                }
            }
        }))
    }
}

/// Counts `request` against its client IP's budget in `class`: the decision when limiting is
/// on, `Err` with the 429 (or a wiring fault) when the budget is spent. Also used where a
/// request is refused before any limited route runs (a bad token, an unknown path), so
/// refusals cost a client as much as answers do.
pub async fn check_client(
    class: LimitClass,
    extensions: &Extensions,
    headers: &HeaderMap,
) -> Result<Option<RateDecision>, Error> {
    let Some((limiter, ip)) = client_of(extensions, headers)? else {
        return Ok(None);
    };
    let decision = limiter.check(class, &ip).await;
    if !decision.allowed {
        return Err(Error::RateLimited(decision));
    }
    Ok(Some(decision))
}

/// The limiter (from the request's extensions) and the client IP; `None` when limiting is off.
fn client_of(extensions: &Extensions, headers: &HeaderMap) -> Result<Option<(RateLimiter, String)>, Error> {
    let Some(limiter) = extensions.get::<RateLimiter>() else {
        return Err(Error::Internal(anyhow::anyhow!("rate limiter missing from the request extensions")));
    };
    if !limiter.enabled() {
        return Ok(None);
    }
    let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>().copied() else {
        return Err(Error::Internal(anyhow::anyhow!("no peer address: serve with connect info")));
    };
    let ip = client_ip(peer, headers, limiter.trusted_proxies());
    Ok(Some((limiter.clone(), ip.to_string())))
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
