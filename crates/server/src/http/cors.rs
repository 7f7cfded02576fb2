//! CORS from `BACKEND_CORS_ORIGINS`, applied to every response including errors and 429s.
//!
//! A request without `Origin` is not a CORS request (browsers send `Origin` on every
//! cross-origin request and preflight): it gets only `Vary`, so that caches keep the CORS and
//! plain answers apart, and skips the CORS headers no client would read.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use futures::FutureExt;
use futures::future::{Either, Map};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer, ResponseFuture};

use crate::config::CorsOrigins;

/// Response headers browsers may read.
const EXPOSED: [&str; 11] = [
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "x-api-version",
    "x-api-latest-version",
    "deprecation",
    "sunset",
    "link",
    "x-impersonated-by",
];

/// Request headers browsers may send.
const ALLOWED: [&str; 6] =
    ["authorization", "content-type", "accept", "x-request-id", "accept-version", "x-api-version"];

/// `Vary` on every response: what a CORS answer depends on.
const VARY: HeaderValue =
    HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers");

/// The CORS layer for the configured origins.
pub fn layer(origins: &CorsOrigins) -> CorsOnly {
    CorsOnly(cors_layer(origins))
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let names = |list: &[&'static str]| list.iter().map(|h| HeaderName::from_static(h)).collect::<Vec<_>>();
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers(names(&ALLOWED))
        .expose_headers(names(&EXPOSED))
        .max_age(Duration::from_secs(600))
        .vary([header::ORIGIN, header::ACCESS_CONTROL_REQUEST_METHOD, header::ACCESS_CONTROL_REQUEST_HEADERS]);
    match origins {
        CorsOrigins::Any => layer.allow_origin(AllowOrigin::any()),
        CorsOrigins::List(list) => layer
            .allow_origin(AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok())))
            .allow_credentials(true),
    }
}

/// tower-http's CORS for requests that carry `Origin` (and every `OPTIONS`, which it answers
/// as a preflight); `Vary` alone for the rest.
#[derive(Clone, Debug)]
pub struct CorsOnly(CorsLayer);

impl<S> Layer<S> for CorsOnly {
    type Service = CorsOnlyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsOnlyService(self.0.layer(inner))
    }
}

/// The service [`CorsOnly`] makes.
#[derive(Clone, Debug)]
pub struct CorsOnlyService<S>(Cors<S>);

type WithVary<B, E> = fn(Result<Response<B>, E>) -> Result<Response<B>, E>;

fn with_vary<B, E>(result: Result<Response<B>, E>) -> Result<Response<B>, E> {
    result.map(|mut response| {
        response.headers_mut().append(header::VARY, VARY);
        response
    })
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsOnlyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<ResponseFuture<S::Future>, Map<S::Future, WithVary<ResBody, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(header::ORIGIN) || request.method() == Method::OPTIONS {
            Either::Left(self.0.call(request))
        } else {
            Either::Right(self.0.get_mut().call(request).map(with_vary as WithVary<ResBody, S::Error>))
        }
    }
}
