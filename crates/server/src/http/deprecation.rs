//! Deprecation and retirement of API versions and single routes, applied by a layer on each
//! version's routes (`api::lifecycle`), configured by `API_DEPRECATIONS`, `API_SUNSETS`,
//! `API_DEPRECATED_ROUTES` and `API_SUNSET_ENFORCED`.
//!
//! A deprecated operation answers with `Deprecation: @<unix seconds>` (RFC 9745), `Sunset:
//! <HTTP-date>` (RFC 8594) when its version has a sunset, and a `Link` to its successor (the
//! same path under the latest version) and to the docs. From the sunset on it answers 410
//! `API_VERSION_SUNSET`, with the same headers, unless enforcement is off.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, Either};
use tower::{Layer, Service};

use crate::config::ApiVersion;
use crate::config::{Config, Deprecation};
use crate::error::{Error, Retirement};

/// The `Deprecation` response header (RFC 9745).
pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
/// The `Sunset` response header (RFC 8594).
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// Where the deprecation policy is explained (`rel="deprecation"`).
const DOCS_PATH: &str = "/docs";

/// Wraps `router` (the routes of `version`) in the deprecation layer, when the configuration
/// deprecates the version or any of its routes (it is read once, at start).
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    version: ApiVersion,
    config: Arc<Config>,
) -> Router<S> {
    if !config.api_versions.deprecates_any(version) {
        return router;
    }
    router.layer(Announce { version, config })
}

/// The deprecation layer of one version's routes: a plain service around the inner one, so an
/// operation that is not deprecated costs one lookup, with nothing cloned or boxed.
#[derive(Clone, Debug)]
struct Announce {
    version: ApiVersion,
    config: Arc<Config>,
}

impl<S> Layer<S> for Announce {
    type Service = AnnounceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AnnounceService { announce: self.clone(), inner }
    }
}

#[derive(Clone, Debug)]
struct AnnounceService<S> {
    announce: Announce,
    inner: S,
}

impl<S> Service<Request> for AnnounceService<S>
where
    S: Service<Request, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Announce { version, config } = &self.announce;
        let version = *version;
        let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
        let Some(deprecation) = config.api_versions.deprecation(version, request.method().as_str(), route) else {
            return Either::Left(self.inner.call(request));
        };
        let successor = successor_path(version, request.uri().path());
        let headers = headers(&deprecation, successor.as_deref(), config.docs_enabled);
        let retired = match deprecation.sunset {
            Some(sunset) if config.api_versions.sunset_enforced && deprecation.is_retired(Utc::now()) => {
                Some(Retirement { version, sunset, successor })
            }
            _ => None,
        };
        let future = match retired {
            // Answered when polled, so the error body is made inside the request's scope.
            Some(retirement) => Either::Left(async move { Ok(Error::VersionSunset(retirement).into_response()) }),
            None => Either::Right(self.inner.call(request)),
        };
        Either::Right(Box::pin(async move {
            let mut response = future.await?;
            response.headers_mut().extend(headers);
            Ok(response)
        }))
    }
}

/// `path` under the latest version; `None` for the latest version itself.
fn successor_path(version: ApiVersion, path: &str) -> Option<String> {
    if version == ApiVersion::LATEST {
        return None;
    }
    let rest = path.strip_prefix("/api/")?.strip_prefix(version.as_str())?;
    Some(format!("/api/{}{rest}", ApiVersion::LATEST))
}

/// `Deprecation`, `Sunset` and `Link` for a deprecated operation.
fn headers(deprecation: &Deprecation, successor: Option<&str>, docs: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(DEPRECATION, format!("@{}", deprecation.deprecated.timestamp()));
    if let Some(sunset) = deprecation.sunset {
        set(SUNSET, http_date(sunset));
    }
    let links: Vec<String> = successor
        .map(|path| format!("<{path}>; rel=\"successor-version\""))
        .into_iter()
        .chain(docs.then(|| format!("<{DOCS_PATH}>; rel=\"deprecation\"")))
        .collect();
    if !links.is_empty() {
        set(header::LINK, links.join(", "));
    }
    headers
}

/// An IMF-fixdate (RFC 9110), the form of `Sunset`: `Wed, 30 Jun 2027 00:00:00 GMT`.
fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn headers_use_the_rfc_formats() {
        let deprecation =
            Deprecation { deprecated: at("2026-12-01T00:00:00Z"), sunset: Some(at("2027-06-30T00:00:00Z")) };
        let headers = headers(&deprecation, Some("/api/v2/app/projects"), true);
        assert_eq!(headers[DEPRECATION], "@1796083200");
        assert_eq!(headers[SUNSET], "Wed, 30 Jun 2027 00:00:00 GMT");
        assert_eq!(
            headers[header::LINK],
            "</api/v2/app/projects>; rel=\"successor-version\", </docs>; rel=\"deprecation\""
        );
    }

    #[test]
    fn without_sunset_successor_or_docs_those_parts_are_left_out() {
        let deprecation = Deprecation { deprecated: at("2026-12-01T00:00:00Z"), sunset: None };
        let headers = headers(&deprecation, None, false);
        assert_eq!(headers[DEPRECATION], "@1796083200");
        assert!(!headers.contains_key(SUNSET) && !headers.contains_key(header::LINK));
    }

    #[test]
    fn the_successor_is_the_same_path_under_the_latest_version() {
        assert_eq!(
            successor_path(ApiVersion::V1, "/api/v1/app/projects/42").as_deref(),
            Some("/api/v2/app/projects/42")
        );
        assert_eq!(successor_path(ApiVersion::V2, "/api/v2/app/projects"), None);
        assert_eq!(successor_path(ApiVersion::V1, "/elsewhere"), None);
    }

    #[test]
    fn a_retirement_names_its_date_and_successor() {
        let retirement = Retirement {
            version: ApiVersion::V1,
            sunset: at("2027-06-30T00:00:00Z"),
            successor: Some("/api/v2/x".into()),
        };
        assert_eq!(retirement.to_string(), "API v1 was retired on 2027-06-30; use /api/v2/x");
        assert_eq!(retirement.details(), json!({"version": "v1", "sunset": "2027-06-30", "successor": "/api/v2/x"}));
    }
}
