//! Which API version serves a request, decided before routing.
//!
//! `/api/vN/…` names its version and is routed as it is. Unversioned `/api/<group>/…` paths are
//! rewritten to `/api/vN/<group>/…` from `Accept-Version` (or else `X-API-Version`): `1`, `v1`,
//! `2`, `v2`; without either, `API_DEFAULT_VERSION`. A header naming a version this server does
//! not have is answered 400 by [`reject_unsupported`], inside the service's layers so the answer
//! gets the request id, CORS and security headers like any other error.
//!
//! Every `/api/…` response carries `X-API-Version` (the version that answered; the default one
//! when none did: the 400, or a path under a version this server lacks) and
//! `X-API-Latest-Version`.

use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use futures::future::{Either, Map, Ready, ready};
use tower::{Layer, Service};

use crate::config::ApiVersion;
use crate::error::Error;

/// Request headers a client names a version with, in order of precedence.
pub const REQUEST_HEADERS: [&str; 2] = ["accept-version", "x-api-version"];
/// The version that answered.
pub const VERSION: HeaderName = HeaderName::from_static("x-api-version");
/// The newest version the server has.
pub const LATEST_VERSION: HeaderName = HeaderName::from_static("x-api-latest-version");

/// A request for a version the server does not have; [`reject_unsupported`] answers it.
#[derive(Clone, Debug)]
struct UnsupportedVersion(String);

/// The outermost step: resolves the version, rewrites unversioned paths, and tags `/api/…`
/// responses with `X-API-Version` and `X-API-Latest-Version`. A plain service around the
/// router, so nothing is cloned per request.
#[derive(Clone, Copy, Debug)]
pub struct Negotiate {
    default: ApiVersion,
}

/// The layer: [`Negotiate`], with `default` for requests that name no version.
pub fn negotiate(default: ApiVersion) -> Negotiate {
    Negotiate { default }
}

impl<S> Layer<S> for Negotiate {
    type Service = NegotiateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        NegotiateService { inner, default: self.default }
    }
}

/// The service [`Negotiate`] makes.
#[derive(Clone, Debug)]
pub struct NegotiateService<S> {
    inner: S,
    default: ApiVersion,
}

impl<S> Service<Request> for NegotiateService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, Map<S::Future, Tag<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match resolve(&mut request, self.default) {
            None => Either::Left(self.inner.call(request)),
            Some(version) => {
                let tag: Tag<S::Error> = match version {
                    ApiVersion::V1 => tag::<S::Error, 0>,
                    ApiVersion::V2 => tag::<S::Error, 1>,
                };
                Either::Right(self.inner.call(request).map(tag))
            }
        }
    }
}

type Tag<E> = fn(Result<Response, E>) -> Result<Response, E>;

/// Adds `X-API-Version` (the version at `INDEX` of [`ApiVersion::ALL`]) and
/// `X-API-Latest-Version`: a function per version, so the response future needs no closure
/// and no box.
fn tag<E, const INDEX: usize>(result: Result<Response, E>) -> Result<Response, E> {
    let version = ApiVersion::ALL[INDEX];
    result.map(|mut response| {
        let headers = response.headers_mut();
        headers.insert(VERSION, HeaderValue::from_static(version.as_str()));
        headers.insert(LATEST_VERSION, HeaderValue::from_static(ApiVersion::LATEST.as_str()));
        response
    })
}

/// The version serving an `/api/…` request (rewriting an unversioned path, or marking an
/// unsupported version for [`reject_unsupported`]); `None` for any other path.
fn resolve(request: &mut Request, default: ApiVersion) -> Option<ApiVersion> {
    let rest = request.uri().path().strip_prefix("/api/")?;
    let segment = rest.split('/').next().unwrap_or_default();
    let version = if is_version_segment(segment) {
        // Routed as it is: a version this server lacks simply has no routes (404), and an
        // embedding application's own routes there still work.
        ApiVersion::from_name(segment).unwrap_or(default)
    } else {
        match requested(request.headers()).unwrap_or(Ok(default)) {
            Ok(version) => {
                rewrite(request, version);
                version
            }
            Err(requested) => {
                request.extensions_mut().insert(UnsupportedVersion(requested));
                default
            }
        }
    };
    Some(version)
}

/// The layer that answers 400 `BAD_REQUEST`, listing the supported versions, when
/// [`negotiate`] found an unsupported version. Runs inside the service's layers, whatever
/// route matched; a plain service around the inner one, so nothing is cloned per request.
#[derive(Clone, Copy, Debug, Default)]
pub struct RejectUnsupported;

/// The layer: [`RejectUnsupported`].
pub fn reject_unsupported() -> RejectUnsupported {
    RejectUnsupported
}

impl<S> Layer<S> for RejectUnsupported {
    type Service = RejectUnsupportedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RejectUnsupportedService { inner }
    }
}

/// The service [`RejectUnsupported`] makes.
#[derive(Clone, Debug)]
pub struct RejectUnsupportedService<S> {
    inner: S,
}

impl<S> Service<Request> for RejectUnsupportedService<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match request.extensions().get::<UnsupportedVersion>() {
            Some(UnsupportedVersion(requested)) => {
                Either::Left(ready(Ok(Error::UnsupportedVersion(requested.clone()).into_response())))
            }
            None => Either::Right(self.inner.call(request)),
        }
    }
}

/// `v` followed by digits: a path segment that names a version, supported or not.
fn is_version_segment(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The version the headers ask for: `None` when they name none, `Err` with the value when
/// it is not a version this server has.
fn requested(headers: &HeaderMap) -> Option<Result<ApiVersion, String>> {
    let value = REQUEST_HEADERS.iter().find_map(|name| headers.get(*name))?;
    let text = String::from_utf8_lossy(value.as_bytes());
    Some(ApiVersion::from_request_header(&text).ok_or_else(|| text.trim().to_owned()))
}

/// `/api/<rest>` becomes `/api/<version>/<rest>`, query kept: whatever looks at the path
/// after routing (rate-limit exemptions, deprecation links) sees the versioned one.
fn rewrite(request: &mut Request, version: ApiVersion) {
    let uri = request.uri();
    let Some(rest) = uri.path().strip_prefix("/api/") else { return };
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let Ok(path_and_query) = PathAndQuery::try_from(format!("/api/{version}/{rest}{query}")) else { return };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    if let Ok(rewritten) = Uri::from_parts(parts) {
        *request.uri_mut() = rewritten;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_segments_are_v_and_digits() {
        for segment in ["v1", "v2", "v9", "v10"] {
            assert!(is_version_segment(segment), "{segment}");
        }
        for segment in ["app", "public", "v", "V1", "v1x", "version", ""] {
            assert!(!is_version_segment(segment), "{segment}");
        }
    }

    #[test]
    fn accept_version_wins_over_x_api_version() {
        let mut headers = HeaderMap::new();
        assert_eq!(requested(&headers), None);
        headers.insert("x-api-version", HeaderValue::from_static("1"));
        assert_eq!(requested(&headers), Some(Ok(ApiVersion::V1)));
        headers.insert("accept-version", HeaderValue::from_static("v2"));
        assert_eq!(requested(&headers), Some(Ok(ApiVersion::V2)));
        headers.insert("accept-version", HeaderValue::from_static(" v7 "));
        assert_eq!(requested(&headers), Some(Err("v7".to_owned())));
    }

    #[test]
    fn rewriting_inserts_the_version_and_keeps_the_query() {
        let mut request =
            Request::builder().uri("/api/app/projects?limit=5&search=x").body(Default::default()).unwrap();
        rewrite(&mut request, ApiVersion::V1);
        assert_eq!(request.uri(), "/api/v1/app/projects?limit=5&search=x");
    }
}
