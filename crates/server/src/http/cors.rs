//! CORS from `BACKEND_CORS_ORIGINS`, applied to every response including errors and 429s.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

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

/// The CORS layer for the configured origins.
pub fn layer(origins: &CorsOrigins) -> CorsLayer {
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
