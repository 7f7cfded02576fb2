//! Security headers on every response, errors and 429s included.
//!
//! Headers a route sets itself win, which is how the docs page gets the content security
//! policy it needs.

use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use futures::FutureExt;
use futures::future::Map;
use tower::{Layer, Service};

/// The policy of API responses: they load nothing and are framed by nothing.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

const PERMISSIONS_POLICY: &str = "accelerometer=(), ambient-light-sensor=(), camera=(), geolocation=(), \
     gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";
const HSTS: &str = "max-age=63072000; includeSubDomains";

const PERMISSIONS_POLICY_HEADER: HeaderName = HeaderName::from_static("permissions-policy");

/// The values, validated once at compile time rather than on every response.
const HEADERS: [(HeaderName, HeaderValue); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin")),
    (PERMISSIONS_POLICY_HEADER, HeaderValue::from_static(PERMISSIONS_POLICY)),
    (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP)),
];
const HSTS_VALUE: HeaderValue = HeaderValue::from_static(HSTS);

/// The layer adding the headers to every response; HSTS only when `hsts` (production, which
/// must be served over HTTPS). A plain service around the inner one: nothing is cloned or
/// boxed per request.
#[derive(Clone, Copy, Debug)]
pub struct SecurityHeaders {
    hsts: bool,
}

/// The layer: [`SecurityHeaders`].
pub fn layer(hsts: bool) -> SecurityHeaders {
    SecurityHeaders { hsts }
}

impl<S> Layer<S> for SecurityHeaders {
    type Service = SecurityHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeadersService { inner, hsts: self.hsts }
    }
}

/// The service [`SecurityHeaders`] makes.
#[derive(Clone, Debug)]
pub struct SecurityHeadersService<S> {
    inner: S,
    hsts: bool,
}

type Finish<B, E> = fn(Result<Response<B>, E>) -> Result<Response<B>, E>;

impl<S, R, B> Service<R> for SecurityHeadersService<S>
where
    S: Service<R, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Map<S::Future, Finish<B, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let finish: Finish<B, S::Error> =
            if self.hsts { finish::<B, S::Error, true> } else { finish::<B, S::Error, false> };
        self.inner.call(request).map(finish)
    }
}

fn finish<B, E, const HSTS: bool>(result: Result<Response<B>, E>) -> Result<Response<B>, E> {
    result.map(|mut response| {
        add(HSTS, response.headers_mut());
        response
    })
}

/// Adds the headers `headers` does not already carry; HSTS only when `hsts`.
pub fn add(hsts: bool, headers: &mut HeaderMap) {
    for (name, value) in HEADERS {
        headers.entry(name).or_insert(value);
    }
    if hsts {
        headers.entry(header::STRICT_TRANSPORT_SECURITY).or_insert(HSTS_VALUE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_a_route_set_win_and_hsts_is_optional() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'self'"));
        add(false, &mut headers);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers["permissions-policy"], PERMISSIONS_POLICY);
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        add(true, &mut headers);
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], HSTS);
    }
}
